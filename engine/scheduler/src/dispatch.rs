//! Getting ready steps onto Redis. The fast path sends a step right after the transaction
//! that made it ready commits; the dispatcher is the outbox relay behind it: it claims due
//! outbox rows with `FOR UPDATE SKIP LOCKED` (so engines never send the same row at once),
//! sends them pipelined, and marks them enqueued in the same transaction.
//!
//! The fast path has one sender per engine. The tasks that commit ready steps (the
//! submitters, the appliers, the waker) hand their jobs to it and go on; the jobs handed
//! over while one send is on its way leave together in the next, under one signature and
//! one pipelined round trip. Each committing task sending its own made a signature, which
//! every worker taking one of its jobs must check, for every two or three jobs once load
//! was steady: about a seventh of a worker's CPU at half load.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crm_store::runs;
use crm_store::workflow_error::WorkflowError;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::confirmer::Key;
use crate::core::Core;
use crate::jobs::{self, Dispatch, RunContext};

/// Hands jobs whose rows are committed to the engine's sender; the dispatcher covers for
/// a send that fails, and for jobs still in hand when the engine stops.
pub(crate) fn send_now(core: &Core, jobs: Vec<Dispatch>) {
    if jobs.is_empty() {
        return;
    }
    if core.outgoing.send(jobs).is_err() {
        // the sender has stopped with the engine: the next engine's dispatcher sends them
        tracing::debug!("the engine is stopping; ready steps are left to the dispatcher");
    }
}

/// Hands jobs to the sender ahead of the statement that records their attempts (see
/// `crate::provisional`); returns those attempts, for [`decide_ahead`] once the statement
/// is over.
pub(crate) fn send_ahead(core: &Core, jobs: Vec<Dispatch>) -> Vec<Key> {
    let keys = jobs.iter().map(|j| j.key.clone()).collect();
    core.provisional.begin(jobs.iter().filter_map(|j| Some((j.key.clone(), j.provisional?))));
    core.metrics.steps_sent_ahead.fetch_add(jobs.len() as u64, Ordering::Relaxed);
    send_now(core, jobs);
    keys
}

/// The statement that was to record jobs sent ahead is over: `recorded` says for which
/// of their attempts it committed; the others are void.
pub(crate) fn decide_ahead(core: &Core, keys: &[Key], recorded: impl Fn(&Key) -> bool) {
    let voided = core.provisional.decide(keys, recorded);
    core.metrics.provisional_void.fetch_add(voided, Ordering::Relaxed);
}

/// The engine's sender: takes every job handed over so far, up to a batch, and sends them
/// at once. Once `stop` is cancelled it goes on until nothing has come for a moment: the
/// appliers finish the batch they hold, and what that batch made ready is sent rather than
/// left to the next engine's dispatcher.
pub(crate) async fn run_sender(
    core: Arc<Core>,
    mut rx: mpsc::UnboundedReceiver<Vec<Dispatch>>,
    stop: CancellationToken,
) {
    const QUIET: Duration = Duration::from_millis(50);
    loop {
        let first = tokio::select! {
            biased;
            jobs = rx.recv() => jobs,
            _ = stop.cancelled() => tokio::time::timeout(QUIET, rx.recv()).await.ok().flatten(),
        };
        let Some(mut jobs) = first else { return };
        while jobs.len() < core.config.batch {
            match rx.try_recv() {
                Ok(more) => jobs.extend(more),
                Err(_) => break,
            }
        }
        send(&core, jobs).await;
    }
}

async fn send(core: &Core, jobs: Vec<Dispatch>) {
    let (keys, signed) = jobs::sign(core, jobs);
    match core.queue.enqueue(&signed).await {
        Ok(_) => {
            core.metrics.steps_sent_fast.fetch_add(keys.len() as u64, Ordering::Relaxed);
            core.confirmer.sent(keys);
        }
        Err(e) => {
            tracing::warn!(error = %e, jobs = keys.len(), "sending steps failed; the dispatcher will send them");
            core.dispatch_wake.notify_one();
        }
    }
}

