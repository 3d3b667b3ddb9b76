//! Workflow notifications reach Telegram: the real `crm bot` against the loopback Bot API
//! server (`crm_testing::bot_api`), a real engine and worker (`crm_testing::flow`), and the example
//! automations deployed with `crm workflow deploy`. The tests check the chat, and the
//! delivery status the engine keeps for each notification.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use crm_concepts::records::Actor;
use crm_concepts::user::{NewUser, Role};
use crm_testing::bot::ChatBot;
use crm_testing::{Call, Flow, TgUser};
use reqwest::StatusCode;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "4343:local-test-token";

/// What the bot wrote in `chat` so far.
fn texts(bot: &ChatBot, chat: i64) -> Vec<String> {
    bot.replies_to(chat).iter().map(|c| c.text().to_string()).collect()
}

/// A CRM manager linked to Telegram account `telegram` (or to none).
async fn person(flow: &Flow, name: &str, telegram: Option<i64>) -> i64 {
    crm_store::users::create(
        &flow.db,
        &Actor::system(),
        NewUser { name: name.into(), email: None, role: Role::Manager, telegram_user_id: telegram, time_zone: None },
    )
    .await
    .expect("create user")
    .id
}

async fn create(flow: &Flow, path: &str, body: Value) -> Value {
    let (status, v) = flow.post(path, body).await;
    assert_eq!(status, StatusCode::CREATED, "{path}: {v}");
    v
}

async fn stage(flow: &Flow, kind: &str) -> i64 {
    let (_, pipelines) = flow.get("/api/pipelines").await;
    pipelines["items"][0]["stages"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["kind"] == kind))
        .and_then(|s| s["id"].as_i64())
        .expect("stage of that kind")
}

