//! Run retention: with `CRM_RUN_RETENTION_DAYS`, the engine prunes finished runs older than
//! that (their steps and attempts with them) and settled notifications, keeps what a
//! workflow's own `retention_days` keeps longer, and never touches a run still in progress
//! or a notification still pending. Rows are aged with SQL instead of waiting for days.

use std::time::Duration;

use base64::Engine as _;
use crm_testing::{Options, TestStack};
use serde_json::json;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(30);

async fn deploy(stack: &TestStack, manifest: &str) -> (reqwest::StatusCode, serde_json::Value) {
    let echo = base64::engine::general_purpose::STANDARD.encode(std::fs::read(crm_guests::ECHO).expect("echo"));
    stack.post("/api/workflows", json!({"manifest": manifest, "components": {"echo": echo}})).await
}

async fn start(stack: &TestStack, workflow: &str) -> Uuid {
    let (status, run) = stack.post("/api/runs", json!({"workflow": workflow, "input": {}})).await;
    assert_eq!(status, 202, "{run}");
    run["id"].as_str().and_then(|id| id.parse().ok()).expect("run id")
}

async fn wait_finished(stack: &TestStack, id: Uuid) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, run) = stack.get(&format!("/api/runs/{id}")).await;
        if run["status"] == "succeeded" {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{run}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn count(stack: &TestStack, sql: &str, ids: &[Uuid]) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).bind(ids).fetch_one(&stack.db.pool).await.expect(sql)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_runs_and_settled_notifications_are_pruned_after_their_retention() {
    let env = [("CRM_RUN_RETENTION_DAYS", "30"), ("CRM_RETENTION_INTERVAL_SECS", "1")];
    let options =
        Options { env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), ..Options::default() };
    let stack = TestStack::start_with("retention", options).await;

    // A retention of 0 days is refused, by field.
    let (status, body) = deploy(
        &stack,
        "name = \"never\"\nversion = \"1\"\nretention_days = 0\n[[steps]]\nid = \"echo\"\ncomponent = \"echo\"\n",
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["fields"][0]["field"], "retention_days", "{body}");

    let (status, body) =
        deploy(&stack, "name = \"short\"\nversion = \"1\"\n[[steps]]\nid = \"echo\"\ncomponent = \"echo\"\n").await;
    assert!(status.is_success(), "{body}");
    let (status, body) = deploy(
        &stack,
        "name = \"long\"\nversion = \"1\"\nretention_days = 365\n[[steps]]\nid = \"echo\"\ncomponent = \"echo\"\n",
    )
    .await;
    assert!(status.is_success(), "{body}");

    let mut worker = stack.start_worker(2).await;
    let old: Vec<Uuid> = vec![start(&stack, "short").await, start(&stack, "short").await, start(&stack, "short").await];
    let young = start(&stack, "short").await;
    let long = start(&stack, "long").await;
    for id in old.iter().chain([&young, &long]) {
        wait_finished(&stack, *id).await;
    }
    // No worker: this run stays queued, however old.
    worker.kill();
    let in_progress = start(&stack, "short").await;
    let attempts = count(&stack, "SELECT count(*) FROM step_attempts WHERE run_id = ANY($1)", &old).await;
    assert_eq!(attempts, 3, "each old run has its attempt before pruning");

    let user = stack.admin_id;
    let notes: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO notifications (user_id, text, workflow, created_at, delivered_at, undeliverable_at, undeliverable_reason)
         VALUES ($1, 'old, delivered', 'short', now() - interval '40 days', now() - interval '40 days', NULL, NULL),
                ($1, 'old, undeliverable', 'short', now() - interval '40 days', NULL, now() - interval '40 days', 'no chat'),
                ($1, 'old, pending', 'short', now() - interval '40 days', NULL, NULL, NULL),
                ($1, 'young, delivered', 'short', now(), now(), NULL, NULL),
                ($1, 'old, delivered, long', 'long', now() - interval '40 days', now() - interval '40 days', NULL, NULL)
         RETURNING id",
    )
    .bind(user)
    .fetch_all(&stack.db.pool)
    .await
    .expect("notifications");

    let aged: Vec<Uuid> = old.iter().copied().chain([long, in_progress]).collect();
    sqlx::query(
        "UPDATE runs SET created_at = now() - interval '40 days',
                         finished_at = CASE WHEN finished_at IS NULL THEN NULL ELSE now() - interval '40 days' END
          WHERE id = ANY($1)",
    )
    .bind(&aged)
    .execute(&stack.db.pool)
    .await
    .expect("age the runs");

    let deadline = tokio::time::Instant::now() + WAIT;
    while count(&stack, "SELECT count(*) FROM runs WHERE id = ANY($1)", &old).await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the old runs were not pruned:\n{}", stack.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(count(&stack, "SELECT count(*) FROM run_steps WHERE run_id = ANY($1)", &old).await, 0);
    assert_eq!(count(&stack, "SELECT count(*) FROM step_attempts WHERE run_id = ANY($1)", &old).await, 0);
    let (status, _) = stack.get(&format!("/api/runs/{}", old[0])).await;
    assert_eq!(status, 404);
    let kept = [young, long, in_progress];
    assert_eq!(
        count(&stack, "SELECT count(*) FROM runs WHERE id = ANY($1)", &kept).await,
        3,
        "young, long and queued stay"
    );
    assert_eq!(count(&stack, "SELECT count(*) FROM run_steps WHERE run_id = ANY($1)", &kept).await, 3);

    // The pruner handles notifications in the same pass as runs.
    let left: Vec<String> = loop {
        let left: Vec<String> = sqlx::query_scalar("SELECT text FROM notifications WHERE id = ANY($1) ORDER BY id")
            .bind(&notes)
            .fetch_all(&stack.db.pool)
            .await
            .expect("notifications left");
        if left.len() == 3 || tokio::time::Instant::now() > deadline {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(left, ["old, pending", "young, delivered", "old, delivered, long"]);
}