pub(crate) async fn run_dispatcher(core: Arc<Core>, stop: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if stop.is_cancelled() {
            return;
        }
        match dispatch_once(&core, core.config.batch as i64).await {
            Ok(n) => {
                backoff = Duration::from_millis(100);
                if n > 0 {
                    continue;
                }
                tokio::select! {
                    _ = core.dispatch_wake.notified() => {}
                    _ = tokio::time::sleep(core.config.dispatch_poll) => {}
                    _ = stop.cancelled() => return,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "dispatching steps failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.cancelled() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Sends one batch of due outbox rows; returns how many.
pub(crate) async fn dispatch_once(core: &Arc<Core>, limit: i64) -> Result<usize, DispatchError> {
    let mut tx = core.state_pool.begin().await.map_err(WorkflowError::from)?;
    let due = runs::claim_due(&mut tx, limit).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let mut run_ids: Vec<Uuid> = due.iter().map(|d| d.run_id).collect();
    run_ids.sort_unstable();
    run_ids.dedup();
    let mut outputs: HashMap<Uuid, BTreeMap<String, Arc<Value>>> = HashMap::new();
    for (run, step, output) in runs::outputs_of(&mut tx, &run_ids).await? {
        outputs.entry(run).or_default().insert(step, output);
    }
    // Read only when an on_failure step is due: the failures they get as input.
    let mut failures: Option<HashMap<Uuid, Value>> = None;
    let mut jobs = Vec::with_capacity(due.len());
    for d in &due {
        let v = core.versions.get(&d.workflow, d.version).await?;
        let Some(spec) = v.manifest.step(&d.step) else {
            continue;
        };
        let run_outputs = outputs.get(&d.run_id);
        let deps = if spec.on_failure {
            if failures.is_none() {
                failures = Some(runs::errors_of(&mut tx, &run_ids).await?.into_iter().collect());
            }
            let failure = failures.as_ref().and_then(|f| f.get(&d.run_id)).cloned().unwrap_or(Value::Null);
            BTreeMap::from([("failure".to_string(), Arc::new(failure))])
        } else {
            spec.needs.iter().filter_map(|n| Some((n.clone(), run_outputs?.get(n)?.clone()))).collect()
        };
        let ctx = RunContext { run_id: d.run_id, input: &d.input, acting_user: d.acting_user };
        if let Some(job) = jobs::build(core, &v, &ctx, &d.step, d.attempt, deps, None) {
            jobs.push(job);
        }
    }
    let (keys, jobs) = jobs::sign(core, jobs);
    core.queue.enqueue(&jobs).await.map_err(|e| DispatchError::Transport(e.to_string()))?;
    runs::mark_enqueued(&mut tx, &keys).await?;
    tx.commit().await.map_err(WorkflowError::from)?;
    core.metrics.steps_dispatched.fetch_add(jobs.len() as u64, Ordering::Relaxed);
    Ok(due.len())
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum DispatchError {
    #[error(transparent)]
    Store(#[from] WorkflowError),
    #[error("sending to Redis: {0}")]
    Transport(String),
}

/// Writes `enqueued_at` for fast-path steps still unfinished a moment after sending.
pub(crate) async fn run_confirmer(core: Arc<Core>, stop: CancellationToken) {
    let tick = Duration::from_millis(200).min(core.config.fast_path_grace / 4);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.cancelled() => return,
        }
        core.provisional.prune();
        let due = core.confirmer.due(tick);
        if due.is_empty() {
            continue;
        }
        let result = async {
            let mut conn = core.state_pool.acquire().await?;
            runs::mark_enqueued(&mut conn, &due).await
        }
        .await;
        if let Err(e) = result {
            // Not fatal: the dispatcher sends these steps again once their grace is over.
            tracing::warn!(error = %e, steps = due.len(), "confirming sent steps failed");
        }
    }
}
