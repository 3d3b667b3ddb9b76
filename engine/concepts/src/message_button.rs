//! Buttons under a chat message a workflow sends: "✅ Done" under a task reminder, "⏰ In an
//! hour" that starts the reminder again. A press acts as the person the message went to,
//! with their role's rights, and at most once per message; the engine keeps the buttons
//! with the message, so the chat only carries the message id and the button's position.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The most buttons under one message.
pub const MAX_BUTTONS: usize = 8;
/// The longest label, in characters (Telegram cuts longer ones on a phone).
pub const MAX_LABEL: usize = 40;
/// The largest `start_run` input, in bytes of JSON.
pub const MAX_RUN_INPUT: usize = 4096;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
pub struct Button {
    pub label: String,
    pub action: ButtonAction,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ButtonAction {
    /// mark the task done
    CompleteTask { task_id: i64 },
    /// start a run of a deployed workflow with `input` (a JSON object)
    StartRun { workflow: String, input: Value },
}

/// Checks buttons before they are stored: the message is refused as a whole, with the
/// first thing wrong.
pub fn check(buttons: &[Button]) -> Result<(), String> {
    if buttons.len() > MAX_BUTTONS {
        return Err(format!("a message has at most {MAX_BUTTONS} buttons, not {}", buttons.len()));
    }
    for (i, b) in buttons.iter().enumerate() {
        let chars = b.label.trim().chars().count();
        if chars == 0 || chars > MAX_LABEL {
            return Err(format!("button {i}: a label is 1 to {MAX_LABEL} characters"));
        }
        match &b.action {
            ButtonAction::CompleteTask { task_id } if *task_id <= 0 => {
                return Err(format!("button {i}: {task_id} is not a task id"));
            }
            ButtonAction::StartRun { workflow, input } => {
                if !crate::manifest::is_name(workflow) {
                    return Err(format!("button {i}: {workflow:?} is not a workflow name"));
                }
                if !input.is_object() {
                    return Err(format!("button {i}: a run's input is a JSON object"));
                }
                if input.to_string().len() > MAX_RUN_INPUT {
                    return Err(format!("button {i}: a run's input is at most {MAX_RUN_INPUT} bytes"));
                }
            }
            ButtonAction::CompleteTask { .. } => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn button(label: &str, action: ButtonAction) -> Button {
        Button { label: label.into(), action }
    }

    #[test]
    fn buttons_are_checked_before_they_are_kept() {
        let done = button("✅ Done", ButtonAction::CompleteTask { task_id: 5 });
        let later = button(
            "⏰ In an hour",
            ButtonAction::StartRun { workflow: "task-reminder".into(), input: json!({"task_id": 5}) },
        );
        assert!(check(&[done.clone(), later.clone()]).is_ok());
        assert!(check(&vec![done.clone(); 9]).unwrap_err().contains("at most 8"));
        assert!(check(&[button(" ", ButtonAction::CompleteTask { task_id: 5 })]).unwrap_err().contains("label"));
        assert!(check(&[button(&"x".repeat(41), ButtonAction::CompleteTask { task_id: 5 })]).is_err());
        assert!(check(&[button("ok", ButtonAction::CompleteTask { task_id: 0 })]).is_err());
        let bad_name = ButtonAction::StartRun { workflow: "Task Reminder".into(), input: json!({}) };
        assert!(check(&[button("ok", bad_name)]).unwrap_err().contains("workflow name"));
        let not_object = ButtonAction::StartRun { workflow: "w".into(), input: json!([1]) };
        assert!(check(&[button("ok", not_object)]).unwrap_err().contains("JSON object"));
    }
}
