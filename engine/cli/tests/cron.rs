//! Cron schedules with real engine processes: two `crm serve` replicas on one database fire
//! every tick of an every-second schedule exactly once over a minute, and the API and the
//! CLI show the next fire times.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use crm_testing::TestStack;
use crm_testing::deploy::{deploy, one_step};
use crm_testing::process::Process;
use reqwest::StatusCode;

/// How long the replicas run the every-second schedule: the issue asks for a minute.
const RUN_FOR: Duration = Duration::from_secs(60);

fn manifest(name: &str, schedule: &str, timezone: &str) -> String {
    one_step(name, &format!("[[triggers]]\nkind = \"cron\"\nschedule = \"{schedule}\"\ntimezone = \"{timezone}\"\n"))
}

/// A second engine replica on the stack's database and Redis prefix, killed on drop.
async fn second_replica(stack: &TestStack) -> Process {
    let mut replica = stack.spawn("second crm serve", &["serve", "--listen", "127.0.0.1:0"]);
    replica.listening_url(Duration::from_secs(30)).await.expect("the second replica starts");
    replica
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_fire_each_tick_of_a_minute_exactly_once() {
    let stack = TestStack::start("cron_replicas").await;
    let _second = second_replica(&stack).await;
    deploy(&stack.db, &manifest("every-second", "* * * * * *", "UTC")).await;
    tokio::time::sleep(RUN_FOR).await;
    let disabled_at = Utc::now();
    crm_store::workflows::set_enabled(&stack.db.pool, "every-second", false).await.expect("disable");
    // Let a pass that started before the disable finish.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let ticks: Vec<(DateTime<Utc>, String, Option<uuid::Uuid>)> =
        sqlx::query_as("SELECT tick_at, claimed_by, run_id FROM cron_ticks ORDER BY tick_at")
            .fetch_all(&stack.db.pool)
            .await
            .expect("ticks");
    // Two seconds of slack for start-up and the disable.
    assert!(ticks.len() >= RUN_FOR.as_secs() as usize - 3, "only {} ticks in {RUN_FOR:?}", ticks.len());
    for pair in ticks.windows(2) {
        assert_eq!(
            (pair[1].0 - pair[0].0).num_seconds(),
            1,
            "a tick was skipped between {} and {}",
            pair[0].0,
            pair[1].0
        );
    }
    let runs: Vec<(uuid::Uuid, serde_json::Value)> =
        sqlx::query_as("SELECT id, input FROM runs WHERE workflow = 'every-second' AND trigger = 'cron'")
            .fetch_all(&stack.db.pool)
            .await
            .expect("runs");
    // A tick claimed after the disable, before the replicas' schedules caught up with it,
    // stays claimed without a run (and says so in the log); only the last ticks may.
    let fired = ticks.iter().take_while(|(_, _, run_id)| run_id.is_some()).count();
    for (tick_at, _, run_id) in &ticks[fired..] {
        assert!(run_id.is_none(), "a tick without a run before the last ones: {ticks:?}");
        assert!(*tick_at >= disabled_at - chrono::Duration::seconds(3), "tick {tick_at} has no run: {ticks:?}");
    }
    assert_eq!(runs.len(), fired, "exactly one run per tick");
    let by_id: HashMap<uuid::Uuid, &serde_json::Value> = runs.iter().map(|(id, input)| (*id, input)).collect();
    for (tick_at, _, run_id) in &ticks[..fired] {
        let input = run_id.and_then(|id| by_id.get(&id)).expect("every tick has its run");
        assert_eq!(input["tick"], serde_json::json!(tick_at.to_rfc3339()), "the run is for its own tick");
    }
    let mut per_replica: HashMap<&str, usize> = HashMap::new();
    for (_, by, _) in &ticks {
        *per_replica.entry(by.as_str()).or_default() += 1;
    }
    eprintln!("{} ticks, claimed per replica: {per_replica:?}", ticks.len());
}

#[tokio::test]
async fn next_fire_times_show_in_the_api_and_the_cli() {
    let stack = TestStack::start("cron_list").await;
    deploy(&stack.db, &manifest("morning-digest", "0 0 9 * * Mon-Fri", "Europe/Berlin")).await;

    // The engine syncs schedules from the deployed manifests within a second or so.
    let mut items = serde_json::Value::Null;
    for _ in 0..50 {
        let (status, body) = stack.get("/api/schedules?next=5").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["items"].as_array().is_some_and(|a| !a.is_empty()) {
            items = body["items"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let schedule = &items[0];
    assert_eq!(schedule["workflow"], "morning-digest");
    assert_eq!(schedule["timezone"], "Europe/Berlin");
    let times: Vec<DateTime<Utc>> = serde_json::from_value(schedule["next_fire_times"].clone()).expect("times");
    assert_eq!(times.len(), 5);
    for t in &times {
        let local = t.with_timezone(&chrono_tz::Europe::Berlin);
        assert_eq!(local.format("%H:%M:%S").to_string(), "09:00:00");
        assert!(!matches!(local.format("%a").to_string().as_str(), "Sat" | "Sun"), "{local}");
    }
    let (status, _) = crm_testing::send(stack.client.get(format!("{}/api/schedules", stack.url))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = stack.get("/api/schedules?next=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let out = crm_testing::process::crm()
        .args(["schedule", "list", "--next", "2"])
        .env("CRM_DATABASE_URL", &stack.db_url)
        .output()
        .expect("crm schedule list");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let first = times[0].with_timezone(&chrono_tz::Europe::Berlin).format("%Y-%m-%d 09:00:00").to_string();
    assert!(text.contains("morning-digest") && text.contains("0 0 9 * * Mon-Fri") && text.contains(&first), "{text}");
}
