//! Typed custom fields: an admin defines, per kind of record, a key with a type, a label,
//! whether it is required and (for a choice) its choices. Every write of a record's
//! `custom` object is checked against the definitions of its kind; a key nobody defined
//! stays free-form JSON, so values written before any definition keep working.
//!
//! Values are stored as JSON in the record's `custom` object: text and choice as strings,
//! numbers as numbers, yes/no as booleans, dates as `YYYY-MM-DD`, money as
//! `{"amount_minor": 150050, "currency": "EUR"}` (exact minor units, as deals carry them).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::fields::{Checked, FieldError};
use crate::money;
use crate::records::{Id, RecordKind};

pub const MAX_LABEL: usize = 100;
pub const MAX_KEY: usize = 63;
pub const MAX_CHOICES: usize = 50;
pub const MAX_CHOICE: usize = 100;
pub const MAX_TEXT: usize = 2_000;

/// The kinds of record that carry custom fields.
pub const KINDS: [RecordKind; 4] = [RecordKind::Contact, RecordKind::Company, RecordKind::Deal, RecordKind::Task];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    Number,
    Money,
    Date,
    Choice,
    YesNo,
}

impl FieldType {
    pub const ALL: [FieldType; 6] =
        [FieldType::Text, FieldType::Number, FieldType::Money, FieldType::Date, FieldType::Choice, FieldType::YesNo];

    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::Number => "number",
            FieldType::Money => "money",
            FieldType::Date => "date",
            FieldType::Choice => "choice",
            FieldType::YesNo => "yes_no",
        }
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FieldType {
    type Err = String;
    /// `yes-no` and `yesno` are read as `yes_no`.
    fn from_str(s: &str) -> Result<FieldType, String> {
        let s = s.trim().to_ascii_lowercase().replace('-', "_");
        let s = if s == "yesno" || s == "bool" || s == "boolean" { "yes_no".to_string() } else { s };
        FieldType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown field type {s:?}: expected text, number, money, date, choice or yes_no"))
    }
}

/// One defined custom field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldDefinition {
    pub id: Id,
    /// contact, company, deal or task
    pub kind: RecordKind,
    /// the key in the record's `custom` object
    pub key: String,
    pub label: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    pub required: bool,
    /// the allowed values of a choice field, in the order they are offered
    pub choices: Vec<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFieldDefinition {
    pub kind: RecordKind,
    pub key: String,
    pub label: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub choices: Vec<String>,
}

impl Checked for NewFieldDefinition {
    fn check(&self) -> Result<(), FieldError> {
        if !KINDS.contains(&self.kind) {
            return Err(FieldError::new("kind", "custom fields belong to a contact, company, deal or task"));
        }
        let key_ok = self.key.len() <= MAX_KEY
            && self.key.starts_with(|c: char| c.is_ascii_lowercase())
            && self.key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !key_ok {
            return Err(FieldError::new(
                "key",
                format!("must be 1 to {MAX_KEY} of a-z, 0-9 and _, starting with a letter (e.g. lead_source)"),
            ));
        }
        crate::fields::text("label", &self.label, MAX_LABEL)?;
        match (self.field_type, self.choices.is_empty()) {
            (FieldType::Choice, true) => return Err(FieldError::new("choices", "a choice field needs its choices")),
            (FieldType::Choice, false) => {}
            (_, false) => return Err(FieldError::new("choices", "only a choice field has choices")),
            (_, true) => {}
        }
        if self.choices.len() > MAX_CHOICES {
            return Err(FieldError::new("choices", format!("at most {MAX_CHOICES} choices")));
        }
        for (i, c) in self.choices.iter().enumerate() {
            crate::fields::text("choices", c, MAX_CHOICE)?;
            if c.trim() != c {
                return Err(FieldError::new("choices", format!("{c:?} has spaces around it")));
            }
            if self.choices[..i].contains(c) {
                return Err(FieldError::new("choices", format!("{c:?} is given twice")));
            }
        }
        Ok(())
    }
}

/// A change to a definition: its label, whether it is required, a choice field's choices;
/// what is left out stays. The type cannot change, since every stored value would have to
/// be rewritten: remove the field and add it again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldDefinitionChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    /// the whole new list of a choice field's choices, in the order they are offered
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<String>>,
    /// may only repeat the field's type: a different one is refused
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub field_type: Option<FieldType>,
}

