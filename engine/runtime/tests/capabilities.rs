//! Every import checks its grant; a missing grant ends the step naming the capability.

mod common;

use std::sync::Arc;

use common::{failure, input, output, run, runtime};
use crm_concepts::step::StepLimits;
use crm_memory::MemoryCrm;
use serde_json::json;

#[tokio::test]
async fn a_missing_grant_is_named_in_the_error() {
    let rt = runtime();
    let svc = Arc::new(MemoryCrm::from_json(r#"{"contacts": [{"id": 1, "name": "Ann Lee"}]}"#).unwrap());
    // lead-score reads records, then logs: each grant is needed in turn.
    let cases: &[(&[&str], &str)] = &[(&[], "records:read"), (&["records:read"], "log")];
    for (caps, missing) in cases {
        let r = run(
            &rt,
            crm_guests::LEAD_SCORE,
            input(json!({"contact_id": 1}), json!(null)),
            caps,
            StepLimits::default(),
            svc.clone(),
        )
        .await;
        let e = failure(&r);
        assert_eq!(e.code, "capability_denied");
        assert!(e.message.contains(&format!("`{missing}`")), "{e}");
    }
    let ok = run(
        &rt,
        crm_guests::LEAD_SCORE,
        input(json!({"contact_id": 1}), json!(null)),
        &["records:read", "log"],
        StepLimits::default(),
        svc,
    )
    .await;
    assert_eq!(output(&ok)["name"], "Ann Lee");
}

#[tokio::test]
async fn notify_needs_its_grant_and_the_refusal_cannot_be_swallowed() {
    let rt = runtime();
    let fixture = r#"{"deals": [{"id": 1, "title": "Won it", "status": "won", "owner_id": 3}]}"#;
    let svc = Arc::new(MemoryCrm::from_json(fixture).unwrap());
    let r = run(
        &rt,
        crm_guests::DEAL_WON_MESSAGE,
        input(json!({"deal_id": 1}), json!({"notify_owner": true})),
        &["records:read"],
        StepLimits::default(),
        svc.clone(),
    )
    .await;
    let e = failure(&r);
    assert_eq!(e.code, "capability_denied");
    assert!(e.message.contains("`notify`"), "{e}");
    assert!(svc.notifications().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn a_bad_fixture_is_a_clear_error() {
    let err = MemoryCrm::from_json(r#"{"contacts": [{"id": 1, "nmae": "typo"}]}"#).err().expect("refused");
    assert!(err.to_string().contains("unknown field `nmae`"), "{err}");
    let err =
        MemoryCrm::from_json(r#"{"tasks": [{"id": 1, "title": "t", "due_at": "tomorrow"}]}"#).err().expect("refused");
    assert!(err.to_string().contains("not an RFC 3339 time"), "{err}");
}
