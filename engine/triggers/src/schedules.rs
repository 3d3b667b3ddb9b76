//! Cron schedules in Postgres, and the ticker every engine replica runs.
//!
//! No replica owns a schedule and none keeps a timer per schedule. Every replica wakes at
//! each tick boundary, computes the due ticks of every schedule from `last_tick_at`, and
//! tries to claim each: `INSERT INTO cron_ticks ... ON CONFLICT DO NOTHING` with the
//! schedule row locked (`FOR UPDATE SKIP LOCKED`). The replica whose insert went in starts
//! the run in the same transaction and moves `last_tick_at`; the others find nothing to do.
//! So each tick fires once however many replicas run, and a replica that dies mid-tick
//! leaves the tick to the next one. Missed ticks follow the policy in [`crate::cron`].

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use crm_concepts::run::RunRequest;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{PgPool, Row};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::catalog::Catalog;
use crate::cron::{CronSchedule, DueTick};
use crate::error::TriggerError;
use crate::starter::{RunStarter, StartRunError};

/// Settings of the ticker.
#[derive(Debug, Clone)]
pub struct TickerConfig {
    /// names this replica in `cron_ticks.claimed_by`
    pub replica: String,
    /// due ticks younger than this fire one by one; older ones are coalesced
    pub catch_up: Duration,
    /// at most this many ticks of one schedule per pass
    pub max_ticks_per_pass: usize,
}

impl Default for TickerConfig {
    fn default() -> Self {
        TickerConfig {
            replica: format!("{}-{}", std::process::id(), Uuid::new_v4().simple()),
            catch_up: Duration::seconds(60),
            max_ticks_per_pass: 100,
        }
    }
}

/// A schedule as the API, the CLI and the bot show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScheduleInfo {
    pub id: i64,
    pub workflow: String,
    pub expression: String,
    pub timezone: String,
    pub enabled: bool,
    pub last_tick_at: DateTime<Utc>,
    /// the next fire times, soonest first (empty when disabled or the expression has no
    /// future tick, e.g. a year that has passed)
    pub next_fire_times: Vec<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
struct ScheduleRow {
    id: i64,
    workflow: String,
    input: Value,
    last_tick_at: DateTime<Utc>,
    cron: CronSchedule,
}

/// Brings `trigger_schedules` in line with the cron triggers of enabled workflows: new
/// ones appear (counting from now, so a new schedule does not fire for its past), vanished
/// ones are disabled, and a re-enabled one restarts from now instead of catching up on the
/// time it was off. One replica syncs at a time; the others skip.
pub async fn sync(pool: &PgPool) -> Result<(), TriggerError> {
    let mut tx = pool.begin().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext('crm.triggers.sync'))")
        .fetch_one(&mut *tx)
        .await?;
    if !locked {
        tx.commit().await?;
        return Ok(());
    }
    let catalog = Catalog::load(&mut tx).await?;
    let mut workflows = Vec::new();
    let mut expressions = Vec::new();
    let mut zones = Vec::new();
    let mut inputs = Vec::new();
    for c in &catalog.cron {
        // Validated at deploy; a schedule the cron crate no longer accepts is left out.
        if let Err(e) = CronSchedule::parse(&c.schedule, &c.timezone) {
            tracing::warn!(workflow = %c.workflow, error = %e, "cron trigger ignored");
            continue;
        }
        workflows.push(c.workflow.clone());
        expressions.push(c.schedule.trim().to_string());
        zones.push(c.timezone.trim().to_string());
        inputs.push(c.input.clone());
    }
    sqlx::query(
        "INSERT INTO trigger_schedules (workflow, expression, timezone, input)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[])
         ON CONFLICT (workflow, expression, timezone) DO UPDATE
            SET input = EXCLUDED.input,
                enabled = true,
                last_tick_at = CASE WHEN trigger_schedules.enabled THEN trigger_schedules.last_tick_at ELSE now() END,
                updated_at = now()
          WHERE trigger_schedules.input IS DISTINCT FROM EXCLUDED.input OR NOT trigger_schedules.enabled",
    )
    .bind(&workflows)
    .bind(&expressions)
    .bind(&zones)
    .bind(&inputs)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE trigger_schedules s SET enabled = false, updated_at = now()
         WHERE s.enabled AND NOT EXISTS (
             SELECT 1 FROM unnest($1::text[], $2::text[], $3::text[]) AS d (workflow, expression, timezone)
             WHERE d.workflow = s.workflow AND d.expression = s.expression AND d.timezone = s.timezone)",
    )
    .bind(&workflows)
    .bind(&expressions)
    .bind(&zones)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn enabled_schedules(pool: &PgPool) -> Result<Vec<ScheduleRow>, TriggerError> {
    let rows = sqlx::query(
        "SELECT id, workflow, expression, timezone, input, last_tick_at FROM trigger_schedules WHERE enabled ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let expression: String = row.try_get("expression")?;
        let timezone: String = row.try_get("timezone")?;
        let Ok(cron) = CronSchedule::parse(&expression, &timezone) else {
            continue;
        };
        out.push(ScheduleRow {
            id: row.try_get("id")?,
            workflow: row.try_get("workflow")?,
            input: row.try_get("input")?,
            last_tick_at: row.try_get("last_tick_at")?,
            cron,
        });
    }
    Ok(out)
}

