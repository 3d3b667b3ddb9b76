//! The example automations in `workflows/` parse, validate and declare the triggers the
//! product promises (their effects are covered by the scenario tests of the `crm` binary).

use crm_concepts::manifest::{Manifest, Trigger};
use crm_triggers::cron::CronSchedule;

fn manifest(name: &str) -> Manifest {
    let path = format!("{}/../../workflows/{name}/workflow.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    Manifest::parse(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_stale_deals_digest_runs_daily() {
    let m = manifest("stale-deals-digest");
    let [Trigger::Cron { schedule, timezone, .. }] = m.triggers.as_slice() else { panic!("{:?}", m.triggers) };
    let s = CronSchedule::parse(schedule, timezone).unwrap();
    let next = s.upcoming(chrono::Utc::now(), 2);
    assert_eq!((next[1] - next[0]).num_hours(), 24);
    assert!(m.steps[0].capabilities.contains(&"notify".to_string()));
}

#[test]
fn lead_scoring_listens_to_new_contacts() {
    let m = manifest("score-new-leads");
    let [Trigger::RecordEvent { record, actions, .. }] = m.triggers.as_slice() else { panic!("{:?}", m.triggers) };
    assert_eq!((record.as_str(), actions.as_slice()), ("contact", ["created".to_string()].as_slice()));
}

#[test]
fn the_won_deal_celebration_filters_on_status_becoming_won() {
    let m = manifest("celebrate-won-deal");
    let [Trigger::RecordEvent { record, filter, .. }] = m.triggers.as_slice() else { panic!("{:?}", m.triggers) };
    assert_eq!(record, "deal");
    assert_eq!(filter.changed, vec!["status"]);
    assert_eq!(filter.equals.get("status"), Some(&serde_json::json!("won")));
    let steps: Vec<_> = m.steps.iter().map(|s| s.component.as_str()).collect();
    assert_eq!(steps, vec!["deal-won-message", "follow-up-task"]);
}

#[test]
fn the_inbound_lead_form_is_a_signed_webhook() {
    let m = manifest("inbound-lead");
    let [Trigger::Webhook { path, key }] = m.triggers.as_slice() else { panic!("{:?}", m.triggers) };
    assert_eq!((path.as_str(), key.as_deref()), ("inbound-lead", Some("INBOUND_LEAD_HMAC")));
}
