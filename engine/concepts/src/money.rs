//! Money as people type and read it, converted exactly to and from the minor-unit
//! integers records carry (no floats). Each currency's minor unit comes from ISO 4217
//! (`iso_currency`): JPY has none, USD cents, KWD fils (three decimals). The bot's
//! dialogues, the web app's forms and CSV import all use these, so an amount is understood
//! the same way everywhere.

use iso_currency::Currency;

/// How a person writes numbers: which mark separates the decimals. A mark that cannot be
/// the decimal one (it repeats, or both marks appear) is read as grouping whatever the
/// locale, so "1,500.50" and "1.500,50" both parse everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Locale {
    /// `1,500.50`
    #[default]
    DecimalPoint,
    /// `1 500,50` / `1.500,50`
    DecimalComma,
}

impl Locale {
    /// From a language tag such as Telegram's `language_code` (`en`, `ru`, `de-CH`).
    pub fn from_language(tag: &str) -> Locale {
        let lang = tag.split(['-', '_']).next().unwrap_or_default().to_ascii_lowercase();
        match lang.as_str() {
            "en" | "ja" | "zh" | "ko" | "he" | "th" | "hi" | "ms" | "fil" | "ga" | "" => Locale::DecimalPoint,
            _ => Locale::DecimalComma,
        }
    }

    fn decimal_mark(self) -> char {
        match self {
            Locale::DecimalPoint => '.',
            Locale::DecimalComma => ',',
        }
    }
}

/// A currency known to ISO 4217, by its code (`usd` is read as `USD`).
pub fn currency(code: &str) -> Option<Currency> {
    Currency::from_code(&code.trim().to_ascii_uppercase())
}

/// Digits after the decimal mark the currency has: 0 for JPY, 2 for EUR, 3 for KWD. A code
/// ISO gives no minor unit (gold, SDR) counts as 2, as most software does.
pub fn exponent(code: &str) -> u32 {
    currency(code).and_then(|c| c.exponent()).map_or(2, u32::from)
}

/// `1,500.00 USD`, `1,500 JPY`, `1,500.500 KWD`
pub fn format(amount_minor: i64, currency: &str) -> String {
    let exp = exponent(currency);
    let scale = 10u64.pow(exp);
    let abs = amount_minor.unsigned_abs();
    let digits = (abs / scale).to_string();
    let mut out = String::new();
    if amount_minor < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if exp > 0 {
        out.push_str(&format!(".{:0width$}", abs % scale, width = exp as usize));
    }
    format!("{out} {currency}")
}

/// The amount alone, as CSV and forms carry it: `1500.00`, `1500`, `-2.500`.
pub fn plain(amount_minor: i64, currency: &str) -> String {
    let exp = exponent(currency);
    let scale = 10u64.pow(exp);
    let abs = amount_minor.unsigned_abs();
    let sign = if amount_minor < 0 { "-" } else { "" };
    if exp == 0 {
        format!("{sign}{abs}")
    } else {
        format!("{sign}{}.{:0width$}", abs / scale, abs % scale, width = exp as usize)
    }
}

/// Symbols people type for a currency, longest first so `US$` wins over `$`.
const SYMBOLS: &[(&str, &str)] = &[
    ("US$", "USD"),
    ("C$", "CAD"),
    ("A$", "AUD"),
    ("R$", "BRL"),
    ("$", "USD"),
    ("€", "EUR"),
    ("£", "GBP"),
    ("¥", "JPY"),
    ("₽", "RUB"),
    ("₹", "INR"),
    ("₩", "KRW"),
    ("₴", "UAH"),
    ("₸", "KZT"),
    ("₺", "TRY"),
    ("₪", "ILS"),
    ("zł", "PLN"),
];

