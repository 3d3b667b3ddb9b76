//! Create a follow-up task on a deal or a contact.
//!
//! **Input** (config first, then run input): `deal_id` or `contact_id` (one is required;
//! `deal_id` wins when both are given).
//!
//! **Config** (all optional):
//! - `title` (default `"Follow up: {name}"`): `{name}` becomes the deal title or contact name;
//! - `due_in_days` (default 3, 0–365): the task is due this many days from now;
//! - `assignee_id`: who gets the task; default the record's owner, else the run's acting user;
//! - `key`: names this follow-up among others of the same workflow on the same record (a
//!   drip that gives a deal one task a week later and another a month later sets one per
//!   step); without it there is one follow-up per record and workflow.
//!
//! An open task with the same title already linked to the record (one a person made, say)
//! is reused. Otherwise the task is *ensured* under a key naming the record: however many
//! runs for the same record race, exactly one open follow-up exists afterwards, and a
//! retried step gets the same task back from the engine's journal.
//!
//! **Capabilities:** `records:read`, `records:write`, `log`.
//!
//! **Output:** `{"task_id", "title", "due_at" (ms since epoch), "assignee_id", "created": bool}`;
//! `created` is true when this run put the task in place (a concurrent run for the same
//! record may report the same task).

use crm_sdk::records::{self, NewTask, TaskFilter};
use crm_sdk::{DAY_MS, Input, Output, StepError};
use serde_json::json;

enum Target {
    Deal(i64),
    Contact(i64),
}

fn run(input: Input) -> Result<Output, StepError> {
    let target = match (input.setting::<i64>("deal_id")?, input.setting::<i64>("contact_id")?) {
        (Some(id), _) => Target::Deal(id),
        (None, Some(id)) => Target::Contact(id),
        (None, None) => return Err(StepError::invalid_input("give `deal_id` or `contact_id`")),
    };
    let template: String = input.setting("title")?.unwrap_or_else(|| "Follow up: {name}".to_string());
    let due_in_days: i64 = input.setting("due_in_days")?.unwrap_or(3);
    if !(0..=365).contains(&due_in_days) {
        return Err(StepError::invalid_input("`due_in_days` must be between 0 and 365"));
    }
    let (name, owner, filter) = match target {
        Target::Deal(id) => {
            let deal = records::get_deal(id)?;
            (deal.title, deal.owner_id, TaskFilter { deal_id: Some(id), done: Some(false), ..Default::default() })
        }
        Target::Contact(id) => {
            let contact = records::get_contact(id)?;
            (
                contact.name,
                contact.owner_id,
                TaskFilter { contact_id: Some(id), done: Some(false), ..Default::default() },
            )
        }
    };
    let title: String = template.replace("{name}", &name).chars().take(300).collect();
    let assignee_id = input.setting::<i64>("assignee_id")?.or(owner).or(input.context.acting_user);

    let existing = records::find_tasks(TaskFilter { limit: Some(200), ..filter })?;
    if let Some(task) = existing.into_iter().find(|t| t.title == title) {
        crm_sdk::info("follow-up task already exists", json!({ "task_id": task.id }));
        return Ok(Output::json(json!({
            "task_id": task.id, "title": task.title, "due_at": task.due_at,
            "assignee_id": task.assignee_id, "created": false,
        })));
    }

    let due_at = crm_sdk::now_ms() + due_in_days * DAY_MS;
    let (deal_id, contact_id, record) = match target {
        Target::Deal(id) => (Some(id), None, format!("deal:{id}")),
        Target::Contact(id) => (None, Some(id), format!("contact:{id}")),
    };
    // From the config only: the key is the workflow's choice, not the run input's.
    let key = match input.config.get("key").and_then(|k| k.as_str()) {
        Some(name) => format!("follow-up:{name}:{record}"),
        None => format!("follow-up:{record}"),
    };
    let task = records::ensure_task(
        &key,
        &NewTask { title, due_at: Some(due_at), assignee_id, contact_id, company_id: None, deal_id },
    )?;
    crm_sdk::info("follow-up task created", json!({ "task_id": task.id, "assignee_id": assignee_id }));
    Ok(Output::json(json!({
        "task_id": task.id, "title": task.title, "due_at": task.due_at,
        "assignee_id": task.assignee_id, "created": true,
    })))
}

crm_sdk::step!(run);
