//! Chat messages steps send to CRM users (capability `notify`); the bot delivers them.

use sqlx::Row;
use uuid::Uuid;

use crate::{Db, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: i64,
    pub user_id: i64,
    pub text: String,
    pub run_id: Option<Uuid>,
    pub step: Option<String>,
    pub workflow: Option<String>,
}

/// Who sent a notification: the run and step, for the bot to link back to.
#[derive(Debug, Clone, Default)]
pub struct Origin<'a> {
    pub run_id: Option<Uuid>,
    pub step: Option<&'a str>,
    pub workflow: Option<&'a str>,
}

pub async fn add(db: &Db, user_id: i64, text: &str, origin: Origin<'_>) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "INSERT INTO notifications (user_id, text, run_id, step, workflow) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(user_id)
    .bind(text)
    .bind(origin.run_id)
    .bind(origin.step)
    .bind(origin.workflow)
    .fetch_one(&db.pool)
    .await?;
    Ok(row.try_get("id")?)
}

/// Undelivered notifications, oldest first.
pub async fn pending(db: &Db, limit: i64) -> Result<Vec<Notification>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, user_id, text, run_id, step, workflow FROM notifications
         WHERE delivered_at IS NULL ORDER BY id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Notification {
                id: r.try_get("id")?,
                user_id: r.try_get("user_id")?,
                text: r.try_get("text")?,
                run_id: r.try_get("run_id")?,
                step: r.try_get("step")?,
                workflow: r.try_get("workflow")?,
            })
        })
        .collect()
}

pub async fn mark_delivered(db: &Db, ids: &[i64]) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE notifications SET delivered_at = now() WHERE id = ANY($1) AND delivered_at IS NULL",
    )
    .bind(ids)
    .execute(&db.pool)
    .await?;
    Ok(())
}
