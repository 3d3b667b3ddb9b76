//! The example automations of `workflows/`, each deployed with `crm workflow deploy` onto a
//! real engine and worker, checked by what they do to the records and the chat outbox
//! (`notifications`, which the bot delivers).

use std::time::{Duration, Instant};

use crm_testing::Flow;
use crm_triggers::signature::Signed;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn create(flow: &Flow, path: &str, body: Value) -> Value {
    let (status, v) = flow.post(path, body).await;
    assert_eq!(status, StatusCode::CREATED, "{path}: {v}");
    v
}

async fn user(flow: &Flow, name: &str) -> i64 {
    create(flow, "/api/users", json!({"name": name, "role": "manager"})).await["id"].as_i64().expect("user id")
}

async fn stage(flow: &Flow, kind: &str) -> i64 {
    let (_, pipelines) = flow.get("/api/pipelines").await;
    pipelines["items"][0]["stages"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["kind"] == kind))
        .and_then(|s| s["id"].as_i64())
        .expect("stage of that kind")
}

/// Waits until `workflow` has `n` runs and all are final; returns their inputs and statuses.
async fn runs_of(flow: &Flow, workflow: &str, n: usize) -> Vec<(Value, String)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let runs: Vec<(Value, String)> =
            sqlx::query_as("SELECT input, status FROM runs WHERE workflow = $1 ORDER BY created_at")
                .bind(workflow)
                .fetch_all(&flow.db.pool)
                .await
                .expect("runs");
        let finished = runs.iter().all(|(_, s)| ["succeeded", "failed", "cancelled"].contains(&s.as_str()));
        if runs.len() >= n && finished {
            assert_eq!(runs.len(), n, "{workflow}: {runs:?}");
            return runs;
        }
        assert!(Instant::now() < deadline, "{workflow}: waiting for {n} finished runs, have {runs:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn notifications(flow: &Flow, user_id: i64) -> Vec<String> {
    sqlx::query_scalar("SELECT text FROM notifications WHERE user_id = $1 ORDER BY id")
        .bind(user_id)
        .fetch_all(&flow.db.pool)
        .await
        .expect("notifications")
}

