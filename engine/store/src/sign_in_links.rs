//! One-time sign-in links for the web app: the bot's `/web` asks the engine for one on
//! behalf of the chat user; opening it (and pressing "Sign in") starts a browser session.
//! The code is random, stored as its SHA-256, works once and only for [`TTL`].

use chrono::{DateTime, Duration, Utc};
use crm_concepts::records::Id;
use sha2::{Digest, Sha256};

use crate::Db;
use crate::error::StoreError;
use crate::web_sessions::random_secret;

/// How long a link works.
pub const TTL: Duration = Duration::minutes(10);

/// A new link's code and deadline: the only time the code is known.
#[derive(Debug, Clone)]
pub struct SignInCode {
    pub code: String,
    pub expires_at: DateTime<Utc>,
}

fn hash(code: &str) -> Vec<u8> {
    Sha256::digest(code.as_bytes()).to_vec()
}

/// A code that signs in `user_id` once, within [`TTL`].
pub async fn create(db: &Db, user_id: Id) -> Result<SignInCode, StoreError> {
    let code = random_secret(24);
    let row: Option<(DateTime<Utc>,)> = sqlx::query_as(
        "INSERT INTO web_sign_in_links (code_hash, user_id, expires_at)
         SELECT $1, id, now() + make_interval(secs => $3) FROM users WHERE id = $2 AND disabled_at IS NULL
         RETURNING expires_at",
    )
    .bind(hash(&code))
    .bind(user_id)
    .bind(TTL.num_seconds() as f64)
    .fetch_optional(&db.pool)
    .await?;
    let (expires_at,) =
        row.ok_or_else(|| StoreError::validation("user_id", format!("user {user_id} does not exist or is disabled")))?;
    Ok(SignInCode { code, expires_at })
}

/// Uses a code up and returns whose it was; `None` when it is unknown, expired or used.
/// One statement, so two browsers racing with the same link cannot both win.
pub async fn redeem(db: &Db, code: &str) -> Result<Option<Id>, StoreError> {
    if code.is_empty() || code.len() > 200 {
        return Ok(None);
    }
    let row: Option<(Id,)> = sqlx::query_as(
        "UPDATE web_sign_in_links l SET used_at = now()
         FROM users u
         WHERE l.code_hash = $1 AND l.used_at IS NULL AND l.expires_at > now()
           AND u.id = l.user_id AND u.disabled_at IS NULL
         RETURNING l.user_id",
    )
    .bind(hash(code))
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.map(|r| r.0))
}