/// `custom.lead_source`: how an error names a custom field.
pub fn path(key: &str) -> String {
    format!("custom.{key}")
}

impl FieldDefinition {
    /// The definition as `change` leaves it, checked like a new one. A different type is
    /// refused with the way to get one.
    pub fn changed(&self, change: &FieldDefinitionChange) -> Result<FieldDefinition, FieldError> {
        if let Some(t) = change.field_type.filter(|t| *t != self.field_type) {
            return Err(FieldError::new(
                "type",
                format!(
                    "the type of a field cannot change ({} is {}, not {t}): remove the field and add it again \
                     with the new type (records keep their values, free-form until they fit)",
                    self.key, self.field_type
                ),
            ));
        }
        let new = NewFieldDefinition {
            kind: self.kind,
            key: self.key.clone(),
            label: change.label.as_deref().map_or_else(|| self.label.clone(), |l| l.trim().to_string()),
            field_type: self.field_type,
            required: change.required.unwrap_or(self.required),
            choices: change.choices.clone().unwrap_or_else(|| self.choices.clone()),
        };
        new.check()?;
        Ok(FieldDefinition { label: new.label, required: new.required, choices: new.choices, ..self.clone() })
    }

    /// The value as it is stored, or why it cannot be: a value of the wrong type, a choice
    /// that is not offered. Money may come as an object or as text (`1 500,50 EUR`; no
    /// currency means USD).
    pub fn check_value(&self, value: &Value) -> Result<Value, FieldError> {
        let wrong = |what: &str| FieldError::new(path(&self.key), format!("{} must be {what}", self.label));
        match (self.field_type, value) {
            (FieldType::Text, Value::String(s)) => {
                crate::fields::text(&path(&self.key), s, MAX_TEXT)?;
                Ok(value.clone())
            }
            (FieldType::Text, _) => Err(wrong("text")),
            (FieldType::Number, Value::Number(_)) => Ok(value.clone()),
            (FieldType::Number, _) => Err(wrong("a number, e.g. 42 or 3.5")),
            (FieldType::YesNo, Value::Bool(_)) => Ok(value.clone()),
            (FieldType::YesNo, _) => Err(wrong("true or false")),
            (FieldType::Date, Value::String(s)) if NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() => {
                Ok(value.clone())
            }
            (FieldType::Date, _) => Err(wrong("a date such as 2026-12-01")),
            (FieldType::Choice, Value::String(s)) if self.choices.contains(s) => Ok(value.clone()),
            (FieldType::Choice, _) => Err(wrong(&format!("one of {}", self.choices.join(", ")))),
            (FieldType::Money, Value::String(s)) => {
                let (minor, currency) = money::parse(s, "USD")
                    .map_err(|e| FieldError::new(path(&self.key), format!("{}: {e}", self.label)))?;
                Ok(money_value(minor, &currency))
            }
            (FieldType::Money, Value::Object(m)) => {
                let minor = m.get("amount_minor").and_then(Value::as_i64);
                let currency = m.get("currency").and_then(Value::as_str);
                match (minor, currency, m.len()) {
                    (Some(minor), Some(code), 2) if minor >= 0 => {
                        crate::fields::currency(&path(&self.key), code)?;
                        Ok(money_value(minor, code))
                    }
                    _ => Err(wrong("money: {\"amount_minor\": 150050, \"currency\": \"EUR\"} or \"1500.50 EUR\"")),
                }
            }
            (FieldType::Money, _) => {
                Err(wrong("money: {\"amount_minor\": 150050, \"currency\": \"EUR\"} or \"1500.50 EUR\""))
            }
        }
    }

