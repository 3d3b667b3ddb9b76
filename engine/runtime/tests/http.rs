//! Outbound HTTP reaches only destinations granted exactly (scheme, host and port), never
//! an internal address unless the operator allows its range, never follows a redirect
//! (which could lead somewhere not granted), and leaves the connection's headers to the
//! host.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{failure, input, output, run};
use crm_concepts::host_call::{HostCall, HostCallError, HostReply};
use crm_concepts::step::{ErrorKind, StepLimits};
use crm_memory::MemoryCrm;
use crm_runtime::{CallContext, EgressPolicy, HostCalls, Runtime, RuntimeConfig, StepCall, digest_of};
use serde_json::{Value, json};

/// A runtime whose operator allows `allow` (a CRM_EGRESS_ALLOW list).
fn runtime<H: HostCalls>(allow: &str) -> Runtime<H> {
    Runtime::new(RuntimeConfig {
        max_instances: 8,
        egress: EgressPolicy::parse(allow).expect("a valid range list"),
        ..RuntimeConfig::default()
    })
    .expect("runtime starts")
}

async fn get(rt: &Runtime<MemoryCrm>, run_input: Value, grant: &str) -> crm_runtime::StepRun {
    run(
        rt,
        crm_guests::HTTP_GET,
        input(run_input, json!(null)),
        &[grant],
        StepLimits::default(),
        Arc::new(MemoryCrm::empty()),
    )
    .await
}

#[tokio::test]
async fn a_request_needs_its_scheme_host_and_port_granted() {
    let (port, _) = crm_testing::http::hello_server().await;
    let rt = runtime("127.0.0.0/8");
    let url = format!("http://127.0.0.1:{port}/");
    let exact = format!("http:http://127.0.0.1:{port}");

    let ok = get(&rt, json!({"url": url}), &exact).await;
    assert_eq!(output(&ok)["status"], 200);
    assert_eq!(output(&ok)["body"], "hello");

    for other in [
        "http:api.example.com".to_string(),
        // the same host on https, port 443
        "http:127.0.0.1".to_string(),
        format!("http:http://127.0.0.1:{}", port.wrapping_add(1).max(1)),
        format!("http:https://127.0.0.1:{port}"),
    ] {
        let denied = get(&rt, json!({"url": url}), &other).await;
        let e = failure(&denied);
        assert_eq!(e.code, "capability_denied", "granted {other}");
        assert!(e.message.contains(&format!("`{exact}`")), "the refusal names the grant to add: {e}");
    }

    let away = get(&rt, json!({"url": format!("http://127.0.0.1:{port}/away")}), &exact).await;
    assert_eq!(output(&away)["status"], 302, "a redirect is handed to the step, not followed");
    assert_eq!(output(&away)["location"], "http://example.com/");

    let bad = get(&rt, json!({"url": "file:///etc/passwd"}), &exact).await;
    assert!(failure(&bad).message.contains("not http or https"), "{}", failure(&bad));
}

#[tokio::test]
async fn internal_addresses_are_refused_even_when_granted() {
    let (port, accepted) = crm_testing::http::hello_server().await;
    let rt = runtime("");
    for (url, grant) in [
        (format!("http://127.0.0.1:{port}/"), format!("http:http://127.0.0.1:{port}")),
        // a name that resolves to loopback is checked at connect time, not by its spelling
        (format!("http://localhost:{port}/"), format!("http:http://localhost:{port}")),
        // the URL parser's other spellings of 127.0.0.1 land on the same check
        (format!("http://0x7f.1:{port}/"), format!("http:http://127.0.0.1:{port}")),
        (format!("http://[::ffff:127.0.0.1]:{port}/"), format!("http:http://[::ffff:7f00:1]:{port}")),
        ("http://169.254.169.254/latest/meta-data/".to_string(), "http:http://169.254.169.254".to_string()),
        ("https://10.0.0.1/".to_string(), "http:10.0.0.1".to_string()),
        ("http://100.64.1.1/".to_string(), "http:http://100.64.1.1".to_string()),
        ("http://[fd00:ec2::254]/".to_string(), "http:http://[fd00:ec2::254]".to_string()),
    ] {
        let refused = get(&rt, json!({"url": url}), &grant).await;
        let e = failure(&refused);
        assert!(e.message.starts_with("invalid: "), "{url}: {e}");
        assert_eq!(e.kind, ErrorKind::Permanent, "a refusal is not worth retrying: {e}");
        assert!(e.message.contains("internal address"), "{url}: {e}");
        assert!(e.message.contains("CRM_EGRESS_ALLOW"), "the refusal says how to allow it: {e}");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "no refused request reached the server");

    // An operator's allowance opens exactly its range.
    let tests = runtime("127.0.0.1");
    let ok = get(&tests, json!({"url": format!("http://localhost:{port}/")}), &format!("http:http://localhost:{port}"))
        .await;
    assert_eq!(output(&ok)["status"], 200);
    let still = get(&tests, json!({"url": "http://10.0.0.1/"}), "http:http://10.0.0.1").await;
    assert!(failure(&still).message.contains("internal address"), "{}", failure(&still));
}

