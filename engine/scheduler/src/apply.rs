//! Applying step results. An applier takes the results workers handed in (each already
//! checked against its attempt's ticket) and applies them in one transaction: record every
//! attempt, move each run's state machine, write the changed rows set-wise. After the
//! commit it answers the workers (who only then ack their jobs on Redis), sends the steps
//! that became ready and publishes the completions; a crash anywhere leaves either a result
//! still with its worker, or an applied one that a redelivery cannot apply twice (results
//! are idempotent by (run, step, attempt)).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;
use crm_concepts::run::{AttemptStatus, Completion};
use crm_concepts::step::{StepError, StepErrorCode, StepOutcome, StepResult, StepUsage};
use crm_store::runs::{self, AttemptRecord};
use crm_store::workflow_error::WorkflowError;
use crm_store::{approvals, run_waits};
use rand::Rng;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::confirmer::Key;
use crate::core::Core;
use crate::hold::Wake;
use crate::intake::Arrival;
use crate::jobs::{self, RunContext};
use crate::machine::{Applied, RunMachine};

/// Something that ends an attempt: a worker's result, the engine's verdict that the
/// attempt was lost, or the end of a held step's wait.
pub(crate) enum Incoming {
    Result(StepResult),
    Lost { run_id: Uuid, step: String, attempt: i32, after: Duration },
    Woken { run_id: Uuid, step: String, wake: Wake },
}

impl Incoming {
    fn key(&self) -> Key {
        match self {
            Incoming::Result(r) => (r.key.run_id, r.key.step.clone(), r.key.attempt as i32),
            Incoming::Lost { run_id, step, attempt, .. } => (*run_id, step.clone(), *attempt),
            // a held step is at attempt 1 and is woken once
            Incoming::Woken { run_id, step, .. } => (*run_id, step.clone(), 1),
        }
    }

    fn span(&self) -> tracing::Span {
        let (run_id, step, attempt) = self.key();
        let what = match self {
            Incoming::Result(_) => "result",
            Incoming::Lost { .. } => "lost",
            Incoming::Woken { .. } => "woken",
        };
        let span = tracing::info_span!("step.apply", crm.run_id = %run_id, crm.step = %step, crm.attempt = attempt, crm.incoming = what);
        crm_traces::in_run(&span, run_id);
        span
    }
}

/// One applier: takes whatever results are waiting (up to a batch), applies them, answers
/// their workers. Several run side by side, so one batch's transaction overlaps the next.
pub(crate) async fn run_applier(core: Arc<Core>, rx: Arc<Mutex<mpsc::Receiver<Arrival>>>, stop: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut arrivals = Vec::new();
        {
            let mut rx = rx.lock().await;
            let first = tokio::select! {
                a = rx.recv() => a,
                _ = stop.cancelled() => None,
            };
            let Some(first) = first else { return };
            let mut count = first.results.len();
            arrivals.push(first);
            while count < core.config.batch {
                match rx.try_recv() {
                    Ok(a) => {
                        count += a.results.len();
                        arrivals.push(a);
                    }
                    Err(_) => break,
                }
            }
        }
        let incoming: Vec<Incoming> =
            arrivals.iter().flat_map(|a| a.results.iter().cloned().map(Incoming::Result)).collect();
        let outcome = apply(&core, incoming).await;
        if let Err(e) = &outcome {
            // The workers keep their results and hand them in again.
            tracing::error!(error = %e, "applying step results failed");
        }
        let failed = outcome.is_err();
        for a in arrivals {
            let _ = a.reply.send(outcome.as_ref().map(|_| ()).map_err(|e| e.to_string()));
        }
        if failed {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        } else {
            backoff = Duration::from_millis(100);
        }
    }
}

