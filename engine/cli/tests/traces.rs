//! OpenTelemetry traces over OTLP/HTTP: with `CRM_OTLP_ENDPOINT` set, a run through the
//! API, the engine and a worker is one trace whose id is the run id, with spans from both
//! processes, the worker's step a child of the engine's dispatch of it.

use std::time::Duration;

use crm_testing::Flow;
use crm_testing::otlp::{OtlpReceiver, ReceivedSpan};
use serde_json::json;

const TWO_STEPS: &str = r#"name = "traced"
version = "1"

[[steps]]
id = "first"
component = "fixture-slow"
config = { ms = 5 }

[[steps]]
id = "second"
component = "fixture-slow"
config = { ms = 5 }
needs = ["first"]
"#;

fn named<'a>(spans: &'a [ReceivedSpan], trace: &str, service: &str, name: &str) -> Vec<&'a ReceivedSpan> {
    spans.iter().filter(|s| s.trace_id == trace && s.service == service && s.name == name).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_is_one_trace_across_the_engine_and_the_worker() {
    let receiver = OtlpReceiver::start().await;
    // Export every 100 ms rather than the default 5 s, so the test does not wait.
    let mut flow = Flow::start_with_env(
        "traces",
        &[("CRM_OTLP_ENDPOINT", receiver.url.as_str()), ("OTEL_BSP_SCHEDULE_DELAY", "100")],
    )
    .await;
    flow.deploy_manifest(TWO_STEPS);
    flow.start_worker(2);
    let run = flow.start_run("traced", json!({"n": 1})).await;
    flow.wait_status(run, "succeeded", Duration::from_secs(60)).await;

    let trace = run.simple().to_string();
    let complete = |spans: &[ReceivedSpan]| {
        named(spans, &trace, "crm-engine", "run").len() == 1
            && named(spans, &trace, "crm-engine", "step.dispatch").len() == 2
            && named(spans, &trace, "crm-engine", "step.apply").len() == 2
            && named(spans, &trace, "crm-worker", "step.execute").len() == 2
    };
    let spans = receiver.wait_for(Duration::from_secs(20), complete).await;
    let ours: Vec<String> =
        spans.iter().filter(|s| s.trace_id == trace).map(|s| format!("{}/{}", s.service, s.name)).collect();
    assert!(complete(&spans), "the run's trace {trace} holds only {ours:?}");

    // The root is the run; the engine's spans hang under it, each worker step under the
    // dispatch that sent it (the context rode in the signed job).
    let root = named(&spans, &trace, "crm-engine", "run")[0];
    assert_eq!(root.parent_span_id, "", "the run span is the trace's root");
    assert_eq!(root.attribute("crm.workflow"), Some("traced"));
    assert_eq!(root.attribute("crm.run_id"), Some(run.to_string().as_str()));
    let dispatches = named(&spans, &trace, "crm-engine", "step.dispatch");
    for span in dispatches.iter().chain(&named(&spans, &trace, "crm-engine", "step.apply")) {
        assert_eq!(span.parent_span_id, root.span_id, "{} is a child of the run", span.name);
    }
    for execute in named(&spans, &trace, "crm-worker", "step.execute") {
        let parent = dispatches.iter().find(|d| d.span_id == execute.parent_span_id);
        let parent = parent.unwrap_or_else(|| panic!("step.execute's parent is not a dispatch: {execute:?}"));
        assert_eq!(parent.attribute("crm.step"), execute.attribute("crm.step"));
    }
    let mut steps: Vec<&str> =
        named(&spans, &trace, "crm-worker", "step.execute").iter().filter_map(|s| s.attribute("crm.step")).collect();
    steps.sort_unstable();
    assert_eq!(steps, ["first", "second"]);

    // The API request that started the run is in a trace of its own, and names the run.
    let request =
        spans.iter().find(|s| s.name == "request" && s.attribute("crm.run_id") == Some(run.to_string().as_str()));
    assert!(request.is_some_and(|r| r.service == "crm-engine"), "no request span names the run: {ours:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_endpoint_stops_the_engine_with_a_clear_error() {
    let flow = Flow::start("traces_bad").await;
    let out = flow.command(&["serve", "--listen", "127.0.0.1:0"]).env("CRM_OTLP_ENDPOINT", "collector:4318").output();
    let out = out.expect("run crm serve");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("CRM_OTLP_ENDPOINT") && stderr.contains("collector:4318"), "{stderr}");
}
