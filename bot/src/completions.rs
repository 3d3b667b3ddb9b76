//! Workflow results back into the chat. The engine streams finished runs over SSE
//! (`GET /api/completions`); the bot edits each run's "running…" message into the rendered
//! result. One long-lived stream replaces polling per run; after a disconnect the bot
//! resumes with `Last-Event-ID`, and keeps that id in a small file so a restart resumes too.

use std::path::PathBuf;
use std::time::Duration;

use crm_concepts::run::{Completion, RunStatus};
use futures::StreamExt;
use teloxide::types::{ChatId, MessageId};
use tokio_util::sync::CancellationToken;

use crate::engine::EngineClient;
use crate::outbound::Outbound;

/// One server-sent event.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

/// Incremental SSE parser: feed bytes, take complete events.
#[derive(Default)]
pub struct SseParser {
    buf: String,
    pending: SseEvent,
    has_data: bool,
}

impl SseParser {
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buf.push_str(&String::from_utf8_lossy(chunk));
        let mut out = Vec::new();
        while let Some(i) = self.buf.find('\n') {
            let line: String = self.buf.drain(..=i).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if self.has_data {
                    out.push(std::mem::take(&mut self.pending));
                } else {
                    self.pending = SseEvent::default();
                }
                self.has_data = false;
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            match field {
                "id" => self.pending.id = Some(value.to_string()),
                "event" => self.pending.event = Some(value.to_string()),
                "data" => {
                    if self.has_data {
                        self.pending.data.push('\n');
                    }
                    self.pending.data.push_str(value);
                    self.has_data = true;
                }
                _ => {}
            }
        }
        out
    }
}

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

fn deliver(out: &Outbound, c: &Completion) {
    let Some(notify) = &c.notify else { return };
    let chat = ChatId(notify.chat_id);
    let text = chat_text(c);
    match notify.message_id.and_then(|m| i32::try_from(m).ok()) {
        Some(mid) => out.edit(chat, MessageId(mid), &text, None, true),
        None => out.send(chat, &text, None),
    }
}

pub struct CompletionStream {
    pub engine: EngineClient,
    pub out: Outbound,
    /// where the last event id is kept between runs of the bot
    pub cursor_file: Option<PathBuf>,
}

impl CompletionStream {
    fn load_cursor(&self) -> Option<String> {
        let path = self.cursor_file.as_ref()?;
        let text = std::fs::read_to_string(path).ok()?;
        let id = text.trim();
        (!id.is_empty() && id.len() < 200).then(|| id.to_string())
    }

    fn save_cursor(&self, id: &str) {
        let Some(path) = &self.cursor_file else { return };
        let tmp = path.with_extension("tmp");
        let written = std::fs::write(&tmp, id).and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            tracing::warn!(error = %e, path = %path.display(), "cannot save the completion cursor");
        }
    }

    /// Follows the stream until `stop`, reconnecting with backoff.
    pub async fn run(self, stop: CancellationToken) {
        let http = match reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            // The engine sends keep-alive comments; silence this long means a dead link.
            .read_timeout(Duration::from_secs(60))
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the completion stream client");
                return;
            }
        };
        let mut last_id = self.load_cursor();
        let mut backoff = Duration::from_millis(250);
        loop {
            let url = format!("{}/api/completions", self.engine.base_url());
            let mut req = http.get(&url).bearer_auth(self.engine.token()).header("Accept", "text/event-stream");
            if let Some(id) = &last_id {
                req = req.header("Last-Event-ID", id);
            }
            let connected = tokio::select! {
                () = stop.cancelled() => return,
                r = req.send() => r,
            };
            match connected {
                Ok(resp) if resp.status().is_success() => {
                    tracing::info!(resume_after = ?last_id, "completion stream connected");
                    backoff = Duration::from_millis(250);
                    let mut body = resp.bytes_stream();
                    let mut parser = SseParser::default();
                    loop {
                        let chunk = tokio::select! {
                            () = stop.cancelled() => return,
                            c = body.next() => c,
                        };
                        let chunk = match chunk {
                            Some(Ok(c)) => c,
                            Some(Err(e)) => {
                                tracing::warn!(error = %e, "completion stream broke; reconnecting");
                                break;
                            }
                            None => {
                                tracing::info!("completion stream ended; reconnecting");
                                break;
                            }
                        };
                        for event in parser.feed(&chunk) {
                            self.handle(&event);
                            if let Some(id) = event.id {
                                self.save_cursor(&id);
                                last_id = Some(id);
                            }
                        }
                    }
                }
                Ok(resp) if resp.status() == reqwest::StatusCode::BAD_REQUEST && last_id.is_some() => {
                    // A cursor from another installation (or a wiped Redis): start afresh
                    // rather than being refused forever.
                    tracing::warn!(cursor = ?last_id, "the engine does not know the saved completion cursor; starting from now");
                    last_id = None;
                    continue;
                }
                Ok(resp) => tracing::warn!(status = %resp.status(), "completion stream refused; retrying"),
                Err(e) => tracing::debug!(error = %e, "completion stream not reachable; retrying"),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }

    fn handle(&self, event: &SseEvent) {
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
                deliver(&self.out, &c);
            }
            Err(e) => tracing::warn!(error = %e, "unreadable completion event skipped"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_split_across_chunks() {
        let mut p = SseParser::default();
        assert!(p.feed(b": keep-alive\n\nid: 7\nevent: comp").is_empty());
        let events = p.feed(b"letion\ndata: {\"a\":\ndata: 1}\r\n\r\nid: 8\ndata: x\n\n");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].id.as_deref(), Some("7"));
        assert_eq!(events[0].event.as_deref(), Some("completion"));
        assert_eq!(events[0].data, "{\"a\":\n1}");
        assert_eq!(events[1].data, "x");
    }

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
