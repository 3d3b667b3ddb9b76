//! Record events: the consumer that turns outbox rows into runs of the workflows whose
//! record-event triggers match.
//!
//! Exactly once: a pass claims a batch of unprocessed rows with `FOR UPDATE SKIP LOCKED`
//! (so replicas share the work without waiting on each other), starts the matching runs
//! and marks the rows processed, all in one transaction. A crash before the commit leaves
//! the rows unprocessed for the next pass; after it, both the runs and the marks exist.
//!
//! Loop protection: a change made by a run carries that run's id (`origin_run`). Each
//! triggered run records its chain, the workflows upstream of it. A change never starts a
//! workflow that is already in the chain of the run that made it (so a workflow's own writes,
//! or a ping-pong between two workflows, never retrigger it), and chains stop at
//! [`MAX_CHAIN`] workflows.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crm_concepts::manifest::EventFilter;
use crm_concepts::run::RunRequest;
use crm_store::run_waits;
use serde_json::{Value, json};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool, Row};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::catalog::Catalog;
use crate::error::TriggerError;
use crate::event_match::{RecordChange, matches};
use crm_scheduler::Admitted;

use crate::starter::{RunStarter, StartRunError};

/// The longest chain of workflows one original change may set off.
pub const MAX_CHAIN: usize = 8;
/// Outbox rows claimed per transaction.
pub const BATCH: i64 = 500;
/// How often an idle consumer looks anyway, in case a notification was missed.
const POLL: Duration = Duration::from_secs(1);

/// What one pass did, for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassStats {
    pub events: usize,
    pub runs: usize,
    pub loops_stopped: usize,
    /// runs that could not be started (careful mode only)
    pub failed: usize,
    /// `wait_event` steps the changes ended
    pub woken: usize,
}

/// The chain a run carries: which workflow it is and which came before it.
#[derive(Debug, Clone)]
struct Origin {
    workflow: String,
    chain: Vec<String>,
}

/// How a pass treats a run that cannot be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A failure rolls the whole batch back; it is retried on the next pass.
    Batch,
    /// After repeated failures: one event, each run started under a savepoint; a run that
    /// still cannot be started is recorded in `trigger_failures` and the event is marked
    /// processed, so one poisonous change cannot hold up every later one.
    Careful,
}

/// Consecutive failed batch passes before the consumer switches to [`Mode::Careful`].
const CAREFUL_AFTER: u32 = 3;

/// Processes one batch of the outbox. Returns what it did; `events == 0` means the outbox
/// was empty (or every pending row is being processed by another replica).
pub async fn process_batch(pool: &PgPool, starter: &dyn RunStarter) -> Result<PassStats, TriggerError> {
    process(pool, starter, Mode::Batch).await
}

