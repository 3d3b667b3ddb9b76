//! Each running engine's mark: how far it has published the completions of the runs it
//! finished (migrations/0028). Every call here runs on the engine's own connection, the
//! one whose session holds its advisory lock: the lock is what tells the others it lives.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::workflow_error::WorkflowError;

/// An engine whose lock was free: it died with completions possibly unpublished after
/// `published_through`. The lock is now held by the caller's session until [`forget`].
#[derive(Debug, Clone)]
pub struct DeadEngine {
    pub engine: Uuid,
    pub lock_key: i32,
    pub published_through: DateTime<Utc>,
}

/// Takes this engine's lock and writes its row, marked as published through the moment
/// of writing (it has finished nothing yet). Called again after the connection was lost,
/// with the mark the engine had reached, which must not move back; the row keeps its key.
pub async fn register(
    conn: &mut PgConnection,
    engine: Uuid,
    published_through: Option<DateTime<Utc>>,
) -> Result<(), WorkflowError> {
    // The key and the lock first, the row after: a row is never seen unlocked while its
    // engine lives.
    let key: i32 = sqlx::query_scalar(
        "SELECT COALESCE((SELECT lock_key FROM engine_marks WHERE engine = $1), nextval('engine_marks_lock_key')::int)",
    )
    .bind(engine)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query("SELECT pg_advisory_lock(hashtext('crm.engine_marks'), $1)").bind(key).execute(&mut *conn).await?;
    sqlx::query(
        "INSERT INTO engine_marks (engine, lock_key, published_through) VALUES ($1, $2, COALESCE($3, now()))
         ON CONFLICT (engine) DO UPDATE SET published_through = COALESCE($3, engine_marks.published_through),
             beat_at = now()",
    )
    .bind(engine)
    .bind(key)
    .bind(published_through)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Moves the mark to `published_through` (when there is a new one) and returns Postgres'
/// time of the write. `None` when the row is gone: an engine that took this one for dead
/// (its connection had dropped) published its runs again and removed it.
pub async fn beat(
    conn: &mut PgConnection,
    engine: Uuid,
    published_through: Option<DateTime<Utc>>,
) -> Result<Option<DateTime<Utc>>, WorkflowError> {
    let at = sqlx::query_scalar(
        "UPDATE engine_marks SET published_through = GREATEST(published_through, COALESCE($2, published_through)),
             beat_at = now()
         WHERE engine = $1 RETURNING now()",
    )
    .bind(engine)
    .bind(published_through)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(at)
}

/// The other engines whose lock is free. Their locks stay taken by this session, so no
/// other engine publishes their runs again at the same time, until [`forget`].
pub async fn dead(conn: &mut PgConnection, engine: Uuid) -> Result<Vec<DeadEngine>, WorkflowError> {
    let rows: Vec<(Uuid, i32, DateTime<Utc>)> = sqlx::query_as(
        "SELECT engine, lock_key, published_through FROM engine_marks
         WHERE engine <> $1 AND pg_try_advisory_lock(hashtext('crm.engine_marks'), lock_key)",
    )
    .bind(engine)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(engine, lock_key, published_through)| DeadEngine { engine, lock_key, published_through })
        .collect())
}

/// Removes dead engines' rows once their runs were published again, and lets their locks go.
pub async fn forget(conn: &mut PgConnection, dead: &[DeadEngine]) -> Result<(), WorkflowError> {
    let ids: Vec<Uuid> = dead.iter().map(|d| d.engine).collect();
    sqlx::query("DELETE FROM engine_marks WHERE engine = ANY($1)").bind(&ids).execute(&mut *conn).await?;
    release(conn, dead).await
}

/// Lets dead engines' locks go and keeps their rows, for the next look (publishing their
/// runs again failed).
pub async fn release(conn: &mut PgConnection, dead: &[DeadEngine]) -> Result<(), WorkflowError> {
    let keys: Vec<i32> = dead.iter().map(|d| d.lock_key).collect();
    sqlx::query("SELECT pg_advisory_unlock(hashtext('crm.engine_marks'), k) FROM unnest($1::int[]) AS k")
        .bind(&keys)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A clean stop: every completion this engine made is on the stream, so it leaves no row.
pub async fn retire(conn: &mut PgConnection, engine: Uuid) -> Result<(), WorkflowError> {
    sqlx::query("DELETE FROM engine_marks WHERE engine = $1").bind(engine).execute(&mut *conn).await?;
    Ok(())
}
