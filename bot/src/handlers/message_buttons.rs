//! Buttons a workflow put under its message ("✅ Done", "⏰ In an hour"): the engine does
//! what the button says as the person pressing, once per message, and the message keeps
//! what happened in place of its buttons.

use serde::Deserialize;
use teloxide::types::MessageId;

use super::Req;
use crate::engine::EngineError;
use crate::t;

#[derive(Deserialize)]
struct Pressed {
    outcome: String,
}

/// Presses button `button` of notification `notification`, shown as message `message_id`
/// reading `text`; returns the notice for the presser.
pub async fn press(
    req: &Req<'_>,
    message_id: MessageId,
    text: Option<&str>,
    notification: i64,
    button: u8,
) -> Option<String> {
    let body = serde_json::json!({ "button": button });
    let path = format!("/api/notifications/{notification}/press");
    let pressed: Result<Pressed, EngineError> = req.ctx.engine.post(req.acting(), &path, &body).await;
    let outcome = match pressed {
        Ok(p) => p.outcome,
        Err(EngineError::Api { code, message, .. }) if code == "conflict" => message,
        Err(e) if e.is_not_found() => return Some(t!(req.lang, "message-buttons-gone")),
        Err(e) => {
            super::log_engine_error(&e);
            return Some(e.for_chat(req.lang));
        }
    };
    if let Some(text) = text {
        req.ctx.out.edit(req.chat, message_id, &format!("{text}\n\n{outcome}"), None, false);
    }
    Some(outcome)
}
