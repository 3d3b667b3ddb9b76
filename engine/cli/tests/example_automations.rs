//! The example automations `crm up` deploys that wait, used from the chat: the real
//! `crm bot` against the loopback Bot API server, a real engine on the test clock (days
//! pass in a request) and a real worker, with the manifests of `workflows/` as shipped.
//!
//! - `discount-approval`: `/discount DEAL PERCENT`; up to 20% at once, above that an admin
//!   approves by button (a viewer's or a rep's press is refused), and nobody deciding in two
//!   days rejects it; the requester hears the outcome either way.
//! - `onboarding-drip`: a deal won from the chat gets a welcome message at once, a feedback
//!   task a week later and a check-in task a month in (`wait` between them).
//! - `nudge-unmoved-deal`: a deal added in the chat that moves within three days gets no
//!   nudge; one that does not gets a follow-up task in its owner's `/tasks`.

use crm_concepts::user::Role;
use crm_testing::bot::{ChatBot, button};
use crm_testing::{Flow, TgUser};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

const WAIT: std::time::Duration = ChatBot::WAIT;
const TG_TOKEN: &str = "4747:local-test-token";

/// A CRM user of `role` linked to Telegram account `tg`; returns their id.
async fn person(flow: &Flow, name: &str, role: Role, tg: &TgUser) -> i64 {
    let (id, _) = crm_testing::users::with_token(&flow.db, name, role).await;
    sqlx::query("UPDATE users SET telegram_user_id = $1 WHERE id = $2")
        .bind(tg.id)
        .bind(id)
        .execute(&flow.db.pool)
        .await
        .expect("link the user to Telegram");
    id
}

fn step<'a>(run: &'a Value, id: &str) -> &'a Value {
    run["steps"].as_array().and_then(|s| s.iter().find(|s| s["step"] == id)).unwrap_or_else(|| panic!("no step {id}"))
}

/// The runs of `workflow`, newest first.
async fn runs_of(flow: &Flow, workflow: &str) -> Vec<Uuid> {
    sqlx::query_scalar("SELECT id FROM runs WHERE workflow = $1 ORDER BY created_at DESC")
        .bind(workflow)
        .fetch_all(&flow.db.pool)
        .await
        .expect("read runs")
}

