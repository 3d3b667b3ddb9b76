//! The bot's languages, end to end: the real `crm bot` against the loopback Bot API server
//! and a real engine. The bot writes in the language of the person's setting, else of their
//! Telegram app (`language_code`), else in English; it speaks English and Russian. The
//! setting is changed with `/settings language`, `PATCH /api/me/settings` or `crm user
//! settings --language`, and `auto` (or `null`) follows the Telegram app again. What the bot
//! writes unasked (an approval's request and outcome, a run's status line) follows the same
//! rule, and so does what a press of a workflow's button under its message did; the
//! workflow's own words stay as written.

use std::time::Duration;

use crm_concepts::user::Role;
use crm_testing::bot::{ChatBot, button};
use crm_testing::manifests::DISCOUNT;
use crm_testing::{Call, Flow, TestStack, TgUser, send};
use reqwest::{Method, StatusCode};
use serde_json::json;

const TOKEN: &str = "9500:local-test-token";

/// The description the command menu for `language_code` (`None`: the default menu) gives
/// command `name`.
fn menu_description(bot: &ChatBot, language_code: Option<&str>, name: &str) -> String {
    let call = bot
        .api
        .calls()
        .into_iter()
        .rfind(|c| c.method == "setMyCommands" && c.params["language_code"].as_str() == language_code)
        .unwrap_or_else(|| panic!("no command menu for {language_code:?}"));
    let commands = match &call.params["commands"] {
        serde_json::Value::String(s) => serde_json::from_str(s).expect("commands JSON"),
        v => v.clone(),
    };
    let found = commands.as_array().expect("commands").iter().find(|c| c["command"] == name).cloned();
    found.unwrap_or_else(|| panic!("no /{name} in {commands}"))["description"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_russian_speaking_user_gets_russian_texts_until_they_choose_english() {
    let stack = TestStack::start("bot_languages").await;
    for body in [
        json!({"kind": "contact", "key": "seats", "label": "Seats", "type": "number"}),
        json!({"kind": "contact", "key": "vip", "label": "VIP", "type": "yes_no"}),
    ] {
        let (status, field) = stack.post("/api/fields", body).await;
        assert_eq!(status, StatusCode::CREATED, "{field}");
    }
    let (status, anna) = stack
        .post("/api/contacts", json!({"name": "Анна Петрова", "email": "anna@example.com", "custom": {"vip": true}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{anna}");
    let ivan = TgUser::new(9501, "Иван").speaking("ru");
    let user = crm_testing::users::linked(&stack.db, "Иван", Role::Manager, ivan.id, None).await;
    assert_eq!(user.language, None, "no setting: the bot follows the Telegram app");
    let ann = TgUser::new(9502, "Ann");
    crm_testing::users::linked(&stack.db, "Ann", Role::Manager, ann.id, None).await;
    let bot = ChatBot::start(TOKEN, &stack.url, &stack.bot_token).await;

    // /help, a list, a card and its buttons, in Russian.
    let help = bot.say(&ivan, "/help").await;
    assert!(help.text().starts_with("Команды:"), "{}", help.text());
    assert!(help.text().contains("/find TEXT — Поиск контактов, компаний и сделок"), "{}", help.text());
    let list = bot.say(&ivan, "/contacts").await;
    assert!(list.text().contains("Новые контакты (нажмите, чтобы открыть)"), "{}", list.text());
    let card = bot.press_for_reply(&ivan, list.message_id().expect("list"), &button(&list, "Анна Петрова")).await;
    assert!(card.text().contains(&format!("контакт #{}", anna["id"])), "{}", card.text());
    assert!(card.buttons().iter().any(|(label, _)| label == "📝 Заметка"), "{:?}", card.buttons());
    assert!(card.text().contains("▫️ VIP: Да"), "a yes/no field reads in Russian: {}", card.text());
    // A custom field's value that does not fit is refused in Russian; the label stays as written.
    let fields = bot.press_for_reply(&ivan, &card, &button(&card, "Изменить")).await;
    bot.press_for_reply(&ivan, &fields, &button(&fields, "Seats")).await;
    let refused = bot.say(&ivan, "много").await;
    assert_eq!(refused.text(), "Поле «Seats» — число, например 42 или 3,5.");
    bot.say(&ivan, "/cancel").await;
    let refused = bot.say(&ivan, "/frobnicate").await;
    assert_eq!(refused.text(), "Неизвестная команда /frobnicate. Отправьте /help, чтобы увидеть список.");
    let settings = bot.say(&ivan, "/settings").await;
    assert!(settings.text().contains("🌐 Язык: русский (язык вашего приложения Telegram)"), "{}", settings.text());
    // An amount the CRM cannot read is refused in Russian too, the currency code as typed.
    bot.say(&ivan, "/adddeal").await;
    bot.say(&ivan, "Поставка в Осаку").await;
    let refused = bot.say(&ivan, "1500,5 JPY").await;
    assert_eq!(refused.text(), "У JPY нет дробных единиц: введите целую сумму.");
    let refused = bot.say(&ivan, "1,5055 KWD").await;
    assert_eq!(refused.text(), "У KWD не больше 3 знаков после запятой.");
    bot.say(&ivan, "/cancel").await;

    // Someone whose app is in English is unaffected.
    let help = bot.say(&ann, "/help").await;
    assert!(help.text().starts_with("Commands:"), "{}", help.text());
    assert!(help.text().contains("/find TEXT — Search contacts, companies and deals"), "{}", help.text());
    let list = bot.say(&ann, "/contacts").await;
    assert!(list.text().contains("Newest contacts (tap to open)"), "{}", list.text());

    // Choosing English: saved, answered in English at once, and kept.
    let saved = bot.say(&ivan, "/settings language en").await;
    assert!(saved.text().starts_with("✅ Saved.") && saved.text().contains("🌐 Language: English"), "{}", saved.text());
    let help = bot.say(&ivan, "/help").await;
    assert!(help.text().starts_with("Commands:"), "{}", help.text());
    let (_, users) = stack.get("/api/users?limit=100").await;
    let stored = users["items"].as_array().expect("users").iter().find(|u| u["id"] == user.id).cloned();
    assert_eq!(stored.expect("Иван")["language"], "en");

    // A language the bot does not speak is refused; `auto` follows the app again.
    let refused = bot.say(&ivan, "/settings language fr").await;
    assert!(refused.text().contains("en (English) and ru (Russian)"), "{}", refused.text());
    let saved = bot.say(&ivan, "/settings language auto").await;
    assert!(saved.text().starts_with("✅ Сохранено."), "{}", saved.text());

    // The command menu: English for every app language, Russian for Russian apps.
    assert_eq!(menu_description(&bot, None, "help"), "List the commands");
    assert_eq!(menu_description(&bot, Some("ru"), "help"), "Список команд");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_in_a_language_the_bot_does_not_speak_gets_english() {
    let stack = TestStack::start("bot_languages_other").await;
    let hans = TgUser::new(9511, "Hans").speaking("de");
    crm_testing::users::linked(&stack.db, "Hans", Role::Viewer, hans.id, None).await;
    let bot = ChatBot::start(TOKEN, &stack.url, &stack.bot_token).await;
    let help = bot.say(&hans, "/help").await;
    assert!(help.text().starts_with("Commands:"), "{}", help.text());

    // A setting wins over the app's language.
    let saved = bot.say(&hans, "/settings language ru").await;
    assert!(saved.text().starts_with("✅ Сохранено.") && saved.text().contains("🌐 Язык: русский"), "{}", saved.text());
    let tasks = bot.say(&hans, "/tasks").await;
    assert!(tasks.text().contains("У вас нет открытых задач"), "{}", tasks.text());
}

#[tokio::test]
async fn the_language_is_a_setting_of_the_api_and_the_cli() {
    let stack = TestStack::start("languages_api").await;
    let settings = |body: serde_json::Value| {
        send(stack.request_as(&stack.viewer_token, Method::PATCH, "/api/me/settings").json(&body))
    };
    let (_, me) = send(stack.request_as(&stack.viewer_token, Method::GET, "/api/me")).await;
    assert_eq!(me["language"], serde_json::Value::Null, "{me}");
    let (status, me) = settings(json!({"language": "ru"})).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["language"], "ru");
    // Leaving it out keeps it; `null` clears it.
    let (_, me) = settings(json!({"remind_before_minutes": 5})).await;
    assert_eq!(me["language"], "ru");
    let (status, body) = settings(json!({"language": "fr"})).await;
    assert!(status.is_client_error(), "{status} {body}");
    let (_, me) = settings(json!({"language": null})).await;
    assert_eq!(me["language"], serde_json::Value::Null, "{me}");

    let id = stack.manager_id.to_string();
    let out = stack.command(&["user", "settings", "--user", &id, "--language", "ru"]).output().expect("crm");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("language ru"), "{}", String::from_utf8_lossy(&out.stdout));
    let out = stack.command(&["user", "settings", "--user", &id, "--language", "auto"]).output().expect("crm");
    assert!(String::from_utf8_lossy(&out.stdout).contains("language auto"), "{}", String::from_utf8_lossy(&out.stdout));
    let out = stack.command(&["user", "settings", "--user", &id, "--language", "klingon"]).output().expect("crm");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expected en or ru"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Workflows without a result template of their own: the bot writes their status line.
const HELLO: &str = r#"
name = "hello"
version = "1"

[[triggers]]
kind = "bot_command"
command = "hello"
description = "Succeeds"

[[steps]]
id = "greet"
component = "fixture-echo"
"#;

const BROKEN: &str = r#"
name = "broken"
version = "1"

[[triggers]]
kind = "bot_command"
command = "broken"
description = "Fails"

[[steps]]
id = "boom"
component = "fixture-panic"
retry = { max_attempts = 1 }
"#;

fn labels(message: &Call) -> Vec<String> {
    message.buttons().into_iter().map(|(label, _)| label).collect()
}

/// Runs a workflow command as `from` and returns the edit its "running" message becomes.
async fn run_from_chat(bot: &ChatBot, from: &TgUser, command: &str, running: &str, needle: &str) -> Call {
    let started = bot.say(from, command).await;
    assert!(started.text().starts_with(running), "{}", started.text());
    let edit = bot
        .api
        .wait_for(started.seq, Duration::from_secs(60), |c| {
            c.method == "editMessageText" && c.message_id() == started.message_id() && c.text().contains(needle)
        })
        .await;
    edit.unwrap_or_else(|e| panic!("{command} never became {needle:?}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_and_run_results_reach_each_person_in_their_language() {
    let mut flow = Flow::start("bot_languages_unasked").await;
    flow.deploy_manifest(DISCOUNT);
    flow.deploy_manifest(HELLO);
    flow.deploy_manifest(BROKEN);
    flow.start_worker(2);
    // Ivan chose Russian (his app says nothing); Anna's app is Russian; Ann's is English.
    let ivan = TgUser::new(9531, "Ivan");
    let anna = TgUser::new(9532, "Анна").speaking("ru");
    let ann = TgUser::new(9533, "Ann").speaking("en");
    for (who, name) in [(&ivan, "Иван Петров"), (&anna, "Анна Смирнова"), (&ann, "Ann Lee")] {
        crm_testing::users::linked(&flow.db, name, Role::Manager, who.id, None).await;
    }
    let bot = ChatBot::start(TOKEN, &flow.url, &flow.bot_token).await;
    let saved = bot.say(&ivan, "/settings language ru").await;
    assert!(saved.text().starts_with("✅ Сохранено."), "{}", saved.text());
    bot.open_chat(&anna).await;
    bot.open_chat(&ann).await;

    // The approval's request: the bot's frame and buttons in each one's language, the
    // workflow's question as it wrote it.
    let since = bot.api.seq();
    let run = flow.start_run("discount", json!({"percent": 25, "deal_id": 7})).await;
    flow.wait_status(run, "waiting", ChatBot::WAIT).await;
    let mut asked = Vec::new();
    for who in [&ivan, &anna] {
        let m = bot.message(since, who.id, "Give 25% off deal 7?").await;
        assert!(
            m.text().starts_with("🗳 Нужно согласование (discount)\nGive 25% off deal 7?\n\nРешите до "),
            "{}",
            m.text()
        );
        assert!(m.text().ends_with("; без решения будет отклонено."), "{}", m.text());
        assert_eq!(labels(&m), ["✅ Одобрить", "❌ Отклонить"]);
        asked.push((who.id, m.message_id().expect("message id")));
    }
    let english = bot.message(since, ann.id, "Give 25% off deal 7?").await;
    assert!(
        english.text().starts_with("🗳 Approval needed (discount)\nGive 25% off deal 7?\n\nDecide by "),
        "{}",
        english.text()
    );
    assert!(english.text().ends_with("; without a decision it is rejected."), "{}", english.text());
    assert_eq!(labels(&english), ["✅ Approve", "❌ Reject"]);

    // Ann approves: every message turns into the outcome, each in its reader's language.
    let answer = bot.press(&ann, english.message_id().expect("id"), &button(&english, "Approve")).await;
    assert_eq!(answer, "✅ Approved.");
    let edit = bot.edited(ann.id, english.message_id().expect("id"), "✅ Approved by Ann Lee at ").await;
    assert!(edit.text().starts_with("🗳 Approval needed (discount)\nGive 25% off deal 7?"), "{}", edit.text());
    for (chat, message) in asked {
        let edit = bot.edited(chat, message, "✅ Одобрено: Ann Lee, ").await;
        assert!(edit.text().starts_with("🗳 Нужно согласование (discount)\nGive 25% off deal 7?"), "{}", edit.text());
    }

    // A run's status line and its Retry button.
    for who in [&ivan, &anna] {
        let done = run_from_chat(&bot, who, "/hello", "⏳ Выполняется hello", "✅").await;
        assert_eq!(done.text(), "✅ Сценарий hello выполнен.");
        let failed = run_from_chat(&bot, who, "/broken", "⏳ Выполняется broken", "❌").await;
        assert!(failed.text().starts_with("❌ Сценарий broken не выполнен на шаге boom: "), "{}", failed.text());
        assert_eq!(labels(&failed), ["🔁 Повторить с шага, где была ошибка"]);
    }
    let done = run_from_chat(&bot, &ann, "/hello", "⏳ Running hello", "✅").await;
    assert_eq!(done.text(), "✅ hello finished.");
    let failed = run_from_chat(&bot, &ann, "/broken", "⏳ Running broken", "❌").await;
    assert!(failed.text().starts_with("❌ broken failed at step boom: "), "{}", failed.text());
    assert_eq!(labels(&failed), ["🔁 Retry from the failed step"]);

    // The run's own record keeps the English default for the API and the web app.
    let (_, runs) = flow.get("/api/runs?workflow=hello&limit=10").await;
    let runs = runs["items"].as_array().expect("runs").clone();
    assert_eq!(runs.len(), 3, "{runs:?}");
    for r in runs {
        let (_, detail) = flow.get(&format!("/api/runs/{}", r["id"].as_str().expect("run id"))).await;
        assert_eq!(detail["rendered"], "✅ hello finished.", "{detail}");
    }
}

/// Waits until task `task` has its first reminder run and it waits for the reminder time.
async fn reminder_waiting(flow: &Flow, task: i64) -> uuid::Uuid {
    let deadline = tokio::time::Instant::now() + ChatBot::WAIT;
    loop {
        let run: Option<uuid::Uuid> = sqlx::query_scalar(
            "SELECT id FROM runs WHERE workflow = 'task-reminder' AND (input->>'task_id')::bigint = $1",
        )
        .bind(task)
        .fetch_optional(&flow.db.pool)
        .await
        .expect("read reminder runs");
        if let Some(run) = run {
            flow.wait_status(run, "waiting", ChatBot::WAIT).await;
            return run;
        }
        assert!(tokio::time::Instant::now() < deadline, "task {task} has no reminder run");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_press_of_a_workflows_button_is_told_in_the_pressers_language() {
    let mut flow = Flow::start_with_test_clock("bot_languages_press").await;
    flow.deploy("task-reminder");
    flow.start_worker(2);
    let olga = TgUser::new(9541, "Ольга").speaking("ru");
    let user = crm_testing::users::linked(&flow.db, "Ольга", Role::Manager, olga.id, None).await;
    let bot = ChatBot::start(TOKEN, &flow.url, &flow.bot_token).await;
    let saved = bot.say(&olga, "/settings remind 10").await;
    assert!(saved.text().starts_with("✅ Сохранено."), "{}", saved.text());

    let due = chrono::Utc::now() + chrono::Duration::minutes(11);
    let (status, task) = flow
        .post(
            "/api/tasks",
            json!({"title": "Позвонить в офис в Осаке", "assignee_id": user.id, "due_at": due.to_rfc3339()}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    let task = task["id"].as_i64().expect("task id");
    let run = reminder_waiting(&flow, task).await;
    let since = bot.api.seq();
    flow.advance_clock("2m").await;
    // The reminder is the workflow's words, its buttons' labels too: as it wrote them.
    let reminder = bot.message(since, olga.id, "Позвонить в офис в Осаке").await;
    flow.wait_status(run, "succeeded", ChatBot::WAIT).await;
    let message = reminder.message_id().expect("a delivered reminder");

    // What the press did is the bot's words: in Russian, in the answer and under the message.
    let notice = bot.press(&olga, message, &button(&reminder, "✅ Done")).await;
    assert_eq!(notice, "✅ Готово: Позвонить в офис в Осаке");
    let edited = bot.edited(olga.id, message, "Готово").await;
    assert!(edited.text().ends_with("\n\n✅ Готово: Позвонить в офис в Осаке"), "{}", edited.text());
    assert!(edited.buttons().is_empty(), "{:?}", edited.buttons());
    // A second press is told what the first did, in Russian too.
    let again = bot.press(&olga, message, &button(&reminder, "⏰ Snooze 1 h")).await;
    assert_eq!(again, "✅ Готово: Позвонить в офис в Осаке");
    let (_, t) = flow.get(&format!("/api/tasks/{task}")).await;
    assert_eq!(t["done"], true, "{t}");

    // The API keeps the English, and the outcome as data.
    let (_, n) = flow.get(&format!("/api/notifications?user_id={}", user.id)).await;
    let n = n["items"].as_array().and_then(|items| items.first()).cloned().expect("the reminder");
    assert_eq!(n["pressed"], "✅ Done: Позвонить в офис в Осаке", "{n}");
    assert_eq!(n["press_outcome"], json!({"kind": "task_done", "title": "Позвонить в офис в Осаке"}), "{n}");
}
