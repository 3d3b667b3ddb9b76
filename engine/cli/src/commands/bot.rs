//! `crm bot`: the Telegram bot. It talks to Telegram (or a local Bot API server) and to the
//! engine's HTTP API only; see the README section "Telegram bot".

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use crm_bot::{BotConfig, CancellationToken, WebhookConfig};
use rand::Rng;

use crate::config::Config;

#[derive(clap::Args, Debug)]
pub struct BotArgs {
    /// Bot API server (default: CRM_BOT_API_URL, else Telegram's).
    #[arg(long)]
    pub api_url: Option<String>,
    /// Engine API URL (default: CRM_ENGINE_URL, else http:// + CRM_LISTEN).
    #[arg(long)]
    pub engine_url: Option<String>,
}

pub fn bot_config(config: &Config, args: &BotArgs) -> anyhow::Result<BotConfig> {
    let token = config.bot_token.clone().context("CRM_BOT_TOKEN is not set: get a token from @BotFather")?;
    let engine_token = config.engine_token.clone().context(
        "CRM_ENGINE_TOKEN is not set: the bot needs a delegate token (crm token create --delegate --user ADMIN_ID)",
    )?;
    let engine_url = args
        .engine_url
        .clone()
        .or_else(|| config.engine_url.clone())
        .unwrap_or_else(|| format!("http://{}", config.listen));
    let api_url = args.api_url.clone().unwrap_or_else(|| config.bot_api_url.clone());
    let mut bot = BotConfig::new(&token, &api_url, &engine_url, &engine_token);
    bot.poll_timeout = Duration::from_secs(config.bot_poll_timeout_secs.clamp(1, 50));
    bot.limits.per_chat_interval = Duration::from_millis(config.bot_chat_interval_ms);
    bot.limits.global_per_second = config.bot_global_per_second.max(1);
    bot.limits.per_chat_burst = config.bot_chat_burst.max(1);
    bot.default_currency = config.default_currency.clone();
    bot.limits.group_per_minute = config.bot_group_per_minute.max(1);
    bot.state_dir = Some(config.data_dir.join("bot"));
    for group in config.bot_groups.split(',').map(str::trim).filter(|g| !g.is_empty()) {
        let id: i64 = group.parse().with_context(|| {
            format!("CRM_BOT_GROUPS: {group:?} is not a chat id (group ids look like -1001234567890)")
        })?;
        bot.allowed_groups.insert(id);
    }
    if let Some(public_url) = &config.bot_webhook_url {
        let listen: SocketAddr = config
            .bot_webhook_listen
            .parse()
            .with_context(|| format!("CRM_BOT_WEBHOOK_LISTEN {:?} is not an address", config.bot_webhook_listen))?;
        // Telegram learns the secret from setWebhook at every start, so a fresh one works.
        let secret = config
            .bot_webhook_secret
            .clone()
            .unwrap_or_else(|| rand::rng().sample_iter(rand::distr::Alphanumeric).take(48).map(char::from).collect());
        bot.webhook = Some(WebhookConfig { public_url: public_url.clone(), listen, secret });
    }
    Ok(bot)
}

pub async fn run(config: &Config, args: BotArgs) -> anyhow::Result<()> {
    let bot = bot_config(config, &args)?;
    crate::telemetry::start(config.metrics_listen.as_deref(), "bot", None).await?;
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        crate::commands::serve::shutdown_signal().await;
        on_signal.cancel();
    });
    crm_bot::run(bot, stop).await.context("running the bot")
}
