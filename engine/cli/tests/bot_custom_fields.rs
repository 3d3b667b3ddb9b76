//! Custom fields in the chat, end to end: the real `crm bot` against the loopback Bot API
//! server and a real engine. A card shows the defined fields under their labels (money
//! formatted, yes/no as words) and free-form keys as they are; the edit dialogue offers the
//! defined fields next to the usual ones, a choice field's choices as buttons, and a typed
//! answer is read by the field's type and refused with the reason when it does not fit.
//! Adding a record asks its required custom fields after the usual ones; `/addtask TITLE`
//! asks just those before it adds the task.

use crm_concepts::user::Role;
use crm_testing::bot::button;
use crm_testing::{BotStack, TgUser};
use serde_json::json;

const TOKEN: &str = "4444:local-test-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_shows_custom_fields_and_a_choice_is_edited_by_button() {
    let h = BotStack::start("bot_custom_fields", TOKEN).await;
    for body in [
        json!({"kind": "contact", "key": "tier", "label": "Tier", "type": "choice", "choices": ["gold", "silver"],
               "required": true}),
        json!({"kind": "contact", "key": "budget", "label": "Budget", "type": "money"}),
        json!({"kind": "contact", "key": "seats", "label": "Seats", "type": "number"}),
    ] {
        let (st, v) = h.stack.post("/api/fields", body).await;
        assert_eq!(st, 201, "{v}");
    }
    let (st, ann) = h
        .stack
        .post(
            "/api/contacts",
            json!({"name": "Ann Lee", "custom": {"tier": "silver", "budget": "1500.50 EUR", "lead_score": 25}}),
        )
        .await;
    assert_eq!(st, 201, "{ann}");
    let (max, _) = h.user(9301, "Max Manager", Role::Manager).await;

    let found = h.bot.say(&max, "/find Ann Lee").await;
    let card = h.bot.press_for_reply(&max, &found, &format!("o:c:{}", ann["id"])).await;
    let text = card.text();
    assert!(text.contains("Tier: silver"), "{text}");
    assert!(text.contains("Budget: 1,500.50 EUR"), "{text}");
    assert!(text.contains("lead_score: 25"), "a free-form key is shown too: {text}");

    // ✏️ Edit offers the custom fields; a choice field's choices come as buttons.
    let fields = h.bot.press_for_reply(&max, &card, &button(&card, "Edit")).await;
    let tier_q = h.bot.press_for_reply(&max, &fields, &button(&fields, "Tier")).await;
    assert!(tier_q.text().contains("Tier?"), "{}", tier_q.text());
    let labels: Vec<String> = tier_q.buttons().into_iter().map(|(l, _)| l).collect();
    assert_eq!(labels, ["gold", "silver"]);
    let updated = h.bot.press_for_reply(&max, &tier_q, &button(&tier_q, "gold")).await;
    assert!(updated.text().contains("Contact updated") && updated.text().contains("Tier: gold"), "{}", updated.text());
    let (_, now) = h.stack.get(&format!("/api/contacts/{}", ann["id"])).await;
    assert_eq!(
        now["custom"],
        json!({"tier": "gold", "budget": {"amount_minor": 150_050, "currency": "EUR"}, "lead_score": 25}),
        "the other keys stay"
    );

    // A typed answer is read by the field's type; one that does not fit is asked again.
    let fields = h.bot.press_for_reply(&max, &updated, &button(&updated, "Edit")).await;
    let seats_q = h.bot.press_for_reply(&max, &fields, &button(&fields, "Seats")).await;
    assert!(seats_q.text().contains("A number"), "{}", seats_q.text());
    let refused = h.bot.say(&max, "many").await;
    assert!(refused.text().contains("Seats must be a number"), "{}", refused.text());
    let saved = h.bot.say(&max, "12").await;
    assert!(saved.text().contains("Seats: 12"), "{}", saved.text());
    let (_, now) = h.stack.get(&format!("/api/contacts/{}", ann["id"])).await;
    assert_eq!(now["custom"]["seats"], 12);

    // /addcontact asks the required Tier last, with its choices as buttons.
    h.bot.say(&max, "/addcontact").await;
    h.bot.say(&max, "Bo Berg").await;
    h.bot.say(&max, "-").await;
    h.bot.say(&max, "-").await;
    let tier_q = h.bot.say(&max, "-").await;
    assert!(tier_q.text().contains("Tier?") && !tier_q.text().contains("skip"), "{}", tier_q.text());
    let refused = h.bot.say(&max, "-").await;
    assert!(refused.text().contains("Tier is required"), "{}", refused.text());
    let added = h.bot.press_for_reply(&max, &tier_q, &button(&tier_q, "silver")).await;
    assert!(added.text().contains("Contact added") && added.text().contains("Tier: silver"), "{}", added.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addtask_with_a_title_asks_the_required_task_fields_then_adds_the_task() {
    let h = BotStack::start("bot_custom_task", TOKEN).await;
    for body in [
        json!({"kind": "task", "key": "effort", "label": "Effort", "type": "number", "required": true}),
        json!({"kind": "task", "key": "note", "label": "Note", "type": "text"}),
    ] {
        let (st, v) = h.stack.post("/api/fields", body).await;
        assert_eq!(st, 201, "{v}");
    }
    let user = crm_testing::users::linked(&h.stack.db, "Max Manager", Role::Manager, 9302, None).await;
    let max = TgUser::new(9302, "Max Manager");

    // Only the required field is asked; the title is the one given.
    let effort_q = h.bot.say(&max, "/addtask Call Ann back").await;
    let text = effort_q.text();
    assert!(text.contains("Call Ann back") && text.contains("Effort? A number"), "{text}");
    assert!(!text.contains("Note") && !text.contains("skip"), "{text}");
    let refused = h.bot.say(&max, "-").await;
    assert!(refused.text().contains("Effort is required"), "{}", refused.text());
    let refused = h.bot.say(&max, "a lot").await;
    assert!(refused.text().contains("Effort must be a number"), "{}", refused.text());
    let (_, none) = h.stack.get("/api/tasks").await;
    assert_eq!(none["items"], json!([]), "nothing is added before the answers are in");

    let added = h.bot.say(&max, "3").await;
    assert!(added.text().contains("Task added") && added.text().contains("Call Ann back"), "{}", added.text());
    let (_, tasks) = h.stack.get("/api/tasks").await;
    assert_eq!(tasks["items"][0]["title"], "Call Ann back", "{tasks}");
    assert_eq!(tasks["items"][0]["custom"], json!({"effort": 3}), "{tasks}");
    assert_eq!(tasks["items"][0]["assignee_id"], user.id, "{tasks}");
}
