//! `/api/invites`: an admin creates a one-time invite; the bot redeems it for a new chat
//! user (`/start CODE`), which creates that CRM user linked to their Telegram account.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use crm_concepts::user::{Role, User};
use crm_store::invites::{self, CreatedInvite, Invite};
use serde::Deserialize;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Admin, Json};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/invites", get(list).post(create)).route("/api/invites/redeem", post(redeem))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewInvite {
    role: Role,
    /// seconds until the code stops working; 7 days when absent
    #[serde(default)]
    expires_in: Option<i64>,
}

async fn create(
    State(s): State<AppState>,
    Admin(c): Admin,
    Json(new): Json<NewInvite>,
) -> Result<(StatusCode, Json<CreatedInvite>), ApiError> {
    let ttl = new.expires_in.map_or(invites::DEFAULT_TTL, chrono::Duration::seconds);
    Ok((StatusCode::CREATED, Json(invites::create(&s.db, &c.actor(), new.role, ttl).await?)))
}

async fn list(State(s): State<AppState>, _: Admin) -> Result<Json<serde_json::Value>, ApiError> {
    let items: Vec<Invite> = invites::list(&s.db, 200).await?;
    Ok(Json(serde_json::json!({"items": items, "next_cursor": null})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Redeem {
    code: String,
    telegram_user_id: i64,
    name: String,
}

/// Admin only: the bot calls this with its own (admin) token for a user it does not know.
async fn redeem(
    State(s): State<AppState>,
    _: Admin,
    Json(r): Json<Redeem>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    Ok((StatusCode::CREATED, Json(invites::redeem(&s.db, &r.code, r.telegram_user_id, &r.name).await?)))
}
