//! `/api/notes`

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use crm_concepts::records::{Id, NewNote, Note, NoteFilter, NotePatch, Page, PageRequest};
use crm_store::notes;
use serde::Deserialize;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Caller, Json, Path, Query, Writer};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/notes", get(list).post(create))
        .route("/api/notes/{id}", get(read).patch(update).delete(remove))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<u32>,
    cursor: Option<String>,
    sort: Option<String>,
    contact_id: Option<Id>,
    company_id: Option<Id>,
    deal_id: Option<Id>,
    task_id: Option<Id>,
}

async fn list(State(s): State<AppState>, _: Caller, Query(q): Query<ListQuery>) -> Result<Json<Page<Note>>, ApiError> {
    let filter =
        NoteFilter { contact_id: q.contact_id, company_id: q.company_id, deal_id: q.deal_id, task_id: q.task_id };
    let page = PageRequest { limit: q.limit, cursor: q.cursor, sort: q.sort };
    Ok(Json(notes::list(&s.db, &filter, &page).await?))
}

async fn create(
    State(s): State<AppState>,
    Writer(c): Writer,
    Json(new): Json<NewNote>,
) -> Result<(StatusCode, Json<Note>), ApiError> {
    Ok((StatusCode::CREATED, Json(notes::create(&s.db, &c.actor(), new).await?)))
}

async fn read(State(s): State<AppState>, _: Caller, Path(id): Path<Id>) -> Result<Json<Note>, ApiError> {
    Ok(Json(notes::get(&s.db, id).await?))
}

async fn update(
    State(s): State<AppState>,
    Writer(c): Writer,
    Path(id): Path<Id>,
    Json(patch): Json<NotePatch>,
) -> Result<Json<Note>, ApiError> {
    Ok(Json(notes::update(&s.db, &c.actor(), id, patch).await?))
}

async fn remove(State(s): State<AppState>, Writer(c): Writer, Path(id): Path<Id>) -> Result<StatusCode, ApiError> {
    notes::delete(&s.db, &c.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
