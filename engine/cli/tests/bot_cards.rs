//! Record cards and the actions a person works from in the chat, end to end: the real
//! `crm bot` against the loopback Bot API server and a real engine. A card shows the record's
//! linked records, open tasks, last notes and recent activity, with buttons that open them;
//! `/editcompany` edits a company field by field; `/delete` (or a card's 🗑 Delete) asks
//! first, only the asker may answer, only managers and admins may delete, and the deletion is
//! in the activity log; `/invite` answers with a t.me link that opens the bot with the code.

use crm_concepts::user::Role;
use crm_testing::bot::button;
use crm_testing::{BotStack, Call, TgUser};
use serde_json::json;

const TOKEN: &str = "4545:local-test-token";

/// The card of a record, opened as a person does: from a search or list, by its button.
async fn open_card(h: &BotStack, from: &TgUser, list: &str, label: &str) -> Call {
    let found = h.bot.say(from, list).await;
    h.bot.press_for_reply(from, &found, &button(&found, label)).await
}

fn labels(message: &Call) -> Vec<String> {
    message.buttons().into_iter().map(|(l, _)| l).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_card_shows_its_open_task_last_note_activity_and_linked_deal_with_buttons_that_open_them() {
    let h = BotStack::start("bot_cards_contact", TOKEN).await;
    let acme = h.create("/api/companies", json!({"name": "Acme Rockets"})).await;
    let ann = h.create("/api/contacts", json!({"name": "Ann Lee", "company_id": acme["id"]})).await;
    let deal = h
        .create(
            "/api/deals",
            json!({"title": "Solar panels", "amount_minor": 150_000, "contact_id": ann["id"], "company_id": acme["id"]}),
        )
        .await;
    let open = h.create("/api/tasks", json!({"title": "Call Ann back", "contact_id": ann["id"]})).await;
    let finished = h.create("/api/tasks", json!({"title": "Send the brochure", "contact_id": ann["id"]})).await;
    let (status, _) = h.stack.post(&format!("/api/tasks/{}/complete", finished["id"]), json!({})).await;
    assert_eq!(status, 200);
    h.create("/api/notes", json!({"contact_id": ann["id"], "body": "First call went fine"})).await;
    h.create("/api/notes", json!({"contact_id": ann["id"], "body": "They want a demo 🚀"})).await;
    let (status, _) = h.stack.patch(&format!("/api/contacts/{}", ann["id"]), json!({"email": "ann@example.com"})).await;
    assert_eq!(status, 200);
    let (max, _) = h.user(9501, "Mia Manager", Role::Manager).await;

    let card = open_card(&h, &max, "/find Ann Lee", "Ann Lee").await;
    let text = card.text();
    assert!(text.contains("👤 Ann Lee (contact #") && text.contains("🏢 Acme Rockets"), "{text}");
    assert!(text.contains("Deals:\n• Solar panels — 1,500.00 USD · open"), "{text}");
    assert!(text.contains("Open tasks:\n• Call Ann back"), "{text}");
    assert!(!text.contains("Send the brochure"), "a done task is not open: {text}");
    assert!(text.contains("Last notes:") && text.contains("Ada Admin: They want a demo 🚀"), "{text}");
    let newest_note = text.find("They want a demo").expect("newest note");
    assert!(text.find("First call went fine").is_none_or(|older| older > newest_note), "newest first: {text}");
    assert!(text.contains("Recent activity:") && text.contains("changed email — Ada Admin"), "{text}");
    assert!(text.contains("created — Ada Admin"), "{text}");
    for expected in ["🏢 Acme Rockets", "💼 Solar panels", "⬜ Call Ann back", "📝 Note", "✏️ Edit", "🗑 Delete"]
    {
        assert!(labels(&card).iter().any(|l| l == expected), "no {expected} in {:?}", labels(&card));
    }
    assert!(card.buttons().iter().all(|(_, data)| data.len() <= 64));

    // The linked deal opens its card, which links back to the contact and the company.
    let deal_card = h.bot.press_for_reply(&max, &card, &button(&card, "Solar panels")).await;
    let text = deal_card.text();
    assert!(text.contains(&format!("💼 Solar panels (deal #{})", deal["id"])), "{text}");
    assert!(text.contains("👤 Ann Lee") && text.contains("🏢 Acme Rockets"), "{text}");
    assert_eq!(button(&deal_card, "Ann Lee"), format!("o:c:{}", ann["id"]));

    // The open task opens its card, with ✅ Done and the record it is about.
    let task_card = h.bot.press_for_reply(&max, &card, &button(&card, "Call Ann back")).await;
    let text = task_card.text();
    assert!(text.contains("Call Ann back") && text.contains(&format!("task #{}", open["id"])), "{text}");
    assert!(text.contains("About: 👤 Ann Lee"), "{text}");
    assert!(labels(&task_card).iter().any(|l| l.contains("Done")), "{:?}", labels(&task_card));

    // The company's card lists its people and deals.
    let company_card = h.bot.press_for_reply(&max, &card, &button(&card, "Acme Rockets")).await;
    let text = company_card.text();
    assert!(text.contains("People:\n• Ann Lee") && text.contains("Deals:\n• Solar panels"), "{text}");
    assert_eq!(button(&company_card, "Ann Lee"), format!("o:c:{}", ann["id"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editcompany_changes_a_field_and_a_typed_custom_field() {
    let h = BotStack::start("bot_cards_editcompany", TOKEN).await;
    h.create("/api/fields", json!({"kind": "company", "key": "employees", "label": "Employees", "type": "number"}))
        .await;
    let acme = h.create("/api/companies", json!({"name": "Acme Rockets", "custom": {"lead_score": 7}})).await;
    let (max, _) = h.user(9511, "Mia Manager", Role::Manager).await;

    let usage = h.bot.say(&max, "/editcompany acme").await;
    assert!(usage.text().contains("Usage: /editcompany ID"), "{}", usage.text());

    let fields = h.bot.say(&max, &format!("/editcompany {}", acme["id"])).await;
    assert!(fields.text().contains("Editing “Acme Rockets”"), "{}", fields.text());
    assert_eq!(labels(&fields), ["Name", "Domain", "Phone", "Employees"]);
    let ask = h.bot.press_for_reply(&max, &fields, &button(&fields, "Domain")).await;
    assert!(ask.text().contains("domain"), "{}", ask.text());
    let updated = h.bot.say(&max, "https://www.acme-rockets.example/about").await;
    assert!(
        updated.text().contains("Company updated") && updated.text().contains("🌐 acme-rockets.example"),
        "{}",
        updated.text()
    );
    let (_, now) = h.stack.get(&format!("/api/companies/{}", acme["id"])).await;
    assert_eq!(now["domain"], "acme-rockets.example");

    // ✏️ Edit on the card offers the custom field; the answer is read as a number.
    let fields = h.bot.press_for_reply(&max, &updated, &button(&updated, "Edit")).await;
    let ask = h.bot.press_for_reply(&max, &fields, &button(&fields, "Employees")).await;
    assert!(ask.text().contains("A number"), "{}", ask.text());
    let refused = h.bot.say(&max, "lots").await;
    assert!(refused.text().contains("Employees must be a number"), "{}", refused.text());
    let saved = h.bot.say(&max, "40").await;
    assert!(saved.text().contains("Company updated") && saved.text().contains("Employees: 40"), "{}", saved.text());
    let (_, now) = h.stack.get(&format!("/api/companies/{}", acme["id"])).await;
    assert_eq!(now["custom"], json!({"employees": 40, "lead_score": 7}), "the other keys stay");
    assert!(saved.text().contains("changed Employees — Mia Manager"), "the card's activity: {}", saved.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_asks_first_and_only_the_asker_with_a_role_that_may_delete_can_confirm() {
    const GROUP: i64 = -7700;
    let h = BotStack::start_with("bot_cards_delete", TOKEN, &[("CRM_BOT_GROUPS", &GROUP.to_string())]).await;
    let (max, max_id) = h.user(9521, "Mia Manager", Role::Manager).await;
    let (olga, _) = h.user(9522, "Olga Other", Role::Manager).await;
    let (vera, _) = h.user(9523, "Vera Viewer", Role::Viewer).await;
    let deal = h.create("/api/deals", json!({"title": "Doomed deal"})).await;
    let deal_path = format!("/api/deals/{}", deal["id"]);

    // A viewer is refused with the reason, and is not offered the button.
    let refused = h.bot.say(&vera, &format!("/delete deal {}", deal["id"])).await;
    assert!(refused.text().contains("Your role (viewer) cannot delete"), "{}", refused.text());
    assert!(refused.buttons().is_empty());
    let card = open_card(&h, &vera, "/deals", "Doomed deal").await;
    assert!(!labels(&card).iter().any(|l| l.contains("Delete")), "{:?}", labels(&card));
    let usage = h.bot.say(&max, "/delete planet 3").await;
    assert!(usage.text().contains("Usage: /delete"), "{}", usage.text());

    // In a group, the confirmation is the asker's: another person's press is refused.
    let confirm = h.bot.say_in_group(&max, GROUP, &format!("/delete deal {}", deal["id"])).await;
    assert!(confirm.text().contains(&format!("Delete deal #{} “Doomed deal”?", deal["id"])), "{}", confirm.text());
    assert!(confirm.text().contains("Only Mia Manager can answer"), "{}", confirm.text());
    let id = confirm.message_id().expect("id");
    let notice = h.bot.press_in_group(&olga, GROUP, id, &button(&confirm, "Delete")).await;
    assert!(notice.contains("Only the person who asked"), "{notice}");
    assert_eq!(h.stack.get(&deal_path).await.0, 200, "nothing was deleted");

    // Cancel keeps the record, and says so in place of the buttons.
    let notice = h.bot.press_in_group(&max, GROUP, id, &button(&confirm, "Cancel")).await;
    assert!(notice.contains("Cancelled"), "{notice}");
    h.bot.edited(GROUP, id, "nothing was deleted").await;
    assert_eq!(h.stack.get(&deal_path).await.0, 200);

    // From the card: 🗑 Delete asks, Delete deletes, and the activity log records who did.
    let card = open_card(&h, &max, "/deals", "Doomed deal").await;
    let confirm = h.bot.press_for_reply(&max, &card, &button(&card, "Delete")).await;
    assert!(confirm.text().contains("Delete deal #"), "{}", confirm.text());
    let delete = button(&confirm, "Delete");
    let notice = h.bot.press(&max, &confirm, &delete).await;
    assert!(notice.contains(&format!("Deleted deal #{}", deal["id"])), "{notice}");
    h.bot.edited(max.id, confirm.message_id().expect("id"), "🗑 Deleted deal").await;
    assert_eq!(h.stack.get(&deal_path).await.0, 404);
    let (_, activity) = h.stack.get(&format!("/api/activity?record_kind=deal&record_id={}", deal["id"])).await;
    let newest = &activity["items"][0];
    assert_eq!((newest["action"].as_str(), newest["actor_id"].as_i64()), (Some("deleted"), Some(max_id)), "{activity}");

    // A second press does nothing but say so.
    let notice = h.bot.press(&max, &confirm, &delete).await;
    assert!(notice.contains("already deleted"), "{notice}");
    let deletions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM activity WHERE record_kind = 'deal' AND record_id = $1 AND action = 'deleted'",
    )
    .bind(deal["id"].as_i64())
    .fetch_one(&h.stack.db.pool)
    .await
    .expect("count deletions");
    assert_eq!(deletions, 1);

    // An admin may delete too; the command asks the same way for any kind of record.
    let (ada, _) = h.user(9524, "Ada Admin", Role::Admin).await;
    let task = h.create("/api/tasks", json!({"title": "Stale task"})).await;
    let confirm = h.bot.say(&ada, &format!("/delete task {}", task["id"])).await;
    let notice = h.bot.press(&ada, &confirm, &button(&confirm, "Delete")).await;
    assert!(notice.contains("Deleted task"), "{notice}");
    assert_eq!(h.stack.get(&format!("/api/tasks/{}", task["id"])).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_is_a_t_me_link_that_opens_the_bot_with_the_code() {
    let h = BotStack::start("bot_cards_invite", TOKEN).await;
    let (alice, _) = h.user(9531, "Alice Admin", Role::Admin).await;

    let invite = h.bot.say(&alice, "/invite viewer").await;
    let prefix = format!("https://t.me/{}?start=", h.bot.api.bot_username());
    let code = invite
        .text()
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {prefix} link in {:?}", invite.text()))
        .to_string();
    assert!(invite.text().lines().any(|l| l == format!("/start {code}")), "{}", invite.text());

    // Opening the link makes Telegram send `/start CODE` to the bot.
    let newcomer = TgUser::new(9532, "Nina Newcomer");
    let welcome = h.bot.say(&newcomer, &format!("/start {code}")).await;
    assert!(
        welcome.text().contains("Welcome, Nina Newcomer") && welcome.text().contains("viewer"),
        "{}",
        welcome.text()
    );
}
