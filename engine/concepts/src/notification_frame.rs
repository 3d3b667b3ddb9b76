//! The bot's own framing around a notification, as data rather than text, so the bot can
//! write it in the recipient's language: an approval's question with its deadline and
//! buttons, or the outcome an approval's message turns into. The workflow's words (the
//! question, a comment) stay as written; only the frame around them is the bot's.
//!
//! The notification's `text` keeps the English rendering for the API, the web app and a bot
//! that does not know the frame.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Frame {
    /// An approval's question, under which the bot puts its Approve / Reject buttons.
    ApprovalAsk {
        workflow: String,
        /// the workflow's text, cut to what a message holds
        question: String,
        /// when the approval times out, in the reader's zone (`2026-12-05 19:00`; a zone
        /// name follows only when it is not theirs)
        deadline: String,
        /// what a timeout decides: `approved` or `rejected`
        on_timeout: String,
    },
    /// The approval's message once the approval ended: the question, then how it ended.
    ApprovalOutcome {
        workflow: String,
        question: String,
        /// `approved` or `rejected`; `None` when the run ended before a decision
        decision: Option<String>,
        /// who decided; `None` with a decision: nobody did, the timeout decided
        by: Option<String>,
        /// when it ended (`2026-12-05 10:00 UTC`)
        at: String,
        comment: Option<String>,
    },
}