/// Every schedule with its next `n` fire times.
pub async fn list(pool: &PgPool, n: usize) -> Result<Vec<ScheduleInfo>, TriggerError> {
    let rows = sqlx::query(
        "SELECT id, workflow, expression, timezone, enabled, last_tick_at FROM trigger_schedules
         ORDER BY enabled DESC, workflow, id",
    )
    .fetch_all(pool)
    .await?;
    let now = Utc::now();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let expression: String = row.try_get("expression")?;
        let timezone: String = row.try_get("timezone")?;
        let enabled: bool = row.try_get("enabled")?;
        let next_fire_times = match CronSchedule::parse(&expression, &timezone) {
            Ok(c) if enabled => c.upcoming(now, n),
            _ => Vec::new(),
        };
        out.push(ScheduleInfo {
            id: row.try_get("id")?,
            workflow: row.try_get("workflow")?,
            expression,
            timezone,
            enabled,
            last_tick_at: row.try_get("last_tick_at")?,
            next_fire_times,
        });
    }
    Ok(out)
}

/// Fires the due ticks of every schedule once; returns how many runs this replica started.
pub async fn fire_due(pool: &PgPool, starter: &dyn RunStarter, config: &TickerConfig) -> Result<usize, TriggerError> {
    let schedules = enabled_schedules(pool).await?;
    let mut fired = 0;
    for s in schedules {
        let now = Utc::now();
        // Cheap check outside any transaction; the locked re-read below decides.
        if s.cron.due_ticks(s.last_tick_at, now, config.catch_up, 1).is_empty() {
            continue;
        }
        fired += fire_schedule(pool, starter, config, &s).await?;
    }
    Ok(fired)
}

