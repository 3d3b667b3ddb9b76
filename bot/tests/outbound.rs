//! The outbound queue against the local Bot API server: flood limits are kept, a quiet chat
//! may send a short burst, nothing is dropped, each chat sees its messages in order, and
//! long texts are split to the limit.

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
    // A burst of one: strictly one message a second per chat.
    let limits = Limits { per_chat_burst: 1, ..Limits::default() };
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
        // The times are when the Bot API server received each send: on a loaded machine two
        // sends a second apart can arrive up to a scheduling hiccup closer. Unspaced sends
        // would arrive milliseconds apart, far below this.
        assert!(pair[1].at.duration_since(pair[0].at) >= Duration::from_millis(900), "per-chat interval kept");
    }
}

fn texts_in(api: &LocalBotApi, chat: i64) -> Vec<String> {
    sends(api).iter().filter(|c| c.chat_id() == Some(chat)).map(|c| c.text().to_string()).collect()
}

/// The position of the delivered message with `text` in the server's order of events.
fn position(api: &LocalBotApi, text: &str) -> u64 {
    sends(api).iter().find(|c| c.text() == text).map_or(u64::MAX, |c| c.seq)
}

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_quiet_chat_sends_a_burst_at_once_and_then_waits_for_its_budget() {
    // An hour per message on average: only the burst can go out during this test.
    let limits = Limits { per_chat_interval: Duration::from_secs(3600), per_chat_burst: 3, ..Limits::default() };
    let (api, out, _users) = setup(limits).await;
    for n in 0..5 {
        out.send(ChatId(4), &format!("a{n}"), None);
    }
    api.wait_for(0, WAIT, |c| c.result.is_some() && c.text() == "a2").await.expect("a burst of three");
    // A message to another chat queued after the burst overtakes the rest of the chat's
    // queue, which waits for the budget to refill.
    out.send_and_wait(ChatId(5), "b0", None).await.expect("delivered");
    assert_eq!(texts_in(&api, 4), ["a0", "a1", "a2"]);
    assert!(position(&api, "a2") < position(&api, "b0"));
}

#[tokio::test]
async fn after_a_burst_the_average_is_kept_and_nothing_is_dropped() {
    let interval = Duration::from_secs(2);
    let limits = Limits { per_chat_interval: interval, per_chat_burst: 2, ..Limits::default() };
    let (api, out, _users) = setup(limits).await;
    for n in 0..3 {
        out.send(ChatId(4), &format!("a{n}"), None);
    }
    out.send_and_wait(ChatId(4), "a3", None).await.expect("delivered");
    assert_eq!(texts_in(&api, 4), ["a0", "a1", "a2", "a3"]);
    let sent = sends(&api);
    let at = |t: &str| sent.iter().find(|c| c.text() == t).map(|c| c.at).expect("sent");
    // Four messages with a burst of two span at least two intervals (less a little for the
    // way from the queue to the server).
    assert!(at("a3").duration_since(at("a0")) >= 2 * interval - Duration::from_millis(200));
}

#[tokio::test]
async fn a_group_gets_at_most_its_messages_per_minute() {
    let limits = Limits { per_chat_interval: Duration::from_millis(10), group_per_minute: 2, ..Limits::default() };
    let (api, out, users) = setup(limits).await;
    let group = -1001;
    api.send_group_text(&users[0], group, "Team", "hi");
    for n in 0..3 {
        out.send(ChatId(group), &format!("g{n}"), None);
    }
    api.wait_for(0, WAIT, |c| c.result.is_some() && c.text() == "g1").await.expect("two within the minute");
    out.send_and_wait(ChatId(6), "after", None).await.expect("delivered");
    // The third waits for the minute to pass; the private chat does not wait for it.
    assert_eq!(texts_in(&api, group), ["g0", "g1"]);
    assert!(position(&api, "g2") > position(&api, "after"));
}

#[tokio::test]
async fn retry_after_is_waited_out_not_dropped() {
    let limits = Limits { per_chat_interval: Duration::from_millis(200), ..Limits::default() };
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
    let limits = Limits { per_chat_interval: Duration::from_millis(10), ..Limits::default() };
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
