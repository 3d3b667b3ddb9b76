//! `/api/approvals`: the `approval` steps waiting for a decision, and deciding one (by run
//! and step, or by the short id the bot's buttons carry). Only a user whose role the step
//! names (admins always) may decide, and where the step names a record only its owner (or
//! an admin); the first decision ends the wait, and any later one is refused with 409.

use axum::extract::State;
use crm_concepts::records::Page;
use crm_concepts::wait::{Decision, MAX_COMMENT_CHARS};
use crm_store::run_history::{self, RunSummary};
use crm_store::run_waits::{self, PendingApproval};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, CallerErrors, ErrorBody, NotFound, WriteErrors};
use crate::extract::{Caller, Json, Path};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(decide))
        .routes(routes!(decide_by_id))
        .routes(routes!(ask_again))
}

/// Approvals the caller may decide
#[utoipa::path(
    get, path = "/api/approvals", tag = "runs", operation_id = "list_approvals",
    responses((status = 200, description = "pending approvals, soonest timeout first", body = Page<PendingApproval>), CallerErrors),
    security(("bearer" = [])),
)]
async fn list(State(s): State<AppState>, c: Caller) -> Result<Json<Page<PendingApproval>>, ApiError> {
    let items = run_waits::approvals(&s.db.pool, None, Some((c.user.id, c.user.role.as_str())), 200).await?;
    Ok(Json(Page { items, next_cursor: None }))
}

/// Ask me again in the chat
///
/// Each approval the caller may decide comes again as a message with Approve / Reject
/// buttons in their private chat with the bot (the bot's `/approvals`); answers the list.
#[utoipa::path(
    post, path = "/api/approvals/ask-again", tag = "runs", operation_id = "ask_approvals_again",
    responses((status = 200, description = "the approvals sent again, soonest timeout first", body = Page<PendingApproval>), CallerErrors),
    security(("bearer" = [])),
)]
async fn ask_again(State(s): State<AppState>, c: Caller) -> Result<Json<Page<PendingApproval>>, ApiError> {
    let items = run_waits::approvals(&s.db.pool, None, Some((c.user.id, c.user.role.as_str())), 200).await?;
    let ids: Vec<i64> = items.iter().filter_map(|a| a.id).collect();
    crm_store::approvals::ask_again(&s.db.pool, c.user.id, &ids).await?;
    Ok(Json(Page { items, next_cursor: None }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideRequest {
    pub decision: Decision,
    #[serde(default)]
    pub comment: Option<String>,
}

/// Approve or reject
#[utoipa::path(
    post, path = "/api/approvals/{run_id}/{step}", tag = "runs", operation_id = "decide_approval",
    params(("run_id" = Uuid, Path), ("step" = String, Path)),
    request_body = DecideRequest,
    responses(
        (status = 200, description = "decided: the run as it goes on", body = RunSummary),
        CallerErrors,
        NotFound,
        (status = 409, description = "decided or timed out already", body = ErrorBody),
        WriteErrors,
    ),
    security(("bearer" = [])),
)]
async fn decide(
    State(s): State<AppState>,
    c: Caller,
    Path((run_id, step)): Path<(Uuid, String)>,
    Json(d): Json<DecideRequest>,
) -> Result<Json<RunSummary>, ApiError> {
    decide_step(&s, &c, run_id, step, d).await
}

/// Approve or reject, by the approval's short id (what the bot's buttons carry)
#[utoipa::path(
    post, path = "/api/approvals/{id}", tag = "runs", operation_id = "decide_approval_by_id",
    params(("id" = i64, Path)),
    request_body = DecideRequest,
    responses(
        (status = 200, description = "decided: the run as it goes on", body = RunSummary),
        CallerErrors,
        NotFound,
        (status = 409, description = "decided or timed out already", body = ErrorBody),
        WriteErrors,
    ),
    security(("bearer" = [])),
)]
async fn decide_by_id(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<i64>,
    Json(d): Json<DecideRequest>,
) -> Result<Json<RunSummary>, ApiError> {
    let (run_id, step) = crm_store::approvals::step_of(&s.db.pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no approval {id}")))?;
    decide_step(&s, &c, run_id, step, d).await
}

async fn decide_step(
    s: &AppState,
    c: &Caller,
    run_id: Uuid,
    step: String,
    d: DecideRequest,
) -> Result<Json<RunSummary>, ApiError> {
    let scheduler = s
        .scheduler
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("this API runs without the scheduler; start `crm serve`"))?;
    if d.comment.as_ref().is_some_and(|c| c.chars().count() > MAX_COMMENT_CHARS) {
        return Err(ApiError::validation("comment", format!("must be at most {MAX_COMMENT_CHARS} characters")));
    }
    let Some(pending) = run_waits::approvals(&s.db.pool, Some((run_id, &step)), None, 1).await?.pop() else {
        let exists = run_history::get(&s.db.pool, run_id).await.is_ok();
        return Err(if exists {
            ApiError::conflict(format!(
                "step {step:?} of run {run_id} waits for no decision (decided or timed out already)"
            ))
        } else {
            ApiError::not_found(format!("no run {run_id}"))
        });
    };
    if let Some(why) = run_waits::refusal(&s.db.pool, &pending, c.user.id, c.user.role).await? {
        return Err(ApiError::forbidden(why));
    }
    if !scheduler.decide(run_id, &step, d.decision, c.user.id, d.comment).await? {
        return Err(ApiError::conflict(format!("step {step:?} of run {run_id} was decided or timed out already")));
    }
    Ok(Json(run_history::get(&s.db.pool, run_id).await?.summary))
}
