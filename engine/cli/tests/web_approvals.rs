//! The web app's Approvals page, in a real browser against a real engine and worker: a
//! manager sees what waits for their decision and approves or rejects it, with a comment
//! or without; the decision is the run's, as if made in the chat or through the API. A
//! viewer sees nothing to decide and a forged decision is refused with the API's reason;
//! where the step names a deal, only its owner (or an admin) sees and decides it.

use crm_concepts::user::Role;
use crm_testing::manifests::DISCOUNT;
use crm_testing::{Browser, Flow};
use serde_json::{Value, json};
use uuid::Uuid;

const WAIT: std::time::Duration = std::time::Duration::from_secs(30);

fn step<'a>(run: &'a Value, id: &str) -> &'a Value {
    run["steps"].as_array().and_then(|s| s.iter().find(|s| s["step"] == id)).unwrap_or_else(|| panic!("no step {id}"))
}

async fn waiting_discount(flow: &Flow, percent: i64, deal: i64) -> Uuid {
    let id = flow.start_run("discount", json!({"percent": percent, "deal_id": deal})).await;
    flow.wait_status(id, "waiting", WAIT).await;
    id
}

/// A POST of the decision form made with this page's session and CSRF token, as a
/// forwarded or scripted form would: (status, the JSON error).
async fn forged_decision(browser: &Browser, run: Uuid, step: &str) -> Value {
    browser
        .js(
            "const token = document.querySelector('meta[name=csrf-token]').content;
             const body = new URLSearchParams({_csrf: token, decision: 'approved'});
             return fetch(arguments[0], {method: 'POST', body, headers: {accept: 'application/json'}})
                 .then(async r => [r.status, await r.json()]);",
            vec![json!(format!("/approvals/{run}/{step}"))],
        )
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manager_approves_with_a_comment_and_rejects_from_the_approvals_page() {
    let mut flow = Flow::start_with_test_clock("web_approvals").await;
    flow.deploy_manifest(DISCOUNT);
    flow.start_worker(2);
    let (mia, mia_token) = crm_testing::users::with_token(&flow.db, "Mia Manager", Role::Manager).await;
    let (_, vic_token) = crm_testing::users::with_token(&flow.db, "Vic Viewer", Role::Viewer).await;
    let first = waiting_discount(&flow, 25, 7).await;
    let second = waiting_discount(&flow, 40, 8).await;

    let browser = Browser::start().await;
    browser.sign_in_with_token(&flow.url, &mia_token).await;
    browser.find("header.top nav a[href='/approvals']").await.click().await.expect("open Approvals");
    browser.wait_until("document.querySelectorAll('#approvals li.approval').length === 2").await;
    let list = browser.text("#approvals").await;
    assert!(list.contains("Give 25% off deal 7?") && list.contains("Give 40% off deal 8?"), "{list}");
    assert!(list.contains("without a decision it is rejected"), "{list}");
    browser.screenshot("approvals").await;

    // Approve the first with a comment.
    let first_item = format!("li.approval[data-run-id='{first}']");
    browser
        .find(&format!("{first_item} textarea[name=comment]"))
        .await
        .send_keys("Strategic account")
        .await
        .expect("type");
    browser.find(&format!("{first_item} button[value=approved]")).await.click().await.expect("approve");
    browser.wait_for_text("Approved: Give 25% off deal 7?").await;
    assert_eq!(browser.find_all("#approvals li.approval").await.len(), 1);
    assert_eq!(flow.wait_final(&[first], WAIT).await, vec!["succeeded"]);
    let (_, detail) = flow.get(&format!("/api/runs/{first}")).await;
    let out = &step(&detail, "ok")["output"];
    assert_eq!(
        (out["decision"].clone(), out["decided_by"].clone(), out["comment"].clone()),
        (json!("approved"), json!(mia), json!("Strategic account")),
        "{detail}"
    );
    assert_eq!(step(&detail, "apply")["status"], "succeeded");

    // Reject the second without one.
    let second_item = format!("li.approval[data-run-id='{second}']");
    browser.find(&format!("{second_item} button[value=rejected]")).await.click().await.expect("reject");
    browser.wait_for_text("Rejected: Give 40% off deal 8?").await;
    browser.wait_for_text("Nothing waits for your decision.").await;
    assert_eq!(flow.wait_final(&[second], WAIT).await, vec!["succeeded"]);
    let (_, detail) = flow.get(&format!("/api/runs/{second}")).await;
    assert_eq!(step(&detail, "ok")["output"]["decision"], "rejected", "{detail}");
    assert_eq!(step(&detail, "ok")["output"]["comment"], Value::Null);
    assert_eq!(step(&detail, "decline")["status"], "succeeded");

    // Decided through the API meanwhile: the page's button changes nothing.
    let third = waiting_discount(&flow, 30, 9).await;
    browser.goto(&format!("{}/approvals", flow.url)).await;
    browser.find(&format!("li.approval[data-run-id='{third}']")).await;
    let (status, body) = flow.post(&format!("/api/approvals/{third}/ok"), json!({"decision": "rejected"})).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    browser
        .find(&format!("li.approval[data-run-id='{third}'] button[value=approved]"))
        .await
        .click()
        .await
        .expect("late");
    browser.wait_for_text("This was decided already; nothing changed.").await;
    let (_, detail) = flow.get(&format!("/api/runs/{third}")).await;
    assert_eq!(step(&detail, "ok")["output"]["decision"], "rejected");
    browser.close().await;

    // A viewer has nothing to decide, and a forged decision gets the API's refusal.
    let fourth = waiting_discount(&flow, 35, 10).await;
    let browser = Browser::start().await;
    browser.sign_in_with_token(&flow.url, &vic_token).await;
    browser.goto(&format!("{}/approvals", flow.url)).await;
    browser.wait_for_text("Nothing waits for your decision.").await;
    let refused = forged_decision(&browser, fourth, "ok").await;
    assert_eq!(refused[0], 403, "{refused}");
    assert_eq!(refused[1]["error"]["message"], "only a manager may decide this approval", "{refused}");
    assert_eq!(flow.get(&format!("/api/runs/{fourth}")).await.1["status"], "waiting");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn where_the_step_names_a_deal_only_its_owner_sees_and_decides_it() {
    let mut flow = Flow::start_with_test_clock("web_approvals_owner").await;
    flow.deploy_manifest(
        r#"
name = "close-deal"
version = "1"

[[steps]]
id = "ok"
approval = { role = "manager", text = "Close deal {{input.deal_id}}?", timeout = "1d", on_timeout = "rejected", owner_of = { record = "deal", id = "{{input.deal_id}}" } }

[[steps]]
id = "after"
component = "fixture-echo"
needs = ["ok"]
"#,
    );
    flow.start_worker(2);
    let (olga, olga_token) = crm_testing::users::with_token(&flow.db, "Olga Owner", Role::Manager).await;
    let (_, otto_token) = crm_testing::users::with_token(&flow.db, "Otto Other", Role::Manager).await;
    let (status, deal) = flow.post("/api/deals", json!({"title": "Owned", "owner_id": olga})).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{deal}");
    let run = flow.start_run("close-deal", json!({"deal_id": deal["id"]})).await;
    flow.wait_status(run, "waiting", WAIT).await;

    let browser = Browser::start().await;
    browser.sign_in_with_token(&flow.url, &otto_token).await;
    browser.goto(&format!("{}/approvals", flow.url)).await;
    browser.wait_for_text("Nothing waits for your decision.").await;
    let refused = forged_decision(&browser, run, "ok").await;
    assert_eq!(refused[0], 403, "{refused}");
    let message = refused[1]["error"]["message"].as_str().unwrap_or_default().to_string();
    assert!(message.contains(&format!("only the owner of deal {}", deal["id"])), "{message}");
    browser.close().await;

    let browser = Browser::start().await;
    browser.sign_in_with_token(&flow.url, &olga_token).await;
    browser.goto(&format!("{}/approvals", flow.url)).await;
    browser
        .find(&format!("li.approval[data-run-id='{run}'] button[value=approved]"))
        .await
        .click()
        .await
        .expect("approve");
    browser.wait_for_text(&format!("Approved: Close deal {}?", deal["id"])).await;
    assert_eq!(flow.wait_final(&[run], WAIT).await, vec!["succeeded"]);
    let (_, detail) = flow.get(&format!("/api/runs/{run}")).await;
    assert_eq!(step(&detail, "ok")["output"]["decided_by"], olga, "{detail}");
    browser.close().await;
}
