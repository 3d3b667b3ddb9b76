//! `/api/notifications`: the chat messages workflow steps sent to CRM users (capability
//! `notify`), and their delivery by the bot.
//!
//! The bot follows `GET /api/notifications/stream` (SSE) and reports each notification
//! `delivered` or `undeliverable` (with a reason). Postgres is the truth: the stream serves
//! what is still pending, oldest first, and wakes on a Postgres NOTIFY from the commit that
//! added a notification rather than polling. A notification the bot took but never reported
//! is served again when the bot reconnects, so a bot restart loses none, and one it reported
//! is never served again.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use crm_concepts::message_button::ButtonAction;
use crm_concepts::press_outcome::PressOutcome;
use crm_concepts::records::Page;
use crm_concepts::run::RunRequest;
use crm_store::notifications::{self, DeliveryStatus, ListQuery, Notification};
use futures::Stream;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, CallerErrors, NotFound, WriteErrors};
use crate::extract::{Caller, Json, Path, Query, Service};

/// Pending notifications read per query; more wait until the bot reports some.
const BATCH: i64 = 500;
/// Looks at the table even without a signal this often: a NOTIFY sent while the
/// listener's connection was being replaced is lost.
const RECHECK: Duration = Duration::from_secs(15);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(stream))
        .routes(routes!(show))
        .routes(routes!(delivered))
        .routes(routes!(undeliverable))
        .routes(routes!(press))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PressRequest {
    /// the button's position under the message, from 0
    button: usize,
}

#[derive(Debug, Serialize, ToSchema)]
struct Pressed {
    /// what the press did, in English, for the chat to show under the message
    outcome: String,
    /// the same as data, for a chat to say in the presser's language
    done: PressOutcome,
}

/// Press a button under a message (the person it was sent to)
///
/// Acts as the caller, with their role's rights: `complete_task` marks the task done,
/// `start_run` starts the workflow with the button's input (once: a repeated press request
/// answers the same run). A message takes one press; a second gets 409 with what the first
/// did (in English; the notification's `press_outcome` has it as data). Someone else's
/// message is 404.
#[utoipa::path(
    post, path = "/api/notifications/{id}/press", tag = "notifications", operation_id = "press_notification_button",
    params(("id" = i64, Path)), request_body = PressRequest,
    responses((status = 200, description = "what the press did", body = Pressed), CallerErrors, NotFound, WriteErrors),
    security(("bearer" = [])),
)]
async fn press(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<i64>,
    Json(p): Json<PressRequest>,
) -> Result<Json<Pressed>, ApiError> {
    c.require_write()?;
    let claimed = notifications::claim_press(&s.db, id, p.button, c.user.id).await?;
    let label = claimed.button.label.clone();
    let done: Result<PressOutcome, ApiError> = async {
        match claimed.button.action {
            ButtonAction::CompleteTask { task_id } => {
                let task = crm_store::tasks::complete(&s.db, &c.actor(), task_id).await?;
                Ok(PressOutcome::TaskDone { title: task.title })
            }
            ButtonAction::StartRun { workflow, input } => {
                let scheduler =
                    s.scheduler.as_ref().ok_or_else(|| ApiError::unavailable("this API runs without the scheduler"))?;
                let request = RunRequest {
                    workflow,
                    input,
                    acting_user: Some(c.user.id),
                    notify: None,
                    idempotency_key: Some(format!("press:{id}")),
                    trigger: Some("bot".into()),
                };
                scheduler.submit(request).await?;
                Ok(PressOutcome::RunStarted { label })
            }
        }
    }
    .await;
    match done {
        Ok(done) => {
            notifications::record_press(&s.db, id, &done).await?;
            Ok(Json(Pressed { outcome: done.english(), done }))
        }
        Err(e) => {
            notifications::release_press(&s.db, id).await?;
            Err(e)
        }
    }
}

/// A notification with its delivery status spelled out.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = NotificationView)]
struct View {
    #[serde(flatten)]
    notification: Notification,
    status: DeliveryStatus,
}

impl From<Notification> for View {
    fn from(notification: Notification) -> View {
        View { status: notification.status(), notification }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// whose notifications; only an admin may name another user
    user_id: Option<i64>,
    #[param(value_type = Option<DeliveryStatus>)]
    status: Option<String>,
    /// 1..=200, default 50
    limit: Option<i64>,
    /// the `next_cursor` of the previous page
    cursor: Option<String>,
}

/// Chat notifications and their delivery status, newest first
///
/// An admin sees everyone's; anyone else their own.
#[utoipa::path(
    get, path = "/api/notifications", tag = "notifications", operation_id = "list_notifications",
    params(ListParams),
    responses((status = 200, description = "one page of notifications", body = Page<View>), CallerErrors),
    security(("bearer" = [])),
)]
async fn list(State(s): State<AppState>, c: Caller, Query(p): Query<ListParams>) -> Result<Json<Page<View>>, ApiError> {
    let limit = p.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request("`limit` must be between 1 and 200"));
    }
    let status = match p.status.as_deref() {
        None => None,
        Some(text) => Some(DeliveryStatus::parse(text).ok_or_else(|| {
            ApiError::bad_request(format!("`status` {text:?} is not one of pending, delivered, undeliverable"))
        })?),
    };
    let user_id = if c.user.role.is_admin() {
        p.user_id
    } else {
        match p.user_id {
            Some(u) if u != c.user.id => {
                return Err(ApiError::forbidden("only an admin sees other users' notifications"));
            }
            _ => Some(c.user.id),
        }
    };
    let (items, next) = notifications::list(&s.db, &ListQuery { user_id, status, limit, cursor: p.cursor }).await?;
    Ok(Json(Page { items: items.into_iter().map(View::from).collect(), next_cursor: next }))
}

