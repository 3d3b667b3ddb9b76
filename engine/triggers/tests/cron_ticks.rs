//! Cron ticks against a real Postgres: each tick claimed once by competing tickers, the
//! missed-tick policy after an outage, and schedules following deploys.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use crm_testing::ScratchDb;
use crm_testing::deploy::{deploy, one_step};
use crm_triggers::RunStarter;
use crm_triggers::schedules::{self, TickerConfig};
use tokio_util::sync::CancellationToken;

fn replica(name: &str) -> TickerConfig {
    TickerConfig { replica: name.into(), ..TickerConfig::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn competing_tickers_fire_each_tick_exactly_once() {
    let s = ScratchDb::new("cron_compete", 10).await;
    deploy(&s.db, &one_step("every-second", "[[triggers]]\nkind = \"cron\"\nschedule = \"* * * * * *\"\n")).await;
    let (_redis, sched) = crm_testing::scheduler(&s, "cron_compete").await;
    let starter: Arc<dyn RunStarter> = Arc::new(sched.admission());
    let stop = CancellationToken::new();
    let mut tasks = Vec::new();
    for name in ["a", "b", "c"] {
        let pool = s.pool(4).await;
        tasks.push(tokio::spawn(schedules::run_ticker(pool, starter.clone(), replica(name), stop.clone())));
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    stop.cancel();
    for t in tasks {
        t.await.expect("ticker ends cleanly");
    }

    let ticks: Vec<(DateTime<Utc>, String, Option<uuid::Uuid>)> =
        sqlx::query_as("SELECT tick_at, claimed_by, run_id FROM cron_ticks ORDER BY tick_at")
            .fetch_all(&s.db.pool)
            .await
            .unwrap();
    assert!(ticks.len() >= 4, "expected a tick a second, got {ticks:?}");
    for pair in ticks.windows(2) {
        assert_eq!((pair[1].0 - pair[0].0).num_seconds(), 1, "ticks must be consecutive seconds: {ticks:?}");
    }
    let runs: Vec<(uuid::Uuid, serde_json::Value)> =
        sqlx::query_as("SELECT id, input FROM runs WHERE workflow = 'every-second' AND trigger = 'cron'")
            .fetch_all(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(runs.len(), ticks.len(), "one run per tick");
    for (tick_at, _, run_id) in &ticks {
        let run = runs.iter().find(|(id, _)| Some(*id) == *run_id).expect("each tick links its run");
        assert_eq!(run.1["tick"], serde_json::json!(tick_at.to_rfc3339()));
        assert_eq!(run.1["missed"], 0);
    }
    s.close().await;
}

#[tokio::test]
async fn an_outage_collapses_into_one_run_that_says_how_much_was_missed() {
    let s = ScratchDb::new("cron_outage", 10).await;
    deploy(&s.db, &one_step("minutely", "[[triggers]]\nkind = \"cron\"\nschedule = \"0 * * * * *\"\n")).await;
    schedules::sync(&s.db.pool).await.unwrap();
    // The engine was last up three hours ago.
    sqlx::query("UPDATE trigger_schedules SET last_tick_at = date_trunc('minute', now()) - interval '3 hours'")
        .execute(&s.db.pool)
        .await
        .unwrap();
    let (_redis, sched) = crm_testing::scheduler(&s, "cron_outage").await;
    let starter = sched.admission();
    let fired = schedules::fire_due(&s.db.pool, &starter, &replica("a")).await.unwrap();
    assert_eq!(fired, 1, "one catch-up run, not 180");
    let missed: i32 = sqlx::query_scalar("SELECT missed FROM cron_ticks").fetch_one(&s.db.pool).await.unwrap();
    assert!((178..=180).contains(&missed), "missed = {missed}");
    let input: serde_json::Value = sqlx::query_scalar("SELECT input FROM runs").fetch_one(&s.db.pool).await.unwrap();
    assert_eq!(input["missed"], missed);
    assert_eq!(schedules::fire_due(&s.db.pool, &starter, &replica("b")).await.unwrap(), 0, "nothing more is due");
    s.close().await;
}

#[tokio::test]
async fn schedules_follow_deploys_and_show_their_next_fire_times() {
    let s = ScratchDb::new("cron_sync", 10).await;
    let daily = |expr: &str| {
        one_step(
            "digest",
            &format!("[[triggers]]\nkind = \"cron\"\nschedule = \"{expr}\"\ntimezone = \"Europe/Berlin\"\n"),
        )
    };
    deploy(&s.db, &daily("0 0 9 * * *")).await;
    schedules::sync(&s.db.pool).await.unwrap();
    let list = schedules::list(&s.db.pool, 3).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].workflow.as_str(), list[0].timezone.as_str()), ("digest", "Europe/Berlin"));
    assert_eq!(list[0].next_fire_times.len(), 3);
    for t in &list[0].next_fire_times {
        let berlin = t.with_timezone(&chrono_tz::Europe::Berlin);
        assert_eq!(berlin.format("%H:%M:%S").to_string(), "09:00:00");
    }

    // A new expression replaces the old schedule; disabling the workflow disables it.
    deploy(&s.db, &daily("0 30 8 * * Mon-Fri")).await;
    schedules::sync(&s.db.pool).await.unwrap();
    let list = schedules::list(&s.db.pool, 1).await.unwrap();
    let enabled: Vec<_> = list.iter().filter(|l| l.enabled).map(|l| l.expression.as_str()).collect();
    assert_eq!(enabled, vec!["0 30 8 * * Mon-Fri"]);
    crm_store::workflows::set_enabled(&s.db.pool, "digest", false).await.unwrap();
    schedules::sync(&s.db.pool).await.unwrap();
    assert!(schedules::list(&s.db.pool, 1).await.unwrap().iter().all(|l| !l.enabled && l.next_fire_times.is_empty()));
    s.close().await;
}

#[tokio::test]
async fn pruning_drops_only_bookkeeping_nobody_can_need() {
    let s = ScratchDb::new("cron_prune", 10).await;
    deploy(&s.db, &one_step("minutely", "[[triggers]]\nkind = \"cron\"\nschedule = \"0 * * * * *\"\n")).await;
    schedules::sync(&s.db.pool).await.unwrap();
    let pool = &s.db.pool;
    for age in ["2 days", "1 hour"] {
        sqlx::query(
            "INSERT INTO cron_ticks (schedule_id, tick_at, claimed_at, claimed_by)
             SELECT id, now() - $1::interval, now() - $1::interval, 'test' FROM trigger_schedules",
        )
        .bind(age)
        .execute(pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO webhook_deliveries (path, signature, received_at, run_id)
             VALUES ('p', decode(md5($1), 'hex'), now() - $1::interval, gen_random_uuid())",
        )
        .bind(age)
        .execute(pool)
        .await
        .unwrap();
    }
    crm_store::contacts::create(
        &s.db,
        &crm_concepts::records::Actor::system(),
        serde_json::from_value(serde_json::json!({"name": "A"})).unwrap(),
    )
    .await
    .unwrap();
    crm_store::contacts::create(
        &s.db,
        &crm_concepts::records::Actor::system(),
        serde_json::from_value(serde_json::json!({"name": "B"})).unwrap(),
    )
    .await
    .unwrap();
    sqlx::query("UPDATE outbox SET processed_at = now() - interval '8 days' WHERE id = (SELECT min(id) FROM outbox)")
        .execute(pool)
        .await
        .unwrap();

    schedules::prune(pool, 300).await.unwrap();
    let count = |sql: &'static str| async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await.unwrap() };
    assert_eq!(count("SELECT count(*) FROM cron_ticks").await, 1, "the day-old tick goes, the recent one stays");
    assert_eq!(count("SELECT count(*) FROM webhook_deliveries").await, 0, "both are past twice the 5-minute window");
    assert_eq!(
        count("SELECT count(*) FROM outbox").await,
        1,
        "the week-old processed event goes, the pending one stays"
    );
    s.close().await;
}
