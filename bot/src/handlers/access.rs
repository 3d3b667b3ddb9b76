//! Who may talk to the bot: Telegram users linked to CRM users. Unknown users get one
//! polite refusal and nothing else; an invite code from an admin links a new user.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crm_concepts::user::{Role, User};
use serde::Deserialize;
use teloxide::payloads::AnswerCallbackQuerySetters;
use teloxide::prelude::Requester;
use teloxide::types::{Chat, ChatId, Update, UpdateKind};

use super::{Ctx, Req, help_text, log_engine_error};
use crate::engine::{EngineClient, EngineError};

/// Linked users are cached briefly so a busy chat does not look itself up per message;
/// unknown users are not cached, so a redeemed invite works at once.
const KNOWN_TTL: Duration = Duration::from_secs(30);
/// After a refusal, an unknown user's messages are ignored for this long.
const REFUSAL_QUIET: Duration = Duration::from_secs(24 * 3600);

pub struct Identity {
    engine: EngineClient,
    known: Mutex<HashMap<i64, (User, Instant)>>,
    refused: Mutex<HashMap<i64, Instant>>,
}

impl Identity {
    pub fn new(engine: EngineClient) -> Identity {
        Identity { engine, known: Mutex::new(HashMap::new()), refused: Mutex::new(HashMap::new()) }
    }

