//! Recovery: Postgres is the truth, Redis is transport, and this loop makes Redis catch up
//! with Postgres whenever it falls behind.
//!
//! - **Redis lost its data** (FLUSHALL, a restart without persistence): Redis holds a
//!   marker key naming its "epoch"; Postgres remembers the last epoch seen. A missing or
//!   different marker means every step Postgres holds as queued may be gone from Redis, so
//!   all of them go back to the outbox (the dispatcher sends them again; consumer groups
//!   are recreated on first use) and recent completions are published again. Exactly one
//!   engine wins the swap of the epoch in Postgres and does the requeue.
//! - **Steps nobody answers** (a job lost between a worker and Redis): after the step's
//!   timeout plus `lost_after`, the attempt is recorded as `lost` and retried like any
//!   retryable failure. Workers reclaim jobs of dead workers much sooner (XAUTOCLAIM);
//!   this is the last line.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use crm_store::runs;
use crm_store::workflow_error::WorkflowError;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::apply::{self, Incoming};
use crate::core::Core;

const EPOCH_STATE_KEY: &str = "redis_epoch";

pub(crate) async fn run_reconciler(core: Arc<Core>, stop: CancellationToken) {
    let mut known_epoch: Option<String> = None;
    loop {
        if let Err(e) = check_epoch(&core, &mut known_epoch).await {
            tracing::warn!(error = %e, "checking Redis for lost data failed");
        }
        if let Err(e) = sweep_lost(&core).await {
            tracing::warn!(error = %e, "sweeping lost steps failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(core.config.reconcile_every) => {}
            _ = stop.cancelled() => return,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum RecoverError {
    #[error(transparent)]
    Store(#[from] WorkflowError),
    #[error("redis: {0}")]
    Redis(String),
}

async fn check_epoch(core: &Arc<Core>, known: &mut Option<String>) -> Result<(), RecoverError> {
    let epoch =
        core.queue.epoch(&Uuid::new_v4().simple().to_string()).await.map_err(|e| RecoverError::Redis(e.to_string()))?;
    if known.as_deref() == Some(epoch.as_str()) {
        return Ok(());
    }
    let previous = runs::swap_state(&core.state_pool, EPOCH_STATE_KEY, &epoch).await?;
    *known = Some(epoch.clone());
    match previous {
        // first start against this database, or another engine already handled it
        None => Ok(()),
        Some(p) if p == epoch => Ok(()),
        Some(_) => {
            core.metrics.redis_resets.fetch_add(1, Ordering::Relaxed);
            core.confirmer.clear();
            core.queue.ensure_groups().await.map_err(|e| RecoverError::Redis(e.to_string()))?;
            let keep = Utc::now() + chrono::Duration::from_std(core.config.fast_path_grace).unwrap_or_default();
            let n = runs::requeue_in_flight(&core.state_pool, keep).await?;
            tracing::warn!(steps = n, "Redis lost its data: steps in flight were put back in the outbox");
            core.dispatch_wake.notify_one();
            republish_since(core, Utc::now() - chrono::Duration::minutes(10)).await?;
            Ok(())
        }
    }
}

/// Publishes again the completions of runs finished after `since` (after Redis lost its
/// data, and after a dead engine's mark: `crate::publication`); returns how many went out.
///
/// Only what the completions stream does not hold goes out again. Publishing every run of
/// the last minutes again (more than a hundred thousand at full throughput) flooded the
/// stream past its cap: live completions were trimmed before the bot or the API's
/// followers had read them, and the flood took the CPU of seconds of runs. A stream at its
/// cap holds nothing older than its oldest entry, so runs finished before that (less a
/// margin for the two servers' clocks) are past every reader that keeps up, and are left
/// alone too.
pub(crate) async fn republish_since(core: &Arc<Core>, since: DateTime<Utc>) -> Result<usize, WorkflowError> {
    /// How far Redis' clock and Postgres' may disagree without a completion being missed.
    const CLOCK_MARGIN_MS: i64 = 60_000;
    /// How far before a full stream's oldest entry a finished run still counts as one the
    /// stream may have held (a hundred thousand completions back, no reader needs more).
    const TRIMMED_MARGIN_MS: i64 = 5_000;
    let published = core
        .queue
        .completions()
        .published_since(u64::try_from(since.timestamp_millis() - CLOCK_MARGIN_MS).unwrap_or(0))
        .await
        .map_err(|e| WorkflowError::Unavailable(format!("reading the completions stream: {e}")))?;
    let since = match published.trimmed_before_ms.and_then(|ms| i64::try_from(ms).ok()) {
        Some(oldest) => since.max(DateTime::from_timestamp_millis(oldest - TRIMMED_MARGIN_MS).unwrap_or(since)),
        None => since,
    };
    let ids: Vec<Uuid> = runs::finished_since(&core.pool, since)
        .await?
        .into_iter()
        .filter(|id| !published.runs.contains(&id.to_string()))
        .collect();
    if ids.is_empty() {
        return Ok(0);
    }
    let completions = apply::completions_of(core, &ids).await?;
    for chunk in completions.chunks(500) {
        crate::completions::publish(core, chunk)
            .await
            .map_err(|e| WorkflowError::Unavailable(format!("publishing completions again: {e}")))?;
    }
    core.metrics.completions_republished.fetch_add(completions.len() as u64, Ordering::Relaxed);
    tracing::info!(runs = completions.len(), "republished recent completions");
    Ok(completions.len())
}

async fn sweep_lost(core: &Arc<Core>) -> Result<(), WorkflowError> {
    // While jobs wait for a worker, a step long on Redis may simply not have been taken
    // yet: declaring it lost would only add a second job behind it, and under a backlog
    // that turns into a storm of retries. Only when every job has been handed out is a
    // step without a result really lost (its worker's takeover has had its chance).
    match core.queue.undelivered_jobs().await {
        Ok(0) => {}
        Ok(waiting) => {
            tracing::debug!(waiting, "jobs wait for workers; not sweeping for lost steps");
            return Ok(());
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot tell whether jobs wait for workers; not sweeping");
            return Ok(());
        }
    }
    let now = Utc::now();
    let lost_after = chrono::Duration::from_std(core.config.lost_after).unwrap_or_default();
    let candidates = runs::in_flight_since(&core.pool, now - lost_after, 500).await?;
    let mut lost = Vec::new();
    for (run_id, step, attempt, enqueued_at, workflow, version) in candidates {
        let v = core.versions.get(&workflow, version).await?;
        let timeout = v.manifest.step(&step).map(|s| s.limits().timeout_ms).unwrap_or(0);
        let deadline = enqueued_at + chrono::Duration::milliseconds(timeout as i64) + lost_after;
        if deadline < now {
            let after = (now - enqueued_at).to_std().unwrap_or_default();
            lost.push(Incoming::Lost { run_id, step, attempt, after: Duration::from_secs(after.as_secs()) });
        }
    }
    if !lost.is_empty() {
        core.metrics.steps_lost.fetch_add(lost.len() as u64, Ordering::Relaxed);
        tracing::warn!(steps = lost.len(), "steps got no result in time; retrying them");
        apply::apply(core, lost).await?;
    }
    Ok(())
}