#[tokio::test]
async fn headers_that_steer_the_connection_are_the_hosts() {
    let (port, accepted) = crm_testing::http::hello_server().await;
    let rt = runtime("127.0.0.0/8");
    let url = format!("http://127.0.0.1:{port}/");
    let grant = format!("http:http://127.0.0.1:{port}");
    for header in ["Host", "connection", "Transfer-Encoding", "content-length", "Proxy-Authorization", "upgrade"] {
        let refused = get(&rt, json!({"url": url, "headers": [[header, "x"]]}), &grant).await;
        let e = failure(&refused);
        assert!(e.message.starts_with("invalid: "), "{header}: {e}");
        assert!(e.message.contains(&format!("{header:?}")), "{header}: {e}");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
    let fine = get(&rt, json!({"url": url, "headers": [["x-request-id", "42"]]}), &grant).await;
    assert_eq!(output(&fine)["status"], 200);
}

/// A host that answers no calls and says whether a provisional attempt was recorded,
/// counting the times it was asked.
struct Recorder {
    recorded: bool,
    asked: AtomicUsize,
}

impl HostCalls for Recorder {
    async fn call(&self, _: &CallContext, _: Option<u32>, _: HostCall) -> Result<HostReply, HostCallError> {
        Err(HostCallError::Unavailable("no calls here".into()))
    }

    async fn confirm(&self, _: &CallContext) -> Result<(), HostCallError> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        if self.recorded { Ok(()) } else { Err(HostCallError::Unavailable("never recorded".into())) }
    }
}

/// Runs the step that fetches `/` as a provisional attempt under `host`.
async fn provisional_get(port: u16, host: Arc<Recorder>) -> crm_runtime::StepRun {
    let rt: Runtime<Recorder> = runtime("127.0.0.0/8");
    let bytes = std::fs::read(crm_guests::HTTP_GET).expect("the component was built");
    let component = rt.load(&digest_of(&bytes), Arc::new(bytes)).await.expect("the component loads");
    let input = input(json!({"url": format!("http://127.0.0.1:{port}/")}), json!(null));
    let limits = StepLimits::default();
    let call = StepCall {
        provisional: true,
        ..common::call("s", &input, common::grants(&[&format!("http:http://127.0.0.1:{port}")]), &limits)
    };
    rt.run(&component, call, host).await
}

#[tokio::test]
async fn a_step_sent_ahead_of_its_record_sends_nothing_until_the_engine_confirms_it() {
    let (port, accepted) = crm_testing::http::hello_server().await;

    let voided = Arc::new(Recorder { recorded: false, asked: AtomicUsize::new(0) });
    let refused = provisional_get(port, voided.clone()).await;
    assert!(failure(&refused).message.contains("never recorded"), "{}", failure(&refused));
    assert_eq!(voided.asked.load(Ordering::SeqCst), 1);
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "a voided attempt reached no server");

    let recorded = Arc::new(Recorder { recorded: true, asked: AtomicUsize::new(0) });
    let ok = provisional_get(port, recorded.clone()).await;
    assert_eq!(output(&ok)["status"], 200);
    assert_eq!(recorded.asked.load(Ordering::SeqCst), 1);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}
