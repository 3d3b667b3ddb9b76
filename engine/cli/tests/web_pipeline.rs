//! The pipeline board in a real browser against a real engine and worker: a deal dragged
//! to another stage is moved in Postgres through the API's store call (activity and
//! outbox rows included), dragged to Won it fires the `celebrate-won-deal` automation
//! whose task then shows on the deal's page; a card moves from the keyboard too; a
//! viewer's drag is refused and the card goes back.

use std::time::{Duration, Instant};

use crm_testing::{Browser, Flow, TestStack};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn stages(get: impl std::future::Future<Output = (StatusCode, Value)>) -> Vec<(i64, String)> {
    let (_, pipelines) = get.await;
    pipelines["items"][0]["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| (s["id"].as_i64().expect("id"), s["name"].as_str().expect("name").to_string()))
        .collect()
}

fn stage(stages: &[(i64, String)], name: &str) -> i64 {
    stages.iter().find(|(_, n)| n == name).map(|(id, _)| *id).unwrap_or_else(|| panic!("no stage {name}: {stages:?}"))
}

async fn stage_of(db: &crm_store::Db, deal: i64) -> i64 {
    sqlx::query_scalar("SELECT stage_id FROM deals WHERE id = $1").bind(deal).fetch_one(&db.pool).await.expect("deal")
}

/// Waits until the card has settled in `stage`'s column (the move answered).
async fn card_in(browser: &Browser, deal: i64, stage: i64) {
    browser
        .wait_until(&format!(
            "document.querySelector('#stage-{stage} #deal-{deal}') !== null && !document.querySelector('#deal-{deal}').classList.contains('pending')"
        ))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dragging_a_deal_to_won_moves_it_and_the_automation_creates_its_task() {
    let mut flow = Flow::start("web_board").await;
    flow.deploy("celebrate-won-deal");
    flow.start_worker(2);
    let stages = stages(flow.get("/api/pipelines")).await;
    let (lead, qualified, proposal, won) =
        (stage(&stages, "Lead"), stage(&stages, "Qualified"), stage(&stages, "Proposal"), stage(&stages, "Won"));
    let (_, acme) = flow.post("/api/companies", json!({"name": "Acme GmbH"})).await;
    let (status, deal) = flow
        .post(
            "/api/deals",
            json!({"title": "Acme rollout", "amount_minor": 1_250_000, "stage_id": lead, "company_id": acme["id"], "owner_id": flow.admin_id}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{deal}");
    let deal = deal["id"].as_i64().expect("deal id");
    for title in ["Globex pilot", "Initech renewal"] {
        flow.post("/api/deals", json!({"title": title, "amount_minor": 500_000, "stage_id": qualified})).await;
    }

    let browser = Browser::start().await;
    browser.sign_in_with_token(&flow.url, &flow.token).await;
    browser.goto(&format!("{}/board", flow.url)).await;
    browser.wait_until("document.documentElement.classList.contains('js')").await;
    assert!(browser.text(&format!("#stage-head-{qualified}")).await.contains("10,000.00 USD"));

    // Lead → Qualified by mouse.
    let card = browser.find(&format!("#deal-{deal}")).await;
    browser.drag(&card, &browser.find(&format!("#stage-{qualified} ol.cards")).await).await;
    card_in(&browser, deal, qualified).await;
    assert_eq!(stage_of(&flow.db, deal).await, qualified);
    let (action, before, after): (String, Value, Value) = sqlx::query_as(
        "SELECT action, before->'stage_id', after->'stage_id' FROM activity WHERE record_kind = 'deal' AND record_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(deal)
    .fetch_one(&flow.db.pool)
    .await
    .expect("activity");
    assert_eq!((action.as_str(), before, after), ("moved", json!(lead), json!(qualified)));
    let changes: Value = sqlx::query_scalar(
        "SELECT changes FROM outbox WHERE record_kind = 'deal' AND record_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(deal)
    .fetch_one(&flow.db.pool)
    .await
    .expect("outbox");
    assert_eq!(changes["stage_id"], json!([lead, qualified]));
    // The column heads follow: three deals in Qualified now.
    browser
        .wait_until(&format!("document.querySelector('#stage-head-{qualified} .count').textContent.trim() === '3'"))
        .await;
    browser.wait_for_text("Moved to Qualified.").await;

    // Qualified → Proposal from the keyboard: focus the card, press →.
    let card = browser.find(&format!("#deal-{deal}")).await;
    browser.js("arguments[0].focus();", vec![serde_json::to_value(&card).expect("element")]).await;
    card.send_keys("\u{E014}").await.expect("press the right arrow");
    card_in(&browser, deal, proposal).await;
    assert_eq!(stage_of(&flow.db, deal).await, proposal);

    // Proposal → Won: the automation congratulates and creates the onboarding task.
    let card = browser.find(&format!("#deal-{deal}")).await;
    browser.drag(&card, &browser.find(&format!("#stage-{won} ol.cards")).await).await;
    card_in(&browser, deal, won).await;
    assert_eq!(stage_of(&flow.db, deal).await, won);
    browser.screenshot("board").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let tasks: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM tasks WHERE deal_id = $1 AND title = 'Kick off onboarding: Acme rollout'",
        )
        .bind(deal)
        .fetch_one(&flow.db.pool)
        .await
        .expect("tasks");
        if tasks == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the won-deal automation made no task; engine log:\n{}", flow.engine_log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    browser.goto(&format!("{}/deals/{deal}", flow.url)).await;
    browser.wait_for_text("Kick off onboarding: Acme rollout").await;
    assert_eq!(browser.text("#deal-stage").await, "Won");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_viewers_drag_is_refused_and_the_card_goes_back() {
    let stack = TestStack::start("web_viewer").await;
    let stages = stages(stack.get("/api/pipelines")).await;
    let (lead, qualified) = (stage(&stages, "Lead"), stage(&stages, "Qualified"));
    let (_, deal) = stack.post("/api/deals", json!({"title": "Umbrella trial", "stage_id": lead})).await;
    let deal = deal["id"].as_i64().expect("deal id");
    let outbox_before = stack.count("SELECT count(*) FROM outbox").await;

    let browser = Browser::start().await;
    browser.sign_in_with_token(&stack.url, &stack.viewer_token).await;
    browser.goto(&format!("{}/board", stack.url)).await;
    browser.wait_for_text("Read only").await;
    browser.wait_until("document.documentElement.classList.contains('js')").await;
    let card = browser.find(&format!("#deal-{deal}")).await;
    browser.drag(&card, &browser.find(&format!("#stage-{qualified} ol.cards")).await).await;
    browser.wait_for_text("can look but not change records").await;
    card_in(&browser, deal, lead).await;
    assert_eq!(stage_of(&stack.db, deal).await, lead);
    assert_eq!(stack.count("SELECT count(*) FROM outbox").await, outbox_before);
    browser.close().await;
}
