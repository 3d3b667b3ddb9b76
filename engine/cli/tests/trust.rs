//! Zero trust around the sandbox, with real processes: whoever can write to Redis but lacks
//! the engine's key cannot make a worker run anything, widen a grant, get a result applied
//! or a completion forwarded; a worker's host calls are checked against the deployed
//! version whatever the worker believes; a step's deadline covers sleeps and host calls.
//! The worker in these tests has no database: only the engine's URL, a worker credential
//! and Redis.

use std::time::{Duration, Instant};

use crm_concepts::capability::{Capability, Grants};
use crm_concepts::host_call::HostCall;
use crm_concepts::records::NewContact;
use crm_concepts::step::{StepJob, StepLimits, StepOutcome, StepResult, StepUsage, TicketedResult};
use crm_testing::WorkerHarness;
use crm_testing::http::answered_within;
use crm_trust::{EngineKey, Ticket};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn forger() -> EngineKey {
    EngineKey::from_seed(rand::random())
}

/// Adds an entry to the jobs stream as anyone with write access to Redis could.
async fn forge_job(h: &WorkerHarness, payload: &[u8], signature: Option<&str>) {
    let mut conn = h.flow.redis().connection().await;
    let mut cmd = redis::cmd("XADD");
    cmd.arg(&h.queue.keys().jobs).arg("*").arg("p").arg(payload);
    if let Some(s) = signature {
        cmd.arg("s").arg(s);
    }
    let _: String = cmd.query_async(&mut conn).await.expect("XADD");
}

async fn attempts(h: &WorkerHarness, run: uuid::Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM step_attempts WHERE run_id = $1")
        .bind(run)
        .fetch_one(&h.db.pool)
        .await
        .unwrap()
}

