//! Workflow notifications into users' chats. A step with the `notify` capability leaves a
//! message for a CRM user in the engine; the engine streams the pending ones over SSE
//! (`GET /api/notifications/stream`), and the bot sends each to the user's private chat
//! (whose id is their Telegram user id) through the rate-limited outbound queue, then
//! reports it `delivered` (with the Telegram message id), or `undeliverable` with a reason.
//! An approval's message carries Approve / Reject buttons; when the approval ends, the
//! engine sends an edit that turns that message into the outcome.
//!
//! The bot's own words (an approval's frame and buttons) are in the recipient's language:
//! the engine sends their setting and the frame as data; what the workflow wrote stays as
//! written.
//!
//! The engine keeps a notification pending until it hears that report, and serves the
//! pending ones again whenever the bot reconnects: a bot restart loses none. One that was
//! sent but not yet reported when the bot died is sent again (at least once).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{self, BoxFuture};
use serde::Deserialize;
use teloxide::types::{ChatId, MessageId};
use tokio_util::sync::CancellationToken;

use crm_concepts::notification_frame::Frame;

use crate::app_languages::AppLanguages;
use crate::callback::Callback;
use crate::engine::{EngineClient, EngineError};
use crate::outbound::{Outbound, OutboundError};
use crate::sse::{self, Redelivered, SseEvent};
use crate::t;
use crate::texts::Language;

/// A notification as the stream serves it (the fields delivery needs).
#[derive(Debug, Clone, Deserialize)]
pub struct Pending {
    pub id: i64,
    pub user_id: i64,
    /// `None` while the user has not linked a Telegram account
    pub telegram_user_id: Option<i64>,
    pub text: String,
    /// the approval whose Approve / Reject buttons go under the message
    #[serde(default)]
    pub approval_id: Option<i64>,
    /// an edit: the message in the same chat whose text this replaces (buttons gone)
    #[serde(default)]
    pub edit_message_id: Option<i64>,
    /// labels of the workflow's buttons under the message, one per row
    #[serde(default)]
    pub buttons: Vec<String>,
    /// the recipient's language setting; `None`: their Telegram app's
    #[serde(default)]
    pub language: Option<String>,
    /// the bot's framing around the text, written in the recipient's language; without it
    /// (or one this bot does not know) the text goes as the engine wrote it
    #[serde(default, deserialize_with = "lenient_frame")]
    pub frame: Option<Frame>,
}

/// A frame of a kind a newer engine added reads as none: the text still goes out.
fn lenient_frame<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Frame>, D::Error> {
    Ok(serde_json::from_value(serde_json::Value::deserialize(d)?).ok())
}

/// The message's text in `lang`: the frame written in it, else the engine's text.
pub fn text_in(n: &Pending, lang: Language) -> String {
    match &n.frame {
        None => n.text.clone(),
        Some(Frame::ApprovalAsk { workflow, question, deadline, on_timeout }) => format!(
            "{}\n{question}\n\n{}",
            t!(lang, "approval-ask-title", workflow = workflow.as_str()),
            t!(lang, "approval-ask-deadline", deadline = deadline.as_str(), on_timeout = on_timeout.as_str()),
        ),
        Some(Frame::ApprovalOutcome { workflow, question, decision, by, at, comment }) => {
            let at = at.as_str();
            let outcome = match (decision.as_deref(), by.as_deref()) {
                (Some("approved"), Some(by)) => t!(lang, "approval-outcome-approved", by = by, at = at),
                (Some(_), Some(by)) => t!(lang, "approval-outcome-rejected", by = by, at = at),
                (Some(d), None) => t!(lang, "approval-outcome-timed-out", decision = d, at = at),
                (None, _) => t!(lang, "approval-outcome-run-ended", at = at),
            };
            let mut text =
                format!("{}\n{question}\n\n{outcome}", t!(lang, "approval-ask-title", workflow = workflow.as_str()));
            if let Some(c) = comment {
                text.push_str(&format!("\n💬 {c}"));
            }
            text
        }
    }
}

