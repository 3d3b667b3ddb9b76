//! The jobs and results streams against the real Redis: delivery, ack-after-publish, and
//! takeover of jobs held by a dead worker.

use std::time::Duration;

use crm_concepts::capability::Grants;
use crm_concepts::step::{AttemptKey, StepInput, StepJob, StepLimits, StepOutcome, StepResult, StepUsage};
use crm_queue::Queue;
use crm_testing::TestPrefix;

/// The queue on a prefix of its own, whose keys go when the prefix is dropped.
async fn queue() -> (TestPrefix, Queue) {
    let prefix = TestPrefix::new("queue");
    let queue = prefix.queue().await;
    (prefix, queue)
}

fn job(step: &str) -> StepJob {
    StepJob {
        key: AttemptKey { run_id: uuid::Uuid::now_v7(), step: step.into(), attempt: 1 },
        workflow: "w".into(),
        component: "0".repeat(64),
        input: StepInput::default(),
        grants: Grants::default(),
        limits: StepLimits::default(),
        acting_user: None,
    }
}

fn result_for(job: &StepJob) -> StepResult {
    StepResult {
        key: job.key.clone(),
        outcome: StepOutcome::Ok { output: serde_json::json!({"ok": true}), next: None },
        usage: StepUsage::default(),
        logs: vec![],
        worker: "w1".into(),
    }
}

#[tokio::test]
async fn a_job_travels_to_a_worker_and_its_result_back() {
    let (_prefix, q) = queue().await;
    let jobs = [job("a"), job("b")];
    let ids = q.enqueue(&jobs).await.unwrap();
    assert_eq!(ids.len(), 2);

    let taken = q.read_jobs("w1", 10, Duration::from_millis(100)).await.unwrap();
    assert_eq!(taken.iter().map(|e| e.job.key.step.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    // Nothing new for a second reader: the group hands each job out once.
    assert!(q.read_jobs("w2", 10, Duration::ZERO).await.unwrap().is_empty());

    let batch: Vec<_> = taken.iter().map(|e| (result_for(&e.job), e.id.clone())).collect();
    q.publish_results_and_ack(&batch).await.unwrap();
    assert_eq!(q.jobs_len().await.unwrap(), 0, "acked jobs are deleted");

    let results = q.read_results("engine", 10, Duration::from_millis(100)).await.unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].result.key, jobs[0].key);
    q.ack_results(&results.iter().map(|r| r.id.clone()).collect::<Vec<_>>()).await.unwrap();
    assert_eq!(q.results_len().await.unwrap(), 0);
}

#[tokio::test]
async fn a_job_held_by_a_dead_worker_is_claimed_after_the_visibility_timeout() {
    let (_prefix, q) = queue().await;
    q.enqueue(&[job("held")]).await.unwrap();
    let taken = q.read_jobs("dead", 1, Duration::ZERO).await.unwrap();
    assert_eq!(taken.len(), 1);

    // Not idle long enough yet: stays with its holder.
    assert!(q.claim_stale_jobs("alive", Duration::from_secs(60), 10).await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(150)).await;
    let claimed = q.claim_stale_jobs("alive", Duration::from_millis(100), 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].job.key.step, "held");
    assert_eq!(claimed[0].id, taken[0].id);
}

#[tokio::test]
async fn heartbeats_list_live_workers_only() {
    let (_prefix, q) = queue().await;
    q.heartbeat("w1").await.unwrap();
    let live = q.live_workers(Duration::from_secs(5)).await.unwrap();
    assert_eq!(live.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(), ["w1"]);
    q.forget_worker("w1").await.unwrap();
    assert!(q.live_workers(Duration::from_secs(5)).await.unwrap().is_empty());
}
