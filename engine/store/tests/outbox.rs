//! The outbox holds exactly one event per committed change, written in the change's own
//! transaction, and nothing for a change that was rolled back.

use crm_concepts::records::{ContactPatch, NewContact, NewDeal};
use crm_store::{Actor, Db, StoreError, contacts, deals};
use crm_testing::ScratchDb;

async fn outbox(db: &Db) -> Vec<(String, i64, String, serde_json::Value)> {
    sqlx::query_as("SELECT record_kind, record_id, action, changes FROM outbox ORDER BY id")
        .fetch_all(&db.pool)
        .await
        .expect("read outbox")
}

#[tokio::test]
async fn one_event_per_committed_change_none_for_rolled_back() {
    let scratch = ScratchDb::new("outbox", 4).await;
    let db = scratch.db.clone();
    let actor = Actor::system();
    let ann = contacts::create(
        &db,
        &actor,
        NewContact { name: "Ann Lee".into(), email: Some("ann@example.com".into()), ..Default::default() },
    )
    .await
    .unwrap();

    // Passes validation, then fails on the unique index inside the transaction.
    let dup = contacts::create(
        &db,
        &actor,
        NewContact { name: "Ann Again".into(), email: Some("ANN@example.com".into()), ..Default::default() },
    )
    .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");

    // A no-op patch is not a change.
    contacts::update(&db, &actor, ann.id, ContactPatch { name: Some("Ann Lee".into()), ..Default::default() })
        .await
        .unwrap();
    contacts::update(
        &db,
        &actor,
        ann.id,
        ContactPatch { phone: Some(Some("+1 555 0100".into())), ..Default::default() },
    )
    .await
    .unwrap();

    let deal =
        deals::create(&db, &actor, NewDeal { title: "Pilot".into(), contact_id: Some(ann.id), ..Default::default() })
            .await
            .unwrap();
    let bad = deals::create(&db, &actor, NewDeal { title: "Bad".into(), amount_minor: -5, ..Default::default() }).await;
    assert!(matches!(bad, Err(StoreError::Validation { ref field, .. }) if field == "amount_minor"), "{bad:?}");

    contacts::delete(&db, &actor, ann.id).await.unwrap();

    let events = outbox(&db).await;
    let summary: Vec<(&str, i64, &str)> = events.iter().map(|(k, id, a, _)| (k.as_str(), *id, a.as_str())).collect();
    assert_eq!(
        summary,
        vec![
            ("contact", ann.id, "created"),
            ("contact", ann.id, "updated"),
            ("deal", deal.id, "created"),
            ("contact", ann.id, "deleted"),
        ]
    );
    assert_eq!(events[1].3, serde_json::json!({"phone": [null, "+1 555 0100"]}));

    let (activity,): (i64,) = sqlx::query_as("SELECT count(*) FROM activity").fetch_one(&db.pool).await.unwrap();
    assert_eq!(activity, 4, "one activity entry per committed change");
    let (contacts_n,): (i64,) = sqlx::query_as("SELECT count(*) FROM contacts").fetch_one(&db.pool).await.unwrap();
    assert_eq!(contacts_n, 1, "the rolled-back duplicate left no row");

    db.pool.close().await;
    scratch.close().await;
}
