//! Record events against a real Postgres: concurrent writes and competing consumers give
//! exactly one run per matching change; filters; a workflow's own writes do not retrigger it.

use std::collections::HashSet;

use crm_concepts::records::{Actor, NewContact, NewDeal};
use crm_concepts::run::RunRequest;
use crm_scheduler::{Admission, Admitted};
use crm_testing::ScratchDb;
use crm_testing::deploy::{deploy, one_step};
use crm_triggers::RunStarter;
use crm_triggers::events::{self, MAX_CHAIN};
use serde_json::json;

async fn drain(pool: &sqlx::PgPool, starter: &Admission) -> usize {
    let mut runs = 0;
    loop {
        let stats = events::process_batch(pool, starter).await.expect("consumer pass");
        runs += stats.runs;
        if stats.events == 0 {
            return runs;
        }
    }
}

fn contact(name: &str) -> NewContact {
    serde_json::from_value(json!({ "name": name })).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_start_exactly_one_run_per_matching_change() {
    let s = ScratchDb::new("events_concurrent", 10).await;
    deploy(
        &s.db,
        &one_step(
            "on-contact",
            "[[triggers]]\nkind = \"record_event\"\nrecord = \"contact\"\nactions = [\"created\"]\n",
        ),
    )
    .await;
    deploy(&s.db, &one_step("on-deal", "[[triggers]]\nkind = \"record_event\"\nrecord = \"deal\"\n")).await;

    let (_redis, sched) = crm_testing::scheduler(&s, "events_concurrent").await;
    let starter = sched.admission();
    // Writers and two consumers run at the same time.
    let stop = tokio_util::sync::CancellationToken::new();
    let mut consumers = Vec::new();
    for _ in 0..2 {
        let pool = s.pool(4).await;
        let stop = stop.clone();
        let starter = starter.clone();
        consumers.push(tokio::spawn(async move {
            while !stop.is_cancelled() {
                events::process_batch(&pool, &starter).await.expect("consumer pass");
            }
        }));
    }
    let mut writers = Vec::new();
    for w in 0..8 {
        let db = s.db.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..25 {
                crm_store::contacts::create(&db, &Actor::system(), contact(&format!("Lead {w}-{i}"))).await.unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    stop.cancel();
    for c in consumers {
        c.await.unwrap();
    }
    drain(&s.db.pool, &starter).await;

    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE processed_at IS NULL")
        .fetch_one(&s.db.pool)
        .await
        .unwrap();
    assert_eq!(pending, 0);
    let runs: Vec<(serde_json::Value,)> =
        sqlx::query_as("SELECT input FROM runs WHERE workflow = 'on-contact'").fetch_all(&s.db.pool).await.unwrap();
    assert_eq!(runs.len(), 200, "one run per created contact");
    let contacts: HashSet<i64> =
        runs.iter().map(|(i,)| i["contact_id"].as_i64().expect("contact_id in input")).collect();
    assert_eq!(contacts.len(), 200, "no contact got two runs");
    let on_deal: i64 =
        sqlx::query_scalar("SELECT count(*) FROM runs WHERE workflow = 'on-deal'").fetch_one(&s.db.pool).await.unwrap();
    assert_eq!(on_deal, 0, "contacts do not trigger deal workflows");
    s.close().await;
}

#[tokio::test]
async fn the_won_filter_matches_only_the_write_that_wins_the_deal() {
    let s = ScratchDb::new("events_filter", 10).await;
    deploy(
        &s.db,
        &one_step(
            "celebrate",
            "[[triggers]]\nkind = \"record_event\"\nrecord = \"deal\"\nactions = [\"updated\"]\nfilter = { changed = [\"status\"], equals = { status = \"won\" } }\n",
        ),
    )
    .await;
    let (_redis, sched) = crm_testing::scheduler(&s, "events_filter").await;
    let starter = sched.admission();
    let actor = Actor::system();
    let deal = crm_store::deals::create(
        &s.db,
        &actor,
        serde_json::from_value::<NewDeal>(json!({"title": "Big one"})).unwrap(),
    )
    .await
    .unwrap();
    let stages: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, kind FROM stages ORDER BY position").fetch_all(&s.db.pool).await.unwrap();
    let qualified = stages[1].0;
    let won = stages.iter().find(|(_, k)| k == "won").unwrap().0;
    crm_store::deals::move_stage(&s.db, &actor, deal.id, qualified).await.unwrap();
    crm_store::deals::move_stage(&s.db, &actor, deal.id, won).await.unwrap();
    let patch = serde_json::from_value(json!({"title": "Big one (signed)"})).unwrap();
    crm_store::deals::update(&s.db, &actor, deal.id, patch).await.unwrap();

    assert_eq!(drain(&s.db.pool, &starter).await, 1);
    let input: serde_json::Value = sqlx::query_scalar("SELECT input FROM runs").fetch_one(&s.db.pool).await.unwrap();
    assert_eq!(input["deal_id"], deal.id);
    assert_eq!(input["changes"]["status"], json!(["open", "won"]));
    s.close().await;
}

#[tokio::test]
async fn a_workflows_own_writes_do_not_retrigger_it_and_chains_are_bounded() {
    let s = ScratchDb::new("events_loops", 10).await;
    let on_update = |name: &str| {
        one_step(name, "[[triggers]]\nkind = \"record_event\"\nrecord = \"contact\"\nactions = [\"updated\"]\n")
    };
    deploy(&s.db, &on_update("enrich")).await;
    deploy(&s.db, &on_update("audit")).await;
    let (_redis, sched) = crm_testing::scheduler(&s, "events_loops").await;
    let starter = sched.admission();
    let c = crm_store::contacts::create(&s.db, &Actor::system(), contact("Ann")).await.unwrap();
    drain(&s.db.pool, &starter).await;

    // A person edits the contact: both workflows run.
    let patch = |n: &str| serde_json::from_value(json!({ "phone": n })).unwrap();
    crm_store::contacts::update(&s.db, &Actor::system(), c.id, patch("1")).await.unwrap();
    assert_eq!(drain(&s.db.pool, &starter).await, 2);
    let enrich_run: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM runs WHERE workflow = 'enrich'").fetch_one(&s.db.pool).await.unwrap();

    // The enrich run writes to the contact: audit runs, enrich does not run again.
    let by_run = Actor { user_id: None, origin_run: Some(enrich_run), token_id: None };
    crm_store::contacts::update(&s.db, &by_run, c.id, patch("2")).await.unwrap();
    assert_eq!(drain(&s.db.pool, &starter).await, 1);
    let audit_runs: Vec<(uuid::Uuid,)> =
        sqlx::query_as("SELECT id FROM runs WHERE workflow = 'audit' ORDER BY created_at")
            .fetch_all(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(audit_runs.len(), 2);
    let chain: Vec<String> = sqlx::query_scalar("SELECT chain FROM triggered_runs WHERE run_id = $1")
        .bind(audit_runs[1].0)
        .fetch_one(&s.db.pool)
        .await
        .unwrap();
    assert_eq!(chain, vec!["enrich"]);

    // ... and that audit run's write reaches neither audit (itself) nor enrich (upstream).
    let by_audit = Actor { user_id: None, origin_run: Some(audit_runs[1].0), token_id: None };
    crm_store::contacts::update(&s.db, &by_audit, c.id, patch("3")).await.unwrap();
    assert_eq!(drain(&s.db.pool, &starter).await, 0);

    // A chain already at the limit starts nothing more, whatever the workflow.
    let mut tx = s.db.pool.begin().await.unwrap();
    let (deep, _) = starter
        .start_run(
            &mut tx,
            RunRequest {
                workflow: "enrich".into(),
                input: json!({}),
                acting_user: None,
                notify: None,
                idempotency_key: None,
                trigger: None,
            },
        )
        .await;
    let deep = deep.unwrap();
    let long_chain: Vec<String> = (0..MAX_CHAIN - 1).map(|i| format!("w{i}")).collect();
    sqlx::query("INSERT INTO triggered_runs (run_id, workflow, source, chain) VALUES ($1, 'enrich', 'event', $2)")
        .bind(deep)
        .bind(&long_chain)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    crm_store::contacts::update(
        &s.db,
        &Actor { user_id: None, origin_run: Some(deep), token_id: None },
        c.id,
        patch("4"),
    )
    .await
    .unwrap();
    assert_eq!(drain(&s.db.pool, &starter).await, 0);
    s.close().await;
}

/// Starts runs like the scheduler does, except for one workflow whose runs always fail to
/// start (and take their whole batch down with them, as a database error would).
struct Poisoned(Admission);

impl RunStarter for Poisoned {
    fn start_runs<'a>(
        &'a self,
        conn: &'a mut sqlx::PgConnection,
        requests: Vec<RunRequest>,
    ) -> futures::future::BoxFuture<'a, (Vec<Result<uuid::Uuid, crm_triggers::StartRunError>>, Admitted)> {
        if requests.iter().any(|r| r.workflow == "poison") {
            let failed = requests
                .iter()
                .map(|_| Err(crm_triggers::StartRunError::Failed("cannot start poison".into())))
                .collect();
            return Box::pin(async { (failed, Admitted::default()) });
        }
        self.0.start_runs(conn, requests)
    }

    fn wake_waits<'a>(
        &'a self,
        conn: &'a mut sqlx::PgConnection,
        wakes: Vec<(uuid::Uuid, String, serde_json::Value)>,
        admitted: &'a mut Admitted,
    ) -> futures::future::BoxFuture<'a, Result<(), crm_store::workflow_error::WorkflowError>> {
        self.0.wake_waits(conn, wakes, admitted)
    }

    fn committed(&self, admitted: Admitted) -> futures::future::BoxFuture<'_, ()> {
        RunStarter::committed(&self.0, admitted)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_cannot_start_is_set_aside_instead_of_blocking_later_events() {
    let s = ScratchDb::new("events_poison", 10).await;
    let on_create = |name: &str| {
        one_step(name, "[[triggers]]\nkind = \"record_event\"\nrecord = \"contact\"\nactions = [\"created\"]\n")
    };
    deploy(&s.db, &on_create("poison")).await;
    deploy(&s.db, &on_create("fine")).await;
    for name in ["A", "B", "C"] {
        crm_store::contacts::create(&s.db, &Actor::system(), contact(name)).await.unwrap();
    }
    let (_redis, sched) = crm_testing::scheduler(&s, "events_poison").await;
    let starter: std::sync::Arc<dyn RunStarter> = std::sync::Arc::new(Poisoned(sched.admission()));
    let e = events::process_batch(&s.db.pool, starter.as_ref()).await.unwrap_err();
    assert!(e.to_string().contains("cannot start poison"), "{e}");
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM runs").fetch_one(&s.db.pool).await.unwrap(),
        0,
        "a failed batch leaves nothing behind"
    );

    let stop = tokio_util::sync::CancellationToken::new();
    let consumer = tokio::spawn(events::run_consumer(s.db.pool.clone(), starter, stop.clone()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while sqlx::query_scalar::<_, i64>("SELECT count(*) FROM outbox WHERE processed_at IS NULL")
        .fetch_one(&s.db.pool)
        .await
        .unwrap()
        > 0
    {
        assert!(std::time::Instant::now() < deadline, "the consumer is stuck behind the poisonous runs");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    stop.cancel();
    consumer.await.unwrap();
    let fine: i64 =
        sqlx::query_scalar("SELECT count(*) FROM runs WHERE workflow = 'fine'").fetch_one(&s.db.pool).await.unwrap();
    assert_eq!(fine, 3, "every event still started the workflow that can run");
    let failures: Vec<(String, String)> =
        sqlx::query_as("SELECT workflow, error FROM trigger_failures ORDER BY outbox_id")
            .fetch_all(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(failures.len(), 3);
    assert!(failures.iter().all(|(w, e)| w == "poison" && e == "cannot start poison"));
    s.close().await;
}
