//! The `crm worker` process: many steps at once, a draining shutdown on SIGTERM, and the
//! takeover of jobs a dead worker held. The worker runs with what a production worker has
//! (the engine's URL, a worker credential, Redis) and a database URL that points nowhere.

use std::time::{Duration, Instant};

use crm_concepts::step::{StepLimits, StepOutcome};
use crm_testing::WorkerHarness;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_many_steps_and_reports_their_usage() {
    let mut h = WorkerHarness::prepare("worker_many").await;
    h.start_worker(&[]).await;
    let echo = h.job("fixture-echo", "echo", &[], StepLimits::default(), json!({})).await;
    let jobs: Vec<_> = (0..50)
        .map(|i| crm_testing::worker::Job { name: format!("s{i}"), input: json!({"i": i}), ..echo.clone() })
        .collect();
    let results = h.run(&jobs, Duration::from_secs(60)).await;
    assert_eq!(results.len(), 50);
    for (i, job) in jobs.iter().enumerate() {
        let r = &results[&job.name];
        match &r.outcome {
            StepOutcome::Ok { output, .. } => assert_eq!(output["run_input"], json!({"i": i})),
            StepOutcome::Failed { error } => panic!("step {i} failed: {error}"),
        }
        assert!(r.usage.duration_us > 0 && r.usage.peak_memory_bytes > 0, "{:?}", r.usage);
        assert_eq!(r.worker, "test-worker");
    }
    assert_eq!(h.queue.jobs_len().await.unwrap(), 0, "every job was acked and removed");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_the_steps_in_flight_before_exiting() {
    let mut h = WorkerHarness::prepare("worker_drain").await;
    h.start_worker(&[]).await;
    let slow = StepLimits { timeout_ms: 2_000, ..StepLimits::default() };
    let job = h.job("fixture-infinite-loop", "slow", &[], slow, json!({})).await;
    let started = h.start(std::slice::from_ref(&job)).await;
    let waiting = Instant::now();
    while h.queue.pending_jobs().await.unwrap() == 0 {
        assert!(waiting.elapsed() < Duration::from_secs(30), "the worker never took the job:\n{}", h.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let status = h.terminate(Duration::from_secs(30)).await;
    assert!(status.success(), "exit status {status}:\n{}", h.log());
    // The step ran to its end (its deadline) and its result was handed in before the exit.
    let results = h.collect(&started, Duration::from_secs(5)).await;
    match &results["slow"].outcome {
        StepOutcome::Failed { error } => assert_eq!(error.code, "timeout", "{error}"),
        StepOutcome::Ok { output, .. } => panic!("an endless loop returned {output}"),
    }
    assert_eq!(h.queue.pending_jobs().await.unwrap(), 0, "the drained job was acked");
    assert!(h.queue.live_workers(Duration::from_secs(60)).await.unwrap().is_empty(), "the worker deregistered");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_held_by_a_dead_worker_is_taken_over() {
    let mut h = WorkerHarness::prepare("worker_takeover").await;
    let job = h.job("fixture-echo", "orphan", &[], StepLimits::default(), json!({"left": "behind"})).await;
    let started = h.start(std::slice::from_ref(&job)).await;
    // A worker that read the job and died before answering.
    let waiting = Instant::now();
    let held = loop {
        let held = h.queue.read_jobs("dead-worker", 1, Duration::from_millis(200)).await.unwrap();
        if !held.is_empty() {
            break held;
        }
        assert!(waiting.elapsed() < Duration::from_secs(10), "the engine never sent the job");
    };
    assert_eq!(held.len(), 1);

    h.start_worker(&[("CRM_WORKER_VISIBILITY_SECS", "1")]).await;
    let results = h.collect(&started, Duration::from_secs(30)).await;
    match &results["orphan"].outcome {
        StepOutcome::Ok { output, .. } => {
            assert_eq!(output["run_input"], json!({"left": "behind"}))
        }
        StepOutcome::Failed { error } => panic!("{error}"),
    }
    assert_eq!(results["orphan"].worker, "test-worker");
    h.finish().await;
}
