//! Applying step results. An applier takes the results workers handed in (each already
//! checked against its attempt's ticket) and applies them in one transaction: record every
//! attempt, move each run's state machine, write the changed rows set-wise. After the
//! commit it answers the workers (who only then ack their jobs on Redis), sends the steps
//! that became ready and publishes the completions; a crash anywhere leaves either a result
//! still with its worker, or an applied one that a redelivery cannot apply twice (results
//! are idempotent by (run, step, attempt)). Results applied from the engine's memory of a
//! run send the steps they make ready beside their one statement instead, provisionally
//! (see `crate::provisional`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;
use crm_concepts::run::{AttemptStatus, Completion};
use crm_concepts::step::{StepError, StepErrorCode, StepOutcome, StepUsage};
use crm_concepts::timeline::StepTimeline;
use crm_store::runs::{self, AttemptRecord, Expect};
use crm_store::workflow_error::WorkflowError;
use crm_store::{approvals, run_waits};
use rand::Rng;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::confirmer::Key;
use crate::core::Core;
use crate::hold::Wake;
use crate::intake::{Arrival, Handed};
use crate::jobs::{self, RunContext};
use crate::known_runs::Known;
use crate::machine::{Applied, RunMachine};
use crate::publication::Ticket;

/// Something that ends an attempt: a worker's result, the engine's verdict that the
/// attempt was lost, or the end of a held step's wait.
pub(crate) enum Incoming {
    Result(Handed),
    Lost { run_id: Uuid, step: String, attempt: i32, after: Duration },
    Woken { run_id: Uuid, step: String, wake: Wake },
}