/// An amount of money as typed in `locale`: `1500`, `1 500,50 EUR`, `1,500.50 USD`,
/// `EUR 99`, `¥1500`, `0.250 KWD`. Returns minor units and the ISO currency (the typed one,
/// else `default_currency`). Exact: no floats; more decimals than the currency has is an
/// error, never rounded.
pub fn parse_in(answer: &str, default_currency: &str, locale: Locale) -> Result<(i64, String), MoneyError> {
    let bad = || MoneyError::NotAnAmount;
    let mut text = answer.trim().to_string();
    let mut typed: Option<String> = None;
    for (symbol, code) in SYMBOLS {
        if let Some(rest) = text.strip_prefix(symbol).or_else(|| text.strip_suffix(symbol)) {
            typed = Some((*code).to_string());
            text = rest.trim().to_string();
            break;
        }
    }
    if typed.is_none() {
        let letters = |s: &str| s.len() == 3 && s.chars().all(|c| c.is_ascii_alphabetic());
        let head: String = text.chars().take_while(char::is_ascii_alphabetic).collect();
        let tail: String = {
            let rev: String = text.chars().rev().take_while(char::is_ascii_alphabetic).collect();
            rev.chars().rev().collect()
        };
        if letters(&head) {
            text = text[head.len()..].trim().to_string();
            typed = Some(head);
        } else if letters(&tail) {
            text = text[..text.len() - tail.len()].trim().to_string();
            typed = Some(tail);
        }
    }
    let code = typed.as_deref().unwrap_or(default_currency).to_ascii_uppercase();
    let Some(iso) = currency(&code) else {
        return Err(match typed {
            Some(_) => MoneyError::UnknownCurrency(code),
            None => MoneyError::UnknownDefault(code),
        });
    };
    let code = iso.code().to_string();
    if text.starts_with('-') {
        return Err(MoneyError::Negative);
    }
    let (whole, frac) = split_number(&text, locale).ok_or_else(bad)?;
    if whole.is_empty() && frac.is_empty() {
        return Err(bad());
    }
    let exp = exponent(&code);
    if frac.len() > exp as usize {
        return Err(match exp {
            0 => MoneyError::NoMinorUnit(code),
            decimals => MoneyError::TooManyDecimals { code, decimals },
        });
    }
    let too_large = || MoneyError::TooLarge;
    let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| too_large())? };
    let frac_minor: i64 =
        if exp == 0 { 0 } else { format!("{frac:0<width$}", width = exp as usize).parse().unwrap_or(0) };
    let minor = whole.checked_mul(10i64.pow(exp)).and_then(|w| w.checked_add(frac_minor)).ok_or_else(too_large)?;
    Ok((minor, code))
}

/// Why a typed amount is not one. Its English is what the API and the web app say; the bot
/// says each in the reader's language.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("Type an amount like 1500, 1 500.50 or 1500 EUR.")]
    NotAnAmount,
    #[error("“{0}” is not an ISO 4217 currency code; type one after the amount, e.g. 1500 EUR.")]
    UnknownCurrency(String),
    #[error("The default currency “{0}” is not an ISO 4217 code; type one, e.g. 1500 EUR.")]
    UnknownDefault(String),
    #[error("The amount cannot be negative.")]
    Negative,
    #[error("{0} has no smaller unit: type a whole amount.")]
    NoMinorUnit(String),
    #[error("{code} has at most {decimals} decimals.")]
    TooManyDecimals { code: String, decimals: u32 },
    #[error("That amount is too large.")]
    TooLarge,
}

/// [`parse_in`] for people who write a decimal point.
pub fn parse(answer: &str, default_currency: &str) -> Result<(i64, String), MoneyError> {
    parse_in(answer, default_currency, Locale::DecimalPoint)
}

