//! The scheduler against real Postgres and Redis, with the test playing the worker's side:
//! it takes each job from Redis (checking the engine's signature, as a worker does) and
//! hands in the result the scenario needs (a retryable error, a duplicate delivery,
//! silence), which real WASM steps cannot be made to do on cue. The full path with real
//! `crm worker` processes is in engine/cli/tests.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crm_concepts::host_call::{HostCall, HostCallError};
use crm_concepts::run::{RunRequest, RunStatus};
use crm_concepts::step::{
    AttemptKey, StepError, StepErrorCode, StepJob, StepOutcome, StepResult, StepUsage, TicketedResult,
};
use crm_concepts::timeline::StepTimeline;
use crm_queue::Queue;
use crm_scheduler::{IntakeError, Scheduler};
use crm_store::Db;
use crm_testing::{ScratchDb, TestPrefix};
use crm_trust::{EngineKey, JobVerifier, SentAhead, Ticket};
use serde_json::{Value, json};
use uuid::Uuid;

/// The smallest bytes the deploy accepts as a component; no worker runs them here.
const FAKE_COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00";

/// What [`Setup::answer`] says of where its attempt went before the engine took it in.
const WORKERS_POINTS: StepTimeline = StepTimeline {
    sent_us: 1_000,
    picked_us: 2_000,
    started_us: 3_000,
    finished_us: 4_000,
    received_us: 0,
    recorded_us: 0,
    applied_us: 0,
};

struct Setup {
    db: Db,
    scheduler: Scheduler,
    worker: Queue,
    scratch: ScratchDb,
    redis: TestPrefix,
}

impl Setup {
    async fn new(purpose: &str, manifests: &[&str]) -> Setup {
        let scratch = ScratchDb::new(&format!("sched_{purpose}"), 8).await;
        let db = scratch.db.clone();
        for m in manifests {
            deploy(&db, m).await;
        }
        let redis = TestPrefix::new(&format!("sched_{purpose}"));
        let mut config = redis.scheduler_config();
        config.fast_path_grace = Duration::from_millis(500);
        config.reconcile_every = Duration::from_millis(100);
        config.lost_after = Duration::from_secs(2);
        let scheduler = Scheduler::start(&db, redis.redis_url(), config).await.unwrap();
        let worker = redis.queue().await;
        Setup { db, scheduler, worker, scratch, redis }
    }

    async fn submit(&self, workflow: &str, input: Value) -> Uuid {
        let req = RunRequest {
            workflow: workflow.into(),
            input,
            acting_user: None,
            notify: None,
            idempotency_key: None,
            trigger: None,
        };
        self.scheduler.submit(req).await.unwrap().id
    }

    /// The next job, as a worker would take it.
    async fn job(&self) -> (String, StepJob) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut jobs = self.worker.read_jobs("test-worker", 1, Duration::from_millis(200)).await.unwrap();
            if let Some(j) = jobs.pop() {
                let verifier = JobVerifier::from_hex(&self.scheduler.public_key()).unwrap();
                assert!(verifier.verify(&j.payload, j.signature.as_deref().unwrap_or_default()), "a signed job");
                return (j.id, serde_json::from_slice(&j.payload).expect("a step job"));
            }
            assert!(Instant::now() < deadline, "no job arrived within 10 s");
        }
    }

    async fn answer(&self, entry: &str, job: &StepJob, outcome: StepOutcome) {
        let result = StepResult {
            key: job.key.clone(),
            outcome,
            // the worker's points of the path; the engine stamps its own
            usage: StepUsage { duration_us: 42, timeline: WORKERS_POINTS, ..Default::default() },
            logs: vec![],
            worker: "test-worker".into(),
        };
        let handed_in = TicketedResult { ticket: job.ticket.clone(), result };
        self.scheduler.accept_results(vec![handed_in]).await.unwrap();
        self.worker.ack_jobs(&[entry.to_string()]).await.unwrap();
    }

    async fn ok(&self, entry: &str, job: &StepJob, output: Value) {
        self.answer(entry, job, StepOutcome::Ok { output: output.into(), next: None }).await;
    }

    /// A run of `chain` taken through its three steps to success.
    async fn finish_chain(&self) -> Uuid {
        let id = self.submit("chain", json!({})).await;
        for output in [json!("a"), json!("b"), json!({"said": "c"})] {
            let (e, job) = self.job().await;
            self.ok(&e, &job, output).await;
        }
        assert_eq!(self.wait_final(id).await.summary.status, RunStatus::Succeeded);
        id
    }

    async fn status(&self, id: Uuid) -> RunStatus {
        crm_store::run_history::get(&self.db.pool, id).await.unwrap().summary.status
    }

    async fn wait_final(&self, id: Uuid) -> crm_store::run_history::RunRecord {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let run = crm_store::run_history::get(&self.db.pool, id).await.unwrap();
            if run.summary.status.is_final() {
                return run;
            }
            assert!(Instant::now() < deadline, "run {id} still {} after 10 s", run.summary.status);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn attempts(&self, id: Uuid) -> Vec<(String, i32, String, bool)> {
        sqlx::query_as(
            "SELECT step, attempt, status, applied FROM step_attempts WHERE run_id = $1 ORDER BY step, attempt",
        )
        .bind(id)
        .fetch_all(&self.db.pool)
        .await
        .unwrap()
    }

    async fn step_statuses(&self, id: Uuid) -> Vec<(String, String)> {
        sqlx::query_as("SELECT step, status FROM run_steps WHERE run_id = $1 ORDER BY step")
            .bind(id)
            .fetch_all(&self.db.pool)
            .await
            .unwrap()
    }

    /// Simulates Redis losing everything of this installation (FLUSHALL without touching
    /// other tests' keys on the shared Redis).
    async fn wipe_redis(&self) {
        self.redis.clear().await;
    }

    /// Leaves the row of an engine that died (its lock free) with its mark just before
    /// `run` finished: everything the engine finished from then on may be unpublished.
    async fn engine_died_before(&self, run: Uuid) {
        sqlx::query(
            "INSERT INTO engine_marks (engine, published_through)
             SELECT gen_random_uuid(), finished_at - interval '1 millisecond' FROM runs WHERE id = $1",
        )
        .bind(run)
        .execute(&self.db.pool)
        .await
        .unwrap();
    }

    /// Every engine's row: its id and mark, oldest mark first.
    async fn marks(&self) -> Vec<(Uuid, chrono::DateTime<chrono::Utc>)> {
        sqlx::query_as("SELECT engine, published_through FROM engine_marks ORDER BY published_through")
            .fetch_all(&self.db.pool)
            .await
            .unwrap()
    }

    async fn teardown(self) {
        self.scheduler.shutdown().await;
        self.wipe_redis().await;
        self.db.pool.close().await;
        self.scratch.close().await;
    }
}

