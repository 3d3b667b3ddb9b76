//! A run's page in a real browser against a real engine and worker: opened while the run
//! is in progress, its steps turn green one after another without the page reloading
//! (it follows the run's event stream with the session cookie), and when the run ends
//! the page shows every step's input, output, attempts and logs.

use crm_testing::{Browser, Flow};
use serde_json::json;

/// Three slow steps in a chain, so the page is open before the first one ends.
const SLOW_CHAIN: &str = r#"
name = "slow-chain"
version = "1"
description = "Three steps that take their time"

[[steps]]
id = "fetch"
component = "fixture-slow"
config = { ms = 1200 }
timeout = "10s"

[[steps]]
id = "score"
component = "fixture-slow"
needs = ["fetch"]
config = { ms = 1200 }
timeout = "10s"

[[steps]]
id = "notify"
component = "fixture-slow"
needs = ["score"]
config = { ms = 1200 }
timeout = "10s"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_running_runs_steps_turn_green_without_reloading() {
    let mut flow = Flow::start("web_run").await;
    flow.deploy_manifest(SLOW_CHAIN);
    flow.start_worker(2);
    let browser = Browser::start().await;
    browser.sign_in_with_token(&flow.url, &flow.token).await;

    let run = flow.start_run("slow-chain", json!({"contact_id": 1})).await;
    browser.goto(&format!("{}/runs/{run}", flow.url)).await;
    browser.wait_until("document.documentElement.classList.contains('js')").await;
    // A mark that a reload would wipe.
    browser.js("window.stillTheSamePage = true;", vec![]).await;
    let node = |step: &str| format!("document.getElementById('node-{step}').getAttribute('class')");
    let not_green = browser.js(&format!("return {} ;", node("notify")), vec![]).await;
    assert!(!not_green.as_str().unwrap_or_default().contains("status-succeeded"), "{not_green}");

    for step in ["fetch", "score", "notify"] {
        browser.wait_until(&format!("{}.includes('status-succeeded')", node(step))).await;
        if step == "fetch" {
            // The first is green while the last is still to come.
            let last = browser.js(&format!("return {};", node("notify")), vec![]).await;
            assert!(!last.as_str().unwrap_or_default().contains("status-succeeded"), "{last}");
            let badge = browser.js("return document.getElementById('run-status').textContent.trim();", vec![]).await;
            assert_eq!(badge, json!("running"), "the run is under way once a step has moved");
            browser.screenshot("run-in-progress").await;
        }
    }
    browser.wait_until("document.getElementById('run-status').textContent.trim() === 'succeeded'").await;
    assert_eq!(browser.js("return window.stillTheSamePage === true;", vec![]).await, json!(true));
    // Once it ended, the attempts and their resource use came in too.
    browser.wait_until("document.querySelectorAll('table.attempts tbody tr').length === 3").await;
    let text = browser.page_text().await;
    assert!(text.contains("slept_ms") && text.contains("worker-0"), "{text}");
    browser.screenshot("run").await;
    browser.close().await;
}
