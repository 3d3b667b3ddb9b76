//! The outbound queue against the local Bot API server: flood limits are kept, nothing is
//! dropped, each chat sees its messages in order, and long texts are split to the limit.

use std::time::Duration;

use crm_bot::outbound::{Limits, Outbound};
use crm_testing::bot_api::{Call, LocalBotApi, TgUser};
use teloxide::Bot;
use teloxide::types::ChatId;

async fn setup(limits: Limits) -> (LocalBotApi, Outbound, Vec<TgUser>) {
    let api = LocalBotApi::start("1:t").await.expect("local api");
    let users: Vec<TgUser> = (1..=40).map(|i| TgUser::new(i, &format!("u{i}"))).collect();
    // Telegram only lets a bot write to chats whose user wrote first.
    for u in &users {
        api.send_text(u, "hi");
    }
    let url = reqwest::Url::parse(&api.url()).expect("url");
    let (out, _task) = Outbound::start(Bot::new("1:t").set_api_url(url), limits);
    (api, out, users)
}

fn sends(api: &LocalBotApi) -> Vec<Call> {
    api.calls().into_iter().filter(|c| c.method == "sendMessage" && c.result.is_some()).collect()
}

#[tokio::test]
async fn bursts_are_spread_within_flood_limits_without_loss() {
    let limits = Limits { global_per_second: 30, per_chat_interval: Duration::from_millis(1000) };
    let (api, out, users) = setup(limits).await;
    // 40 chats × 1 message plus 4 more to chat 1: more than 30 in the first second.
    for u in &users {
        out.send(ChatId(u.id), &format!("hello {}", u.id), None);
    }
    for n in 0..4 {
        out.send(ChatId(1), &format!("chat1 #{n}"), None);
    }
    let last = out.send_and_wait(ChatId(1), "chat1 last", None).await.expect("delivered");
    assert!(last.0 > 0);
    let sent = sends(&api);
    assert_eq!(sent.len(), 45, "nothing dropped");

    let times: Vec<_> = sent.iter().map(|c| c.at).collect();
    for (i, t) in times.iter().enumerate() {
        let in_window = times[i..].iter().take_while(|u| u.duration_since(*t) < Duration::from_millis(1000)).count();
        assert!(in_window <= 30, "{in_window} messages within one second");
    }
    let chat1: Vec<_> = sent.iter().filter(|c| c.chat_id() == Some(1)).collect();
    let texts: Vec<&str> = chat1.iter().map(|c| c.text()).collect();
    assert_eq!(texts, ["hello 1", "chat1 #0", "chat1 #1", "chat1 #2", "chat1 #3", "chat1 last"]);
    for pair in chat1.windows(2) {
        // A little slack for timer granularity.
        assert!(pair[1].at.duration_since(pair[0].at) >= Duration::from_millis(990), "per-chat interval kept");
    }
}

#[tokio::test]
async fn retry_after_is_waited_out_not_dropped() {
    let limits = Limits { global_per_second: 30, per_chat_interval: Duration::from_millis(200) };
    let (api, out, _users) = setup(limits).await;
    // The server is stricter than the queue: it will answer 429 and the queue must retry.
    api.set_flood_interval(Some(Duration::from_millis(600)));
    for n in 0..4 {
        out.send(ChatId(2), &format!("m{n}"), None);
    }
    out.send_and_wait(ChatId(2), "m4", None).await.expect("delivered");
    let texts: Vec<String> = sends(&api).iter().map(|c| c.text().to_string()).collect();
    assert_eq!(texts, ["m0", "m1", "m2", "m3", "m4"]);
    assert!(api.calls().iter().any(|c| c.error.as_deref().is_some_and(|e| e.contains("Too Many Requests"))));
}

#[tokio::test]
async fn long_texts_are_split_and_edits_of_vanished_messages_become_sends() {
    let limits = Limits { global_per_second: 30, per_chat_interval: Duration::from_millis(10) };
    let (api, out, _users) = setup(limits).await;
    let long = "😀 emoji and עברית text\n".repeat(600); // ≈ 14,400 UTF-16 units
    let id = out.send_and_wait(ChatId(3), "⏳ running…", None).await.expect("sent");
    out.edit(ChatId(3), id, &long, None, true);
    out.edit(ChatId(3), teloxide::types::MessageId(9999), "result for a deleted message", None, true);
    out.send_and_wait(ChatId(3), "end", None).await.expect("sent");

    let calls: Vec<_> = api.calls().into_iter().filter(|c| c.chat_id() == Some(3) && c.result.is_some()).collect();
    let edit = calls.iter().find(|c| c.method == "editMessageText").expect("edited");
    let pieces: Vec<&str> = std::iter::once(edit.text())
        .chain(
            calls
                .iter()
                .filter(|c| c.method == "sendMessage")
                .map(|c| c.text())
                .skip(1)
                .take_while(|t| *t != "result for a deleted message"),
        )
        .collect();
    assert!(pieces.len() >= 4, "{} pieces", pieces.len());
    assert!(pieces.iter().all(|p| crm_bot::text::utf16_len(p) <= 4096));
    assert!(pieces.join("\n").trim_end() == long.trim_end(), "the pieces do not add up to the text");
    assert!(calls.iter().any(|c| c.method == "sendMessage" && c.text() == "result for a deleted message"));
    assert!(api.message_text(3, id.0.into()).is_some_and(|t| t.starts_with("😀 emoji")));
}