async fn deploy(db: &Db, manifest: &str) -> i32 {
    let m = crm_concepts::manifest::Manifest::from_toml(manifest).unwrap();
    let uploads: BTreeMap<String, Vec<u8>> = m
        .steps
        .iter()
        .map(|s| {
            // distinct bytes per component name, so each gets its own digest
            let mut b = FAKE_COMPONENT.to_vec();
            b.extend_from_slice(s.component.as_bytes());
            (s.component.clone(), b)
        })
        .collect();
    crm_scheduler::deploy::deploy(db, manifest, &uploads, None).await.unwrap().version
}

const CHAIN: &str = r#"
name = "chain"
version = "1"
[[steps]]
id = "a"
component = "comp-a"
retry = { max_attempts = 3, backoff = "50ms", max_backoff = "100ms" }
[[steps]]
id = "b"
component = "comp-b"
needs = ["a"]
config = { flavour = "b" }
capabilities = ["records:read"]
[[steps]]
id = "c"
component = "comp-c"
needs = ["b"]
retry = { max_attempts = 2, backoff = "10ms" }
[result]
template = "c said {{steps.c.output.said}}"
"#;

#[tokio::test]
async fn outputs_flow_through_a_chain_and_every_attempt_is_recorded_once() {
    let s = Setup::new("chain", &[CHAIN]).await;
    let id = s.submit("chain", json!({"n": 1})).await;
    assert_eq!(s.status(id).await, RunStatus::Queued);

    let (e, job) = s.job().await;
    assert_eq!((job.key.step.as_str(), job.key.attempt), ("a", 1));
    assert_eq!(job.input.run_input, json!({"n": 1}));
    s.ok(&e, &job, json!({"from": "a"})).await;

    let (e, job) = s.job().await;
    assert_eq!(job.key.step, "b");
    assert_eq!(job.input.deps, BTreeMap::from([("a".to_string(), json!({"from": "a"}).into())]));
    assert_eq!(job.input.config, json!({"flavour": "b"}));
    // a duplicate delivery of the same result must not be applied twice
    s.ok(&e, &job, json!({"from": "b"})).await;
    s.ok(&e, &job, json!({"from": "b", "dup": true})).await;

    let (e, job) = s.job().await;
    assert_eq!(job.key.step, "c");
    s.ok(&e, &job, json!({"said": "hello"})).await;

    let run = s.wait_final(id).await;
    assert_eq!(run.summary.status, RunStatus::Succeeded);
    assert_eq!(run.result, Some(json!({"said": "hello"})));
    assert_eq!(run.rendered.as_deref(), Some("c said hello"));
    let attempts = s.attempts(id).await;
    assert_eq!(
        attempts,
        vec![
            ("a".into(), 1, "succeeded".into(), true),
            ("b".into(), 1, "succeeded".into(), true),
            ("c".into(), 1, "succeeded".into(), true)
        ]
    );
    let b: Value = sqlx::query_scalar("SELECT output FROM run_steps WHERE run_id = $1 AND step = 'b'")
        .bind(id)
        .fetch_one(&s.db.pool)
        .await
        .unwrap();
    // two appliers may see the deliveries in either order: one of them counts, once
    assert!(b == json!({"from": "b"}) || b == json!({"from": "b", "dup": true}), "{b}");
    metrics_when(&s, "3 applied and 1 stale result expected", |m| {
        (m["results_applied"].as_u64(), m["results_stale"].as_u64()) == (Some(3), Some(1))
    })
    .await;
    s.teardown().await;
}

#[tokio::test]
async fn retryable_errors_are_retried_permanent_ones_fail_and_exhausted_ones_dead_letter() {
    let s = Setup::new("retry", &[CHAIN]).await;

    // retried, then succeeds
    let id = s.submit("chain", json!({})).await;
    let (e, job) = s.job().await;
    let started = Instant::now();
    s.answer(&e, &job, StepOutcome::Failed { error: StepError::retryable(StepErrorCode::Unavailable, "try later") })
        .await;
    let (e, job) = s.job().await;
    assert_eq!((job.key.step.as_str(), job.key.attempt), ("a", 2));
    assert!(started.elapsed() >= Duration::from_millis(20), "the retry waited out its backoff");
    s.ok(&e, &job, json!(1)).await;
    let (e, job) = s.job().await;
    // permanent: no retry, the run fails and names the step
    s.answer(&e, &job, StepOutcome::Failed { error: StepError::permanent(StepErrorCode::Guest, "bad config") }).await;
    let run = s.wait_final(id).await;
    assert_eq!(run.summary.status, RunStatus::Failed);
    let err = run.summary.error.unwrap();
    assert_eq!((err.step.as_deref(), err.code.as_str()), (Some("b"), "guest"));
    let steps = s.step_statuses(id).await;
    assert_eq!(
        steps,
        vec![("a".into(), "succeeded".into()), ("b".into(), "failed".into()), ("c".into(), "cancelled".into())]
    );

    // exhausted: dead letter after max_attempts
    let id = s.submit("chain", json!({})).await;
    for attempt in 1..=3 {
        let (e, job) = s.job().await;
        assert_eq!(job.key.attempt, attempt);
        s.answer(&e, &job, StepOutcome::Failed { error: StepError::retryable(StepErrorCode::Unavailable, "down") })
            .await;
    }
    let run = s.wait_final(id).await;
    assert_eq!(run.summary.status, RunStatus::Failed);
    assert!(run.summary.error.unwrap().message.contains("gave up after 3 attempts"));
    let status: String = sqlx::query_scalar("SELECT status FROM run_steps WHERE run_id = $1 AND step = 'a'")
        .bind(id)
        .fetch_one(&s.db.pool)
        .await
        .unwrap();
    assert_eq!(status, "dead_letter");
    assert_eq!(s.attempts(id).await.len(), 3);
    s.teardown().await;
}

