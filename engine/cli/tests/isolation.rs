//! A trigger flow of the kind that used to leave hundreds of jobs on the default
//! installation's jobs stream keeps to the test's own prefix and leaves nothing behind.
//!
//! Other test runs share this Redis, and older ones may still write `{crm}:*` (or `crm:*`,
//! the layout before keys carried a hash tag), so the check
//! is on this test's own runs: none of them may appear under the default prefix.
//! (`testing/tests/isolation.rs` checks that no test code can get at the default prefix.)

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crm_testing::TestStack;
use crm_testing::deploy::{deploy, one_step};
use reqwest::StatusCode;
use serde_json::json;

/// The streams of the default installation, whose key prefix is `crm`, in today's layout
/// and the one before hash tags.
fn default_streams() -> Vec<String> {
    let keys = crm_queue::Keys::new("crm");
    let mut streams = vec![keys.jobs, keys.completions];
    streams.extend(["crm:jobs", "crm:results", "crm:completions"].map(String::from));
    streams
}

async fn stream_entries(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> Vec<String> {
    let entries: Vec<(String, HashMap<String, String>)> =
        redis::cmd("XRANGE").arg(key).arg("-").arg("+").query_async(conn).await.unwrap_or_default();
    entries.into_iter().flat_map(|(_, fields)| fields.into_values()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trigger_flow_keeps_to_its_own_prefix_and_leaves_nothing_behind() {
    let stack = TestStack::start("isolation").await;
    let trigger = "[[triggers]]\nkind = \"record_event\"\nrecord = \"contact\"\nactions = [\"created\"]\n";
    deploy(&stack.db, &one_step("on-contact", trigger)).await;
    for i in 0..3 {
        let (status, body) = stack.post("/api/contacts", json!({"name": format!("Iso {i}")})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    // No worker runs here: each run's step `only` waits on the jobs stream of the stack.
    let jobs = crm_queue::Keys::new(&stack.prefix).jobs;
    let mut conn = stack.redis().connection().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let queued: usize = redis::cmd("XLEN").arg(&jobs).query_async(&mut conn).await.expect("XLEN");
        if queued >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "only {queued} of 3 jobs reached {jobs}:\n{}", stack.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let runs: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM runs WHERE workflow = 'on-contact'")
        .fetch_all(&stack.db.pool)
        .await
        .unwrap();
    assert_eq!(runs.len(), 3);
    let own = stream_entries(&mut conn, &jobs).await;
    for run in &runs {
        assert!(own.iter().any(|e| e.contains(&run.to_string())), "run {run} is not on {jobs}");
    }
    for key in default_streams() {
        let entries = stream_entries(&mut conn, &key).await;
        for run in &runs {
            assert!(!entries.iter().any(|e| e.contains(&run.to_string())), "run {run} of a test is on {key}");
        }
    }

    // Dropping the stack takes its keys with it.
    let prefix = stack.prefix.clone();
    drop(stack);
    let left = crm_testing::services::keys_under(&prefix).await;
    assert!(left.is_empty(), "the stack left {left:?}");
}
