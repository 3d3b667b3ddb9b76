//! `approval` steps through the API: the run waits for a person; only a user of the role
//! the step names (admins always) may decide; the decision, who made it and when become
//! the step's output and choose the branch; a second decision is refused; the timeout
//! decides the declared outcome. (The bot's buttons over this: `bot_approvals.rs`.)

use std::time::Duration;

use crm_concepts::user::Role;
use crm_testing::Flow;
use crm_testing::manifests::DISCOUNT;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

fn step<'a>(run: &'a Value, id: &str) -> &'a Value {
    run["steps"].as_array().and_then(|s| s.iter().find(|s| s["step"] == id)).unwrap_or_else(|| panic!("no step {id}"))
}

async fn as_user(
    flow: &Flow,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = flow.client.request(method, format!("{}{path}", flow.url)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    crm_testing::send(req).await
}

async fn setup(purpose: &str) -> (Flow, Uuid) {
    let mut flow = Flow::start_with_test_clock(purpose).await;
    flow.deploy_manifest(DISCOUNT);
    flow.start_worker(4);
    let id = flow.start_run("discount", json!({"percent": 25, "deal_id": 7})).await;
    let run = flow.wait_status(id, "waiting", Duration::from_secs(30)).await;
    assert_eq!(run["waiting_for"][0]["kind"], "approval", "{run}");
    let what = run["waiting_for"][0]["what"].as_str().unwrap();
    assert!(what.starts_with("for a manager's approval of \"Give 25% off deal 7?\" until "), "{what}");
    (flow, id)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manager_approves_a_viewer_may_not_and_a_second_decision_is_refused() {
    let (flow, id) = setup("approval_decided").await;
    let (manager, manager_token) = crm_testing::users::with_token(&flow.db, "Mia Manager", Role::Manager).await;
    let (_, viewer_token) = crm_testing::users::with_token(&flow.db, "Vic Viewer", Role::Viewer).await;
    let decide = format!("/api/approvals/{id}/ok");

    let (status, list) = as_user(&flow, &manager_token, reqwest::Method::GET, "/api/approvals", None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["items"][0]["text"], "Give 25% off deal 7?", "{list}");
    let (_, list) = as_user(&flow, &viewer_token, reqwest::Method::GET, "/api/approvals", None).await;
    assert_eq!(list["items"], json!([]), "a viewer is asked nothing");

    let (status, body) =
        as_user(&flow, &viewer_token, reqwest::Method::POST, &decide, Some(json!({"decision": "approved"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (_, run) = flow.get(&format!("/api/runs/{id}")).await;
    assert_eq!(run["status"], "waiting", "a refused press decides nothing");

    let (status, body) = as_user(
        &flow,
        &manager_token,
        reqwest::Method::POST,
        &decide,
        Some(json!({"decision": "approved", "comment": "fine this once"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = flow.post(&decide, json!({"decision": "rejected"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "the first decision stands: {body}");

    assert_eq!(flow.wait_final(&[id], Duration::from_secs(30)).await, vec!["succeeded"]);
    let (_, run) = flow.get(&format!("/api/runs/{id}")).await;
    let out = &step(&run, "ok")["output"];
    assert_eq!(out["decision"], "approved", "{run}");
    assert_eq!(out["decided_by"], manager);
    assert_eq!(out["comment"], "fine this once");
    assert_eq!(out["timed_out"], false);
    assert!(out["decided_at"].is_string());
    assert_eq!(step(&run, "apply")["status"], "succeeded");
    assert_eq!(step(&run, "decline")["status"], "skipped");
    flow.assert_clean_history(&[id]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn nobody_decides_and_the_timeout_rejects() {
    let (flow, id) = setup("approval_timeout").await;
    flow.advance_clock("2d").await;
    assert_eq!(flow.wait_final(&[id], Duration::from_secs(30)).await, vec!["succeeded"]);
    let (_, run) = flow.get(&format!("/api/runs/{id}")).await;
    let out = &step(&run, "ok")["output"];
    assert_eq!((out["decision"].clone(), out["timed_out"].clone()), (json!("rejected"), json!(true)), "{run}");
    assert_eq!(out["decided_by"], Value::Null);
    assert_eq!(step(&run, "decline")["status"], "succeeded");
    assert_eq!(step(&run, "apply")["status"], "skipped");
    let (status, _) = flow.post(&format!("/api/approvals/{id}/ok"), json!({"decision": "approved"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "too late");
}

#[tokio::test(flavor = "multi_thread")]
async fn where_the_workflow_says_so_only_the_deals_owner_may_decide() {
    let mut flow = Flow::start_with_test_clock("approval_owner").await;
    flow.deploy_manifest(
        r#"
name = "owned"
version = "1"

[[steps]]
id = "ok"
approval = { role = "manager", text = "Close deal {{input.deal_id}}?", timeout = "1d", on_timeout = "rejected", owner_of = { record = "deal", id = "{{input.deal_id}}" } }

[[steps]]
id = "after"
component = "fixture-echo"
needs = ["ok"]
"#,
    );
    flow.start_worker(2);
    let (owner, owner_token) = crm_testing::users::with_token(&flow.db, "Olga Owner", Role::Manager).await;
    let (_, other_token) = crm_testing::users::with_token(&flow.db, "Otto Other", Role::Manager).await;
    let (status, deal) = flow.post("/api/deals", json!({"title": "Owned", "owner_id": owner})).await;
    assert_eq!(status, StatusCode::CREATED, "{deal}");
    let id = flow.start_run("owned", json!({"deal_id": deal["id"]})).await;
    flow.wait_status(id, "waiting", Duration::from_secs(30)).await;
    let decide = format!("/api/approvals/{id}/ok");
    let (status, body) =
        as_user(&flow, &other_token, reqwest::Method::POST, &decide, Some(json!({"decision": "approved"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a manager who does not own the deal: {body}");
    let (status, body) =
        as_user(&flow, &owner_token, reqwest::Method::POST, &decide, Some(json!({"decision": "approved"}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(flow.wait_final(&[id], Duration::from_secs(30)).await, vec!["succeeded"]);
}
