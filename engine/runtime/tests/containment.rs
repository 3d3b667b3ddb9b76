//! Hostile components are stopped by the runtime, each with its own readable error, and the
//! same runtime then runs a normal step.

mod common;

use std::sync::Arc;

use common::{failure, input, output, run, runtime};
use crm_concepts::step::StepLimits;
use crm_runtime::memory::MemoryServices;
use serde_json::json;

fn limits() -> StepLimits {
    StepLimits { timeout_ms: 300, memory_bytes: 32 << 20, output_bytes: 1 << 20, log_bytes: 16 << 10 }
}

#[tokio::test]
async fn each_hostile_component_fails_with_its_own_error() {
    let rt = runtime();
    let svc = Arc::new(MemoryServices::empty());
    let cases: &[(&str, &str, &str)] = &[
        (crm_guests::INFINITE_LOOP, "timeout", "300 ms"),
        (crm_guests::MEMORY_BOMB, "memory_limit", "32 MiB"),
        (crm_guests::DEEP_RECURSION, "stack_overflow", "call stack"),
        (crm_guests::PANIC, "trap", "panicked: index out of bounds"),
        (crm_guests::READ_PASSWD, "guest", "/etc/passwd"),
        (crm_guests::WRITE_WITHOUT_GRANT, "capability_denied", "records:write"),
    ];
    for (path, code, text) in cases {
        let r = run(&rt, path, input(json!({}), json!(null)), &["records:read", "log"], limits(), svc.clone()).await;
        let e = failure(&r);
        assert_eq!(e.code, *code, "{path}: {e}");
        assert!(e.message.contains(text), "{path}: {e}");
        assert!(!e.is_retryable(), "{path}: {e}");
    }
    let normal = run(&rt, crm_guests::ECHO, input(json!({"n": 1}), json!(null)), &[], limits(), svc).await;
    assert_eq!(output(&normal)["run_input"], json!({"n": 1}));
}

#[tokio::test]
async fn an_output_over_the_cap_is_refused() {
    let rt = runtime();
    let limits = StepLimits { timeout_ms: 5_000, memory_bytes: 256 << 20, ..limits() };
    let r = run(
        &rt,
        crm_guests::HUGE_OUTPUT,
        input(json!({}), json!(null)),
        &[],
        limits,
        Arc::new(MemoryServices::empty()),
    )
    .await;
    let e = failure(&r);
    assert_eq!(e.code, "output_too_large", "{e}");
    assert!(e.message.contains("1048576 byte limit"), "{e}");
}

#[tokio::test]
async fn a_component_importing_sockets_is_refused_before_it_runs() {
    let rt = runtime();
    let bytes = std::fs::read(crm_guests::OPEN_SOCKET).unwrap();
    let err = match rt.load(&crm_runtime::digest_of(&bytes), Arc::new(bytes)).await {
        Ok(_) => panic!("a socket-importing component must not load"),
        Err(e) => e,
    };
    assert_eq!(err.code, "invalid_component");
    assert!(err.message.contains("wasi:sockets/"), "{err}");
}

#[tokio::test]
async fn usage_reports_time_and_peak_memory() {
    let rt = runtime();
    let r = run(
        &rt,
        crm_guests::ECHO,
        input(json!({"x": "y"}), json!(null)),
        &[],
        limits(),
        Arc::new(MemoryServices::empty()),
    )
    .await;
    output(&r);
    assert!(r.usage.duration_us > 0);
    assert!(r.usage.peak_memory_bytes >= 64 << 10, "{:?}", r.usage);
    assert!(r.usage.peak_memory_bytes < 32 << 20, "{:?}", r.usage);
}
