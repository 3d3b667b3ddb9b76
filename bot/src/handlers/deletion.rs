//! Deleting a record from the chat. `/delete KIND ID` or a card's 🗑 Delete button asks
//! first: a message naming the record, with Delete and Cancel buttons that only the person
//! who asked may press (in a group, anyone else's press is refused). The engine decides who
//! may delete — managers and admins — and records the deletion in the activity log; the bot
//! refuses a viewer up front only so they are not asked to confirm what would be refused.
//!
//! The buttons carry the record and the asker's Telegram id, so a confirmation still works
//! after a bot restart. A second press finds the record gone and says so; nothing else
//! happens.

use crm_concepts::records::{Id, RecordKind};
use serde_json::Value;
use teloxide::types::MessageId;

use super::{Req, log_engine_error};
use crate::callback::Callback;
use crate::engine::EngineError;
use crate::render;

const USAGE: &str = "Usage: /delete contact|company|deal|task ID — e.g. /delete deal 12. You are asked to confirm first; \
or open a record and tap 🗑 Delete.";

fn deletable(kind: RecordKind) -> bool {
    matches!(kind, RecordKind::Contact | RecordKind::Company | RecordKind::Deal | RecordKind::Task)
}

/// `/delete KIND ID`
pub async fn command(req: &Req<'_>, args: &str) {
    let mut parts = args.split_whitespace();
    let kind = parts.next().and_then(|k| k.to_lowercase().parse::<RecordKind>().ok()).filter(|k| deletable(*k));
    let id = parts.next().and_then(super::parse_id);
    match (kind, id, parts.next()) {
        (Some(kind), Some(id), None) => {
            if let Some(refusal) = ask(req, kind, id).await {
                req.reply(&refusal);
            }
        }
        _ => req.reply(USAGE),
    }
}

/// The record's name as a card shows it.
async fn title(req: &Req<'_>, kind: RecordKind, id: Id) -> Result<String, EngineError> {
    let record: Value = req.ctx.engine.get(req.acting(), &format!("/api/{}/{id}", kind.plural()), &[]).await?;
    let name = record.get("name").or_else(|| record.get("title")).and_then(Value::as_str).unwrap_or_default();
    Ok(crate::text::ellipsize(name, 80))
}

/// Sends the confirmation; returns why it was not sent.
pub async fn ask(req: &Req<'_>, kind: RecordKind, id: Id) -> Option<String> {
    if !deletable(kind) {
        return Some(USAGE.into());
    }
    if !req.user.role.can_write() {
        return Some(format!(
            "⛔ Your role ({}) cannot delete records: only managers and admins can. Ask one of them if it must go.",
            req.user.role
        ));
    }
    let name = match title(req, kind, id).await {
        Ok(name) => name,
        Err(e) if e.is_not_found() => return Some(format!("There is no {kind} #{id} (it may be deleted already).")),
        Err(e) => {
            log_engine_error(&e);
            return Some(e.for_chat());
        }
    };
    let mut text = format!("🗑 Delete {kind} #{id} “{name}”?");
    if !req.private {
        text.push_str(&format!("\nOnly {} can answer this.", req.user.name));
    }
    let answer = |delete| Callback::DeleteAnswer { kind, id, asker: req.tg_user, delete };
    let rows = vec![vec![("🗑 Delete".to_string(), answer(true)), ("✖️ Cancel".to_string(), answer(false))]];
    req.reply_with(&text, render::keyboard(rows));
    None
}

/// A press on Delete or Cancel; returns the notice for the press.
pub async fn answer(
    req: &Req<'_>,
    message_id: MessageId,
    kind: RecordKind,
    id: Id,
    asker: i64,
    delete: bool,
) -> Option<String> {
    if req.tg_user != asker {
        return Some("⛔ Only the person who asked to delete this can answer.".into());
    }
    if !delete {
        req.ctx.out.edit(req.chat, message_id, &format!("Kept {kind} #{id}: nothing was deleted."), None, false);
        return Some("Cancelled.".into());
    }
    let path = format!("/api/{}/{id}", kind.plural());
    // The name for the message that replaces the buttons; a record already gone ends here.
    let deleted = match title(req, kind, id).await {
        Ok(name) => req.ctx.engine.delete(req.acting(), &path).await.map(|()| name),
        Err(e) => Err(e),
    };
    match deleted {
        Ok(name) => {
            req.ctx.out.edit(req.chat, message_id, &format!("🗑 Deleted {kind} #{id} “{name}”."), None, false);
            Some(format!("Deleted {kind} #{id}."))
        }
        Err(e) if e.is_not_found() => {
            req.ctx.out.edit(req.chat, message_id, &format!("The {kind} #{id} was already deleted."), None, false);
            Some(format!("That {kind} was already deleted."))
        }
        Err(e) => {
            log_engine_error(&e);
            Some(e.for_chat())
        }
    }
}
