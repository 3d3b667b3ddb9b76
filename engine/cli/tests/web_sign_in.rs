//! Signing in to the web app in a real browser (headless Chromium over WebDriver) against
//! a real `crm serve`: a one-time link from the bot (used twice: refused), a pasted API
//! token, the Telegram Mini App's signed `initData`, signing out and session expiry.

use std::time::Duration;

use crm_concepts::records::Actor;
use crm_concepts::user::{NewUser, Role};
use crm_testing::process::{Process, crm, rust_log};
use crm_testing::{Browser, LocalBotApi, Options, TestStack, TgUser};
use reqwest::StatusCode;

const BOT_TOKEN: &str = "4242:local-test-token";
const WAIT: Duration = Duration::from_secs(20);

/// The engine knows the bot token: it verifies Mini App sign-ins with it.
async fn stack(purpose: &str) -> TestStack {
    TestStack::start_with(
        purpose,
        Options { env: vec![("CRM_BOT_TOKEN".into(), BOT_TOKEN.into())], ..Options::default() },
    )
    .await
}

async fn linked_user(stack: &TestStack, telegram_id: i64, name: &str, role: Role) -> i64 {
    crm_store::users::create(
        &stack.db,
        &Actor::system(),
        NewUser { name: name.into(), email: None, role, telegram_user_id: Some(telegram_id), time_zone: None },
    )
    .await
    .expect("create a linked user")
    .id
}

fn start_bot(api: &LocalBotApi, stack: &TestStack, data: &std::path::Path) -> Process {
    let mut cmd = crm();
    crm_testing::bot::configure(&mut cmd, api, &stack.url, &stack.admin_token, data)
        .env("CRM_BOT_POLL_TIMEOUT_SECS", "10")
        .env("RUST_LOG", rust_log("warn"));
    Process::spawn("crm bot", cmd, &data.join("bot.log")).expect("start crm bot")
}

async fn session_cookie(browser: &Browser) -> Option<fantoccini::cookies::Cookie<'static>> {
    browser.cookies().await.into_iter().find(|c| c.name() == "crm_session")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_one_time_link_from_the_bot_signs_in_once() {
    let stack = stack("web_link").await;
    let api = LocalBotApi::start(BOT_TOKEN).await.expect("local Bot API server");
    let data = tempfile::tempdir().expect("temp dir");
    let _bot = start_bot(&api, &stack, data.path());
    api.wait_for(0, WAIT, |c| c.method == "getUpdates").await.expect("the bot never polled");
    let nadia = TgUser::new(5551, "Nadia");
    let nadia_id = linked_user(&stack, nadia.id, "Nadia Novak", Role::Manager).await;

    let since = api.seq();
    api.send_text(&nadia, "/web");
    let reply = api.reply(nadia.id, since, WAIT).await.expect("the bot answers /web");
    let link = reply
        .text()
        .split_whitespace()
        .find(|w| w.starts_with(&format!("{}/sign-in/link/", stack.url)))
        .unwrap_or_else(|| panic!("no sign-in link in {:?}", reply.text()))
        .to_string();
    assert!(reply.text().contains("works once"), "{}", reply.text());

    // Opening the link (as a chat client's preview would) uses nothing up: only the button does.
    let browser = Browser::start().await;
    browser.goto(&link).await;
    browser.goto(&link).await;
    browser.find("#use-link").await.click().await.expect("press Sign in");
    browser.wait_for_text("Hello, Nadia Novak").await;
    assert_eq!(browser.path().await, "/");
    let cookie = session_cookie(&browser).await.expect("a session cookie");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(format!("{:?}", cookie.same_site()), "Some(Lax)");
    // Scripts cannot read it.
    let visible = browser.js("return document.cookie;", vec![]).await;
    assert!(!visible.as_str().unwrap_or_default().contains("crm_session"), "{visible}");
    let (sessions, via): (i64, String) =
        sqlx::query_as("SELECT count(*), min(via) FROM web_sessions WHERE user_id = $1 AND ended_at IS NULL")
            .bind(nadia_id)
            .fetch_one(&stack.db.pool)
            .await
            .expect("sessions");
    assert_eq!((sessions, via.as_str()), (1, "link"));

    // The same link a second time, in another browser: refused, no session.
    let other = Browser::start().await;
    other.goto(&link).await;
    other.find("#use-link").await.click().await.expect("press Sign in");
    other.wait_for_text("This sign-in link has expired or was already used").await;
    assert!(session_cookie(&other).await.is_none());
    other.goto(&format!("{}/contacts", stack.url)).await;
    assert!(browser_is_at_sign_in(&other).await);
    other.close().await;
    browser.close().await;
}

