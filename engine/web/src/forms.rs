//! Form fields in and out: turning the text of a posted form into the API's input types
//! (empty means "none"), and rendering fields with the validation message the store gave
//! for them, so a form says exactly what the API would have said.

use std::collections::BTreeMap;

use crm_concepts::records::{CustomFields, Id};
use crm_store::StoreError;
use maud::{Markup, html};

use crate::error::WebError;

/// Validation messages by field name, shown next to the fields.
#[derive(Debug, Clone, Default)]
pub struct Problems(pub BTreeMap<String, String>);

impl Problems {
    pub fn one(field: &str, message: impl Into<String>) -> Problems {
        let mut p = Problems::default();
        p.add(field, message);
        p
    }
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.entry(field.to_string()).or_insert_with(|| message.into());
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    /// A store refusal as a message on its field; anything else stays an error page.
    pub fn from_store(e: StoreError) -> Result<Problems, WebError> {
        match e {
            StoreError::Validation { field, message } => Ok(Problems::one(&field, message)),
            StoreError::Conflict(message) => Ok(Problems::one("record", message)),
            other => Err(other.into()),
        }
    }

    /// Messages for fields the form does not show, in one line above it.
    pub fn summary(&self, shown: &[&str]) -> Markup {
        html! {
            @if !self.is_empty() {
                div.problems role="alert" {
                    p { "Please correct the marked fields." }
                    @for (field, message) in &self.0 {
                        @if !shown.contains(&field.as_str()) { p { (field) ": " (message) } }
                    }
                }
            }
        }
    }
}

/// Trimmed text, or `None` when blank.
pub fn text(value: &Option<String>) -> Option<String> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
}

/// A record id typed or picked in a form.
pub fn id(field: &str, value: &Option<String>, problems: &mut Problems) -> Option<Id> {
    let v = text(value)?;
    match v.trim_start_matches('#').parse::<Id>() {
        Ok(id) if id > 0 => Some(id),
        _ => {
            problems.add(field, "must be the number of a record, e.g. 42");
            None
        }
    }
}

/// Comma-separated tags.
pub fn tags(value: &Option<String>) -> Vec<String> {
    value
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// Custom fields as a JSON object (blank is none).
pub fn custom(value: &Option<String>, problems: &mut Problems) -> CustomFields {
    let Some(text) = text(value) else { return CustomFields::new() };
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(m)) => m,
        Ok(_) => {
            problems.add("custom", "must be a JSON object, e.g. {\"source\": \"fair\"}");
            CustomFields::new()
        }
        Err(e) => {
            problems.add("custom", format!("is not valid JSON: {e}"));
            CustomFields::new()
        }
    }
}

pub fn custom_text(custom: &CustomFields) -> String {
    if custom.is_empty() { String::new() } else { serde_json::to_string_pretty(custom).unwrap_or_default() }
}

/// One labelled input with its message.
pub fn input(label: &str, name: &str, kind: &str, value: &str, problems: &Problems, required: bool) -> Markup {
    let problem = problems.get(name);
    html! {
        div.field.invalid[problem.is_some()] {
            label for=(name) { (label) }
            input id=(name) name=(name) type=(kind) value=(value) required[required]
                aria-invalid=[problem.map(|_| "true")];
            @if let Some(p) = problem { p.field-error { (p) } }
        }
    }
}

pub fn textarea(label: &str, name: &str, value: &str, problems: &Problems, hint: &str) -> Markup {
    let problem = problems.get(name);
    html! {
        div.field.invalid[problem.is_some()] {
            label for=(name) { (label) }
            textarea id=(name) name=(name) rows="4" { (value) }
            @if !hint.is_empty() { p.hint { (hint) } }
            @if let Some(p) = problem { p.field-error { (p) } }
        }
    }
}

/// A `<select>` of `options` (value, label); `blank` adds an empty first choice.
pub fn select(
    label: &str,
    name: &str,
    options: &[(String, String)],
    selected: &str,
    blank: Option<&str>,
    problems: &Problems,
) -> Markup {
    let problem = problems.get(name);
    html! {
        div.field.invalid[problem.is_some()] {
            label for=(name) { (label) }
            select id=(name) name=(name) {
                @if let Some(b) = blank { option value="" { (b) } }
                @for (value, text) in options {
                    option value=(value) selected[value == selected] { (text) }
                }
            }
            @if let Some(p) = problem { p.field-error { (p) } }
        }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf(token: &str) -> Markup {
    html! { input type="hidden" name=(crate::auth::CSRF_FIELD) value=(token); }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_is_none_and_ids_are_checked() {
        let mut p = Problems::default();
        assert_eq!(text(&Some("  ".into())), None);
        assert_eq!(id("company_id", &Some("#42".into()), &mut p), Some(42));
        assert_eq!(id("company_id", &Some("acme".into()), &mut p), None);
        assert!(p.get("company_id").is_some());
        assert_eq!(tags(&Some("vip, ,  lead".into())), vec!["vip", "lead"]);
    }

    #[test]
    fn custom_fields_must_be_an_object() {
        let mut p = Problems::default();
        assert_eq!(custom(&Some(r#"{"a": 1}"#.into()), &mut p).get("a"), Some(&serde_json::json!(1)));
        custom(&Some("[1]".into()), &mut p);
        assert!(p.get("custom").unwrap().contains("JSON object"));
    }
}
