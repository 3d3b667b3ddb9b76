//! A step's deadline is wall-clock and covers everything: a step that sleeps (a host call,
//! where no guest code runs and epoch interruption cannot fire) is stopped at its deadline
//! like a busy loop is.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{failure, input, run, runtime};
use crm_concepts::step::StepLimits;
use crm_memory::MemoryCrm;
use serde_json::json;

#[tokio::test]
async fn a_step_sleeping_for_an_hour_is_stopped_at_its_one_second_deadline() {
    let rt = runtime();
    let limits = StepLimits { timeout_ms: 1_000, ..StepLimits::default() };
    let r = run(
        &rt,
        crm_guests::SLOW,
        input(json!({}), json!({"ms": 3_600_000})),
        &[],
        limits,
        Arc::new(MemoryCrm::empty()),
    )
    .await;
    let took = Duration::from_micros(r.usage.duration_us);
    let e = failure(&r);
    assert_eq!(e.code, "timeout", "{e}");
    assert!(e.message.contains("1000 ms"), "{e}");
    assert!(took < Duration::from_millis(1_100), "stopped after {took:?}");
}
