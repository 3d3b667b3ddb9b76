//! `/api/deals`, including moving a deal between stages.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use crm_concepts::records::{Deal, DealFilter, DealPatch, DealStatus, Id, MoveDeal, NewDeal, Page, PageRequest};
use crm_store::deals;
use serde::Deserialize;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Caller, Json, Path, Query, Writer};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/deals", get(list).post(create))
        .route("/api/deals/{id}", get(read).patch(update).delete(remove))
        .route("/api/deals/{id}/move", post(move_stage))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<u32>,
    cursor: Option<String>,
    sort: Option<String>,
    pipeline_id: Option<Id>,
    stage_id: Option<Id>,
    status: Option<DealStatus>,
    owner_id: Option<Id>,
    contact_id: Option<Id>,
    company_id: Option<Id>,
    q: Option<String>,
}

async fn list(State(s): State<AppState>, _: Caller, Query(q): Query<ListQuery>) -> Result<Json<Page<Deal>>, ApiError> {
    let filter = DealFilter {
        pipeline_id: q.pipeline_id,
        stage_id: q.stage_id,
        status: q.status,
        owner_id: q.owner_id,
        contact_id: q.contact_id,
        company_id: q.company_id,
        q: q.q,
        ..DealFilter::default()
    };
    let page = PageRequest { limit: q.limit, cursor: q.cursor, sort: q.sort };
    Ok(Json(deals::list(&s.db, &filter, &page).await?))
}

async fn create(
    State(s): State<AppState>,
    Writer(c): Writer,
    Json(new): Json<NewDeal>,
) -> Result<(StatusCode, Json<Deal>), ApiError> {
    Ok((StatusCode::CREATED, Json(deals::create(&s.db, &c.actor(), new).await?)))
}

async fn read(State(s): State<AppState>, _: Caller, Path(id): Path<Id>) -> Result<Json<Deal>, ApiError> {
    Ok(Json(deals::get(&s.db, id).await?))
}

async fn update(
    State(s): State<AppState>,
    Writer(c): Writer,
    Path(id): Path<Id>,
    Json(patch): Json<DealPatch>,
) -> Result<Json<Deal>, ApiError> {
    Ok(Json(deals::update(&s.db, &c.actor(), id, patch).await?))
}

async fn move_stage(
    State(s): State<AppState>,
    Writer(c): Writer,
    Path(id): Path<Id>,
    Json(m): Json<MoveDeal>,
) -> Result<Json<Deal>, ApiError> {
    Ok(Json(deals::move_stage(&s.db, &c.actor(), id, m.stage_id).await?))
}

async fn remove(State(s): State<AppState>, Writer(c): Writer, Path(id): Path<Id>) -> Result<StatusCode, ApiError> {
    deals::delete(&s.db, &c.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