/// Applies results (and lost verdicts) in one transaction, then sends what became ready
/// and publishes what finished.
pub(crate) async fn apply(core: &Arc<Core>, incoming: Vec<Incoming>) -> Result<(), WorkflowError> {
    // One span per attempt in its run's trace, over the batch's transaction and what
    // follows it (sending the next steps, publishing completions).
    let spans: Vec<tracing::Span> =
        if crm_traces::exporting() { incoming.iter().map(Incoming::span).collect() } else { Vec::new() };
    let mut tx = core.state_pool.begin().await?;
    let staged = stage(core, &mut tx, incoming).await?;
    tx.commit().await?;
    staged.after_commit(core).await;
    drop(spans);
    Ok(())
}

/// Ends a held step with a person's decision; false when it had ended already.
pub(crate) async fn decide(core: &Arc<Core>, run_id: Uuid, step: String, wake: Wake) -> Result<bool, WorkflowError> {
    let mut tx = core.state_pool.begin().await?;
    let staged = stage(core, &mut tx, vec![Incoming::Woken { run_id, step, wake }]).await?;
    tx.commit().await?;
    let applied = !staged.applied.is_empty();
    staged.after_commit(core).await;
    Ok(applied)
}

/// What an applied batch leaves to do once its transaction commits.
#[derive(Default)]
pub(crate) struct Staged {
    jobs_now: Vec<jobs::Dispatch>,
    completions: Vec<Completion>,
    applied: Vec<Key>,
    stale: u64,
    wake_dispatcher: bool,
}

impl Staged {
    /// The attempts (and wakes) this batch applied.
    pub(crate) fn applied(&self) -> impl Iterator<Item = &Key> {
        self.applied.iter()
    }

    pub(crate) fn extend(&mut self, other: Staged) {
        self.jobs_now.extend(other.jobs_now);
        self.completions.extend(other.completions);
        self.applied.extend(other.applied);
        self.stale += other.stale;
        self.wake_dispatcher |= other.wake_dispatcher;
    }

    /// The transaction committed: count, send the next steps, publish the completions.
    pub(crate) async fn after_commit(self, core: &Core) {
        core.metrics.apply_batches.fetch_add(1, Ordering::Relaxed);
        core.metrics.results_applied.fetch_add(self.applied.len() as u64, Ordering::Relaxed);
        core.metrics.results_stale.fetch_add(self.stale, Ordering::Relaxed);
        for c in &self.completions {
            metrics::counter!("crm_runs_finished_total", "workflow" => c.workflow.clone(), "status" => c.status.as_str())
                .increment(1);
        }
        core.confirmer.settled(self.applied.iter());
        if self.wake_dispatcher {
            // a retry with a short backoff: let the dispatcher look sooner than its poll
            core.dispatch_wake.notify_one();
        }
        // Independent round trips: the next steps out and the completions out, together.
        let send = async {
            if !self.jobs_now.is_empty() {
                crate::dispatch::send_now(core, self.jobs_now).await;
            }
        };
        tokio::join!(send, publish(core, &self.completions));
    }
}

/// Whether [`stage_with`] must lock the runs or the caller's transaction holds their locks.
pub(crate) enum RunLocks {
    Take,
    /// claimed already (the waker locks due waits together with their runs)
    Held,
}

/// Applies results, lost verdicts and wakes in the caller's transaction: locks the runs,
/// moves their machines, writes the changed rows. The caller commits, then calls
/// [`Staged::after_commit`].
pub(crate) async fn stage(
    core: &Arc<Core>,
    tx: &mut sqlx::PgConnection,
    incoming: Vec<Incoming>,
) -> Result<Staged, WorkflowError> {
    stage_with(core, tx, incoming, RunLocks::Take).await
}

