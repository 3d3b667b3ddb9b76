//! Through the API, the outbox holds exactly one event per committed change (with the
//! changed fields and the acting user), and none for a request that failed.

use crm_testing::TestStack;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn one_event_per_committed_change() {
    let s = TestStack::start("outbox_api").await;
    let (_, pipelines) = s.get("/api/pipelines").await;
    let qualified = pipelines["items"][0]["stages"][1]["id"].as_i64().unwrap();
    let other_pipeline_stage = {
        let (_, p) = s.post("/api/pipelines", json!({"name": "Other", "stages": [{"name": "Only"}]})).await;
        p["stages"][0]["id"].as_i64().unwrap()
    };
    let start = s.count("SELECT count(*) FROM outbox").await;

    let (_, c) = s.post("/api/contacts", json!({"name": "Ann", "email": "ann@example.com"})).await;
    let (_, d) = s.post("/api/deals", json!({"title": "Pilot", "contact_id": c["id"]})).await;
    let (st, _) = s.post(&format!("/api/deals/{}/move", d["id"]), json!({"stage_id": qualified})).await;
    assert_eq!(st, StatusCode::OK);
    // failures: validation, conflict, a stage of another pipeline, a no-op patch
    let (st, _) = s.post("/api/contacts", json!({"name": "Ann 2", "email": "ann@example.com"})).await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, _) = s.post(&format!("/api/deals/{}/move", d["id"]), json!({"stage_id": other_pipeline_stage})).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let (st, _) = s.patch(&format!("/api/contacts/{}", c["id"]), json!({"name": "Ann"})).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = s.post(&format!("/api/deals/{}/move", d["id"]), json!({"stage_id": qualified})).await;
    assert_eq!(st, StatusCode::OK, "moving to the current stage is a no-op");
    let (st, _) = s.delete(&format!("/api/contacts/{}", c["id"])).await;
    assert_eq!(st, StatusCode::NO_CONTENT);

    let events: Vec<(String, i64, String, serde_json::Value, Option<i64>)> = sqlx::query_as(
        "SELECT record_kind, record_id, action, changes, actor_id FROM outbox WHERE id > $1 ORDER BY id",
    )
    .bind(start)
    .fetch_all(&s.db.pool)
    .await
    .unwrap();
    let summary: Vec<(&str, &str)> = events.iter().map(|e| (e.0.as_str(), e.2.as_str())).collect();
    assert_eq!(summary, [("contact", "created"), ("deal", "created"), ("deal", "updated"), ("contact", "deleted")]);
    let move_changes = &events[2].3;
    assert_eq!(move_changes["stage_id"][1], json!(qualified), "{move_changes}");
    assert!(events.iter().all(|e| e.4 == Some(s.admin_id)), "every event names the acting user");
}
