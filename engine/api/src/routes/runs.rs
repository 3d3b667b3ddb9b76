//! `/api/runs` (start, list, show, cancel, retry, follow as SSE) and `/api/completions` (the SSE
//! stream of finished runs the bot listens to).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use crm_concepts::records::Page;
use crm_concepts::run::{Completion, RunRequest, RunStatus};
use crm_scheduler::{Accepted, FeedEntry, Scheduler};
use crm_store::run_history::{self, RunDetail, RunQuery, RunSummary};
use futures::Stream;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, CallerErrors, ErrorBody, NotFound, WriteErrors};
use crate::extract::{Caller, Json, Path, Query, Service, StreamCaller};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, start))
        .routes(routes!(show))
        .routes(routes!(cancel))
        .routes(routes!(retry))
        .routes(routes!(events))
        .routes(routes!(completions))
        .routes(routes!(metrics))
}

fn scheduler(s: &AppState) -> Result<&Scheduler, ApiError> {
    s.scheduler.as_ref().ok_or_else(|| ApiError::unavailable("this API runs without the scheduler; start `crm serve`"))
}

/// Start a workflow run
///
/// The run acts for the caller (the `X-Crm-Acting-User` of an admin token included); an admin
/// may name another `acting_user` in the body. A request with the `idempotency_key` of an
/// earlier run of the workflow answers that run with 200 instead of starting another.
#[utoipa::path(
    post, path = "/api/runs", tag = "runs", operation_id = "start_run",
    request_body = RunRequest,
    responses(
        (status = 202, description = "the run is queued", body = Accepted),
        (status = 200, description = "the earlier run with this idempotency key", body = Accepted),
        CallerErrors,
        (status = 404, description = "no such workflow", body = ErrorBody),
        WriteErrors,
    ),
    security(("bearer" = [])),
)]
async fn start(
    State(s): State<AppState>,
    c: Caller,
    Json(mut request): Json<RunRequest>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    c.require_write()?;
    let acting_for_someone = c.acting;
    if let Some(notify) = &request.notify {
        // The chat a run answers in: the bot's delegate says which chat asked (it saw the
        // message); anyone else may only name their own linked chat.
        if !c.is_delegate() && c.user.telegram_user_id != Some(notify.chat_id) {
            return Err(ApiError::forbidden(
                "notify may name only your own linked Telegram chat; the bot names the chat a command came from",
            ));
        }
    }
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
    let accepted = scheduler(&s)?.submit(request).await?;
    let status = if accepted.created { StatusCode::ACCEPTED } else { StatusCode::OK };
    Ok((status, Json(accepted)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    workflow: Option<String>,
    #[param(value_type = Option<RunStatus>)]
    status: Option<String>,
    /// 1..=200, default 50
    limit: Option<i64>,
    /// the `next_cursor` of the previous page
    cursor: Option<String>,
}

/// List runs, newest first
#[utoipa::path(
    get, path = "/api/runs", tag = "runs", operation_id = "list_runs",
    params(ListQuery),
    responses((status = 200, description = "one page of runs", body = Page<RunSummary>), CallerErrors),
    security(("bearer" = [])),
)]
async fn list(
    State(s): State<AppState>,
    _: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<RunSummary>>, ApiError> {
    let status = match q.status.as_deref() {
        Some(st) => Some(st.parse::<RunStatus>().map_err(ApiError::bad_request)?),
        None => None,
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 200"));
    }
    let query = RunQuery { workflow: q.workflow, status, limit, cursor: q.cursor };
    let (items, next_cursor) = run_history::list(&s.db.pool, &query).await?;
    Ok(Json(Page { items, next_cursor }))
}

/// A run with its steps
#[utoipa::path(
    get, path = "/api/runs/{id}", tag = "runs", operation_id = "read_run",
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "the run", body = RunDetail), CallerErrors, NotFound),
    security(("bearer" = [])),
)]
async fn show(State(s): State<AppState>, _: Caller, Path(id): Path<Uuid>) -> Result<Json<RunDetail>, ApiError> {
    Ok(Json(run_history::run_detail(&s.db.pool, id).await?))
}

/// Cancel a run
#[utoipa::path(
    post, path = "/api/runs/{id}/cancel", tag = "runs", operation_id = "cancel_run",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "the run, cancelled unless it had already ended", body = RunSummary),
        CallerErrors,
        NotFound,
    ),
    security(("bearer" = [])),
)]
async fn cancel(State(s): State<AppState>, c: Caller, Path(id): Path<Uuid>) -> Result<Json<RunSummary>, ApiError> {
    c.require_write()?;
    Ok(Json(scheduler(&s)?.cancel(id).await?))
}