    /// The CRM user linked to a Telegram user; disabled users count as unknown.
    pub async fn lookup(&self, telegram_id: i64) -> Result<Option<User>, EngineError> {
        if let Some((user, at)) = self.known.lock().unwrap_or_else(|p| p.into_inner()).get(&telegram_id)
            && at.elapsed() < KNOWN_TTL
        {
            return Ok(Some(user.clone()));
        }
        let found: Result<User, EngineError> =
            self.engine.get(None, &format!("/api/users/by-telegram/{telegram_id}"), &[]).await;
        match found {
            Ok(user) if user.disabled_at.is_none() => {
                let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
                if known.len() > 10_000 {
                    known.clear();
                }
                known.insert(telegram_id, (user.clone(), Instant::now()));
                Ok(Some(user))
            }
            Ok(_) => Ok(None),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn forget(&self, telegram_id: i64) {
        self.known.lock().unwrap_or_else(|p| p.into_inner()).remove(&telegram_id);
        self.refused.lock().unwrap_or_else(|p| p.into_inner()).remove(&telegram_id);
    }

    /// True the first time (per quiet period) an unknown user should hear the refusal.
    fn should_refuse(&self, telegram_id: i64) -> bool {
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        if refused.len() > 100_000 {
            refused.retain(|_, at| at.elapsed() < REFUSAL_QUIET);
        }
        match refused.get(&telegram_id) {
            Some(at) if at.elapsed() < REFUSAL_QUIET => false,
            _ => {
                refused.insert(telegram_id, Instant::now());
                true
            }
        }
    }
}

pub const REFUSAL: &str = "Sorry, this is a private CRM bot and I don't know you yet. \
If you work with this team, ask an admin for an invite code and send /start CODE.";

pub fn refuse(ctx: &Ctx, chat: ChatId, telegram_id: i64) {
    if ctx.identity.should_refuse(telegram_id) {
        ctx.out.send(chat, REFUSAL, None);
    }
}

pub async fn start(ctx: &Ctx, chat: ChatId, from: &teloxide::types::User, args: &str) {
    let tg = super::telegram_id(from);
    let known = match ctx.identity.lookup(tg).await {
        Ok(known) => known,
        Err(e) => {
            log_engine_error(&e);
            ctx.out.send(chat, &e.for_chat(), None);
            return;
        }
    };
    if let Some(user) = known {
        let text = format!("Hello, {}! You are signed in as a {}.\n\n{}", user.name, user.role, help_text(ctx));
        ctx.out.send(chat, &text, None);
        return;
    }
    let code = args.trim();
    if code.is_empty() {
        refuse(ctx, chat, tg);
        return;
    }
    if code.len() > 128 || code.chars().any(char::is_whitespace) {
        ctx.out.send(chat, "That invite code is not valid. Check it and send /start CODE again.", None);
        return;
    }
    let body = serde_json::json!({"code": code, "telegram_user_id": tg, "name": display_name(from)});
    let redeemed: Result<User, EngineError> = ctx.engine.post(None, "/api/invites/redeem", &body).await;
    match redeemed {
        Ok(user) => {
            ctx.identity.forget(tg);
            let text = format!(
                "Welcome, {}! Your invite is redeemed; you are a {} in this CRM.\n\n{}",
                user.name,
                user.role,
                help_text(ctx)
            );
            ctx.out.send(chat, &text, None);
        }
        Err(e) if matches!(e.code(), Some("not_found" | "validation_failed" | "conflict")) => {
            ctx.out.send(
                chat,
                "This invite code is invalid, expired or already used. Ask your admin for a new one.",
                None,
            );
        }
        Err(e) => {
            log_engine_error(&e);
            ctx.out.send(chat, &e.for_chat(), None);
        }
    }
}

/// The Telegram name, bounded to what the users table accepts.
fn display_name(from: &teloxide::types::User) -> String {
    let name = from.full_name();
    let name = name.trim();
    let name = if name.is_empty() {
        from.username.clone().unwrap_or_else(|| format!("user {}", from.id))
    } else {
        name.to_string()
    };
    name.chars().take(200).collect()
}

#[derive(Deserialize)]
struct InviteCreated {
    code: String,
    #[serde(default)]
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The invite as a link that opens the bot and sends `/start CODE` with one tap (Telegram's
/// deep link; codes are letters and digits, which a `start` parameter allows), and as the
/// command to type, for a person reading it somewhere the link does not open.
fn invite_text(bot_username: &str, role: Role, code: &str, expiry: &str) -> String {
    let how = if bot_username.is_empty() {
        "The new user sends this to the bot:".to_string()
    } else {
        format!("The new user opens this link:\nhttps://t.me/{bot_username}?start={code}\nor sends this to the bot:")
    };
    format!("Invite for a {role} created. {how}\n/start {code}\nThe code works once.{expiry}")
}

/// Private chats always; groups only when the operator listed them (`CRM_BOT_GROUPS`).
pub fn chat_allowed(ctx: &Ctx, chat: &Chat) -> bool {
    chat.is_private() || ctx.allowed_groups.contains(&chat.id.0)
}

pub const GROUP_REFUSAL: &str = "I only work in private chats: what I show about the CRM is for the person who \
asked. Open a chat with me and send your command there.";

/// One short refusal per chat and quiet period for a command in a chat the bot does not
/// serve; a button press there is answered (so the client stops spinning) and nothing else.
pub async fn refuse_chat(ctx: &Ctx, update: Update) {
    match update.kind {
        UpdateKind::Message(m) => {
            let text = m.text().unwrap_or_default();
            if let crate::command::Parsed::Command(_) = crate::command::parse(text, &ctx.username)
                && ctx.identity.should_refuse(m.chat.id.0)
            {
                tracing::info!(chat = m.chat.id.0, "refused a command in a chat that is not private or allowed");
                ctx.out.send(m.chat.id, GROUP_REFUSAL, None);
            }
        }
        UpdateKind::CallbackQuery(q) => {
            let answer = ctx.bot.answer_callback_query(q.id).text("This chat is not served; use a private chat.");
            if let Err(e) = answer.await {
                tracing::warn!(error = %e, "answerCallbackQuery failed");
            }
        }
        _ => {}
    }
}

pub async fn invite(req: &Req<'_>, args: &str) {
    if !req.private {
        req.reply("Invite codes are given only in a private chat with me: everyone in this chat would see the code.");
        return;
    }
    let role: Role = match args.trim().to_lowercase().parse() {
        Ok(role) => role,
        Err(_) => {
            req.reply("Usage: /invite admin|manager|viewer — e.g. /invite manager");
            return;
        }
    };
    if !req.user.role.is_admin() {
        req.reply("⛔ Only admins can invite people.");
        return;
    }
    let created: Result<InviteCreated, EngineError> =
        req.ctx.engine.post(req.acting(), "/api/invites", &serde_json::json!({"role": role})).await;
    match created {
        Ok(invite) => {
            let expiry = invite
                .expires_at
                .map(|t| format!(" It expires {}.", crate::render::when(t, req.zone())))
                .unwrap_or_default();
            req.reply(&invite_text(&req.ctx.username, role, &invite.code, &expiry));
        }
        Err(e) => req.fail(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invite_is_a_link_and_a_command() {
        let text = invite_text("crm_bot", Role::Manager, "Ab12", "");
        assert!(text.contains("\nhttps://t.me/crm_bot?start=Ab12\n"), "{text}");
        assert!(text.lines().any(|l| l == "/start Ab12"), "{text}");
        let text = invite_text("", Role::Viewer, "Ab12", "");
        assert!(!text.contains("t.me") && text.lines().any(|l| l == "/start Ab12"), "{text}");
    }
}
