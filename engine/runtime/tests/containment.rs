//! Hostile components are stopped by the runtime, each with the error its fixture expects
//! (`workflows/fixtures/<name>/expected.toml`), and the same runtime then runs a normal step.

mod common;

use std::sync::Arc;

use common::{failure, input, output, run, runtime};
use crm_concepts::step::StepLimits;
use crm_memory::MemoryCrm;
use crm_testing::fixtures::{self, Stage};
use serde_json::json;

fn limits() -> StepLimits {
    StepLimits { timeout_ms: 300, memory_bytes: 32 << 20, output_bytes: 1 << 20, log_bytes: 16 << 10 }
}

#[tokio::test]
async fn each_hostile_component_fails_with_its_expected_error() {
    let rt = runtime();
    let svc = Arc::new(MemoryCrm::empty());
    for f in fixtures::hostile() {
        let e = match f.stage {
            // Refused before it runs: a component importing what the host does not serve
            // never gets an instance.
            Stage::Load => {
                let bytes = std::fs::read(f.path).expect("the component was built");
                match rt.load(&crm_runtime::digest_of(&bytes), Arc::new(bytes)).await {
                    Ok(_) => panic!("{} must not load", f.package),
                    Err(e) => e,
                }
            }
            Stage::Run => {
                let r = run(&rt, f.path, input(json!({}), json!(null)), &f.grant_refs(), f.limits.clone(), svc.clone())
                    .await;
                failure(&r).clone()
            }
        };
        assert_eq!(e.code, f.code, "{}: {e}", f.package);
        assert!(e.message.contains(&f.message), "{}: {e:?} should mention {:?}", f.package, f.message);
        assert!(!e.is_retryable(), "{}: {e}", f.package);
    }
    let normal = run(&rt, crm_guests::ECHO, input(json!({"n": 1}), json!(null)), &[], limits(), svc).await;
    assert_eq!(output(&normal)["run_input"], json!({"n": 1}));
}

#[tokio::test]
async fn usage_reports_time_and_peak_memory() {
    let rt = runtime();
    let r =
        run(&rt, crm_guests::ECHO, input(json!({"x": "y"}), json!(null)), &[], limits(), Arc::new(MemoryCrm::empty()))
            .await;
    output(&r);
    assert!(r.usage.duration_us > 0);
    assert!(r.usage.peak_memory_bytes >= 64 << 10, "{:?}", r.usage);
    assert!(r.usage.peak_memory_bytes < 32 << 20, "{:?}", r.usage);
}
