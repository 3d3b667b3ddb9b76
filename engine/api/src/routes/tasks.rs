//! `/api/tasks`, including completing a task.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use crm_concepts::records::{Id, NewTask, Page, PageRequest, Task, TaskFilter, TaskPatch};
use crm_store::tasks;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, CallerErrors, NotFound, WriteErrors};
use crate::extract::{Caller, Json, Listing, Path, Writer};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(read, update, remove)).routes(routes!(complete))
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
    assignee_id: Option<Id>,
    done: Option<bool>,
    due_before: Option<DateTime<Utc>>,
    deal_id: Option<Id>,
    contact_id: Option<Id>,
    company_id: Option<Id>,
}

/// List tasks
///
/// `field.KEY=VALUE` (any number) keeps the records whose custom field `KEY` matches:
/// a defined field's value is read by its type, a free-form key's compared as text.
#[utoipa::path(
    get, path = "/api/tasks", tag = "tasks", operation_id = "list_tasks",
    params(ListQuery),
    responses((status = 200, description = "one page of tasks", body = Page<Task>), CallerErrors),
    security(("bearer" = [])),
)]
async fn list(
    State(s): State<AppState>,
    _: Caller,
    Listing(q, fields): Listing<ListQuery>,
) -> Result<Json<Page<Task>>, ApiError> {
    let filter = TaskFilter {
        assignee_id: q.assignee_id,
        done: q.done,
        due_before: q.due_before,
        deal_id: q.deal_id,
        contact_id: q.contact_id,
        company_id: q.company_id,
        fields,
    };
    let page = PageRequest { limit: q.limit, cursor: q.cursor, sort: q.sort };
    Ok(Json(tasks::list(&s.db, &filter, &page).await?))
}

/// Create a task
#[utoipa::path(
    post, path = "/api/tasks", tag = "tasks", operation_id = "create_task",
    request_body = NewTask,
    responses((status = 201, description = "the new task", body = Task), CallerErrors, WriteErrors),
    security(("bearer" = [])),
)]
async fn create(
    State(s): State<AppState>,
    Writer(c): Writer,
    Json(new): Json<NewTask>,
) -> Result<(StatusCode, Json<Task>), ApiError> {
    Ok((StatusCode::CREATED, Json(tasks::create(&s.db, &c.actor(), new).await?)))
}

/// Read a task
#[utoipa::path(
    get, path = "/api/tasks/{id}", tag = "tasks", operation_id = "read_task",
    params(("id" = Id, Path)),
    responses((status = 200, description = "the task", body = Task), CallerErrors, NotFound),
    security(("bearer" = [])),
)]
async fn read(State(s): State<AppState>, _: Caller, Path(id): Path<Id>) -> Result<Json<Task>, ApiError> {
    Ok(Json(tasks::get(&s.db, id).await?))
}

/// Change a task
///
/// Absent fields stay as they are; `null` clears one.
#[utoipa::path(
    patch, path = "/api/tasks/{id}", tag = "tasks", operation_id = "update_task",
    params(("id" = Id, Path)), request_body = TaskPatch,
    responses((status = 200, description = "the changed task", body = Task), CallerErrors, NotFound, WriteErrors),
    security(("bearer" = [])),
)]
async fn update(
    State(s): State<AppState>,
    Writer(c): Writer,
    Path(id): Path<Id>,
    Json(patch): Json<TaskPatch>,
) -> Result<Json<Task>, ApiError> {
    Ok(Json(tasks::update(&s.db, &c.actor(), id, patch).await?))
}

/// Complete a task
#[utoipa::path(
    post, path = "/api/tasks/{id}/complete", tag = "tasks", operation_id = "complete_task",
    params(("id" = Id, Path)),
    responses((status = 200, description = "the completed task", body = Task), CallerErrors, NotFound),
    security(("bearer" = [])),
)]
async fn complete(State(s): State<AppState>, Writer(c): Writer, Path(id): Path<Id>) -> Result<Json<Task>, ApiError> {
    Ok(Json(tasks::complete(&s.db, &c.actor(), id).await?))
}

/// Delete a task
#[utoipa::path(
    delete, path = "/api/tasks/{id}", tag = "tasks", operation_id = "delete_task",
    params(("id" = Id, Path)),
    responses((status = 204, description = "deleted"), CallerErrors, NotFound),
    security(("bearer" = [])),
)]
async fn remove(State(s): State<AppState>, Writer(c): Writer, Path(id): Path<Id>) -> Result<StatusCode, ApiError> {
    tasks::delete(&s.db, &c.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
