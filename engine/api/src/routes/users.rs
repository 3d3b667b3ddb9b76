//! `/api/me` and `/api/users`. Creating users and looking them up by Telegram id (what
//! the bot does to map a chat user) needs an admin.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use crm_concepts::records::{Page, PageRequest};
use crm_concepts::user::{NewUser, User};
use crm_store::users;
use serde::Deserialize;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Admin, Caller, Json, Path, Query};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/me", get(me))
        .route("/api/users", get(list).post(create))
        .route("/api/users/by-telegram/{telegram_user_id}", get(by_telegram))
}

async fn me(c: Caller) -> Json<User> {
    Json(c.user)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<u32>,
    cursor: Option<String>,
    sort: Option<String>,
}

async fn list(State(s): State<AppState>, _: Caller, Query(q): Query<ListQuery>) -> Result<Json<Page<User>>, ApiError> {
    let page = PageRequest { limit: q.limit, cursor: q.cursor, sort: q.sort };
    Ok(Json(users::list(&s.db, &page).await?))
}

async fn create(
    State(s): State<AppState>,
    Admin(c): Admin,
    Json(new): Json<NewUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    Ok((StatusCode::CREATED, Json(users::create(&s.db, &c.actor(), new).await?)))
}

async fn by_telegram(State(s): State<AppState>, _: Admin, Path(tg): Path<i64>) -> Result<Json<User>, ApiError> {
    users::by_telegram(&s.db, tg)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no CRM user is linked to Telegram user {tg}")))
}
