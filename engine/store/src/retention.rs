//! Run retention: finished runs older than their workflow's retention are deleted with
//! everything hanging off them (steps, attempts with their logs, and trigger lineage by
//! the same statement; the steps' journal, waits and approvals by cascade), and settled
//! notifications likewise. One small batch per transaction, skipping rows another pruner
//! holds, so pruning never holds the locks the scheduler needs for long. Runs still queued
//! or running, and notifications still pending, are never touched.

use sqlx::PgPool;

/// How long finished runs are kept: `default_days` (CRM_RUN_RETENTION_DAYS; `None` keeps
/// them forever), unless the current version of their workflow says `retention_days`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub default_days: Option<u32>,
    /// rows per transaction
    pub batch: i64,
}

/// The retention in days of a row whose workflow is in `column` (SQL, `$1` the default):
/// its workflow's current `retention_days`, else the default; NULL keeps it forever.
fn days_of(column: &str) -> String {
    format!(
        "COALESCE((SELECT (v.manifest ->> 'retention_days')::int
                     FROM workflows wf
                     JOIN workflow_versions v ON v.workflow = wf.name AND v.version = wf.current_version
                    WHERE wf.name = {column}), $1)"
    )
}

/// The shortest retention in force (the default and every workflow's own), so each batch
/// walks an index from the oldest row and stops at this cutoff, however many rows are
/// younger. `None`: nothing expires.
async fn shortest(pool: &PgPool, default_days: Option<i32>) -> Result<Option<i32>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT min(d) FROM (
             SELECT (v.manifest ->> 'retention_days')::int AS d
               FROM workflows wf
               JOIN workflow_versions v ON v.workflow = wf.name AND v.version = wf.current_version
             UNION ALL SELECT $1::int
         ) AS days",
    )
    .bind(default_days)
    .fetch_one(pool)
    .await
}

fn default_days(policy: &RetentionPolicy) -> Option<i32> {
    policy.default_days.map(|d| i32::try_from(d).unwrap_or(i32::MAX))
}

/// Deletes one batch of expired finished runs; returns how many.
///
/// The walk is over `runs_created`, oldest first: a run that finished before the cutoff
/// was created before it, and `finished_at` has no index of its own (migration 0025). Old
/// runs still open are passed over by every batch; there are few of them.
pub async fn prune_runs(pool: &PgPool, policy: &RetentionPolicy) -> Result<u64, sqlx::Error> {
    let default = default_days(policy);
    let Some(shortest) = shortest(pool, default).await? else { return Ok(0) };
    let sql = format!(
        "WITH doomed AS (
             SELECT r.id FROM runs r
              WHERE r.created_at < now() - make_interval(days => $3)
                AND r.finished_at < now() - make_interval(days => $3)
                AND r.finished_at < now() - make_interval(days => {days})
              ORDER BY r.created_at
              LIMIT $2
              FOR UPDATE SKIP LOCKED
         ),
         lineage AS (DELETE FROM triggered_runs WHERE run_id IN (SELECT id FROM doomed)),
         attempts AS (DELETE FROM earlier_attempts WHERE run_id IN (SELECT id FROM doomed)),
         -- their journal, waits and approvals go with them (foreign keys to run_steps)
         steps AS (DELETE FROM run_steps WHERE run_id IN (SELECT id FROM doomed))
         DELETE FROM runs WHERE id IN (SELECT id FROM doomed)",
        days = days_of("r.workflow")
    );
    let done =
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(default).bind(policy.batch).bind(shortest).execute(pool).await?;
    Ok(done.rows_affected())
}

/// Deletes one batch of expired notifications that were delivered or found undeliverable;
/// returns how many. A pending notification is kept whatever its age.
pub async fn prune_notifications(pool: &PgPool, policy: &RetentionPolicy) -> Result<u64, sqlx::Error> {
    let default = default_days(policy);
    let Some(shortest) = shortest(pool, default).await? else { return Ok(0) };
    let sql = format!(
        "DELETE FROM notifications WHERE id IN (
             SELECT n.id FROM notifications n
              WHERE (n.delivered_at IS NOT NULL OR n.undeliverable_at IS NOT NULL)
                AND n.created_at < now() - make_interval(days => $3)
                AND n.created_at < now() - make_interval(days => {days})
              ORDER BY n.id
              LIMIT $2
              FOR UPDATE SKIP LOCKED)",
        days = days_of("n.workflow")
    );
    let done =
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(default).bind(policy.batch).bind(shortest).execute(pool).await?;
    Ok(done.rows_affected())
}
