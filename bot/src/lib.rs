//! crm-bot: the Telegram bot, a separate process that runs the CRM from a chat. It talks
//! to Telegram through teloxide and to the engine only through the engine's HTTP API.
//!
//! The moving parts: `updates` (long polling or webhook, one FIFO worker per chat),
//! `handlers` (commands, buttons, dialogues), `outbound` (the rate-limited send queue),
//! `completions` (workflow results from the engine's SSE stream, edited into the chat),
//! and `notifications` (messages workflows leave for CRM users, sent to their private chats),
//! both following their stream through `sse`.
//! The Bot-API-compatible server its tests talk to is `crm_testing::bot_api`.

pub mod app_languages;
pub mod callback;
pub mod command;
pub mod completions;
pub mod config;
pub mod dialogue;
pub mod engine;
mod handlers;
pub mod list_pages;
pub mod notifications;
pub mod outbound;
pub mod render;
pub mod sse;
pub mod text;
pub mod texts;
mod updates;
pub mod validate;

use std::sync::Arc;
use std::time::Duration;

use teloxide::Bot;
use teloxide::payloads::SetWebhookSetters;
use teloxide::prelude::Requester;

pub use config::{BotConfig, WebhookConfig};
pub use handlers::BUILTIN as BUILTIN_COMMANDS;
pub use tokio_util::sync::CancellationToken;

use crate::engine::{EngineClient, EngineError};
use crate::handlers::{Ctx, Identity, WorkflowCatalog};
use crate::outbound::Outbound;
use crm_concepts::user::TokenScope;

