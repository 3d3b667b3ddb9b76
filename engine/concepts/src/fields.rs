//! The rules a record's fields obey, written once. The store checks them before any SQL
//! runs (Postgres re-checks the same rules with constraints, so these only make the answer
//! name the field), the bot checks each dialogue answer with them, and the in-memory CRM
//! behind `crm component run` applies them to fixture writes.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::records::{
    CompanyPatch, ContactPatch, DealPatch, NewCompany, NewContact, NewDeal, NewNote, NewTask, NotePatch, TaskPatch,
};

/// One problem with an input, located by a field path such as `email` or `steps[2].needs[0]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError { field: field.into(), message: message.into() }
    }
}

pub const MAX_NAME: usize = 300;
pub const MAX_DOMAIN: usize = 253;
pub const MAX_NOTE_BODY: usize = 20_000;
pub const MAX_EMAIL: usize = 320;
pub const MAX_PHONE: usize = 40;
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_LEN: usize = 100;
pub const TASK_LINKS: &str = "a task links to at most one record: give only one of contact_id, company_id, deal_id";
pub const NOTE_LINKS: &str =
    "a note belongs to exactly one record: give one of contact_id, company_id, deal_id, task_id";
/// Custom fields are stored as JSONB: keep a single record's blob bounded.
pub const MAX_CUSTOM_BYTES: usize = 64 * 1024;

/// A required human text (name, title, body): not blank, at most `max` characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<(), FieldError> {
    if value.trim().is_empty() {
        return Err(FieldError::new(field, "must not be blank"));
    }
    if value.chars().count() > max {
        return Err(FieldError::new(field, format!("must be at most {max} characters")));
    }
    if value.contains('\0') {
        return Err(FieldError::new(field, "must not contain NUL characters"));
    }
    Ok(())
}

/// An optional short text (domain): when present, not blank and at most `max`.
pub fn optional_text(field: &str, value: Option<&str>, max: usize) -> Result<(), FieldError> {
    value.map_or(Ok(()), |v| text(field, v, max))
}

/// The rule of the `email` CHECK constraint: something@something.something, no spaces.
pub fn email(field: &str, value: Option<&str>) -> Result<(), FieldError> {
    let Some(v) = value else { return Ok(()) };
    let invalid = || FieldError::new(field, "not a valid email address");
    if v.chars().count() > MAX_EMAIL || v.chars().any(|c| c.is_whitespace() || c == '\0') {
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

/// Digits with the usual decorations (spaces and `+ - ( ) .`), at least one digit.
pub fn phone(field: &str, value: Option<&str>) -> Result<(), FieldError> {
    let Some(v) = value else { return Ok(()) };
    let ok_char = |c: char| c.is_ascii_digit() || " +-().".contains(c);
    if v.is_empty() || v.len() > MAX_PHONE || !v.chars().all(ok_char) || !v.chars().any(|c| c.is_ascii_digit()) {
        return Err(FieldError::new(field, "not a valid phone number (digits, spaces and + - ( ) . only)"));
    }
    Ok(())
}

pub fn tags(field: &str, tags: &[String]) -> Result<(), FieldError> {
    if tags.len() > MAX_TAGS {
        return Err(FieldError::new(field, format!("at most {MAX_TAGS} tags")));
    }
    for t in tags {
        if t.trim().is_empty() || t.chars().count() > MAX_TAG_LEN || t.contains('\0') {
            return Err(FieldError::new(
                field,
                format!("each tag must be 1 to {MAX_TAG_LEN} characters and not blank"),
            ));
        }
    }
    Ok(())
}

pub fn amount(field: &str, amount_minor: i64) -> Result<(), FieldError> {
    if amount_minor < 0 {
        return Err(FieldError::new(field, "must not be negative"));
    }
    Ok(())
}

pub fn currency(field: &str, code: &str) -> Result<(), FieldError> {
    if code.len() == 3 && code.chars().all(|c| c.is_ascii_uppercase()) && crate::money::currency(code).is_some() {
        Ok(())
    } else {
        Err(FieldError::new(field, "must be a three-letter ISO 4217 code such as USD"))
    }
}

pub fn custom(field: &str, custom: &Map<String, Value>) -> Result<(), FieldError> {
    let size = serde_json::to_string(custom).map(|s| s.len()).unwrap_or(usize::MAX);
    if size > MAX_CUSTOM_BYTES {
        return Err(FieldError::new(field, "custom fields must be at most 64 KiB of JSON"));
    }
    if custom.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)) {
        return Err(FieldError::new(field, "must not contain NUL characters"));
    }
    Ok(())
}