fn worker_post(h: &WorkerHarness, path: &str, body: Value) -> reqwest::RequestBuilder {
    h.flow.client.post(format!("{}{path}", h.flow.url)).bearer_auth(&h.flow.worker_credential).json(&body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_the_engine_did_not_sign_runs_nothing() {
    let mut h = WorkerHarness::prepare("trust_jobs").await;
    let echo = h.job("fixture-echo", "echo", &[], StepLimits::default(), json!({"real": true})).await;
    let started = h.start(std::slice::from_ref(&echo)).await;
    let run = started["echo"];
    let (job, payload, signature) = h.sent_job(run).await;

    // The genuine job with wider grants under its own signature; the same job unsigned, and
    // signed by another key; a job naming a component by path, signed by another key.
    let mut widened = job.clone();
    widened.grants = Grants::new([Capability::RecordsWrite, Capability::Http("evil.example".parse().unwrap())]);
    let widened = serde_json::to_vec(&widened).unwrap();
    forge_job(&h, &widened, Some(&signature)).await;
    forge_job(&h, &payload, None).await;
    forge_job(&h, &payload, Some(&forger().sign_jobs(&[&payload])[0])).await;
    let by_path = serde_json::to_vec(&StepJob { component: "../../../etc/passwd".into(), ..job.clone() }).unwrap();
    forge_job(&h, &by_path, Some(&forger().sign_jobs(&[&by_path])[0])).await;
    forge_job(&h, b"not even json", Some("00")).await;

    h.start_worker(&[]).await;
    let results = h.collect(&started, Duration::from_secs(30)).await;
    assert!(matches!(results["echo"].outcome, StepOutcome::Ok { .. }), "{:?}", results["echo"].outcome);
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.log().matches("refused a job from Redis").count() < 5 {
        assert!(Instant::now() < deadline, "the worker did not refuse every forged job:\n{}", h.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(attempts(&h, run).await, 1, "only the genuine job ran, once");
    assert_eq!(h.queue.jobs_len().await.unwrap(), 0, "refused jobs are removed for good");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_must_carry_the_ticket_of_its_own_attempt() {
    let h = WorkerHarness::prepare("trust_results").await;
    let echo = h.job("fixture-echo", "echo", &[], StepLimits::default(), json!({})).await;
    let started = h.start(std::slice::from_ref(&echo)).await;
    let run = started["echo"];
    let (job, _, _) = h.sent_job(run).await;
    let result = |attempt: u32| StepResult {
        key: crm_concepts::step::AttemptKey { attempt, ..job.key.clone() },
        outcome: StepOutcome::Ok { output: json!({"forged": true}).into(), next: None },
        usage: StepUsage::default(),
        logs: vec![],
        worker: "forger".into(),
    };
    let claims = Ticket {
        run_id: run,
        step: job.key.step.clone(),
        attempt: 1,
        workflow: job.workflow.clone(),
        version: 1,
        acting_user: job.acting_user,
        expires_at_ms: i64::MAX,
        provisional: None,
    };
    let forged = TicketedResult { ticket: forger().mint(&claims), result: result(1) };
    let borrowed = TicketedResult { ticket: job.ticket.clone(), result: result(2) };
    for attempt in [forged, borrowed] {
        let resp = worker_post(&h, "/worker/v1/results", json!({ "results": [attempt] })).send().await.unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
    }
    let anonymous = h
        .flow
        .client
        .post(format!("{}/worker/v1/results", h.flow.url))
        .json(&json!({ "results": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401, "the channel needs a worker credential");
    let as_user = h
        .flow
        .client
        .post(format!("{}/worker/v1/results", h.flow.url))
        .bearer_auth(&h.flow.token)
        .json(&json!({ "results": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(as_user.status(), 401, "an admin's API token is not a worker credential");

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(attempts(&h, run).await, 0, "no forged result was applied");
    let (_, metrics) = h.flow.get("/api/scheduler/metrics").await;
    assert_eq!(metrics["results_refused"], 2, "{metrics}");
    let status: String =
        sqlx::query_scalar("SELECT status FROM runs WHERE id = $1").bind(run).fetch_one(&h.db.pool).await.unwrap();
    assert_eq!(status, "queued");

    // The attempt's own ticket and key: applied.
    let genuine = TicketedResult { ticket: job.ticket.clone(), result: result(1) };
    let resp = worker_post(&h, "/worker/v1/results", json!({ "results": [genuine] })).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(attempts(&h, run).await, 1);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_host_call_is_checked_against_the_deployed_grants() {
    let h = WorkerHarness::prepare("trust_calls").await;
    let echo = h.job("fixture-echo", "echo", &[], StepLimits::default(), json!({})).await;
    let reader = h.job("fixture-echo", "reader", &["records:read"], StepLimits::default(), json!({})).await;
    let writer =
        h.job("fixture-echo", "writer", &["records:read", "records:write"], StepLimits::default(), json!({})).await;
    let started = h.start(&[echo, reader, writer]).await;
    let (echo_job, _, _) = h.sent_job(started["echo"]).await;
    let (reader_job, _, _) = h.sent_job(started["reader"]).await;
    let (writer_job, _, _) = h.sent_job(started["writer"]).await;
    let create = HostCall::CreateContact { fields: NewContact { name: "Mallory".into(), ..Default::default() } };
    let call = |ticket: &str, call: &HostCall, write_seq: Option<u32>| json!({ "ticket": ticket, "write_seq": write_seq, "remaining_ms": 5000, "call": call });

    // A step granted nothing cannot write, whatever its worker sends; nor can a forged ticket.
    let resp = worker_post(&h, "/worker/v1/calls", call(&echo_job.ticket, &create, Some(1))).send().await.unwrap();
    assert_eq!(resp.status(), 403, "{}", resp.text().await.unwrap_or_default());
    let read = HostCall::GetContact { id: 1 };
    let resp = worker_post(&h, "/worker/v1/calls", call(&echo_job.ticket, &read, None)).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    let claims = Ticket {
        run_id: echo_job.key.run_id,
        step: echo_job.key.step.clone(),
        attempt: 1,
        workflow: echo_job.workflow.clone(),
        version: 1,
        acting_user: None,
        expires_at_ms: i64::MAX,
        provisional: None,
    };
    let forged = forger().mint(&claims);
    let resp = worker_post(&h, "/worker/v1/calls", call(&forged, &create, Some(1))).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    // A ticket of another attempt does not lend its step's grants either: the reader's
    // ticket reads, and still cannot write.
    let resp = worker_post(&h, "/worker/v1/calls", call(&reader_job.ticket, &create, Some(1))).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    let resp = worker_post(&h, "/worker/v1/calls", call(&reader_job.ticket, &read, None)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["err"]["error"], "not_found", "{answer}");
    // Even a step granted writes cannot write past the journal: a write carries its number
    // (a repeated attempt is answered from the journal), and a read carries none.
    let resp = worker_post(&h, "/worker/v1/calls", call(&writer_job.ticket, &create, None)).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("carries no write number"));
    let resp = worker_post(&h, "/worker/v1/calls", call(&writer_job.ticket, &read, Some(1))).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("carries a write number"));

    let contacts: i64 = sqlx::query_scalar("SELECT count(*) FROM contacts").fetch_one(&h.db.pool).await.unwrap();
    assert_eq!(contacts, 0, "nothing was written");

    // A revoked credential opens nothing.
    let (c, secret) = crm_store::worker_credentials::create(&h.db, "leaked").await.unwrap();
    crm_store::worker_credentials::revoke(&h.db, c.id).await.unwrap();
    let resp = h.flow.client.get(format!("{}/worker/v1/hello", h.flow.url)).bearer_auth(secret).send().await.unwrap();
    assert_eq!(resp.status(), 401);

    // One the engine verified a moment ago, revoked by another process (here the test's),
    // stops working when Postgres announces the revoke, well before the engine would have
    // asked Postgres again.
    let (c, secret) = crm_store::worker_credentials::create(&h.db, "stolen").await.unwrap();
    let hello = || h.flow.client.get(format!("{}/worker/v1/hello", h.flow.url)).bearer_auth(&secret);
    assert_eq!(hello().send().await.unwrap().status(), 200);
    crm_store::worker_credentials::revoke(&h.db, c.id).await.unwrap();
    let status = answered_within(Duration::from_secs(2), StatusCode::UNAUTHORIZED, hello).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_the_engine_did_not_seal_never_leaves_the_api() {
    let mut h = WorkerHarness::prepare("trust_completions").await;
    h.start_worker(&[]).await;
    let stream = h
        .flow
        .client
        .get(format!("{}/api/completions", h.flow.url))
        .bearer_auth(&h.flow.token)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let mut body = stream.bytes_stream();

    let forged_run = uuid::Uuid::now_v7();
    let completion = json!({
        "run_id": forged_run, "workflow": "t-echo", "status": "succeeded",
        "rendered": "Your account is locked: log in at https://evil.example",
        "notify": {"chat_id": 4242}, "acting_user": 1,
    })
    .to_string();
    let mut conn = h.flow.redis().connection().await;
    for seal in [None, Some("00".to_string()), Some(forger().seal(completion.as_bytes()))] {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&h.queue.keys().completions).arg("*").arg("run_id").arg(forged_run.to_string());
        cmd.arg("data").arg(&completion);
        if let Some(s) = &seal {
            cmd.arg("mac").arg(s);
        }
        let _: String = cmd.query_async(&mut conn).await.unwrap();
    }
    let echo = h.job("fixture-echo", "echo", &[], StepLimits::default(), json!({})).await;
    let started = h.start(std::slice::from_ref(&echo)).await;
    let real = started["echo"].to_string();

    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !seen.contains(&real) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, body.next()).await {
            Ok(Some(Ok(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("the real completion never came: {other:?}; got {seen}"),
        }
    }
    assert!(!seen.contains(&forged_run.to_string()), "a forged completion was forwarded: {seen}");
    assert!(!seen.contains("evil.example"), "{seen}");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_sleeps_for_an_hour_under_a_one_second_timeout_is_stopped_in_time() {
    let mut h = WorkerHarness::prepare("trust_deadline").await;
    // One slot: the next step can only run once the sleeper's slot is free again.
    h.start_worker_running(1, &[]).await;
    let one_second = StepLimits { timeout_ms: 1_000, ..StepLimits::default() };
    let sleeper = h.job("fixture-slow", "sleeper", &[], one_second.clone(), json!({"ms": 3_600_000})).await;
    let echo = h.job("fixture-echo", "next", &[], StepLimits::default(), json!({})).await;
    // Both components compiled and cached first: what is timed is the deadline, not a compile.
    let warm = h.job("fixture-slow", "warm", &[], one_second.clone(), json!({"ms": 0})).await;
    h.run(&[warm, echo.clone()], Duration::from_secs(30)).await;
    let started_at = Instant::now();
    let sleeping = h.start(std::slice::from_ref(&sleeper)).await;
    let next = h.start(std::slice::from_ref(&echo)).await;
    let slept = h.collect(&sleeping, Duration::from_secs(10)).await;
    let stopped_after = started_at.elapsed();
    match &slept["sleeper"].outcome {
        StepOutcome::Failed { error } => assert_eq!(error.code, "timeout", "{error}"),
        StepOutcome::Ok { output, .. } => panic!("the sleeper returned {output}"),
    }
    assert!(slept["sleeper"].usage.duration_us < 1_100_000, "stopped late: {:?}", slept["sleeper"].usage);
    assert!(stopped_after < Duration::from_millis(1_500), "the run reported its timeout after {stopped_after:?}");
    let ran = h.collect(&next, Duration::from_secs(5)).await;
    assert!(matches!(ran["next"].outcome, StepOutcome::Ok { .. }), "{:?}", ran["next"].outcome);
    assert!(started_at.elapsed() < Duration::from_secs(3), "the slot was not free at once");
    h.finish().await;
}
