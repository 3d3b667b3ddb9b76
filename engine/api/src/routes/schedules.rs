//! `GET /api/schedules`: every cron schedule of the deployed workflows with its next fire
//! times, for people and for the bot's `/schedules`.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Caller, Json, Query};

/// At most this many upcoming fire times per schedule.
const MAX_NEXT: usize = 20;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/schedules", get(list))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// how many upcoming fire times to show per schedule (1..=20, default 3)
    #[serde(default)]
    next: Option<usize>,
    /// `true` to include schedules of disabled or removed triggers
    #[serde(default)]
    all: Option<bool>,
}

async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let next = q.next.unwrap_or(3);
    if !(1..=MAX_NEXT).contains(&next) {
        return Err(ApiError::bad_request(format!("`next` must be between 1 and {MAX_NEXT}")));
    }
    let mut items = crm_triggers::schedules::list(&state.db.pool, next).await.map_err(ApiError::internal)?;
    if !q.all.unwrap_or(false) {
        items.retain(|s| s.enabled);
    }
    Ok(Json(json!({ "items": items, "next_cursor": null })))
}
