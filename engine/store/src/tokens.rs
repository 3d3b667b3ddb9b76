//! API tokens. The secret is random, shown once, and stored only as its SHA-256: a leaked
//! database does not leak working tokens, and a lookup is one indexed equality.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crm_concepts::records::Id;
use crm_concepts::user::{ApiToken, User};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::Db;
use crate::error::StoreError;
use crate::table;

/// Recognisable in logs and secret scanners.
const PREFIX: &str = "crm_";

/// Creates a token for `user_id`; the returned string is the only copy of the secret.
pub async fn create(db: &Db, user_id: Id, name: &str) -> Result<(ApiToken, String), StoreError> {
    crm_concepts::fields::text("name", name, 200)?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let row: Option<(serde_json::Value,)> = sqlx::query_as(
        "INSERT INTO api_tokens (user_id, name, token_hash)
         SELECT id, $2, $3 FROM users WHERE id = $1
         RETURNING jsonb_build_object('id', id, 'user_id', user_id, 'name', name, 'created_at', created_at,
                                      'last_used_at', last_used_at, 'revoked_at', revoked_at)",
    )
    .bind(user_id)
    .bind(name)
    .bind(hash(&secret))
    .fetch_optional(&db.pool)
    .await?;
    let (token,) = row.ok_or_else(|| StoreError::validation("user_id", format!("user {user_id} does not exist")))?;
    Ok((table::to_record(token)?, secret))
}

/// The user behind a live token of a live user, and the token's id.
pub async fn authenticate(db: &Db, secret: &str) -> Result<Option<(User, Id)>, StoreError> {
    if !secret.starts_with(PREFIX) || secret.len() > 200 {
        return Ok(None);
    }
    let row: Option<(serde_json::Value, Id, bool)> = sqlx::query_as(
        "SELECT to_jsonb(u.*), t.id, (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute')
         FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.disabled_at IS NULL",
    )
    .bind(hash(secret))
    .fetch_optional(&db.pool)
    .await?;
    let Some((user, token_id, stale)) = row else {
        return Ok(None);
    };
    // Touching last_used_at on every request would turn each read into a write; once a
    // minute is precise enough to spot unused tokens.
    if stale {
        sqlx::query("UPDATE api_tokens SET last_used_at = now() WHERE id = $1")
            .bind(token_id)
            .execute(&db.pool)
            .await?;
    }
    Ok(Some((table::to_record(user)?, token_id)))
}

pub async fn revoke(db: &Db, token_id: Id) -> Result<(), StoreError> {
    let done = sqlx::query("UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL")
        .bind(token_id)
        .execute(&db.pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Conflict(format!("token {token_id} does not exist or is already revoked")));
    }
    Ok(())
}

pub async fn list(db: &Db, user_id: Id) -> Result<Vec<ApiToken>, StoreError> {
    let rows: Vec<(serde_json::Value,)> = sqlx::query_as(
        "SELECT jsonb_build_object('id', id, 'user_id', user_id, 'name', name, 'created_at', created_at,
                                   'last_used_at', last_used_at, 'revoked_at', revoked_at)
         FROM api_tokens WHERE user_id = $1 ORDER BY id",
    )
    .bind(user_id)
    .fetch_all(&db.pool)
    .await?;
    rows.into_iter().map(|r| table::to_record(r.0)).collect()
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}
