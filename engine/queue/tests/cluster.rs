//! The streams on a Redis Cluster (three masters started by the test): every operation the
//! engine and the workers use works through the cluster client, and an installation's keys
//! all live in one slot, on one node.

use std::time::Duration;

use crm_queue::{Keys, SignedJob};
use crm_testing::TestPrefix;

fn job(name: &str) -> SignedJob {
    SignedJob { payload: format!("{{\"job\": \"{name}\"}}").into_bytes(), signature: format!("sig-{name}") }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_queue_operation_works_on_a_cluster_within_one_slot() {
    let prefix = TestPrefix::cluster("queue_cluster").await;
    let cluster = prefix.redis_cluster().expect("a cluster");
    let q = prefix.queue().await;

    // Jobs: enqueue, read once, pending, claim after the visibility timeout, touch, ack.
    let ids = q.enqueue(&[job("a"), job("b"), job("c")]).await.unwrap();
    assert_eq!(ids.len(), 3);
    let taken = q.read_jobs("w1", 2, Duration::from_millis(200)).await.unwrap();
    assert_eq!(taken.iter().map(|e| e.payload.clone()).collect::<Vec<_>>(), [job("a").payload, job("b").payload]);
    assert_eq!(taken[0].signature.as_deref(), Some("sig-a"));
    assert_eq!(q.pending_jobs().await.unwrap(), 2);
    assert_eq!(q.undelivered_jobs().await.unwrap(), 1);
    q.touch_jobs("w1", &[taken[0].id.clone()]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let claimed = q.claim_stale_jobs("w2", Duration::from_millis(100), 10).await.unwrap();
    assert_eq!(claimed.len(), 2, "both held jobs went idle past the timeout");
    let rest = q.read_jobs("w2", 10, Duration::ZERO).await.unwrap();
    assert_eq!(rest.len(), 1);
    let all: Vec<String> = claimed.iter().chain(&rest).map(|e| e.id.clone()).collect();
    q.ack_jobs(&all).await.unwrap();
    assert_eq!(q.jobs_len().await.unwrap(), 0, "acked jobs are deleted");

    // A blocking read waits for a job enqueued meanwhile, on its own connection.
    let reader = q.reader().await.unwrap();
    let waiting = tokio::spawn(async move { reader.read_jobs("w3", 1, Duration::from_secs(5)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    q.enqueue(&[job("late")]).await.unwrap();
    let late = waiting.await.unwrap().unwrap();
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].payload, job("late").payload);

    // Heartbeats, completions, the epoch marker.
    q.heartbeat("w1").await.unwrap();
    let live = q.live_workers(Duration::from_secs(5)).await.unwrap();
    assert_eq!(live.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(), ["w1"]);
    let completions = q.completions();
    completions.publish(&[("r1".into(), b"one".to_vec(), "seal1".into())]).await.unwrap();
    let after = completions.last_id().await.unwrap();
    completions.publish(&[("r2".into(), b"two".to_vec(), "seal2".into())]).await.unwrap();
    let mut completion_reader = completions.reader().await.unwrap();
    let entries = completion_reader.read(&after, 10, 100).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!((entries[0].data.as_slice(), entries[0].seal.as_deref()), (b"two".as_slice(), Some("seal2")));
    assert_eq!(q.epoch("first").await.unwrap(), "first");
    assert_eq!(q.epoch("second").await.unwrap(), "first");

    // One slot, one node: every key of the installation sits with the jobs stream.
    let keys = Keys::new(prefix.as_str());
    let (slot, node) = cluster.slot_of(&keys.jobs).await;
    for key in [&keys.workers, &keys.completions, &keys.epoch] {
        assert_eq!(cluster.slot_of(key).await.0, slot, "{key}");
    }
    let per_node = cluster.keys_per_node().await;
    assert_eq!(per_node.len(), 3);
    for (url, n) in per_node {
        let expected = if url == node { 4 } else { 0 };
        assert_eq!(n, expected, "keys on {}", crm_queue::redact(&url));
    }

    // A wipe of the cluster is noticed like a wipe of one server.
    prefix.clear().await;
    assert_eq!(q.epoch("third").await.unwrap(), "third");
    q.ensure_groups().await.unwrap();
    q.enqueue(&[job("after-wipe")]).await.unwrap();
    assert_eq!(q.read_jobs("w1", 10, Duration::from_millis(200)).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_cluster_url_without_nodes_is_refused_with_a_clear_error() {
    let err = crm_queue::Redis::open("redis+cluster://:secret@").err().expect("refused");
    assert!(err.to_string().contains("at least one node"), "{err}");
    assert!(!err.to_string().contains("secret"), "{err}");
}
