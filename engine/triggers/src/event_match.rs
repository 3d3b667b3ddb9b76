//! Whether a record change matches a record-event trigger: the record kind, the action,
//! and the filter (`changed`: each listed field changed in this write; `equals`: each field
//! holds the value after the write). Field names may be dotted paths into JSON fields,
//! e.g. `custom.source`.

use crm_concepts::manifest::EventFilter;
use serde_json::Value;

/// One row of the outbox, as the consumer sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordChange {
    pub outbox_id: i64,
    pub actor_id: Option<i64>,
    pub origin_run: Option<uuid::Uuid>,
    pub record_kind: String,
    pub record_id: i64,
    pub action: String,
    /// `{"field": [old, new]}` for each field the write changed
    pub changes: Value,
    /// the record after the write (before it, for a delete)
    pub record: Option<Value>,
}

pub fn matches(record: &str, actions: &[String], filter: &EventFilter, change: &RecordChange) -> bool {
    if record != change.record_kind {
        return false;
    }
    if !actions.is_empty() && !actions.contains(&change.action) {
        return false;
    }
    // A created record "changed" every field it has; a delete changes none.
    let changed = |field: &str| match change.action.as_str() {
        "created" => change.record.as_ref().and_then(|r| lookup(r, field)).is_some_and(|v| !v.is_null()),
        "updated" => change.changes.get(top_level(field)).is_some(),
        _ => false,
    };
    if !filter.changed.iter().all(|f| changed(f)) {
        return false;
    }
    filter.equals.iter().all(|(field, want)| {
        change.record.as_ref().and_then(|r| lookup(r, field)).is_some_and(|have| values_equal(have, want))
    })
}

fn top_level(field: &str) -> &str {
    field.split('.').next().unwrap_or(field)
}

fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, key| v.get(key))
}

/// Manifest values come from TOML, record values from JSON: an integer in one may be a
/// float in the other, so numbers compare by value.
fn values_equal(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => have == want,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    fn change(action: &str, changes: Value, record: Value) -> RecordChange {
        RecordChange {
            outbox_id: 1,
            actor_id: Some(1),
            origin_run: None,
            record_kind: "deal".into(),
            record_id: 7,
            action: action.into(),
            changes,
            record: Some(record),
        }
    }

    fn won_filter() -> EventFilter {
        EventFilter { changed: vec!["status".into()], equals: BTreeMap::from([("status".into(), json!("won"))]) }
    }

    #[test]
    fn a_deal_becoming_won_matches_the_won_filter() {
        let c = change(
            "updated",
            json!({"status": ["open", "won"], "stage_id": [3, 5]}),
            json!({"status": "won", "stage_id": 5}),
        );
        assert!(matches("deal", &["updated".into()], &won_filter(), &c));
    }

    #[test]
    fn an_edit_of_an_already_won_deal_does_not_match() {
        let c = change("updated", json!({"title": ["a", "b"]}), json!({"status": "won", "title": "b"}));
        assert!(!matches("deal", &["updated".into()], &won_filter(), &c));
    }

    #[test]
    fn kind_and_action_must_match() {
        let c = change("created", json!({}), json!({"status": "open"}));
        assert!(matches("deal", &[], &EventFilter::default(), &c));
        assert!(!matches("contact", &[], &EventFilter::default(), &c));
        assert!(!matches("deal", &["updated".into(), "deleted".into()], &EventFilter::default(), &c));
    }

    #[test]
    fn a_created_record_changed_every_field_it_has() {
        let c = change("created", json!({}), json!({"email": "a@b.io", "phone": null}));
        let f = |field: &str| EventFilter { changed: vec![field.into()], equals: BTreeMap::new() };
        assert!(matches("deal", &[], &f("email"), &c));
        assert!(!matches("deal", &[], &f("phone"), &c));
    }

    #[test]
    fn equals_reaches_into_nested_fields_and_compares_numbers_by_value() {
        let c = change("created", json!({}), json!({"custom": {"source": "form"}, "amount_minor": 5000}));
        let f = EventFilter {
            changed: vec![],
            equals: BTreeMap::from([("custom.source".into(), json!("form")), ("amount_minor".into(), json!(5000.0))]),
        };
        assert!(matches("deal", &[], &f, &c));
    }
}
