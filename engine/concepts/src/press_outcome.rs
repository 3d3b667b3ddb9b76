//! What pressing a workflow's button under a chat message did, as data rather than text, so
//! the bot can say it in the presser's language. The button's label is the workflow's words
//! and a task's title the user's: both stay as written; only the wording around them is the
//! bot's.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PressOutcome {
    /// `complete_task`: the task is done
    TaskDone { title: String },
    /// `start_run`: the button's workflow was started
    RunStarted { label: String },
}

impl PressOutcome {
    /// The outcome in English, as the API and the web app show it.
    pub fn english(&self) -> String {
        match self {
            PressOutcome::TaskDone { title } => format!("✅ Done: {title}"),
            PressOutcome::RunStarted { label } => format!("→ {label}"),
        }
    }
}
