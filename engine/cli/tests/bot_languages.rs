//! The bot's languages, end to end: the real `crm bot` against the loopback Bot API server
//! and a real engine. The bot writes in the language of the person's setting, else of their
//! Telegram app (`language_code`), else in English; it speaks English and Russian. The
//! setting is changed with `/settings language`, `PATCH /api/me/settings` or `crm user
//! settings --language`, and `auto` (or `null`) follows the Telegram app again.

use crm_concepts::user::Role;
use crm_testing::bot::{ChatBot, button};
use crm_testing::{TestStack, TgUser, send};
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
    let (status, anna) =
        stack.post("/api/contacts", json!({"name": "Анна Петрова", "email": "anna@example.com"})).await;
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
    let refused = bot.say(&ivan, "/frobnicate").await;
    assert_eq!(refused.text(), "Неизвестная команда /frobnicate. Отправьте /help, чтобы увидеть список.");
    let settings = bot.say(&ivan, "/settings").await;
    assert!(settings.text().contains("🌐 Язык: русский (язык вашего приложения Telegram)"), "{}", settings.text());

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