/// [`stage`] for a caller that may hold the runs' locks already.
pub(crate) async fn stage_with(
    core: &Arc<Core>,
    tx: &mut sqlx::PgConnection,
    incoming: Vec<Incoming>,
    locks: RunLocks,
) -> Result<Staged, WorkflowError> {
    // The same attempt twice in one batch (a redelivery): the first one counts.
    let mut seen = std::collections::HashSet::new();
    let delivered = incoming.len();
    let incoming: Vec<Incoming> = incoming.into_iter().filter(|i| seen.insert(i.key())).collect();
    let duplicates = (delivered - incoming.len()) as u64;
    let mut run_ids: Vec<Uuid> = incoming.iter().map(|i| i.key().0).collect();
    run_ids.sort_unstable();
    run_ids.dedup();

    let (run_rows, step_rows) = match locks {
        RunLocks::Take => runs::lock_runs(tx, &run_ids).await?,
        RunLocks::Held => runs::read_locked(tx, &run_ids).await?,
    };
    let mut steps_by_run: HashMap<Uuid, Vec<runs::StepState>> = HashMap::new();
    for s in step_rows {
        steps_by_run.entry(s.run_id).or_default().push(s);
    }
    let mut machines: HashMap<Uuid, RunMachine> = HashMap::with_capacity(run_rows.len());
    for run in run_rows {
        let v = core.versions.get(&run.workflow, run.version).await?;
        let steps = steps_by_run.remove(&run.id).unwrap_or_default();
        machines.insert(run.id, RunMachine::new(v, run, steps).at(core.clock.now()));
    }

    let now = Utc::now();
    let applied_us = crm_concepts::timeline::now_us();
    let mut attempts = Vec::with_capacity(incoming.len());
    let mut applied_keys = Vec::with_capacity(incoming.len());
    {
        let mut rng = rand::rng();
        for item in &incoming {
            let key = item.key();
            let Some(m) = machines.get_mut(&key.0) else {
                // Not a run of this database (a stray result on a shared Redis): nothing to do.
                continue;
            };
            let (applied, record) = match item {
                Incoming::Result(r) => {
                    metrics::histogram!(
                        "crm_step_duration_seconds",
                        "workflow" => m.run.workflow.clone(),
                        "step" => key.1.clone(),
                    )
                    .record(r.usage.duration_us as f64 / 1e6);
                    let applied = match &r.outcome {
                        StepOutcome::Ok { output, next } => m.succeed(&key.1, key.2, output.clone(), next.clone()),
                        StepOutcome::Failed { error } => m.fail(&key.1, key.2, error, now, rng.random::<f64>()),
                    };
                    let (status, error) = match &r.outcome {
                        StepOutcome::Ok { .. } => (AttemptStatus::Succeeded, None),
                        StepOutcome::Failed { error } => (AttemptStatus::Failed, serde_json::to_value(error).ok()),
                    };
                    let record = AttemptRecord {
                        run_id: key.0,
                        step: key.1.clone(),
                        attempt: key.2,
                        status,
                        worker: r.worker.clone(),
                        error,
                        logs: serde_json::to_value(&r.logs).unwrap_or_default(),
                        usage: {
                            let mut usage = r.usage.clone();
                            usage.timeline.applied_us = applied_us;
                            serde_json::to_value(&usage).unwrap_or_default()
                        },
                        applied: applied == Applied::Yes,
                    };
                    (applied, record)
                }
                Incoming::Woken { wake, .. } => {
                    let attempt = m.attempt_of(&key.1);
                    let applied = m.wake(&key.1, wake);
                    if applied == Applied::Stale {
                        // ended already (cancelled, or the other of a timeout and an event)
                        continue;
                    }
                    let record = AttemptRecord {
                        run_id: key.0,
                        step: key.1.clone(),
                        attempt,
                        status: AttemptStatus::Succeeded,
                        worker: "engine".into(),
                        error: None,
                        logs: serde_json::json!([]),
                        usage: serde_json::to_value(StepUsage::default()).unwrap_or_default(),
                        applied: true,
                    };
                    (applied, record)
                }
                Incoming::Lost { after, .. } => {
                    let error = StepError::retryable(
                        StepErrorCode::Lost,
                        format!(
                            "no result arrived within {}s of sending the step; the worker or Redis lost it",
                            after.as_secs()
                        ),
                    );
                    let applied = m.fail(&key.1, key.2, &error, now, rng.random::<f64>());
                    let record = AttemptRecord {
                        run_id: key.0,
                        step: key.1.clone(),
                        attempt: key.2,
                        status: AttemptStatus::Lost,
                        worker: "engine".into(),
                        error: serde_json::to_value(&error).ok(),
                        logs: serde_json::json!([]),
                        usage: serde_json::to_value(StepUsage::default()).unwrap_or_default(),
                        applied: applied == Applied::Yes,
                    };
                    (applied, record)
                }
            };
            if applied == Applied::Yes {
                applied_keys.push(key);
            }
            attempts.push(record);
        }
    }

    let fallback = now + chrono::Duration::from_std(core.config.fast_path_grace).unwrap_or_default();
    let mut step_updates = Vec::new();
    let mut run_updates = Vec::new();
    let mut completions = Vec::new();
    let mut jobs_now = Vec::new();
    let mut holds = Vec::new();
    let mut released = Vec::new();
    let mut approvals_ended = Vec::new();
    for m in machines.values_mut() {
        let (h, r) = m.take_waits();
        holds.extend(h);
        released.extend(r);
        approvals_ended.extend(m.take_approvals_ended());
        let ready = m.take_ready();
        let (s, r) = m.updates(&ready, fallback);
        step_updates.extend(s);
        if let Some(r) = r {
            if r.status.is_final() {
                completions.push(m.completion(r.rendered.clone().unwrap_or_default(), r.result.clone()));
            }
            run_updates.push(r);
        }
        let ctx = RunContext { run_id: m.run.id, input: &m.run.input, acting_user: m.run.acting_user };
        for r in ready.iter().filter(|r| r.not_before.is_none()) {
            if let Some(job) = jobs::build(core, &m.version, &ctx, &r.step, r.attempt, m.deps_of(&r.step)) {
                jobs_now.push(job);
            }
        }
    }

    let fresh = runs::write_changes(tx, &attempts, &step_updates, &run_updates).await?;
    if fresh < applied_keys.len() as i64 {
        // An applied result whose attempt row already existed means two engines applied
        // the same attempt, which the run lock rules out; refuse rather than corrupt.
        return Err(WorkflowError::Conflict("an attempt was recorded twice; batch rolled back".into()));
    }
    run_waits::delete(tx, &released).await?;
    run_waits::insert(tx, &holds).await?;
    approvals::close(tx, &approvals_ended).await?;
    approvals::open(tx, &holds).await?;
    Ok(Staged {
        stale: (attempts.len() - applied_keys.len()) as u64 + duplicates,
        wake_dispatcher: step_updates.iter().any(|u| u.dispatch_after.is_some_and(|d| d < fallback)),
        applied: applied_keys,
        jobs_now,
        completions,
    })
}

