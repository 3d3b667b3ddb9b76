//! Steps that wait (`wait`): a waiting run is a row in Postgres with a wake time — no
//! worker slot, no Redis entry — shown as `waiting` with what it waits for, woken by the
//! engine's waker, cancellable, and it survives an engine SIGKILL and a Redis FLUSHALL in
//! the middle of its wait. Long waits run on the engine's test clock
//! (`crm serve --test-clock`, moved with `POST /api/engine/clock`); one short wait runs on
//! the real clock.

use std::time::Duration;

use crm_testing::Flow;
use serde_json::{Value, json};
use uuid::Uuid;

/// echo, wait three days, echo.
const DRIP: &str = r#"
name = "drip"
version = "1"

[[steps]]
id = "welcome"
component = "fixture-echo"

[[steps]]
id = "pause"
needs = ["welcome"]
wait = { duration = "3d" }

[[steps]]
id = "feedback"
component = "fixture-echo"
needs = ["pause"]
"#;

fn step<'a>(run: &'a Value, id: &str) -> &'a Value {
    run["steps"].as_array().and_then(|s| s.iter().find(|s| s["step"] == id)).unwrap_or_else(|| panic!("no step {id}"))
}

async fn waits(flow: &Flow, run: Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM run_waits WHERE run_id = $1")
        .bind(run)
        .fetch_one(&flow.db.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_three_day_wait_survives_an_engine_sigkill_and_a_redis_wipe() {
    let mut flow = Flow::start_with_test_clock("waits_crash").await;
    flow.deploy_manifest(DRIP);
    flow.start_worker(4);
    let id = flow.start_run("drip", json!({"who": "ann"})).await;

    let run = flow.wait_status(id, "waiting", Duration::from_secs(30)).await;
    assert_eq!(step(&run, "welcome")["status"], "succeeded");
    assert_eq!(step(&run, "pause")["status"], "held");
    assert_eq!(step(&run, "pause")["kind"], "wait");
    assert_eq!(step(&run, "feedback")["status"], "waiting");
    let waiting = run["waiting_for"].as_array().expect("waiting_for");
    assert_eq!(waiting.len(), 1, "{run}");
    assert_eq!(waiting[0]["step"], "pause");
    assert!(waiting[0]["what"].as_str().unwrap().starts_with("until "), "{run}");
    let (_, list) = flow.get("/api/runs?status=waiting").await;
    assert_eq!(list["items"][0]["waiting_for"][0]["step"], "pause", "{list}");
    let shown = flow
        .command(&["run", "show", &id.to_string(), "--engine", &flow.url, "--token", &flow.token])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("waiting") && shown.contains("step pause waits until "), "{shown}");
    assert!(shown.contains("step pause (wait)  held"), "{shown}");
    // Nothing of it is on Redis or held by a worker.
    assert_eq!(flow.jobs_in_progress().await, 0);

    // The engine dies without a word and Redis forgets everything, mid-wait.
    flow.kill_engine();
    assert!(flow.wipe_redis().await > 0, "Redis held the installation's keys");
    flow.start_engine().await;

    // Two days on it still waits; three days on it goes on, once.
    flow.advance_clock("2d").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, run) = flow.get(&format!("/api/runs/{id}")).await;
    assert_eq!(run["status"], "waiting", "{run}");
    flow.advance_clock("1d").await;
    let statuses = flow.wait_final(&[id], Duration::from_secs(30)).await;
    assert_eq!(statuses, vec!["succeeded"]);
    flow.assert_clean_history(&[id]).await;
    let (_, run) = flow.get(&format!("/api/runs/{id}")).await;
    assert_eq!(step(&run, "pause")["status"], "succeeded");
    assert!(step(&run, "pause")["output"]["woke_at"].is_string(), "{run}");
    assert_eq!(step(&run, "feedback")["status"], "succeeded");
    assert_eq!(run["waiting_for"], json!([]));
    assert_eq!(waits(&flow, id).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_engines_fire_each_due_wait_once() {
    let mut flow = Flow::start_with_test_clock("waits_replicas").await;
    flow.deploy_manifest(DRIP);
    flow.start_worker(8);
    let second = flow.command(&["serve", "--listen", "127.0.0.1:0", "--test-clock"]);
    let mut second = flow.spawn_command("crm serve 2", second);
    second.listening_url(Duration::from_secs(30)).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(flow.start_run("drip", json!({"n": i})).await);
    }
    for id in &ids {
        flow.wait_status(*id, "waiting", Duration::from_secs(60)).await;
    }
    // All twenty fall due at the same moment, in front of both engines.
    flow.advance_clock("4d").await;
    let statuses = flow.wait_final(&ids, Duration::from_secs(60)).await;
    assert!(statuses.iter().all(|s| s == "succeeded"), "{statuses:?}");
    flow.assert_clean_history(&ids).await;
    let wakes: i64 = sqlx::query_scalar("SELECT count(*) FROM step_attempts WHERE run_id = ANY($1) AND step = 'pause'")
        .bind(&ids)
        .fetch_one(&flow.db.pool)
        .await
        .unwrap();
    assert_eq!(wakes, 20, "each wait ended once");
    second.kill();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wait_until_a_time_from_the_input_and_a_waiting_run_cancelled() {
    let mut flow = Flow::start_with_test_clock("waits_until").await;
    flow.deploy_manifest(
        r#"
name = "remind-at"
version = "1"

[[steps]]
id = "until"
wait = { until = "{{input.at}}" }

[[steps]]
id = "remind"
component = "fixture-echo"
needs = ["until"]
"#,
    );
    flow.start_worker(2);
    let (_, clock) = flow.get("/api/engine/clock").await;
    let now: chrono::DateTime<chrono::Utc> = clock["now"].as_str().unwrap().parse().unwrap();
    let at = (now + chrono::Duration::hours(5)).to_rfc3339();

    // A run that starts by waiting is `waiting` from its first answer.
    let (status, accepted) = flow.post("/api/runs", json!({"workflow": "remind-at", "input": {"at": at}})).await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(accepted["status"], "waiting");
    let id: Uuid = accepted["id"].as_str().unwrap().parse().unwrap();
    let cancelled = flow.start_run("remind-at", json!({"at": at})).await;

    // A time that is no time is refused at the door, and nothing is written.
    let (status, body) = flow.post("/api/runs", json!({"workflow": "remind-at", "input": {"at": "soon"}})).await;
    assert_eq!(status, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("which is not a time"), "{body}");

    let (status, run) = flow.post(&format!("/api/runs/{cancelled}/cancel"), json!({})).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{run}");
    assert_eq!(run["status"], "cancelled");
    assert_eq!(waits(&flow, cancelled).await, 0, "a cancelled run leaves no wait behind");

    flow.advance_clock("4h").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, run) = flow.get(&format!("/api/runs/{id}")).await;
    assert_eq!(run["status"], "waiting");
    flow.advance_clock("1h").await;
    assert_eq!(flow.wait_final(&[id], Duration::from_secs(30)).await, vec!["succeeded"]);
    let (_, run) = flow.get(&format!("/api/runs/{cancelled}")).await;
    assert_eq!(step(&run, "remind")["status"], "cancelled");
}

/// The real clock: a two-second wait ends by itself, with no test clock to move.
#[tokio::test(flavor = "multi_thread")]
async fn a_short_wait_on_the_real_clock_ends_by_itself() {
    let mut flow = Flow::start("waits_real").await;
    flow.deploy_manifest(
        r#"
name = "breather"
version = "1"

[[steps]]
id = "pause"
wait = { duration = "2s" }

[[steps]]
id = "after"
component = "fixture-echo"
needs = ["pause"]
"#,
    );
    flow.start_worker(2);
    let id = flow.start_run("breather", json!({})).await;
    let (_, run) = flow.get(&format!("/api/runs/{id}")).await;
    assert_eq!(run["status"], "waiting", "{run}");
    let (status, body) = flow.post("/api/engine/clock", json!({"by": "1d"})).await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND, "a real clock does not move: {body}");
    assert_eq!(flow.wait_final(&[id], Duration::from_secs(30)).await, vec!["succeeded"]);
}
