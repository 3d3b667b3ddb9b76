//! `/api/engine/clock`: the engine's time for waits, and moving a test clock forward.
//! Only an engine started with `crm serve --test-clock` lets its clock move, so a test of a
//! three-day wait need not take three days; a production engine answers 404 to the move.

use axum::extract::State;
use chrono::{DateTime, Utc};
use crm_concepts::manifest::parse_duration;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, CallerErrors, ErrorBody, WriteErrors};
use crate::extract::{Caller, Json};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(now)).routes(routes!(advance))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EngineTime {
    /// the time waits are measured against
    pub now: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Advance {
    /// how far to move the test clock, e.g. `"3d"`, `"90s"`
    pub by: String,
}

fn scheduler(s: &AppState) -> Result<&crm_scheduler::Scheduler, ApiError> {
    s.scheduler.as_ref().ok_or_else(|| ApiError::unavailable("this API runs without the scheduler; start `crm serve`"))
}

/// The engine's time
#[utoipa::path(
    get, path = "/api/engine/clock", tag = "runs", operation_id = "engine_clock",
    responses((status = 200, description = "the engine's time for waits", body = EngineTime), CallerErrors),
    security(("bearer" = [])),
)]
async fn now(State(s): State<AppState>, _: Caller) -> Result<Json<EngineTime>, ApiError> {
    Ok(Json(EngineTime { now: scheduler(&s)?.now().await? }))
}

/// Move a test clock forward
///
/// Admins only, and only on an engine started with `--test-clock`; every engine of the
/// installation follows, and the waits that fall due fire.
#[utoipa::path(
    post, path = "/api/engine/clock", tag = "runs", operation_id = "advance_engine_clock",
    request_body = Advance,
    responses(
        (status = 200, description = "the engine's new time", body = EngineTime),
        CallerErrors,
        (status = 404, description = "this engine runs on the real clock", body = ErrorBody),
        WriteErrors,
    ),
    security(("bearer" = [])),
)]
async fn advance(State(s): State<AppState>, c: Caller, Json(a): Json<Advance>) -> Result<Json<EngineTime>, ApiError> {
    c.require_admin()?;
    let by = parse_duration(&a.by).map_err(|e| ApiError::validation("by", e))?;
    match scheduler(&s)?.advance_clock(by).await? {
        Some(now) => Ok(Json(EngineTime { now })),
        None => Err(ApiError::not_found("this engine runs on the real clock; start it with `crm serve --test-clock`")),
    }
}
