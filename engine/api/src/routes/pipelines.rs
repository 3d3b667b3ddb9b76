//! `/api/pipelines`: pipelines with their ordered stages.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use crm_concepts::records::{Id, NewPipeline, Page, Pipeline};
use crm_store::pipelines;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Caller, Json, Path, Writer};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/pipelines", get(list).post(create)).route("/api/pipelines/{id}", get(read))
}

/// Pipelines are few, so the list is one page.
async fn list(State(s): State<AppState>, _: Caller) -> Result<Json<Page<Pipeline>>, ApiError> {
    Ok(Json(Page { items: pipelines::list(&s.db).await?, next_cursor: None }))
}

async fn create(
    State(s): State<AppState>,
    Writer(c): Writer,
    Json(new): Json<NewPipeline>,
) -> Result<(StatusCode, Json<Pipeline>), ApiError> {
    Ok((StatusCode::CREATED, Json(pipelines::create(&s.db, &c.actor(), new).await?)))
}

async fn read(State(s): State<AppState>, _: Caller, Path(id): Path<Id>) -> Result<Json<Pipeline>, ApiError> {
    Ok(Json(pipelines::get(&s.db, id).await?))
}
