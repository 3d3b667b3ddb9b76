//! Task reminders: the step behind `workflows/task-reminder`, in two modes.
//!
//! **`mode = "plan"`** — when to remind. Input: `task_id` (a task event's, or a snooze
//! button's), optionally `snooze_minutes`. A snooze reminds that many minutes from now;
//! otherwise at the task's due time less the assignee's `remind_before_minutes` (their
//! `/settings remind N`). A done task, one without a due time or without an assignee gets
//! no reminder (`skip`). Output: `{"task_id", "remind_at" (RFC 3339), "due_at" (ms),
//! "assignee_id", "skip", "time_zone", "due_local"}` — the workflow's `wait` reads
//! `remind_at`; `due_local` is the due time in the assignee's `time_zone`, for remind steps
//! written in Python or JavaScript, which have no time zone database.
//!
//! **`mode = "remind"`** — after the wait. Reads the task again and stays silent if it was
//! done, moved to another due time or given to someone else meanwhile (that change planned
//! its own reminder), or if this very reminder was already sent (state key per task, due
//! time and reminder time). Otherwise it sends the assignee the reminder, its due time in
//! their time zone, with ✅ Done and ⏰ Snooze buttons; Snooze starts this workflow again
//! with `snooze_minutes` (config, default 60). Output: `{"sent": bool, "why"}`.
//!
//! **Capabilities:** `records:read`; for `remind` also `notify` and `state`.

use chrono::{DateTime, Utc};
use crm_sdk::notify::{Action, Button, RunRequest};
use crm_sdk::records::{self, Task};
use crm_sdk::{Input, Output, StepError};
use serde_json::{Value, json};

const MINUTE_MS: i64 = 60_000;

fn run(input: Input) -> Result<Output, StepError> {
    match input.setting::<String>("mode")?.as_deref() {
        Some("plan") => plan(&input),
        Some("remind") => remind(&input),
        other => Err(StepError::invalid_input(format!("`mode` must be plan or remind, not {other:?}"))),
    }
}

fn task_id(input: &Input) -> Result<i64, StepError> {
    input.setting::<i64>("task_id")?.ok_or_else(|| StepError::invalid_input("give `task_id`"))
}

fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339()
}

fn plan(input: &Input) -> Result<Output, StepError> {
    let task = records::get_task(task_id(input)?)?;
    let skip = |why: &str| {
        Ok(Output::json(json!({
            "task_id": task.id, "remind_at": rfc3339(crm_sdk::now_ms()), "due_at": task.due_at,
            "assignee_id": task.assignee_id, "skip": true, "why": why,
        })))
    };
    let (Some(due_at), Some(assignee)) = (task.due_at, task.assignee_id) else {
        return skip("the task has no due time or no assignee");
    };
    if task.done {
        return skip("the task is done");
    }
    let user = records::get_user(assignee)?;
    let remind_at = match input.setting::<i64>("snooze_minutes")? {
        Some(m) if (1..=7 * 24 * 60).contains(&m) => crm_sdk::now_ms() + m * MINUTE_MS,
        Some(m) => return Err(StepError::invalid_input(format!("`snooze_minutes` must be 1 to 10080, not {m}"))),
        None => due_at - i64::from(user.remind_before_minutes) * MINUTE_MS,
    };
    Ok(Output::json(json!({
        "task_id": task.id, "remind_at": rfc3339(remind_at), "due_at": due_at,
        "assignee_id": assignee, "skip": false,
        "time_zone": user.time_zone, "due_local": local_time(due_at, &user.time_zone),
    })))
}

/// `YYYY-MM-DD HH:MM` in `zone`, as the assignee reads it. Python and JavaScript steps have
/// no time zone database, so the plan hands them this (with the zone it was made for).
fn local_time(ms: i64, zone: &str) -> String {
    let zone: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&zone)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

fn remind(input: &Input) -> Result<Output, StepError> {
    let plan: &Value = input.deps.get("plan").ok_or_else(|| StepError::invalid_input("needs the `plan` step"))?;
    let silent = |why: &str| Ok(Output::json(json!({ "sent": false, "why": why })));
    if plan["skip"].as_bool().unwrap_or(true) {
        return silent(plan["why"].as_str().unwrap_or("nothing to remind of"));
    }
    let (Some(task_id), Some(due_at), Some(assignee)) =
        (plan["task_id"].as_i64(), plan["due_at"].as_i64(), plan["assignee_id"].as_i64())
    else {
        return Err(StepError::invalid_input("the plan names no task, due time or assignee"));
    };
    let task: Task = match records::get_task(task_id) {
        Ok(t) => t,
        Err(crm_sdk::HostError::NotFound(_)) => return silent("the task was deleted"),
        Err(e) => return Err(e.into()),
    };
    if task.done {
        return silent("the task was done meanwhile");
    }
    if task.due_at != Some(due_at) || task.assignee_id != Some(assignee) {
        return silent("the task was moved or reassigned; that change planned its own reminder");
    }
    let key = format!("reminded:{task_id}:{due_at}:{}", plan["remind_at"].as_str().unwrap_or_default());
    if crm_sdk::state::get(&key)?.is_some() {
        return silent("this reminder was sent already");
    }
    let user = records::get_user(assignee)?;
    let text = format!("⏰ Reminder: {}\nDue {}", task.title, local_time(due_at, &user.time_zone));
    let snooze: i64 = input.setting("snooze_minutes")?.unwrap_or(60);
    let snooze_label =
        if snooze % 60 == 0 { format!("⏰ Snooze {} h", snooze / 60) } else { format!("⏰ Snooze {snooze} min") };
    let buttons = [
        Button { label: "✅ Done".into(), action: Action::CompleteTask(task_id) },
        Button {
            label: snooze_label,
            action: Action::StartRun(RunRequest {
                workflow: input.context.workflow.clone(),
                input: json!({ "task_id": task_id, "snooze_minutes": snooze }).to_string(),
            }),
        },
    ];
    crm_sdk::notify::send_with_buttons(assignee, &text, &buttons)?;
    crm_sdk::state::set(&key, "true")?;
    Ok(Output::json(json!({ "sent": true, "user_id": assignee, "text": text })))
}

crm_sdk::step!(run);
