//! `/api/companies`

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use crm_concepts::records::{Company, CompanyFilter, CompanyPatch, Id, NewCompany, Page, PageRequest};
use crm_store::companies;
use serde::Deserialize;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Caller, Json, Path, Query, Writer};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/companies", get(list).post(create))
        .route("/api/companies/{id}", get(read).patch(update).delete(remove))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<u32>,
    cursor: Option<String>,
    sort: Option<String>,
    owner_id: Option<Id>,
    tag: Option<String>,
    q: Option<String>,
}

async fn list(
    State(s): State<AppState>,
    _: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<Company>>, ApiError> {
    let filter = CompanyFilter { owner_id: q.owner_id, tag: q.tag, q: q.q };
    let page = PageRequest { limit: q.limit, cursor: q.cursor, sort: q.sort };
    Ok(Json(companies::list(&s.db, &filter, &page).await?))
}

async fn create(
    State(s): State<AppState>,
    Writer(c): Writer,
    Json(new): Json<NewCompany>,
) -> Result<(StatusCode, Json<Company>), ApiError> {
    Ok((StatusCode::CREATED, Json(companies::create(&s.db, &c.actor(), new).await?)))
}

async fn read(State(s): State<AppState>, _: Caller, Path(id): Path<Id>) -> Result<Json<Company>, ApiError> {
    Ok(Json(companies::get(&s.db, id).await?))
}

async fn update(
    State(s): State<AppState>,
    Writer(c): Writer,
    Path(id): Path<Id>,
    Json(patch): Json<CompanyPatch>,
) -> Result<Json<Company>, ApiError> {
    Ok(Json(companies::update(&s.db, &c.actor(), id, patch).await?))
}

async fn remove(State(s): State<AppState>, Writer(c): Writer, Path(id): Path<Id>) -> Result<StatusCode, ApiError> {
    companies::delete(&s.db, &c.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
