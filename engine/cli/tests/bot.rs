//! The Telegram bot, end to end: the real `crm bot` process against a Bot-API-compatible
//! server on loopback (`crm_testing::bot_api`) and a real engine (`crm serve` on a scratch
//! database). The tests play Telegram users and check both what the chat shows and what
//! the CRM holds afterwards.

use std::time::Duration;

use crm_concepts::user::Role;
use crm_testing::bot::{ChatBot, LaunchError, button};
use crm_testing::{BotStack, Call, TestStack, TgUser, send};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);
const TOKEN: &str = "4242:local-test-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_user_gets_one_polite_refusal_and_no_data() {
    let h = BotStack::start("bot_unknown", TOKEN).await;
    let (status, _) = h.stack.post("/api/contacts", json!({"name": "Secret Sam", "email": "sam@example.com"})).await;
    assert_eq!(status, 201);
    let stranger = TgUser::new(777, "Stranger");

    let first = h.bot.say(&stranger, "/find Sam").await;
    assert!(first.text().contains("don't know you"), "{}", first.text());
    h.bot.api.send_text(&stranger, "/contacts");
    h.bot.api.send_text(&stranger, "hello?");
    h.bot.api.send_text(&stranger, "/start not-a-real-code");
    h.bot.settle().await;

    let replies = h.bot.replies_to(stranger.id);
    let texts: Vec<&str> = replies.iter().map(Call::text).collect();
    assert!(texts.iter().all(|t| !t.contains("Sam") && !t.contains("sam@")), "data leaked: {texts:?}");
    // One refusal, and one clear answer to the bad invite code.
    assert_eq!(texts.iter().filter(|t| t.contains("don't know you")).count(), 1, "{texts:?}");
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[1].contains("invite code is invalid"), "{texts:?}");

    // A button press from a stranger is answered, and reveals nothing.
    let answer = h.bot.press(&stranger, first.message_id().unwrap_or(1), "o:c:1").await;
    assert!(answer.contains("not registered"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invites_are_redeemed_once_with_start_code() {
    let h = BotStack::start("bot_invite", TOKEN).await;
    let (admin, _) = h.user(1001, "Alice Admin", Role::Admin).await;
    let (viewer, _) = h.user(1002, "Vera Viewer", Role::Viewer).await;

    let refused = h.bot.say(&viewer, "/invite manager").await;
    assert!(refused.text().contains("Only admins"), "{}", refused.text());
    let usage = h.bot.say(&admin, "/invite emperor").await;
    assert!(usage.text().contains("Usage: /invite"), "{}", usage.text());

    let invite = h.bot.say(&admin, "/invite manager").await;
    let code = invite
        .text()
        .lines()
        .find_map(|l| l.strip_prefix("/start "))
        .unwrap_or_else(|| panic!("no code in {:?}", invite.text()))
        .to_string();
    let stored: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT code_hash FROM invites").fetch_all(&h.stack.db.pool).await.expect("invites");
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], code.as_bytes(), "the code must be stored hashed");

    let newcomer = TgUser::new(2001, "Nina Newcomer");
    let welcome = h.bot.say(&newcomer, &format!("/start {code}")).await;
    assert!(welcome.text().contains("Welcome, Nina Newcomer"), "{}", welcome.text());
    assert!(welcome.text().contains("manager"), "{}", welcome.text());
    let (status, user) = h.stack.get("/api/users/by-telegram/2001").await;
    assert_eq!(status, 200);
    assert_eq!(user["role"], "manager");
    // The new user can use the CRM at once.
    let found = h.bot.say(&newcomer, "/find nobody-here").await;
    assert!(found.text().contains("Nothing found"), "{}", found.text());

    // The same code again, by someone else: refused, and no user created.
    let latecomer = TgUser::new(2002, "Larry Late");
    let again = h.bot.say(&latecomer, &format!("/start {code}")).await;
    assert!(again.text().contains("invalid, expired or already used"), "{}", again.text());
    let (status, _) = h.stack.get("/api/users/by-telegram/2002").await;
    assert_eq!(status, 404);

    // `crm user invite` makes codes too.
    let out = crm_testing::process::crm()
        .args(["user", "invite", "--role", "viewer", "--expires-in", "1h"])
        .env("CRM_DATABASE_URL", &h.stack.db_url)
        .output()
        .expect("crm user invite");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cli_code = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let welcome = h.bot.say(&latecomer, &format!("/start {cli_code}")).await;
    assert!(welcome.text().contains("you are a viewer"), "{}", welcome.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_is_added_by_dialogue_field_by_field() {
    let h = BotStack::start("bot_dialogue", TOKEN).await;
    let (max, _) = h.user(3001, "Max Manager", Role::Manager).await;
    let (status, acme) = h.stack.post("/api/companies", json!({"name": "Acme Rockets"})).await;
    assert_eq!(status, 201);

    let ask = h.bot.say(&max, "/addcontact").await;
    assert!(ask.text().contains("name"), "{}", ask.text());
    let ask = h.bot.say(&max, "  Zoë   O'Brien-שלום 😀 ").await;
    assert!(ask.text().contains("Email"), "{}", ask.text());
    let refused = h.bot.say(&max, "zoe at example").await;
    assert!(refused.text().contains("is not an email address"), "{}", refused.text());
    assert_eq!(h.stack.count("SELECT count(*) FROM contacts").await, 0, "nothing is written mid-dialogue");
    let ask = h.bot.say(&max, "zoe@example.com").await;
    assert!(ask.text().contains("Phone"), "{}", ask.text());
    let ask = h.bot.say(&max, "-").await;
    assert!(ask.text().contains("company"), "{}", ask.text());
    let done = h.bot.say(&max, "acme rockts").await;
    assert!(done.text().contains("Contact added"), "{}", done.text());

    let (status, page) = h.stack.get("/api/contacts?q=zoe").await;
    assert_eq!(status, 200);
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["name"], "Zoë O'Brien-שלום 😀");
    assert_eq!(items[0]["email"], "zoe@example.com");
    assert_eq!(items[0]["phone"], Value::Null);
    assert_eq!(items[0]["company_id"], acme["id"]);

    // /cancel leaves nothing behind.
    h.bot.say(&max, "/adddeal").await;
    h.bot.say(&max, "Half a deal").await;
    let cancelled = h.bot.say(&max, "/cancel").await;
    assert!(cancelled.text().contains("Nothing was saved"), "{}", cancelled.text());
    assert_eq!(h.stack.count("SELECT count(*) FROM deals").await, 0);
    let nothing = h.bot.say(&max, "stray text").await;
    assert!(nothing.text().contains("/help"), "{}", nothing.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deal_is_moved_between_stages_by_button() {
    let h = BotStack::start("bot_pipeline", TOKEN).await;
    let (max, _) = h.user(4001, "Max Manager", Role::Manager).await;
    let (vic, _) = h.user(4002, "Vic Viewer", Role::Viewer).await;
    let (status, deal) = h.stack.post("/api/deals", json!({"title": "Rocket fuel", "amount_minor": 250_000})).await;
    assert_eq!(status, 201, "{deal}");
    let (_, pipelines) = h.stack.get("/api/pipelines").await;
    let stages = pipelines["items"][0]["stages"].as_array().expect("stages").clone();
    let stage_id = |name: &str| stages.iter().find(|s| s["name"] == name).expect("stage")["id"].as_i64().expect("id");

    let board = h.bot.say(&max, "/pipeline").await;
    assert!(board.text().contains("Rocket fuel") && board.text().contains("2,500.00 USD"), "{}", board.text());
    let open = button(&board, "Rocket fuel");

    let since = h.bot.api.seq();
    h.bot.press(&max, board.message_id().expect("board id"), &open).await;
    let card = h.bot.api.reply(max.id, since, WAIT).await.expect("deal card");
    assert!(card.text().contains("Lead"), "{}", card.text());
    let to_qualified = button(&card, "Qualified");
    assert!(card.buttons().iter().all(|(_, data)| data.len() <= 64));

    // A viewer pressing the same button is refused and nothing moves.
    let refused = h.bot.press(&vic, card.message_id().expect("card id"), &to_qualified).await;
    assert!(refused.contains("role"), "{refused}");
    let (_, unchanged) = h.stack.get(&format!("/api/deals/{}", deal["id"])).await;
    assert_eq!(unchanged["stage_id"].as_i64(), Some(stage_id("Lead")));

    let since = h.bot.api.seq();
    let answer = h.bot.press(&max, card.message_id().expect("card id"), &to_qualified).await;
    assert!(answer.contains("Moved to Qualified"), "{answer}");
    let edit = h
        .bot
        .api
        .wait_for(since, WAIT, |c| c.method == "editMessageText" && c.message_id() == card.message_id())
        .await
        .expect("the card is redrawn");
    assert!(edit.text().contains("Qualified"), "{}", edit.text());
    let (_, moved) = h.stack.get(&format!("/api/deals/{}", deal["id"])).await;
    assert_eq!(moved["stage_id"].as_i64(), Some(stage_id("Qualified")));

    // Stale buttons: a deal that is gone, and a payload this bot never made.
    let (status, _) = h.stack.delete(&format!("/api/deals/{}", deal["id"])).await;
    assert!(status.is_success());
    let gone = h.bot.press(&max, card.message_id().expect("card id"), &to_qualified).await;
    assert!(gone.contains("no longer exists"), "{gone}");
    let forged = h.bot.press(&max, card.message_id().expect("card id"), "mv:1:2:3").await;
    assert!(forged.contains("expired"), "{forged}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_and_notes_from_the_chat() {
    let h = BotStack::start("bot_tasks", TOKEN).await;
    let (max, max_id) = h.user(5001, "Max Manager", Role::Manager).await;
    let due_today = chrono::Utc::now().date_naive().and_hms_opt(23, 0, 0).expect("time").and_utc();
    let (status, _) = h
        .stack
        .post("/api/tasks", json!({"title": "Call Ann", "assignee_id": max_id, "due_at": due_today.to_rfc3339()}))
        .await;
    assert_eq!(status, 201);

    let added = h.bot.say(&max, "/addtask Send the proposal").await;
    assert!(added.text().contains("Task added"), "{}", added.text());
    let today = h.bot.say(&max, "/today").await;
    assert!(today.text().contains("Call Ann") && !today.text().contains("Send the proposal"), "{}", today.text());
    let list = h.bot.say(&max, "/tasks").await;
    assert!(list.text().contains("Call Ann") && list.text().contains("Send the proposal"), "{}", list.text());
    let done = button(&list, "Call Ann");
    let since = h.bot.api.seq();
    let answer = h.bot.press(&max, list.message_id().expect("list id"), &done).await;
    assert!(answer.contains("Done"), "{answer}");
    assert_eq!(h.stack.count("SELECT count(*) FROM tasks WHERE done").await, 1);
    let redrawn = h
        .bot
        .api
        .wait_for(since, WAIT, |c| c.method == "editMessageText" && c.message_id() == list.message_id())
        .await
        .expect("the list is redrawn");
    assert!(!redrawn.text().contains("Call Ann") && redrawn.text().contains("Send the proposal"), "{}", redrawn.text());

    let (_, deal) = h.stack.post("/api/deals", json!({"title": "Noted deal"})).await;
    let noted = h.bot.say(&max, &format!("/note deal {} They want a demo 🚀", deal["id"])).await;
    assert!(noted.text().contains("Note #"), "{}", noted.text());
    let (_, notes) = h.stack.get(&format!("/api/notes?deal_id={}", deal["id"])).await;
    assert_eq!(notes["items"][0]["body"], "They want a demo 🚀");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_reply_and_changes_nothing() {
    let h = BotStack::start("bot_bad_input", TOKEN).await;
    let (max, _) = h.user(6001, "Max Manager", Role::Manager).await;

    let commands = h.bot.api.wait_for(0, WAIT, |c| c.method == "setMyCommands").await.expect("commands registered");
    let registered: Vec<String> = commands.params["commands"]
        .as_array()
        .expect("commands")
        .iter()
        .map(|c| c["command"].as_str().unwrap_or_default().to_string())
        .collect();
    let help = h.bot.say(&max, "/help").await;
    for (name, _) in crm_bot::BUILTIN_COMMANDS {
        assert!(registered.iter().any(|r| r == name), "{name} not registered");
        assert!(help.text().contains(&format!("/{name}")), "{name} not in /help");
    }

    let cases: &[(&str, &str)] = &[
        ("/frobnicate now", "Unknown command /frobnicate"),
        ("/find", "Usage: /find"),
        ("/editcontact abc", "Usage: /editcontact ID"),
        ("/note planet 5 hi", "Usage: /note"),
        ("/run", "Usage: /run"),
        ("/ what", "does not look like a command"),
        ("مرحبا بالعالم", "/help"),
    ];
    for (text, expected) in cases {
        let reply = h.bot.say(&max, text).await;
        assert!(reply.text().contains(expected), "{text:?} → {:?}", reply.text());
    }
    let long = format!("/find {}", "ẞ".repeat(3000));
    let reply = h.bot.say(&max, &long).await;
    assert!(reply.text().contains("too long"), "{}", reply.text());

    let since = h.bot.api.seq();
    h.bot.api.send_sticker(&max);
    let reply = h.bot.api.reply(max.id, since, WAIT).await.expect("reply to a sticker");
    assert!(reply.text().contains("text messages only"), "{}", reply.text());

    let original = h.bot.say(&max, "/addtask Edit me").await;
    let since = h.bot.api.seq();
    h.bot.api.edit_text(&max, original.message_id().unwrap_or(1) - 1, "/addtask Edited twice");
    let reply = h.bot.api.reply(max.id, since, WAIT).await.expect("reply to an edit");
    assert!(reply.text().contains("Edits are not acted on"), "{}", reply.text());
    assert_eq!(h.stack.count("SELECT count(*) FROM tasks").await, 1, "an edit must not repeat a command");

    // A dialogue answer that is far too long is refused, and the dialogue goes on.
    h.bot.say(&max, "/addcontact").await;
    let reply = h.bot.say(&max, &"n".repeat(400)).await;
    assert!(reply.text().contains("the most is 300"), "{}", reply.text());
    let reply = h.bot.say(&max, "Short Name").await;
    assert!(reply.text().contains("Email"), "{}", reply.text());
    h.bot.say(&max, "/cancel").await;
    assert_eq!(h.stack.count("SELECT count(*) FROM contacts").await, 0);

    // Every reply fitted Telegram's limits (the server refuses anything else).
    let failed: Vec<String> = h.bot.api.calls().iter().filter_map(|c| c.error.clone()).collect();
    assert!(failed.is_empty(), "Telegram refused: {failed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_users_in_dialogues_at_once_do_not_mix() {
    let h = BotStack::start("bot_many", TOKEN).await;
    let mut people = Vec::new();
    for i in 0..6 {
        people.push(h.user(7000 + i, &format!("Seller {i}"), Role::Manager).await.0);
    }
    // Interleave: every user starts, then every user answers each step in turn.
    let steps = |i: usize| {
        vec!["/addcontact".to_string(), format!("Person {i} 👋"), format!("p{i}@example.com"), "-".into(), "-".into()]
    };
    for step in 0..5 {
        let since = h.bot.api.seq();
        for (i, p) in people.iter().enumerate() {
            h.bot.api.send_text(p, &steps(i)[step]);
        }
        for p in &people {
            h.bot.api.reply(p.id, since, WAIT).await.unwrap_or_else(|e| panic!("step {step} of {}: {e}", p.first_name));
        }
    }
    let (_, page) = h.stack.get("/api/contacts?limit=50").await;
    let mut got: Vec<(String, String)> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| (c["name"].as_str().unwrap_or("").to_string(), c["email"].as_str().unwrap_or("").to_string()))
        .collect();
    got.sort();
    let want: Vec<(String, String)> = (0..6).map(|i| (format!("Person {i} 👋"), format!("p{i}@example.com"))).collect();
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_runs_from_the_chat_and_its_result_replaces_running() {
    // The stack's own Redis prefix: the worker takes the runs' steps from it.
    let stack = TestStack::start("bot_runs").await;
    let workflow_dir = crm_testing::workspace::workflows_dir().join("qualify-lead");
    let deployed = crm_testing::process::crm()
        .arg("workflow")
        .arg("deploy")
        .arg(&workflow_dir)
        .args(["--engine", &stack.url, "--token", &stack.admin_token])
        .output()
        .expect("crm workflow deploy");
    assert!(deployed.status.success(), "{}", String::from_utf8_lossy(&deployed.stderr));
    let _worker = stack.start_worker(4).await;
    let mut h = BotStack::launch(stack, TOKEN, &[], "getUpdates").await;
    let (max, max_id) = h.user(8001, "Max Manager", Role::Manager).await;
    let (status, lena) = h.stack.post("/api/contacts", json!({"name": "Lena Lead", "email": "lena@example.com"})).await;
    assert_eq!(status, 201, "{lena}");

    // The workflow's own command is registered and listed.
    let help = h.bot.say(&max, "/help").await;
    assert!(help.text().contains("/qualify CONTACT_ID"), "{}", help.text());
    let registered = h.bot.api.calls().into_iter().rfind(|c| c.method == "setMyCommands").expect("commands");
    assert!(registered.params["commands"].as_array().expect("list").iter().any(|c| c["command"] == "qualify"));

    let running = h.bot.say(&max, &format!("/qualify {}", lena["id"])).await;
    assert!(running.text().contains("Running qualify-lead"), "{}", running.text());
    let since = running.seq;
    let result = h
        .bot
        .api
        .wait_for(since, Duration::from_secs(60), |c| {
            c.method == "editMessageText" && c.message_id() == running.message_id() && c.result.is_some()
        })
        .await
        .expect("the running message is edited into the result");
    assert!(result.text().contains("Lena Lead"), "{}", result.text());
    assert!(!result.text().contains("Could not qualify"), "{}", result.text());

    // A failing run: the same message flow, with the workflow's failure text.
    let running = h.bot.say(&max, "/run qualify-lead 999999").await;
    assert!(running.text().contains("Running qualify-lead"), "{}", running.text());
    let failed = h
        .bot
        .api
        .wait_for(running.seq, Duration::from_secs(60), |c| {
            c.method == "editMessageText" && c.message_id() == running.message_id() && c.result.is_some()
        })
        .await
        .expect("the failure replaces the running message");
    assert!(failed.text().contains("Could not qualify contact 999999"), "{}", failed.text());

    // Malformed arguments never start a run.
    let refused = h.bot.say(&max, "/qualify forty-two").await;
    assert!(refused.text().contains("CONTACT_ID must be a whole number"), "{}", refused.text());
    let refused = h.bot.say(&max, "/run no-such-workflow").await;
    let refused = if refused.text().starts_with('⏳') {
        h.bot
            .api
            .wait_for(refused.seq, WAIT, |c| c.method == "editMessageText" && c.message_id() == refused.message_id())
            .await
            .expect("the refusal replaces the running message")
    } else {
        refused
    };
    assert!(refused.text().contains("no workflow named"), "{}", refused.text());

    let runs = h.bot.say(&max, "/runs").await;
    assert!(runs.text().contains("qualify-lead · succeeded"), "{}", runs.text());
    assert!(runs.text().contains("qualify-lead · failed"), "{}", runs.text());
    assert_eq!(h.stack.count("SELECT count(*) FROM runs").await, 2);

    // A run that finishes while the bot is down still reaches its chat: the bot resumes the
    // completion stream after the last event it handled (Last-Event-ID, kept on disk).
    // (Posted as the bot posts it: its delegate token, acting for Max, naming his chat.)
    h.bot.kill();
    let (status, run) = send(
        h.stack
            .request_as(&h.stack.bot_token, reqwest::Method::POST, "/api/runs")
            .header("X-Crm-Acting-User", max_id.to_string())
            .json(&json!({"workflow": "qualify-lead", "input": {"contact_id": lena["id"]},
                   "notify": {"chat_id": max.id, "message_id": runs.message_id()}})),
    )
    .await;
    assert!(status.is_success(), "{run}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, r) = h.stack.get(&format!("/api/runs/{}", run["id"].as_str().unwrap_or_default())).await;
        if r["status"] == "succeeded" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the run did not finish: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let since = h.bot.api.seq();
    h.bot.restart().await;
    let resumed = h
        .bot
        .api
        .wait_for(since, WAIT, |c| c.method == "editMessageText" && c.message_id() == runs.message_id())
        .await
        .expect("the completion that happened while the bot was down is delivered");
    assert!(resumed.text().contains("Lena Lead"), "{}", resumed.text());
}

/// The webhook settings for a bot listening on `listen`.
fn webhook_env(listen: &str) -> Vec<(&'static str, String)> {
    vec![
        ("CRM_BOT_WEBHOOK_URL", format!("http://{listen}/telegram/hook")),
        ("CRM_BOT_WEBHOOK_LISTEN", listen.to_string()),
        ("CRM_BOT_WEBHOOK_SECRET", "s3cret-token".to_string()),
    ]
}

async fn launch_webhook_bot(stack: &TestStack, listen: &str) -> Result<ChatBot, LaunchError> {
    let env = webhook_env(listen);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    ChatBot::try_launch(TOKEN, &stack.url, &stack.bot_token, &env, "setWebhook").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_mode_takes_updates_posted_with_the_secret() {
    let stack = TestStack::start("bot_webhook").await;
    // A free port can be taken by another process before the bot binds it; the bot then
    // exits (see the test below), and another port is tried.
    let mut tries = 0;
    let (bot, listen) = loop {
        let listen = crm_testing::ports::free_address();
        match launch_webhook_bot(&stack, &listen).await {
            Ok(bot) => break (bot, listen),
            Err(LaunchError::Exited { log, .. }) if log.contains("in use") && tries < 5 => tries += 1,
            Err(e) => panic!("the webhook bot did not start: {e}"),
        }
    };
    let hook = format!("http://{listen}/telegram/hook");
    let h = BotStack { bot, stack };
    let set = h.bot.api.calls().into_iter().find(|c| c.method == "setWebhook").expect("setWebhook");
    assert_eq!(set.params["url"], hook.as_str());
    let (max, _) = h.user(9001, "Max Manager", Role::Manager).await;

    let reply = h.bot.say(&max, "/help").await;
    assert!(reply.text().contains("/pipeline"), "{}", reply.text());
    assert!(h.bot.api.calls().iter().all(|c| c.method != "getUpdates"), "webhook mode must not poll");

    // A post without the secret is refused and does nothing.
    let forged = reqwest::Client::new()
        .post(&hook)
        .json(&json!({"update_id": 999, "message": {"message_id": 1, "date": 0, "text": "/tasks",
            "chat": {"id": 9001, "type": "private", "first_name": "Max"},
            "from": {"id": 9001, "is_bot": false, "first_name": "Max"}}}))
        .send()
        .await
        .expect("post to the webhook");
    assert_eq!(forged.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_bot_whose_address_is_taken_exits_without_pointing_telegram_at_it() {
    let stack = TestStack::start("bot_webhook_taken").await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let listen = taken.local_addr().expect("addr").to_string();

    match launch_webhook_bot(&stack, &listen).await {
        Err(LaunchError::Exited { status, log, called }) => {
            assert!(!status.success(), "{status}");
            assert!(log.contains("CRM_BOT_WEBHOOK_LISTEN") && log.contains(&listen), "{log}");
            assert!(!called.iter().any(|m| m == "setWebhook"), "Telegram was pointed at it: {called:?}");
        }
        Ok(_) => panic!("the bot started on an address another process holds"),
        Err(e) => panic!("expected the bot to exit: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_code_works_once_even_when_raced_and_not_after_expiry() {
    let stack = TestStack::start("bot_invite_race").await;
    let (status, created) = stack.post("/api/invites", json!({"role": "viewer"})).await;
    assert_eq!(status, 201, "{created}");
    let code = created["code"].as_str().expect("code").to_string();
    let redeem = |tg: i64| {
        stack.post("/api/invites/redeem", json!({"code": code, "telegram_user_id": tg, "name": format!("Racer {tg}")}))
    };
    let (a, b) = tokio::join!(redeem(31), redeem(32));
    let mut statuses = [a.0.as_u16(), b.0.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [201, 422], "{a:?} {b:?}");
    assert_eq!(stack.count("SELECT count(*) FROM users WHERE telegram_user_id IN (31, 32)").await, 1);

    let (_, short) = stack.post("/api/invites", json!({"role": "manager", "expires_in": 1})).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, body) =
        stack.post("/api/invites/redeem", json!({"code": short["code"], "telegram_user_id": 33, "name": "Late"})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["fields"][0]["field"], "code");

    // Only admins make invites; a viewer token is refused.
    let (status, _) = crm_testing::send(
        stack.request_as(&stack.viewer_token, reqwest::Method::POST, "/api/invites").json(&json!({"role": "admin"})),
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deal_is_added_and_edited_by_dialogue_with_buttons() {
    let h = BotStack::start("bot_deal_dialogue", TOKEN).await;
    let (max, _) = h.user(9101, "Max Manager", Role::Manager).await;
    for name in ["Ann Lee", "Ann Leeds"] {
        let (status, _) = h.stack.post("/api/contacts", json!({"name": name})).await;
        assert_eq!(status, 201);
    }

    h.bot.say(&max, "/adddeal").await;
    let ask = h.bot.say(&max, "Solar panels 🌞").await;
    assert!(ask.text().contains("Amount"), "{}", ask.text());
    let refused = h.bot.say(&max, "lots").await;
    assert!(refused.text().contains("Type an amount"), "{}", refused.text());
    let ask = h.bot.say(&max, "12 500.50 eur").await;
    assert!(ask.text().contains("contact"), "{}", ask.text());
    // Two contacts match: the bot offers them as buttons.
    let choices = h.bot.say(&max, "ann le").await;
    assert!(choices.text().contains("Which one"), "{}", choices.text());
    let leeds = button(&choices, "Ann Leeds");
    let since = h.bot.api.seq();
    h.bot.press(&max, choices.message_id().expect("id"), &leeds).await;
    let stage_q = h.bot.api.reply(max.id, since, WAIT).await.expect("stage question");
    assert!(stage_q.text().contains("Contact: Ann Leeds") && stage_q.text().contains("stage"), "{}", stage_q.text());
    let proposal = button(&stage_q, "Proposal");
    let since = h.bot.api.seq();
    h.bot.press(&max, stage_q.message_id().expect("id"), &proposal).await;
    // The same button again belongs to a finished step: stale.
    let stale = h.bot.press(&max, stage_q.message_id().expect("id"), &proposal).await;
    assert!(stale.contains("ended"), "{stale}");
    let close_q = h.bot.api.reply(max.id, since, WAIT).await.expect("close date question");
    assert!(close_q.text().contains("Expected close"), "{}", close_q.text());
    let done = h.bot.say(&max, "2027-01-15").await;
    assert!(done.text().contains("Deal added") && done.text().contains("12,500.50 EUR"), "{}", done.text());
    assert!(done.text().contains("Proposal") && done.text().contains("Ann Leeds"), "{}", done.text());

    let (_, deals) = h.stack.get("/api/deals").await;
    let deal = deals["items"][0].clone();
    assert_eq!(deal["title"], "Solar panels 🌞");
    assert_eq!(deal["amount_minor"], 1_250_050);
    assert_eq!(deal["currency"], "EUR");
    assert_eq!(deal["expected_close"], "2027-01-15");

    // Edit: ✏️ on the card, pick the field, type the value.
    let edit = button(&done, "Edit");
    let since = h.bot.api.seq();
    h.bot.press(&max, done.message_id().expect("id"), &edit).await;
    let fields = h.bot.api.reply(max.id, since, WAIT).await.expect("field choice");
    let amount = button(&fields, "Amount");
    let since = h.bot.api.seq();
    h.bot.press(&max, fields.message_id().expect("id"), &amount).await;
    let ask = h.bot.api.reply(max.id, since, WAIT).await.expect("amount question");
    assert!(ask.text().contains("Amount"), "{}", ask.text());
    let updated = h.bot.say(&max, "$99").await;
    assert!(updated.text().contains("Deal updated") && updated.text().contains("99.00 USD"), "{}", updated.text());
    let (_, after) = h.stack.get(&format!("/api/deals/{}", deal["id"])).await;
    assert_eq!((after["amount_minor"].as_i64(), after["title"].as_str()), (Some(9_900), Some("Solar panels 🌞")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_group_that_is_not_allowed_the_bot_shows_no_data_and_no_code() {
    let h = BotStack::start_with("bot_groups", TOKEN, &[("CRM_BOT_GROUPS", "-500")]).await;
    let (status, _) = h.stack.post("/api/contacts", json!({"name": "Secret Sam", "email": "sam@example.com"})).await;
    assert_eq!(status, 201);
    let (admin, _) = h.user(3001, "Alice Admin", Role::Admin).await;

    // A known admin, in a group nobody allowed: one refusal, no record, no invite.
    let since = h.bot.api.seq();
    h.bot.api.send_group_text(&admin, -400, "Sales chat", "/find Sam");
    let refusal = h.bot.api.reply(-400, since, WAIT).await.expect("a refusal in the group");
    assert!(refusal.text().contains("only work in private chats"), "{}", refusal.text());
    h.bot.api.send_group_text(&admin, -400, "Sales chat", "/invite admin");
    h.bot.api.send_group_text(&admin, -400, "Sales chat", "/contacts");
    h.bot.settle().await;
    let texts: Vec<String> = h.bot.replies_to(-400).iter().map(|c| c.text().to_string()).collect();
    assert_eq!(texts.len(), 1, "one refusal per chat: {texts:?}");
    assert!(texts.iter().all(|t| !t.contains("Sam") && !t.contains("/start")), "{texts:?}");
    assert_eq!(h.stack.count("SELECT count(*) FROM invites").await, 0);

    // In a group the operator allowed, records are answered, but an invite code is still
    // only given in private.
    let since = h.bot.api.seq();
    h.bot.api.send_group_text(&admin, -500, "Team room", "/find Sam");
    let found = h.bot.api.reply(-500, since, WAIT).await.expect("an answer in the allowed group");
    assert!(found.text().contains("Sam"), "{}", found.text());
    let since = h.bot.api.seq();
    h.bot.api.send_group_text(&admin, -500, "Team room", "/invite manager");
    let no_code = h.bot.api.reply(-500, since, WAIT).await.expect("an answer");
    assert!(no_code.text().contains("only in a private chat"), "{}", no_code.text());
    assert_eq!(h.stack.count("SELECT count(*) FROM invites").await, 0);

    // The same admin in private gets the code.
    let code = h.bot.say(&admin, "/invite manager").await;
    assert!(code.text().contains("/start "), "{}", code.text());
    assert_eq!(h.stack.count("SELECT count(*) FROM invites").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_commands_in_a_row_are_answered_without_waiting_for_the_flood_interval() {
    // An hour between messages to a chat on average: a queue that spaced every message by
    // the interval would answer the first command only. The default burst answers ten.
    let env = [("CRM_BOT_CHAT_INTERVAL_MS", "3600000")];
    let h = BotStack::start_with("bot_reply_burst", TOKEN, &env).await;
    let (ann, _) = h.user(1601, "Ann Burst", Role::Manager).await;
    for n in 1..=10 {
        let since = h.bot.api.seq();
        h.bot.api.send_text(&ann, "/help");
        let reply =
            h.bot.api.reply(ann.id, since, WAIT).await.unwrap_or_else(|e| panic!("command {n} not answered: {e}"));
        assert!(reply.text().contains("/find"), "{}", reply.text());
    }
    assert_eq!(h.bot.replies_to(ann.id).len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amounts_are_read_in_the_users_language() {
    let h = BotStack::start("bot_money_locale", TOKEN).await;
    let (ru, _) = h.user(1602, "Ivan Rubley", Role::Manager).await;
    let ru = ru.speaking("ru");
    let (en, _) = h.user(1603, "Ed English", Role::Manager).await;
    // "1.500" is fifteen hundred to a Russian speaker; to an English one it has a decimal
    // too many, and "1,500" is fifteen hundred. (The bot writes to each in their language.)
    for (who, title, contact_q, added) in
        [(&ru, "Ivan's deal", "контакт", "Сделка добавлена"), (&en, "Ed's deal", "contact", "Deal added")]
    {
        h.bot.say(who, "/adddeal").await;
        h.bot.say(who, title).await;
        let mut ask = h.bot.say(who, "1.500").await;
        if who.id == en.id {
            assert!(ask.text().contains("at most 2 decimals"), "{}", ask.text());
            ask = h.bot.say(who, "1,500").await;
        }
        assert!(ask.text().contains(contact_q), "{}", ask.text());
        let stage_q = h.bot.say(who, "-").await;
        let stage = button(&stage_q, "Proposal");
        let since = h.bot.api.seq();
        h.bot.press(who, stage_q.message_id().expect("id"), &stage).await;
        h.bot.api.reply(who.id, since, WAIT).await.expect("close date question");
        let done = h.bot.say(who, "-").await;
        assert!(done.text().contains(added), "{}", done.text());
    }
    let (_, deals) = h.stack.get("/api/deals").await;
    let amount = |title: &str| {
        deals["items"].as_array().unwrap().iter().find(|d| d["title"] == title).map(|d| d["amount_minor"].clone())
    };
    assert_eq!(amount("Ivan's deal"), Some(json!(150_000)), "{deals}");
    assert_eq!(amount("Ed's deal"), Some(json!(150_000)), "{deals}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_company_is_added_by_dialogue() {
    let h = BotStack::start("bot_add_company", TOKEN).await;
    let (max, _) = h.user(1604, "Max Manager", Role::Manager).await;
    let ask = h.bot.say(&max, "/addcompany").await;
    assert!(ask.text().contains("company called"), "{}", ask.text());
    let ask = h.bot.say(&max, "Acme Rockets").await;
    assert!(ask.text().contains("domain"), "{}", ask.text());
    let refused = h.bot.say(&max, "not a domain").await;
    assert!(refused.text().contains("not a domain"), "{}", refused.text());
    let ask = h.bot.say(&max, "https://www.Acme-Rockets.example/about").await;
    assert!(ask.text().contains("Phone"), "{}", ask.text());
    let done = h.bot.say(&max, "-").await;
    assert!(done.text().contains("Company added") && done.text().contains("Acme Rockets"), "{}", done.text());
    let (_, companies) = h.stack.get("/api/companies").await;
    assert_eq!(companies["items"][0]["name"], "Acme Rockets");
    assert_eq!(companies["items"][0]["domain"], "acme-rockets.example");
    assert!(companies["items"][0]["phone"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_past_ten_with_next_and_previous() {
    let h = BotStack::start("bot_list_paging", TOKEN).await;
    let (max, _) = h.user(1605, "Max Manager", Role::Manager).await;
    for n in 1..=12 {
        let (status, _) = h.stack.post("/api/contacts", json!({"name": format!("Person {n:02}")})).await;
        assert_eq!(status, 201);
    }
    let first = h.bot.say(&max, "/contacts").await;
    let labels = |c: &Call| c.buttons().into_iter().map(|(l, _)| l).collect::<Vec<_>>();
    let shown = labels(&first);
    assert_eq!(shown.iter().filter(|l| l.contains("Person")).count(), 10, "{shown:?}");
    assert!(shown.contains(&"👤 Person 12".to_string()) && !shown.iter().any(|l| l.contains("Previous")), "{shown:?}");
    let next = button(&first, "Next");

    let since = h.bot.api.seq();
    h.bot.press(&max, first.message_id().expect("id"), &next).await;
    let second = h.bot.api.reply(max.id, since, WAIT).await.expect("page 2");
    assert_eq!(second.method, "editMessageText", "the list's own message turns the page");
    let shown = labels(&second);
    assert_eq!(shown, ["👤 Person 02", "👤 Person 01", "◀ Previous"].map(String::from).to_vec(), "{}", second.text());
    let previous = button(&second, "Previous");
    let since = h.bot.api.seq();
    h.bot.press(&max, first.message_id().expect("id"), &previous).await;
    let back = h.bot.api.reply(max.id, since, WAIT).await.expect("page 1 again");
    assert_eq!(labels(&back), labels(&first));

    // A list the bot no longer knows (after a restart) asks for the command again.
    let stale = h.bot.press(&max, first.message_id().expect("id"), "pg:999999:1").await;
    assert!(stale.contains("expired"), "{stale}");
}