/// What the bot tells the engine about one notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// as this Telegram message
    Delivered(Option<i64>),
    Undeliverable(String),
}

/// Ids being sent or reported: the stream serves them again after a reconnect, and they
/// must not reach the chat twice.
type InFlight = Arc<Mutex<HashSet<i64>>>;

pub struct NotificationStream {
    pub engine: EngineClient,
    pub out: Outbound,
    pub languages: AppLanguages,
}

impl NotificationStream {
    /// Follows the stream until `stop`, reconnecting with backoff. Nothing to resume: the
    /// engine serves every pending notification again on each connection.
    pub async fn run(self, stop: CancellationToken) {
        let in_flight: InFlight = Arc::default();
        let path = "/api/notifications/stream";
        sse::follow(
            "notifications",
            &self.engine,
            path,
            &mut Redelivered,
            |e| self.handle(e, &in_flight, &stop),
            &stop,
        )
        .await;
    }

    fn handle(&self, event: &SseEvent, in_flight: &InFlight, stop: &CancellationToken) {
        if event.event.as_deref() != Some("notification") || event.data.trim().is_empty() {
            return;
        }
        let n = match serde_json::from_str::<Pending>(&event.data) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "unreadable notification event skipped");
                return;
            }
        };
        if !lock(in_flight).insert(n.id) {
            return;
        }
        let (engine, out, in_flight, stop) = (self.engine.clone(), self.out.clone(), in_flight.clone(), stop.clone());
        // Queued here, in the stream's order, so a chat gets its messages in the order they
        // were left; then one task per notification waits for its delivery: the outbound
        // queue paces the sends (a chat at a time, within Telegram's limits), and a slow chat
        // does not hold up the others.
        let setting = n.language.as_deref().and_then(Language::from_tag);
        let delivery = deliver(&out, &n, self.languages.for_user(Some(n.user_id), setting));
        tokio::spawn(async move {
            if let Some(report) = delivery.await {
                send_report(&engine, n.id, &report, &stop).await;
            }
            lock(&in_flight).remove(&n.id);
        });
    }
}

fn lock(set: &InFlight) -> std::sync::MutexGuard<'_, HashSet<i64>> {
    // A panic while holding this lock cannot leave the set inconsistent: keep going.
    set.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Queues one notification at once and returns what waits for its outcome: `None` when the
/// bot is shutting down before it went out (it stays pending and is sent after the restart).
fn deliver(out: &Outbound, n: &Pending, lang: Language) -> BoxFuture<'static, Option<Report>> {
    let Some(chat) = n.telegram_user_id else {
        tracing::info!(notification = n.id, user = n.user_id, "user has no linked Telegram account");
        return Box::pin(future::ready(Some(Report::Undeliverable(format!(
            "CRM user {} has no linked Telegram account (an admin can send them an invite with /invite)",
            n.user_id
        )))));
    };
    if let Some(mid) = n.edit_message_id.and_then(|m| i32::try_from(m).ok()) {
        // An approval's message turning into its outcome: the edit drops the buttons. A
        // message Telegram no longer has is left alone rather than sent anew.
        out.edit(ChatId(chat), MessageId(mid), &text_in(n, lang), None, false);
        return Box::pin(future::ready(Some(Report::Delivered(Some(i64::from(mid))))));
    }
    let keyboard = match n.approval_id {
        Some(approval) => crate::render::keyboard(vec![vec![
            (t!(lang, "approval-button-approve"), Callback::Decide { approval, approve: true }),
            (t!(lang, "approval-button-reject"), Callback::Decide { approval, approve: false }),
        ]]),
        None => crate::render::keyboard(
            n.buttons
                .iter()
                .zip(0u8..)
                .map(|(label, button)| vec![(label.clone(), Callback::Press { notification: n.id, button })])
                .collect(),
        ),
    };
    let sent = out.send_tracked(ChatId(chat), &text_in(n, lang), keyboard);
    Box::pin(async move {
        match sent.await {
            Ok(mid) => Some(Report::Delivered(Some(i64::from(mid.0)))),
            Err(OutboundError::Refused(why)) => {
                Some(Report::Undeliverable(format!("Telegram refused the message: {why}")))
            }
            Err(OutboundError::Closed) => None,
        }
    })
}

