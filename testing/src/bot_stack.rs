//! A scratch engine with a `crm bot` in front of it ([`BotStack`]): what the chat scenario
//! tests start from.

use crm_concepts::user::Role;
use serde_json::Value;

use crate::bot::ChatBot;
use crate::{TestStack, TgUser};

pub struct BotStack {
    // First, so it is killed before the engine it talks to goes.
    pub bot: ChatBot,
    pub stack: TestStack,
}

impl BotStack {
    /// A new engine for `purpose` and a bot with Telegram token `tg_token` polling for it.
    pub async fn start(purpose: &str, tg_token: &str) -> BotStack {
        Self::start_with(purpose, tg_token, &[]).await
    }

    /// [`BotStack::start`] with more of the bot's environment (`CRM_BOT_GROUPS`, …).
    pub async fn start_with(purpose: &str, tg_token: &str, env: &[(&str, &str)]) -> BotStack {
        Self::launch(TestStack::start(purpose).await, tg_token, env, "getUpdates").await
    }

    /// A bot in front of `stack` (prepared by the test: workflows deployed, workers
    /// started), ready once it calls `ready` (`getUpdates`, or `setWebhook` with a webhook).
    pub async fn launch(stack: TestStack, tg_token: &str, env: &[(&str, &str)], ready: &str) -> BotStack {
        let bot = ChatBot::launch(tg_token, &stack.url, &stack.bot_token, env, ready).await;
        BotStack { bot, stack }
    }

    /// A Telegram user linked to a new CRM user with `role`; returns them and the CRM
    /// user's id.
    pub async fn user(&self, telegram_id: i64, name: &str, role: Role) -> (TgUser, i64) {
        let user = crate::users::linked(&self.stack.db, name, role, telegram_id, None).await;
        (TgUser::new(telegram_id, name), user.id)
    }

    /// Creates a record through the API as the admin; returns it.
    pub async fn create(&self, path: &str, body: Value) -> Value {
        let (status, v) = self.stack.post(path, body).await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{path}: {v}");
        v
    }
}
