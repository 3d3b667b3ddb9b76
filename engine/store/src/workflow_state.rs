//! The per-workflow key-value state steps keep across runs (capability `state`).

use sqlx::Row;

use crate::{Db, StoreError};

/// The value under `key` as JSON text.
pub async fn get(db: &Db, workflow: &str, key: &str) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT value::text AS value FROM workflow_state WHERE workflow = $1 AND key = $2")
        .bind(workflow)
        .bind(key)
        .fetch_optional(&db.pool)
        .await?;
    Ok(match row {
        Some(r) => Some(r.try_get("value")?),
        None => None,
    })
}

/// `value` is JSON text (validated by the caller; Postgres refuses anything else).
pub async fn set(db: &Db, workflow: &str, key: &str, value: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO workflow_state (workflow, key, value) VALUES ($1, $2, $3::jsonb)
         ON CONFLICT (workflow, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
    )
    .bind(workflow)
    .bind(key)
    .bind(value)
    .execute(&db.pool)
    .await?;
    Ok(())
}

pub async fn delete(db: &Db, workflow: &str, key: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM workflow_state WHERE workflow = $1 AND key = $2")
        .bind(workflow)
        .bind(key)
        .execute(&db.pool)
        .await?;
    Ok(())
}