pub async fn process(pool: &PgPool, starter: &dyn RunStarter, mode: Mode) -> Result<PassStats, TriggerError> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query(
        "SELECT id, actor_id, origin_run, record_kind, record_id, action, changes, record
         FROM outbox WHERE processed_at IS NULL
         ORDER BY id LIMIT $1
         FOR UPDATE SKIP LOCKED",
    )
    .bind(if mode == Mode::Careful { 1 } else { BATCH })
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        tx.commit().await?;
        return Ok(PassStats::default());
    }
    let mut changes = Vec::with_capacity(rows.len());
    for row in rows {
        changes.push(RecordChange {
            outbox_id: row.try_get("id")?,
            actor_id: row.try_get("actor_id")?,
            origin_run: row.try_get("origin_run")?,
            record_kind: row.try_get("record_kind")?,
            record_id: row.try_get("record_id")?,
            action: row.try_get("action")?,
            changes: row.try_get("changes")?,
            record: row.try_get("record")?,
        });
    }
    let catalog = Catalog::load(&mut tx).await?;
    let mut stats = PassStats { events: changes.len(), ..Default::default() };
    let mut origins: HashMap<Uuid, Option<Origin>> = HashMap::new();
    let mut planned: Vec<Planned> = Vec::new();

    for change in &changes {
        let targets: Vec<&str> = catalog
            .events
            .iter()
            .filter(|t| matches(&t.record, &t.actions, &t.filter, change))
            .map(|t| t.workflow.as_str())
            .collect();
        if targets.is_empty() {
            continue;
        }
        let origin = match change.origin_run {
            None => None,
            Some(run) => {
                if let Some(known) = origins.get(&run) {
                    known.clone()
                } else {
                    let found = load_origin(&mut tx, run).await?;
                    origins.insert(run, found.clone());
                    found
                }
            }
        };
        let chain: Vec<String> = match &origin {
            None => Vec::new(),
            Some(o) => o.chain.iter().cloned().chain(std::iter::once(o.workflow.clone())).collect(),
        };
        let mut seen_here = Vec::new();
        for workflow in targets {
            // Two triggers of one workflow matching the same change start one run.
            if seen_here.contains(&workflow) {
                continue;
            }
            seen_here.push(workflow);
            if chain.iter().any(|w| w == workflow) {
                tracing::debug!(
                    workflow,
                    outbox_id = change.outbox_id,
                    ?chain,
                    "change made by the workflow's own chain: not retriggered"
                );
                stats.loops_stopped += 1;
                continue;
            }
            if chain.len() >= MAX_CHAIN {
                tracing::warn!(workflow, outbox_id = change.outbox_id, ?chain, "trigger chain too deep: not started");
                stats.loops_stopped += 1;
                continue;
            }
            planned.push(Planned {
                request: RunRequest {
                    workflow: workflow.to_string(),
                    input: event_input(change),
                    acting_user: change.actor_id,
                    notify: None,
                    idempotency_key: Some(format!("outbox:{}", change.outbox_id)),
                    trigger: Some("record_event".into()),
                },
                outbox_id: change.outbox_id,
                origin_run: change.origin_run,
                chain: chain.clone(),
            });
        }
    }

    let requests: Vec<RunRequest> = planned.iter().map(|p| p.request.clone()).collect();
    let mut admitted = Admitted::default();
    let results = match mode {
        Mode::Batch => {
            let (results, batch) = starter.start_runs(&mut tx, requests).await;
            admitted = batch;
            results
        }
        Mode::Careful => {
            let mut results = Vec::with_capacity(requests.len());
            for request in requests {
                // A savepoint, so a failed start leaves the rest of the transaction usable.
                sqlx::query("SAVEPOINT trigger_start").execute(&mut *tx).await?;
                let (r, one) = starter.start_run(&mut tx, request).await;
                let end = if r.is_ok() {
                    admitted.extend(one);
                    "RELEASE SAVEPOINT trigger_start"
                } else {
                    "ROLLBACK TO SAVEPOINT trigger_start"
                };
                sqlx::query(end).execute(&mut *tx).await?;
                results.push(r);
            }
            results
        }
    };
    let mut triggered = Triggered::default();
    for (p, result) in planned.iter().zip(results) {
        match result {
            Ok(run_id) => {
                triggered.push(run_id, p);
                stats.runs += 1;
            }
            Err(StartRunError::Unavailable(w)) => {
                tracing::info!(workflow = %w, outbox_id = p.outbox_id, "workflow unavailable: record event dropped");
            }
            Err(StartRunError::Failed(message)) if mode == Mode::Careful => {
                tracing::error!(workflow = %p.request.workflow, outbox_id = p.outbox_id, error = %message, "cannot start a run for a record event; recorded in trigger_failures");
                sqlx::query(
                    "INSERT INTO trigger_failures (workflow, source, outbox_id, error) VALUES ($1, 'event', $2, $3)",
                )
                .bind(&p.request.workflow)
                .bind(p.outbox_id)
                .bind(&message)
                .execute(&mut *tx)
                .await?;
                stats.failed += 1;
            }
            Err(StartRunError::Failed(message)) => {
                return Err(TriggerError::StartRun { workflow: p.request.workflow.clone(), message });
            }
        }
    }
    triggered.insert(&mut tx).await?;
    let wakes = waits_ended_by(&mut tx, &changes).await?;
    stats.woken = wakes.len();
    starter.wake_waits(&mut tx, wakes, &mut admitted).await?;

    let ids: Vec<i64> = changes.iter().map(|c| c.outbox_id).collect();
    sqlx::query("UPDATE outbox SET processed_at = now() WHERE id = ANY($1)").bind(&ids).execute(&mut *tx).await?;
    tx.commit().await?;
    starter.committed(admitted).await;
    Ok(stats)
}

/// The `wait_event` steps these changes end: `(run, step, the change as run input)`, in
/// outbox order. The same filter language as record-event triggers.
async fn waits_ended_by(
    conn: &mut PgConnection,
    changes: &[RecordChange],
) -> Result<Vec<(Uuid, String, Value)>, TriggerError> {
    let records: Vec<(String, i64)> = changes.iter().map(|c| (c.record_kind.clone(), c.record_id)).collect();
    let waits = run_waits::on_records(conn, &records).await?;
    let mut wakes = Vec::new();
    for change in changes {
        for w in waits.iter().filter(|w| w.record_kind == change.record_kind && w.record_id == change.record_id) {
            let actions: Vec<String> = serde_json::from_value(w.detail["actions"].clone()).unwrap_or_default();
            let filter: EventFilter = serde_json::from_value(w.detail["filter"].clone()).unwrap_or_default();
            if matches(&change.record_kind, &actions, &filter, change) {
                wakes.push((w.run_id, w.step.clone(), event_input(change)));
            }
        }
    }
    Ok(wakes)
}

