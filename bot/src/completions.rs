//! Workflow results back into the chat. The engine streams finished runs over SSE
//! (`GET /api/completions`); the bot edits each run's "running…" message into the rendered
//! result. One long-lived stream replaces polling per run; after a disconnect the bot
//! resumes with `Last-Event-ID`, and keeps that id in a small file so a restart resumes too.
//! The status line and the Retry button are in the language of whoever started the run; the
//! workflow's own rendering and a failure's reason stay as written.

use std::path::PathBuf;

use crm_concepts::run::{Completion, RunError, RunStatus};
use teloxide::types::{ChatId, InlineKeyboardMarkup, MessageId};
use tokio_util::sync::CancellationToken;

use crate::app_languages::AppLanguages;
use crate::callback::Callback;
use crate::engine::EngineClient;
use crate::outbound::Outbound;
use crate::sse::{self, Resume, SseEvent};
use crate::t;
use crate::texts::Language;

/// The chat text for a completion: the workflow's rendering, or a status line in `lang`.
pub fn chat_text(c: &Completion, lang: Language) -> String {
    if !c.rendered.trim().is_empty() {
        return c.rendered.clone();
    }
    let workflow = c.workflow.as_str();
    match c.status {
        RunStatus::Succeeded => t!(lang, "run-succeeded", workflow = workflow),
        RunStatus::Failed => match &c.error {
            Some(RunError { step: Some(step), message, .. }) => {
                t!(lang, "run-failed-at-step", workflow = workflow, step = step.as_str(), reason = message.as_str())
            }
            Some(e) => t!(lang, "run-failed", workflow = workflow, reason = e.message.as_str()),
            None => t!(lang, "run-failed", workflow = workflow, reason = t!(lang, "run-failed-no-reason")),
        },
        RunStatus::Cancelled => t!(lang, "run-cancelled", workflow = workflow),
        other => t!(lang, "run-ended-as", workflow = workflow, status = other.to_string()),
    }
}

/// A failed run's message offers to run it again from its failed step.
pub fn buttons(c: &Completion, lang: Language) -> Option<InlineKeyboardMarkup> {
    (c.status == RunStatus::Failed)
        .then(|| crate::render::keyboard(vec![vec![(t!(lang, "run-retry-button"), Callback::Retry(c.run_id))]]))
        .flatten()
}

fn deliver(out: &Outbound, c: &Completion, lang: Language) {
    let Some(notify) = &c.notify else { return };
    let chat = ChatId(notify.chat_id);
    let text = chat_text(c, lang);
    match notify.message_id.and_then(|m| i32::try_from(m).ok()) {
        Some(mid) => out.edit(chat, MessageId(mid), &text, buttons(c, lang), true),
        None => out.send(chat, &text, buttons(c, lang)),
    }
}

pub struct CompletionStream {
    pub engine: EngineClient,
    pub out: Outbound,
    /// where the last event id is kept between runs of the bot
    pub cursor_file: Option<PathBuf>,
    pub languages: AppLanguages,
}

impl CompletionStream {
    /// Follows the stream until `stop`, reconnecting with backoff.
    pub async fn run(self, stop: CancellationToken) {
        let mut cursor = Cursor::load(self.cursor_file);
        let (out, languages) = (self.out, self.languages);
        let on_event = |e: &SseEvent| handle(&out, &languages, e);
        sse::follow("completions", &self.engine, "/api/completions", &mut cursor, on_event, &stop).await;
    }
}

/// The last completion handled, kept on disk so that a restarted bot resumes after it
/// rather than skipping what finished while it was down.
struct Cursor {
    last: Option<String>,
    file: Option<PathBuf>,
}

impl Cursor {
    fn load(file: Option<PathBuf>) -> Cursor {
        let last = file.as_ref().and_then(|path| {
            let text = std::fs::read_to_string(path).ok()?;
            let id = text.trim();
            (!id.is_empty() && id.len() < 200).then(|| id.to_string())
        });
        Cursor { last, file }
    }
}

impl Resume for Cursor {
    fn last_event_id(&self) -> Option<&str> {
        self.last.as_deref()
    }

    fn handled(&mut self, id: &str) {
        if let Some(path) = &self.file {
            let tmp = path.with_extension("tmp");
            let written = std::fs::write(&tmp, id).and_then(|()| std::fs::rename(&tmp, path));
            if let Err(e) = written {
                tracing::warn!(error = %e, path = %path.display(), "cannot save the completion cursor");
            }
        }
        self.last = Some(id.to_string());
    }

    fn forget(&mut self) -> bool {
        // A cursor from another installation (or a wiped Redis) would be refused forever:
        // start afresh instead.
        self.last = None;
        true
    }
}

fn handle(out: &Outbound, languages: &AppLanguages, event: &SseEvent) {
    if event.data.trim().is_empty() {
        return;
    }
    match event.event.as_deref() {
        None | Some("completion" | "message") => {}
        Some(_) => return,
    }
    match serde_json::from_str::<Completion>(&event.data) {
        Ok(c) => {
            tracing::info!(run = %c.run_id, status = %c.status, "run completed; answering the chat");
            let lang = languages.for_user(c.acting_user, c.language);
            deliver(out, &c, lang);
        }
        Err(e) => tracing::warn!(error = %e, "unreadable completion event skipped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_without_rendering_names_the_reason() {
        let c: Completion = serde_json::from_value(serde_json::json!({
            "run_id": "00000000-0000-0000-0000-000000000001", "workflow": "qualify", "status": "failed",
            "rendered": "", "error": {"code": "step_failed", "message": "deal 9 not found"}
        }))
        .unwrap();
        assert_eq!(chat_text(&c, Language::En), "❌ qualify failed: deal 9 not found");
        assert_eq!(chat_text(&c, Language::Ru), "❌ Сценарий qualify не выполнен: deal 9 not found");
    }

    #[test]
    fn the_status_line_and_retry_button_follow_the_language() {
        let c: Completion = serde_json::from_value(serde_json::json!({
            "run_id": "00000000-0000-0000-0000-000000000001", "workflow": "qualify", "status": "succeeded",
            "rendered": "", "language": "ru"
        }))
        .unwrap();
        assert_eq!(c.language, Some(Language::Ru));
        assert_eq!(chat_text(&c, Language::En), "✅ qualify finished.");
        assert_eq!(chat_text(&c, Language::Ru), "✅ Сценарий qualify выполнен.");
        let failed = Completion { status: RunStatus::Failed, ..c };
        assert_eq!(chat_text(&failed, Language::Ru), "❌ Сценарий qualify не выполнен: причина не указана");
        let labels = |lang| {
            let keyboard = buttons(&failed, lang).expect("a Retry button");
            keyboard.inline_keyboard[0][0].text.clone()
        };
        assert_eq!(labels(Language::En), "🔁 Retry from the failed step");
        assert_eq!(labels(Language::Ru), "🔁 Повторить с шага, где была ошибка");
        let at_step = Completion {
            error: Some(RunError { step: Some("score".into()), code: "step_failed".into(), message: "boom".into() }),
            ..failed
        };
        assert_eq!(chat_text(&at_step, Language::En), "❌ qualify failed at step score: boom");
        assert_eq!(chat_text(&at_step, Language::Ru), "❌ Сценарий qualify не выполнен на шаге score: boom");
    }
}