async fn browser_is_at_sign_in(browser: &Browser) -> bool {
    browser.path().await.starts_with("/sign-in")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_token_pasted_once_signs_in_and_signing_out_or_expiry_ends_the_session() {
    let stack = stack("web_token").await;
    let browser = Browser::start().await;

    // A wrong token: refused on the page, no session.
    browser.goto(&format!("{}/deals?status=open", stack.url)).await;
    assert!(browser_is_at_sign_in(&browser).await, "{}", browser.path().await);
    browser.find("#token").await.send_keys("crm_not-a-token").await.expect("type");
    browser.find("form[action='/sign-in/token'] button").await.click().await.expect("submit");
    browser.wait_for_text("This token is not valid").await;
    assert!(session_cookie(&browser).await.is_none());

    // The right one: signed in, and taken back to the page asked for.
    browser.find("#token").await.send_keys(&stack.manager_token).await.expect("type");
    browser.find("form[action='/sign-in/token'] button").await.click().await.expect("submit");
    browser.wait_for_text("Max Manager").await;
    assert_eq!(browser.path().await, "/deals?status=open");
    // The browser keeps a session, never the token.
    let cookies = browser.cookies().await;
    assert!(cookies.iter().all(|c| !c.value().contains(&stack.manager_token)), "{cookies:?}");
    let secret = session_cookie(&browser).await.expect("a session cookie").value().to_string();

    // Signing out ends the session in Postgres: the old cookie opens nothing any more.
    browser.find("form[action='/sign-out'] button").await.click().await.expect("sign out");
    browser.wait_for_text("Signed out.").await;
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let old = no_redirects
        .get(format!("{}/contacts", stack.url))
        .header("cookie", format!("crm_session={secret}"))
        .send()
        .await
        .expect("request");
    assert_eq!(old.status(), StatusCode::SEE_OTHER);
    assert!(old.headers()["location"].to_str().unwrap_or_default().starts_with("/sign-in"));

    // A session past its idle deadline is gone too.
    browser.sign_in_with_token(&stack.url, &stack.viewer_token).await;
    sqlx::query("UPDATE web_sessions SET expires_at = now() - interval '1 second' WHERE ended_at IS NULL")
        .execute(&stack.db.pool)
        .await
        .expect("expire the sessions");
    browser.goto(&format!("{}/tasks", stack.url)).await;
    assert!(browser_is_at_sign_in(&browser).await, "{}", browser.path().await);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_telegram_mini_app_signs_in_with_init_data_signed_by_the_bot_token() {
    let stack = stack("web_tg").await;
    let olga_id = linked_user(&stack, 7001, "Olga Orlova", Role::Viewer).await;
    let now = chrono::Utc::now().timestamp().to_string();
    let signed = |token: &str, telegram_id: i64| {
        let user = format!(r#"{{"id":{telegram_id},"first_name":"Olga","username":"olga"}}"#);
        crm_web::telegram::sign(&[("query_id", "AAE1"), ("user", &user), ("auth_date", &now)], token)
    };
    // Telegram clients open the Mini App with the signed data in the URL fragment.
    let open = |init_data: String| {
        format!("{}/tg#tgWebAppData={}&tgWebAppVersion=8.0&tgWebAppPlatform=tdesktop", stack.url, urlencode(&init_data))
    };

    let browser = Browser::start().await;
    // Signed with another bot's token: refused.
    browser.goto(&open(signed("4242:another-bot", 7001))).await;
    browser.wait_for_text("signature does not match").await;
    assert!(session_cookie(&browser).await.is_none());
    // A Telegram account nobody linked: refused. (A new document each time: a fragment
    // change alone does not load the page again.)
    browser.goto("about:blank").await;
    browser.goto(&open(signed(BOT_TOKEN, 9999))).await;
    browser.wait_for_text("not linked to a CRM user").await;
    assert!(session_cookie(&browser).await.is_none());

    // Signed in as someone else in this browser already: the Mini App signs Olga in and
    // ends that session.
    browser.sign_in_with_token(&stack.url, &stack.viewer_token).await;
    browser.goto("about:blank").await;
    browser.goto(&open(signed(BOT_TOKEN, 7001))).await;
    browser.wait_for_text("Hello, Olga Orlova").await;
    let viewer_sessions: i64 =
        sqlx::query_scalar("SELECT count(*) FROM web_sessions WHERE user_id = $1 AND ended_at IS NULL")
            .bind(stack.viewer_id)
            .fetch_one(&stack.db.pool)
            .await
            .expect("sessions");
    assert_eq!(viewer_sessions, 0);
    let via: String = sqlx::query_scalar("SELECT via FROM web_sessions WHERE user_id = $1")
        .bind(olga_id)
        .fetch_one(&stack.db.pool)
        .await
        .expect("the session");
    assert_eq!(via, "telegram");
    browser.close().await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
