//! Buttons a workflow put under its message ("✅ Done", "⏰ In an hour"): the engine does
//! what the button says as the person pressing, once per message, and the message keeps
//! what happened in place of its buttons.
//!
//! The engine says what the press did as data, and the bot words it in the presser's
//! language; the button's label and a task's title stay as written.

use crm_concepts::press_outcome::PressOutcome;
use serde::Deserialize;
use teloxide::types::MessageId;

use super::Req;
use crate::engine::EngineError;
use crate::t;
use crate::texts::Language;

/// What the press did: as data when the engine sent a kind this bot knows, else its English.
#[derive(Deserialize)]
struct Pressed {
    outcome: String,
    #[serde(default, deserialize_with = "lenient")]
    done: Option<PressOutcome>,
}

/// A notification as `GET /api/notifications/{id}` shows it: what its press did.
#[derive(Deserialize)]
struct Notification {
    pressed: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    press_outcome: Option<PressOutcome>,
}

/// An outcome of a kind a newer engine added reads as none: its English still shows.
fn lenient<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<PressOutcome>, D::Error> {
    Ok(serde_json::from_value(serde_json::Value::deserialize(d)?).ok())
}

/// The press's outcome in `lang`; `english` when there is none as data.
pub fn outcome_in(done: Option<&PressOutcome>, english: &str, lang: Language) -> String {
    match done {
        Some(PressOutcome::TaskDone { title }) => t!(lang, "press-task-done", title = title.as_str()),
        Some(PressOutcome::RunStarted { label }) => t!(lang, "press-run-started", label = label.as_str()),
        None => english.to_string(),
    }
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
        Ok(p) => outcome_in(p.done.as_ref(), &p.outcome, req.lang),
        Err(EngineError::Api { code, message, .. }) if code == "conflict" => already(req, notification, &message).await,
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

/// What an earlier press of the message did, in the presser's language: the conflict's
/// message is English, so the notification is read for the outcome as data.
async fn already(req: &Req<'_>, notification: i64, english: &str) -> String {
    let path = format!("/api/notifications/{notification}");
    match req.ctx.engine.get::<Notification>(req.acting(), &path, &[]).await {
        Ok(Notification { press_outcome: Some(done), pressed }) => {
            outcome_in(Some(&done), pressed.as_deref().unwrap_or(english), req.lang)
        }
        // Pressed, but its outcome not yet recorded: the first press is still at work.
        Ok(Notification { pressed: None, .. }) => t!(req.lang, "press-already-answered"),
        Ok(Notification { pressed: Some(_), .. }) => english.to_string(),
        Err(e) => {
            super::log_engine_error(&e);
            english.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_press_is_worded_in_the_pressers_language_around_the_workflows_words() {
        let done = PressOutcome::TaskDone { title: "Call the Osaka office".into() };
        assert_eq!(outcome_in(Some(&done), "x", Language::En), "✅ Done: Call the Osaka office");
        assert_eq!(outcome_in(Some(&done), "x", Language::Ru), "✅ Готово: Call the Osaka office");
        assert_eq!(done.english(), outcome_in(Some(&done), "x", Language::En), "the engine's English is the bot's");
        let started = PressOutcome::RunStarted { label: "⏰ Snooze 1 h".into() };
        assert_eq!(outcome_in(Some(&started), "x", Language::Ru), "→ ⏰ Snooze 1 h");
        assert_eq!(started.english(), outcome_in(Some(&started), "x", Language::En));
    }

    #[test]
    fn an_outcome_this_bot_does_not_know_shows_the_engines_english() {
        let p: Pressed =
            serde_json::from_value(serde_json::json!({"outcome": "✨ Something newer", "done": {"kind": "newer"}}))
                .unwrap();
        assert!(p.done.is_none());
        assert_eq!(outcome_in(p.done.as_ref(), &p.outcome, Language::Ru), "✨ Something newer");
    }
}
