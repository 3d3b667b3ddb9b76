//! Approvals from the chat: the real `crm bot` against the loopback Bot API server, a real
//! engine on the test clock and a real worker. The person asked gets a private message with
//! Approve / Reject buttons; a press by someone allowed decides, anyone else's is refused;
//! once the approval ends (a press, the API, the timeout) every message of it turns into
//! the outcome and a later press changes nothing.

use std::time::Duration;

use crm_concepts::records::Actor;
use crm_concepts::user::{NewUser, Role};
use crm_testing::bot::ChatBot;
use crm_testing::manifests::DISCOUNT;
use crm_testing::{Call, Flow, TgUser};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "4545:local-test-token";

/// A CRM user linked to Telegram account `telegram`, with an API token.
async fn person(flow: &Flow, name: &str, role: Role, telegram: Option<i64>) -> (i64, String) {
    let user = crm_store::users::create(
        &flow.db,
        &Actor::system(),
        NewUser { name: name.into(), email: None, role, telegram_user_id: telegram, time_zone: None },
    )
    .await
    .expect("create user");
    let (_, token) = crm_store::tokens::create(&flow.db, user.id, "test").await.expect("token");
    (user.id, token)
}

fn step<'a>(run: &'a Value, id: &str) -> &'a Value {
    run["steps"].as_array().and_then(|s| s.iter().find(|s| s["step"] == id)).unwrap_or_else(|| panic!("no step {id}"))
}

/// The Approve and Reject payloads under an approval's message.
fn buttons(message: &Call) -> (String, String) {
    let b = message.buttons();
    assert_eq!(b.iter().map(|(label, _)| label.as_str()).collect::<Vec<_>>(), ["✅ Approve", "❌ Reject"], "{b:?}");
    assert!(b.iter().all(|(_, data)| data.len() <= 64), "{b:?}");
    (b[0].1.clone(), b[1].1.clone())
}

