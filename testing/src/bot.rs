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

/// A running `crm bot` on its own loopback Bot API server, for scenario tests that play
/// Telegram users; killed on drop. It can be killed and started again on the same data
/// directory, as an operator restarts it.
pub struct ChatBot {
    pub api: LocalBotApi,
    // Before `data`: the process goes before its directory does.
    process: Option<crate::process::Process>,
    data: tempfile::TempDir,
    engine_url: String,
    engine_token: String,
    env: Vec<(String, String)>,
    /// bot processes started so far, to give each its own log
    starts: usize,
}

/// Why a `crm bot` did not become ready.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("crm bot exited ({status}) after calling {called:?}:\n{log}")]
    Exited { status: std::process::ExitStatus, log: String, called: Vec<String> },
    #[error("{0}")]
    NotReady(String),
}

/// The message a button is under: its Telegram message id, or the call that sent it.
pub trait ButtonMessage {
    fn message_id(&self) -> i64;
}

impl ButtonMessage for i64 {
    fn message_id(&self) -> i64 {
        *self
    }
}

impl ButtonMessage for &crate::Call {
    fn message_id(&self) -> i64 {
        crate::Call::message_id(self).expect("a button's message has an id")
    }
}

impl ChatBot {
    /// How long a test waits for the bot to answer.
    pub const WAIT: std::time::Duration = std::time::Duration::from_secs(30);

    /// Starts `crm bot` (Telegram token `tg_token`) against the engine at `engine_url`
    /// with its delegate token; returns once it polls for updates.
    pub async fn start(tg_token: &str, engine_url: &str, engine_token: &str) -> ChatBot {
        Self::start_with(tg_token, engine_url, engine_token, &[]).await
    }

    /// [`ChatBot::start`] with more of the bot's environment (`CRM_BOT_GROUPS`, …).
    pub async fn start_with(tg_token: &str, engine_url: &str, engine_token: &str, env: &[(&str, &str)]) -> ChatBot {
        Self::launch(tg_token, engine_url, engine_token, env, "getUpdates").await
    }

    /// [`ChatBot::start_with`] that waits for the bot's call `ready` instead (`setWebhook`
    /// for a bot taking updates by webhook).
    pub async fn launch(
        tg_token: &str,
        engine_url: &str,
        engine_token: &str,
        env: &[(&str, &str)],
        ready: &str,
    ) -> ChatBot {
        Self::try_launch(tg_token, engine_url, engine_token, env, ready)
            .await
            .unwrap_or_else(|e| panic!("the bot never called {ready}: {e}"))
    }

    /// [`ChatBot::launch`] that returns what went wrong instead of panicking, for a test
    /// that tries again or expects the bot to refuse to start.
    pub async fn try_launch(
        tg_token: &str,
        engine_url: &str,
        engine_token: &str,
        env: &[(&str, &str)],
        ready: &str,
    ) -> Result<ChatBot, LaunchError> {
        let mut bot = ChatBot {
            api: LocalBotApi::start(tg_token).await.expect("local Bot API server"),
            process: None,
            data: tempfile::tempdir().expect("temp dir"),
            engine_url: engine_url.to_string(),
            engine_token: engine_token.to_string(),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            starts: 0,
        };
        bot.try_spawn(ready).await?;
        Ok(bot)
    }

    async fn spawn(&mut self, ready: &str) {
        if let Err(e) = self.try_spawn(ready).await {
            panic!("the bot never called {ready}: {e}");
        }
    }