/// One notification
///
/// Anyone but an admin gets 404 for another user's notification.
#[utoipa::path(
    get, path = "/api/notifications/{id}", tag = "notifications", operation_id = "read_notification",
    params(("id" = i64, Path)),
    responses((status = 200, description = "the notification", body = View), CallerErrors, NotFound),
    security(("bearer" = [])),
)]
async fn show(State(s): State<AppState>, c: Caller, Path(id): Path<i64>) -> Result<Json<View>, ApiError> {
    match notifications::get(&s.db, id).await? {
        Some(n) if c.user.role.is_admin() || n.user_id == c.user.id => Ok(Json(n.into())),
        _ => Err(no_such(id)),
    }
}

fn no_such(id: i64) -> ApiError {
    ApiError::not_found(format!("notification {id} not found"))
}

/// Report a notification delivered (admin: the bot)
///
/// Idempotent; a notification that already has an outcome keeps it, and the answer shows which.
#[utoipa::path(
    post, path = "/api/notifications/{id}/delivered", tag = "notifications",
    operation_id = "report_notification_delivered",
    params(("id" = i64, Path)), request_body = Delivered,
    responses((status = 200, description = "the notification with its outcome", body = View), CallerErrors, NotFound),
    security(("bearer" = [])),
)]
async fn delivered(
    State(s): State<AppState>,
    _: Service,
    Path(id): Path<i64>,
    Json(body): Json<Delivered>,
) -> Result<Json<View>, ApiError> {
    let n = notifications::delivered(&s.db, id, body.message_id).await?.ok_or_else(|| no_such(id))?;
    Ok(Json(n.into()))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Delivered {
    /// the Telegram message it went out as (an approval's message is edited into its
    /// outcome later)
    #[serde(default)]
    message_id: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Undeliverable {
    reason: String,
}

/// Report a notification undeliverable, with a reason (admin: the bot)
///
/// The bot gives up on it (no linked Telegram account, Telegram refused the chat). Idempotent
/// like `delivered`.
#[utoipa::path(
    post, path = "/api/notifications/{id}/undeliverable", tag = "notifications",
    operation_id = "report_notification_undeliverable",
    params(("id" = i64, Path)), request_body = Undeliverable,
    responses(
        (status = 200, description = "the notification with its outcome", body = View),
        CallerErrors,
        NotFound,
        WriteErrors,
    ),
    security(("bearer" = [])),
)]
async fn undeliverable(
    State(s): State<AppState>,
    _: Service,
    Path(id): Path<i64>,
    Json(body): Json<Undeliverable>,
) -> Result<Json<View>, ApiError> {
    let n = notifications::undeliverable(&s.db, id, &body.reason).await?.ok_or_else(|| no_such(id))?;
    Ok(Json(n.into()))
}

/// Server-sent events of pending notifications, for the bot (admin)
///
/// Every pending notification as a `notification` event (id = notification id), first those
/// already waiting, then each new one as it is committed.
#[utoipa::path(
    get, path = "/api/notifications/stream", tag = "notifications", operation_id = "stream_notifications",
    responses(
        (status = 200, description = "an event stream; each event's data is one notification",
            content_type = "text/event-stream", body = View),
        CallerErrors,
    ),
    security(("bearer" = [])),
)]
async fn stream(
    State(s): State<AppState>,
    Service(c): Service,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let slot = s.limits.stream_slot(c.token_id)?;
    // Listening starts before the first read, so a notification committed in between
    // signals rather than slipping through.
    let mut listener = notifications::listener(&s.db)
        .await
        .map_err(|e| ApiError::unavailable(format!("cannot listen for notifications: {e}")))?;
    let db = s.db.clone();
    let lifetime = s.limits.stream_lifetime;
    let stream = async_stream::stream! {
        let _slot = slot;
        let ends = tokio::time::Instant::now() + lifetime;
        // Served on this connection and not yet reported: not served twice. Ids commit
        // out of order, so this is a set rather than a high-water mark.
        let mut served: HashSet<i64> = HashSet::new();
        // Past its lifetime the stream ends; the client reconnects and is served what is
        // still pending, so nothing is lost.
        while tokio::time::Instant::now() < ends {
            match notifications::pending(&db, BATCH).await {
                Ok(batch) => {
                    if (batch.len() as i64) < BATCH {
                        let still: HashSet<i64> = batch.iter().map(|n| n.id).collect();
                        served.retain(|id| still.contains(id));
                    }
                    for n in batch {
                        if served.insert(n.id) {
                            let id = n.id.to_string();
                            let data = serde_json::to_string(&View::from(n)).unwrap_or_default();
                            yield Ok(Event::default().id(id).event("notification").data(data));
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading pending notifications failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
            match tokio::time::timeout(RECHECK, listener.recv()).await {
                Ok(Ok(_)) => while listener.next_buffered().is_some() {},
                Ok(Err(e)) => {
                    // The listener reconnects on its next use; the recheck covers the gap.
                    tracing::warn!(error = %e, "notification listener lost its connection");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(_) => {}
            }
        }
    };
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
