//! Crashes with real processes: a worker SIGKILLed mid-step, Redis losing every key
//! mid-run, the engine SIGKILLed and restarted mid-run. Every run still completes, and the
//! history shows no step result applied twice.
//!
//! Each test runs on a private Redis set up as production should be: a password, and the
//! engine and the workers each connecting as their own ACL user (`crm_queue::acl`), so the
//! recovery paths are shown to need nothing those users are not allowed. Redis loss is a
//! real FLUSHALL there.

use std::time::{Duration, Instant};

use crm_testing::Flow;
use crm_testing::manifests::slow_chain;
use uuid::Uuid;

async fn wait_until(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn applied_results(flow: &Flow, ids: &[Uuid]) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM step_attempts WHERE run_id = ANY($1) AND applied")
        .bind(ids)
        .fetch_one(&flow.db.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_mid_step_loses_no_run() {
    let mut flow = Flow::start_with_acl_redis("rec_worker").await;
    flow.deploy_manifest(&slow_chain("slow-pair", 2, 800));
    let doomed = flow.start_worker_named(4, "doomed");
    let ids = flow.start_runs("slow-pair", 4).await;

    // The doomed worker has taken steps and is sleeping inside them: kill it there.
    wait_until("the worker holds steps", Duration::from_secs(20), async || flow.jobs_in_progress().await > 0).await;
    let held = flow.jobs_in_progress().await;
    flow.kill_worker(doomed);
    assert_eq!(applied_results(&flow, &ids).await, 0, "killed before finishing any step");

    // A live worker takes the dead one's steps over once they are idle past the
    // visibility timeout (2 s here).
    flow.start_worker_named(4, "survivor");
    let statuses = flow.wait_final(&ids, Duration::from_secs(60)).await;
    assert!(statuses.iter().all(|s| s == "succeeded"), "{statuses:?}");
    flow.assert_clean_history(&ids).await;
    let workers: Vec<String> = sqlx::query_scalar("SELECT DISTINCT worker FROM step_attempts WHERE run_id = ANY($1)")
        .bind(&ids)
        .fetch_all(&flow.db.pool)
        .await
        .unwrap();
    assert_eq!(workers, vec!["survivor"], "the {held} steps the dead worker held were finished by the survivor");
    assert_no_acl_denials(&flow).await;
}

/// Nothing the engine or a worker did was refused by Redis for lack of permission.
async fn assert_no_acl_denials(flow: &Flow) {
    let denials = flow.redis().server().expect("a private Redis").denials().await;
    assert!(denials.is_empty(), "Redis refused commands of the ACL users: {denials:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_losing_everything_mid_run_loses_no_run() {
    let mut flow = Flow::start_with_acl_redis("rec_redis").await;
    flow.deploy_manifest(&slow_chain("slow-three", 3, 300));
    flow.start_worker(8);
    let ids = flow.start_runs("slow-three", 6).await;

    // Some steps done, others in flight: Redis forgets every job, result, group and marker.
    wait_until("a first result is applied", Duration::from_secs(30), async || applied_results(&flow, &ids).await > 0)
        .await;
    let deleted = flow.wipe_redis().await;
    assert!(deleted > 0);

    let statuses = flow.wait_final(&ids, Duration::from_secs(60)).await;
    assert!(statuses.iter().all(|s| s == "succeeded"), "{statuses:?}");
    flow.assert_clean_history(&ids).await;
    // Steps already taken by a worker hand their results in over HTTP, so the runs may all
    // finish before the reconciler's next look at Redis (once a second); it must still
    // notice that Redis lost its data.
    wait_until("the engine notices the wipe", Duration::from_secs(30), async || {
        let (_, metrics) = flow.get("/api/scheduler/metrics").await;
        metrics["redis_resets"].as_u64().unwrap_or(0) >= 1
    })
    .await;
    assert_no_acl_denials(&flow).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_engine_killed_and_restarted_mid_run_loses_no_run() {
    let mut flow = Flow::start_with_acl_redis("rec_engine").await;
    flow.deploy_manifest(&slow_chain("slow-three", 3, 300));
    flow.start_worker(8);
    let ids = flow.start_runs("slow-three", 6).await;

    wait_until("a first result is applied", Duration::from_secs(30), async || applied_results(&flow, &ids).await > 0)
        .await;
    flow.kill_engine();
    // Workers keep finishing steps; their results wait on Redis for an engine.
    tokio::time::sleep(Duration::from_millis(800)).await;
    flow.start_engine().await;

    let statuses = flow.wait_final(&ids, Duration::from_secs(60)).await;
    assert!(statuses.iter().all(|s| s == "succeeded"), "{statuses:?}");
    // The killed engine left its mark behind, and its lock went with its process: the new
    // engine published again what it may have finished without publishing, and removed it.
    wait_until("the new engine takes over the killed one's mark", Duration::from_secs(10), async || {
        flow.get("/api/scheduler/metrics").await.1["engines_taken_over"].as_u64().unwrap_or(0) >= 1
    })
    .await;
    flow.assert_clean_history(&ids).await;
    // and the restarted engine serves the whole history
    let (_, run) = flow.get(&format!("/api/runs/{}", ids[0])).await;
    assert_eq!(run["steps"].as_array().unwrap().len(), 3);
    assert_no_acl_denials(&flow).await;
}