/// Lets the event consumer see every write so far (and start whatever it starts).
async fn settle(flow: &Flow) {
    for _ in 0..200 {
        let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE processed_at IS NULL")
            .fetch_one(&flow.db.pool)
            .await
            .expect("outbox");
        if pending == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the outbox was not drained");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_contact_is_scored_and_the_score_written_back_does_not_retrigger() {
    let mut flow = Flow::start("auto_score").await;
    flow.deploy("score-new-leads");
    flow.start_worker(4);

    let ann =
        create(&flow, "/api/contacts", json!({"name": "Ann Lee", "email": "ann@lee.example", "phone": "+1 555 0100"}))
            .await;
    let runs = runs_of(&flow, "score-new-leads", 1).await;
    assert_eq!(runs[0].1, "succeeded");
    assert_eq!(runs[0].0["contact_id"], ann["id"]);

    let result: Value = sqlx::query_scalar("SELECT result FROM runs WHERE workflow = 'score-new-leads'")
        .fetch_one(&flow.db.pool)
        .await
        .expect("run result");
    let (_, contact) = flow.get(&format!("/api/contacts/{}", ann["id"])).await;
    // Reachable by email and phone, nothing else known yet: a cold lead with a few points.
    let score = contact["custom"]["lead_score"].as_i64().expect("lead_score written back");
    assert!((15..40).contains(&score), "{contact}");
    assert_eq!(contact["custom"]["lead_grade"], "cold");
    assert_eq!(result["score"], score, "{result}");

    // The write-back was an update by the run itself: no second run.
    settle(&flow).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(runs_of(&flow, "score-new-leads", 1).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_won_deal_congratulates_its_owner_and_creates_a_follow_up_task() {
    let mut flow = Flow::start("auto_won").await;
    flow.deploy("celebrate-won-deal");
    flow.start_worker(4);
    let owner = user(&flow, "Olga Owner").await;
    let acme = create(&flow, "/api/companies", json!({"name": "Acme GmbH"})).await;
    let deal = create(
        &flow,
        "/api/deals",
        json!({"title": "Acme rollout", "amount_minor": 1_250_000, "pipeline_id": 1, "stage_id": stage(&flow, "open").await,
               "owner_id": owner, "company_id": acme["id"]}),
    )
    .await;
    let lost_deal = create(
        &flow,
        "/api/deals",
        json!({"title": "Globex pilot", "pipeline_id": 1, "stage_id": stage(&flow, "open").await, "owner_id": owner}),
    )
    .await;

    let (s, _) =
        flow.post(&format!("/api/deals/{}/move", deal["id"]), json!({"stage_id": stage(&flow, "won").await})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = flow
        .post(&format!("/api/deals/{}/move", lost_deal["id"]), json!({"stage_id": stage(&flow, "lost").await}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let runs = runs_of(&flow, "celebrate-won-deal", 1).await;
    assert_eq!(runs[0].1, "succeeded");
    assert_eq!(runs[0].0["deal_id"], deal["id"]);

    let messages = notifications(&flow, owner).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].contains("Deal won: Acme rollout")
            && messages[0].contains("$12,500.00")
            && messages[0].contains("Acme GmbH"),
        "{}",
        messages[0]
    );

    let (_, tasks) = flow.get(&format!("/api/tasks?deal_id={}", deal["id"])).await;
    let tasks = tasks["items"].as_array().expect("tasks").clone();
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0]["title"], "Kick off onboarding: Acme rollout");
    assert_eq!(tasks[0]["assignee_id"], owner);
    assert_eq!(tasks[0]["done"], false);

    // Renaming the won deal is not another win.
    let (s, _) =
        send_patch(&flow, &format!("/api/deals/{}", deal["id"]), json!({"title": "Acme rollout (signed)"})).await;
    assert_eq!(s, StatusCode::OK);
    settle(&flow).await;
    assert_eq!(runs_of(&flow, "celebrate-won-deal", 1).await.len(), 1);
}

async fn send_patch(flow: &Flow, path: &str, body: Value) -> (StatusCode, Value) {
    crm_testing::send(flow.request(reqwest::Method::PATCH, path).json(&body)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daily_digest_reaches_each_owner_once_even_after_days_of_downtime() {
    let mut flow = Flow::start("auto_digest").await;
    let olga = user(&flow, "Olga Owner").await;
    let pete = user(&flow, "Pete Owner").await;
    let open = stage(&flow, "open").await;
    let deal = |title: &'static str, owner: i64| {
        let flow = &flow;
        async move {
            create(flow, "/api/deals", json!({"title": title, "pipeline_id": 1, "stage_id": open, "owner_id": owner}))
                .await
        }
    };
    deal("Old Acme deal", olga).await;
    deal("Older Globex deal", olga).await;
    deal("Stuck Initech deal", pete).await;
    let fresh = deal("Fresh Umbrella deal", pete).await;
    sqlx::query("UPDATE deals SET stage_changed_at = now() - interval '20 days' WHERE id <> $1")
        .bind(fresh["id"].as_i64())
        .execute(&flow.db.pool)
        .await
        .expect("age the deals");

    flow.deploy("stale-deals-digest");
    flow.start_worker(4);
    // Wait for the engine to pick the schedule up, then pretend it was last up two days ago:
    // the two missed mornings collapse into one digest run.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM trigger_schedules WHERE workflow = 'stale-deals-digest' AND enabled",
        )
        .fetch_one(&flow.db.pool)
        .await
        .expect("schedules");
        if n == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the schedule never appeared");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, schedules) = flow.get("/api/schedules").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(schedules["items"][0]["expression"], "0 0 9 * * *");
    // The last tick claimed was two mornings before the latest one.
    let now = chrono::Utc::now();
    let mut morning = now.date_naive().and_hms_opt(9, 0, 0).expect("09:00").and_utc();
    if morning > now {
        morning -= chrono::Duration::days(1);
    }
    let last = morning - chrono::Duration::days(2) + chrono::Duration::minutes(1);
    sqlx::query("UPDATE trigger_schedules SET last_tick_at = $1")
        .bind(last)
        .execute(&flow.db.pool)
        .await
        .expect("backdate");

    let runs = runs_of(&flow, "stale-deals-digest", 1).await;
    assert_eq!(runs[0].1, "succeeded");
    assert_eq!(runs[0].0["trigger"], "cron");
    assert_eq!(runs[0].0["missed"], 1, "two missed mornings: one run standing for the other");

    let to_olga = notifications(&flow, olga).await;
    assert_eq!(to_olga.len(), 1, "{to_olga:?}");
    assert!(
        to_olga[0].starts_with("2 of your deals")
            && to_olga[0].contains("Old Acme deal")
            && to_olga[0].contains("Older Globex deal"),
        "{}",
        to_olga[0]
    );
    let to_pete = notifications(&flow, pete).await;
    assert_eq!(to_pete.len(), 1, "{to_pete:?}");
    assert!(to_pete[0].contains("Stuck Initech deal") && !to_pete[0].contains("Fresh Umbrella"), "{}", to_pete[0]);

    // Nothing else is due until the next morning.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(runs_of(&flow, "stale-deals-digest", 1).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_lead_form_creates_a_contact_and_a_deal_which_then_get_scored() {
    let mut flow = Flow::start("auto_inbound").await;
    flow.deploy("inbound-lead");
    flow.deploy("score-new-leads");
    flow.start_worker(4);

    let secret = "form-secret-shared-with-the-website";
    let (status, set) = flow.post("/api/webhook-keys/INBOUND_LEAD_HMAC", json!({"key": secret})).await;
    assert_eq!(status, StatusCode::OK, "{set}");
    let signed = |ts: i64, body: &[u8]| {
        crm_triggers::signature::sign(secret.as_bytes(), ts, Signed { path: "inbound-lead", body })
    };

    let body = serde_json::to_vec(&json!({
        "name": "Carla Cruz", "email": "carla@cruz.example", "phone": "+34 600 000 000",
        "company": "Cruz Logistics", "message": "Need 40 seats", "amount_minor": 480000
    }))
    .unwrap();
    let ts = chrono::Utc::now().timestamp();
    let (status, accepted) = crm_testing::send(
        flow.client
            .post(format!("{}/hooks/inbound-lead", flow.url))
            .header("X-Crm-Timestamp", ts.to_string())
            .header("X-Crm-Signature", signed(ts, &body))
            .body(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let runs = runs_of(&flow, "inbound-lead", 1).await;
    assert_eq!(runs[0].1, "succeeded");

    let (_, contacts) = flow.get("/api/contacts?q=carla@cruz.example").await;
    let contact = contacts["items"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["email"] == "carla@cruz.example"))
        .cloned()
        .expect("the contact");
    assert_eq!(contact["name"], "Carla Cruz");
    assert_eq!(contact["custom"]["source"], "web-form");
    assert_eq!(contact["custom"]["company_name"], "Cruz Logistics");
    let (_, deals) = flow.get(&format!("/api/deals?contact_id={}", contact["id"])).await;
    let deals = deals["items"].as_array().expect("deals").clone();
    assert_eq!(deals.len(), 1, "{deals:?}");
    assert_eq!(deals[0]["title"], "Inbound: Carla Cruz (Cruz Logistics)");
    assert_eq!(deals[0]["amount_minor"], 480000);
    assert_eq!(deals[0]["stage_id"], stage(&flow, "open").await);

    // The contact the webhook's run created is a new lead: the scoring automation runs for it.
    let scored = runs_of(&flow, "score-new-leads", 1).await;
    assert_eq!(scored[0].0["contact_id"], contact["id"]);
    let chain: Vec<String> = sqlx::query_scalar("SELECT chain FROM triggered_runs WHERE workflow = 'score-new-leads'")
        .fetch_one(&flow.db.pool)
        .await
        .expect("chain");
    assert_eq!(chain, vec!["inbound-lead"]);

    // A replay of the same signed request is refused and creates nothing.
    let (status, _) = crm_testing::send(
        flow.client
            .post(format!("{}/hooks/inbound-lead", flow.url))
            .header("X-Crm-Timestamp", ts.to_string())
            .header("X-Crm-Signature", signed(ts, &body))
            .body(body),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(runs_of(&flow, "inbound-lead", 1).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_deal_that_does_not_move_in_three_days_gets_a_nudge_and_one_that_moves_does_not() {
    let mut flow = Flow::start_with_test_clock("auto_nudge").await;
    flow.deploy("nudge-unmoved-deal");
    flow.start_worker(4);
    let owner = user(&flow, "Olga Owner").await;
    let open = stage(&flow, "open").await;
    let quiet = create(
        &flow,
        "/api/deals",
        json!({"title": "Quiet Corp", "pipeline_id": 1, "stage_id": open, "owner_id": owner}),
    )
    .await;
    let busy = create(
        &flow,
        "/api/deals",
        json!({"title": "Busy Inc", "pipeline_id": 1, "stage_id": open, "owner_id": owner}),
    )
    .await;
    let waiting = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM runs WHERE workflow = 'nudge-unmoved-deal' AND status = 'waiting'",
        )
        .fetch_one(&flow.db.pool)
        .await
        .expect("runs")
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while waiting().await < 2 {
        assert!(Instant::now() < deadline, "both new deals' runs wait");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // One deal moves within the three days; the other does not.
    let (_, pipelines) = flow.get("/api/pipelines").await;
    let next = pipelines["items"][0]["stages"][1]["id"].as_i64().expect("a second stage");
    let (s, _) = flow.post(&format!("/api/deals/{}/move", busy["id"]), json!({"stage_id": next})).await;
    assert_eq!(s, StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(30);
    while waiting().await > 1 {
        assert!(Instant::now() < deadline, "the moved deal's run goes on");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    flow.advance_clock("3d").await;
    let runs = runs_of(&flow, "nudge-unmoved-deal", 2).await;
    assert!(runs.iter().all(|(_, s)| s == "succeeded"), "{runs:?}");

    let (_, tasks) = flow.get(&format!("/api/tasks?deal_id={}", quiet["id"])).await;
    let tasks = tasks["items"].as_array().expect("tasks").clone();
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0]["title"], "Nudge: Quiet Corp has not moved in 3 days");
    assert_eq!(tasks[0]["assignee_id"], owner);
    let (_, tasks) = flow.get(&format!("/api/tasks?deal_id={}", busy["id"])).await;
    assert_eq!(tasks["items"], json!([]), "the deal that moved gets no nudge");
}
