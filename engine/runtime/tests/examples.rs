//! The five example steps against in-memory records: what later workflows rely on.

mod common;

use std::sync::Arc;

use common::{failure, input, output, run, runtime};
use crm_concepts::step::StepLimits;
use crm_memory::MemoryCrm;
use serde_json::json;

const ALL_RECORDS: &[&str] = &["records:read", "records:write", "log", "notify"];

fn fixture() -> Arc<MemoryCrm> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../workflows/lead-score/fixtures.json"))
            .expect("the lead-score fixture exists");
    Arc::new(MemoryCrm::from_json(&text).expect("the fixture is valid"))
}

#[tokio::test]
async fn lead_score_grades_from_deals_and_activity_and_branches() {
    let rt = runtime();
    let svc = fixture();
    let config = json!({"branches": {"hot": ["notify-owner"], "warm": ["nurture"], "cold": []}});
    let hot = run(
        &rt,
        crm_guests::LEAD_SCORE,
        input(json!({"contact_id": 1}), config.clone()),
        ALL_RECORDS,
        StepLimits::default(),
        svc.clone(),
    )
    .await;
    assert_eq!(output(&hot)["grade"], "hot", "{}", output(&hot));
    assert!(
        matches!(&hot.outcome, crm_concepts::step::StepOutcome::Ok { next: Some(n), .. } if n == &["notify-owner"])
    );

    let cold = run(
        &rt,
        crm_guests::LEAD_SCORE,
        input(json!({"contact_id": 2}), config),
        ALL_RECORDS,
        StepLimits::default(),
        svc.clone(),
    )
    .await;
    let out = output(&cold);
    assert_eq!(out["grade"], "cold", "{out}");
    let reasons = out["reasons"].as_array().unwrap();
    assert!(reasons.iter().any(|r| r["why"] == "1 overdue task(s)" && r["points"] == -5), "{out}");
    assert!(reasons.iter().any(|r| r["why"] == "1 lost deal(s)" && r["points"] == -10), "{out}");

    let missing = run(
        &rt,
        crm_guests::LEAD_SCORE,
        input(json!({"contact_id": 99}), json!(null)),
        ALL_RECORDS,
        StepLimits::default(),
        svc.clone(),
    )
    .await;
    let e = failure(&missing);
    assert_eq!((e.code.as_str(), e.message.as_str()), ("guest", "not_found: contact 99 not found"));

    let no_input =
        run(&rt, crm_guests::LEAD_SCORE, input(json!({}), json!(null)), ALL_RECORDS, StepLimits::default(), svc).await;
    assert!(failure(&no_input).message.contains("no `contact_id` field"), "{}", failure(&no_input));
}

#[tokio::test]
async fn follow_up_task_is_created_once_even_when_the_step_is_retried() {
    let rt = runtime();
    let svc = fixture();
    let i = || input(json!({"deal_id": 10}), json!({"due_in_days": 2}));
    let first = run(&rt, crm_guests::FOLLOW_UP_TASK, i(), ALL_RECORDS, StepLimits::default(), svc.clone()).await;
    let out = output(&first);
    assert_eq!(out["title"], "Follow up: Acme pilot: 20 arms");
    assert_eq!(out["assignee_id"], 2, "the deal's owner gets the task");
    assert_eq!(out["created"], true);
    let again = run(&rt, crm_guests::FOLLOW_UP_TASK, i(), ALL_RECORDS, StepLimits::default(), svc).await;
    assert_eq!(output(&again)["created"], false);
    assert_eq!(output(&again)["task_id"], out["task_id"]);
}

#[tokio::test]
async fn deal_won_message_is_composed_and_sent_to_the_owner() {
    let rt = runtime();
    let svc = fixture();
    let r = run(
        &rt,
        crm_guests::DEAL_WON_MESSAGE,
        input(json!({"deal_id": 11}), json!({"notify_owner": true})),
        ALL_RECORDS,
        StepLimits::default(),
        svc.clone(),
    )
    .await;
    let text = output(&r)["text"].as_str().unwrap().to_string();
    assert_eq!(text, "🎉 Deal won: Acme spare parts — $3,500.00 with Acme Robotics. Closed in 30 day(s).");
    let sent = svc.notifications();
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].user_id, sent[0].text.as_str()), (2, text.as_str()));

    let open = run(
        &rt,
        crm_guests::DEAL_WON_MESSAGE,
        input(json!({"deal_id": 10}), json!(null)),
        ALL_RECORDS,
        StepLimits::default(),
        svc,
    )
    .await;
    assert!(failure(&open).message.starts_with("deal_not_won:"), "{}", failure(&open));
}

#[tokio::test]
async fn stale_deals_lists_open_deals_stuck_in_their_stage() {
    let rt = runtime();
    let svc = fixture();
    let cfg = json!({"days": 3, "if_found": ["remind"], "if_none": []});
    let r =
        run(&rt, crm_guests::STALE_DEALS, input(json!({}), cfg), ALL_RECORDS, StepLimits::default(), svc.clone()).await;
    let out = output(&r);
    assert_eq!(out["count"], 1, "{out}");
    assert_eq!(out["deals"][0]["id"], 10);
    assert_eq!(out["deals"][0]["days_in_stage"], 5);
    assert!(matches!(&r.outcome, crm_concepts::step::StepOutcome::Ok { next: Some(n), .. } if n == &["remind"]));

    let none = run(
        &rt,
        crm_guests::STALE_DEALS,
        input(json!({"days": 30}), json!(null)),
        ALL_RECORDS,
        StepLimits::default(),
        svc,
    )
    .await;
    assert_eq!(output(&none)["count"], 0);
}

#[tokio::test]
async fn duplicate_contacts_groups_by_email_phone_and_name() {
    let rt = runtime();
    let svc = Arc::new(
        MemoryCrm::from_json(
            &json!({"contacts": [
                {"id": 1, "name": "Ann Lee", "email": "ann.lee@gmail.com"},
                {"id": 2, "name": "Lee, Ann", "email": "annlee+crm@gmail.com"},
                {"id": 3, "name": "Bo Chen", "phone": "+1 (555) 010-2030"},
                {"id": 4, "name": "Robert Chen", "phone": "555.010.2030"},
                {"id": 5, "name": "Cy Dee", "email": "cy@example.org"}
            ]})
            .to_string(),
        )
        .unwrap(),
    );
    let r = run(
        &rt,
        crm_guests::DUPLICATE_CONTACTS,
        input(json!({}), json!(null)),
        &["records:read"],
        StepLimits::default(),
        svc.clone(),
    )
    .await;
    let out = output(&r);
    let groups = out["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{out}");
    assert_eq!(groups[0]["contact_ids"], json!([1, 2]));
    assert_eq!(groups[0]["reasons"], json!(["same email", "same name"]));
    assert_eq!(groups[1]["contact_ids"], json!([3, 4]));
    assert_eq!(groups[1]["reasons"], json!(["same phone"]));

    let one = run(
        &rt,
        crm_guests::DUPLICATE_CONTACTS,
        input(json!({"contact_id": 5}), json!(null)),
        &["records:read"],
        StepLimits::default(),
        svc,
    )
    .await;
    assert_eq!(output(&one)["groups"], json!([]));
}
