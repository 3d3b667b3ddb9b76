//! The workflow's key-value state persists across runs; secrets are read by name, each
//! name its own capability.

mod common;

use std::sync::Arc;

use common::{failure, input, output, run, runtime};
use crm_concepts::step::StepLimits;
use crm_memory::MemoryCrm;
use serde_json::json;

#[tokio::test]
async fn state_persists_between_runs_and_secrets_need_their_own_grant() {
    let rt = runtime();
    let svc = Arc::new(MemoryCrm::from_json(r#"{"secrets": {"API_KEY": "s3cret"}, "state": {"count": 41}}"#).unwrap());
    let caps = &["state", "secret:API_KEY"];
    let first =
        run(&rt, crm_guests::COUNTER, input(json!({}), json!(null)), caps, StepLimits::default(), svc.clone()).await;
    assert_eq!(output(&first)["count"], 42);
    assert_eq!(output(&first)["secret_len"], 6);
    let second =
        run(&rt, crm_guests::COUNTER, input(json!({}), json!(null)), caps, StepLimits::default(), svc.clone()).await;
    assert_eq!(output(&second)["count"], 43);
    assert_eq!(svc.state()["count"], json!(43));

    let other_secret = run(
        &rt,
        crm_guests::COUNTER,
        input(json!({}), json!({"secret": "DB_PASSWORD"})),
        caps,
        StepLimits::default(),
        svc.clone(),
    )
    .await;
    let e = failure(&other_secret);
    assert_eq!(e.code, "capability_denied");
    assert!(e.message.contains("`secret:DB_PASSWORD`"), "{e}");

    let no_state = run(
        &rt,
        crm_guests::COUNTER,
        input(json!({}), json!(null)),
        &["secret:API_KEY"],
        StepLimits::default(),
        svc.clone(),
    )
    .await;
    assert!(failure(&no_state).message.contains("`state`"), "{}", failure(&no_state));
    assert_eq!(svc.state()["count"], json!(43), "a refused step changed nothing");
}
