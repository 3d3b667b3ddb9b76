//! Retrying a failed run from its failed step (`POST /api/runs/{id}/retry`, `crm run
//! retry`): the steps that succeeded keep their outputs and do not run again, the failed
//! step runs at its next attempt and the steps after it follow; a run that is not failed is
//! refused with a clear error.

use std::time::Duration;

use crm_concepts::records::Actor;
use crm_concepts::user::{NewUser, Role};
use crm_testing::process::{Process, crm, rust_log};
use crm_testing::{Flow, LocalBotApi, TgUser};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// `call` needs a secret nobody set yet: it fails until an admin sets it.
const CHAIN: &str = r#"
name = "needs-key"
version = "1"

[[steps]]
id = "first"
component = "fixture-echo"

[[steps]]
id = "call"
component = "fixture-counter"
needs = ["first"]
capabilities = ["secret:API_KEY", "state"]
config = { secret = "API_KEY" }
retry = { max_attempts = 1 }

[[steps]]
id = "after"
component = "fixture-echo"
needs = ["call"]
"#;

fn step<'a>(run: &'a Value, id: &str) -> &'a Value {
    run["steps"].as_array().and_then(|s| s.iter().find(|s| s["step"] == id)).unwrap_or_else(|| panic!("no step {id}"))
}

