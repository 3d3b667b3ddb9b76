//! `/api/me`, `/api/token` and `/api/users`. Creating users needs an admin's own token;
//! looking them up by Telegram id (what the bot does to map a chat user) an admin's or the
//! bot's delegate token.

use axum::extract::State;
use axum::http::StatusCode;
use crm_concepts::records::{Page, PageRequest};
use crm_concepts::user::{NewUser, TokenScope, User, UserSettings};
use crm_store::users;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, CallerErrors, NotFound, WriteErrors};
use crate::extract::{Authenticated, Caller, Json, Operator, Path, Query, Service};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(my_settings))
        .routes(routes!(token))
        .routes(routes!(list, create))
        .routes(routes!(by_telegram))
}

/// The token a request is made with: whose it is and what it may do.
#[derive(Debug, Serialize, ToSchema)]
struct TokenView {
    id: i64,
    scope: TokenScope,
    /// the user the token belongs to
    user: User,
}

/// The token making this request
///
/// Answers for any valid token, delegate tokens included (the bot checks its own at start).
#[utoipa::path(
    get, path = "/api/token", tag = "users", operation_id = "current_token",
    responses((status = 200, description = "the token and its owner", body = TokenView), CallerErrors),
    security(("bearer" = [])),
)]
async fn token(State(s): State<AppState>, Authenticated(c): Authenticated) -> Result<Json<TokenView>, ApiError> {
    let user = if c.acting { users::get(&s.db, c.token_user_id).await? } else { c.user };
    Ok(Json(TokenView { id: c.token_id, scope: c.scope, user }))
}

/// The calling (or acting) user
#[utoipa::path(
    get, path = "/api/me", tag = "users", operation_id = "me",
    responses((status = 200, description = "the user the request acts as", body = User), CallerErrors),
    security(("bearer" = [])),
)]
async fn me(c: Caller) -> Json<User> {
    Json(c.user)
}

/// Change the calling (or acting) user's own settings
///
/// Any role may: a time zone, a reminder lead and a language are the person's, not the
/// CRM's. Fields left out stay as they are; `"language": null` follows the Telegram app's
/// language again.
#[utoipa::path(
    patch, path = "/api/me/settings", tag = "users", operation_id = "update_my_settings",
    request_body = UserSettings,
    responses((status = 200, description = "the user with the new settings", body = User), CallerErrors, WriteErrors),
    security(("bearer" = [])),
)]
async fn my_settings(
    State(s): State<AppState>,
    c: Caller,
    Json(settings): Json<UserSettings>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(users::set_settings(&s.db, &c.actor(), c.user.id, &settings).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    limit: Option<u32>,
    /// the `next_cursor` of the previous page
    cursor: Option<String>,
    /// a field name, `-field` for descending
    sort: Option<String>,
}

/// List users
#[utoipa::path(
    get, path = "/api/users", tag = "users", operation_id = "list_users",
    params(ListQuery),
    responses((status = 200, description = "one page of users", body = Page<User>), CallerErrors),
    security(("bearer" = [])),
)]
async fn list(State(s): State<AppState>, _: Caller, Query(q): Query<ListQuery>) -> Result<Json<Page<User>>, ApiError> {
    let page = PageRequest { limit: q.limit, cursor: q.cursor, sort: q.sort };
    Ok(Json(users::list(&s.db, &page).await?))
}

/// Create a user (admin)
#[utoipa::path(
    post, path = "/api/users", tag = "users", operation_id = "create_user",
    request_body = NewUser,
    responses((status = 201, description = "the new user", body = User), CallerErrors, WriteErrors),
    security(("bearer" = [])),
)]
async fn create(
    State(s): State<AppState>,
    Operator(c): Operator,
    Json(new): Json<NewUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    Ok((StatusCode::CREATED, Json(users::create(&s.db, &c.actor(), new).await?)))
}

/// The user linked to a Telegram account (admin)
#[utoipa::path(
    get, path = "/api/users/by-telegram/{telegram_user_id}", tag = "users", operation_id = "user_by_telegram",
    params(("telegram_user_id" = i64, Path)),
    responses((status = 200, description = "the linked user", body = User), CallerErrors, NotFound),
    security(("bearer" = [])),
)]
async fn by_telegram(State(s): State<AppState>, _: Service, Path(tg): Path<i64>) -> Result<Json<User>, ApiError> {
    users::by_telegram(&s.db, tg)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no CRM user is linked to Telegram user {tg}")))
}
