//! API tokens. The secret is random, shown once, and stored only as its SHA-256: a leaked
//! database does not leak working tokens, and a lookup is one indexed equality.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use crm_concepts::records::Id;
use crm_concepts::user::{ApiToken, TokenScope, User};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::Db;
use crate::error::StoreError;
use crate::table;

/// Recognisable in logs and secret scanners.
const PREFIX: &str = "crm_";

/// The columns a token is listed with.
const LISTED: &str = "jsonb_build_object('id', id, 'user_id', user_id, 'name', name, 'scope', scope,
    'created_at', created_at, 'expires_at', expires_at, 'last_used_at', last_used_at, 'revoked_at', revoked_at)";

/// What a new token may do and how long it lives.
#[derive(Debug, Clone, Default)]
pub struct NewToken<'a> {
    pub name: &'a str,
    pub scope: TokenScope,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A token that authenticated: its id, what it may do, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presented {
    pub id: Id,
    pub scope: TokenScope,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Creates a full token for `user_id`; the returned string is the only copy of the secret.
pub async fn create(db: &Db, user_id: Id, name: &str) -> Result<(ApiToken, String), StoreError> {
    create_with(db, user_id, &NewToken { name, ..NewToken::default() }).await
}

/// Creates a token of any scope and lifetime; the returned string is the only copy of the secret.
pub async fn create_with(db: &Db, user_id: Id, new: &NewToken<'_>) -> Result<(ApiToken, String), StoreError> {
    let name = new.name;
    crm_concepts::fields::text("name", name, 200)?;
    if new.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(StoreError::validation("expires_at", "a token must expire in the future"));
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let row: Option<(serde_json::Value,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO api_tokens (user_id, name, token_hash, scope, expires_at)
         SELECT id, $2, $3, $4, $5 FROM users WHERE id = $1
         RETURNING {LISTED}"
    )))
    .bind(user_id)
    .bind(name)
    .bind(hash(&secret))
    .bind(new.scope.as_str())
    .bind(new.expires_at)
    .fetch_optional(&db.pool)
    .await?;
    let (token,) = row.ok_or_else(|| StoreError::validation("user_id", format!("user {user_id} does not exist")))?;
    Ok((table::to_record(token)?, secret))
}

/// The user behind a live (unrevoked, unexpired) token of a live user, and the token.
pub async fn authenticate(db: &Db, secret: &str) -> Result<Option<(User, Presented)>, StoreError> {
    if !secret.starts_with(PREFIX) || secret.len() > 200 {
        return Ok(None);
    }
    #[derive(sqlx::FromRow)]
    struct Row {
        user: serde_json::Value,
        token_id: Id,
        scope: String,
        expires_at: Option<DateTime<Utc>>,
        stale: bool,
    }
    let row: Option<Row> = sqlx::query_as(
        "SELECT to_jsonb(u.*) AS user, t.id AS token_id, t.scope, t.expires_at,
                (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute') AS stale
         FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())
           AND u.disabled_at IS NULL",
    )
    .bind(hash(secret))
    .fetch_optional(&db.pool)
    .await?;
    let Some(Row { user, token_id, scope, expires_at, stale }) = row else {
        return Ok(None);
    };
    let scope = scope.parse().map_err(|e: String| StoreError::Db(sqlx::Error::Decode(e.into())))?;
    // Touching last_used_at on every request would turn each read into a write; once a
    // minute is precise enough to spot unused tokens.
    if stale {
        sqlx::query("UPDATE api_tokens SET last_used_at = now() WHERE id = $1")
            .bind(token_id)
            .execute(&db.pool)
            .await?;
    }
    Ok(Some((table::to_record(user)?, Presented { id: token_id, scope, expires_at })))
}

pub async fn revoke(db: &Db, token_id: Id) -> Result<(), StoreError> {
    let done = sqlx::query("UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL")
        .bind(token_id)
        .execute(&db.pool)
        .await?;
    crate::credential_changes::changed();
    if done.rows_affected() == 0 {
        return Err(StoreError::Conflict(format!("token {token_id} does not exist or is already revoked")));
    }
    Ok(())
}

pub async fn list(db: &Db, user_id: Id) -> Result<Vec<ApiToken>, StoreError> {
    let rows: Vec<(serde_json::Value,)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {LISTED} FROM api_tokens WHERE user_id = $1 ORDER BY id")))
            .bind(user_id)
            .fetch_all(&db.pool)
            .await?;
    rows.into_iter().map(|r| table::to_record(r.0)).collect()
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}