#[derive(Debug, thiserror::Error)]
pub enum BotError {
    #[error("bad bot configuration: {0}")]
    Config(String),
    #[error("Telegram refused the bot: {0}")]
    Telegram(#[from] teloxide::RequestError),
    #[error("the engine refused the bot: {0}")]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// How often deployed workflows are re-read for their bot commands.
const WORKFLOW_REFRESH: Duration = Duration::from_secs(30);
/// How long `crm up` may take to bring the engine up before the bot gives up.
const ENGINE_WAIT: Duration = Duration::from_secs(60);

fn telegram_client(poll_timeout: Duration) -> Result<reqwest::Client, BotError> {
    // Longer than a long poll, or every idle poll would time out.
    teloxide::net::default_reqwest_settings()
        .timeout(poll_timeout + Duration::from_secs(15))
        .build()
        .map_err(|e| BotError::Config(format!("cannot build the HTTP client: {e}")))
}

/// The engine's view of the bot's token.
#[derive(serde::Deserialize)]
struct TokenView {
    scope: TokenScope,
    user: crm_concepts::user::User,
}

async fn wait_for_engine(engine: &EngineClient, stop: &CancellationToken) -> Result<TokenView, BotError> {
    let deadline = tokio::time::Instant::now() + ENGINE_WAIT;
    loop {
        match engine.get::<TokenView>(None, "/api/token", &[]).await {
            Ok(me) => return Ok(me),
            Err(EngineError::Transport(e)) if tokio::time::Instant::now() < deadline => {
                tracing::info!(error = %e, "waiting for the engine");
                tokio::select! {
                    () = stop.cancelled() => return Err(BotError::Config("stopped while waiting for the engine".into())),
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Runs the bot until `stop` is cancelled.
pub async fn run(config: BotConfig, stop: CancellationToken) -> Result<(), BotError> {
    if config.token.trim().is_empty() {
        return Err(BotError::Config("the bot token is empty (set CRM_BOT_TOKEN)".into()));
    }
    if config.engine_token.trim().is_empty() {
        return Err(BotError::Config(
            "the engine token is empty (set CRM_ENGINE_TOKEN to a delegate token: crm token create --delegate)".into(),
        ));
    }
    let api_url = reqwest::Url::parse(&config.api_url)
        .map_err(|e| BotError::Config(format!("CRM_BOT_API_URL {:?}: {e}", config.api_url)))?;
    let bot = Bot::with_client(config.token.clone(), telegram_client(config.poll_timeout)?).set_api_url(api_url);
    let me = bot.get_me().await?;
    let username = me.user.username.clone().unwrap_or_default();
    let engine = EngineClient::new(&config.engine_url, &config.engine_token)?;
    let token = wait_for_engine(&engine, &stop).await?;
    match token.scope {
        TokenScope::Delegate => {}
        TokenScope::Full if token.user.role.is_admin() => tracing::warn!(
            "the engine token is an admin's full token: the bot only needs a delegate token \
             (crm token create --delegate), which cannot deploy, read secrets or manage users"
        ),
        TokenScope::Full => {
            return Err(BotError::Config(format!(
                "the engine token belongs to {} ({}); the bot needs a delegate token to act for chat users \
                 (crm token create --delegate --user ADMIN_ID)",
                token.user.name, token.user.role
            )));
        }
    }
    tracing::info!(bot = %username, engine = %config.engine_url, "bot starting");

    let (out, out_task) = Outbound::start(bot.clone(), config.limits);
    let app_languages = app_languages::AppLanguages::default();
    let ctx = Arc::new(Ctx {
        app_languages: app_languages.clone(),
        engine: engine.clone(),
        out: out.clone(),
        bot: bot.clone(),
        username,
        identity: Identity::new(engine.clone()),
        dialogues: Default::default(),
        lists: Default::default(),
        imports: Default::default(),
        workflows: WorkflowCatalog::default(),
        default_currency: config.default_currency.clone(),
        allowed_groups: config.allowed_groups.clone(),
    });
    if let Err(e) = ctx.workflows.refresh(&engine).await {
        tracing::warn!(error = %e, "cannot list workflows yet; only built-in commands for now");
    }
    ctx.workflows.register(&bot).await;

    let mut tasks = Vec::new();
    {
        let (ctx, bot, stop) = (ctx.clone(), bot.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(WORKFLOW_REFRESH) => {}
                }
                match ctx.workflows.refresh(&ctx.engine).await {
                    Ok(true) => ctx.workflows.register(&bot).await,
                    Ok(false) => {}
                    Err(e) => tracing::debug!(error = %e, "workflow refresh failed"),
                }
            }
        }));
    }
    let cursor_file = match &config.state_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            Some(dir.join("bot-completions.cursor"))
        }
        None => None,
    };
    let completions = completions::CompletionStream {
        engine: engine.clone(),
        out: out.clone(),
        cursor_file,
        languages: app_languages.clone(),
    };
    tasks.push(tokio::spawn(completions.run(stop.clone())));
    let notifications =
        notifications::NotificationStream { engine: engine.clone(), out: out.clone(), languages: app_languages };
    tasks.push(tokio::spawn(notifications.run(stop.clone())));

    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let source = match &config.webhook {
        None => {
            bot.delete_webhook().await?;
            tokio::spawn(updates::poll(bot.clone(), config.poll_timeout, tx, stop.clone()))
        }
        Some(hook) => {
            let url = reqwest::Url::parse(&hook.public_url)
                .map_err(|e| BotError::Config(format!("CRM_BOT_WEBHOOK_URL {:?}: {e}", hook.public_url)))?;
            let path = if url.path().is_empty() { "/".to_string() } else { url.path().to_string() };
            // Bound before Telegram is told: a bot that cannot take the updates must not
            // have them sent to an address nobody serves.
            let listener = tokio::net::TcpListener::bind(hook.listen)
                .await
                .map_err(|e| BotError::Config(format!("CRM_BOT_WEBHOOK_LISTEN {}: {e}", hook.listen)))?;
            bot.set_webhook(url).secret_token(hook.secret.clone()).allowed_updates(updates::ALLOWED).await?;
            let (secret, stop) = (hook.secret.clone(), stop.clone());
            tokio::spawn(async move {
                if let Err(e) = updates::serve_webhook(listener, path, secret, tx, stop.clone()).await {
                    tracing::error!(error = %e, "webhook server failed");
                    stop.cancel();
                }
            })
        }
    };

    let mut dispatcher = updates::Dispatcher::new(ctx.clone());
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            u = rx.recv() => match u {
                Some(u) => dispatcher.push(u),
                None => break,
            },
        }
    }
    stop.cancel();
    tracing::info!("bot stopping");
    // Updates already received are still answered.
    while let Ok(u) = rx.try_recv() {
        dispatcher.push(u);
    }
    let _ = source.await;
    dispatcher.drain(Duration::from_secs(10)).await;
    for t in tasks {
        let _ = t.await;
    }
    drop(ctx);
    drop(out);
    if tokio::time::timeout(Duration::from_secs(10), out_task).await.is_err() {
        tracing::warn!("some outgoing messages were not sent before shutdown");
    }
    Ok(())
}
