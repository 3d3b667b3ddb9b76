//! `/api/runs` (start, list, show, cancel, follow as SSE) and `/api/completions` (the SSE
//! stream of finished runs the bot listens to).

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use crm_concepts::run::{RunRequest, RunStatus};
use crm_scheduler::{Accepted, Scheduler};
use crm_store::run_history::{self, RunDetail, RunQuery, RunSummary};
use futures::Stream;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Caller, Json, Path, Query};
use crate::routes::workflows::workflow_error;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/runs", get(list).post(start))
        .route("/api/runs/{id}", get(show))
        .route("/api/runs/{id}/cancel", post(cancel))
        .route("/api/runs/{id}/events", get(events))
        .route("/api/completions", get(completions))
        .route("/api/scheduler/metrics", get(metrics))
}

fn scheduler(s: &AppState) -> Result<&Scheduler, ApiError> {
    s.scheduler.as_ref().ok_or_else(|| ApiError::unavailable("this API runs without the scheduler; start `crm serve`"))
}

/// `POST /api/runs`. The run acts for the caller (the `X-Crm-Acting-User` of an admin
/// token included); an admin may name another `acting_user` in the body.
async fn start(
    State(s): State<AppState>,
    c: Caller,
    Json(mut request): Json<RunRequest>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    c.require_write()?;
    let acting_for_someone = c.token_user_id != c.user.id;
    match request.acting_user {
        Some(u) if u != c.user.id && (acting_for_someone || !c.user.role.is_admin()) => {
            return Err(ApiError::forbidden(
                "only an admin token (without X-Crm-Acting-User) may start runs for another user",
            ));
        }
        Some(_) => {}
        None => request.acting_user = Some(c.user.id),
    }
    if request.trigger.is_none() {
        request.trigger = Some(if acting_for_someone { "bot".into() } else { "api".into() });
    }
    let accepted = scheduler(&s)?.submit(request).await.map_err(workflow_error)?;
    let status = if accepted.created { StatusCode::ACCEPTED } else { StatusCode::OK };
    Ok((status, Json(accepted)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    workflow: Option<String>,
    status: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Serialize)]
struct Page {
    items: Vec<RunSummary>,
    next_cursor: Option<String>,
}

async fn list(State(s): State<AppState>, _: Caller, Query(q): Query<ListQuery>) -> Result<Json<Page>, ApiError> {
    let status = match q.status.as_deref() {
        Some(st) => Some(st.parse::<RunStatus>().map_err(ApiError::bad_request)?),
        None => None,
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 200"));
    }
    let query = RunQuery { workflow: q.workflow, status, limit, cursor: q.cursor };
    let (items, next_cursor) = run_history::list(&s.db.pool, &query).await.map_err(workflow_error)?;
    Ok(Json(Page { items, next_cursor }))
}

async fn show(State(s): State<AppState>, _: Caller, Path(id): Path<Uuid>) -> Result<Json<RunDetail>, ApiError> {
    Ok(Json(run_history::run_detail(&s.db.pool, id).await.map_err(workflow_error)?))
}

async fn cancel(State(s): State<AppState>, c: Caller, Path(id): Path<Uuid>) -> Result<Json<RunSummary>, ApiError> {
    c.require_write()?;
    Ok(Json(scheduler(&s)?.cancel(id).await.map_err(workflow_error)?))
}

async fn metrics(State(s): State<AppState>, _: Caller) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(scheduler(&s)?.metrics()))
}

/// How often a run's event stream looks at the run.
const EVENTS_POLL: Duration = Duration::from_millis(150);

/// `GET /api/runs/{id}/events`: a `step` event whenever a step changes state, then one
/// `run` event with the finished run, and the stream ends. Works against any engine
/// replica, since it follows Postgres.
async fn events(
    State(s): State<AppState>,
    _: Caller,
    Path(id): Path<Uuid>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    run_history::get(&s.db.pool, id).await.map_err(workflow_error)?;
    let pool = s.db.pool.clone();
    let stream = async_stream::stream! {
        let mut seen: std::collections::HashMap<String, (String, i32)> = Default::default();
        loop {
            let (run, steps) = match (run_history::get(&pool, id).await, run_history::steps(&pool, id).await) {
                (Ok(r), Ok(st)) => (r, st),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(error = %e, run = %id, "reading a run for its event stream failed");
                    yield Ok(Event::default().event("error").data("the run could not be read; reconnect"));
                    break;
                }
            };
            for step in steps {
                let state = (step.status.to_string(), step.attempt);
                if seen.get(&step.step) != Some(&state) {
                    seen.insert(step.step.clone(), state);
                    let data = serde_json::json!({
                        "step": step.step, "status": step.status, "attempt": step.attempt,
                        "output": step.output, "error": step.error,
                    });
                    yield Ok(Event::default().event("step").data(data.to_string()));
                }
            }
            if run.summary.status.is_final() {
                let data = serde_json::to_string(&run).unwrap_or_default();
                yield Ok(Event::default().event("run").data(data));
                break;
            }
            tokio::time::sleep(EVENTS_POLL).await;
        }
    };
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// `GET /api/completions`: every finished run as an SSE `completion` event whose id is
/// its stream entry id. A client that reconnects with `Last-Event-ID` (or `?after=`)
/// receives everything after it; without one it starts with runs finishing from now on.
async fn completions(
    State(s): State<AppState>,
    c: Caller,
    headers: HeaderMap,
    Query(q): Query<CompletionsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    c.require_admin()?;
    let sched = scheduler(&s)?;
    let resume = headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::to_string).or(q.after);
    let after = match resume {
        Some(id) if crm_scheduler::is_entry_id(&id) => id,
        Some(id) => {
            return Err(ApiError::bad_request(format!("{id:?} is not an event id this stream handed out")));
        }
        None => sched.last_completion_id().await.map_err(|e| ApiError::unavailable(format!("Redis: {e}")))?,
    };
    let mut reader = sched.completion_feed().await.map_err(|e| ApiError::unavailable(format!("Redis: {e}")))?;
    let stream = async_stream::stream! {
        let mut after = after;
        loop {
            match reader.read(&after, 200, 10_000).await {
                Ok(entries) => {
                    // The feed has already dropped (and logged) what the engine did not seal.
                    for (id, genuine) in entries {
                        after = id.clone();
                        if let Some(c) = genuine {
                            let data = serde_json::to_string(&c).unwrap_or_default();
                            yield Ok(Event::default().id(id).event("completion").data(data));
                        }
                    }
                }
                Err(e) => {
                    // Redis down or restarting: keep the client connected and retry; it
                    // resumes from the same id.
                    tracing::warn!(error = %e, "reading completions failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    };
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompletionsQuery {
    after: Option<String>,
}
