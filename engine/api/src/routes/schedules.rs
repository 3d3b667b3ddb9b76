//! `GET /api/schedules`: every cron schedule of the deployed workflows with its next fire
//! times, for people and for the bot's `/schedules`.

use axum::extract::State;
use crm_concepts::records::Page;
use crm_triggers::schedules::ScheduleInfo;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, CallerErrors};
use crate::extract::{Caller, Json, Query};

/// At most this many upcoming fire times per schedule.
const MAX_NEXT: usize = 20;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// how many upcoming fire times to show per schedule (1..=20, default 3)
    #[serde(default)]
    next: Option<usize>,
    /// `true` to include schedules of disabled or removed triggers
    #[serde(default)]
    all: Option<bool>,
}

/// Cron schedules of the deployed workflows with their next fire times
#[utoipa::path(
    get, path = "/api/schedules", tag = "triggers", operation_id = "list_schedules",
    params(ListQuery),
    responses((status = 200, description = "every schedule, in one page", body = Page<ScheduleInfo>), CallerErrors),
    security(("bearer" = [])),
)]
async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<ScheduleInfo>>, ApiError> {
    let next = q.next.unwrap_or(3);
    if !(1..=MAX_NEXT).contains(&next) {
        return Err(ApiError::bad_request(format!("`next` must be between 1 and {MAX_NEXT}")));
    }
    let mut items = crm_triggers::schedules::list(&state.db.pool, next).await.map_err(ApiError::internal)?;
    if !q.all.unwrap_or(false) {
        items.retain(|s| s.enabled);
    }
    Ok(Json(Page { items, next_cursor: None }))
}