async fn fire_schedule(
    pool: &PgPool,
    starter: &dyn RunStarter,
    config: &TickerConfig,
    s: &ScheduleRow,
) -> Result<usize, TriggerError> {
    let mut tx = pool.begin().await?;
    // Another replica holding the row is firing this schedule right now: leave it to it.
    let last: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT last_tick_at FROM trigger_schedules WHERE id = $1 AND enabled FOR UPDATE SKIP LOCKED",
    )
    .bind(s.id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(last) = last else {
        tx.commit().await?;
        return Ok(0);
    };
    let due: Vec<DueTick> = s.cron.due_ticks(last, Utc::now(), config.catch_up, config.max_ticks_per_pass);
    let Some(latest) = due.last().map(|d| d.at) else {
        tx.commit().await?;
        return Ok(0);
    };
    let mut started = Vec::new();
    let mut admitted = crm_scheduler::Admitted::default();
    for tick in &due {
        let claimed = sqlx::query(
            "INSERT INTO cron_ticks (schedule_id, tick_at, claimed_by, missed) VALUES ($1, $2, $3, $4)
             ON CONFLICT (schedule_id, tick_at) DO NOTHING",
        )
        .bind(s.id)
        .bind(tick.at)
        .bind(&config.replica)
        .bind(i32::try_from(tick.missed).unwrap_or(i32::MAX))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !claimed {
            continue;
        }
        let request = RunRequest {
            workflow: s.workflow.clone(),
            input: tick_input(s, tick),
            acting_user: None,
            notify: None,
            idempotency_key: Some(format!("cron:{}:{}", s.id, tick.at.timestamp())),
            trigger: Some("cron".into()),
        };
        let (started_run, one) = starter.start_run(&mut tx, request).await;
        admitted.extend(one);
        match started_run {
            Ok(run_id) => {
                sqlx::query("UPDATE cron_ticks SET run_id = $3 WHERE schedule_id = $1 AND tick_at = $2")
                    .bind(s.id)
                    .bind(tick.at)
                    .bind(run_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("INSERT INTO triggered_runs (run_id, workflow, source) VALUES ($1, $2, 'cron')")
                    .bind(run_id)
                    .bind(&s.workflow)
                    .execute(&mut *tx)
                    .await?;
                started.push(run_id);
            }
            // Disabled between the sync and now: the tick stays claimed, without a run.
            Err(StartRunError::Unavailable(w)) => {
                tracing::info!(workflow = %w, tick = %tick.at, "workflow unavailable: cron tick dropped");
            }
            Err(StartRunError::Failed(message)) => {
                return Err(TriggerError::StartRun { workflow: s.workflow.clone(), message });
            }
        }
    }
    sqlx::query("UPDATE trigger_schedules SET last_tick_at = $2 WHERE id = $1 AND last_tick_at < $2")
        .bind(s.id)
        .bind(latest)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    starter.committed(admitted).await;
    Ok(started.len())
}

/// A cron run's input: the manifest's `input` table plus when and why it fired.
fn tick_input(s: &ScheduleRow, tick: &DueTick) -> Value {
    let mut input = match &s.input {
        Value::Object(m) => Value::Object(m.clone()),
        _ => json!({}),
    };
    input["trigger"] = json!("cron");
    input["tick"] = json!(tick.at.to_rfc3339());
    input["schedule"] = json!(s.cron.expression());
    input["timezone"] = json!(s.cron.timezone().name());
    input["missed"] = json!(tick.missed);
    input
}

/// How long to sleep before the next pass: until the soonest next tick (just after its
/// boundary, so it is due when we look), but at most a second so new deploys are picked up.
async fn next_wake(pool: &PgPool) -> StdDuration {
    const MAX: StdDuration = StdDuration::from_secs(1);
    let Ok(schedules) = enabled_schedules(pool).await else {
        return MAX;
    };
    let now = Utc::now();
    let soonest = schedules.iter().filter_map(|s| s.cron.next_after(now)).min();
    match soonest {
        Some(t) => (t - now + Duration::milliseconds(5)).to_std().unwrap_or(StdDuration::ZERO).min(MAX),
        None => MAX,
    }
}

/// Deletes claimed ticks older than a day, webhook signatures past twice the replay window
/// (`last_tick_at` and the window itself make those rows useless) and outbox rows processed
/// more than a week ago (kept that long for diagnosis; the activity log is the history).
pub async fn prune(pool: &PgPool, webhook_window_secs: i64) -> Result<(), TriggerError> {
    sqlx::query("DELETE FROM cron_ticks WHERE claimed_at < now() - interval '1 day'").execute(pool).await?;
    sqlx::query("DELETE FROM webhook_deliveries WHERE received_at < now() - make_interval(secs => $1)")
        .bind((webhook_window_secs.saturating_mul(2)) as f64)
        .execute(pool)
        .await?;
    sqlx::query("DELETE FROM outbox WHERE processed_at < now() - interval '7 days'").execute(pool).await?;
    Ok(())
}

/// Runs the ticker until `stop` is cancelled.
pub async fn run_ticker(pool: PgPool, starter: Arc<dyn RunStarter>, config: TickerConfig, stop: CancellationToken) {
    let mut last_prune = std::time::Instant::now();
    loop {
        if let Err(e) = sync(&pool).await {
            tracing::warn!(error = %e, "syncing cron schedules failed");
        }
        match fire_due(&pool, starter.as_ref(), &config).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(runs = n, "cron ticks fired"),
            Err(e) => tracing::warn!(error = %e, "firing cron ticks failed; retrying next pass"),
        }
        if last_prune.elapsed() > StdDuration::from_secs(600) {
            last_prune = std::time::Instant::now();
            if let Err(e) = prune(&pool, crate::webhook::REPLAY_WINDOW_SECS).await {
                tracing::warn!(error = %e, "pruning trigger bookkeeping failed");
            }
        }
        let wake = next_wake(&pool).await;
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wake) => {}
        }
    }
}
