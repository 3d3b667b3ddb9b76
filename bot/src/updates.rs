//! Where updates come from (long polling, or a webhook) and how they are handed out: each
//! chat has its own FIFO worker, so one chat's updates are handled in order and one at a
//! time, while different chats proceed in parallel. A handler that panics loses only its
//! own update; the chat's worker carries on.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use teloxide::Bot;
use teloxide::payloads::GetUpdatesSetters;
use teloxide::prelude::Requester;
use teloxide::types::{AllowedUpdate, Update, UpdateKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::handlers::{Ctx, handle_update};

/// A chat worker idle this long is let go (and recreated by the next update).
const WORKER_IDLE: Duration = Duration::from_secs(300);
/// One update may not hold its chat longer than this.
const HANDLER_TIMEOUT: Duration = Duration::from_secs(60);

pub const ALLOWED: [AllowedUpdate; 3] =
    [AllowedUpdate::Message, AllowedUpdate::EditedMessage, AllowedUpdate::CallbackQuery];

fn chat_key(u: &Update) -> i64 {
    match &u.kind {
        UpdateKind::Message(m) | UpdateKind::EditedMessage(m) => m.chat.id.0,
        UpdateKind::CallbackQuery(q) => {
            q.message.as_ref().map_or_else(|| i64::try_from(q.from.id.0).unwrap_or(0), |m| m.chat().id.0)
        }
        _ => 0,
    }
}

pub struct Dispatcher {
    ctx: Arc<Ctx>,
    chats: HashMap<i64, (mpsc::UnboundedSender<Update>, Instant)>,
    workers: Vec<JoinHandle<()>>,
}

impl Dispatcher {
    pub fn new(ctx: Arc<Ctx>) -> Dispatcher {
        Dispatcher { ctx, chats: HashMap::new(), workers: Vec::new() }
    }

    pub fn push(&mut self, update: Update) {
        let key = chat_key(&update);
        let now = Instant::now();
        let update = match self.chats.get_mut(&key) {
            Some((tx, last)) => {
                *last = now;
                match tx.send(update) {
                    Ok(()) => return,
                    Err(mpsc::error::SendError(u)) => u,
                }
            }
            None => update,
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<Update>();
        let ctx = self.ctx.clone();
        let worker = tokio::spawn(async move {
            while let Some(u) = rx.recv().await {
                let id = u.id.0;
                let handled = tokio::spawn(tokio::time::timeout(HANDLER_TIMEOUT, handle_update(ctx.clone(), u)));
                match handled.await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => tracing::error!(update = id, "handler timed out"),
                    Err(e) => tracing::error!(update = id, error = %e, "handler panicked"),
                }
            }
        });
        if tx.send(update).is_err() {
            tracing::error!("a new chat worker closed at once");
        }
        self.chats.insert(key, (tx, now));
        self.workers.retain(|w| !w.is_finished());
        self.workers.push(worker);
        // Dropping a sender lets its worker finish what it has and stop.
        self.chats.retain(|_, (_, last)| now.duration_since(*last) < WORKER_IDLE);
    }

    /// Stops taking updates and waits (bounded) for the ones already handed out.
    pub async fn drain(mut self, limit: Duration) {
        self.chats.clear();
        let all = futures::future::join_all(self.workers.drain(..));
        if tokio::time::timeout(limit, all).await.is_err() {
            tracing::warn!("some updates were still being handled at shutdown");
        }
    }
}

/// Long polling: `getUpdates` with `timeout`, confirming each batch with the next offset.
pub async fn poll(bot: Bot, timeout: Duration, tx: mpsc::Sender<Update>, stop: CancellationToken) {
    let mut offset: i32 = 0;
    let mut backoff = Duration::from_millis(500);
    let secs = u32::try_from(timeout.as_secs()).unwrap_or(25);
    loop {
        let request = bot.get_updates().offset(offset).timeout(secs).allowed_updates(ALLOWED);
        let result = tokio::select! {
            () = stop.cancelled() => break,
            r = request => r,
        };
        match result {
            Ok(updates) => {
                backoff = Duration::from_millis(500);
                for u in updates {
                    offset = offset.max(i32::try_from(u.id.0).unwrap_or(i32::MAX).saturating_add(1));
                    if tx.send(u).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "getUpdates failed; retrying");
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
    // Confirm what was handed out so a restart does not see it again.
    if offset > 0
        && let Err(e) = bot.get_updates().offset(offset).timeout(0).limit(1).await
    {
        tracing::warn!(error = %e, "could not confirm the last updates");
    }
}

/// Webhook mode: Telegram POSTs updates to `listener`; the secret token header proves the
/// sender is Telegram (it was given to Telegram in `setWebhook`).
pub async fn serve_webhook(
    listener: tokio::net::TcpListener,
    path: String,
    secret: String,
    tx: mpsc::Sender<Update>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};

    #[derive(Clone)]
    struct Hook {
        secret: String,
        tx: mpsc::Sender<Update>,
    }

    async fn receive(State(hook): State<Hook>, headers: HeaderMap, body: axum::body::Bytes) -> StatusCode {
        let given = headers.get("X-Telegram-Bot-Api-Secret-Token").and_then(|v| v.to_str().ok());
        if given != Some(hook.secret.as_str()) {
            return StatusCode::UNAUTHORIZED;
        }
        match serde_json::from_slice::<Update>(&body) {
            Ok(update) => match hook.tx.send(update).await {
                Ok(()) => StatusCode::OK,
                Err(_) => StatusCode::SERVICE_UNAVAILABLE,
            },
            // Telegram would resend a refused update forever; log and accept it.
            Err(e) => {
                tracing::warn!(error = %e, "unreadable webhook update skipped");
                StatusCode::OK
            }
        }
    }

    let app = axum::Router::new()
        .route(&path, axum::routing::post(receive))
        .layer(axum::extract::DefaultBodyLimit::max(1 << 20))
        .with_state(Hook { secret, tx });
    if let Ok(listen) = listener.local_addr() {
        tracing::info!(%listen, %path, "webhook listening");
    }
    axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await }).await
}