/// Tells the engine, retrying while it is unreachable. After `stop` one attempt is made:
/// if that fails the notification stays pending and is sent again after the restart.
async fn send_report(engine: &EngineClient, id: i64, report: &Report, stop: &CancellationToken) {
    let (path, body) = match report {
        Report::Delivered(message_id) => {
            (format!("/api/notifications/{id}/delivered"), serde_json::json!({ "message_id": message_id }))
        }
        Report::Undeliverable(reason) => {
            (format!("/api/notifications/{id}/undeliverable"), serde_json::json!({ "reason": reason }))
        }
    };
    let mut backoff = Duration::from_millis(250);
    loop {
        match engine.post::<_, serde_json::Value>(None, &path, &body).await {
            Ok(_) => return,
            Err(EngineError::Api { status, .. }) if status < 500 => {
                // Gone or refused for good (the row was deleted, the token lost its admin
                // role): retrying cannot help.
                tracing::warn!(notification = id, status, "the engine refused the delivery report");
                return;
            }
            Err(e) => {
                if stop.is_cancelled() {
                    tracing::warn!(notification = id, error = %e, "delivery report lost at shutdown; it will be sent again");
                    return;
                }
                tracing::warn!(notification = id, error = %e, "delivery report failed; retrying");
            }
        }
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(frame: serde_json::Value) -> Pending {
        serde_json::from_value(serde_json::json!({
            "id": 1, "user_id": 2, "telegram_user_id": 3, "text": "the engine's English", "frame": frame
        }))
        .unwrap()
    }

    #[test]
    fn an_approval_is_framed_in_the_readers_language_around_the_workflows_words() {
        let ask = pending(serde_json::json!({
            "kind": "approval_ask", "workflow": "discount", "question": "Give 25% off?",
            "deadline": "2026-12-05 19:00", "on_timeout": "rejected"
        }));
        assert_eq!(
            text_in(&ask, Language::En),
            "🗳 Approval needed (discount)\nGive 25% off?\n\nDecide by 2026-12-05 19:00; without a decision it is rejected."
        );
        assert_eq!(
            text_in(&ask, Language::Ru),
            "🗳 Нужно согласование (discount)\nGive 25% off?\n\nРешите до 2026-12-05 19:00; без решения будет отклонено."
        );
        let ended = pending(serde_json::json!({
            "kind": "approval_outcome", "workflow": "discount", "question": "Give 25% off?",
            "decision": "approved", "by": "Mia", "at": "2026-12-05 10:00 UTC", "comment": "ok"
        }));
        assert_eq!(
            text_in(&ended, Language::Ru),
            "🗳 Нужно согласование (discount)\nGive 25% off?\n\n✅ Одобрено: Mia, 2026-12-05 10:00 UTC\n💬 ok"
        );
        let timed_out = pending(serde_json::json!({
            "kind": "approval_outcome", "workflow": "d", "question": "q", "decision": "rejected", "by": null,
            "at": "2026-12-05 10:00 UTC", "comment": null
        }));
        assert!(
            text_in(&timed_out, Language::En).ends_with("⌛ Nobody decided in time: rejected at 2026-12-05 10:00 UTC")
        );
    }

    #[test]
    fn without_a_frame_it_knows_the_text_goes_as_written() {
        assert_eq!(text_in(&pending(serde_json::Value::Null), Language::Ru), "the engine's English");
        let future = pending(serde_json::json!({"kind": "something_newer"}));
        assert_eq!(future.frame, None);
        assert_eq!(text_in(&future, Language::Ru), "the engine's English");
    }
}