/// A run the pass means to start, and what to record about it.
struct Planned {
    request: RunRequest,
    outbox_id: i64,
    origin_run: Option<Uuid>,
    chain: Vec<String>,
}

/// `triggered_runs` rows of one pass, inserted with one statement.
#[derive(Default)]
struct Triggered {
    run_ids: Vec<Uuid>,
    workflows: Vec<String>,
    outbox_ids: Vec<i64>,
    origins: Vec<Option<Uuid>>,
    // Postgres has no arrays of arrays of different lengths: each chain travels as JSON.
    chains: Vec<Value>,
}

impl Triggered {
    fn push(&mut self, run_id: Uuid, p: &Planned) {
        self.run_ids.push(run_id);
        self.workflows.push(p.request.workflow.clone());
        self.outbox_ids.push(p.outbox_id);
        self.origins.push(p.origin_run);
        self.chains.push(json!(p.chain));
    }

    async fn insert(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.run_ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO triggered_runs (run_id, workflow, source, outbox_id, origin_run, chain)
             SELECT u.r, u.w, 'event', u.o, u.g, ARRAY(SELECT jsonb_array_elements_text(u.c))
             FROM UNNEST($1::uuid[], $2::text[], $3::int8[], $4::uuid[], $5::jsonb[]) AS u (r, w, o, g, c)",
        )
        .bind(&self.run_ids)
        .bind(&self.workflows)
        .bind(&self.outbox_ids)
        .bind(&self.origins)
        .bind(&self.chains)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// The workflow of the run that made a change, and that run's own chain. A run that no
/// trigger started (API, bot) has an empty chain.
async fn load_origin(conn: &mut PgConnection, run: Uuid) -> Result<Option<Origin>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT r.workflow, COALESCE(t.chain, '{}') AS chain
         FROM runs r LEFT JOIN triggered_runs t ON t.run_id = r.id
         WHERE r.id = $1",
    )
    .bind(run)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| Ok(Origin { workflow: r.try_get("workflow")?, chain: r.try_get("chain")? })).transpose()
}

/// The run's input: the change itself, plus `<kind>_id` so steps written for a bot command
/// (`contact_id`, `deal_id`, ...) work unchanged.
pub fn event_input(change: &RecordChange) -> Value {
    let mut input = json!({
        "trigger": "record_event",
        "record_kind": change.record_kind,
        "record_id": change.record_id,
        "action": change.action,
        "changes": change.changes,
        "record": change.record,
        "actor_id": change.actor_id,
        "outbox_id": change.outbox_id,
    });
    input[format!("{}_id", change.record_kind)] = json!(change.record_id);
    input
}

/// Runs the consumer until `stop` is cancelled: drains the outbox, then sleeps until a
/// write is committed (LISTEN crm_outbox) or a second passes.
pub async fn run_consumer(pool: PgPool, starter: Arc<dyn RunStarter>, stop: CancellationToken) {
    let mut listener = connect_listener(&pool).await;
    let mut failures: u32 = 0;
    loop {
        if stop.is_cancelled() {
            return;
        }
        let mode = if failures >= CAREFUL_AFTER { Mode::Careful } else { Mode::Batch };
        match process(&pool, starter.as_ref(), mode).await {
            Ok(stats) if stats.events > 0 => {
                // Careful mode lasts while it keeps meeting events it cannot start.
                if mode == Mode::Batch || stats.failed == 0 {
                    failures = 0;
                }
                if stats.runs > 0 || stats.loops_stopped > 0 {
                    tracing::debug!(?stats, "record events processed");
                }
                // More may be waiting: go again without sleeping.
                continue;
            }
            Ok(_) => failures = 0,
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::warn!(error = %e, failures, "record-event pass failed; retrying");
                let backoff = Duration::from_millis(100u64.saturating_mul(1 << failures.min(6)));
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                continue;
            }
        }
        match listener.as_mut() {
            Some(l) => {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    n = l.recv() => {
                        if let Err(e) = n {
                            tracing::warn!(error = %e, "outbox listener lost; polling until it is back");
                            listener = None;
                        }
                    }
                    _ = tokio::time::sleep(POLL) => {}
                }
            }
            None => {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(POLL) => {}
                }
                listener = connect_listener(&pool).await;
            }
        }
    }
}

async fn connect_listener(pool: &PgPool) -> Option<PgListener> {
    let mut l = match PgListener::connect_with(pool).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "cannot LISTEN for outbox writes; polling");
            return None;
        }
    };
    match l.listen("crm_outbox").await {
        Ok(()) => Some(l),
        Err(e) => {
            tracing::warn!(error = %e, "cannot LISTEN for outbox writes; polling");
            None
        }
    }
}