    /// A value as a person typed it (a chat answer, a CSV cell, a list filter), in the
    /// stored form. Money without a currency is in `default_currency`.
    pub fn parse_text(&self, text: &str, locale: money::Locale, default_currency: &str) -> Result<Value, FieldError> {
        let text = text.trim();
        let bad = |what: &str| FieldError::new(path(&self.key), format!("{} must be {what}", self.label));
        let value = match self.field_type {
            FieldType::Text | FieldType::Date | FieldType::Choice => json!(text),
            FieldType::Number => {
                let normal = match locale {
                    money::Locale::DecimalComma => text.replace(',', "."),
                    money::Locale::DecimalPoint => text.to_string(),
                };
                let n: f64 = normal.parse().map_err(|_| bad("a number, e.g. 42 or 3.5"))?;
                match serde_json::Number::from_f64(n) {
                    Some(_) if n.fract() == 0.0 && n.abs() < 9e15 => json!(n as i64),
                    Some(num) => Value::Number(num),
                    None => return Err(bad("a number, e.g. 42 or 3.5")),
                }
            }
            FieldType::YesNo => match text.to_lowercase().as_str() {
                "yes" | "y" | "true" | "1" | "да" => json!(true),
                "no" | "n" | "false" | "0" | "нет" => json!(false),
                _ => return Err(bad("yes or no")),
            },
            FieldType::Money => {
                let (minor, currency) = money::parse_in(text, default_currency, locale)
                    .map_err(|e| FieldError::new(path(&self.key), format!("{}: {e}", self.label)))?;
                money_value(minor, &currency)
            }
        };
        self.check_value(&value)
    }

    /// The value as a card shows it: `1,500.00 EUR`, `yes`, `gold`.
    pub fn display(&self, value: &Value) -> String {
        match (self.field_type, value) {
            (FieldType::YesNo, Value::Bool(b)) => if *b { "yes" } else { "no" }.to_string(),
            (FieldType::Money, Value::Object(m)) => {
                match (m.get("amount_minor").and_then(Value::as_i64), m.get("currency").and_then(Value::as_str)) {
                    (Some(minor), Some(code)) => money::format(minor, code),
                    _ => display(value),
                }
            }
            _ => display(value),
        }
    }

    /// The value as a CSV cell, the way [`FieldDefinition::parse_text`] reads it back:
    /// money as `1500.50 EUR`, yes/no as `yes` or `no`.
    pub fn cell(&self, value: &Value) -> String {
        match (self.field_type, value) {
            (FieldType::Money, Value::Object(m)) => {
                match (m.get("amount_minor").and_then(Value::as_i64), m.get("currency").and_then(Value::as_str)) {
                    (Some(minor), Some(code)) => format!("{} {code}", money::plain(minor, code)),
                    _ => display(value),
                }
            }
            _ => self.display(value),
        }
    }
}

fn money_value(minor: i64, currency: &str) -> Value {
    json!({"amount_minor": minor, "currency": currency})
}

/// Any JSON value as one line of text: strings without quotes, `null` as nothing.
pub fn display(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
        other => other.to_string(),
    }
}

/// Checks a record's whole `custom` object against its kind's definitions and puts each
/// defined value in its stored form. A defined key set to `null` is removed (the field is
/// cleared); a required field that is missing is refused. Keys without a definition are
/// left as they are.
pub fn check_custom(definitions: &[FieldDefinition], custom: &mut Map<String, Value>) -> Result<(), FieldError> {
    for def in definitions {
        match custom.get(&def.key) {
            None | Some(Value::Null) => {
                custom.remove(&def.key);
                if def.required {
                    return Err(FieldError::new(path(&def.key), format!("{} is required", def.label)));
                }
            }
            Some(v) => {
                let stored = def.check_value(v)?;
                custom.insert(def.key.clone(), stored);
            }
        }
    }
    Ok(())
}

/// A list filter on a custom field: `?field.KEY=VALUE` in the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldMatch {
    pub key: String,
    /// as typed; read with the field's definition when it has one
    pub value: String,
}

/// The prefix of a list query parameter that filters on a custom field.
pub const FILTER_PREFIX: &str = "field.";

#[cfg(test)]
mod tests {
    use super::*;

    fn def(field_type: FieldType, choices: &[&str]) -> FieldDefinition {
        FieldDefinition {
            id: 1,
            kind: RecordKind::Contact,
            key: "k".into(),
            label: "K".into(),
            field_type,
            required: false,
            choices: choices.iter().map(|c| c.to_string()).collect(),
            created_at: Utc::now(),
        }
    }

    #[test]
    fn values_are_checked_by_type() {
        assert!(def(FieldType::Number, &[]).check_value(&json!("5")).is_err());
        assert_eq!(def(FieldType::Number, &[]).check_value(&json!(5)).unwrap(), json!(5));
        let tier = def(FieldType::Choice, &["gold", "silver"]);
        assert!(tier.check_value(&json!("bronze")).unwrap_err().message.contains("one of gold, silver"));
        assert_eq!(
            def(FieldType::Money, &[]).check_value(&json!("1 500.50 EUR")).unwrap(),
            json!({"amount_minor": 150_050, "currency": "EUR"})
        );
        assert!(def(FieldType::Money, &[]).check_value(&json!({"amount_minor": 1})).is_err());
        assert!(def(FieldType::Date, &[]).check_value(&json!("2026-02-30")).is_err());
        assert!(def(FieldType::YesNo, &[]).check_value(&json!("yes")).is_err());
    }

