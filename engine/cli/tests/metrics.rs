//! Prometheus metrics: with `CRM_METRICS_LISTEN`, the engine, a worker and the bot each
//! serve `/metrics` (and `/healthz`) on a listener of their own, and after a run the series
//! an operator watches are there: runs by workflow and status, step durations, queue wait,
//! queue depth, outbox lag, results applied, Redis resets, HTTP requests by route and
//! status, Telegram sends and 429s. API responses carry a request id.

use std::time::Duration;

use base64::Engine as _;
use crm_concepts::records::Actor;
use crm_concepts::user::{NewUser, Role};
use crm_testing::process::{Process, crm, metrics_url, rust_log};
use crm_testing::{LocalBotApi, Options, TestStack, TgUser};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

async fn scrape(url: &str) -> String {
    let resp = reqwest::get(url).await.expect("scrape");
    assert_eq!(resp.status(), 200);
    resp.text().await.expect("metrics text")
}

/// Whether some series `name{…}` has every label in `labels` and a value above zero.
fn has(text: &str, name: &str, labels: &[&str]) -> bool {
    text.lines().filter(|l| !l.starts_with('#')).any(|l| {
        l.starts_with(&format!("{name}{{"))
            && labels.iter().all(|label| l.contains(label))
            && l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).is_some_and(|v| v > 0.0)
    })
}

/// Whether a series `name` is exported at all (a gauge may well be 0).
fn exported(text: &str, name: &str) -> bool {
    text.lines().any(|l| l.starts_with(name) && !l.starts_with('#'))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_and_worker_export_the_run_series_after_a_run() {
    let options = Options { env: vec![("CRM_METRICS_LISTEN".into(), "127.0.0.1:0".into())], ..Options::default() };
    let stack = TestStack::start_with("metrics_run", options).await;
    let engine_metrics = metrics_url(|| stack.log()).await;
    let worker = stack.start_worker_with(2, &[("CRM_METRICS_LISTEN", "127.0.0.1:0")]).await;
    let worker_metrics = metrics_url(|| worker.log()).await;

    let echo = base64::engine::general_purpose::STANDARD.encode(std::fs::read(crm_guests::ECHO).expect("echo"));
    let manifest = "name = \"metered\"\nversion = \"1\"\n[[steps]]\nid = \"echo\"\ncomponent = \"echo\"\n";
    let (status, body) =
        stack.post("/api/workflows", json!({"manifest": manifest, "components": {"echo": echo}})).await;
    assert!(status.is_success(), "{status} {body}");
    let resp = stack
        .request(reqwest::Method::POST, "/api/runs")
        .json(&json!({"workflow": "metered", "input": {"hello": 1}}))
        .send()
        .await
        .expect("start a run");
    assert!(resp.headers().get("x-request-id").is_some_and(|v| !v.is_empty()), "a response carries its request id");
    let run: serde_json::Value = resp.json().await.expect("run JSON");
    let id = run["id"].as_str().expect("run id").to_string();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, run) = stack.get(&format!("/api/runs/{id}")).await;
        if run["status"] == "succeeded" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline && run["status"] != "failed", "{run}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let engine = scrape(&engine_metrics).await;
    assert!(has(&engine, "crm_runs_finished_total", &["workflow=\"metered\"", "status=\"succeeded\""]), "{engine}");
    assert!(has(&engine, "crm_step_duration_seconds_count", &["workflow=\"metered\"", "step=\"echo\""]), "{engine}");
    assert!(has(&engine, "crm_scheduler_results_applied_total", &[]), "{engine}");
    assert!(exported(&engine, "crm_scheduler_redis_resets_total"), "{engine}");
    assert!(exported(&engine, "crm_queue_depth{"), "{engine}");
    assert!(exported(&engine, "crm_outbox_lag_seconds{"), "{engine}");
    assert!(
        has(&engine, "crm_http_requests_total", &["route=\"/api/runs\"", "method=\"POST\"", "status=\"202\""]),
        "{engine}"
    );
    assert!(has(&engine, "crm_http_requests_total", &["route=\"/api/runs/{id}\""]), "routes, not raw paths: {engine}");
    assert!(!engine.contains(&id), "no series is named after a run id");
    assert!(engine.contains("role=\"engine\""), "{engine}");

    let worker_text = scrape(&worker_metrics).await;
    assert!(has(&worker_text, "crm_step_queue_wait_seconds_count", &["workflow=\"metered\""]), "{worker_text}");
    assert!(has(&worker_text, "crm_worker_steps_total", &["outcome=\"succeeded\""]), "{worker_text}");
    let health = reqwest::get(worker_metrics.replace("/metrics", "/healthz")).await.expect("healthz");
    assert_eq!(health.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_counts_telegram_sends_and_429s() {
    let stack = TestStack::start("metrics_bot").await;
    let api = LocalBotApi::start("6262:metrics-bot").await.expect("local Bot API server");
    let data = tempfile::tempdir().expect("temp dir");
    let mut cmd = crm();
    crm_testing::bot::configure(&mut cmd, &api, &stack.url, &stack.bot_token, data.path())
        .env("CRM_BOT_POLL_TIMEOUT_SECS", "5")
        .env("CRM_METRICS_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", rust_log("warn"));
    let bot = Process::spawn("crm bot", cmd, &data.path().join("bot.log")).expect("start crm bot");
    let url = metrics_url(|| bot.log()).await;
    api.wait_for(0, WAIT, |c| c.method == "getUpdates" && c.result.is_some()).await.expect("the bot polls");
    crm_store::users::create(
        &stack.db,
        &Actor::system(),
        NewUser { name: "Ann".into(), email: None, role: Role::Manager, telegram_user_id: Some(9001), time_zone: None },
    )
    .await
    .expect("a linked user");
    let ann = TgUser::new(9001, "Ann");

    // Telegram refuses a second message to the chat within 5 s: the bot waits and resends.
    api.set_flood_interval(Some(Duration::from_secs(5)));
    let since = api.seq();
    api.send_text(&ann, "/help");
    api.send_text(&ann, "/help");
    api.wait_for(since, WAIT, |c| c.method == "sendMessage" && c.result.is_none()).await.expect("a 429");
    api.set_flood_interval(None);
    // The bot counts a send once Telegram's answer is in; scrape until both are.
    let deadline = tokio::time::Instant::now() + WAIT;
    let text = loop {
        let text = scrape(&url).await;
        let done = ["ok", "too_many_requests"]
            .iter()
            .all(|r| has(&text, "crm_telegram_sends_total", &["method=\"sendMessage\"", &format!("result=\"{r}\"")]));
        if done || tokio::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(has(&text, "crm_telegram_sends_total", &["method=\"sendMessage\"", "result=\"ok\""]), "{text}");
    assert!(
        has(&text, "crm_telegram_sends_total", &["method=\"sendMessage\"", "result=\"too_many_requests\""]),
        "{text}"
    );
    assert!(text.contains("role=\"bot\""), "{text}");
}