pub(crate) async fn publish(core: &Core, completions: &[Completion]) {
    if let Err(e) = crate::completions::publish(core, completions).await {
        tracing::warn!(error = %e, runs = completions.len(), "publishing completions failed; they are republished after Redis recovers");
    }
}

pub(crate) async fn cancel(core: &Arc<Core>, id: Uuid) -> Result<bool, WorkflowError> {
    let mut tx = core.state_pool.begin().await?;
    let (mut run_rows, steps) = runs::lock_runs(&mut tx, &[id]).await?;
    let run = run_rows.pop().ok_or(WorkflowError::RunNotFound(id))?;
    let v = core.versions.get(&run.workflow, run.version).await?;
    let mut m = RunMachine::new(v, run, steps);
    if !m.cancel() {
        return Ok(false);
    }
    let (steps, run) = m.updates(&[], Utc::now());
    let completion = run.as_ref().map(|r| m.completion(r.rendered.clone().unwrap_or_default(), None));
    runs::write_changes(&mut tx, &[], &steps, &run.into_iter().collect::<Vec<_>>()).await?;
    run_waits::delete(&mut tx, &m.take_waits().1).await?;
    approvals::close(&mut tx, &m.take_approvals_ended()).await?;
    tx.commit().await?;
    if let Some(c) = &completion {
        metrics::counter!("crm_runs_finished_total", "workflow" => c.workflow.clone(), "status" => c.status.as_str())
            .increment(1);
    }
    publish(core, &completion.into_iter().collect::<Vec<_>>()).await;
    Ok(true)
}