/// Waits for the one run of `workflow` started after `before` of them existed.
async fn new_run(flow: &Flow, workflow: &str, before: usize) -> Uuid {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let runs = runs_of(flow, workflow).await;
        if runs.len() > before {
            return runs[0];
        }
        assert!(tokio::time::Instant::now() < deadline, "no new run of {workflow}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn deal_custom(flow: &Flow, deal: i64) -> Value {
    flow.get(&format!("/api/deals/{deal}")).await.1["custom"].clone()
}

/// A discount-approval flow: Sam the rep (manager role) owns a 10,000.00 USD deal, Lena
/// the sales lead is an admin, Vic a viewer; all three have opened the chat.
struct Discounts {
    flow: Flow,
    bot: ChatBot,
    sam: TgUser,
    lena: TgUser,
    vic: TgUser,
    lena_id: i64,
    deal: i64,
}

impl Discounts {
    async fn start(purpose: &str) -> Discounts {
        let mut flow = Flow::start_with_test_clock(purpose).await;
        flow.deploy("discount-approval");
        flow.start_worker(2);
        let (sam, lena, vic) = (TgUser::new(8001, "Sam"), TgUser::new(8002, "Lena"), TgUser::new(8003, "Vic"));
        let sam_id = person(&flow, "Sam Sales", Role::Manager, &sam).await;
        let lena_id = person(&flow, "Lena Lead", Role::Admin, &lena).await;
        person(&flow, "Vic Viewer", Role::Viewer, &vic).await;
        let (status, deal) = flow
            .post("/api/deals", json!({"title": "Fleet renewal", "amount_minor": 1_000_000, "owner_id": sam_id}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{deal}");
        let bot = ChatBot::start(TG_TOKEN, &flow.url, &flow.bot_token).await;
        for who in [&sam, &lena, &vic] {
            bot.open_chat(who).await;
        }
        Discounts { flow, bot, sam, lena, vic, lena_id, deal: deal["id"].as_i64().expect("deal id") }
    }

    /// Sam asks for `percent` off; returns his "running" message and the run.
    async fn ask(&self, percent: i64) -> (i64, Uuid) {
        let before = runs_of(&self.flow, "discount-approval").await.len();
        let running = self.bot.say(&self.sam, &format!("/discount {} {percent}", self.deal)).await;
        assert!(running.text().contains("Running discount-approval"), "{}", running.text());
        let run = new_run(&self.flow, "discount-approval", before).await;
        (running.message_id().expect("message id"), run)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discount_within_the_limit_is_given_at_once_and_a_larger_one_waits_for_an_admins_button() {
    let d = Discounts::start("ex_discount_decide").await;
    let (bot, flow) = (&d.bot, &d.flow);

    // 10% is within the limit: applied at once, nobody is asked.
    let since = bot.api.seq();
    let (running, run) = d.ask(10).await;
    let done = bot.edited(d.sam.id, running, "✅ 10% off “Fleet renewal”: $10,000.00 → $9,000.00").await;
    assert!(done.text().contains("no approval needed"), "{}", done.text());
    assert_eq!(flow.wait_final(&[run], WAIT).await, vec!["succeeded"]);
    assert_eq!(deal_custom(flow, d.deal).await["discount_percent"], 10);
    assert!(bot.sent_to(since, d.lena.id).is_empty(), "nobody is asked");

    // 25% needs an approval: the admin is asked, the rep and the viewer are not.
    let since = bot.api.seq();
    let (running, run) = d.ask(25).await;
    flow.wait_status(run, "waiting", WAIT).await;
    let asked = bot.message(since, d.lena.id, "Give 25% off “Fleet renewal”").await;
    assert!(asked.text().contains("$10,000.00 → $7,500.00"), "{}", asked.text());
    let approve = button(&asked, "Approve");
    let message = asked.message_id().expect("message id");
    assert!(bot.sent_to(since, d.vic.id).is_empty());
    assert!(bot.sent_to(since, d.sam.id).iter().all(|c| c.buttons().is_empty()), "the rep is not asked");

    // Pressing a forwarded button: the viewer and the rep are refused, nothing changes.
    for who in [&d.vic, &d.sam] {
        let refused = bot.press(who, message, &approve).await;
        assert!(refused.contains("only an admin"), "{refused}");
    }
    let (_, detail) = flow.get(&format!("/api/runs/{run}")).await;
    assert_eq!(detail["status"], "waiting", "{detail}");
    assert_eq!(deal_custom(flow, d.deal).await["discount_percent"], 10);

    // The admin approves: the rep hears it in a new message, and his request shows it.
    let since = bot.api.seq();
    assert_eq!(bot.press(&d.lena, message, &approve).await, "✅ Approved.");
    bot.edited(d.lena.id, message, "✅ Approved by Lena Lead").await;
    let told = bot.message(since, d.sam.id, "✅ 25% off “Fleet renewal”: $10,000.00 → $7,500.00. Approved.").await;
    assert!(told.buttons().is_empty());
    bot.edited(d.sam.id, running, "✅ 25% off “Fleet renewal”").await;
    assert_eq!(flow.wait_final(&[run], WAIT).await, vec!["succeeded"]);
    let (_, detail) = flow.get(&format!("/api/runs/{run}")).await;
    assert_eq!(step(&detail, "ask")["output"]["decided_by"], d.lena_id, "{detail}");
    assert_eq!(step(&detail, "decline")["status"], "skipped");
    let custom = deal_custom(flow, d.deal).await;
    assert_eq!(
        (custom["discount_percent"].clone(), custom["discount_approved_by"].clone()),
        (json!(25), json!(d.lena_id))
    );
    flow.assert_clean_history(&[run]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discount_nobody_decides_is_rejected_after_two_days_and_the_rep_is_told() {
    let d = Discounts::start("ex_discount_timeout").await;
    let (bot, flow) = (&d.bot, &d.flow);
    let since = bot.api.seq();
    let (running, run) = d.ask(30).await;
    let asked = bot.message(since, d.lena.id, "Give 30% off “Fleet renewal”").await;
    assert!(asked.text().contains("without a decision it is rejected"), "{}", asked.text());

    flow.advance_clock("1d").await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(flow.get(&format!("/api/runs/{run}")).await.1["status"], "waiting");
    let since = bot.api.seq();
    flow.advance_clock("1d").await;
    assert_eq!(flow.wait_final(&[run], WAIT).await, vec!["succeeded"]);
    bot.message(since, d.sam.id, "⌛ 30% off “Fleet renewal”: nobody decided in time, so it is not given.").await;
    bot.edited(d.sam.id, running, "⌛ 30% off").await;
    bot.edited(d.lena.id, asked.message_id().expect("id"), "⌛ Nobody decided in time: rejected").await;
    let (_, detail) = flow.get(&format!("/api/runs/{run}")).await;
    assert_eq!(step(&detail, "ask")["output"]["timed_out"], true, "{detail}");
    assert_eq!(step(&detail, "apply")["status"], "skipped");
    assert!(deal_custom(flow, d.deal).await.get("discount_percent").is_none(), "nothing was given");

    // A late press changes nothing.
    let late = bot.press(&d.lena, asked.message_id().expect("id"), &button(&asked, "Approve")).await;
    assert_eq!(late, "This was decided already; nothing changed.");
    assert!(deal_custom(flow, d.deal).await.get("discount_percent").is_none());

    // A discount on a closed deal is refused before anyone is asked.
    let (_, pipelines) = flow.get("/api/pipelines").await;
    let won = pipelines["items"][0]["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["name"] == "Won")
        .expect("Won")["id"]
        .clone();
    let (status, body) = flow.post(&format!("/api/deals/{}/move", d.deal), json!({"stage_id": won})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let since = bot.api.seq();
    let (running, _) = d.ask(50).await;
    let refused = bot.edited(d.sam.id, running, "Could not give a discount on deal").await;
    assert!(refused.text().contains("is won; a discount applies to open deals"), "{}", refused.text());
    assert!(bot.sent_to(since, d.lena.id).is_empty());
}

/// Adds a deal in the chat as `who` with `/adddeal`; returns its id.
async fn add_deal(flow: &Flow, bot: &ChatBot, who: &TgUser, title: &str) -> i64 {
    bot.say(who, "/adddeal").await;
    bot.say(who, title).await;
    bot.say(who, "5000").await;
    let stage_q = bot.say(who, "-").await;
    let lead = button(&stage_q, "Lead");
    bot.press_for_reply(who, stage_q.message_id().expect("id"), &lead).await;
    let done = bot.say(who, "-").await;
    assert!(done.text().contains("Deal added"), "{}", done.text());
    let (_, deals) = flow.get(&format!("/api/deals?q={}", title.replace(' ', "+"))).await;
    deals["items"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["title"] == title))
        .and_then(|d| d["id"].as_i64())
        .unwrap_or_else(|| panic!("deal {title} in {deals}"))
}

/// Moves deal `title` to `stage` from the chat: `/pipeline`, the deal, the stage's button.
async fn move_in_chat(bot: &ChatBot, who: &TgUser, title: &str, stage: &str) {
    let board = bot.say(who, "/pipeline").await;
    let card = bot.press_for_reply(who, board.message_id().expect("id"), &button(&board, title)).await;
    let answer = bot.press(who, card.message_id().expect("id"), &button(&card, stage)).await;
    assert!(answer.contains(&format!("Moved to {stage}")), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deal_added_in_the_chat_is_nudged_after_three_days_unless_it_moves_first() {
    let mut flow = Flow::start_with_test_clock("ex_nudge").await;
    flow.deploy("nudge-unmoved-deal");
    flow.start_worker(2);
    let olga = TgUser::new(8101, "Olga");
    person(&flow, "Olga Owner", Role::Manager, &olga).await;
    let bot = ChatBot::start(TG_TOKEN, &flow.url, &flow.bot_token).await;
    bot.open_chat(&olga).await;

    let moving = add_deal(&flow, &bot, &olga, "Moving deal").await;
    let moving_run = new_run(&flow, "nudge-unmoved-deal", 0).await;
    flow.wait_status(moving_run, "waiting", WAIT).await;
    let stuck = add_deal(&flow, &bot, &olga, "Stuck deal").await;
    let stuck_run = new_run(&flow, "nudge-unmoved-deal", 1).await;
    let waiting = flow.wait_status(stuck_run, "waiting", WAIT).await;
    assert!(waiting["waiting_for"][0]["what"].as_str().unwrap_or_default().contains(&format!("deal {stuck}")));

    // The first one moves from the chat: its run ends without a task.
    move_in_chat(&bot, &olga, "Moving deal", "Qualified").await;
    assert_eq!(flow.wait_final(&[moving_run], WAIT).await, vec!["succeeded"]);
    let (_, detail) = flow.get(&format!("/api/runs/{moving_run}")).await;
    assert_eq!(step(&detail, "follow_up")["status"], "skipped", "{detail}");

    // Three days later the other gets its nudge, in the owner's /tasks.
    flow.advance_clock("3d").await;
    assert_eq!(flow.wait_final(&[stuck_run], WAIT).await, vec!["succeeded"]);
    let tasks = bot.say(&olga, "/tasks").await;
    assert!(tasks.text().contains("Nudge: Stuck deal has not moved in 3 days"), "{}", tasks.text());
    assert!(!tasks.text().contains("Moving deal"), "{}", tasks.text());
    let (_, detail) = flow.get(&format!("/api/runs/{moving_run}")).await;
    assert_eq!(step(&detail, "follow_up")["status"], "skipped", "the moved deal's timeout fired nothing");
    let moved_tasks: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE deal_id = $1")
        .bind(moving)
        .fetch_one(&flow.db.pool)
        .await
        .expect("count tasks");
    assert_eq!(moved_tasks, 0, "no nudge for the deal that moved");
    flow.assert_clean_history(&[moving_run, stuck_run]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deal_won_in_the_chat_starts_the_onboarding_drip_a_week_and_a_month_apart() {
    let mut flow = Flow::start_with_test_clock("ex_drip").await;
    flow.deploy("onboarding-drip");
    flow.start_worker(2);
    let olga = TgUser::new(8201, "Olga");
    let olga_id = person(&flow, "Olga Owner", Role::Manager, &olga).await;
    let (status, deal) =
        flow.post("/api/deals", json!({"title": "Harbor Freight", "amount_minor": 420_000, "owner_id": olga_id})).await;
    assert_eq!(status, StatusCode::CREATED, "{deal}");
    let bot = ChatBot::start(TG_TOKEN, &flow.url, &flow.bot_token).await;
    bot.open_chat(&olga).await;

    let since = bot.api.seq();
    move_in_chat(&bot, &olga, "Harbor Freight", "Won").await;
    bot.message(since, olga.id, "📦 Harbor Freight is a customer now: send them the welcome pack today.").await;
    let run = new_run(&flow, "onboarding-drip", 0).await;
    let waiting = flow.wait_status(run, "waiting", WAIT).await;
    assert_eq!(waiting["waiting_for"][0]["step"], "week", "{waiting}");
    let runs = bot.say(&olga, "/runs").await;
    assert!(
        runs.text().contains("onboarding-drip · waiting") && runs.text().contains("week waits until"),
        "{}",
        runs.text()
    );
    let feedback = "Onboarding Harbor Freight: ask the customer for feedback";
    let check_in = "Onboarding Harbor Freight: check in after a month";
    assert!(!bot.say(&olga, "/tasks").await.text().contains(feedback));

    // Six days: nothing yet. The seventh: the feedback task, and the run waits again.
    flow.advance_clock("6d").await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert!(!bot.say(&olga, "/tasks").await.text().contains(feedback));
    flow.advance_clock("1d").await;
    let waiting = wait_for_step(&flow, run, "month").await;
    assert_eq!(step(&waiting, "feedback")["status"], "succeeded", "{waiting}");
    let tasks = bot.say(&olga, "/tasks").await;
    assert!(tasks.text().contains(feedback) && !tasks.text().contains(check_in), "{}", tasks.text());

    // A month in, the check-in task; the feedback task is still there, not found again.
    flow.advance_clock("23d").await;
    assert_eq!(flow.wait_final(&[run], WAIT).await, vec!["succeeded"]);
    let tasks = bot.say(&olga, "/tasks").await;
    assert!(tasks.text().contains(feedback) && tasks.text().contains(check_in), "{}", tasks.text());
    let open: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE deal_id = $1 AND NOT done")
        .bind(deal["id"].as_i64())
        .fetch_one(&flow.db.pool)
        .await
        .expect("count tasks");
    assert_eq!(open, 2);
    flow.assert_clean_history(&[run]).await;
}

/// Waits until the run waits at `step`; returns the run.
async fn wait_for_step(flow: &Flow, run: Uuid, step: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, detail) = flow.get(&format!("/api/runs/{run}")).await;
        if detail["waiting_for"].as_array().is_some_and(|w| w.iter().any(|w| w["step"] == step)) {
            return detail;
        }
        assert!(tokio::time::Instant::now() < deadline, "run {run} never waited at {step}: {detail}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
