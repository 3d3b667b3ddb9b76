//! `/api/pipelines`: pipelines with their ordered stages.

use axum::extract::State;
use axum::http::StatusCode;
use crm_concepts::records::{Id, NewPipeline, Page, Pipeline};
use crm_store::pipelines;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, CallerErrors, NotFound, WriteErrors};
use crate::extract::{Caller, Json, Path, Writer};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(read))
}

/// List pipelines with their stages
///
/// Pipelines are few, so the list is one page.
#[utoipa::path(
    get, path = "/api/pipelines", tag = "pipelines", operation_id = "list_pipelines",
    responses((status = 200, description = "every pipeline", body = Page<Pipeline>), CallerErrors),
    security(("bearer" = [])),
)]
async fn list(State(s): State<AppState>, _: Caller) -> Result<Json<Page<Pipeline>>, ApiError> {
    Ok(Json(Page { items: pipelines::list(&s.db).await?, next_cursor: None }))
}

/// Create a pipeline with ordered stages
#[utoipa::path(
    post, path = "/api/pipelines", tag = "pipelines", operation_id = "create_pipeline",
    request_body = NewPipeline,
    responses((status = 201, description = "the new pipeline", body = Pipeline), CallerErrors, WriteErrors),
    security(("bearer" = [])),
)]
async fn create(
    State(s): State<AppState>,
    Writer(c): Writer,
    Json(new): Json<NewPipeline>,
) -> Result<(StatusCode, Json<Pipeline>), ApiError> {
    Ok((StatusCode::CREATED, Json(pipelines::create(&s.db, &c.actor(), new).await?)))
}

/// Read a pipeline
#[utoipa::path(
    get, path = "/api/pipelines/{id}", tag = "pipelines", operation_id = "read_pipeline",
    params(("id" = Id, Path)),
    responses((status = 200, description = "the pipeline", body = Pipeline), CallerErrors, NotFound),
    security(("bearer" = [])),
)]
async fn read(State(s): State<AppState>, _: Caller, Path(id): Path<Id>) -> Result<Json<Pipeline>, ApiError> {
    Ok(Json(pipelines::get(&s.db, id).await?))
}
