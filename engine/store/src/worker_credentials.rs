//! Worker credentials: what a `crm worker` shows the engine instead of a database URL or a
//! user's token. Made by `crm worker credential create`, listed and revoked by admins; the
//! secret is shown once and stored only as its SHA-256, like API tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use crm_concepts::records::Id;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Db;
use crate::error::StoreError;

/// Recognisable in logs and secret scanners, and never mistaken for an API token.
pub const PREFIX: &str = "crmw_";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct WorkerCredential {
    pub id: Id,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, name, created_at, last_used_at, revoked_at";

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Creates a credential; the returned string is the only copy of the secret.
pub async fn create(db: &Db, name: &str) -> Result<(WorkerCredential, String), StoreError> {
    crm_concepts::fields::text("name", name, 200)?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let sql = format!("INSERT INTO worker_credentials (name, secret_hash) VALUES ($1, $2) RETURNING {COLUMNS}");
    let credential =
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(name).bind(hash(&secret)).fetch_one(&db.pool).await?;
    Ok((credential, secret))
}

pub async fn list(db: &Db) -> Result<Vec<WorkerCredential>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM worker_credentials ORDER BY id");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&db.pool).await?)
}

pub async fn revoke(db: &Db, id: Id) -> Result<(), StoreError> {
    let done = sqlx::query("UPDATE worker_credentials SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL")
        .bind(id)
        .execute(&db.pool)
        .await?;
    crate::credential_changes::changed();
    if done.rows_affected() == 0 {
        return Err(StoreError::Conflict(format!("worker credential {id} does not exist or is already revoked")));
    }
    Ok(())
}

/// The id of the live credential with this secret.
pub async fn authenticate(db: &Db, secret: &str) -> Result<Option<Id>, StoreError> {
    if !secret.starts_with(PREFIX) || secret.len() > 200 {
        return Ok(None);
    }
    let row: Option<(Id, bool)> = sqlx::query_as(
        "SELECT id, (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
         FROM worker_credentials WHERE secret_hash = $1 AND revoked_at IS NULL",
    )
    .bind(hash(secret))
    .fetch_optional(&db.pool)
    .await?;
    let Some((id, stale)) = row else { return Ok(None) };
    // Once a minute is precise enough to spot unused credentials; every call would be a write.
    if stale {
        sqlx::query("UPDATE worker_credentials SET last_used_at = now() WHERE id = $1")
            .bind(id)
            .execute(&db.pool)
            .await?;
    }
    Ok(Some(id))
}