/// The attempt that settles a step lives in the step's row and the others in
/// `earlier_attempts`; whichever holds it, the history shows every attempt once, including
/// the settling attempt of a step that a retried run made to run again.
#[tokio::test]
async fn a_retried_run_keeps_every_attempt_of_its_steps() {
    let s = Setup::new("history", &[CHAIN]).await;
    let id = s.submit("chain", json!({})).await;
    let (e, job) = s.job().await;
    s.answer(&e, &job, StepOutcome::Failed { error: StepError::retryable(StepErrorCode::Unavailable, "try later") })
        .await;
    let (e, job) = s.job().await;
    s.ok(&e, &job, json!(1)).await;
    let (e, job) = s.job().await;
    s.answer(&e, &job, StepOutcome::Failed { error: StepError::permanent(StepErrorCode::Guest, "bad config") }).await;
    assert_eq!(s.wait_final(id).await.summary.status, RunStatus::Failed);
    // a late repeat of the failure that settled b is not recorded again
    s.answer(&e, &job, StepOutcome::Failed { error: StepError::permanent(StepErrorCode::Guest, "bad config") }).await;

    s.scheduler.retry(id).await.unwrap();
    let (e, job) = s.job().await;
    assert_eq!((job.key.step.as_str(), job.key.attempt), ("b", 2));
    s.ok(&e, &job, json!(2)).await;
    let (e, job) = s.job().await;
    s.ok(&e, &job, json!({"said": "again"})).await;
    assert_eq!(s.wait_final(id).await.summary.status, RunStatus::Succeeded);

    assert_eq!(
        s.attempts(id).await,
        vec![
            ("a".into(), 1, "failed".into(), true),
            ("a".into(), 2, "succeeded".into(), true),
            ("b".into(), 1, "failed".into(), true),
            ("b".into(), 2, "succeeded".into(), true),
            ("c".into(), 1, "succeeded".into(), true),
        ],
        "c, cancelled before it was ever queued, ran once"
    );
    let kept: Vec<(String, i32, Option<Value>)> = sqlx::query_as(
        "SELECT step, attempt, error->'message' FROM earlier_attempts WHERE run_id = $1 ORDER BY step, attempt",
    )
    .bind(id)
    .fetch_all(&s.db.pool)
    .await
    .unwrap();
    assert_eq!(
        kept,
        vec![("a".into(), 1, Some(json!("try later"))), ("b".into(), 1, Some(json!("bad config")))],
        "the retried failure, and the failure that settled b until the run was retried"
    );
    let steps = crm_store::run_history::steps(&s.db.pool, id).await.unwrap();
    let b = steps.iter().find(|st| st.step == "b").unwrap();
    let shown: Vec<(i32, &str, Option<u64>)> =
        b.attempts.iter().map(|a| (a.attempt, a.worker.as_str(), a.usage["duration_us"].as_u64())).collect();
    assert_eq!(shown, vec![(1, "test-worker", Some(42)), (2, "test-worker", Some(42))]);

    // Every attempt keeps its whole path, wherever it is kept: the worker's points as it
    // handed them in, then the engine's, in order.
    let steps = crm_store::run_history::steps(&s.db.pool, id).await.unwrap();
    for a in steps.iter().flat_map(|st| &st.attempts) {
        let t: StepTimeline = serde_json::from_value(a.usage["timeline"].clone()).unwrap();
        assert_eq!(t.path()[..4], WORKERS_POINTS.path()[..4], "{}", a.usage);
        assert!(t.path().windows(2).all(|w| w[0] <= w[1]), "{}", a.usage);
    }
    // Postgres holds it beside the usage, which no longer repeats it.
    let (in_usage, whole): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE usage ? 'timeline'), count(*) FILTER (WHERE cardinality(timeline) = 7)
         FROM step_attempts WHERE run_id = $1",
    )
    .bind(id)
    .fetch_one(&s.db.pool)
    .await
    .unwrap();
    assert_eq!((in_usage, whole), (0, 5));

    // An attempt recorded before the timeline had a column of its own keeps it in its
    // usage, and the history shows it the same way.
    sqlx::query(
        "UPDATE earlier_attempts SET usage = usage || jsonb_build_object('timeline', jsonb_build_object('sent_us', 7)),
                                     timeline = NULL
         WHERE run_id = $1 AND step = 'a'",
    )
    .bind(id)
    .execute(&s.db.pool)
    .await
    .unwrap();
    let steps = crm_store::run_history::steps(&s.db.pool, id).await.unwrap();
    let a1 = &steps.iter().find(|st| st.step == "a").unwrap().attempts[0];
    assert_eq!((a1.usage["timeline"].clone(), a1.usage["duration_us"].as_u64()), (json!({"sent_us": 7}), Some(42)));
    s.teardown().await;
}

#[tokio::test]
async fn a_run_survives_redis_losing_its_data() {
    let s = Setup::new("wipe", &[CHAIN]).await;
    let id = s.submit("chain", json!({})).await;
    let (e, job) = s.job().await;
    s.ok(&e, &job, json!("a")).await;
    // b is now on Redis (or on its way); Redis forgets everything
    let _ = s.job().await;
    s.wipe_redis().await;
    // the reconciler notices the new Redis epoch and sends b again
    let (e, job) = s.job().await;
    assert_eq!((job.key.step.as_str(), job.key.attempt), ("b", 1));
    s.ok(&e, &job, json!("b")).await;
    let (e, job) = s.job().await;
    s.ok(&e, &job, json!({"said": "c"})).await;
    assert_eq!(s.wait_final(id).await.summary.status, RunStatus::Succeeded);
    assert_eq!(s.attempts(id).await.len(), 3);
    s.teardown().await;
}

