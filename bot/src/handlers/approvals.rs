//! Approvals from the chat. The engine sends each person asked a message with Approve /
//! Reject buttons (a notification, see `notifications`) and edits it into the outcome once
//! the approval ends, whoever decided it and however. Here: `/approvals`, which has the
//! engine ask the user again for everything waiting for them, and a press of one of those
//! buttons, which decides as that user; the engine checks they may.

use serde::Deserialize;

use super::Req;
use crate::engine::EngineError;
use crate::t;

#[derive(Deserialize)]
struct Pending {
    workflow: String,
    text: String,
}

#[derive(Deserialize)]
struct Listed {
    items: Vec<Pending>,
}

/// `/approvals`: the approvals waiting for me, each again as a message with its buttons.
pub async fn mine(req: &Req<'_>) {
    let listed: Result<Listed, EngineError> =
        req.ctx.engine.post(req.acting(), "/api/approvals/ask-again", &serde_json::json!({})).await;
    match listed {
        Ok(l) if l.items.is_empty() => req.reply(&t!(req.lang, "approvals-none")),
        Ok(l) => {
            let title = if req.private {
                t!(req.lang, "approvals-waiting-here", count = l.items.len())
            } else {
                t!(req.lang, "approvals-waiting-private", count = l.items.len())
            };
            let mut lines = vec![title];
            for p in &l.items {
                lines.push(format!("• {} — {}", p.workflow, crate::text::ellipsize(&p.text, 120)));
            }
            req.reply(&lines.join("\n"));
        }
        Err(e) => req.fail(&e),
    }
}

/// A press of Approve or Reject; returns the notice the presser sees. The message itself
/// turns into the decision when the engine's edit arrives, for every message of it.
pub async fn decide(req: &Req<'_>, approval: i64, approve: bool) -> Option<String> {
    let body = serde_json::json!({"decision": if approve { "approved" } else { "rejected" }});
    let decided: Result<serde_json::Value, EngineError> =
        req.ctx.engine.post(req.acting(), &format!("/api/approvals/{approval}"), &body).await;
    Some(match decided {
        Ok(_) if approve => t!(req.lang, "approval-approved"),
        Ok(_) => t!(req.lang, "approval-rejected"),
        // Refusals say why: the role, or whose record it is.
        Err(EngineError::Api { code, message, .. }) if code == "forbidden" => {
            t!(req.lang, "approval-not-yours", reason = message)
        }
        Err(EngineError::Api { code, .. }) if code == "conflict" => t!(req.lang, "approval-decided-already"),
        Err(e) if e.is_not_found() => t!(req.lang, "approval-gone"),
        Err(e) => {
            super::log_engine_error(&e);
            e.for_chat(req.lang)
        }
    })
}
