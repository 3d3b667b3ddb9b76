//! The streams against the real Redis: delivery of jobs with their signature, ack after
//! hand-in, takeover of jobs held by a dead worker, heartbeats, completions and the epoch
//! marker.

use std::time::Duration;

use crm_queue::{Queue, SignedJob};
use crm_testing::TestPrefix;

/// The queue on a prefix of its own, whose keys go when the prefix is dropped.
async fn queue() -> (TestPrefix, Queue) {
    let prefix = TestPrefix::new("queue");
    let queue = prefix.queue().await;
    (prefix, queue)
}

fn job(name: &str) -> SignedJob {
    SignedJob { payload: format!("{{\"job\": \"{name}\"}}").into_bytes(), signature: format!("sig-{name}") }
}

#[tokio::test]
async fn a_job_reaches_one_worker_with_its_signature_and_goes_once_acked() {
    let (_prefix, q) = queue().await;
    let ids = q.enqueue(&[job("a"), job("b")]).await.unwrap();
    assert_eq!(ids.len(), 2);

    let taken = q.read_jobs("w1", 10, Duration::from_millis(100)).await.unwrap();
    assert_eq!(taken.iter().map(|e| e.payload.clone()).collect::<Vec<_>>(), [job("a").payload, job("b").payload]);
    assert_eq!(taken[0].signature.as_deref(), Some("sig-a"));
    // Nothing new for a second reader: the group hands each job out once.
    assert!(q.read_jobs("w2", 10, Duration::ZERO).await.unwrap().is_empty());
    assert_eq!(q.pending_jobs().await.unwrap(), 2);

    q.ack_jobs(&taken.iter().map(|e| e.id.clone()).collect::<Vec<_>>()).await.unwrap();
    assert_eq!(q.jobs_len().await.unwrap(), 0, "acked jobs are deleted");
    assert_eq!(q.pending_jobs().await.unwrap(), 0);
}

#[tokio::test]
async fn an_entry_without_a_signature_reads_as_unsigned() {
    let (prefix, q) = queue().await;
    let mut conn = prefix.connection().await;
    let _: String =
        redis::cmd("XADD").arg(&q.keys().jobs).arg("*").arg("p").arg("{}").query_async(&mut conn).await.unwrap();
    let taken = q.read_jobs("w1", 10, Duration::from_millis(100)).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].signature, None);
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
    assert_eq!(claimed[0].payload, job("held").payload);
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

#[tokio::test]
async fn completions_are_read_after_a_resume_point_with_their_seal() {
    let (_prefix, q) = queue().await;
    let completions = q.completions();
    assert_eq!(completions.last_id().await.unwrap(), "0-0");
    completions.publish(&[("r1".into(), b"one".to_vec(), "seal1".into())]).await.unwrap();
    let after = completions.last_id().await.unwrap();
    completions.publish(&[("r2".into(), b"two".to_vec(), "seal2".into())]).await.unwrap();
    let mut reader = completions.reader().await.unwrap();
    let entries = reader.read(&after, 10, 100).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!((entries[0].data.as_slice(), entries[0].seal.as_deref()), (b"two".as_slice(), Some("seal2")));
}

#[tokio::test]
async fn the_epoch_marker_is_set_once_and_reset_by_a_wipe() {
    let (prefix, q) = queue().await;
    assert_eq!(q.epoch("first").await.unwrap(), "first");
    assert_eq!(q.epoch("second").await.unwrap(), "first", "set only when missing");
    prefix.clear().await;
    assert_eq!(q.epoch("third").await.unwrap(), "third", "a wiped Redis has a new life");
}