/// Retry a failed run from its failed step
///
/// The steps that failed (and those after them) run again, at their next attempt; the
/// steps that succeeded keep their outputs and do not run again. The run answers its chat
/// again when it ends.
#[utoipa::path(
    post, path = "/api/runs/{id}/retry", tag = "runs", operation_id = "retry_run",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "the run, running again", body = RunSummary),
        CallerErrors,
        NotFound,
        (status = 409, description = "the run is not failed", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn retry(State(s): State<AppState>, c: Caller, Path(id): Path<Uuid>) -> Result<Json<RunSummary>, ApiError> {
    c.require_write()?;
    Ok(Json(scheduler(&s)?.retry(id).await?))
}

/// Scheduler counters
#[utoipa::path(
    get, path = "/api/scheduler/metrics", tag = "runs", operation_id = "scheduler_metrics",
    responses((status = 200, description = "counters of this engine's scheduler", body = Object), CallerErrors),
    security(("bearer" = [])),
)]
async fn metrics(State(s): State<AppState>, _: Caller) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(scheduler(&s)?.metrics()))
}

/// Server-sent events of one run
///
/// A `step` event (data: `step`, `status`, `attempt`, `output`, `error`) whenever a step changes
/// state, then one `run` event whose data is the finished run, and the stream ends. Works
/// against any engine replica, since it follows Postgres. A token may hold a limited number
/// of streams open at once (429 past it), and a stream that outlives the engine's
/// `CRM_STREAM_LIFETIME_SECS` ends with a `reconnect` event. Besides a token, the web app's
/// session cookie is accepted, so a run page can follow its run.
#[utoipa::path(
    get, path = "/api/runs/{id}/events", tag = "runs", operation_id = "stream_run_events",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "an event stream", content_type = "text/event-stream", body = String),
        CallerErrors,
        NotFound,
    ),
    security(("bearer" = [])),
)]
async fn events(
    State(s): State<AppState>,
    StreamCaller { budget, .. }: StreamCaller,
    Path(id): Path<Uuid>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let slot = s.limits.stream_slot(budget)?;
    run_history::get(&s.db.pool, id).await?;
    let mut snapshots = s.run_watch.follow(id);
    let lifetime = s.limits.stream_lifetime;
    let stream = async_stream::stream! {
        let _slot = slot;
        let ends = tokio::time::Instant::now() + lifetime;
        let mut seen: std::collections::HashMap<String, (String, i32)> = Default::default();
        loop {
            tokio::select! {
                changed = snapshots.changed() => if changed.is_err() { break },
                () = tokio::time::sleep_until(ends) => {
                    yield Ok(Event::default().event("reconnect").data("this stream has reached its lifetime; reconnect"));
                    break;
                }
            }
            let Some(snapshot) = snapshots.borrow_and_update().clone() else { continue };
            for step in &snapshot.steps {
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
            if let Some(run) = &snapshot.finished {
                let data = serde_json::to_string(run).unwrap_or_default();
                yield Ok(Event::default().event("run").data(data));
                break;
            }
        }
    };
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Server-sent events of finished runs, for the bot (admin)
///
/// Every finished run as a `completion` event whose id is its stream entry id. A client that
/// reconnects with `Last-Event-ID` (or `?after=`) receives everything after it; without one it
/// starts with runs finishing from now on.
#[utoipa::path(
    get, path = "/api/completions", tag = "runs", operation_id = "stream_completions",
    params(
        CompletionsQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "the id of the last event received"),
    ),
    responses(
        (status = 200, description = "an event stream; each event's data is one completion",
            content_type = "text/event-stream", body = Completion),
        CallerErrors,
    ),
    security(("bearer" = [])),
)]
async fn completions(
    State(s): State<AppState>,
    Service(c): Service,
    headers: HeaderMap,
    Query(q): Query<CompletionsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let slot = s.limits.stream_slot(c.token_id)?;
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
    let lifetime = s.limits.stream_lifetime;
    let db = s.db.clone();
    let stream = async_stream::stream! {
        let _slot = slot;
        let ends = tokio::time::Instant::now() + lifetime;
        let mut after = after;
        while tokio::time::Instant::now() < ends {
            match reader.read(&after, 200, 10_000).await {
                Ok(mut entries) => {
                    with_languages(&db, &mut entries).await;
                    // The feed has already dropped (and logged) what the engine did not seal.
                    for (id, genuine) in entries {
                        after = id.clone();
                        if let Some(c) = genuine {
                            yield Ok(Event::default().id(id).event("completion").data(c.into_json()));
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

/// Adds the acting user's language setting to each completion that answers a chat, so the
/// bot writes its status line and buttons in it: one query per batch read. Without the
/// database the completions go as they are (the bot falls back to the Telegram app's
/// language) rather than stall the stream.
async fn with_languages(db: &crm_store::Db, entries: &mut [FeedEntry]) {
    let users: Vec<i64> = entries.iter().filter_map(|(_, c)| c.as_ref()?.answers_chat_of()).collect();
    if users.is_empty() {
        return;
    }
    match crm_store::users::languages(db, &users).await {
        Ok(languages) => {
            for c in entries.iter_mut().filter_map(|(_, c)| c.as_mut()) {
                let Some(language) = c.answers_chat_of().and_then(|u| languages.get(&u).copied()) else { continue };
                if let Err(e) = c.set_language(language) {
                    tracing::warn!(run = %c.run_id(), error = %e, "cannot add the user's language to a completion");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the users' languages for completions"),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct CompletionsQuery {
    /// resume after this event id, like `Last-Event-ID`
    after: Option<String>,
}
