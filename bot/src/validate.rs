//! Checking one dialogue answer at a time. Each parser returns the value to store or a
//! message that tells the user what a good answer looks like; none of them panics on any
//! input (emoji, right-to-left text, 4096-character pastes).
//!
//! Whether a stored field's value is acceptable is decided by `crm_concepts::fields`, the
//! rules the store applies: the bot tidies the answer (trimming, collapsing blank space)
//! and phrases the refusal, but never accepts what the store would refuse or the reverse.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use crm_concepts::money::{Locale, MoneyError};
use crm_concepts::{fields, local_time};

use crate::t;
use crate::texts::Language;

/// The answer that leaves an optional field empty.
pub fn is_skip(answer: &str) -> bool {
    matches!(answer.trim(), "-" | "—" | "–" | "skip" | "/skip")
}

/// A required one-line name or title of at most `max` characters, its blank space
/// collapsed to single spaces.
pub fn name(answer: &str, what: &str, max: usize, lang: Language) -> Result<String, String> {
    let value = answer.split_whitespace().collect::<Vec<_>>().join(" ");
    fields::text(what, &value, max).map_err(|_| {
        let len = value.chars().count();
        if value.is_empty() {
            t!(lang, "invalid-name-empty", what = what)
        } else if len > max {
            t!(lang, "invalid-name-long", what = what, len = len, max = max)
        } else {
            t!(lang, "invalid-name-nul", what = what)
        }
    })?;
    Ok(value)
}

/// A free text body (notes): kept verbatim apart from surrounding blank space.
pub fn body(answer: &str, max: usize, lang: Language) -> Result<String, String> {
    let value = answer.trim();
    fields::text("body", value, max).map_err(|_| {
        let len = value.chars().count();
        if value.is_empty() {
            t!(lang, "invalid-body-empty")
        } else if len > max {
            t!(lang, "invalid-body-long", len = len, max = max)
        } else {
            t!(lang, "invalid-body-nul")
        }
    })?;
    Ok(value.to_string())
}

/// An email address as the store accepts it: something@something.tld, no spaces.
pub fn email(answer: &str, lang: Language) -> Result<String, String> {
    let value = answer.trim();
    fields::email("email", Some(value)).map_err(|_| {
        let len = value.chars().count();
        if len > fields::MAX_EMAIL {
            t!(lang, "invalid-email-long", len = len, max = fields::MAX_EMAIL)
        } else {
            t!(lang, "invalid-email", text = crate::text::ellipsize(value, 60))
        }
    })?;
    Ok(value.to_string())
}

/// A phone number as the store accepts it: digits with the usual decorations.
pub fn phone(answer: &str, lang: Language) -> Result<String, String> {
    let value = answer.trim();
    fields::phone("phone", Some(value)).map_err(|_| t!(lang, "invalid-phone", max = fields::MAX_PHONE))?;
    Ok(value.to_string())
}

/// A website's domain (`acme.com`); a pasted address (`https://www.acme.com/about`) is cut
/// down to its host.
pub fn domain(answer: &str, lang: Language) -> Result<String, String> {
    let value = answer.trim().to_lowercase();
    let value = value.strip_prefix("https://").or_else(|| value.strip_prefix("http://")).unwrap_or(&value);
    let host = value.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.strip_prefix("www.").unwrap_or(host);
    let valid = host.contains('.')
        && !host.starts_with('.')
        && !host.ends_with('.')
        && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if !valid || fields::optional_text("domain", Some(host), fields::MAX_DOMAIN).is_err() {
        return Err(t!(lang, "invalid-domain"));
    }
    Ok(host.to_string())
}

/// An amount of money (`1500`, `1 500.50`, `1,500.50 EUR`, `$99`), read by the CRM's one
/// parser; why it is not one is said in `lang`.
pub fn money(answer: &str, default_currency: &str, locale: Locale, lang: Language) -> Result<(i64, String), String> {
    crm_concepts::money::parse_in(answer, default_currency, locale).map_err(|e| money_error(&e, lang))
}

