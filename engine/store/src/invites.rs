//! One-time invites: an admin creates one for a role, a new person redeems it from
//! Telegram (`/start CODE`) and becomes a CRM user linked to their Telegram account. The
//! code is random, shown once, and stored only as its SHA-256.

use chrono::{DateTime, Duration, Utc};
use crm_concepts::records::{Actor, Id};
use crm_concepts::user::{NewUser, Role, User};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::Db;
use crate::error::StoreError;
use crate::{table, users};
use crm_concepts::fields;

/// Letters and digits only, so the code survives Telegram's `/start` deep links.
const CODE_LEN: usize = 24;
pub const DEFAULT_TTL: Duration = Duration::days(7);
pub const MAX_TTL: Duration = Duration::days(90);

// Sent with every field, `null` when unset: `#[schema(required)]` keeps the `Option`s
// required in the OpenAPI document, which would otherwise make them optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Invite {
    pub id: Id,
    pub role: Role,
    #[schema(required)]
    pub created_by: Option<Id>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    #[schema(required)]
    pub redeemed_by: Option<Id>,
    #[schema(required)]
    pub redeemed_at: Option<DateTime<Utc>>,
}

/// A new invite and its code: the only time the code is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedInvite {
    #[serde(flatten)]
    pub invite: Invite,
    pub code: String,
}

fn hash(code: &str) -> Vec<u8> {
    Sha256::digest(code.trim().as_bytes()).to_vec()
}

fn new_code() -> String {
    rand::rng().sample_iter(rand::distr::Alphanumeric).take(CODE_LEN).map(char::from).collect()
}

type InviteRow = (Id, String, Option<Id>, DateTime<Utc>, DateTime<Utc>, Option<Id>, Option<DateTime<Utc>>);

fn from_row(r: InviteRow) -> Result<Invite, StoreError> {
    let role =
        r.1.parse().map_err(|e: crm_concepts::user::UnknownRole| StoreError::validation("role", e.to_string()))?;
    Ok(Invite { id: r.0, role, created_by: r.2, created_at: r.3, expires_at: r.4, redeemed_by: r.5, redeemed_at: r.6 })
}

pub async fn create(db: &Db, actor: &Actor, role: Role, ttl: Duration) -> Result<CreatedInvite, StoreError> {
    if ttl <= Duration::zero() || ttl > MAX_TTL {
        return Err(StoreError::validation("expires_in", "must be between 1 second and 90 days"));
    }
    let code = new_code();
    let row: InviteRow = sqlx::query_as(
        "INSERT INTO invites (code_hash, role, created_by, expires_at) VALUES ($1, $2, $3, now() + make_interval(secs => $4))
         RETURNING id, role, created_by, created_at, expires_at, redeemed_by, redeemed_at",
    )
    .bind(hash(&code))
    .bind(role.as_str())
    .bind(actor.user_id)
    .bind(ttl.num_milliseconds() as f64 / 1000.0)
    .fetch_one(&db.pool)
    .await?;
    Ok(CreatedInvite { invite: from_row(row)?, code })
}

/// Open invites first, newest first.
pub async fn list(db: &Db, limit: i64) -> Result<Vec<Invite>, StoreError> {
    let rows: Vec<InviteRow> = sqlx::query_as(
        "SELECT id, role, created_by, created_at, expires_at, redeemed_by, redeemed_at FROM invites
         ORDER BY (redeemed_at IS NULL AND expires_at > now()) DESC, id DESC LIMIT $1",
    )
    .bind(limit.clamp(1, 200))
    .fetch_all(&db.pool)
    .await?;
    rows.into_iter().map(from_row).collect()
}

/// Creates the user the invite promises, linked to `telegram_user_id`, and uses the invite
/// up — all in one transaction, so a code works exactly once even when two people race.
pub async fn redeem(db: &Db, code: &str, telegram_user_id: i64, name: &str) -> Result<User, StoreError> {
    let refused = || StoreError::validation("code", "the invite code is invalid, expired or already used");
    if code.trim().is_empty() || code.len() > 128 {
        return Err(refused());
    }
    fields::text("name", name, 200)?;
    let mut tx = db.pool.begin().await?;
    let row: Option<(Id, String, Option<Id>)> = sqlx::query_as(
        "SELECT id, role, created_by FROM invites
         WHERE code_hash = $1 AND redeemed_at IS NULL AND expires_at > now() FOR UPDATE",
    )
    .bind(hash(code))
    .fetch_optional(&mut *tx)
    .await?;
    let (invite_id, role, created_by) = row.ok_or_else(refused)?;
    let linked: Option<(Id,)> = sqlx::query_as("SELECT id FROM users WHERE telegram_user_id = $1")
        .bind(telegram_user_id)
        .fetch_optional(&mut *tx)
        .await?;
    if linked.is_some() {
        return Err(StoreError::Conflict("this Telegram account is already linked to a CRM user".into()));
    }
    let role: Role = role.parse().map_err(|_| refused())?;
    let new = NewUser {
        name: name.trim().to_string(),
        email: None,
        role,
        telegram_user_id: Some(telegram_user_id),
        time_zone: None,
    };
    // The admin who invited is recorded as the one who created the user.
    let actor = Actor { user_id: created_by, origin_run: None, token_id: None };
    let after = users::TABLE.create_audited(&mut tx, &actor, &table::to_fields(&new)?).await?;
    let user: User = table::to_record(after)?;
    sqlx::query("UPDATE invites SET redeemed_by = $1, redeemed_at = now() WHERE id = $2")
        .bind(user.id)
        .bind(invite_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(user)
}

/// Withdraws an open invite: it expires now. An invite already redeemed or expired is a
/// conflict, so the caller learns it revoked nothing.
pub async fn revoke(db: &Db, id: Id) -> Result<Invite, StoreError> {
    let row: Option<InviteRow> = sqlx::query_as(
        "UPDATE invites SET expires_at = now() WHERE id = $1 AND redeemed_at IS NULL AND expires_at > now()
         RETURNING id, role, created_by, created_at, expires_at, redeemed_by, redeemed_at",
    )
    .bind(id)
    .fetch_optional(&db.pool)
    .await?;
    match row {
        Some(r) => from_row(r),
        None => Err(StoreError::Conflict(format!("invite {id} does not exist, or was already used or expired"))),
    }
}
