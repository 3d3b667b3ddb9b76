//! People's time zones: every user has an IANA zone (the installation's `CRM_TIME_ZONE` until
//! they choose one with the bot's `/settings`, `PATCH /api/me/settings` or `crm user
//! settings`); the bot reads due times typed in it, shows times in it and counts "today" in
//! it, while instants stay UTC in the CRM.

use chrono::{DateTime, Duration, Utc};
use crm_concepts::user::Role;
use crm_testing::bot::ChatBot;
use crm_testing::{Options, TestStack, TgUser, send};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn stack_in(zone: &str, purpose: &str) -> TestStack {
    let options = Options { env: vec![("CRM_TIME_ZONE".into(), zone.into())], ..Options::default() };
    TestStack::start_with(purpose, options).await
}

#[tokio::test]
async fn new_users_get_the_installations_zone_and_each_person_may_choose_their_own() {
    let stack = stack_in("europe/berlin", "tz_settings").await;

    // Made through the API after the engine started: the configured default, spelled as the
    // zone database spells it.
    let (status, ann) = stack.post("/api/users", json!({"name": "Ann", "role": "manager"})).await;
    assert_eq!(status, StatusCode::CREATED, "{ann}");
    assert_eq!(ann["time_zone"], "Europe/Berlin");
    assert_eq!(ann["remind_before_minutes"], 0);
    let (status, tom) =
        stack.post("/api/users", json!({"name": "Tom", "role": "viewer", "time_zone": "Asia/Tokyo"})).await;
    assert_eq!(status, StatusCode::CREATED, "{tom}");
    assert_eq!(tom["time_zone"], "Asia/Tokyo");
    let (status, body) =
        stack.post("/api/users", json!({"name": "Bad", "role": "viewer", "time_zone": "Berlin"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(stack.count("SELECT count(*) FROM users WHERE name = 'Bad'").await, 0);

    // A viewer may change their own settings: they are the person's, not the CRM's.
    let settings = |token: &str, body: serde_json::Value| {
        send(stack.request_as(token, Method::PATCH, "/api/me/settings").json(&body))
    };
    let (status, me) = settings(&stack.viewer_token, json!({"time_zone": "america/new_york"})).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["time_zone"], "America/New_York");
    assert_eq!(me["id"], stack.viewer_id);
    let (status, me) = settings(&stack.viewer_token, json!({"remind_before_minutes": 30})).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!((me["time_zone"].as_str(), me["remind_before_minutes"].as_i64()), (Some("America/New_York"), Some(30)));

    // Bad values are refused with what was wrong, and change nothing.
    let (status, body) = settings(&stack.viewer_token, json!({"time_zone": "Mars/Olympus"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("Mars/Olympus") && body.to_string().contains("IANA"), "{body}");
    let (status, body) = settings(&stack.viewer_token, json!({"remind_before_minutes": 20000})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("a week"), "{body}");
    let (status, body) = settings(&stack.viewer_token, json!({"zone": "UTC"})).await;
    assert!(status.is_client_error(), "{status} {body}");
    let (_, me) = send(stack.request_as(&stack.viewer_token, Method::GET, "/api/me")).await;
    assert_eq!((me["time_zone"].as_str(), me["remind_before_minutes"].as_i64()), (Some("America/New_York"), Some(30)));

    // The operator's way, on the engine's host.
    let id = stack.manager_id.to_string();
    let out = stack
        .command(&["user", "settings", "--user", &id, "--time-zone", "Asia/Kolkata", "--remind-before", "15"])
        .output()
        .expect("crm user settings");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Asia/Kolkata") && text.contains("15 min"), "{text}");
    let out = stack.command(&["user", "settings", "--user", &id, "--time-zone", "Nowhere"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown time zone \"Nowhere\""));
    let list = stack.command(&["user", "list"]).output().expect("crm user list");
    assert!(String::from_utf8_lossy(&list.stdout).contains("Asia/Kolkata"));

    // A misspelt installation default stops every command before it does anything.
    let out = stack.command(&["user", "list"]).env("CRM_TIME_ZONE", "Europe/Berlinn").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CRM_TIME_ZONE") && err.contains("Europe/Berlinn"), "{err}");
}

/// The first second of the day after the one `now` is in, in `zone`.
fn end_of_today(zone: chrono_tz::Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    crm_concepts::local_time::day_bounds(zone, now).1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_in_tokyo_types_reads_and_counts_today_in_tokyo_time() {
    let stack = stack_in("UTC", "tz_bot").await;
    let kenji = TgUser::new(7301, "Kenji");
    let user = crm_testing::users::linked(&stack.db, "Kenji", Role::Manager, kenji.id, None).await;
    assert_eq!(user.time_zone, "UTC");
    let bot = ChatBot::start("7300:local-test-token", &stack.url, &stack.bot_token).await;

    let shown = bot.say(&kenji, "/settings").await;
    assert!(shown.text().contains("Time zone: UTC") && shown.text().contains("/settings zone"), "{}", shown.text());
    let refused = bot.say(&kenji, "/settings zone Tokio").await;
    assert!(refused.text().contains("unknown time zone"), "{}", refused.text());
    let saved = bot.say(&kenji, "/settings zone asia/tokyo").await;
    assert!(saved.text().contains("Saved") && saved.text().contains("Asia/Tokyo"), "{}", saved.text());
    let saved = bot.say(&kenji, "/settings remind 10").await;
    assert!(saved.text().contains("10 min before"), "{}", saved.text());

    // "tomorrow 09:30" is 09:30 on Tokyo's tomorrow: 00:30 UTC that day.
    let tokyo = chrono_tz::Asia::Tokyo;
    bot.say(&kenji, "/addtask").await;
    bot.say(&kenji, "Call the Osaka office").await;
    let added = bot.say(&kenji, "tomorrow 09:30").await;
    let tomorrow = crm_concepts::local_time::today(tokyo, Utc::now()) + Duration::days(1);
    assert!(
        added.text().contains(&format!("due {tomorrow} 09:30")) && !added.text().contains("UTC"),
        "{}",
        added.text()
    );
    let due: Option<DateTime<Utc>> =
        sqlx::query_scalar("SELECT due_at FROM tasks WHERE title = 'Call the Osaka office'")
            .fetch_one(&stack.db.pool)
            .await
            .unwrap();
    assert_eq!(due, Some(crm_concepts::local_time::instant(tokyo, tomorrow.and_hms_opt(9, 30, 0).unwrap())));

    // /today is Tokyo's today: a task due a minute before its end is listed, one due a minute
    // after is not (the UTC day ends 9 hours later or 15 hours earlier, so it would differ).
    let end = end_of_today(tokyo, Utc::now());
    for (title, due) in [("Inside today", end - Duration::minutes(1)), ("Just after today", end + Duration::minutes(1))]
    {
        let (status, body) =
            stack.post("/api/tasks", json!({"title": title, "assignee_id": user.id, "due_at": due.to_rfc3339()})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let today = bot.say(&kenji, "/today").await;
    assert!(today.text().contains("Inside today") && !today.text().contains("Just after today"), "{}", today.text());
    let local_end = (end - Duration::minutes(1)).with_timezone(&tokyo).format("%Y-%m-%d %H:%M").to_string();
    assert!(today.text().contains(&format!("due {local_end}")), "{}", today.text());
}