/// Splits `1 500,50` into ("1500", "50"): grouping marks (spaces, apostrophes, and a `.` or
/// `,` that cannot be the decimal one) dropped. None when it is not a number.
fn split_number(text: &str, locale: Locale) -> Option<(String, String)> {
    let groups = |c: char| matches!(c, ' ' | '\u{a0}' | '\u{202f}' | '\'' | '’' | '_');
    let cleaned: String = text.chars().filter(|&c| !groups(c)).collect();
    if cleaned.is_empty() || !cleaned.chars().all(|c| c.is_ascii_digit() || c == '.' || c == ',') {
        return None;
    }
    let dots = cleaned.matches('.').count();
    let commas = cleaned.matches(',').count();
    let decimal = match (dots, commas) {
        (0, 0) => None,
        // Both marks: the last one is the decimal one ("1,500.50", "1.500,50").
        (_, _) if dots > 0 && commas > 0 => {
            let last = cleaned.rfind(['.', ',']).and_then(|i| cleaned[i..].chars().next())?;
            let (count, other) = if last == '.' { (dots, commas) } else { (commas, dots) };
            if count > 1 || other == 0 {
                return None;
            }
            Some(last)
        }
        // One mark, repeated: grouping ("1.500.000", "1,50,000"), which ends in a group of three.
        (d, c) if d > 1 || c > 1 => {
            let mark = if d > 1 { '.' } else { ',' };
            let mut parts = cleaned.split(mark);
            if parts.clone().any(str::is_empty) || parts.next_back().is_none_or(|last| last.len() != 3) {
                return None;
            }
            None
        }
        _ => {
            let mark = if dots == 1 { '.' } else { ',' };
            let after = cleaned.len() - cleaned.find(mark).unwrap_or(0) - 1;
            // The locale's own mark is decimal; the other one is grouping when a group of
            // three follows it ("1,500" in English, "1.500" in German).
            if mark == locale.decimal_mark() || after != 3 { Some(mark) } else { None }
        }
    };
    let (whole, frac) = match decimal {
        Some(mark) => cleaned.split_once(mark)?,
        None => (cleaned.as_str(), ""),
    };
    let whole: String = whole.chars().filter(char::is_ascii_digit).collect();
    // Grouping must sit between digits: "1,500" yes, ",500" or "1,,500" no.
    if frac.contains(['.', ',']) || (whole.is_empty() && frac.is_empty()) {
        return None;
    }
    Some((whole, frac.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_uses_the_currency_minor_unit() {
        assert_eq!(format(150_000, "USD"), "1,500.00 USD");
        assert_eq!(format(5, "EUR"), "0.05 EUR");
        assert_eq!(format(123_456_789, "USD"), "1,234,567.89 USD");
        assert_eq!(format(1500, "JPY"), "1,500 JPY");
        assert_eq!(format(1_500_500, "KWD"), "1,500.500 KWD");
        assert_eq!(format(-250, "GBP"), "-2.50 GBP");
        assert_eq!(plain(150_050, "EUR"), "1500.50");
        assert_eq!(plain(1500, "JPY"), "1500");
        assert_eq!(plain(250, "KWD"), "0.250");
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
    }

    #[test]
    fn amounts_are_read_as_people_write_them() {
        let comma = Locale::DecimalComma;
        assert_eq!(parse_in("1 500,50 EUR", "USD", comma).unwrap(), (150_050, "EUR".into()));
        assert_eq!(parse_in("1.500,50 EUR", "USD", Locale::DecimalPoint).unwrap(), (150_050, "EUR".into()));
        assert_eq!(parse_in("1,500.50 USD", "EUR", comma).unwrap(), (150_050, "USD".into()));
        assert_eq!(parse_in("1\u{a0}500,5", "RUB", comma).unwrap(), (150_050, "RUB".into()));
        assert_eq!(parse_in("1.500", "EUR", comma).unwrap(), (150_000, "EUR".into()));
        assert_eq!(parse_in("1,5", "EUR", Locale::DecimalPoint).unwrap(), (150, "EUR".into()));
        assert_eq!(parse_in("EUR 99", "USD", comma).unwrap(), (9_900, "EUR".into()));
        assert_eq!(parse_in("1 500 ₽", "USD", comma).unwrap(), (150_000, "RUB".into()));
        assert_eq!(parse("1'500.25 CHF", "USD").unwrap(), (150_025, "CHF".into()));
        assert_eq!(parse("1,50,000 INR", "USD").unwrap(), (15_000_000, "INR".into()));
        assert!(parse("1,50,0", "USD").is_err());
        assert!(parse("1.500.50", "USD").is_err());
    }

    #[test]
    fn minor_units_follow_iso_4217() {
        assert_eq!(parse("¥1500", "USD").unwrap(), (1500, "JPY".into()));
        assert_eq!(parse("1,500 JPY", "USD").unwrap(), (1500, "JPY".into()));
        assert!(parse("1500.5 JPY", "USD").unwrap_err().to_string().contains("no smaller unit"));
        assert_eq!(parse("1.250 KWD", "USD").unwrap(), (1250, "KWD".into()));
        assert_eq!(parse("1500 KWD", "USD").unwrap(), (1_500_000, "KWD".into()));
        assert!(parse("0.0005 KWD", "USD").unwrap_err().to_string().contains("at most 3 decimals"));
        assert_eq!(exponent("JPY"), 0);
        assert_eq!(exponent("KWD"), 3);
        assert_eq!(exponent("eur"), 2);
    }

    #[test]
    fn currency_codes_are_checked_against_iso_4217() {
        assert!(parse("5 XYZ", "USD").unwrap_err().to_string().contains("not an ISO 4217"));
        assert!(parse("5", "ABC").unwrap_err().to_string().contains("default currency"));
        assert_eq!(parse("5", "usd").unwrap(), (500, "USD".into()));
        assert!(currency("usd").is_some());
        assert!(currency("ZZZ").is_none());
    }
}
