//! Browser sessions of the web app. The cookie carries a random secret shown to the
//! browser only; the table holds its SHA-256, the user, and the session's CSRF token.
//!
//! A session ends when the user signs out, after [`IDLE`] without a request, or
//! [`LIFETIME`] after it began, whichever comes first; a disabled user's sessions stop
//! working at once.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use crm_concepts::records::Id;
use crm_concepts::user::User;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::Db;
use crate::error::StoreError;
use crate::table;

/// The cookie that carries a session's secret (HttpOnly, SameSite=Lax, Path=/).
pub const COOKIE: &str = "crm_session";

/// A session unused this long has expired.
pub const IDLE: Duration = Duration::hours(12);
/// No session lives longer than this, however busy.
pub const LIFETIME: Duration = Duration::days(7);
/// `last_seen_at` (and so the idle deadline) moves at most this often: a page view is a
/// read, not a write, on every request.
const TOUCH_EVERY: Duration = Duration::minutes(1);

/// How a session was signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedInVia {
    /// a one-time link the bot sent (`/web`)
    Link,
    /// Telegram Mini App `initData`
    Telegram,
    /// a pasted API token
    Token,
}

impl SignedInVia {
    pub fn as_str(self) -> &'static str {
        match self {
            SignedInVia::Link => "link",
            SignedInVia::Telegram => "telegram",
            SignedInVia::Token => "token",
        }
    }
}

/// A live session as a request sees it.
#[derive(Debug, Clone)]
pub struct WebSession {
    pub id: Id,
    pub user: User,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// A new session and its secret: the only time the secret is known (it goes into the cookie).
#[derive(Debug, Clone)]
pub struct NewSession {
    pub session: WebSession,
    pub secret: String,
}

/// Random URL-safe text of `bytes` random bytes.
pub fn random_secret(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Starts a session for a live user.
pub async fn create(db: &Db, user_id: Id, via: SignedInVia) -> Result<NewSession, StoreError> {
    let secret = random_secret(32);
    let csrf = random_secret(24);
    let row: Option<(Id, DateTime<Utc>)> = sqlx::query_as(
        "INSERT INTO web_sessions (secret_hash, user_id, csrf_token, via, expires_at)
         SELECT $1, id, $3, $4, now() + make_interval(secs => $5) FROM users WHERE id = $2 AND disabled_at IS NULL
         RETURNING id, expires_at",
    )
    .bind(hash(&secret))
    .bind(user_id)
    .bind(&csrf)
    .bind(via.as_str())
    .bind(IDLE.num_seconds() as f64)
    .fetch_optional(&db.pool)
    .await?;
    let (id, expires_at) =
        row.ok_or_else(|| StoreError::validation("user_id", format!("user {user_id} does not exist or is disabled")))?;
    let user = crate::users::get(db, user_id).await?;
    Ok(NewSession { session: WebSession { id, user, csrf_token: csrf, expires_at }, secret })
}

/// id, user, CSRF token, expires_at, last_seen_at, created_at
type SessionRow = (Id, serde_json::Value, String, DateTime<Utc>, DateTime<Utc>, DateTime<Utc>);

/// The live session behind a cookie's secret, its idle deadline moved forward.
pub async fn authenticate(db: &Db, secret: &str) -> Result<Option<WebSession>, StoreError> {
    if secret.is_empty() || secret.len() > 200 {
        return Ok(None);
    }
    let row: Option<SessionRow> = sqlx::query_as(
        "SELECT s.id, to_jsonb(u.*), s.csrf_token, s.expires_at, s.last_seen_at, s.created_at
         FROM web_sessions s JOIN users u ON u.id = s.user_id
         WHERE s.secret_hash = $1 AND s.ended_at IS NULL AND s.expires_at > now() AND u.disabled_at IS NULL",
    )
    .bind(hash(secret))
    .fetch_optional(&db.pool)
    .await?;
    let Some((id, user, csrf_token, mut expires_at, last_seen_at, created_at)) = row else {
        return Ok(None);
    };
    let now = Utc::now();
    if now - last_seen_at > TOUCH_EVERY {
        let deadline = (now + IDLE).min(created_at + LIFETIME);
        sqlx::query("UPDATE web_sessions SET last_seen_at = now(), expires_at = $2 WHERE id = $1 AND ended_at IS NULL")
            .bind(id)
            .bind(deadline)
            .execute(&db.pool)
            .await?;
        expires_at = deadline;
    }
    Ok(Some(WebSession { id, user: table::to_record(user)?, csrf_token, expires_at }))
}

/// Signs a session out; its cookie stops working at once. Ending an ended session is harmless.
pub async fn end(db: &Db, id: Id) -> Result<(), StoreError> {
    sqlx::query("UPDATE web_sessions SET ended_at = now() WHERE id = $1 AND ended_at IS NULL")
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// The session secret in a `Cookie:` header, if there is one.
pub fn secret_in_cookie_header(header: &str) -> Option<&str> {
    header.split(';').filter_map(|pair| pair.trim().split_once('=')).find(|(name, _)| *name == COOKIE).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_session_cookie_among_others() {
        assert_eq!(secret_in_cookie_header("a=1; crm_session=abc; b=2"), Some("abc"));
        assert_eq!(secret_in_cookie_header("crm_session_x=abc"), None);
        assert_eq!(secret_in_cookie_header(""), None);
    }
}
