//! Checking one dialogue answer at a time. Each parser returns the value to store or a
//! message that tells the user what a good answer looks like; none of them panics on any
//! input (emoji, right-to-left text, 4096-character pastes).

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

/// The answer that leaves an optional field empty.
pub fn is_skip(answer: &str) -> bool {
    matches!(answer.trim(), "-" | "—" | "–" | "skip" | "/skip")
}

/// A required one-line name or title of at most `max` characters.
pub fn name(answer: &str, what: &str, max: usize) -> Result<String, String> {
    let value = answer.split_whitespace().collect::<Vec<_>>().join(" ");
    if value.is_empty() {
        return Err(format!("The {what} cannot be empty. Please type it."));
    }
    let len = value.chars().count();
    if len > max {
        return Err(format!("That {what} is {len} characters long; the most is {max}. Please shorten it."));
    }
    Ok(value)
}

/// A free text body (notes): kept verbatim apart from surrounding blank space.
pub fn body(answer: &str, max: usize) -> Result<String, String> {
    let value = answer.trim();
    if value.is_empty() {
        return Err("The text cannot be empty.".into());
    }
    let len = value.chars().count();
    if len > max {
        return Err(format!("That text is {len} characters long; the most is {max}."));
    }
    Ok(value.to_string())
}

/// The same rule the database enforces: something@something.tld, no spaces.
pub fn email(answer: &str) -> Result<String, String> {
    let value = answer.trim();
    let bad = || {
        format!(
            "“{}” is not an email address. Try e.g. ann@example.com, or send - to skip.",
            crate::text::ellipsize(value, 60)
        )
    };
    if value.chars().count() > 254 || value.chars().any(char::is_whitespace) {
        return Err(bad());
    }
    let (local, domain) = value.split_once('@').ok_or_else(bad)?;
    if local.is_empty() || domain.contains('@') {
        return Err(bad());
    }
    match domain.rsplit_once('.') {
        Some((host, tld)) if !host.is_empty() && !tld.is_empty() => Ok(value.to_string()),
        _ => Err(bad()),
    }
}

/// Digits with the usual decorations; 5 to 20 digits.
pub fn phone(answer: &str) -> Result<String, String> {
    let value = answer.trim();
    let allowed = |c: char| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.');
    let digits = value.chars().filter(char::is_ascii_digit).count();
    if !value.chars().all(allowed) || !(5..=20).contains(&digits) {
        return Err(
            "That is not a phone number. Use digits, spaces, + - ( ), e.g. +1 555 010 2030, or send - to skip.".into(),
        );
    }
    Ok(value.to_string())
}

/// An amount of money: `1500`, `1 500.50`, `1,500.50 EUR`, `$99`. Returns minor units and
/// an upper-case ISO currency (defaulting to `default_currency`). Exact: no floats.
pub fn money(answer: &str, default_currency: &str) -> Result<(i64, String), String> {
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
    Ok((minor, currency))
}

/// A date: `today`, `tomorrow`, `+3` (days), `2026-12-01`.
pub fn date(answer: &str, today: NaiveDate) -> Result<NaiveDate, String> {
    let value = answer.trim().to_lowercase();
    let bad = || "Type a date like 2026-12-01, today, tomorrow or +3 (days from now), or send - to skip.".to_string();
    match value.as_str() {
        "today" => return Ok(today),
        "tomorrow" => return Ok(today + Duration::days(1)),
        _ => {}
    }
    if let Some(days) = value.strip_prefix('+') {
        let days: i64 = days.trim().parse().map_err(|_| bad())?;
        if !(0..=3650).contains(&days) {
            return Err(bad());
        }
        return Ok(today + Duration::days(days));
    }
    NaiveDate::parse_from_str(&value, "%Y-%m-%d").map_err(|_| bad())
}

/// A due time in UTC: a date (due at the end of that day) or `date HH:MM`.
pub fn due(answer: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let value = answer.trim();
    if let Some((d, t)) = value.rsplit_once(' ')
        && let Ok(time) = NaiveTime::parse_from_str(t, "%H:%M")
    {
        let day = date(d, now.date_naive())?;
        return Ok(Utc.from_utc_datetime(&NaiveDateTime::new(day, time)));
    }
    let day = date(value, now.date_naive())?;
    let end = NaiveTime::from_hms_opt(23, 59, 0).unwrap_or_default();
    Ok(Utc.from_utc_datetime(&NaiveDateTime::new(day, end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("  Ann   Lee ", "name", 300).unwrap(), "Ann Lee");
        assert_eq!(name("אנה לי 😀", "name", 300).unwrap(), "אנה לי 😀");
        assert!(name("   ", "name", 300).is_err());
        assert!(name(&"x".repeat(301), "name", 300).unwrap_err().contains("301"));
    }

    #[test]
    fn emails_follow_the_database_rule() {
        assert_eq!(email(" ann@example.com ").unwrap(), "ann@example.com");
        for bad in ["ann", "ann@", "@x.io", "a b@x.io", "ann@x", "a@b@c.io", "😀@x"] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn phones_need_digits() {
        assert!(phone("+1 (555) 010-2030").is_ok());
        assert!(phone("call me").is_err());
        assert!(phone("123").is_err());
    }

    #[test]
    fn money_is_exact() {
        assert_eq!(money("1500", "USD").unwrap(), (150_000, "USD".into()));
        assert_eq!(money("1 500.5 eur", "USD").unwrap(), (150_050, "EUR".into()));
        assert_eq!(money("$1,000.99", "EUR").unwrap(), (100_099, "USD".into()));
        assert!(money("-5", "USD").is_err());
        assert!(money("1.999", "USD").is_err());
        assert!(money("lots", "USD").is_err());
        assert!(money("99999999999999999999", "USD").is_err());
    }

    #[test]
    fn dates_and_due_times() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        assert_eq!(date("tomorrow", today).unwrap(), NaiveDate::from_ymd_opt(2026, 11, 27).unwrap());
        assert_eq!(date("+5", today).unwrap(), NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());
        assert!(date("2026-13-01", today).is_err());
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).unwrap();
        assert_eq!(due("2026-12-01 09:30", now).unwrap(), Utc.with_ymd_and_hms(2026, 12, 1, 9, 30, 0).unwrap());
        assert_eq!(due("today", now).unwrap(), Utc.with_ymd_and_hms(2026, 11, 26, 23, 59, 0).unwrap());
        assert!(due("someday", now).is_err());
    }
}
