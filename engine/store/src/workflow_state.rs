//! The per-workflow key-value state steps keep across runs (capability `state`). Steps
//! reach it only through host calls, inside the engine's journaled transaction.

use serde_json::Value;
use sqlx::PgConnection;

use crate::StoreError;

pub async fn get(conn: &mut PgConnection, workflow: &str, key: &str) -> Result<Option<Value>, StoreError> {
    Ok(sqlx::query_scalar("SELECT value FROM workflow_state WHERE workflow = $1 AND key = $2")
        .bind(workflow)
        .bind(key)
        .fetch_optional(conn)
        .await?)
}

pub async fn set(conn: &mut PgConnection, workflow: &str, key: &str, value: &Value) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO workflow_state (workflow, key, value) VALUES ($1, $2, $3)
         ON CONFLICT (workflow, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
    )
    .bind(workflow)
    .bind(key)
    .bind(value)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete(conn: &mut PgConnection, workflow: &str, key: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM workflow_state WHERE workflow = $1 AND key = $2")
        .bind(workflow)
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}