impl Incoming {
    fn key(&self) -> Key {
        match self {
            Incoming::Result(h) => h.key(),
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
        let answer = |outcome: &Result<HashSet<Key>, WorkflowError>| {
            if let Err(e) = outcome {
                // The workers keep their results and hand them in again.
                tracing::error!(error = %e, "applying step results failed");
            }
            for a in arrivals {
                let reply = match outcome {
                    Ok(not_yet) => Ok(a.results.into_iter().filter(|h| not_yet.contains(&h.key())).collect()),
                    Err(e) => Err(e.to_string()),
                };
                let _ = a.reply.send(reply);
            }
        };
        let failed = apply_answering(&core, incoming, answer).await.is_err();
        if failed {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        } else {
            backoff = Duration::from_millis(100);
        }
    }
}

/// Applies results (and lost verdicts), then sends what became ready and publishes what
/// finished. Results for runs this engine remembers are applied first, in one guarded
/// statement without a transaction around it; the rest, and any whose run moved on
/// meanwhile, in one transaction that locks their runs.
pub(crate) async fn apply(core: &Arc<Core>, incoming: Vec<Incoming>) -> Result<(), WorkflowError> {
    apply_answering(core, incoming, |_| {}).await.map(|_| ())
}

/// [`apply`], calling `answer` once everything is committed (or has failed) and the next
/// steps are on their way, before the completions are published: a worker waiting for the
/// answer before it hands in its next results does not wait for that Redis round trip
/// too. Its ack needs only the commit; a completion lost with the engine in between is
/// published again by the engine that takes over its mark, as when it dies between the
/// commit and the publish (`crate::publication`).
/// Returns the results not taken because another engine's write recording their attempt
/// has not committed yet (see [`Handed::unseen_since_ms`]).
async fn apply_answering(
    core: &Arc<Core>,
    incoming: Vec<Incoming>,
    answer: impl FnOnce(&Result<HashSet<Key>, WorkflowError>),
) -> Result<HashSet<Key>, WorkflowError> {
    // One span per attempt in its run's trace, over the batch's writes and what follows
    // them (sending the next steps, publishing completions).
    let spans: Vec<tracing::Span> =
        if crm_traces::exporting() { incoming.iter().map(Incoming::span).collect() } else { Vec::new() };
    let ticket = core.ledger.open();
    let (known, items, mut rest) = take_known(core, incoming);
    let mut completions = Vec::new();
    if !known.is_empty() {
        let (staged, missed) = apply_known(core, known, items).await;
        rest.extend(missed);
        completions.extend(staged.settle(core));
    }
    let outcome = async {
        if rest.is_empty() {
            return Ok(HashSet::new());
        }
        let mut tx = core.state_pool.begin().await?;
        let mut staged = stage(core, &mut tx, rest).await?;
        tx.commit().await?;
        let not_yet = std::mem::take(&mut staged.not_yet).into_iter().collect();
        completions.extend(staged.settle(core));
        Ok(not_yet)
    }
    .await;
    answer(&outcome);
    publish(core, completions, ticket).await;
    drop(spans);
    outcome
}

/// Splits off the results for runs this engine remembers (taking them out of its memory
/// while they are applied). A run with anything but results in the batch (a lost verdict),
/// or with a result whose record this engine did not see written, stays with the rest.
fn take_known(core: &Core, incoming: Vec<Incoming>) -> (HashMap<Uuid, Known>, Vec<Incoming>, Vec<Incoming>) {
    let others: HashSet<Uuid> = incoming
        .iter()
        .filter(|i| !matches!(i, Incoming::Result(Handed { unseen_since_ms: None, .. })))
        .map(|i| i.key().0)
        .collect();
    let mut known: HashMap<Uuid, Known> = HashMap::new();
    let mut asked = HashSet::new();
    let (mut items, mut rest) = (Vec::new(), Vec::new());
    for item in incoming {
        let run = item.key().0;
        if !others.contains(&run)
            && asked.insert(run)
            && let Some(k) = core.known.take(&run)
        {
            known.insert(run, k);
        }
        if known.contains_key(&run) { items.push(item) } else { rest.push(item) }
    }
    (known, items, rest)
}

/// Applies results to remembered runs with one statement, each run's rows guarded by its
/// revision. Returns what to do after (the statement has committed) and the results whose
/// run changed elsewhere, which started or ended a wait, or which could not be written.
async fn apply_known(core: &Arc<Core>, known: HashMap<Uuid, Known>, items: Vec<Incoming>) -> (Staged, Vec<Incoming>) {
    let (items, duplicates) = dedup(items);
    let revs: HashMap<Uuid, i64> = known.iter().map(|(id, k)| (*id, k.rev)).collect();
    let mut machines = HashMap::with_capacity(known.len());
    for (id, k) in known {
        match core.versions.get(&k.run.workflow, k.run.version).await {
            Ok(v) => {
                machines.insert(id, RunMachine::new(v, k.run, k.steps).at(core.clock.now()));
            }
            // the locking path reads it again and says what is wrong
            Err(_) => continue,
        }
    }
    let (mut attempts, mut applied) = drive(&mut machines, &items);
    machines.retain(|_, m| !m.touches_waits());
    attempts.retain(|a| machines.contains_key(&a.run_id));
    applied.retain(|k| machines.contains_key(&k.0));
    let mut plan = plan(core, &mut machines, Send::AheadOfWrite);
    // The steps this batch makes ready leave now, beside the write that records them: their
    // trip to a worker overlaps it, and what they do outside their sandbox waits for its
    // verdict (see `crate::provisional`).
    let ahead = crate::dispatch::send_ahead(core, std::mem::take(&mut plan.jobs_now));
    let write = async {
        let mut conn = core.guarded_pool.acquire().await?;
        runs::write_changes(&mut conn, &attempts, &plan.step_updates, &plan.run_updates, Expect::Revisions(&revs)).await
    };
    let written: HashMap<Uuid, i64> = match write.await {
        Ok(w) => w.into_iter().collect(),
        Err(e) => {
            // Nothing was written (one statement): the locking path applies them all.
            tracing::warn!(error = %e, "a guarded write failed; applying under locks");
            HashMap::new()
        }
    };
    crate::dispatch::decide_ahead(core, &ahead, |k| written.contains_key(&k.0));
    core.metrics.guard_misses.fetch_add((machines.len() - written.len()) as u64, Ordering::Relaxed);
    let missed: Vec<Incoming> = items.into_iter().filter(|i| !written.contains_key(&i.key().0)).collect();
    let stale = attempts.iter().filter(|a| written.contains_key(&a.run_id) && !a.applied).count() as u64;
    let applied: Vec<Key> = applied.into_iter().filter(|k| written.contains_key(&k.0)).collect();
    core.metrics.results_applied_guarded.fetch_add(applied.len() as u64, Ordering::Relaxed);
    let staged = Staged {
        jobs_now: Vec::new(),
        completions: plan.completions.into_iter().filter(|c| written.contains_key(&c.run_id)).collect(),
        applied,
        stale: stale + duplicates,
        wake_dispatcher: plan.wake_dispatcher,
        known: remembered(machines, &written),
        not_yet: Vec::new(),
        // the caller's covers it
        ticket: None,
    };
    (staged, missed)
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
    /// the runs as written, for the next result to start from
    known: Vec<Known>,
    /// results left out because their attempt is not recorded yet
    not_yet: Vec<Key>,
    /// held from before the batch's statements until its completions are published
    ticket: Option<Ticket>,
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
        self.known.extend(other.known);
        self.not_yet.extend(other.not_yet);
        self.ticket = match (self.ticket.take(), other.ticket) {
            (Some(a), Some(b)) => Some(Ticket::earlier(a, b)),
            (a, b) => a.or(b),
        };
    }

