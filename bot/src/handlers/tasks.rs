//! My tasks, tasks due today, and marking one done.

use chrono::Utc;
use chrono_tz::Tz;
use crm_concepts::records::{Id, Page, Task};
use teloxide::types::MessageId;

use super::Req;
use crate::callback::Callback;
use crate::engine::EngineError;
use crate::texts::Language;
use crate::{render, t};

async fn open_tasks(req: &Req<'_>, today_only: bool) -> Result<Vec<Task>, EngineError> {
    let mut query =
        vec![("assignee_id", req.user.id.to_string()), ("done", "false".to_string()), ("limit", "50".to_string())];
    if today_only {
        let (_, end) = crm_concepts::local_time::day_bounds(req.zone(), Utc::now());
        query.push(("due_before", end.to_rfc3339()));
    }
    let page: Page<Task> = req.ctx.engine.get(req.acting(), "/api/tasks", &query).await?;
    let mut tasks = page.items;
    // Due first, earliest first; undated last.
    tasks.sort_by_key(|t| (t.due_at.is_none(), t.due_at, t.id));
    Ok(tasks)
}

fn task_list(tasks: &[Task], today_only: bool, zone: Tz, lang: Language) -> (String, render::Rows) {
    if tasks.is_empty() {
        let text = if today_only { t!(lang, "tasks-none-today") } else { t!(lang, "tasks-none") };
        return (text, Vec::new());
    }
    let title = if today_only { t!(lang, "tasks-today-title") } else { t!(lang, "tasks-title") };
    let mut lines = vec![title];
    let mut rows = Vec::new();
    for t in tasks {
        lines.push(render::task_line(t, zone, lang));
        rows.push(vec![(t!(lang, "button-task-done", title = t.title.as_str()), Callback::TaskDone(t.id))]);
    }
    (lines.join("\n"), rows)
}

pub async fn mine(req: &Req<'_>, today_only: bool) {
    match open_tasks(req, today_only).await {
        Ok(tasks) => {
            let (text, rows) = task_list(&tasks, today_only, req.zone(), req.lang);
            req.reply_with(&text, render::keyboard(rows));
        }
        Err(e) => req.fail(&e),
    }
}

/// Completes the task and redraws the list it was pressed in.
pub async fn done(req: &Req<'_>, message_id: MessageId, task: Id) -> Option<String> {
    let completed: Result<Task, EngineError> =
        req.ctx.engine.post(req.acting(), &format!("/api/tasks/{task}/complete"), &serde_json::json!({})).await;
    let notice = match completed {
        Ok(t) => t!(req.lang, "task-done", title = t.title),
        Err(e) if e.is_not_found() => t!(req.lang, "task-gone"),
        Err(e) => {
            super::log_engine_error(&e);
            return Some(e.for_chat(req.lang));
        }
    };
    if let Ok(tasks) = open_tasks(req, false).await {
        let (text, rows) = task_list(&tasks, false, req.zone(), req.lang);
        req.ctx.out.edit(req.chat, message_id, &text, render::keyboard(rows), false);
    }
    Some(notice)
}
