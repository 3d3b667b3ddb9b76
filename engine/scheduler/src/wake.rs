//! The waker: ends the waits whose time has come. One indexed query a tick finds the due
//! `run_waits` rows, however many runs wait (a waiting run costs nothing until then), and
//! when none are due a second one finds the next wake time, which the waker sleeps until
//! (at most a poll, 250 ms);
//! rows are claimed with their runs under `FOR UPDATE SKIP LOCKED`, so two engines never
//! fire one wait, and fired in the same transaction as the step they end.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crm_store::run_waits;
use crm_store::workflow_error::WorkflowError;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::apply::{self, Incoming, RunLocks};
use crate::core::Core;
use crate::hold::Wake;

/// The most waits one transaction ends.
const WAKE_BATCH: usize = 250;

pub(crate) async fn run_waker(core: Arc<Core>, stop: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if stop.is_cancelled() {
            return;
        }
        // Smaller batches than the appliers': a burst's first completions go out sooner.
        match wake_once(&core, core.config.batch.min(WAKE_BATCH) as i64).await {
            Ok(n) => {
                backoff = Duration::from_millis(100);
                if n > 0 {
                    continue;
                }
                let nap = nap(&core).await;
                tokio::select! {
                    _ = core.wake_now.notified() => {}
                    _ = tokio::time::sleep(nap) => {}
                    _ = stop.cancelled() => return,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "waking due waits failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.cancelled() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// How long the waker may sleep: until the next wait falls due when that comes before the
/// next poll, so a wait fires on its time rather than up to a poll late. A wait another
/// engine (or this one's admission) makes due sooner is seen at the poll at the latest.
async fn nap(core: &Core) -> Duration {
    let now = core.clock.now();
    match run_waits::next_due_after(&core.state_pool, now).await {
        Ok(Some(at)) => (at - now).to_std().unwrap_or_default().min(core.config.wake_poll),
        Ok(None) => core.config.wake_poll,
        Err(e) => {
            tracing::warn!(error = %e, "looking up the next wake time failed");
            core.config.wake_poll
        }
    }
}

/// Fires one batch of due waits; returns how many were claimed.
pub(crate) async fn wake_once(core: &Arc<Core>, limit: i64) -> Result<usize, WorkflowError> {
    core.clock.refresh(&core.pool).await?;
    let now = core.clock.now();
    let mut tx = core.state_pool.begin().await?;
    let due = run_waits::claim_due(&mut tx, now, limit).await?;
    if due.is_empty() {
        tx.commit().await?;
        return Ok(0);
    }
    let claimed = due.len();
    let mut keys: HashSet<(Uuid, String)> = due.iter().map(|d| (d.run_id, d.step.clone())).collect();
    let incoming =
        due.into_iter().map(|d| Incoming::Woken { run_id: d.run_id, step: d.step, wake: Wake::Time }).collect();
    // The claim locked the runs with their waits: staging reads them without locking again,
    // and deletes the waits it ends with the rest of its writes.
    let staged = apply::stage_with(core, &mut tx, incoming, RunLocks::Held).await?;
    for (run_id, step, _) in staged.applied() {
        keys.remove(&(*run_id, step.clone()));
    }
    // What is left had nothing to end (its run finished or moved on without removing the
    // row); it must not be claimed again.
    let orphans: Vec<_> = keys.into_iter().collect();
    run_waits::delete(&mut tx, &orphans).await?;
    tx.commit().await?;
    // claims, not wakes: `crm bench timers` adds them up across engines to see none twice
    core.metrics.waits_woken.fetch_add(claimed as u64, std::sync::atomic::Ordering::Relaxed);
    staged.after_commit(core).await;
    Ok(claimed)
}
