//! The fixture a local run starts from. Every section is optional (see
//! `workflows/lead-score/fixtures.json`):
//!
//! ```json
//! {
//!   "contacts":  [{"id": 1, "name": "Ann Lee", "email": "ann@x.io", "company_id": 1, "created_at": "-40d"}],
//!   "companies": [{"id": 1, "name": "Acme"}],
//!   "deals":     [{"id": 1, "title": "Pilot", "amount_minor": 500000, "contact_id": 1, "status": "open"}],
//!   "tasks":     [{"id": 1, "title": "Call", "contact_id": 1, "due_at": "-2d"}],
//!   "notes":     [{"id": 1, "body": "Met at a fair", "contact_id": 1}],
//!   "activity":  [{"record_kind": "contact", "record_id": 1, "action": "updated", "at": "-1d"}],
//!   "users":     [{"id": 2, "name": "Sam", "time_zone": "Europe/Berlin", "remind_before_minutes": 15}],
//!   "secrets":   {"SLACK_TOKEN": "xoxb-..."},
//!   "state":     {"cursor": 42},
//!   "fields":    [{"kind": "contact", "key": "lead_grade", "label": "Lead grade", "type": "choice",
//!                  "choices": ["hot", "warm", "cold"], "required": false}]
//! }
//! ```
//!
//! `fields` are custom field definitions, as `crm field add` and `POST /api/fields` make
//! them: a step's write of a record's `custom` is checked against them the way the engine
//! checks it. Fixture records themselves are taken as stored, unchecked.
//!
//! A record lists only the fields it needs; the rest take the defaults a new record would
//! have. Times are RFC 3339 (`2026-01-31T09:00:00Z`), milliseconds since the epoch, `now`,
//! or relative to now: `-3d`, `-12h`, `-30m`, `+2d`, so a fixture stays meaningful
//! whenever it is run.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use crm_concepts::records::{Company, Contact, Deal, Note, RecordKind, Task};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::kinds::{self, Kind};

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("the fixture is not valid: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the fixture is not valid: {0}")]
    Invalid(String),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Fixture {
    pub contacts: Vec<Map<String, Value>>,
    pub companies: Vec<Map<String, Value>>,
    pub deals: Vec<Map<String, Value>>,
    pub tasks: Vec<Map<String, Value>>,
    pub notes: Vec<Map<String, Value>>,
    pub activity: Vec<FixtureActivity>,
    /// the users a step may look up or message; any other id is `not_found`, as in the engine
    pub users: Vec<crm_concepts::user::UserProfile>,
    pub secrets: BTreeMap<String, String>,
    pub state: BTreeMap<String, Value>,
    pub fields: Vec<crm_concepts::custom_fields::NewFieldDefinition>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FixtureActivity {
    pub record_kind: RecordKind,
    pub record_id: i64,
    pub action: String,
    pub at: Option<Value>,
    pub actor_id: Option<i64>,
}

impl Fixture {
    pub fn sections(&mut self) -> [(&'static Kind, Vec<Map<String, Value>>); 5] {
        [
            (&kinds::CONTACT, std::mem::take(&mut self.contacts)),
            (&kinds::COMPANY, std::mem::take(&mut self.companies)),
            (&kinds::DEAL, std::mem::take(&mut self.deals)),
            (&kinds::TASK, std::mem::take(&mut self.tasks)),
            (&kinds::NOTE, std::mem::take(&mut self.notes)),
        ]
    }
}

/// RFC 3339, milliseconds, `now`, or `-3d` / `+12h` / `-30m` relative to now.
pub(crate) fn parse_time(value: &Value) -> Result<DateTime<Utc>, String> {
    let now = Utc::now();
    let text = match value {
        Value::Number(n) => {
            return n
                .as_i64()
                .and_then(DateTime::from_timestamp_millis)
                .ok_or_else(|| format!("{n} is not a time in milliseconds"));
        }
        Value::String(s) => s.trim(),
        other => return Err(format!("{other} is not a time")),
    };
    if text == "now" {
        return Ok(now);
    }
    if let Some(sign) = text.chars().next().filter(|c| *c == '-' || *c == '+') {
        let body = &text[1..];
        let (num, unit) = body.split_at(body.len().saturating_sub(1));
        let n: i64 = num.parse().map_err(|_| format!("{text:?} is not a time"))?;
        let unit = match unit {
            "d" => chrono::Duration::days(1),
            "h" => chrono::Duration::hours(1),
            "m" => chrono::Duration::minutes(1),
            _ => return Err(format!("{text:?}: relative times end in d, h or m")),
        };
        let delta = unit * i32::try_from(n).map_err(|_| format!("{text:?} is too far away"))?;
        return Ok(if sign == '-' { now - delta } else { now + delta });
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))
}

/// What a record of this kind holds when the fixture leaves a field out.
pub(crate) fn defaults(kind: RecordKind, now: DateTime<Utc>) -> Map<String, Value> {
    let mut d = match kind {
        RecordKind::Contact => json!({"email": null, "phone": null, "company_id": null, "owner_id": null,
            "tags": [], "custom": {}}),
        RecordKind::Company => json!({"domain": null, "phone": null, "owner_id": null, "tags": [], "custom": {}}),
        RecordKind::Deal => json!({"amount_minor": 0, "currency": "USD", "pipeline_id": 1, "stage_id": 1,
            "contact_id": null, "company_id": null, "owner_id": null, "expected_close": null, "status": "open",
            "closed_at": null, "tags": [], "custom": {}}),
        RecordKind::Task => json!({"due_at": null, "done": false, "done_at": null, "assignee_id": null,
            "contact_id": null, "company_id": null, "deal_id": null}),
        _ => json!({"author_id": null, "contact_id": null, "company_id": null, "deal_id": null, "task_id": null}),
    };
    let mut row = d.as_object_mut().map(std::mem::take).unwrap_or_default();
    row.insert("created_at".into(), json!(now));
    row
}

/// Checks a record by giving it its Rust type: a wrong type, a missing required field or
/// an unknown field is an error naming the record.
pub(crate) fn typed_row(kind: RecordKind, row: Map<String, Value>) -> Result<Value, String> {
    fn through<T: DeserializeOwned + serde::Serialize>(row: Map<String, Value>) -> Result<Value, String> {
        let keys: Vec<String> = row.keys().cloned().collect();
        let typed: T = serde_json::from_value(Value::Object(row)).map_err(|e| e.to_string())?;
        let value = serde_json::to_value(typed).map_err(|e| e.to_string())?;
        if let Some(unknown) = keys.iter().find(|k| value.get(k.as_str()).is_none()) {
            return Err(format!("unknown field `{unknown}`"));
        }
        Ok(value)
    }
    match kind {
        RecordKind::Contact => through::<Contact>(row),
        RecordKind::Company => through::<Company>(row),
        RecordKind::Deal => through::<Deal>(row),
        RecordKind::Task => through::<Task>(row),
        RecordKind::Note => through::<Note>(row),
        other => Err(format!("{other} records are not part of a fixture")),
    }
}

/// A fixture record completed with defaults, its times read, its derived fields filled.
pub(crate) fn record(kind: &Kind, given: Map<String, Value>) -> Result<Value, FixtureError> {
    let id = given.get("id").and_then(Value::as_i64).unwrap_or_default();
    let what = format!("{} {id}", kind.kind);
    let bad = |m: String| FixtureError::Invalid(format!("{what}: {m}"));
    if let Some(unknown) = given.keys().find(|k| !kind.fields.contains(&k.as_str())) {
        return Err(bad(format!("unknown field `{unknown}`")));
    }
    let mut row = defaults(kind.kind, Utc::now());
    row.extend(given);
    for field in kind.times {
        if let Some(v) = row.get(*field).filter(|v| !v.is_null()) {
            let t = parse_time(v).map_err(|m| bad(format!("{field}: {m}")))?;
            row.insert((*field).to_string(), json!(t));
        }
    }
    let created = row.get("created_at").cloned().unwrap_or(Value::Null);
    let or_created = |row: &mut Map<String, Value>, field: &str| {
        if row.get(field).is_none_or(Value::is_null) {
            row.insert(field.to_string(), created.clone());
        }
    };
    or_created(&mut row, "updated_at");
    match kind.kind {
        RecordKind::Deal => {
            or_created(&mut row, "stage_changed_at");
            let open = row.get("status").and_then(Value::as_str) == Some("open");
            let updated = row.get("updated_at").cloned().unwrap_or(Value::Null);
            if open {
                row.insert("closed_at".into(), Value::Null);
            } else if row.get("closed_at").is_none_or(Value::is_null) {
                row.insert("closed_at".into(), updated);
            }
        }
        RecordKind::Task => {
            let done = row.get("done").and_then(Value::as_bool).unwrap_or(false);
            if !done {
                row.insert("done_at".into(), Value::Null);
            } else {
                or_created(&mut row, "done_at");
            }
        }
        _ => {}
    }
    typed_row(kind.kind, row).map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_absolute_and_relative_times() {
        assert_eq!(parse_time(&json!("1970-01-01T00:00:01Z")).unwrap().timestamp_millis(), 1000);
        assert_eq!(parse_time(&json!(1000)).unwrap().timestamp_millis(), 1000);
        let three_days_ago = parse_time(&json!("-3d")).unwrap();
        assert!((Utc::now() - chrono::Duration::days(3) - three_days_ago).num_seconds().abs() < 5);
        assert!(parse_time(&json!("-3w")).is_err());
        assert!(parse_time(&json!("yesterday")).is_err());
    }
}
