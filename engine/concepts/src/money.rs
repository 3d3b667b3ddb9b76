//! Money as people type and read it, converted exactly to and from the minor-unit
//! integers records carry (no floats). The bot's dialogues and the web app's forms both
//! use these, so an amount is understood the same way everywhere.

/// `1,500.00 USD`
pub fn format(amount_minor: i64, currency: &str) -> String {
    let whole = amount_minor / 100;
    let cents = (amount_minor % 100).abs();
    let digits = whole.abs().to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if amount_minor < 0 { "-" } else { "" };
    format!("{sign}{grouped}.{cents:02} {currency}")
}

/// An amount of money: `1500`, `1 500.50`, `1,500.50 EUR`, `$99`. Returns minor units and
/// an upper-case ISO currency (defaulting to `default_currency`). Exact: no floats.
pub fn parse(answer: &str, default_currency: &str) -> Result<(i64, String), String> {
    let bad = || "Type an amount like 1500, 1 500.50 or 1500 EUR.".to_string();
    let mut text = answer.trim().to_string();
    let mut currency = default_currency.to_string();
    for (symbol, code) in [("$", "USD"), ("€", "EUR"), ("£", "GBP")] {
        if let Some(rest) = text.strip_prefix(symbol) {
            currency = code.into();
            text = rest.trim().to_string();
        }
    }
    if let Some((number, code)) = text.rsplit_once(' ')
        && code.len() == 3
        && code.chars().all(|c| c.is_ascii_alphabetic())
    {
        currency = code.to_ascii_uppercase();
        text = number.trim().to_string();
    }
    let cleaned: String = text.chars().filter(|c| !matches!(c, ' ' | ',' | '_' | '\u{a0}')).collect();
    if cleaned.starts_with('-') {
        return Err("The amount cannot be negative.".into());
    }
    let (whole, frac) = match cleaned.split_once('.') {
        Some((w, f)) => (w, f),
        None => (cleaned.as_str(), ""),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if frac.len() > 2 {
        return Err("Use at most two decimals (cents).".into());
    }
    let whole: i64 = whole.parse().map_err(|_| "That amount is too large.".to_string())?;
    let cents: i64 = format!("{frac:0<2}").parse().unwrap_or(0);
    let minor = whole.checked_mul(100).and_then(|w| w.checked_add(cents)).ok_or("That amount is too large.")?;
    // A typed code is always well-formed by now; only a misconfigured default can fail.
    crate::fields::currency("currency", &currency).map_err(|_| {
        format!("“{currency}” is not a three-letter currency code; type one after the amount, e.g. 1500 EUR.")
    })?;
    Ok((minor, currency))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_groups_thousands() {
        assert_eq!(format(150_000, "USD"), "1,500.00 USD");
        assert_eq!(format(5, "EUR"), "0.05 EUR");
        assert_eq!(format(123_456_789, "USD"), "1,234,567.89 USD");
    }

    #[test]
    fn money_is_exact() {
        assert_eq!(parse("1500", "USD").unwrap(), (150_000, "USD".into()));
        assert_eq!(parse("1 500.5 eur", "USD").unwrap(), (150_050, "EUR".into()));
        assert_eq!(parse("$1,000.99", "EUR").unwrap(), (100_099, "USD".into()));
        assert!(parse("-5", "USD").is_err());
        assert!(parse("1.999", "USD").is_err());
        assert!(parse("lots", "USD").is_err());
        assert!(parse("99999999999999999999", "USD").is_err());
        assert!(parse("5", "usd").unwrap_err().contains("currency code"));
    }
}
