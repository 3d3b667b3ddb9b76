//! `/api/contacts`

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use crm_concepts::records::{Contact, ContactFilter, ContactPatch, Id, NewContact, Page, PageRequest};
use crm_store::contacts;
use serde::Deserialize;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Caller, Json, Path, Query, Writer};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/contacts", get(list).post(create))
        .route("/api/contacts/{id}", get(read).patch(update).delete(remove))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<u32>,
    cursor: Option<String>,
    sort: Option<String>,
    owner_id: Option<Id>,
    company_id: Option<Id>,
    tag: Option<String>,
    q: Option<String>,
}

async fn list(
    State(s): State<AppState>,
    _: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<Contact>>, ApiError> {
    let filter = ContactFilter { owner_id: q.owner_id, company_id: q.company_id, tag: q.tag, q: q.q };
    let page = PageRequest { limit: q.limit, cursor: q.cursor, sort: q.sort };
    Ok(Json(contacts::list(&s.db, &filter, &page).await?))
}

async fn create(
    State(s): State<AppState>,
    Writer(c): Writer,
    Json(new): Json<NewContact>,
) -> Result<(StatusCode, Json<Contact>), ApiError> {
    Ok((StatusCode::CREATED, Json(contacts::create(&s.db, &c.actor(), new).await?)))
}

async fn read(State(s): State<AppState>, _: Caller, Path(id): Path<Id>) -> Result<Json<Contact>, ApiError> {
    Ok(Json(contacts::get(&s.db, id).await?))
}

async fn update(
    State(s): State<AppState>,
    Writer(c): Writer,
    Path(id): Path<Id>,
    Json(patch): Json<ContactPatch>,
) -> Result<Json<Contact>, ApiError> {
    Ok(Json(contacts::update(&s.db, &c.actor(), id, patch).await?))
}

async fn remove(State(s): State<AppState>, Writer(c): Writer, Path(id): Path<Id>) -> Result<StatusCode, ApiError> {
    contacts::delete(&s.db, &c.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
