//! `crm bot` processes against the loopback Bot API server.

use std::path::Path;
use std::process::Command;

use crate::bot_api::LocalBotApi;

/// Points a `crm bot` command at `api` as its Telegram and at the engine at `engine_url`
/// with a delegate token (see [`crate::users::delegate_token`]), keeping its state in `data_dir`. Tests start from
/// [`crate::process::crm`]; `crm bench bot` from its own executable and environment.
pub fn configure<'a>(
    cmd: &'a mut Command,
    api: &LocalBotApi,
    engine_url: &str,
    engine_token: &str,
    data_dir: &Path,
) -> &'a mut Command {
    cmd.arg("bot")
        .env("CRM_BOT_TOKEN", api.token())
        .env("CRM_BOT_API_URL", api.url())
        .env("CRM_ENGINE_URL", engine_url)
        .env("CRM_ENGINE_TOKEN", engine_token)
        .env("CRM_DATA_DIR", data_dir)
}
