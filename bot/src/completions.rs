//! Workflow results back into the chat. The engine streams finished runs over SSE
//! (`GET /api/completions`); the bot edits each run's "running…" message into the rendered
//! result. One long-lived stream replaces polling per run; after a disconnect the bot
//! resumes with `Last-Event-ID`, and keeps that id in a small file so a restart resumes too.

use std::path::PathBuf;

use crm_concepts::run::{Completion, RunStatus};
use teloxide::types::{ChatId, InlineKeyboardMarkup, MessageId};
use tokio_util::sync::CancellationToken;

use crate::callback::Callback;
use crate::engine::EngineClient;
use crate::outbound::Outbound;
use crate::sse::{self, Resume, SseEvent};

/// The chat text for a completion: the workflow's rendering, or a plain status line.
pub fn chat_text(c: &Completion) -> String {
    if !c.rendered.trim().is_empty() {
        return c.rendered.clone();
    }
    match c.status {
        RunStatus::Succeeded => format!("✅ {} finished.", c.workflow),
        RunStatus::Failed => {
            let why = c.error.as_ref().map_or_else(|| "no reason given".to_string(), |e| e.message.clone());
            format!("❌ {} failed: {why}", c.workflow)
        }
        RunStatus::Cancelled => format!("🚫 {} was cancelled.", c.workflow),
        other => format!("{} is {other}.", c.workflow),
    }
}

/// A failed run's message offers to run it again from its failed step.
pub fn buttons(c: &Completion) -> Option<InlineKeyboardMarkup> {
    (c.status == RunStatus::Failed)
        .then(|| {
            crate::render::keyboard(vec![vec![("🔁 Retry from the failed step".into(), Callback::Retry(c.run_id))]])
        })
        .flatten()
}

fn deliver(out: &Outbound, c: &Completion) {
    let Some(notify) = &c.notify else { return };
    let chat = ChatId(notify.chat_id);
    let text = chat_text(c);
    match notify.message_id.and_then(|m| i32::try_from(m).ok()) {
        Some(mid) => out.edit(chat, MessageId(mid), &text, buttons(c), true),
        None => out.send(chat, &text, buttons(c)),
    }
}

pub struct CompletionStream {
    pub engine: EngineClient,
    pub out: Outbound,
    /// where the last event id is kept between runs of the bot
    pub cursor_file: Option<PathBuf>,
}

impl CompletionStream {
    /// Follows the stream until `stop`, reconnecting with backoff.
    pub async fn run(self, stop: CancellationToken) {
        let mut cursor = Cursor::load(self.cursor_file);
        let out = self.out;
        sse::follow("completions", &self.engine, "/api/completions", &mut cursor, |e| handle(&out, e), &stop).await;
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

fn handle(out: &Outbound, event: &SseEvent) {
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
            deliver(out, &c);
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
        assert_eq!(chat_text(&c), "❌ qualify failed: deal 9 not found");
    }
}