    /// Starts the bot and waits for its call `ready`; an error if it exits first or takes
    /// longer than [`ChatBot::WAIT`].
    async fn try_spawn(&mut self, ready: &str) -> Result<(), LaunchError> {
        assert!(self.process.is_none(), "the bot is already running");
        let since = self.api.seq();
        let mut cmd = crate::process::crm();
        configure(&mut cmd, &self.api, &self.engine_url, &self.engine_token, self.data.path())
            .env("CRM_BOT_POLL_TIMEOUT_SECS", "10")
            .env("RUST_LOG", crate::process::rust_log("warn"))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        self.starts += 1;
        let log = self.data.path().join(format!("bot-{}.log", self.starts));
        let mut process = crate::process::Process::spawn("crm bot", cmd, &log).expect("start crm bot");
        let called = self.api.wait_for(since, Self::WAIT, |c| c.method == ready && c.result.is_some());
        let exited = async {
            loop {
                if let Some(status) = process.exit_status() {
                    return (status, process.log_tail());
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        };
        let outcome = tokio::select! {
            called = called => called.map(drop).map_err(LaunchError::NotReady),
            (status, log) = exited => {
                let called = self.api.calls().into_iter().skip(since as usize).map(|c| c.method).collect();
                Err(LaunchError::Exited { status, log, called })
            }
        };
        self.process = Some(process);
        outcome
    }

    /// Kills the bot (SIGKILL: it finishes nothing) and leaves it down until [`ChatBot::restart`].
    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }

    /// Starts the bot again with the same settings and data directory; returns once it
    /// polls for updates.
    pub async fn restart(&mut self) {
        self.spawn("getUpdates").await;
    }

    /// Sends `text` as `from` in their private chat and returns the bot's next message or
    /// edit there.
    pub async fn say(&self, from: &crate::TgUser, text: &str) -> crate::Call {
        let since = self.api.seq();
        self.api.send_text(from, text);
        self.api.reply(from.id, since, Self::WAIT).await.unwrap_or_else(|e| panic!("no reply to {text:?}: {e}"))
    }

    /// Sends `text` as `from` in group `group` (one the bot answers in: `CRM_BOT_GROUPS`) and
    /// returns the bot's next message or edit there.
    pub async fn say_in_group(&self, from: &crate::TgUser, group: i64, text: &str) -> crate::Call {
        let since = self.api.seq();
        self.api.send_group_text(from, group, "Team", text);
        self.api
            .reply(group, since, Self::WAIT)
            .await
            .unwrap_or_else(|e| panic!("no reply to {text:?} in {group}: {e}"))
    }

    /// Presses a button under message `message_id` in group `group`; returns the text the
    /// press was answered with.
    pub async fn press_in_group(
        &self,
        from: &crate::TgUser,
        group: i64,
        message: impl ButtonMessage,
        data: &str,
    ) -> String {
        let since = self.api.seq();
        let id = self.api.press_in_group(from, group, message.message_id(), data);
        self.answer(since, &id, data).await
    }

    async fn answer(&self, since: u64, callback_id: &str, data: &str) -> String {
        let answer = self
            .api
            .wait_for(since, Self::WAIT, |c| {
                c.method == "answerCallbackQuery" && c.params["callback_query_id"] == callback_id
            })
            .await
            .unwrap_or_else(|e| panic!("button {data} was never answered: {e}"));
        assert!(self.api.answered(callback_id), "the press of {data} is still spinning");
        answer.params["text"].as_str().unwrap_or_default().to_string()
    }

    /// `from` opens the chat with the bot: Telegram lets a bot write only to users who did.
    pub async fn open_chat(&self, from: &crate::TgUser) {
        self.say(from, "/help").await;
    }

    /// The first message (after call `since`) in `chat` containing `needle`.
    pub async fn message(&self, since: u64, chat: i64, needle: &str) -> crate::Call {
        self.api
            .wait_for(since, Self::WAIT, |c| {
                c.method == "sendMessage" && c.is_reply_to(chat) && c.text().contains(needle)
            })
            .await
            .unwrap_or_else(|e| panic!("no message with {needle:?} in chat {chat}: {e}"))
    }

    /// Waits until message `message_id` in `chat` was edited into a text containing `needle`.
    pub async fn edited(&self, chat: i64, message_id: i64, needle: &str) -> crate::Call {
        self.api
            .wait_for(0, Self::WAIT, |c| {
                c.method == "editMessageText"
                    && c.is_reply_to(chat)
                    && c.message_id() == Some(message_id)
                    && c.text().contains(needle)
            })
            .await
            .unwrap_or_else(|e| panic!("message {message_id} in chat {chat} never became {needle:?}: {e}"))
    }

    /// Presses a button and returns the text the press was answered with.
    pub async fn press(&self, from: &crate::TgUser, message: impl ButtonMessage, data: &str) -> String {
        let since = self.api.seq();
        let id = self.api.press(from, message.message_id(), data);
        self.answer(since, &id, data).await
    }

    /// Presses a button and returns the next message the bot sends `from` after it.
    pub async fn press_for_reply(&self, from: &crate::TgUser, message: impl ButtonMessage, data: &str) -> crate::Call {
        let since = self.api.seq();
        self.press(from, message, data).await;
        self.api.reply(from.id, since, Self::WAIT).await.unwrap_or_else(|e| panic!("no reply to button {data}: {e}"))
    }

    /// The first call (after call `since`) in `chat`, a message or an edit, containing `needle`.
    pub async fn reply_with(&self, since: u64, chat: i64, needle: &str) -> crate::Call {
        self.api
            .wait_for(since, Self::WAIT, |c| c.is_reply_to(chat) && c.text().contains(needle))
            .await
            .unwrap_or_else(|e| panic!("nothing with {needle:?} in chat {chat}: {e}"))
    }

    /// Every call the bot made in `chat` so far: messages, edits, documents.
    pub fn replies_to(&self, chat: i64) -> Vec<crate::Call> {
        self.api.calls().into_iter().filter(|c| c.is_reply_to(chat)).collect()
    }

    /// Waits until the bot has taken every update, then a little longer, so a test can
    /// check that something did *not* happen.
    pub async fn settle(&self) {
        let deadline = tokio::time::Instant::now() + Self::WAIT;
        while self.api.pending_updates() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    }

    /// Sends a file as `from` and returns the bot's next message or edit in that chat.
    pub async fn send_file(
        &self,
        from: &crate::TgUser,
        name: &str,
        content: impl AsRef<[u8]>,
        caption: Option<&str>,
    ) -> crate::Call {
        let since = self.api.seq();
        self.api.send_document(from, name, content.as_ref(), caption);
        self.api.reply(from.id, since, Self::WAIT).await.unwrap_or_else(|e| panic!("no reply to {name}: {e}"))
    }

    /// Sends `text` as `from` and returns the document the bot answers with: (file name,
    /// content).
    pub async fn say_for_document(&self, from: &crate::TgUser, text: &str) -> (String, String) {
        let since = self.api.seq();
        self.api.send_text(from, text);
        let call = self
            .api
            .wait_for(since, Self::WAIT, |c| c.method == "sendDocument" && c.chat_id() == Some(from.id))
            .await
            .unwrap_or_else(|e| panic!("no document for {text:?}: {e}"));
        assert!(call.result.is_some(), "sendDocument failed: {:?}", call.error);
        call.document().expect("a file in the sendDocument call")
    }

    /// What `chat` was sent (not edits) after call `since`.
    pub fn sent_to(&self, since: u64, chat: i64) -> Vec<crate::Call> {
        self.api
            .calls()
            .into_iter()
            .filter(|c| c.seq > since && c.method == "sendMessage" && c.is_reply_to(chat))
            .collect()
    }
}

/// The payload of the button under `message` whose label contains `label`.
pub fn button(message: &crate::Call, label: &str) -> String {
    message
        .buttons()
        .into_iter()
        .find(|(l, _)| l.contains(label))
        .map(|(_, data)| data)
        .unwrap_or_else(|| panic!("no button with {label:?} in {:?}", message.buttons()))
}
