//! Steps that wait for a record event (`wait_event`): held until a change of one record
//! matches the same filter language record-event triggers use, or until a timeout that
//! takes its own branch. Woken by a deal moved through the API; separately, timed out on
//! the engine's test clock.

use std::time::Duration;

use crm_testing::Flow;
use serde_json::{Value, json};
use uuid::Uuid;

/// Wait three days for the deal's stage to change: if it moves, `moved_on` runs; if not,
/// `remind` does.
const NUDGE: &str = r#"
name = "nudge"
version = "1"

[[steps]]
id = "moved"
wait_event = { record = "deal", id = "{{input.deal_id}}", actions = ["updated"], filter = { changed = ["stage_id"] }, timeout = "3d", on_timeout = "remind" }

[[steps]]
id = "remind"
component = "fixture-echo"
needs = ["moved"]

[[steps]]
id = "moved_on"
component = "fixture-echo"
needs = ["moved"]
"#;

fn step<'a>(run: &'a Value, id: &str) -> &'a Value {
    run["steps"].as_array().and_then(|s| s.iter().find(|s| s["step"] == id)).unwrap_or_else(|| panic!("no step {id}"))
}

async fn setup(purpose: &str) -> (Flow, i64, i64, Vec<i64>) {
    let mut flow = Flow::start_with_test_clock(purpose).await;
    flow.deploy_manifest(NUDGE);
    flow.start_worker(4);
    let (_, pipelines) = flow.get("/api/pipelines").await;
    let stages: Vec<i64> =
        pipelines["items"][0]["stages"].as_array().expect("stages").iter().filter_map(|s| s["id"].as_i64()).collect();
    let mut deals = Vec::new();
    for title in ["Watched", "Other"] {
        let (status, d) = flow.post("/api/deals", json!({"title": title})).await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{d}");
        deals.push(d["id"].as_i64().unwrap());
    }
    (flow, deals[0], deals[1], stages)
}

async fn run(flow: &Flow, id: Uuid) -> Value {
    flow.get(&format!("/api/runs/{id}")).await.1
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deal_moved_through_the_api_wakes_the_run_that_waits_for_it() {
    let (flow, deal, other, stages) = setup("wait_event_moved").await;
    let id = flow.start_run("nudge", json!({"deal_id": deal})).await;
    let waiting = flow.wait_status(id, "waiting", Duration::from_secs(30)).await;
    let what = waiting["waiting_for"][0]["what"].as_str().unwrap();
    assert!(what.starts_with(&format!("for a change of deal {deal} (updated, stage_id changed) until ")), "{what}");

    // Changes that do not match: another field of this deal, the stage of another deal.
    let renamed =
        flow.request(reqwest::Method::PATCH, &format!("/api/deals/{deal}")).json(&json!({"title": "Renamed"}));
    assert_eq!(renamed.send().await.unwrap().status(), reqwest::StatusCode::OK);
    let (status, body) = flow.post(&format!("/api/deals/{other}/move"), json!({"stage_id": stages[1]})).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(run(&flow, id).await["status"], "waiting");

    // The watched deal moves: the run goes on along the non-timeout branch.
    let (status, body) = flow.post(&format!("/api/deals/{deal}/move"), json!({"stage_id": stages[1]})).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    assert_eq!(flow.wait_final(&[id], Duration::from_secs(30)).await, vec!["succeeded"]);
    let done = run(&flow, id).await;
    let moved = step(&done, "moved");
    assert_eq!(moved["output"]["timed_out"], false, "{done}");
    assert_eq!(moved["output"]["event"]["deal_id"], deal);
    assert!(moved["output"]["event"]["changes"]["stage_id"].is_array(), "{moved}");
    assert_eq!(step(&done, "moved_on")["status"], "succeeded");
    assert_eq!(step(&done, "remind")["status"], "skipped");

    // Its timeout, long after, finds nothing to fire.
    flow.advance_clock("4d").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(step(&run(&flow, id).await, "remind")["status"], "skipped");
    flow.assert_clean_history(&[id]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deal_that_does_not_move_times_out_into_the_timeout_branch() {
    let (flow, deal, _, stages) = setup("wait_event_timeout").await;
    let id = flow.start_run("nudge", json!({"deal_id": deal})).await;
    flow.wait_status(id, "waiting", Duration::from_secs(30)).await;
    flow.advance_clock("2d").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(run(&flow, id).await["status"], "waiting");
    flow.advance_clock("1d").await;
    assert_eq!(flow.wait_final(&[id], Duration::from_secs(30)).await, vec!["succeeded"]);
    let done = run(&flow, id).await;
    assert_eq!(step(&done, "moved")["output"]["timed_out"], true, "{done}");
    assert_eq!(step(&done, "remind")["status"], "succeeded");
    assert_eq!(step(&done, "moved_on")["status"], "skipped");

    // A move after the timeout wakes nothing.
    let (status, _) = flow.post(&format!("/api/deals/{deal}/move"), json!({"stage_id": stages[1]})).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(step(&run(&flow, id).await, "moved_on")["status"], "skipped");
    flow.assert_clean_history(&[id]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_id_that_is_no_record_id_is_refused_at_the_start() {
    let (flow, _, _, _) = setup("wait_event_bad_id").await;
    let (status, body) = flow.post("/api/runs", json!({"workflow": "nudge", "input": {"deal_id": "seven"}})).await;
    assert_eq!(status, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("which is not a record id"), "{body}");
}
