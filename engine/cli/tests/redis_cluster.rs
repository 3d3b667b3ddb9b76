//! The whole run path on a Redis Cluster: the engine and the workers get a
//! `redis+cluster://` URL naming three masters started by the test. Runs complete, none is
//! lost or applied twice, a worker killed mid-step is taken over through the cluster, the
//! installation's keys stay in one slot, and the engine and the workers need no more on a
//! cluster than the ACL users `crm redis-acl` prints.

use std::time::{Duration, Instant};

use crm_queue::Keys;
use crm_testing::Flow;
use crm_testing::manifests::slow_chain;

#[tokio::test(flavor = "multi_thread")]
async fn runs_complete_on_a_redis_cluster_with_every_key_in_one_slot() {
    let mut flow = Flow::start_with_redis_cluster("cluster_runs").await;
    flow.deploy_manifest(&slow_chain("cluster-chain", 3, 5));
    flow.start_worker(4);
    flow.start_worker(4);
    let ids = flow.start_runs("cluster-chain", 40).await;

    let statuses = flow.wait_final(&ids, Duration::from_secs(120)).await;
    assert!(statuses.iter().all(|s| s == "succeeded"), "{statuses:?}\n{}", flow.engine_log());
    flow.assert_clean_history(&ids).await;
    let (_, run) = flow.get(&format!("/api/runs/{}", ids[0])).await;
    assert_eq!(run["steps"].as_array().map(Vec::len), Some(3), "{run}");

    let cluster = flow.redis().redis_cluster().expect("a cluster");
    let keys = Keys::new(&flow.prefix);
    let (slot, node) = cluster.slot_of(&keys.jobs).await;
    for key in [&keys.workers, &keys.completions, &keys.epoch] {
        assert_eq!(cluster.slot_of(key).await.0, slot, "{key}");
    }
    for (url, n) in cluster.keys_per_node().await {
        if url == node {
            assert!(n >= 3, "the jobs stream, heartbeats and the epoch marker live on the slot's node: {n}");
        } else {
            assert_eq!(n, 0, "no key of the installation elsewhere");
        }
    }
    let (status, ready) = flow.get("/readyz").await;
    assert!(status.is_success(), "{ready}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_mid_step_is_taken_over_through_the_cluster() {
    let mut flow = Flow::start_with_redis_cluster("cluster_takeover").await;
    flow.deploy_manifest(&slow_chain("cluster-slow", 2, 800));
    let doomed = flow.start_worker_named(4, "doomed");
    let ids = flow.start_runs("cluster-slow", 4).await;

    let deadline = Instant::now() + Duration::from_secs(20);
    while flow.jobs_in_progress().await == 0 {
        assert!(Instant::now() < deadline, "the worker never took a step");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    flow.kill_worker(doomed);
    flow.start_worker_named(4, "survivor");
    let statuses = flow.wait_final(&ids, Duration::from_secs(60)).await;
    assert!(statuses.iter().all(|s| s == "succeeded"), "{statuses:?}");
    flow.assert_clean_history(&ids).await;
    let workers: Vec<String> = sqlx::query_scalar("SELECT DISTINCT worker FROM step_attempts WHERE run_id = ANY($1)")
        .bind(&ids)
        .fetch_all(&flow.db.pool)
        .await
        .unwrap();
    assert_eq!(workers, vec!["survivor"], "the survivor finished every step, the dead worker's included");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_engine_and_workers_run_on_the_cluster_as_their_acl_users() {
    let mut flow = Flow::start_with_acl_redis_cluster("cluster_acl").await;
    flow.deploy_manifest(&slow_chain("cluster-acl-chain", 3, 5));
    flow.start_worker(4);
    flow.start_worker(4);
    let ids = flow.start_runs("cluster-acl-chain", 20).await;

    let statuses = flow.wait_final(&ids, Duration::from_secs(120)).await;
    assert!(statuses.iter().all(|s| s == "succeeded"), "{statuses:?}\n{}", flow.engine_log());
    flow.assert_clean_history(&ids).await;
    let (status, ready) = flow.get("/readyz").await;
    assert!(status.is_success(), "{ready}");
    let cluster = flow.redis().redis_cluster().expect("a cluster");
    let denials = cluster.denials().await;
    assert!(denials.is_empty(), "a node refused commands of the ACL users: {denials:#?}");
}