    #[test]
    fn text_is_read_by_type() {
        let comma = money::Locale::DecimalComma;
        assert_eq!(def(FieldType::Number, &[]).parse_text("3,5", comma, "EUR").unwrap(), json!(3.5));
        assert_eq!(def(FieldType::Number, &[]).parse_text("42", comma, "EUR").unwrap(), json!(42));
        assert_eq!(def(FieldType::YesNo, &[]).parse_text("Yes", comma, "EUR").unwrap(), json!(true));
        assert_eq!(
            def(FieldType::Money, &[]).parse_text("1 500,50", comma, "EUR").unwrap(),
            json!({"amount_minor": 150_050, "currency": "EUR"})
        );
        let money = def(FieldType::Money, &[]);
        let v = money.parse_text("¥1500", comma, "EUR").unwrap();
        assert_eq!(money.display(&v), "1,500 JPY");
        assert_eq!(money.parse_text(&money.cell(&v), comma, "EUR").unwrap(), v);
    }

    #[test]
    fn required_and_free_form_keys() {
        let mut tier = def(FieldType::Choice, &["gold"]);
        tier.required = true;
        let mut custom = Map::new();
        custom.insert("source".into(), json!({"any": ["json"]}));
        assert!(check_custom(std::slice::from_ref(&tier), &mut custom).unwrap_err().message.contains("K is required"));
        custom.insert("k".into(), json!("gold"));
        assert!(check_custom(&[tier], &mut custom).is_ok());
        assert_eq!(custom["source"], json!({"any": ["json"]}));
    }

    #[test]
    fn a_change_keeps_what_it_leaves_out_and_never_the_type() {
        let tier = def(FieldType::Choice, &["gold", "silver"]);
        let relabelled =
            tier.changed(&FieldDefinitionChange { label: Some(" Level ".into()), ..Default::default() }).unwrap();
        assert_eq!((relabelled.label.as_str(), &relabelled.choices), ("Level", &tier.choices));
        let retyped = FieldDefinitionChange { field_type: Some(FieldType::Text), ..Default::default() };
        let err = tier.changed(&retyped).unwrap_err();
        assert_eq!(err.field, "type");
        assert!(err.message.contains("remove the field and add it again"), "{}", err.message);
        let same =
            FieldDefinitionChange { field_type: Some(FieldType::Choice), required: Some(true), ..Default::default() };
        assert!(tier.changed(&same).unwrap().required);
        let none = FieldDefinitionChange { choices: Some(Vec::new()), ..Default::default() };
        assert_eq!(tier.changed(&none).unwrap_err().field, "choices");
        let text_choices = FieldDefinitionChange { choices: Some(vec!["a".into()]), ..Default::default() };
        assert_eq!(def(FieldType::Text, &[]).changed(&text_choices).unwrap_err().field, "choices");
    }

    #[test]
    fn definitions_are_checked() {
        let new = |key: &str, t: FieldType, choices: &[&str]| NewFieldDefinition {
            kind: RecordKind::Deal,
            key: key.into(),
            label: "L".into(),
            field_type: t,
            required: false,
            choices: choices.iter().map(|c| c.to_string()).collect(),
        };
        assert!(new("lead_source", FieldType::Text, &[]).check().is_ok());
        assert_eq!(new("Lead Source", FieldType::Text, &[]).check().unwrap_err().field, "key");
        assert_eq!(new("tier", FieldType::Choice, &[]).check().unwrap_err().field, "choices");
        assert_eq!(new("tier", FieldType::Choice, &["a", "a"]).check().unwrap_err().field, "choices");
        assert!(new("x", FieldType::Text, &[]).check().is_ok());
        let mut note = new("x", FieldType::Text, &[]);
        note.kind = RecordKind::Note;
        assert_eq!(note.check().unwrap_err().field, "kind");
        assert_eq!("yes-no".parse::<FieldType>().unwrap(), FieldType::YesNo);
    }
}
