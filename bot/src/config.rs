//! What the bot process needs to know. `crm bot` fills it from `CRM_BOT_*` settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::outbound::Limits;

#[derive(Debug, Clone)]
pub struct BotConfig {
    /// the token from @BotFather
    pub token: String,
    /// Telegram's Bot API, or a local Bot API server
    pub api_url: String,
    /// the engine's HTTP API, e.g. `http://127.0.0.1:8080`
    pub engine_url: String,
    /// a delegate API token (`crm token create --delegate`); the bot acts for chat users with
    /// `X-Crm-Acting-User`
    pub engine_token: String,
    /// group chats the bot answers in; every other chat but a private one is refused
    pub allowed_groups: std::collections::HashSet<i64>,
    /// long polling unless set
    pub webhook: Option<WebhookConfig>,
    pub poll_timeout: Duration,
    pub limits: Limits,
    /// where the completion stream cursor is kept; none keeps it in memory only
    pub state_dir: Option<PathBuf>,
    pub default_currency: String,
}

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// the public HTTPS URL Telegram posts to (including the path)
    pub public_url: String,
    /// the local address the bot listens on (behind the TLS proxy)
    pub listen: SocketAddr,
    /// proves a request comes from Telegram; derived from the bot token when not set
    pub secret: String,
}

impl BotConfig {
    pub fn new(token: &str, api_url: &str, engine_url: &str, engine_token: &str) -> BotConfig {
        BotConfig {
            token: token.to_string(),
            api_url: api_url.to_string(),
            engine_url: engine_url.to_string(),
            engine_token: engine_token.to_string(),
            allowed_groups: Default::default(),
            webhook: None,
            poll_timeout: Duration::from_secs(25),
            limits: Limits::default(),
            state_dir: None,
            default_currency: "USD".into(),
        }
    }
}