fn attempts(run: &Value, id: &str) -> Vec<(i64, String)> {
    step(run, id)["attempts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| (a["attempt"].as_i64().unwrap_or(0), a["status"].as_str().unwrap_or("").to_string()))
        .collect()
}

fn crm_run(flow: &Flow, args: &[&str]) -> (bool, String) {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--engine", &flow.url, "--token", &flow.token]);
    let out = flow.command(&all).output().expect("run crm");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_run_goes_on_from_its_failed_step_with_the_outputs_it_had() {
    let mut flow = Flow::start("retry_from_failed").await;
    flow.deploy_manifest(CHAIN);
    flow.start_worker(2);
    let id = flow.start_run("needs-key", json!({"deal_id": 7})).await;
    assert_eq!(flow.wait_final(&[id], WAIT).await, vec!["failed"]);
    let (_, failed) = flow.get(&format!("/api/runs/{id}")).await;
    assert_eq!(failed["error"]["step"], "call", "{failed}");
    assert_eq!(step(&failed, "after")["status"], "cancelled");
    let first_output = step(&failed, "first")["output"].clone();
    assert_eq!(first_output["attempt"], 1, "{failed}");

    // A viewer may not retry; an unknown run is not found.
    let (_, viewer) = crm_testing::users::with_token(&flow.db, "Vic Viewer", Role::Viewer).await;
    let (status, body) = crm_testing::send(
        flow.client
            .request(Method::POST, format!("{}/api/runs/{id}/retry", flow.url))
            .bearer_auth(&viewer)
            .json(&json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = flow.post(&format!("/api/runs/{}/retry", uuid::Uuid::now_v7()), json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The cause is fixed; the run goes on from `call`.
    let (status, body) =
        crm_testing::send(flow.request(Method::PUT, "/api/secrets/API_KEY").json(&json!({"value": "k-123"}))).await;
    assert!(status.is_success(), "{body}");
    let (ok, out) = crm_run(&flow, &["retry", &id.to_string()]);
    assert!(ok && out.contains("retrying from the failed step"), "{out}");
    assert_eq!(flow.wait_final(&[id], WAIT).await, vec!["succeeded"]);
    let (_, run) = flow.get(&format!("/api/runs/{id}")).await;
    assert_eq!(run["error"], Value::Null, "{run}");
    assert_eq!(attempts(&run, "first"), [(1, "succeeded".to_string())], "first did not run again");
    assert_eq!(step(&run, "first")["output"], first_output);
    assert_eq!(attempts(&run, "call"), [(1, "failed".to_string()), (2, "succeeded".to_string())], "{run}");
    assert_eq!(step(&run, "call")["output"]["count"], 1, "{run}");
    let after = &step(&run, "after")["output"];
    assert_eq!(after["deps"]["call"]["count"], 1, "the output of the retried step flows on: {run}");
    assert_eq!(after["attempt"], 1, "{run}");
    flow.assert_clean_history(&[id]).await;

    // Only a failed run is retried.
    let (status, body) = flow.post(&format!("/api/runs/{id}/retry"), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("is succeeded; only a failed run can be retried"), "{message}");
    let (ok, out) = crm_run(&flow, &["retry", &id.to_string()]);
    assert!(!ok && out.contains("only a failed run can be retried"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_that_fails_again_can_be_retried_again() {
    let mut flow = Flow::start("retry_twice").await;
    flow.deploy_manifest(CHAIN);
    flow.start_worker(2);
    let id = flow.start_run("needs-key", json!({})).await;
    assert_eq!(flow.wait_final(&[id], WAIT).await, vec!["failed"]);
    let (status, body) = flow.post(&format!("/api/runs/{id}/retry"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(flow.wait_final(&[id], WAIT).await, vec!["failed"], "still no key");
    let (_, run) = flow.get(&format!("/api/runs/{id}")).await;
    assert_eq!(attempts(&run, "call"), [(1, "failed".to_string()), (2, "failed".to_string())], "{run}");
    assert_eq!(attempts(&run, "first").len(), 1);
    let (status, body) =
        crm_testing::send(flow.request(Method::PUT, "/api/secrets/API_KEY").json(&json!({"value": "k"}))).await;
    assert!(status.is_success(), "{body}");
    let (status, _) = flow.post(&format!("/api/runs/{id}/retry"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(flow.wait_final(&[id], WAIT).await, vec!["succeeded"]);
    flow.assert_clean_history(&[id]).await;
}

/// `tell` runs only when the run fails, and gets the failure.
const HANDLED: &str = r#"
name = "handled"
version = "1"

[[steps]]
id = "first"
component = "fixture-echo"

[[steps]]
id = "call"
component = "fixture-counter"
needs = ["first"]
capabilities = ["secret:API_KEY", "state"]
config = { secret = "API_KEY" }
retry = { max_attempts = 1 }

[[steps]]
id = "tell"
component = "fixture-echo"
on_failure = true
"#;

#[tokio::test(flavor = "multi_thread")]
async fn on_failure_steps_run_with_the_failure_and_are_skipped_when_the_run_succeeds() {
    let mut flow = Flow::start("retry_on_failure").await;
    flow.deploy_manifest(HANDLED);
    flow.start_worker(2);
    let id = flow.start_run("handled", json!({"deal_id": 7})).await;
    assert_eq!(flow.wait_final(&[id], WAIT).await, vec!["failed"]);
    let (_, run) = flow.get(&format!("/api/runs/{id}")).await;
    assert_eq!(run["error"]["step"], "call", "the run's error is the failure, not the handler's: {run}");
    let tell = step(&run, "tell");
    assert_eq!(tell["status"], "succeeded", "{run}");
    let failure = &tell["output"]["deps"]["failure"];
    assert_eq!(failure["step"], "call", "{run}");
    assert_eq!(failure["code"], run["error"]["code"]);
    assert_eq!(failure["message"], run["error"]["message"]);
    assert_eq!(tell["output"]["run_input"]["deal_id"], 7);
    flow.assert_clean_history(&[id]).await;

    // Retried after the fix, the run succeeds and the handler has nothing more to do.
    let (status, body) =
        crm_testing::send(flow.request(Method::PUT, "/api/secrets/API_KEY").json(&json!({"value": "k"}))).await;
    assert!(status.is_success(), "{body}");
    let (status, _) = flow.post(&format!("/api/runs/{id}/retry"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(flow.wait_final(&[id], WAIT).await, vec!["succeeded"]);
    let (_, run) = flow.get(&format!("/api/runs/{id}")).await;
    assert_eq!(step(&run, "tell")["status"], "skipped", "{run}");
    assert_eq!(run["result"]["count"], 1, "the handler is not the result: {run}");

    // A run that succeeds at once never runs it.
    let ok = flow.start_run("handled", json!({})).await;
    assert_eq!(flow.wait_final(&[ok], WAIT).await, vec!["succeeded"]);
    let (_, run) = flow.get(&format!("/api/runs/{ok}")).await;
    assert_eq!(step(&run, "tell")["status"], "skipped", "{run}");
    assert!(attempts(&run, "tell").is_empty(), "{run}");
}

/// `who` presses a button under `message`; returns the text the press was answered with.
async fn press(api: &LocalBotApi, who: &TgUser, message: i64, data: &str) -> String {
    let since = api.seq();
    let id = api.press(who, message, data);
    let answer = api
        .wait_for(since, WAIT, |c| c.method == "answerCallbackQuery" && c.params["callback_query_id"] == id)
        .await
        .expect("the press was answered");
    answer.params["text"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_message_in_the_chat_has_a_retry_button() {
    let mut flow = Flow::start("retry_bot").await;
    flow.deploy_manifest(CHAIN);
    flow.start_worker(2);
    let max = TgUser::new(6301, "Max");
    let vic = TgUser::new(6302, "Vic");
    for (name, role, tg) in [("Max Manager", Role::Manager, max.id), ("Vic Viewer", Role::Viewer, vic.id)] {
        crm_store::users::create(
            &flow.db,
            &Actor::system(),
            NewUser { name: name.into(), email: None, role, telegram_user_id: Some(tg), time_zone: None },
        )
        .await
        .expect("create user");
    }
    let api = LocalBotApi::start("4646:local-test-token").await.expect("local Bot API server");
    let data = tempfile::tempdir().expect("temp dir");
    let mut cmd = crm();
    crm_testing::bot::configure(&mut cmd, &api, &flow.url, &flow.bot_token, data.path())
        .env("CRM_BOT_POLL_TIMEOUT_SECS", "10")
        .env("RUST_LOG", rust_log("warn"));
    let _bot = Process::spawn("crm bot", cmd, &data.path().join("bot.log")).expect("start crm bot");
    api.wait_for(0, WAIT, |c| c.method == "getUpdates" && c.result.is_some()).await.expect("the bot never polled");

    let since = api.seq();
    api.send_text(&max, "/run needs-key");
    let failed = api
        .wait_for(since, WAIT, |c| c.is_reply_to(max.id) && c.text().contains("failed"))
        .await
        .expect("the failure in the chat");
    let message = failed.message_id().expect("message id");
    let buttons = failed.buttons();
    assert_eq!(buttons.len(), 1, "{buttons:?}");
    assert_eq!(buttons[0].0, "🔁 Retry from the failed step");
    let (_, page) = flow.get("/api/runs?workflow=needs-key").await;
    let run = page["items"][0]["id"].as_str().expect("the run").to_string();
    assert_eq!(buttons[0].1, format!("rt:{run}"));

    // A viewer may not; the run stays failed.
    let refused = press(&api, &vic, message, &buttons[0].1).await;
    assert!(refused.contains("role does not allow"), "{refused}");
    let (_, detail) = flow.get(&format!("/api/runs/{run}")).await;
    assert_eq!(detail["status"], "failed");

    let (status, body) =
        crm_testing::send(flow.request(Method::PUT, "/api/secrets/API_KEY").json(&json!({"value": "k"}))).await;
    assert!(status.is_success(), "{body}");
    let since = api.seq();
    assert_eq!(press(&api, &max, message, &buttons[0].1).await, "Retrying.");
    api.wait_for(since, WAIT, |c| {
        c.method == "editMessageText" && c.message_id() == Some(message) && c.text().contains("finished")
    })
    .await
    .expect("the same message turns into the result");
    let (_, detail) = flow.get(&format!("/api/runs/{run}")).await;
    assert_eq!(detail["status"], "succeeded", "{detail}");
    // Pressed again on a run that succeeded: nothing happens, and the presser hears why.
    let again = press(&api, &max, message, &buttons[0].1).await;
    assert!(again.contains("only a failed run can be retried"), "{again}");
}