/// A deal owned by `owner`, moved to the won stage.
async fn win_deal(flow: &Flow, title: &str, owner: i64, company: &Value) -> Value {
    let deal = create(
        flow,
        "/api/deals",
        json!({"title": title, "amount_minor": 1_250_000, "pipeline_id": 1, "stage_id": stage(flow, "open").await,
               "owner_id": owner, "company_id": company["id"]}),
    )
    .await;
    let (status, body) =
        flow.post(&format!("/api/deals/{}/move", deal["id"]), json!({"stage_id": stage(flow, "won").await})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    deal
}

/// The user's notifications (newest first) once none is pending any more.
async fn settled_notifications(flow: &Flow, user: i64, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, page) = flow.get(&format!("/api/notifications?user_id={user}")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().cloned().unwrap_or_default();
        if items.len() >= count && items.iter().all(|n| n["status"] != "pending") {
            assert_eq!(items.len(), count, "{items:?}");
            return items;
        }
        assert!(Instant::now() < deadline, "notifications of user {user} still pending: {items:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_won_deal_congratulates_its_owner_in_their_telegram_chat() {
    let mut flow = Flow::start("botn_won").await;
    flow.deploy("celebrate-won-deal");
    flow.start_worker(4);
    let olga = TgUser::new(5001, "Olga");
    let owner = person(&flow, "Olga Owner", Some(olga.id)).await;
    let offline = person(&flow, "Otto Offline", None).await;
    let silent = person(&flow, "Nick Neverwrote", Some(5002)).await;
    let bot = ChatBot::start(TOKEN, &flow.url, &flow.bot_token).await;
    bot.open_chat(&olga).await;

    let acme = create(&flow, "/api/companies", json!({"name": "Acme GmbH"})).await;
    win_deal(&flow, "Acme rollout", owner, &acme).await;
    let message = bot.reply_with(0, olga.id, "Deal won: Acme rollout").await;
    assert!(message.text().contains("$12,500.00") && message.text().contains("Acme GmbH"), "{}", message.text());

    let olgas = settled_notifications(&flow, owner, 1).await;
    assert_eq!(olgas[0]["status"], "delivered", "{olgas:?}");
    assert_eq!(olgas[0]["workflow"], "celebrate-won-deal");
    assert_eq!(olgas[0]["telegram_user_id"], olga.id);
    assert!(olgas[0]["delivered_at"].is_string(), "{olgas:?}");

    // An owner without a linked Telegram account: nothing is sent, and the API says why.
    win_deal(&flow, "Offline deal", offline, &acme).await;
    let ottos = settled_notifications(&flow, offline, 1).await;
    assert_eq!(ottos[0]["status"], "undeliverable", "{ottos:?}");
    let reason = ottos[0]["undeliverable_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("no linked Telegram account"), "{reason}");

    // Linked, but never wrote to the bot: Telegram refuses the chat, and that is the reason.
    win_deal(&flow, "Silent deal", silent, &acme).await;
    let nicks = settled_notifications(&flow, silent, 1).await;
    assert_eq!(nicks[0]["status"], "undeliverable", "{nicks:?}");
    let reason = nicks[0]["undeliverable_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("Telegram refused") && reason.contains("chat not found"), "{reason}");

    let (status, undeliverable) = flow.get("/api/notifications?status=undeliverable").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(undeliverable["items"].as_array().map(Vec::len), Some(2), "{undeliverable}");

    // Exactly one congratulation reached Olga, and no other chat got anything.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let olgas_chat = texts(&bot, olga.id);
    assert_eq!(olgas_chat.iter().filter(|t| t.contains("Deal won")).count(), 1, "{olgas_chat:?}");
    let delivered: Vec<Call> =
        bot.api.calls().into_iter().filter(|c| c.method == "sendMessage" && c.result.is_some()).collect();
    assert!(delivered.iter().all(|c| c.chat_id() == Some(olga.id)), "{delivered:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_left_while_the_bot_is_down_arrive_once_it_starts_and_are_not_repeated() {
    let flow = Flow::start("botn_down").await;
    let pia = TgUser::new(5101, "Pia");
    let user = person(&flow, "Pia Patel", Some(pia.id)).await;
    let note = |text: &'static str| {
        let db = flow.db.clone();
        async move {
            crm_store::notifications::add(&db, user, text, crm_store::notifications::Origin::default())
                .await
                .expect("add notification")
        }
    };
    let mut bot = ChatBot::start(TOKEN, &flow.url, &flow.bot_token).await;
    bot.open_chat(&pia).await;
    note("First: while the bot runs").await;
    bot.reply_with(0, pia.id, "First: while the bot runs").await;
    assert_eq!(settled_notifications(&flow, user, 1).await[0]["status"], "delivered");

    bot.kill();
    note("Second: while the bot is down").await;
    note("Third: still down").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, pending) = flow.get("/api/notifications?status=pending").await;
    assert_eq!(pending["items"].as_array().map(Vec::len), Some(2), "{pending}");

    bot.restart().await;
    bot.reply_with(0, pia.id, "Third: still down").await;
    let all = settled_notifications(&flow, user, 3).await;
    assert!(all.iter().all(|n| n["status"] == "delivered"), "{all:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // In the order they were left, each once: the first is not sent again after the restart.
    let chat: Vec<String> = texts(&bot, pia.id).into_iter().filter(|t| !t.starts_with("Commands:")).collect();
    assert_eq!(chat, ["First: while the bot runs", "Second: while the bot is down", "Third: still down"]);

    // Only the bot's admin token may report deliveries.
    let id = all[0]["id"].as_i64().expect("id");
    let (_, viewer_token) = {
        let viewer = person(&flow, "Vic Viewer", None).await;
        crm_store::tokens::create(&flow.db, viewer, "test").await.expect("token")
    };
    let refused = crm_testing::send(
        flow.client.post(format!("{}/api/notifications/{id}/delivered", flow.url)).bearer_auth(&viewer_token),
    )
    .await;
    assert_eq!(refused.0, StatusCode::FORBIDDEN);
    let (status, _) = flow.post("/api/notifications/999999/delivered", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = flow.get("/api/notifications?status=lost").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // A report after the fact changes nothing: delivered stays delivered.
    let (status, again) = flow.post(&format!("/api/notifications/{id}/undeliverable"), json!({"reason": "late"})).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["status"], "delivered", "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_shows_a_deployed_cron_workflow_and_its_next_fire_time() {
    let flow = Flow::start("botn_sched").await;
    flow.deploy("stale-deals-digest");
    let sam = TgUser::new(5201, "Sam");
    person(&flow, "Sam Seller", Some(sam.id)).await;

    // The engine picks up the deployed schedule within a moment.
    let deadline = Instant::now() + WAIT;
    let next = loop {
        let (status, body) = flow.get("/api/schedules").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if let Some(t) = body["items"][0]["next_fire_times"][0].as_str() {
            break t.parse::<DateTime<Utc>>().expect("fire time");
        }
        assert!(Instant::now() < deadline, "no schedule listed: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let bot = ChatBot::start(TOKEN, &flow.url, &flow.bot_token).await;
    let commands = bot.api.wait_for(0, WAIT, |c| c.method == "setMyCommands").await.expect("setMyCommands");
    assert!(commands.params.to_string().contains("\"schedules\""), "{}", commands.params);
    let reply = bot.say(&sam, "/schedules").await;
    let text = reply.text();
    assert!(text.contains("stale-deals-digest — 0 0 9 * * * (UTC)"), "{text}");
    assert!(text.contains(&format!("next: {}", next.format("%Y-%m-%d %H:%M:%S"))), "{text}");
    assert_eq!(next.format("%H:%M:%S").to_string(), "09:00:00");

    let help = bot.say(&sam, "/help").await;
    assert!(help.text().contains("/schedules — "), "{}", help.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_morning_digest_of_stale_deals_reaches_each_owners_chat() {
    let mut flow = Flow::start("botn_digest").await;
    let (olga, pete) = (TgUser::new(5301, "Olga"), TgUser::new(5302, "Pete"));
    let olga_id = person(&flow, "Olga Owner", Some(olga.id)).await;
    let pete_id = person(&flow, "Pete Owner", Some(pete.id)).await;
    let open = stage(&flow, "open").await;
    for (title, owner) in
        [("Old Acme deal", olga_id), ("Stuck Initech deal", pete_id), ("Fresh Umbrella deal", pete_id)]
    {
        create(&flow, "/api/deals", json!({"title": title, "pipeline_id": 1, "stage_id": open, "owner_id": owner}))
            .await;
    }
    sqlx::query("UPDATE deals SET stage_changed_at = now() - interval '20 days' WHERE title <> 'Fresh Umbrella deal'")
        .execute(&flow.db.pool)
        .await
        .expect("age the deals");
    let bot = ChatBot::start(TOKEN, &flow.url, &flow.bot_token).await;
    bot.open_chat(&olga).await;
    bot.open_chat(&pete).await;

    flow.deploy("stale-deals-digest");
    flow.start_worker(4);
    // Once the engine has the schedule, let it believe it last fired just before this
    // morning's 09:00, so that tick is due now.
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, body) = flow.get("/api/schedules").await;
        if body["items"].as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        assert!(Instant::now() < deadline, "the schedule never appeared: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let now = Utc::now();
    let mut morning = now.date_naive().and_hms_opt(9, 0, 0).expect("09:00").and_utc();
    if morning > now {
        morning -= chrono::Duration::days(1);
    }
    sqlx::query("UPDATE trigger_schedules SET last_tick_at = $1")
        .bind(morning - chrono::Duration::minutes(1))
        .execute(&flow.db.pool)
        .await
        .expect("backdate the schedule");

    let to_olga = bot.reply_with(0, olga.id, "of your deals").await;
    assert!(to_olga.text().contains("Old Acme deal"), "{}", to_olga.text());
    let to_pete = bot.reply_with(0, pete.id, "of your deals").await;
    assert!(
        to_pete.text().contains("Stuck Initech deal") && !to_pete.text().contains("Fresh Umbrella"),
        "{}",
        to_pete.text()
    );
    for user in [olga_id, pete_id] {
        assert_eq!(settled_notifications(&flow, user, 1).await[0]["status"], "delivered");
    }
}
