//! `/api/invites`: an admin creates a one-time invite; the bot redeems it for a new chat
//! user (`/start CODE`), which creates that CRM user linked to their Telegram account.

use axum::extract::State;
use axum::http::StatusCode;
use crm_concepts::records::Page;
use crm_concepts::user::{Role, User};
use crm_store::invites::{self, CreatedInvite, Invite};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, CallerErrors, WriteErrors};
use crate::extract::{Admin, Json, Service};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(redeem))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewInvite {
    role: Role,
    /// seconds until the code stops working; 7 days when absent
    #[serde(default)]
    expires_in: Option<i64>,
}

/// Create an invite to link a Telegram account (admin)
///
/// The answer is the only time the code is shown.
#[utoipa::path(
    post, path = "/api/invites", tag = "invites", operation_id = "create_invite",
    request_body = NewInvite,
    responses((status = 201, description = "the invite and its code", body = CreatedInvite), CallerErrors, WriteErrors),
    security(("bearer" = [])),
)]
async fn create(
    State(s): State<AppState>,
    Admin(c): Admin,
    Json(new): Json<NewInvite>,
) -> Result<(StatusCode, Json<CreatedInvite>), ApiError> {
    let ttl = new.expires_in.map_or(invites::DEFAULT_TTL, chrono::Duration::seconds);
    Ok((StatusCode::CREATED, Json(invites::create(&s.db, &c.actor(), new.role, ttl).await?)))
}

/// List invites (admin)
#[utoipa::path(
    get, path = "/api/invites", tag = "invites", operation_id = "list_invites",
    responses(
        (status = 200, description = "up to 200 invites, open ones first, in one page", body = Page<Invite>),
        CallerErrors,
    ),
    security(("bearer" = [])),
)]
async fn list(State(s): State<AppState>, _: Admin) -> Result<Json<Page<Invite>>, ApiError> {
    Ok(Json(Page { items: invites::list(&s.db, 200).await?, next_cursor: None }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Redeem {
    code: String,
    telegram_user_id: i64,
    name: String,
}

/// Redeem an invite (admin)
///
/// The bot calls this with its own (delegate) token for a chat user it does not know; the answer
/// is the new CRM user, linked to the Telegram account.
#[utoipa::path(
    post, path = "/api/invites/redeem", tag = "invites", operation_id = "redeem_invite",
    request_body = Redeem,
    responses((status = 201, description = "the new user", body = User), CallerErrors, WriteErrors),
    security(("bearer" = [])),
)]
async fn redeem(
    State(s): State<AppState>,
    _: Service,
    Json(r): Json<Redeem>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    Ok((StatusCode::CREATED, Json(invites::redeem(&s.db, &r.code, r.telegram_user_id, &r.name).await?)))
}