/// Runs a failed run again from its failed steps (see [`RunMachine::retry`]); false for a
/// run that is not failed.
pub(crate) async fn retry(core: &Arc<Core>, id: Uuid) -> Result<bool, WorkflowError> {
    let mut tx = core.state_pool.begin().await?;
    let (mut run_rows, steps) = runs::lock_runs(&mut tx, &[id]).await?;
    let run = run_rows.pop().ok_or(WorkflowError::RunNotFound(id))?;
    let v = core.versions.get(&run.workflow, run.version).await?;
    let mut m = RunMachine::new(v, run, steps).at(core.clock.now());
    if !m.retry() {
        return Ok(false);
    }
    let now = Utc::now();
    let fallback = now + chrono::Duration::from_std(core.config.fast_path_grace).unwrap_or_default();
    let ready = m.take_ready();
    let (holds, released) = m.take_waits();
    let (steps, run) = m.updates(&ready, fallback);
    let completion = run
        .as_ref()
        .filter(|r| r.status.is_final())
        .map(|r| m.completion(r.rendered.clone().unwrap_or_default(), r.result.clone()));
    runs::write_changes(&mut tx, &[], &steps, &run.into_iter().collect::<Vec<_>>()).await?;
    run_waits::delete(&mut tx, &released).await?;
    run_waits::insert(&mut tx, &holds).await?;
    approvals::close(&mut tx, &m.take_approvals_ended()).await?;
    approvals::open(&mut tx, &holds).await?;
    tx.commit().await?;
    let ctx = RunContext { run_id: m.run.id, input: &m.run.input, acting_user: m.run.acting_user };
    let jobs: Vec<_> = ready
        .iter()
        .filter(|r| r.not_before.is_none())
        .filter_map(|r| jobs::build(core, &m.version, &ctx, &r.step, r.attempt, m.deps_of(&r.step)))
        .collect();
    if !jobs.is_empty() {
        crate::dispatch::send_now(core, jobs).await;
    }
    publish(core, &completion.into_iter().collect::<Vec<_>>()).await;
    Ok(true)
}

/// Completions of these runs, rebuilt from their rows (for republishing).
pub(crate) async fn completions_of(core: &Arc<Core>, ids: &[Uuid]) -> Result<Vec<Completion>, WorkflowError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let rows = sqlx::query_as::<_, (Uuid, String, i32, String, Option<String>, Option<serde_json::Value>, Option<i64>, Option<serde_json::Value>, Option<serde_json::Value>)>(
            "SELECT id, workflow, version, status, rendered, notify, acting_user, result, error FROM runs WHERE id = ANY($1) AND finished_at IS NOT NULL",
        )
        .bind(chunk)
        .fetch_all(&core.pool)
        .await?;
        for (run_id, workflow, version, status, rendered, notify, acting_user, result, error) in rows {
            let Ok(status) = status.parse() else { continue };
            // As [`crate::machine`] publishes it: the workflow's own rendering only. A
            // version that cannot be read keeps the stored text rather than lose it.
            let own = match core.versions.get(&workflow, version).await {
                Ok(v) => v.manifest.result.has_own_template(status),
                Err(_) => true,
            };
            out.push(Completion {
                run_id,
                workflow,
                status,
                rendered: if own { rendered.unwrap_or_default() } else { String::new() },
                notify: notify.and_then(|n| serde_json::from_value(n).ok()),
                acting_user,
                result,
                error: error.and_then(|e| serde_json::from_value(e).ok()),
                language: None,
            });
        }
    }
    Ok(out)
}
