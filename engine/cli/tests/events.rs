//! Record events with a real `crm serve`: concurrent writes through the API start exactly
//! one run per matching change, filters pick the right changes, and nothing is lost.

use std::collections::HashSet;
use std::time::Duration;

use crm_testing::TestStack;
use crm_testing::deploy::one_step;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn deploy(stack: &TestStack, toml: &str) {
    crm_testing::deploy::deploy(&stack.db, toml).await;
}

fn manifest(name: &str, trigger: &str) -> String {
    one_step(name, &format!("[[triggers]]\nkind = \"record_event\"\n{trigger}\n"))
}

/// Waits until the engine has consumed every outbox row.
async fn drained(stack: &TestStack) {
    for _ in 0..300 {
        if stack.count("SELECT count(*) FROM outbox WHERE processed_at IS NULL").await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the outbox was not drained within 30 s");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_writes_start_exactly_one_run_per_matching_change() {
    let stack = TestStack::start("events_http").await;
    deploy(&stack, &manifest("greet-contact", "record = \"contact\"\nactions = [\"created\"]")).await;
    deploy(
        &stack,
        &manifest("celebrate", "record = \"deal\"\nactions = [\"updated\"]\nfilter = { changed = [\"status\"], equals = { status = \"won\" } }"),
    )
    .await;

    let (_, pipelines) = stack.get("/api/pipelines").await;
    let stages = pipelines["items"][0]["stages"].as_array().expect("stages").clone();
    let stage = |kind: &str| stages.iter().find(|s| s["kind"] == kind).and_then(|s| s["id"].as_i64()).expect("stage");
    let (won, lost) = (stage("won"), stage("lost"));

    // 8 writers at once: each creates 20 contacts with a deal, wins half the deals and loses the rest.
    let mut writers = Vec::new();
    for w in 0..8 {
        let client = stack.client.clone();
        let (url, token) = (stack.url.clone(), stack.admin_token.clone());
        writers.push(tokio::spawn(async move {
            let post = |path: &str, body: Value| client.post(format!("{url}{path}")).bearer_auth(&token).json(&body);
            let mut won_deals = Vec::new();
            for i in 0..20 {
                let (s, c) = crm_testing::send(post("/api/contacts", json!({"name": format!("Lead {w}-{i}")}))).await;
                assert_eq!(s, StatusCode::CREATED, "{c}");
                let (s, d) = crm_testing::send(post(
                    "/api/deals",
                    json!({"title": format!("Deal {w}-{i}"), "contact_id": c["id"]}),
                ))
                .await;
                assert_eq!(s, StatusCode::CREATED, "{d}");
                let to = if i % 2 == 0 { won } else { lost };
                let (s, d) =
                    crm_testing::send(post(&format!("/api/deals/{}/move", d["id"]), json!({"stage_id": to}))).await;
                assert_eq!(s, StatusCode::OK, "{d}");
                if i % 2 == 0 {
                    won_deals.push(d["id"].as_i64().expect("deal id"));
                }
            }
            won_deals
        }));
    }
    let mut won_deals = HashSet::new();
    for w in writers {
        won_deals.extend(w.await.expect("writer"));
    }
    drained(&stack).await;

    let inputs: Vec<(String, Value)> =
        sqlx::query_as("SELECT workflow, input FROM runs WHERE trigger = 'record_event'")
            .fetch_all(&stack.db.pool)
            .await
            .expect("runs");
    let contact_runs: Vec<i64> =
        inputs.iter().filter(|(w, _)| w == "greet-contact").filter_map(|(_, i)| i["contact_id"].as_i64()).collect();
    assert_eq!(contact_runs.len(), 160, "one run per created contact");
    assert_eq!(contact_runs.iter().collect::<HashSet<_>>().len(), 160, "no contact has two runs");
    let celebrated: Vec<i64> =
        inputs.iter().filter(|(w, _)| w == "celebrate").filter_map(|(_, i)| i["deal_id"].as_i64()).collect();
    assert_eq!(celebrated.len(), won_deals.len(), "one run per won deal, none for lost ones");
    assert_eq!(celebrated.into_iter().collect::<HashSet<_>>(), won_deals);

    // Editing a deal that is already won is not a new win.
    let some_won = *won_deals.iter().next().expect("a won deal");
    let (s, _) = stack.patch(&format!("/api/deals/{some_won}"), json!({"title": "renamed"})).await;
    assert_eq!(s, StatusCode::OK);
    drained(&stack).await;
    assert_eq!(stack.count("SELECT count(*) FROM runs WHERE workflow = 'celebrate'").await, won_deals.len() as i64);
}
