//! Workflow runs end to end with real processes: a three-step example workflow built from
//! `workflows/` is deployed with `crm workflow deploy`, started through the API, carried
//! by `crm serve` and a `crm worker` through Postgres and Redis, and inspected afterwards.

use std::time::Duration;

use crm_testing::Flow;
use futures::StreamExt;
use serde_json::{Value, json};
use uuid::Uuid;

async fn create(flow: &Flow, path: &str, body: Value) -> i64 {
    let (status, v) = flow.post(path, body).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{path}: {v}");
    v["id"].as_i64().expect("id")
}

fn step<'a>(run: &'a Value, id: &str) -> &'a Value {
    run["steps"].as_array().and_then(|s| s.iter().find(|s| s["step"] == id)).unwrap_or_else(|| panic!("no step {id}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn qualify_lead_runs_three_steps_on_real_workers_and_records_its_history() {
    let mut flow = Flow::start("runs_e2e").await;
    let out = flow.deploy("qualify-lead");
    assert!(out.contains("deployed qualify-lead version 1"), "{out}");
    flow.start_worker(8);

    // A warm lead (reachable, a sizeable open deal) and a cold one (nothing known).
    let ann =
        create(&flow, "/api/contacts", json!({"name": "Ann Lee", "email": "ann@lee.example", "phone": "+1 555 0100"}))
            .await;
    create(
        &flow,
        "/api/deals",
        json!({"title": "Lee Corp rollout", "amount_minor": 5_000_000, "pipeline_id": 1, "stage_id": 1, "contact_id": ann}),
    )
    .await;
    let bob = create(&flow, "/api/contacts", json!({"name": "Bob Cold"})).await;

    let warm = flow.start_run("qualify-lead", json!({"contact_id": ann})).await;
    let cold = flow.start_run("qualify-lead", json!({"contact_id": bob})).await;
    let statuses = flow.wait_final(&[warm, cold], Duration::from_secs(60)).await;
    assert_eq!(statuses, vec!["succeeded", "succeeded"]);

    // The warm lead took the follow-up branch: three steps, a task, a summary naming it.
    let (status, run) = flow.get(&format!("/api/runs/{warm}")).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["version"], 1);
    let ids: Vec<&str> = run["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["score", "follow_up", "summary"]);
    let score = step(&run, "score");
    assert_eq!(score["status"], "succeeded");
    assert_eq!(score["output"]["grade"], "warm", "{}", score["output"]);
    assert_eq!(score["next"], json!(["follow_up", "summary"]));
    assert_eq!(score["input"]["run_input"], json!({"contact_id": ann}));
    let follow_up = step(&run, "follow_up");
    assert_eq!(follow_up["status"], "succeeded");
    assert_eq!(follow_up["input"]["deps"]["score"]["name"], "Ann Lee");
    let task_id = follow_up["output"]["task_id"].as_i64().expect("task id");
    let (_, task) = flow.get(&format!("/api/tasks/{task_id}")).await;
    assert_eq!(task["title"], "Call Ann Lee: qualified lead");
    assert_eq!(task["contact_id"], ann);
    let summary = step(&run, "summary");
    assert_eq!(summary["input"]["deps"].as_object().unwrap().len(), 2);
    let text = run["rendered"].as_str().unwrap();
    assert!(text.starts_with("Ann Lee scores "), "{text}");
    assert!(text.contains(&format!("Follow-up task #{task_id}: Call Ann Lee")), "{text}");
    assert_eq!(run["result"]["task_id"], task_id);
    for s in run["steps"].as_array().unwrap() {
        let attempts = s["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1, "{}", s["step"]);
        let a = &attempts[0];
        assert_eq!(
            (a["attempt"].as_i64(), a["status"].as_str(), a["applied"].as_bool()),
            (Some(1), Some("succeeded"), Some(true))
        );
        assert!(!a["worker"].as_str().unwrap().is_empty());
        assert!(a["usage"]["duration_us"].as_u64().unwrap() > 0, "{}", a["usage"]);
        assert!(s["duration_ms"].as_f64().is_some());
        // Where the attempt's time went: every point of its path, in path order.
        let t = &a["usage"]["timeline"];
        let points: Vec<u64> =
            ["sent_us", "picked_us", "started_us", "finished_us", "received_us", "recorded_us", "applied_us"]
                .iter()
                .map(|p| t[p].as_u64().unwrap_or_else(|| panic!("{p} missing: {t}")))
                .collect();
        assert!(points[0] > 0 && points.windows(2).all(|w| w[0] <= w[1]), "timeline out of order: {t}");
    }
    // ...and each step was sent only after the one before it was applied.
    let sent = |id: &str| step(&run, id)["attempts"][0]["usage"]["timeline"]["sent_us"].as_u64().unwrap();
    let applied = |id: &str| step(&run, id)["attempts"][0]["usage"]["timeline"]["applied_us"].as_u64().unwrap();
    assert!(applied("score") <= sent("follow_up"), "{run}");
    // lead-score logs through the log capability; the history keeps the lines
    let logs = step(&run, "score")["attempts"][0]["logs"].as_array().unwrap().clone();
    assert!(logs.iter().any(|l| l["message"] == "lead scored"), "{logs:?}");

    // The cold lead skipped the follow-up; the summary ran without it.
    let (_, run) = flow.get(&format!("/api/runs/{cold}")).await;
    assert_eq!(step(&run, "score")["output"]["grade"], "cold");
    assert_eq!(step(&run, "follow_up")["status"], "skipped");
    assert_eq!(step(&run, "summary")["status"], "succeeded");
    assert!(run["rendered"].as_str().unwrap().contains("No follow-up for now."), "{}", run["rendered"]);

    flow.assert_clean_history(&[warm, cold]).await;

    // History through the API list and the CLI.
    let (_, page) = flow.get("/api/runs?workflow=qualify-lead&status=succeeded").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let out = crm_testing::process::crm()
        .args(["run", "show", &warm.to_string(), "--engine", &flow.url, "--token", &flow.token])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("step follow_up  succeeded  attempt 1"), "{shown}");
    assert!(shown.contains("path  on Redis "), "{shown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn completions_stream_to_the_bot_and_resume_after_a_reconnect() {
    let mut flow = Flow::start("runs_sse").await;
    flow.deploy("bench-three-steps");
    flow.start_worker(4);

    // notify may name only the caller's own chat: this admin's Telegram account is 4242.
    sqlx::query("UPDATE users SET telegram_user_id = 4242 WHERE id = $1")
        .bind(flow.admin_id)
        .execute(&flow.db.pool)
        .await
        .unwrap();
    let open = || flow.request(reqwest::Method::GET, "/api/completions").timeout(Duration::from_secs(60)).send();
    let resp = open().await.unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    let mut events = resp.bytes_stream();

    let (status, body) = flow
        .post(
            "/api/runs",
            json!({"workflow": "bench-three-steps", "input": {"n": 1}, "notify": {"chat_id": 4242, "message_id": 7}}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{body}");
    let first: Uuid = body["id"].as_str().unwrap().parse().unwrap();

    let (event_id, data) = next_completion(&mut events).await;
    assert_eq!(data["run_id"], first.to_string());
    assert_eq!(data["status"], "succeeded");
    assert_eq!(data["notify"], json!({"chat_id": 4242, "message_id": 7}));
    assert_eq!(data["rendered"], "done after 1 attempt(s)");
    drop(events);

    // While the bot is away, another run finishes; reconnecting with Last-Event-ID
    // delivers it.
    let second = flow.start_run("bench-three-steps", json!({"n": 2})).await;
    flow.wait_final(&[second], Duration::from_secs(30)).await;
    let resp = flow
        .request(reqwest::Method::GET, "/api/completions")
        .header("Last-Event-ID", &event_id)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    let mut events = resp.bytes_stream();
    let (_, data) = next_completion(&mut events).await;
    assert_eq!(data["run_id"], second.to_string());

    // The per-run event stream replays the steps and ends with the run.
    let resp = flow.request(reqwest::Method::GET, &format!("/api/runs/{second}/events")).send().await.unwrap();
    let text = resp.text().await.unwrap();
    assert_eq!(text.matches("event: step").count(), 3, "{text}");
    assert!(text.contains("event: run"), "{text}");
}

/// Reads SSE frames until a `completion` event; returns its id and data.
async fn next_completion(
    events: &mut (impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
) -> (String, Value) {
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let field = |name: &str| {
                frame.lines().find_map(|l| l.strip_prefix(&format!("{name}:")).map(|v| v.trim().to_string()))
            };
            if field("event").as_deref() == Some("completion") {
                let data = field("data").expect("data line");
                return (field("id").expect("id line"), serde_json::from_str(&data).expect("json data"));
            }
            continue;
        }
        let chunk = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("a completion within 30 s")
            .expect("stream open")
            .expect("chunk");
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
}

/// A step after a run's first leaves for a worker beside the write that records its
/// predecessor's result; its outbound request waits for the engine to confirm that write,
/// and then goes once.
#[tokio::test(flavor = "multi_thread")]
async fn a_step_sent_beside_its_record_makes_its_request_once_the_record_commits() {
    let (port, served) = crm_testing::http::hello_server().await;
    let mut flow = Flow::start("runs_ahead").await;
    flow.deploy_manifest(&format!(
        r#"
name = "fetch-after"
version = "1"

[[steps]]
id = "first"
component = "fixture-echo"

[[steps]]
id = "fetch"
component = "fixture-http-get"
needs = ["first"]
capabilities = ["http:http://127.0.0.1:{port}"]
"#
    ));
    flow.start_worker_with(4, "w-ahead", &[("CRM_EGRESS_ALLOW", "127.0.0.1")]);
    let url = format!("http://127.0.0.1:{port}/");
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(flow.start_run("fetch-after", json!({"url": url})).await);
    }
    assert_eq!(flow.wait_final(&ids, Duration::from_secs(60)).await, vec!["succeeded"; 20]);
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 20, "one request per run");
    let (_, run) = flow.get(&format!("/api/runs/{}", ids[0])).await;
    assert_eq!(step(&run, "fetch")["output"]["body"], "hello", "{run}");
    let (_, metrics) = flow.get("/api/scheduler/metrics").await;
    assert!(metrics["steps_sent_ahead"].as_u64() >= Some(20), "every fetch left beside its record: {metrics}");
    assert_eq!(metrics["provisional_void"], 0, "{metrics}");
}
