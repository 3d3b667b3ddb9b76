//! `POST /hooks/{path}` on a real `crm serve`: a signed JSON body starts one run whose input
//! is the body; unsigned, stale, forged, replayed and oversized requests are refused with a
//! clear error and start nothing.

use std::io::Write;
use std::process::Stdio;

use crm_testing::{TestStack, send};
use crm_triggers::signature::{Signed, sign};
use reqwest::StatusCode;
use serde_json::{Value, json};

const SECRET: &str = "a-long-shared-secret-for-tests";

const MANIFEST: &str = r#"
name = "lead-form"
version = "1"
[[triggers]]
kind = "webhook"
path = "lead-form"
key = "LEAD_FORM_HMAC"
[[steps]]
id = "record"
component = "inbound-lead"
"#;

/// Deploys straight through the store: this test is about intake, nothing executes.
async fn deploy(stack: &TestStack) {
    crm_testing::deploy::deploy(&stack.db, MANIFEST).await;
}

/// `crm webhook key NAME --stdin`, as an operator would set it (on the engine's host: the
/// command seals the key with the installation's key file).
fn set_key(stack: &TestStack, name: &str, key: &str) {
    let mut child = stack
        .command(&["webhook", "key", name, "--stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run crm webhook key");
    child.stdin.take().expect("stdin").write_all(format!("{key}\n").as_bytes()).expect("write the key");
    let out = child.wait_with_output().expect("crm webhook key finishes");
    assert!(out.status.success(), "crm webhook key failed");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), key);
}

async fn hook(stack: &TestStack, headers: &[(&str, String)], body: &[u8]) -> (StatusCode, Value) {
    let mut req = stack.client.post(format!("{}/hooks/lead-form", stack.url)).body(body.to_vec());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    send(req).await
}

fn signed(key: &str, ts: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    let signature = sign(key.as_bytes(), ts, Signed { path: "lead-form", body });
    vec![("X-Crm-Timestamp", ts.to_string()), ("X-Crm-Signature", signature)]
}

fn refused(resp: &(StatusCode, Value), status: StatusCode, words: &str) {
    assert_eq!(resp.0, status, "{}", resp.1);
    let message = resp.1["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(words), "expected {words:?} in {message:?}");
}

#[tokio::test]
async fn signed_requests_start_runs_and_everything_else_is_refused() {
    let stack = TestStack::start("webhooks").await;
    deploy(&stack).await;
    let body =
        serde_json::to_vec(&json!({"name": "Ann Lee", "email": "ann@example.com", "amount_minor": 120000})).unwrap();
    let now = chrono::Utc::now().timestamp();

    let r = hook(&stack, &signed(SECRET, now, &body), &body).await;
    refused(&r, StatusCode::UNAUTHORIZED, "crm webhook key LEAD_FORM_HMAC");
    set_key(&stack, "LEAD_FORM_HMAC", SECRET);

    let r = hook(&stack, &[], &body).await;
    refused(&r, StatusCode::UNAUTHORIZED, "missing X-Crm-Timestamp");
    let r = hook(&stack, &[("X-Crm-Timestamp", now.to_string())], &body).await;
    refused(&r, StatusCode::UNAUTHORIZED, "missing X-Crm-Signature");
    let r = hook(&stack, &signed("someone-else's-secret-value", now, &body), &body).await;
    refused(&r, StatusCode::UNAUTHORIZED, "signature does not match");
    let tampered = serde_json::to_vec(&json!({"name": "Mallory", "email": "m@example.com"})).unwrap();
    let r = hook(&stack, &signed(SECRET, now, &body), &tampered).await;
    refused(&r, StatusCode::UNAUTHORIZED, "signature does not match");
    let stale = now - 301;
    let r = hook(&stack, &signed(SECRET, stale, &body), &body).await;
    refused(&r, StatusCode::UNAUTHORIZED, "outside the 300 s replay window");
    let big = vec![b' '; 300 * 1024];
    let r = hook(&stack, &signed(SECRET, now, &big), &big).await;
    refused(&r, StatusCode::PAYLOAD_TOO_LARGE, "limited to 262144 bytes");
    let not_object = b"[1, 2]";
    let r = hook(&stack, &signed(SECRET, now, not_object), not_object).await;
    refused(&r, StatusCode::BAD_REQUEST, "not a JSON object");
    let r = send(stack.client.post(format!("{}/hooks/no-such-hook", stack.url)).body(body.clone())).await;
    refused(&r, StatusCode::NOT_FOUND, "no workflow receives webhooks at /hooks/no-such-hook");
    assert_eq!(stack.count("SELECT count(*) FROM runs").await, 0, "no refused request started a run");

    let headers = signed(SECRET, now, &body);
    let (status, accepted) = hook(&stack, &headers, &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(accepted["workflow"], "lead-form");
    let run_id: uuid::Uuid = accepted["run_id"].as_str().and_then(|s| s.parse().ok()).expect("run id");
    let (input, trigger): (Value, String) = sqlx::query_as("SELECT input, trigger FROM runs WHERE id = $1")
        .bind(run_id)
        .fetch_one(&stack.db.pool)
        .await
        .expect("the run exists");
    assert_eq!(input, serde_json::from_slice::<Value>(&body).unwrap(), "the body is the run's input");
    assert_eq!(trigger, "webhook");

    let r = hook(&stack, &headers, &body).await;
    refused(&r, StatusCode::CONFLICT, "already received");
    assert_eq!(stack.count("SELECT count(*) FROM runs").await, 1, "the replay started nothing");

    // The same body signed again later is a new delivery.
    let later = signed(SECRET, now + 1, &body);
    assert_eq!(hook(&stack, &later, &body).await.0, StatusCode::ACCEPTED);
    assert_eq!(stack.count("SELECT count(*) FROM runs").await, 2);
}

#[tokio::test]
async fn keys_are_set_by_admins_only_and_no_step_can_read_them() {
    let stack = TestStack::start("webhook_keys").await;
    let path = "/api/webhook-keys/LEAD_FORM_HMAC";
    let (status, _) = send(stack.request_as(&stack.manager_token, reqwest::Method::POST, path)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = send(stack.request(reqwest::Method::POST, path)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let generated = body["key"].as_str().expect("key shown once");
    assert!(generated.len() >= 32, "{generated}");
    let (status, body) = stack.post(path, json!({"key": "short"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // Listed by name only, and sealed at rest: the database does not hold the key.
    let (_, listed) = stack.get("/api/webhook-keys").await;
    assert_eq!(listed["items"][0]["name"], "LEAD_FORM_HMAC", "{listed}");
    assert!(!listed.to_string().contains(generated));
    let (plain, sealed): (Option<String>, Vec<u8>) =
        sqlx::query_as("SELECT value, sealed FROM secrets WHERE namespace = 'webhook' AND name = 'LEAD_FORM_HMAC'")
            .fetch_one(&stack.db.pool)
            .await
            .unwrap();
    assert_eq!(plain, None);
    assert!(!sealed.windows(generated.len()).any(|w| w == generated.as_bytes()));
    // A step secret of the same name is another secret altogether.
    assert_eq!(stack.get("/api/secrets").await.1["items"], json!([]));
}