#[tokio::test]
async fn completions_of_runs_that_finished_before_redis_lost_its_data_are_published_again() {
    let s = Setup::new("republish", &[CHAIN]).await;
    let succeeded = s.finish_chain().await;
    // finished by the API, not by a step's result
    let cancelled = s.submit("chain", json!({})).await;
    assert_eq!(s.scheduler.cancel(cancelled).await.unwrap().status, RunStatus::Cancelled);
    let open = s.submit("chain", json!({})).await;

    s.wipe_redis().await;
    // the reconciler notices the new Redis epoch and publishes recent completions again
    let mut feed = s.scheduler.completion_feed().await.unwrap();
    let (mut after, mut seen) = ("0-0".to_string(), BTreeMap::new());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(seen.contains_key(&succeeded) && seen.contains_key(&cancelled)) {
        assert!(Instant::now() < deadline, "republished within 10 s: {seen:?}");
        for (id, completion) in feed.read(&after, 100, 200).await.unwrap() {
            after = id;
            let c = completion.expect("sealed by the engine");
            assert_eq!(c.completion().unwrap().run_id, c.run_id(), "the head is the completion's");
            seen.insert(c.run_id(), c.status());
        }
    }
    assert_eq!(seen[&succeeded], RunStatus::Succeeded);
    assert_eq!(seen[&cancelled], RunStatus::Cancelled);
    assert!(!seen.contains_key(&open), "a run still open has no completion");
    s.teardown().await;
}