/// Postgres JSONB and TEXT cannot hold U+0000.
fn contains_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(contains_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        _ => false,
    }
}

/// An input whose own fields can be checked without looking at other records (whether a
/// referenced company exists is the store's question).
pub trait Checked {
    fn check(&self) -> Result<(), FieldError>;
}

fn each<T>(value: &Option<T>, rule: impl FnOnce(&T) -> Result<(), FieldError>) -> Result<(), FieldError> {
    value.as_ref().map_or(Ok(()), rule)
}

impl Checked for NewContact {
    fn check(&self) -> Result<(), FieldError> {
        text("name", &self.name, MAX_NAME)?;
        email("email", self.email.as_deref())?;
        phone("phone", self.phone.as_deref())?;
        tags("tags", &self.tags)?;
        custom("custom", &self.custom)
    }
}

impl Checked for ContactPatch {
    fn check(&self) -> Result<(), FieldError> {
        each(&self.name, |v| text("name", v, MAX_NAME))?;
        each(&self.email, |v| email("email", v.as_deref()))?;
        each(&self.phone, |v| phone("phone", v.as_deref()))?;
        each(&self.tags, |v| tags("tags", v))?;
        each(&self.custom, |v| custom("custom", v))
    }
}

impl Checked for NewCompany {
    fn check(&self) -> Result<(), FieldError> {
        text("name", &self.name, MAX_NAME)?;
        optional_text("domain", self.domain.as_deref(), MAX_DOMAIN)?;
        phone("phone", self.phone.as_deref())?;
        tags("tags", &self.tags)?;
        custom("custom", &self.custom)
    }
}

impl Checked for CompanyPatch {
    fn check(&self) -> Result<(), FieldError> {
        each(&self.name, |v| text("name", v, MAX_NAME))?;
        each(&self.domain, |v| optional_text("domain", v.as_deref(), MAX_DOMAIN))?;
        each(&self.phone, |v| phone("phone", v.as_deref()))?;
        each(&self.tags, |v| tags("tags", v))?;
        each(&self.custom, |v| custom("custom", v))
    }
}

impl Checked for NewDeal {
    fn check(&self) -> Result<(), FieldError> {
        text("title", &self.title, MAX_NAME)?;
        amount("amount_minor", self.amount_minor)?;
        each(&self.currency, |v| currency("currency", v))?;
        tags("tags", &self.tags)?;
        custom("custom", &self.custom)
    }
}

impl Checked for DealPatch {
    fn check(&self) -> Result<(), FieldError> {
        each(&self.title, |v| text("title", v, MAX_NAME))?;
        each(&self.amount_minor, |v| amount("amount_minor", *v))?;
        each(&self.currency, |v| currency("currency", v))?;
        each(&self.tags, |v| tags("tags", v))?;
        each(&self.custom, |v| custom("custom", v))
    }
}

impl Checked for NewTask {
    fn check(&self) -> Result<(), FieldError> {
        text("title", &self.title, MAX_NAME)?;
        let links = [self.contact_id, self.company_id, self.deal_id].iter().filter(|l| l.is_some()).count();
        if links > 1 {
            return Err(FieldError::new("contact_id", TASK_LINKS));
        }
        custom("custom", &self.custom)
    }
}

impl Checked for TaskPatch {
    fn check(&self) -> Result<(), FieldError> {
        each(&self.title, |v| text("title", v, MAX_NAME))?;
        each(&self.custom, |v| custom("custom", v))
    }
}

impl Checked for NewNote {
    fn check(&self) -> Result<(), FieldError> {
        text("body", &self.body, MAX_NOTE_BODY)?;
        let links =
            [self.contact_id, self.company_id, self.deal_id, self.task_id].iter().filter(|l| l.is_some()).count();
        if links != 1 {
            return Err(FieldError::new("contact_id", NOTE_LINKS));
        }
        Ok(())
    }
}

impl Checked for NotePatch {
    fn check(&self) -> Result<(), FieldError> {
        each(&self.body, |v| text("body", v, MAX_NOTE_BODY))
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

    #[test]
    fn inputs_check_their_own_fields() {
        let e = NewContact { name: " ".into(), ..Default::default() }.check().unwrap_err();
        assert_eq!(e.field, "name");
        let e = ContactPatch { email: Some(Some("nope".into())), ..Default::default() }.check().unwrap_err();
        assert_eq!(e.field, "email");
        assert!(ContactPatch { email: Some(None), ..Default::default() }.check().is_ok());
        let e = NewNote { body: "hi".into(), ..Default::default() }.check().unwrap_err();
        assert!(e.message.contains("exactly one record"), "{e}");
    }
}