/// Why a typed amount is not one, in `lang`.
pub fn money_error(e: &MoneyError, lang: Language) -> String {
    match e {
        MoneyError::NotAnAmount => t!(lang, "invalid-money"),
        MoneyError::UnknownCurrency(code) => t!(lang, "invalid-money-currency", code = code.as_str()),
        MoneyError::UnknownDefault(code) => t!(lang, "invalid-money-default-currency", code = code.as_str()),
        MoneyError::Negative => t!(lang, "invalid-money-negative"),
        MoneyError::NoMinorUnit(code) => t!(lang, "invalid-money-whole", code = code.as_str()),
        MoneyError::TooManyDecimals { code, decimals } => {
            t!(lang, "invalid-money-decimals", code = code.as_str(), decimals = *decimals)
        }
        MoneyError::TooLarge => t!(lang, "invalid-money-too-large"),
    }
}

/// A date: `today`, `tomorrow`, `+3` (days), `2026-12-01`.
pub fn date(answer: &str, today: NaiveDate, lang: Language) -> Result<NaiveDate, String> {
    let value = answer.trim().to_lowercase();
    let bad = || t!(lang, "invalid-date");
    // The English words work in every language, so a habit or a pasted example still does.
    if value == "today" || value == t!(lang, "word-today") {
        return Ok(today);
    }
    if value == "tomorrow" || value == t!(lang, "word-tomorrow") {
        return Ok(today + Duration::days(1));
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

/// A due time typed in the user's `zone`: a date (due at the end of that day) or
/// `date HH:MM`. `today` is the user's today.
pub fn due(answer: &str, today: NaiveDate, zone: Tz, lang: Language) -> Result<DateTime<Utc>, String> {
    let value = answer.trim();
    if let Some((d, t)) = value.rsplit_once(' ')
        && let Ok(time) = NaiveTime::parse_from_str(t, "%H:%M")
    {
        let day = date(d, today, lang)?;
        return Ok(local_time::instant(zone, NaiveDateTime::new(day, time)));
    }
    let day = date(value, today, lang)?;
    let end = NaiveTime::from_hms_opt(23, 59, 0).unwrap_or_default();
    Ok(local_time::instant(zone, NaiveDateTime::new(day, end)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const EN: Language = Language::En;

    /// What the bot accepts is what the store accepts, for the value the bot would send.
    fn agrees_with_the_store(
        bot: fn(&str, Language) -> Result<String, String>,
        store: fn(&str, Option<&str>) -> Result<(), fields::FieldError>,
        inputs: &[&str],
    ) {
        for input in inputs {
            match bot(input, EN) {
                Ok(sent) => assert!(store("f", Some(&sent)).is_ok(), "bot accepts {input:?}, store refuses"),
                Err(_) => assert!(store("f", Some(input.trim())).is_err(), "bot refuses {input:?}, store accepts"),
            }
        }
    }

    #[test]
    fn names_are_collapsed_and_bounded() {
        assert_eq!(name("  Ann   Lee ", "name", fields::MAX_NAME, EN).unwrap(), "Ann Lee");
        assert_eq!(name("Ann\t\nLee", "name", fields::MAX_NAME, EN).unwrap(), "Ann Lee");
        assert_eq!(name("אנה לי 😀", "name", fields::MAX_NAME, EN).unwrap(), "אנה לי 😀");
        assert!(name("   ", "name", fields::MAX_NAME, EN).unwrap_err().contains("cannot be empty"));
        assert!(name(&"x".repeat(300), "name", fields::MAX_NAME, EN).is_ok());
        assert!(name(&"x".repeat(301), "name", fields::MAX_NAME, EN).unwrap_err().contains("301"));
        // The store cannot hold NUL; the old bot rule let it through.
        assert!(name("Ann\0Lee", "name", fields::MAX_NAME, EN).unwrap_err().contains("NUL"));
    }

    #[test]
    fn bodies_keep_their_lines() {
        assert_eq!(
            body("\n Called.\n\nWants a demo. \n", fields::MAX_NOTE_BODY, EN).unwrap(),
            "Called.\n\nWants a demo."
        );
        assert!(body(" \n ", fields::MAX_NOTE_BODY, EN).is_err());
        assert!(body(&"x".repeat(fields::MAX_NOTE_BODY + 1), fields::MAX_NOTE_BODY, EN).unwrap_err().contains("20001"));
        assert!(body("a\0b", fields::MAX_NOTE_BODY, EN).unwrap_err().contains("NUL"));
    }

    #[test]
    fn emails_follow_the_store_rule() {
        assert_eq!(email(" ann@example.com ", EN).unwrap(), "ann@example.com");
        assert!(email("o'brien+tag@mail.example.com", EN).is_ok());
        for bad in ["ann", "ann@", "@x.io", "a b@x.io", "ann@x", "ann@x.", "a@b@c.io", "😀@x", "a\0@x.io"] {
            assert!(email(bad, EN).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_may_be_up_to_320_characters() {
        let of_len = |n: usize| format!("{}@example.com", "a".repeat(n - "@example.com".len()));
        // The old bot rule stopped at 254; the store's limit is the one limit.
        assert!(email(&of_len(255), EN).is_ok());
        assert!(email(&of_len(fields::MAX_EMAIL), EN).is_ok());
        assert!(email(&of_len(fields::MAX_EMAIL + 1), EN).unwrap_err().contains("321 characters"));
    }

    #[test]
    fn phones_need_a_digit_and_at_most_40_characters() {
        assert_eq!(phone(" +1 (555) 010-2030 ", EN).unwrap(), "+1 (555) 010-2030");
        assert!(phone("1.555.010.2030", EN).is_ok());
        // Short codes and long numbers the old bot refused (it wanted 5 to 20 digits).
        assert!(phone("112", EN).is_ok());
        assert!(phone("7", EN).is_ok());
        assert!(phone(&"1".repeat(25), EN).is_ok());
        assert!(phone(&"1".repeat(fields::MAX_PHONE), EN).is_ok());
        assert!(phone(&"1".repeat(fields::MAX_PHONE + 1), EN).is_err());
        for bad in ["call me", "+() -", "555\t0102", "١٢٣٤٥", "555 0102 ext 3"] {
            assert!(phone(bad, EN).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_bot_and_the_store_agree() {
        let emails = ["ann@x.io", " ann@x.io\n", "ann@x", "a@b@c.io", "a\u{a0}b@x.io", "a\0@x.io", ""];
        let long_email = format!("{}@x.io", "a".repeat(316));
        let longer_email = format!("{}@x.io", "a".repeat(317));
        agrees_with_the_store(email, fields::email, &emails);
        agrees_with_the_store(email, fields::email, &[&long_email, &longer_email]);
        let phones = ["1", " 112 ", "+1 (555) 010-2030", "+", "", "555\u{a0}0102", "1234567890123456789012345"];
        let long_phone = "1".repeat(fields::MAX_PHONE + 1);
        agrees_with_the_store(phone, fields::phone, &phones);
        agrees_with_the_store(phone, fields::phone, &[&long_phone]);
    }

    #[test]
    fn dates_and_due_times() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        assert_eq!(date("tomorrow", today, EN).unwrap(), NaiveDate::from_ymd_opt(2026, 11, 27).unwrap());
        assert_eq!(date("+5", today, EN).unwrap(), NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());
        assert!(date("2026-13-01", today, EN).is_err());
        assert_eq!(
            due("2026-12-01 09:30", today, Tz::UTC, EN).unwrap(),
            Utc.with_ymd_and_hms(2026, 12, 1, 9, 30, 0).unwrap()
        );
        assert_eq!(due("today", today, Tz::UTC, EN).unwrap(), Utc.with_ymd_and_hms(2026, 11, 26, 23, 59, 0).unwrap());
        assert!(due("someday", today, Tz::UTC, EN).is_err());
    }

    #[test]
    fn due_times_are_typed_in_the_users_zone() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let tokyo = chrono_tz::Asia::Tokyo;
        // 09:30 in Tokyo (UTC+9) is 00:30 UTC; the end of the day there is 14:59 UTC.
        assert_eq!(
            due("tomorrow 09:30", today, tokyo, EN).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 27, 0, 30, 0).unwrap()
        );
        assert_eq!(due("today", today, tokyo, EN).unwrap(), Utc.with_ymd_and_hms(2026, 11, 26, 14, 59, 0).unwrap());
    }
}