#[tokio::test]
async fn an_engine_that_died_has_only_what_the_stream_lacks_published_again() {
    let s = Setup::new("republish_missing", &[CHAIN]).await;
    let (published, lost) = (s.finish_chain().await, s.finish_chain().await);
    let entries_of = |stream: &[(String, Uuid)], id: Uuid| stream.iter().filter(|(_, r)| *r == id).count();
    let stream = read_completions(&s).await;
    assert_eq!((entries_of(&stream, published), entries_of(&stream, lost)), (1, 1), "{stream:?}");

    // The engine finished the second run and died before publishing it: its entry is gone,
    // and its row marks it published only up to before both runs.
    s.scheduler.shutdown().await;
    let mut redis = s.redis.connection().await;
    let key = crm_queue::Keys::new(s.redis.as_str()).completions;
    let lost_entry = &stream.iter().find(|(_, r)| *r == lost).unwrap().0;
    let () = redis::cmd("XDEL").arg(&key).arg(lost_entry).query_async(&mut redis).await.unwrap();
    s.engine_died_before(published).await;

    // The next engine to start publishes that one again, and nothing the stream holds.
    let mut config = s.redis.scheduler_config();
    config.reconcile_every = Duration::from_millis(100);
    let next = Scheduler::start(&s.db, s.redis.redis_url(), config).await.unwrap();
    // The takeover is counted once the dead engine's row is gone, a statement after the
    // publishing: wait for both, or the check races the engine's own tick.
    let deadline = Instant::now() + Duration::from_secs(10);
    let stream = loop {
        let stream = read_completions(&s).await;
        if entries_of(&stream, lost) > 0 && next.metrics()["engines_taken_over"] == 1 {
            break stream;
        }
        assert!(Instant::now() < deadline, "the lost completion was not published again within 10 s: {stream:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(entries_of(&stream, lost), 1);
    assert_eq!(entries_of(&stream, published), 1, "a completion the stream held was published again");
    assert_eq!(next.metrics()["engines_taken_over"], 1);
    assert_eq!(s.marks().await.len(), 1, "the dead engine's row is gone, the live one's stays");
    next.shutdown().await;
    s.teardown().await;
}

#[tokio::test]
async fn an_engine_marks_how_far_it_published_and_a_clean_stop_leaves_nothing_to_publish_again() {
    let s = Setup::new("marks", &[CHAIN]).await;
    // The row standing for the engines that ran before marks were kept is taken over at once.
    // (counted just after the row goes: wait for both)
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.marks().await.len() != 1 || s.scheduler.metrics()["engines_taken_over"] != 1 {
        assert!(Instant::now() < deadline, "one row, the engine's own, within 10 s: {:?}", s.marks().await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let id = s.finish_chain().await;
    let finished: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT finished_at FROM runs WHERE id = $1").bind(id).fetch_one(&s.db.pool).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.marks().await[0].1 < finished {
        assert!(Instant::now() < deadline, "the mark passes the run's end within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A second engine leaves a live one's row alone.
    let mut config = s.redis.scheduler_config();
    config.reconcile_every = Duration::from_millis(100);
    let next = Scheduler::start(&s.db, s.redis.redis_url(), config).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(s.marks().await.len(), 2);
    // A clean stop removes the engine's row: nothing is left to take over or publish again.
    s.scheduler.shutdown().await;
    let marks = s.marks().await;
    assert_eq!(marks.len(), 1, "{marks:?}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(next.metrics()["engines_taken_over"], 0);
    assert_eq!(next.metrics()["completions_republished"], 0);
    next.shutdown().await;
    assert!(s.marks().await.is_empty());
    s.teardown().await;
}

#[tokio::test]
async fn a_run_older_than_everything_a_full_completions_stream_holds_is_not_published_again() {
    let s = Setup::new("republish_trimmed", &[CHAIN]).await;
    let (old, lost) = (s.finish_chain().await, s.finish_chain().await);
    // The first run finished a minute ago; neither completion is on the stream any more.
    for moved_back in [
        "UPDATE runs SET finished_at = finished_at - interval '1 minute' WHERE id = $1",
        "UPDATE run_steps SET finished_at = finished_at - interval '1 minute' WHERE run_id = $1",
    ] {
        sqlx::query(moved_back).bind(old).execute(&s.db.pool).await.unwrap();
    }
    let stream = read_completions(&s).await;
    s.scheduler.shutdown().await;
    s.engine_died_before(old).await;
    let mut redis = s.redis.connection().await;
    let key = crm_queue::Keys::new(s.redis.as_str()).completions;
    for (entry, _) in &stream {
        let () = redis::cmd("XDEL").arg(&key).arg(entry).query_async(&mut redis).await.unwrap();
    }
    // Other runs' completions since have filled the stream to its cap.
    for _ in 0..crm_queue::MAX_COMPLETIONS / 10_000 {
        let mut pipe = redis::pipe();
        for _ in 0..10_000 {
            pipe.cmd("XADD").arg(&key).arg("*").arg("run_id").arg("another").arg("data").arg("{}").ignore();
        }
        let () = pipe.query_async(&mut redis).await.unwrap();
    }
    let filled: String = redis::cmd("XREVRANGE")
        .arg(&key)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async::<redis::streams::StreamRangeReply>(&mut redis)
        .await
        .unwrap()
        .ids[0]
        .id
        .clone();

    // The next engine publishes the run that finished just now again, not the older one,
    // which every reader of a stream this full is past.
    let next = Scheduler::start(&s.db, s.redis.redis_url(), s.redis.scheduler_config()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let republished = loop {
        let page: redis::streams::StreamRangeReply =
            redis::cmd("XRANGE").arg(&key).arg(format!("({filled}")).arg("+").query_async(&mut redis).await.unwrap();
        let runs: Vec<String> = page
            .ids
            .iter()
            .filter_map(|e| match e.map.get("run_id") {
                Some(redis::Value::BulkString(b)) => String::from_utf8(b.clone()).ok(),
                _ => None,
            })
            .collect();
        if runs.contains(&lost.to_string()) {
            break runs;
        }
        assert!(Instant::now() < deadline, "the lost completion was not published again within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(republished, vec![lost.to_string()], "only the run finished after the stream's oldest entry");
    next.shutdown().await;
    s.teardown().await;
}

/// Every entry of the completions stream, as (entry id, run id), oldest first.
async fn read_completions(s: &Setup) -> Vec<(String, Uuid)> {
    let mut feed = s.scheduler.completion_feed().await.unwrap();
    let (mut after, mut stream) = ("0-0".to_string(), Vec::new());
    loop {
        let page = feed.read(&after, 100, 1).await.unwrap();
        let Some((last, _)) = page.last() else { return stream };
        after = last.clone();
        stream.extend(page.into_iter().map(|(id, c)| (id, c.expect("sealed by the engine").run_id())));
    }
}

#[tokio::test]
async fn a_step_nobody_answers_is_retried_as_lost() {
    let quick = CHAIN.replace("id = \"a\"\n", "id = \"a\"\ntimeout = \"300ms\"\n");
    assert!(quick.contains("300ms"));
    let s = Setup::new("lost", &[&quick]).await;
    let id = s.submit("chain", json!({})).await;
    let (_e, job) = s.job().await;
    assert_eq!(job.key.attempt, 1);
    // no answer: after its timeout plus lost_after the engine retries it
    let (e, job) = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let (e, j) = s.job().await;
            if j.key.attempt == 2 {
                return (e, j);
            }
        }
    })
    .await
    .expect("the lost step came back as attempt 2");
    s.ok(&e, &job, json!("a")).await;
    let (_e, next) = s.job().await;
    assert_eq!(next.key.step, "b", "the retried attempt's result moved the run on");
    let attempts = s.attempts(id).await;
    assert_eq!(attempts[0], ("a".into(), 1, "lost".into(), true));
    assert_eq!(attempts[1], ("a".into(), 2, "succeeded".into(), true));
    // The engine ended the lost attempt: no point of its path was seen, so it has none.
    let steps = crm_store::run_history::steps(&s.db.pool, id).await.unwrap();
    let lost = &steps.iter().find(|st| st.step == "a").unwrap().attempts[0];
    assert_eq!(lost.usage.get("timeline"), None, "{}", lost.usage);
    s.teardown().await;
}

const BRANCH: &str = r#"
name = "branch"
version = "1"
[[steps]]
id = "decide"
component = "comp-a"
[[steps]]
id = "yes"
component = "comp-b"
needs = ["decide"]
[[steps]]
id = "no"
component = "comp-b"
needs = ["decide"]
"#;

#[tokio::test]
async fn a_step_chooses_its_successors() {
    let s = Setup::new("branch", &[BRANCH]).await;
    let id = s.submit("branch", json!({})).await;
    let (e, job) = s.job().await;
    s.answer(&e, &job, StepOutcome::Ok { output: json!({}).into(), next: Some(vec!["yes".into()]) }).await;
    let (e, job) = s.job().await;
    assert_eq!(job.key.step, "yes");
    s.ok(&e, &job, json!("went yes")).await;
    let run = s.wait_final(id).await;
    assert_eq!(run.summary.status, RunStatus::Succeeded);
    let no: String = sqlx::query_scalar("SELECT status FROM run_steps WHERE run_id = $1 AND step = 'no'")
        .bind(id)
        .fetch_one(&s.db.pool)
        .await
        .unwrap();
    assert_eq!(no, "skipped");
    s.teardown().await;
}

#[tokio::test]
async fn idempotency_keys_cancel_and_version_pinning() {
    let s = Setup::new("idem", &[CHAIN]).await;
    let req = |input: Value| RunRequest {
        workflow: "chain".into(),
        input,
        acting_user: None,
        notify: None,
        idempotency_key: Some("k1".into()),
        trigger: None,
    };
    let first = s.scheduler.submit(req(json!({"x": 1}))).await.unwrap();
    let again = s.scheduler.submit(req(json!({"x": 1}))).await.unwrap();
    assert_eq!((again.id, again.created), (first.id, false));
    let clash = s.scheduler.submit(req(json!({"x": 2}))).await.unwrap_err();
    assert!(clash.to_string().contains("different input"), "{clash}");

    // a new version deployed mid-run: the run keeps the version it started with
    let (e, job) = s.job().await;
    let v1_b: String = sqlx::query_scalar("SELECT components->>'comp-b' FROM workflow_versions WHERE version = 1")
        .fetch_one(&s.db.pool)
        .await
        .unwrap();
    assert_eq!(deploy(&s.db, &CHAIN.replace("comp-b", "comp-b2")).await, 2);
    s.ok(&e, &job, json!("a")).await;
    let (_e, job) = s.job().await;
    assert_eq!(job.component, v1_b);

    let summary = s.scheduler.cancel(first.id).await.unwrap();
    assert_eq!(summary.status, RunStatus::Cancelled);
    let late = s.attempts(first.id).await.len();
    assert_eq!(late, 1);
    let unknown = s.scheduler.submit(RunRequest { workflow: "nope".into(), ..req(json!({})) }).await.unwrap_err();
    assert!(unknown.to_string().contains("not found"));
    s.teardown().await;
}

/// A batch of runs goes in with one statement, in one of two forms: with `ON CONFLICT` when
/// some run has an idempotency key, without it when none has (Postgres then inserts each
/// row outright rather than speculatively). Either way a run without a key always goes in,
/// and a key an earlier run holds keeps its run out.
#[tokio::test]
async fn runs_go_in_with_or_without_keys_and_a_taken_key_keeps_its_run_out() {
    use crm_concepts::run::StepStatus;
    use crm_store::runs::{Inserted, NewRun, insert_runs};
    let s = Setup::new("insert_forms", &[CHAIN]).await;
    let run = |key: Option<&str>| NewRun {
        id: Uuid::new_v4(),
        workflow: "chain".into(),
        version: 1,
        input: json!({}),
        acting_user: None,
        notify: None,
        idempotency_key: key.map(String::from),
        trigger: "api".into(),
        steps: vec![("a".into(), StepStatus::Queued)],
        status: RunStatus::Queued,
        waits: Vec::new(),
        dispatch_after: chrono::Utc::now() + chrono::Duration::hours(1),
    };
    let mut conn = s.db.pool.acquire().await.unwrap();
    let unkeyed = vec![run(None), run(None)];
    assert_eq!(insert_runs(&mut conn, &unkeyed).await.unwrap(), vec![Inserted::Created, Inserted::Created]);
    let first = vec![run(Some("k"))];
    assert_eq!(insert_runs(&mut conn, &first).await.unwrap(), vec![Inserted::Created]);
    // a mixed batch: the keyed form, and the taken key keeps only its own run out
    let mixed = vec![run(None), run(Some("k")), run(Some("other"))];
    let inserted = insert_runs(&mut conn, &mixed).await.unwrap();
    assert_eq!(inserted[0], Inserted::Created);
    assert!(
        matches!(inserted[1], Inserted::Existing { id, same_input: true, .. } if id == first[0].id),
        "{inserted:?}"
    );
    assert_eq!(inserted[2], Inserted::Created);
    let (runs, steps): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM run_steps)")
            .fetch_one(&s.db.pool)
            .await
            .unwrap();
    assert_eq!((runs, steps), (5, 5), "each run that went in has its step, the one kept out has none");
    drop(conn);
    s.teardown().await;
}

#[tokio::test]
async fn a_request_stuck_behind_another_transactions_idempotency_key_holds_up_no_other() {
    let s = Setup::new("stuck", &[CHAIN]).await;
    let req = |key: Option<&str>| RunRequest {
        workflow: "chain".into(),
        input: json!({}),
        acting_user: None,
        notify: None,
        idempotency_key: key.map(Into::into),
        trigger: None,
    };
    // A trigger's transaction has admitted a run with key "held" and not committed yet.
    let mut tx = s.db.pool.begin().await.unwrap();
    let mut admitted = crm_scheduler::Admitted::default();
    let held = s.scheduler.admission().admit(&mut tx, &[req(Some("held"))], &mut admitted).await.unwrap();
    let held = held.into_iter().next().unwrap().unwrap();

    // The same key through the API: its insert waits for that transaction.
    let stuck = tokio::spawn({
        let scheduler = s.scheduler.clone();
        async move { scheduler.submit(req(Some("held"))).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!stuck.is_finished(), "the insert waits for the transaction holding its key");

    // Requests behind it are admitted while it waits, not after.
    for _ in 0..3 {
        let answered = tokio::time::timeout(Duration::from_secs(5), s.scheduler.submit(req(None))).await;
        assert!(answered.expect("admitted while another admission waits on a lock").unwrap().created);
    }

    tx.commit().await.unwrap();
    s.scheduler.admission().committed(admitted).await;
    let same = tokio::time::timeout(Duration::from_secs(10), stuck).await.unwrap().unwrap().unwrap();
    assert_eq!((same.id, same.created), (held.id, false), "the key's run, once its transaction committed");
    s.teardown().await;
}

#[tokio::test]
async fn runs_are_admitted_from_the_facts_the_engine_knows_and_a_change_since_is_caught_at_the_insert() {
    let s = Setup::new("facts", &[CHAIN]).await;
    let user: i64 = sqlx::query_scalar("INSERT INTO users (name, role) VALUES ('Ann', 'manager') RETURNING id")
        .fetch_one(&s.db.pool)
        .await
        .unwrap();
    let req = |acting_user: Option<i64>| RunRequest {
        workflow: "chain".into(),
        input: json!({}),
        acting_user,
        notify: None,
        idempotency_key: None,
        trigger: None,
    };
    let reads = |s: &Setup| s.scheduler.metrics()["admission_fact_reads"].as_u64().unwrap();
    let version = |id: Uuid| {
        sqlx::query_scalar::<_, i32>("SELECT version FROM runs WHERE id = $1").bind(id).fetch_one(&s.db.pool)
    };
    let runs = || sqlx::query_scalar::<_, i64>("SELECT count(*) FROM runs").fetch_one(&s.db.pool);

    // The first run reads the facts; the next ones know them.
    s.scheduler.submit(req(Some(user))).await.unwrap();
    assert_eq!(reads(&s), 1);
    let known = s.scheduler.submit(req(Some(user))).await.unwrap();
    s.scheduler.submit(req(None)).await.unwrap();
    assert_eq!((reads(&s), version(known.id).await.unwrap()), (1, 1), "admitted from what the engine knew");

    // A version deployed behind the engine's back: the run built for version 1 is caught
    // at the insert and built again for version 2.
    assert_eq!(deploy(&s.db, &CHAIN.replace("comp-b", "comp-b2")).await, 2);
    let after_deploy = s.scheduler.submit(req(None)).await.unwrap();
    assert_eq!((after_deploy.version, version(after_deploy.id).await.unwrap()), (2, 2));
    assert_eq!(s.scheduler.metrics()["admissions_stale"], 1);

    // Disabled, or its acting user switched off: refused, and nothing written.
    let before = runs().await.unwrap();
    sqlx::query("UPDATE workflows SET enabled = false").execute(&s.db.pool).await.unwrap();
    let disabled = s.scheduler.submit(req(None)).await.unwrap_err();
    assert!(disabled.to_string().contains("disabled"), "{disabled}");
    sqlx::query("UPDATE workflows SET enabled = true").execute(&s.db.pool).await.unwrap();
    s.scheduler.submit(req(Some(user))).await.unwrap();
    sqlx::query("UPDATE users SET disabled_at = now() WHERE id = $1").bind(user).execute(&s.db.pool).await.unwrap();
    let switched_off = s.scheduler.submit(req(Some(user))).await.unwrap_err();
    assert!(switched_off.to_string().contains("no active user"), "{switched_off}");
    assert_eq!(runs().await.unwrap(), before + 1, "only the run between the two changes");
    assert_eq!(s.scheduler.metrics()["admissions_stale"], 3);

    // The first steps of the runs caught at the insert had left beside it: they are void.
    // (Runs that exist are the five admitted; the three caught never did.)
    assert_eq!(s.scheduler.metrics()["provisional_void"], 3);
    let mut void = 0;
    for _ in 0..8 {
        let (_, job) = s.job().await;
        let recorded: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM runs WHERE id = $1)")
            .bind(job.key.run_id)
            .fetch_one(&s.db.pool)
            .await
            .unwrap();
        let confirmed = s.scheduler.confirm(&job.ticket, 5_000).await;
        assert_eq!(confirmed.is_ok(), recorded, "{confirmed:?}");
        void += usize::from(!recorded);
    }
    assert_eq!(void, 3);
    s.teardown().await;
}

/// The scheduler's counters once `pred` holds for them (appliers answer before they count).
async fn metrics_when(s: &Setup, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let m = s.scheduler.metrics();
        if pred(&m) {
            return m;
        }
        assert!(Instant::now() < deadline, "{what}: {m}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn results_for_runs_the_engine_wrote_last_apply_without_locks_and_a_change_elsewhere_is_caught() {
    let s = Setup::new("known", &[CHAIN]).await;
    let id = s.submit("chain", json!({"n": 1})).await;
    let (e, job) = s.job().await;
    s.ok(&e, &job, json!({"from": "a"})).await;
    // the engine inserted the run, so it applies a's result from what it wrote
    metrics_when(&s, "a's result applied under the guard", |m| m["results_applied_guarded"] == 1).await;

    // Another engine (here: SQL) changed the run since: the guard misses, the result is
    // applied under the run's lock, from what Postgres holds.
    sqlx::query("UPDATE runs SET rev = rev + 1 WHERE id = $1").bind(id).execute(&s.db.pool).await.unwrap();
    let (e, job) = s.job().await;
    assert!(job.provisional, "b was sent beside the write that recorded a's result");
    assert_eq!(job.input.deps, BTreeMap::from([("a".to_string(), json!({"from": "a"}).into())]));
    s.ok(&e, &job, json!({"from": "b"})).await;
    metrics_when(&s, "b's result missed the guard", |m| m["guard_misses"] == 1 && m["results_applied"] == 2).await;
    assert_eq!(s.scheduler.metrics()["results_applied_guarded"], 1);

    // c left beside the write that missed: that dispatch is void, whatever it does.
    let (e, void) = s.job().await;
    assert!(void.provisional);
    assert_eq!(s.scheduler.metrics()["provisional_void"], 1);
    s.ok(&e, &void, json!({"said": "too soon"})).await;
    // The locked apply sent c again, recorded first; it wrote the run, so the engine knows
    // it again.
    let (e, job) = s.job().await;
    assert!(!job.provisional);
    assert_eq!(job.input.deps, BTreeMap::from([("b".to_string(), json!({"from": "b"}).into())]));
    s.ok(&e, &job, json!({"said": "hi"})).await;
    let run = s.wait_final(id).await;
    assert_eq!((run.summary.status, run.rendered.as_deref()), (RunStatus::Succeeded, Some("c said hi")));
    metrics_when(&s, "c's result applied under the guard", |m| m["results_applied_guarded"] == 2).await;
    let rev: i64 =
        sqlx::query_scalar("SELECT rev FROM runs WHERE id = $1").bind(id).fetch_one(&s.db.pool).await.unwrap();
    assert_eq!(rev, 4, "three applies and the change elsewhere");
    assert_eq!(s.attempts(id).await.len(), 3, "the void dispatch's result left no attempt");
    s.teardown().await;
}

#[tokio::test]
async fn a_step_sent_beside_the_write_that_records_it_acts_once_that_write_commits() {
    let s = Setup::new("ahead", &[CHAIN]).await;
    let id = s.submit("chain", json!({})).await;
    let (e, a) = s.job().await;
    assert!(a.provisional, "a run's first step leaves beside the insert that records it");
    s.scheduler.confirm(&a.ticket, 5_000).await.unwrap();
    s.ok(&e, &a, json!("a")).await;

    // b left beside the write that recorded a's result; its calls wait for that write and
    // are served once it committed.
    let (e, b) = s.job().await;
    assert!(b.provisional);
    s.scheduler.confirm(&b.ticket, 5_000).await.unwrap();
    let reply = s.scheduler.host_call(&b.ticket, None, 5_000, HostCall::GetContact { id: 1 }).await.unwrap();
    assert!(matches!(reply, Err(HostCallError::NotFound(_))), "served: there is no contact 1: {reply:?}");
    s.ok(&e, &b, json!("b")).await;
    // Once b's result is applied the engine forgets the dispatch; Postgres answers for it.
    s.scheduler.confirm(&b.ticket, 5_000).await.unwrap();

    let (e, c) = s.job().await;
    assert!(c.provisional);
    s.ok(&e, &c, json!({"said": "c"})).await;
    assert_eq!(s.wait_final(id).await.summary.status, RunStatus::Succeeded);
    assert_eq!(s.scheduler.metrics()["provisional_void"], 0);
    assert_eq!(s.attempts(id).await.len(), 3);
    s.teardown().await;
}

#[tokio::test]
async fn an_engine_that_did_not_send_a_step_ahead_waits_for_postgres_to_record_it() {
    let s = Setup::new("ahead_elsewhere", &[CHAIN]).await;
    let mut config = s.redis.scheduler_config();
    config.lost_after = Duration::from_secs(2);
    let other = Scheduler::start(&s.db, s.redis.redis_url(), config).await.unwrap();
    let key = EngineKey::from_seed(crm_store::engine_keys::seed(&s.db).await.unwrap());
    let id = s.submit("chain", json!({})).await;
    let (e, a) = s.job().await;
    let ticket = |step: &str, sent_at_ms: i64| {
        key.mint(&Ticket {
            run_id: id,
            step: step.into(),
            attempt: 1,
            workflow: "chain".into(),
            version: 1,
            acting_user: None,
            expires_at_ms: i64::MAX,
            provisional: Some(SentAhead { dispatch: 7, sent_at_ms }),
        })
    };
    let now = chrono::Utc::now().timestamp_millis();

    // b is not recorded yet: the other engine, which knows nothing of the dispatch, waits
    // for Postgres rather than call it void, and lets it act once a's result records it.
    let b = ticket("b", now);
    let waiting = {
        let b = b.clone();
        let other = other.clone();
        tokio::spawn(async move { other.confirm(&b, 10_000).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "b is not recorded yet");
    s.ok(&e, &a, json!("a")).await;
    waiting.await.unwrap().unwrap();

    // Not recorded, and sent longer ago than any statement runs: void for good.
    let refused = other.confirm(&ticket("c", now - 60_000), 10_000).await;
    assert!(matches!(&refused, Err(IntakeError::Refused(_))), "{refused:?}");
    // Not recorded and sent just now: "not yet", for the worker to ask again.
    let later = other.confirm(&ticket("c", now), 300).await;
    assert!(matches!(&later, Err(IntakeError::Unavailable(_))), "{later:?}");
    other.shutdown().await;
    s.teardown().await;
}

#[tokio::test]
async fn a_result_handed_to_an_engine_that_did_not_send_its_step_is_applied_once_its_record_commits() {
    let s = Setup::new("ahead_result_elsewhere", &[CHAIN]).await;
    let other = Scheduler::start(&s.db, s.redis.redis_url(), s.redis.scheduler_config()).await.unwrap();
    let key = EngineKey::from_seed(crm_store::engine_keys::seed(&s.db).await.unwrap());
    let handed = |run_id: Uuid, step: &str, attempt: u32, sent_at_ms: i64| {
        let ticket = key.mint(&Ticket {
            run_id,
            step: step.into(),
            attempt,
            workflow: "chain".into(),
            version: 1,
            acting_user: None,
            expires_at_ms: i64::MAX,
            provisional: Some(SentAhead { dispatch: 7, sent_at_ms }),
        });
        let result = StepResult {
            key: AttemptKey { run_id, step: step.into(), attempt },
            outcome: StepOutcome::Ok { output: json!(step).into(), next: None },
            usage: StepUsage::default(),
            logs: vec![],
            worker: "test-worker".into(),
        };
        vec![TicketedResult { ticket, result }]
    };
    let id = s.submit("chain", json!({})).await;
    let (e, a) = s.job().await;
    let now = chrono::Utc::now().timestamp_millis();

    // b's result reaches the other engine before the write that records b has committed:
    // it is neither applied as stale nor dropped, but waits, and counts once it is there.
    let waiting = {
        let other = other.clone();
        let b = handed(id, "b", 1, now);
        tokio::spawn(async move { other.accept_results(b).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "b is not recorded yet");
    assert!(s.attempts(id).await.iter().all(|(step, ..)| step == "a"), "nothing of b is written");
    s.ok(&e, &a, json!("a")).await;
    waiting.await.unwrap().unwrap();
    let attempts = s.attempts(id).await;
    assert!(attempts.contains(&("b".into(), 1, "succeeded".into(), true)), "{attempts:?}");
    assert!(other.metrics()["results_before_record"].as_u64() >= Some(1), "b came back to be handed in again");

    // Not recorded, and sent longer ago than any statement runs: a later attempt of c, and
    // the first step of a run whose insert never committed. Both are dropped, and nothing
    // of them is written, since the attempt may still be recorded and sent under its number.
    other.accept_results(handed(id, "c", 2, now - 60_000)).await.unwrap();
    let never_inserted = Uuid::new_v4();
    other.accept_results(handed(never_inserted, "a", 1, now - 60_000)).await.unwrap();
    assert_eq!(other.metrics()["results_stale"], 2);
    assert!(s.attempts(id).await.iter().all(|(step, ..)| step != "c"));
    assert!(s.attempts(never_inserted).await.is_empty());

    // Not recorded and sent just now: handed back, for the worker to hand in again.
    let early = other.accept_results(handed(never_inserted, "a", 1, now)).await;
    assert!(matches!(&early, Err(IntakeError::Unavailable(_))), "{early:?}");
    other.shutdown().await;
    s.teardown().await;
}

#[tokio::test]
async fn a_run_cancelled_while_its_step_runs_ignores_the_steps_result() {
    let s = Setup::new("cancel_known", &[CHAIN]).await;
    let id = s.submit("chain", json!({"n": 1})).await;
    let (e, job) = s.job().await;
    // The engine remembers the run as it inserted it; the cancel changes it under its lock.
    assert_eq!(s.scheduler.cancel(id).await.unwrap().status, RunStatus::Cancelled);
    s.ok(&e, &job, json!({"from": "a"})).await;
    metrics_when(&s, "a's result missed the guard and went stale", |m| {
        m["guard_misses"] == 1 && m["results_stale"] == 1
    })
    .await;
    assert_eq!(s.status(id).await, RunStatus::Cancelled);
    assert_eq!(s.attempts(id).await, vec![("a".into(), 1, "succeeded".into(), false)]);
    let steps = s.step_statuses(id).await;
    assert!(steps.iter().all(|(_, status)| status == "cancelled"), "{steps:?}");

    // b left for a worker beside the write that missed, before the engine knew of the
    // cancel: it may compute, but nothing of it reaches outside its sandbox.
    let (e, b) = s.job().await;
    assert!(b.provisional);
    assert_eq!(s.scheduler.metrics()["provisional_void"], 1);
    let refused = s.scheduler.host_call(&b.ticket, None, 5_000, HostCall::GetContact { id: 1 }).await;
    assert!(matches!(&refused, Err(IntakeError::Refused(m)) if m.contains("changed before the record")), "{refused:?}");
    let refused = s.scheduler.confirm(&b.ticket, 5_000).await;
    assert!(matches!(&refused, Err(IntakeError::Refused(_))), "{refused:?}");
    s.ok(&e, &b, json!({"from": "b"})).await;
    assert_eq!(s.attempts(id).await.len(), 1, "b's result was dropped");
    assert_eq!(s.status(id).await, RunStatus::Cancelled);
    s.teardown().await;
}