async fn start_discount(flow: &Flow) -> Uuid {
    let id = flow.start_run("discount", json!({"percent": 25, "deal_id": 7})).await;
    flow.wait_status(id, "waiting", WAIT).await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_approves_by_button_a_viewers_press_is_refused_and_a_second_press_does_nothing() {
    let mut flow = Flow::start_with_test_clock("botap_decide").await;
    flow.deploy_manifest(DISCOUNT);
    flow.start_worker(2);
    let mia = TgUser::new(6001, "Mia");
    let vic = TgUser::new(6002, "Vic");
    let (mia_id, _) = person(&flow, "Mia Manager", Role::Manager, Some(mia.id)).await;
    person(&flow, "Vic Viewer", Role::Viewer, Some(vic.id)).await;
    let bot = ChatBot::start(TOKEN, &flow.url, &flow.bot_token).await;
    bot.open_chat(&mia).await;
    bot.open_chat(&vic).await;
    let since = bot.api.seq();

    let run = start_discount(&flow).await;
    let asked = bot.message(since, mia.id, "Give 25% off deal 7?").await;
    assert!(
        asked.text().contains("discount") && asked.text().contains("without a decision it is rejected"),
        "{}",
        asked.text()
    );
    let (approve, reject) = buttons(&asked);
    let message = asked.message_id().expect("message id");

    // A viewer's press (a forwarded button, a forged update) is refused and decides nothing.
    let refused = bot.press(&vic, message, &approve).await;
    assert!(refused.contains("Not yours to decide") && refused.contains("only a manager"), "{refused}");
    let (_, detail) = flow.get(&format!("/api/runs/{run}")).await;
    assert_eq!(detail["status"], "waiting", "{detail}");
    assert!(bot.sent_to(since, vic.id).is_empty(), "a viewer is asked nothing");

    let answer = bot.press(&mia, message, &approve).await;
    assert_eq!(answer, "✅ Approved.");
    let edit = bot.edited(mia.id, message, "✅ Approved by Mia Manager at ").await;
    assert!(edit.text().contains("Give 25% off deal 7?"), "the question stays: {}", edit.text());
    assert!(edit.buttons().is_empty(), "the buttons go: {edit:?}");
    assert_eq!(flow.wait_final(&[run], WAIT).await, vec!["succeeded"]);
    let (_, detail) = flow.get(&format!("/api/runs/{run}")).await;
    assert_eq!(step(&detail, "ok")["output"]["decision"], "approved", "{detail}");
    assert_eq!(step(&detail, "ok")["output"]["decided_by"], mia_id);
    assert_eq!(step(&detail, "apply")["status"], "succeeded");
    assert_eq!(step(&detail, "decline")["status"], "skipped");

    // A second press (the old message, or a client that did not redraw yet) changes nothing.
    let again = bot.press(&mia, message, &reject).await;
    assert_eq!(again, "This was decided already; nothing changed.");
    let (_, after) = flow.get(&format!("/api/runs/{run}")).await;
    assert_eq!(step(&after, "ok")["output"], step(&detail, "ok")["output"]);
    assert!(bot.api.message_text(mia.id, message).unwrap_or_default().contains("✅ Approved by Mia Manager"));

    // Nothing more waits for Mia; exactly one edit went to the message.
    let before = bot.api.seq();
    bot.api.send_text(&mia, "/approvals");
    let reply = bot.api.reply(mia.id, before, WAIT).await.expect("reply to /approvals");
    assert_eq!(reply.text(), "Nothing waits for your decision.");
    let edits =
        bot.api.calls().iter().filter(|c| c.method == "editMessageText" && c.message_id() == Some(message)).count();
    assert_eq!(edits, 1);
    flow.assert_clean_history(&[run]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_decides_and_the_timeout_rejects_every_message_of_it() {
    let mut flow = Flow::start_with_test_clock("botap_timeout").await;
    flow.deploy_manifest(DISCOUNT);
    flow.start_worker(2);
    let mia = TgUser::new(6101, "Mia");
    let max = TgUser::new(6102, "Max");
    person(&flow, "Mia Manager", Role::Manager, Some(mia.id)).await;
    person(&flow, "Max Manager", Role::Manager, Some(max.id)).await;
    person(&flow, "Nat Nolink", Role::Manager, None).await;
    let bot = ChatBot::start(TOKEN, &flow.url, &flow.bot_token).await;
    bot.open_chat(&mia).await;
    bot.open_chat(&max).await;
    let since = bot.api.seq();

    let run = start_discount(&flow).await;
    let first = bot.message(since, mia.id, "Give 25% off deal 7?").await;
    let maxs = bot.message(since, max.id, "Give 25% off deal 7?").await;
    let (approve, _) = buttons(&first);

    // `/approvals` lists it and asks again, with the buttons.
    let before = bot.api.seq();
    bot.api.send_text(&mia, "/approvals");
    let list = bot.message(before, mia.id, "One approval is waiting for your decision").await;
    assert!(list.text().contains("discount — Give 25% off deal 7?"), "{}", list.text());
    let again = bot
        .api
        .wait_for(before, WAIT, |c| c.method == "sendMessage" && c.is_reply_to(mia.id) && !c.buttons().is_empty())
        .await
        .expect("the approval again, with its buttons");
    assert_eq!(buttons(&again).0, approve, "the same approval");

    flow.advance_clock("2d").await;
    assert_eq!(flow.wait_final(&[run], WAIT).await, vec!["succeeded"]);
    let (_, detail) = flow.get(&format!("/api/runs/{run}")).await;
    let out = &step(&detail, "ok")["output"];
    assert_eq!((out["decision"].clone(), out["timed_out"].clone()), (json!("rejected"), json!(true)), "{detail}");
    assert_eq!(step(&detail, "decline")["status"], "succeeded");
    for (chat, message) in [(mia.id, &first), (mia.id, &again), (max.id, &maxs)] {
        bot.edited(chat, message.message_id().expect("id"), "⌛ Nobody decided in time: rejected").await;
    }
    let late = bot.press(&mia, first.message_id().expect("id"), &approve).await;
    assert_eq!(late, "This was decided already; nothing changed.");
    let (_, detail) = flow.get(&format!("/api/runs/{run}")).await;
    assert_eq!(step(&detail, "ok")["output"]["decision"], "rejected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_deals_owner_is_asked_and_a_decision_through_the_api_edits_the_message() {
    let mut flow = Flow::start_with_test_clock("botap_owner").await;
    flow.deploy_manifest(
        r#"
name = "close-deal"
version = "1"

[[steps]]
id = "ok"
approval = { role = "manager", text = "Close deal {{input.deal_id}}?", timeout = "1d", on_timeout = "rejected", owner_of = { record = "deal", id = "{{input.deal_id}}" } }

[[steps]]
id = "after"
component = "fixture-echo"
needs = ["ok"]
"#,
    );
    flow.start_worker(2);
    let olga = TgUser::new(6201, "Olga");
    let otto = TgUser::new(6202, "Otto");
    let (owner, owner_token) = person(&flow, "Olga Owner", Role::Manager, Some(olga.id)).await;
    let (_, other_token) = person(&flow, "Otto Other", Role::Manager, Some(otto.id)).await;
    let bot = ChatBot::start(TOKEN, &flow.url, &flow.bot_token).await;
    bot.open_chat(&olga).await;
    bot.open_chat(&otto).await;
    let (status, deal) = flow.post("/api/deals", json!({"title": "Owned", "owner_id": owner})).await;
    assert_eq!(status, StatusCode::CREATED, "{deal}");
    let since = bot.api.seq();
    let run = flow.start_run("close-deal", json!({"deal_id": deal["id"]})).await;
    flow.wait_status(run, "waiting", WAIT).await;
    let asked = bot.message(since, olga.id, &format!("Close deal {}?", deal["id"])).await;
    let (approve, _) = buttons(&asked);

    // The other manager is not asked, does not see it listed, and may not decide it.
    let list = |token: String| {
        let req = flow.client.get(format!("{}/api/approvals", flow.url)).bearer_auth(token);
        async move { crm_testing::send(req).await.1["items"].as_array().cloned().unwrap_or_default() }
    };
    assert!(list(other_token.clone()).await.is_empty());
    let mine = list(owner_token.clone()).await;
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(format!("ap:{}:y", mine[0]["id"]), approve);
    let refused = bot.press(&otto, asked.message_id().expect("id"), &approve).await;
    assert!(refused.contains("only the owner of deal"), "{refused}");
    assert!(bot.sent_to(since, otto.id).is_empty(), "{:?}", bot.sent_to(since, otto.id));

    // An admin decides through the API; the owner's message shows it.
    let (status, body) = flow.post(&format!("/api/approvals/{run}/ok"), json!({"decision": "approved"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    bot.edited(olga.id, asked.message_id().expect("id"), "✅ Approved by ").await;
    assert_eq!(flow.wait_final(&[run], WAIT).await, vec!["succeeded"]);
    let (status, _) = crm_testing::send(
        flow.client
            .post(format!("{}/api/approvals/{}", flow.url, mine[0]["id"]))
            .bearer_auth(&owner_token)
            .json(&json!({"decision": "rejected"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "decided already");

    // A run cancelled while it waits: its message says the approval is no longer needed.
    let since = bot.api.seq();
    let run = flow.start_run("close-deal", json!({"deal_id": deal["id"]})).await;
    flow.wait_status(run, "waiting", WAIT).await;
    let asked = bot.message(since, olga.id, &format!("Close deal {}?", deal["id"])).await;
    let (status, body) = flow.post(&format!("/api/runs/{run}/cancel"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    bot.edited(olga.id, asked.message_id().expect("id"), "🚫 No longer needed: the run ended").await;
}
