//! `/api/tasks`, including completing a task.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use crm_concepts::records::{Id, NewTask, Page, PageRequest, Task, TaskFilter, TaskPatch};
use crm_store::tasks;
use serde::Deserialize;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Caller, Json, Path, Query, Writer};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/tasks", get(list).post(create))
        .route("/api/tasks/{id}", get(read).patch(update).delete(remove))
        .route("/api/tasks/{id}/complete", post(complete))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<u32>,
    cursor: Option<String>,
    sort: Option<String>,
    assignee_id: Option<Id>,
    done: Option<bool>,
    due_before: Option<DateTime<Utc>>,
    deal_id: Option<Id>,
    contact_id: Option<Id>,
    company_id: Option<Id>,
}

async fn list(State(s): State<AppState>, _: Caller, Query(q): Query<ListQuery>) -> Result<Json<Page<Task>>, ApiError> {
    let filter = TaskFilter {
        assignee_id: q.assignee_id,
        done: q.done,
        due_before: q.due_before,
        deal_id: q.deal_id,
        contact_id: q.contact_id,
        company_id: q.company_id,
    };
    let page = PageRequest { limit: q.limit, cursor: q.cursor, sort: q.sort };
    Ok(Json(tasks::list(&s.db, &filter, &page).await?))
}

async fn create(
    State(s): State<AppState>,
    Writer(c): Writer,
    Json(new): Json<NewTask>,
) -> Result<(StatusCode, Json<Task>), ApiError> {
    Ok((StatusCode::CREATED, Json(tasks::create(&s.db, &c.actor(), new).await?)))
}

async fn read(State(s): State<AppState>, _: Caller, Path(id): Path<Id>) -> Result<Json<Task>, ApiError> {
    Ok(Json(tasks::get(&s.db, id).await?))
}

async fn update(
    State(s): State<AppState>,
    Writer(c): Writer,
    Path(id): Path<Id>,
    Json(patch): Json<TaskPatch>,
) -> Result<Json<Task>, ApiError> {
    Ok(Json(tasks::update(&s.db, &c.actor(), id, patch).await?))
}

async fn complete(State(s): State<AppState>, Writer(c): Writer, Path(id): Path<Id>) -> Result<Json<Task>, ApiError> {
    Ok(Json(tasks::complete(&s.db, &c.actor(), id).await?))
}

async fn remove(State(s): State<AppState>, Writer(c): Writer, Path(id): Path<Id>) -> Result<StatusCode, ApiError> {
    tasks::delete(&s.db, &c.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
