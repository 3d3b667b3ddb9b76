//! `/api/notes`

use axum::extract::State;
use axum::http::StatusCode;
use crm_concepts::records::{Id, NewNote, Note, NoteFilter, NotePatch, Page, PageRequest};
use crm_store::notes;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, CallerErrors, NotFound, WriteErrors};
use crate::extract::{Caller, Json, Path, Query, Writer};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(read, update, remove))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    limit: Option<u32>,
    /// the `next_cursor` of the previous page
    cursor: Option<String>,
    /// a field name, `-field` for descending
    sort: Option<String>,
    contact_id: Option<Id>,
    company_id: Option<Id>,
    deal_id: Option<Id>,
    task_id: Option<Id>,
}

/// List notes
#[utoipa::path(
    get, path = "/api/notes", tag = "notes", operation_id = "list_notes",
    params(ListQuery),
    responses((status = 200, description = "one page of notes", body = Page<Note>), CallerErrors),
    security(("bearer" = [])),
)]
async fn list(State(s): State<AppState>, _: Caller, Query(q): Query<ListQuery>) -> Result<Json<Page<Note>>, ApiError> {
    let filter =
        NoteFilter { contact_id: q.contact_id, company_id: q.company_id, deal_id: q.deal_id, task_id: q.task_id };
    let page = PageRequest { limit: q.limit, cursor: q.cursor, sort: q.sort };
    Ok(Json(notes::list(&s.db, &filter, &page).await?))
}

/// Create a note on one record
#[utoipa::path(
    post, path = "/api/notes", tag = "notes", operation_id = "create_note",
    request_body = NewNote,
    responses((status = 201, description = "the new note", body = Note), CallerErrors, WriteErrors),
    security(("bearer" = [])),
)]
async fn create(
    State(s): State<AppState>,
    Writer(c): Writer,
    Json(new): Json<NewNote>,
) -> Result<(StatusCode, Json<Note>), ApiError> {
    Ok((StatusCode::CREATED, Json(notes::create(&s.db, &c.actor(), new).await?)))
}

/// Read a note
#[utoipa::path(
    get, path = "/api/notes/{id}", tag = "notes", operation_id = "read_note",
    params(("id" = Id, Path)),
    responses((status = 200, description = "the note", body = Note), CallerErrors, NotFound),
    security(("bearer" = [])),
)]
async fn read(State(s): State<AppState>, _: Caller, Path(id): Path<Id>) -> Result<Json<Note>, ApiError> {
    Ok(Json(notes::get(&s.db, id).await?))
}

/// Change a note
#[utoipa::path(
    patch, path = "/api/notes/{id}", tag = "notes", operation_id = "update_note",
    params(("id" = Id, Path)), request_body = NotePatch,
    responses((status = 200, description = "the changed note", body = Note), CallerErrors, NotFound, WriteErrors),
    security(("bearer" = [])),
)]
async fn update(
    State(s): State<AppState>,
    Writer(c): Writer,
    Path(id): Path<Id>,
    Json(patch): Json<NotePatch>,
) -> Result<Json<Note>, ApiError> {
    Ok(Json(notes::update(&s.db, &c.actor(), id, patch).await?))
}

/// Delete a note
#[utoipa::path(
    delete, path = "/api/notes/{id}", tag = "notes", operation_id = "delete_note",
    params(("id" = Id, Path)),
    responses((status = 204, description = "deleted"), CallerErrors, NotFound),
    security(("bearer" = [])),
)]
async fn remove(State(s): State<AppState>, Writer(c): Writer, Path(id): Path<Id>) -> Result<StatusCode, ApiError> {
    notes::delete(&s.db, &c.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
