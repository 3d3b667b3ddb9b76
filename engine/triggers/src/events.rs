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

use crm_concepts::run::RunRequest;
use serde_json::{Value, json};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool, Row};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::catalog::Catalog;
use crate::error::TriggerError;
use crate::event_match::{RecordChange, matches};
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
}

/// The chain a run carries: which workflow it is and which came before it.
#[derive(Debug, Clone)]
struct Origin {
    workflow: String,
    chain: Vec<String>,
}

/// Processes one batch of the outbox. Returns what it did; `events == 0` means the outbox
/// was empty (or every pending row is being processed by another replica).
pub async fn process_batch(
    pool: &PgPool,
    starter: &dyn RunStarter,
) -> Result<PassStats, TriggerError> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query(
        "SELECT id, actor_id, origin_run, record_kind, record_id, action, changes, record
         FROM outbox WHERE processed_at IS NULL
         ORDER BY id LIMIT $1
         FOR UPDATE SKIP LOCKED",
    )
    .bind(BATCH)
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
    let mut stats = PassStats {
        events: changes.len(),
        ..Default::default()
    };
    let mut origins: HashMap<Uuid, Option<Origin>> = HashMap::new();
    let mut started = Vec::new();

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
            Some(o) => o
                .chain
                .iter()
                .cloned()
                .chain(std::iter::once(o.workflow.clone()))
                .collect(),
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
                tracing::warn!(
                    workflow,
                    outbox_id = change.outbox_id,
                    ?chain,
                    "trigger chain too deep: not started"
                );
                stats.loops_stopped += 1;
                continue;
            }
            let request = RunRequest {
                workflow: workflow.to_string(),
                input: event_input(change),
                acting_user: change.actor_id,
                notify: None,
                idempotency_key: Some(format!("outbox:{}", change.outbox_id)),
                trigger: Some("record_event".into()),
            };
            match starter.start_run(&mut tx, request).await {
                Ok(run_id) => {
                    sqlx::query(
                        "INSERT INTO triggered_runs (run_id, workflow, source, outbox_id, origin_run, chain)
                         VALUES ($1, $2, 'event', $3, $4, $5)",
                    )
                    .bind(run_id)
                    .bind(workflow)
                    .bind(change.outbox_id)
                    .bind(change.origin_run)
                    .bind(&chain)
                    .execute(&mut *tx)
                    .await?;
                    started.push(run_id);
                    stats.runs += 1;
                }
                Err(StartRunError::Unavailable(w)) => {
                    tracing::info!(workflow = %w, outbox_id = change.outbox_id, "workflow unavailable: record event dropped");
                }
                Err(StartRunError::Failed(message)) => {
                    return Err(TriggerError::StartRun {
                        workflow: workflow.to_string(),
                        message,
                    });
                }
            }
        }
    }

    let ids: Vec<i64> = changes.iter().map(|c| c.outbox_id).collect();
    sqlx::query("UPDATE outbox SET processed_at = now() WHERE id = ANY($1)")
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    if !started.is_empty() {
        starter.committed(&started);
    }
    Ok(stats)
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
    row.map(|r| {
        Ok(Origin {
            workflow: r.try_get("workflow")?,
            chain: r.try_get("chain")?,
        })
    })
    .transpose()
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
        match process_batch(&pool, starter.as_ref()).await {
            Ok(stats) if stats.events > 0 => {
                failures = 0;
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