    /// The transaction committed: count, send the next steps, publish the completions.
    pub(crate) async fn after_commit(mut self, core: &Core) {
        // Only an empty `Staged::default()` has none, and it finishes no run.
        let ticket = self.ticket.take().unwrap_or_else(|| core.ledger.open());
        let completions = self.settle(core);
        publish(core, completions, ticket).await;
    }

    /// [`Staged::after_commit`] but the publishing: returns the completions to publish.
    fn settle(self, core: &Core) -> Vec<Completion> {
        core.metrics.apply_batches.fetch_add(1, Ordering::Relaxed);
        core.metrics.results_applied.fetch_add(self.applied.len() as u64, Ordering::Relaxed);
        core.metrics.results_stale.fetch_add(self.stale, Ordering::Relaxed);
        for c in &self.completions {
            metrics::counter!("crm_runs_finished_total", "workflow" => c.workflow.clone(), "status" => c.status.as_str())
                .increment(1);
        }
        core.known.remember(self.known);
        core.confirmer.settled(self.applied.iter());
        core.provisional.settled(self.applied.iter());
        if self.wake_dispatcher {
            // a retry with a short backoff: let the dispatcher look sooner than its poll
            core.dispatch_wake.notify_one();
        }
        crate::dispatch::send_now(core, self.jobs_now);
        self.completions
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
    let ticket = core.ledger.open();
    let (incoming, duplicates) = dedup(incoming);
    let mut run_ids: Vec<Uuid> = incoming.iter().map(|i| i.key().0).collect();
    run_ids.sort_unstable();
    run_ids.dedup();

    let (run_rows, step_rows) = match locks {
        RunLocks::Take => runs::lock_runs(tx, &run_ids).await?,
        RunLocks::Held => runs::read_locked(tx, &run_ids).await?,
    };
    let (incoming, not_yet, void) = recorded_only(incoming, &step_rows);
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

    let (attempts, applied_keys) = drive(&mut machines, &incoming);
    let mut holds = Vec::new();
    let mut released = Vec::new();
    let mut approvals_ended = Vec::new();
    for m in machines.values_mut() {
        let (h, r) = m.take_waits();
        holds.extend(h);
        released.extend(r);
        approvals_ended.extend(m.take_approvals_ended());
    }
    let plan = plan(core, &mut machines, Send::AfterCommit);
    let written: HashMap<Uuid, i64> =
        runs::write_changes(tx, &attempts, &plan.step_updates, &plan.run_updates, Expect::Locked)
            .await?
            .into_iter()
            .collect();
    run_waits::delete(tx, &released).await?;
    run_waits::insert(tx, &holds).await?;
    approvals::close(tx, &approvals_ended).await?;
    approvals::open(tx, &holds).await?;
    Ok(Staged {
        stale: (attempts.len() - applied_keys.len()) as u64 + duplicates + void,
        wake_dispatcher: plan.wake_dispatcher,
        applied: applied_keys,
        jobs_now: plan.jobs_now,
        completions: plan.completions,
        known: remembered(machines, &written),
        not_yet,
        ticket: Some(ticket),
    })
}

/// Keeps what may be applied: a result whose step was sent ahead of a write this engine
/// did not see end counts once the run's rows, read under its lock, record its attempt.
/// The lock waits for such a write of the run in flight; a run's first write, its insert,
/// is not there to wait for, so a result that comes before it goes back to be handed in
/// again (the keys returned second). One whose write cannot still be running never will
/// be recorded: it is dropped (counted third), and nothing of it is written, as the
/// attempt may yet be recorded and sent again under the same number.
fn recorded_only(incoming: Vec<Incoming>, steps: &[runs::StepState]) -> (Vec<Incoming>, Vec<Key>, u64) {
    let reached: HashMap<(Uuid, &str), i32> = steps.iter().map(|s| ((s.run_id, s.step.as_str()), s.attempt)).collect();
    let (mut kept, mut not_yet, mut void) = (Vec::with_capacity(incoming.len()), Vec::new(), 0);
    for item in incoming {
        if let Incoming::Result(Handed { unseen_since_ms: Some(sent_at_ms), .. }) = &item {
            let key = item.key();
            if reached.get(&(key.0, key.1.as_str())).is_none_or(|a| *a < key.2) {
                if crate::provisional::past_its_write(*sent_at_ms) {
                    void += 1;
                } else {
                    not_yet.push(key);
                }
                continue;
            }
        }
        kept.push(item);
    }
    (kept, not_yet, void)
}

/// The batch without repeats: the same attempt twice (a redelivery), the first one counts.
fn dedup(incoming: Vec<Incoming>) -> (Vec<Incoming>, u64) {
    let mut seen = std::collections::HashSet::new();
    let delivered = incoming.len();
    let incoming: Vec<Incoming> = incoming.into_iter().filter(|i| seen.insert(i.key())).collect();
    let duplicates = (delivered - incoming.len()) as u64;
    (incoming, duplicates)
}

/// Moves each run's machine by what came in for it; returns the attempts to record and
/// the keys of those that moved their run on.
fn drive(machines: &mut HashMap<Uuid, RunMachine>, incoming: &[Incoming]) -> (Vec<AttemptRecord>, Vec<Key>) {
    let now = Utc::now();
    let applied_us = crm_concepts::timeline::now_us();
    let mut attempts = Vec::with_capacity(incoming.len());
    let mut applied_keys = Vec::with_capacity(incoming.len());
    let mut rng = rand::rng();
    for item in incoming {
        let key = item.key();
        let Some(m) = machines.get_mut(&key.0) else {
            // Not a run of this database (a stray result on a shared Redis): nothing to do.
            continue;
        };
        let (applied, record) = match item {
            Incoming::Result(Handed { result: r, .. }) => {
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
                    logs: raw(&r.logs),
                    usage: raw(&StepUsage { timeline: StepTimeline::default(), ..r.usage.clone() }),
                    timeline: StepTimeline { applied_us, ..r.usage.timeline },
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
                    logs: raw(&[(); 0]),
                    usage: raw(&StepUsage::default()),
                    timeline: StepTimeline::default(),
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
                    logs: raw(&[(); 0]),
                    usage: raw(&StepUsage::default()),
                    timeline: StepTimeline::default(),
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
    (attempts, applied_keys)
}

/// A value as the JSON text its column takes.
fn raw(value: &impl serde::Serialize) -> Box<serde_json::value::RawValue> {
    // Logs and usage are plain data: serializing them cannot fail.
    serde_json::value::to_raw_value(value).unwrap_or_else(|_| serde_json::value::RawValue::NULL.to_owned())
}

/// What moved machines ask to write, and to do once it is committed.
struct Plan {
    step_updates: Vec<runs::StepUpdate>,
    run_updates: Vec<runs::RunUpdate>,
    completions: Vec<Completion>,
    jobs_now: Vec<jobs::Dispatch>,
    /// a retry is due before the dispatcher's fallback
    wake_dispatcher: bool,
}

/// When the steps a plan makes ready are sent.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Send {
    /// beside the one statement that records them, provisionally
    AheadOfWrite,
    /// once the transaction that records them commits
    AfterCommit,
}

fn plan(core: &Core, machines: &mut HashMap<Uuid, RunMachine>, send: Send) -> Plan {
    let fallback = Utc::now() + chrono::Duration::from_std(core.config.fast_path_grace).unwrap_or_default();
    let mut plan = Plan {
        step_updates: Vec::new(),
        run_updates: Vec::new(),
        completions: Vec::new(),
        jobs_now: Vec::new(),
        wake_dispatcher: false,
    };
    for m in machines.values_mut() {
        let ready = m.take_ready();
        let (s, r) = m.updates(&ready, fallback);
        plan.step_updates.extend(s);
        if let Some(r) = r {
            if r.status.is_final() {
                plan.completions.push(m.completion(r.rendered.clone().unwrap_or_default(), r.result.clone()));
            }
            plan.run_updates.push(r);
        }
        let ctx = RunContext { run_id: m.run.id, input: &m.run.input, acting_user: m.run.acting_user };
        for r in ready.iter().filter(|r| r.not_before.is_none()) {
            let provisional = (send == Send::AheadOfWrite).then(rand::random::<u64>);
            if let Some(job) = jobs::build(core, &m.version, &ctx, &r.step, r.attempt, m.deps_of(&r.step), provisional)
            {
                plan.jobs_now.push(job);
            }
        }
    }
    plan.wake_dispatcher = plan.step_updates.iter().any(|u| u.dispatch_after.is_some_and(|d| d < fallback));
    plan
}

/// The written runs' states, at their new revisions.
fn remembered(machines: HashMap<Uuid, RunMachine>, written: &HashMap<Uuid, i64>) -> Vec<Known> {
    machines
        .into_iter()
        .filter_map(|(id, m)| {
            let rev = *written.get(&id)?;
            let (run, steps) = m.into_state();
            Some(Known { rev, run, steps })
        })
        .collect()
}

/// Puts completions on the stream; `ticket` (see [`crate::publication`]) closes once they
/// are there. Those Redis refuses are kept, with their ticket, and tried again each tick.
pub(crate) async fn publish(core: &Core, completions: Vec<Completion>, ticket: Ticket) {
    if completions.is_empty() {
        return;
    }
    if let Err(e) = crate::completions::publish(core, &completions).await {
        tracing::warn!(error = %e, runs = completions.len(), "publishing completions failed; they are published again at the next tick");
        core.ledger.refused(completions, ticket);
    }
}

pub(crate) async fn cancel(core: &Arc<Core>, id: Uuid) -> Result<bool, WorkflowError> {
    let ticket = core.ledger.open();
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
    runs::write_changes(&mut tx, &[], &steps, &run.into_iter().collect::<Vec<_>>(), Expect::Locked).await?;
    run_waits::delete(&mut tx, &m.take_waits().1).await?;
    approvals::close(&mut tx, &m.take_approvals_ended()).await?;
    tx.commit().await?;
    if let Some(c) = &completion {
        metrics::counter!("crm_runs_finished_total", "workflow" => c.workflow.clone(), "status" => c.status.as_str())
            .increment(1);
    }
    publish(core, completion.into_iter().collect(), ticket).await;
    Ok(true)
}

/// Runs a failed run again from its failed steps (see [`RunMachine::retry`]); false for a
/// run that is not failed.
pub(crate) async fn retry(core: &Arc<Core>, id: Uuid) -> Result<bool, WorkflowError> {
    let ticket = core.ledger.open();
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
    runs::write_changes(&mut tx, &[], &steps, &run.into_iter().collect::<Vec<_>>(), Expect::Locked).await?;
    run_waits::delete(&mut tx, &released).await?;
    run_waits::insert(&mut tx, &holds).await?;
    approvals::close(&mut tx, &m.take_approvals_ended()).await?;
    approvals::open(&mut tx, &holds).await?;
    tx.commit().await?;
    let ctx = RunContext { run_id: m.run.id, input: &m.run.input, acting_user: m.run.acting_user };
    let jobs: Vec<_> = ready
        .iter()
        .filter(|r| r.not_before.is_none())
        .filter_map(|r| jobs::build(core, &m.version, &ctx, &r.step, r.attempt, m.deps_of(&r.step), None))
        .collect();
    crate::dispatch::send_now(core, jobs);
    publish(core, completion.into_iter().collect(), ticket).await;
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
                result: result.map(Arc::new),
                error: error.and_then(|e| serde_json::from_value(e).ok()),
                language: None,
            });
        }
    }
    Ok(out)
}
