//! Task reminders, the `task-reminder` example automation that `crm up` deploys: a task with
//! a due time reminds its assignee in their private chat — at the due time less their
//! `/settings remind N` minutes, its due time shown in their zone — once, with ✅ Done and
//! ⏰ Snooze buttons. Driven end to end: the real bot against the loopback Bot API server, a
//! real engine on the test clock and a real worker.

use std::time::Duration;

use chrono::{DateTime, Utc};
use crm_concepts::user::Role;
use crm_testing::bot::{ChatBot, button};
use crm_testing::{Flow, TgUser};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(30);

/// The reminder runs of task `task`, oldest first.
async fn reminder_runs(flow: &Flow, task: i64) -> Vec<Uuid> {
    sqlx::query_scalar(
        "SELECT id FROM runs WHERE workflow = 'task-reminder' AND (input->>'task_id')::bigint = $1 ORDER BY created_at",
    )
    .bind(task)
    .fetch_all(&flow.db.pool)
    .await
    .expect("read reminder runs")
}

/// Waits until task `task` has `n` reminder runs and returns the newest, once it waits.
async fn nth_run_waiting(flow: &Flow, task: i64, n: usize) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let runs = reminder_runs(flow, task).await;
        if runs.len() >= n {
            return flow.wait_status(runs[n - 1], "waiting", WAIT).await;
        }
        assert!(tokio::time::Instant::now() < deadline, "task {task} has {} reminder runs, not {n}", runs.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn new_task(flow: &Flow, title: &str, assignee: i64, due: DateTime<Utc>) -> i64 {
    let (status, task) =
        flow.post("/api/tasks", json!({"title": title, "assignee_id": assignee, "due_at": due.to_rfc3339()})).await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    task["id"].as_i64().expect("task id")
}

fn id(message: &crm_testing::Call) -> i64 {
    message.message_id().expect("a delivered message")
}

fn wake_time(run: &Value) -> DateTime<Utc> {
    run["waiting_for"][0]["until"].as_str().and_then(|t| t.parse().ok()).unwrap_or_else(|| panic!("{run}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_task_reminds_its_assignee_once_in_their_zone_with_done_and_snooze() {
    let mut flow = Flow::start_with_test_clock("reminders").await;
    flow.deploy("task-reminder");
    flow.start_worker(2);
    let kenji = TgUser::new(7401, "Kenji");
    let user = crm_testing::users::linked(&flow.db, "Kenji", Role::Manager, kenji.id, Some("Asia/Tokyo")).await;
    let bot = ChatBot::start("7400:local-test-token", &flow.url, &flow.bot_token).await;
    let saved = bot.say(&kenji, "/settings remind 10").await;
    assert!(saved.text().contains("10 min before"), "{}", saved.text());

    // Due in 11 minutes: the reminder is planned 10 minutes before, and the run waits as a
    // row, not in a worker.
    let due = Utc::now() + chrono::Duration::minutes(11);
    let task = new_task(&flow, "Call the Osaka office", user.id, due).await;
    let first = nth_run_waiting(&flow, task, 1).await;
    let planned = wake_time(&first);
    assert!((planned - (due - chrono::Duration::minutes(10))).num_seconds().abs() <= 1, "{first}");
    assert_eq!(flow.jobs_in_progress().await, 0);

    let since = bot.api.seq();
    flow.advance_clock("2m").await;
    let reminder = bot.message(since, kenji.id, "Reminder: Call the Osaka office").await;
    let tokyo_due = due.with_timezone(&chrono_tz::Asia::Tokyo).format("%Y-%m-%d %H:%M").to_string();
    assert!(reminder.text().contains(&format!("Due {tokyo_due}")), "{}", reminder.text());
    let labels: Vec<String> = reminder.buttons().into_iter().map(|(l, _)| l).collect();
    assert_eq!(labels, ["✅ Done", "⏰ Snooze 1 h"]);
    flow.wait_status(reminder_runs(&flow, task).await[0], "succeeded", WAIT).await;

    // Snooze: the message keeps what was pressed, and a new reminder is planned an hour on.
    let notice = bot.press(&kenji, id(&reminder), &button(&reminder, "⏰ Snooze 1 h")).await;
    assert!(notice.contains("Snooze"), "{notice}");
    let edited = bot
        .api
        .wait_for(since, WAIT, |c| c.method == "editMessageText" && c.message_id() == reminder.message_id())
        .await
        .expect("the reminder was never edited");
    assert!(edited.text().contains("Reminder") && edited.text().contains("→ ⏰ Snooze 1 h"), "{}", edited.text());
    assert!(edited.buttons().is_empty());
    let again = bot.press(&kenji, id(&reminder), &button(&reminder, "⏰ Snooze 1 h")).await;
    assert!(again.contains("→ ⏰ Snooze 1 h"), "a second press only says what the first did: {again}");
    let second = nth_run_waiting(&flow, task, 2).await;
    let in_an_hour = wake_time(&second) - Utc::now();
    assert!((55..=61).contains(&in_an_hour.num_minutes()), "{second}");
    assert_eq!(reminder_runs(&flow, task).await.len(), 2, "one press, one snooze");

    let since = bot.api.seq();
    flow.advance_clock("61m").await;
    let reminded_again = bot.message(since, kenji.id, "Reminder: Call the Osaka office").await;
    let notice = bot.press(&kenji, id(&reminded_again), &button(&reminded_again, "✅ Done")).await;
    assert!(notice.contains("Done: Call the Osaka office"), "{notice}");
    let (_, t) = flow.get(&format!("/api/tasks/{task}")).await;
    assert_eq!(t["done"], true, "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_task_is_reminded_at_its_new_time_only_and_a_done_one_not_at_all() {
    let mut flow = Flow::start_with_test_clock("reminders_moved").await;
    flow.deploy("task-reminder");
    flow.start_worker(2);
    let ann = TgUser::new(7402, "Ann");
    let user = crm_testing::users::linked(&flow.db, "Ann", Role::Manager, ann.id, None).await;
    let bot = ChatBot::start("7403:local-test-token", &flow.url, &flow.bot_token).await;
    bot.say(&ann, "/help").await;

    let due = Utc::now() + chrono::Duration::hours(2);
    let moved = new_task(&flow, "Send the quote", user.id, due).await;
    let finished = new_task(&flow, "Book the venue", user.id, due).await;
    nth_run_waiting(&flow, moved, 1).await;
    nth_run_waiting(&flow, finished, 1).await;
    let later = due + chrono::Duration::hours(1);
    let (status, body) = crm_testing::send(
        flow.request(Method::PATCH, &format!("/api/tasks/{moved}")).json(&json!({"due_at": later.to_rfc3339()})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    nth_run_waiting(&flow, moved, 2).await;
    let (status, body) = flow.post(&format!("/api/tasks/{finished}/complete"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // At the old due time both old reminders wake and stay silent.
    let since = bot.api.seq();
    flow.advance_clock("2h").await;
    let old = reminder_runs(&flow, moved).await[0];
    let run = flow.wait_status(old, "succeeded", WAIT).await;
    let remind = run["steps"].as_array().and_then(|s| s.iter().find(|s| s["step"] == "remind")).cloned().unwrap();
    assert_eq!(remind["output"]["sent"], false, "{run}");
    flow.wait_status(reminder_runs(&flow, finished).await[0], "succeeded", WAIT).await;
    // At the new one, one reminder.
    flow.advance_clock("1h").await;
    let reminder = bot.message(since, ann.id, "Reminder: Send the quote").await;
    assert!(reminder.text().contains(&later.format("%Y-%m-%d %H:%M").to_string()), "{}", reminder.text());
    let sent: Vec<String> = bot
        .api
        .calls()
        .into_iter()
        .filter(|c| c.seq > since && c.method == "sendMessage" && c.is_reply_to(ann.id))
        .map(|c| c.text().to_string())
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
}
