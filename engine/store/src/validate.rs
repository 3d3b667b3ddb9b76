//! Input rules checked before any SQL runs, so a caller gets a message naming the field.
//! The database re-checks the same rules with constraints; these only make the answer clear.

use crate::error::StoreError;

pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_LEN: usize = 100;

/// A required human text (name, title): not blank, at most `max` characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<(), StoreError> {
    if value.trim().is_empty() {
        return Err(StoreError::validation(field, "must not be blank"));
    }
    if value.chars().count() > max {
        return Err(StoreError::validation(field, format!("must be at most {max} characters")));
    }
    if value.contains('\0') {
        return Err(StoreError::validation(field, "must not contain NUL characters"));
    }
    Ok(())
}

/// An optional short text (domain, phone): when present, not blank and at most `max`.
pub fn optional_text(field: &str, value: Option<&str>, max: usize) -> Result<(), StoreError> {
    match value {
        Some(v) => text(field, v, max),
        None => Ok(()),
    }
}

/// The same rule as the `email` CHECK constraint: something@something.something, no spaces.
pub fn email(field: &str, value: Option<&str>) -> Result<(), StoreError> {
    let Some(v) = value else { return Ok(()) };
    let invalid = || StoreError::validation(field, "not a valid email address");
    if v.chars().count() > 320 || v.chars().any(|c| c.is_whitespace() || c == '\0') {
        return Err(invalid());
    }
    let Some((local, domain)) = v.split_once('@') else {
        return Err(invalid());
    };
    if local.is_empty() || domain.contains('@') {
        return Err(invalid());
    }
    match domain.rsplit_once('.') {
        Some((host, tld)) if !host.is_empty() && !tld.is_empty() => Ok(()),
        _ => Err(invalid()),
    }
}

pub fn phone(field: &str, value: Option<&str>) -> Result<(), StoreError> {
    let Some(v) = value else { return Ok(()) };
    let ok_char = |c: char| c.is_ascii_digit() || " +-().".contains(c);
    if v.is_empty() || v.len() > 40 || !v.chars().all(ok_char) || !v.chars().any(|c| c.is_ascii_digit()) {
        return Err(StoreError::validation(field, "not a valid phone number (digits, spaces and + - ( ) . only)"));
    }
    Ok(())
}

pub fn tags(field: &str, tags: &[String]) -> Result<(), StoreError> {
    if tags.len() > MAX_TAGS {
        return Err(StoreError::validation(field, format!("at most {MAX_TAGS} tags")));
    }
    for t in tags {
        if t.trim().is_empty() || t.chars().count() > MAX_TAG_LEN || t.contains('\0') {
            return Err(StoreError::validation(
                field,
                format!("each tag must be 1 to {MAX_TAG_LEN} characters and not blank"),
            ));
        }
    }
    Ok(())
}

pub fn amount(field: &str, amount_minor: i64) -> Result<(), StoreError> {
    if amount_minor < 0 {
        return Err(StoreError::validation(field, "must not be negative"));
    }
    Ok(())
}

pub fn currency(field: &str, code: &str) -> Result<(), StoreError> {
    if code.len() == 3 && code.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(StoreError::validation(field, "must be a three-letter ISO 4217 code such as USD"))
    }
}

/// Custom fields are stored as JSONB: keep a single record's blob bounded.
pub fn custom(field: &str, custom: &serde_json::Map<String, serde_json::Value>) -> Result<(), StoreError> {
    let size = serde_json::to_string(custom).map(|s| s.len()).unwrap_or(usize::MAX);
    if size > 64 * 1024 {
        return Err(StoreError::validation(field, "custom fields must be at most 64 KiB of JSON"));
    }
    if contains_nul(&serde_json::Value::Object(custom.clone())) {
        return Err(StoreError::validation(field, "must not contain NUL characters"));
    }
    Ok(())
}

/// Postgres JSONB and TEXT cannot hold U+0000.
fn contains_nul(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(a) => a.iter().any(contains_nul),
        serde_json::Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(email("email", Some("ann@x.io")).is_ok());
        assert!(email("email", Some("o'brien+tag@mail.example.com")).is_ok());
        for bad in ["ann", "ann@", "@x.io", "ann@x", "a b@x.io", "ann@x.", "a@b@c.io"] {
            assert!(email("email", Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn phones_and_money() {
        assert!(phone("phone", Some("+1 (555) 010-2030")).is_ok());
        assert!(phone("phone", Some("call me")).is_err());
        assert!(amount("amount_minor", -1).is_err());
        assert!(currency("currency", "usd").is_err());
        assert!(currency("currency", "EUR").is_ok());
    }
}
