//! Admitting runs: the one path by which any run comes to exist, whether the API, the bot,
//! a cron tick, a record event or a webhook asked for it. The same checks (input, acting
//! user, trigger, idempotency key, the workflow's current version and whether it is
//! enabled), the same first steps (`RunMachine::initial`), the same fast path: the
//! ready steps go to Redis right after the caller's commit, and the outbox row with its
//! grace period is the fallback. Runs requested through the API and the bot without an
//! idempotency key are inserted with no transaction around the insert, and their first
//! steps go beside it, provisionally (see `crate::provisional`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::Utc;
use crm_concepts::run::{RunRequest, RunStatus, StepStatus};
use crm_store::runs::{self, Inserted, NewRun, RunState, StepState};
use crm_store::workflow_error::WorkflowError;
use crm_store::workflows::{self, WorkflowVersion};
use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::apply::{Incoming, Staged};
use crate::core::Core;
use crate::hold::Wake;
use crate::jobs::{self, Dispatch, RunContext};
use crate::known_facts::Facts;
use crate::known_runs::Known;
use crate::machine::RunMachine;

/// The answer to a run request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Accepted {
    pub id: Uuid,
    pub workflow: String,
    pub version: i32,
    pub status: RunStatus,
    /// false when an earlier run with the same idempotency key was returned
    pub created: bool,
}

/// Runs admitted in a transaction that has not committed yet: their first steps leave for
/// the workers in [`Admission::committed`], never before (but see [`Admitted::ahead`]).
#[derive(Default)]
pub struct Admitted {
    /// set by a caller whose connection has no transaction open, so the insert commits
    /// as it returns: the first steps then leave beside it, provisionally (see
    /// `crate::provisional`), and are confirmed or voided by its outcome
    ahead: bool,
    jobs: Vec<Dispatch>,
    /// the new runs as inserted, for their first results to start from
    known: Vec<Known>,
    /// waits ended in the same transaction ([`Admission::wake`])
    woken: Option<Staged>,
}

impl Admitted {
    /// For runs admitted on a connection with no transaction open: see the field.
    pub(crate) fn ahead() -> Admitted {
        Admitted { ahead: true, ..Admitted::default() }
    }

    /// Whether `run`'s first steps leave beside its insert. A run with an idempotency key
    /// may turn out to exist already, and its steps wait for the insert to say.
    fn sends_ahead(&self, run: &NewRun) -> bool {
        self.ahead && run.idempotency_key.is_none()
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty() && self.woken.is_none()
    }

    /// Adds the runs another admission in the same transaction started.
    pub fn extend(&mut self, other: Admitted) {
        self.jobs.extend(other.jobs);
        self.known.extend(other.known);
        if let Some(w) = other.woken {
            self.woken.get_or_insert_with(Staged::default).extend(w);
        }
    }
}

/// The scheduler's door for new runs; cheap to clone.
#[derive(Clone)]
pub struct Admission {
    pub(crate) core: Arc<Core>,
}

pub const TRIGGERS: [&str; 6] = ["api", "bot", "cron", "record_event", "webhook", "cli"];

fn check(request: &RunRequest) -> Result<(), WorkflowError> {
    if !request.input.is_object() {
        return Err(WorkflowError::validation("input", "must be a JSON object"));
    }
    if let Some(k) = &request.idempotency_key
        && (k.is_empty() || k.len() > 200)
    {
        return Err(WorkflowError::validation("idempotency_key", "must be 1 to 200 characters"));
    }
    if let Some(t) = &request.trigger
        && !TRIGGERS.contains(&t.as_str())
    {
        return Err(WorkflowError::validation("trigger", format!("must be one of {}", TRIGGERS.join(", "))));
    }
    Ok(())
}

/// How many times a run is built before it is answered "try again": once from the facts
/// at hand, then again from facts read afresh each time they changed under it (a deploy or
/// a disable racing the admission).
const PASSES: usize = 3;

impl Admission {
    /// Admits `requests` in `conn`'s open transaction (or as one atomic statement when the
    /// connection has none): the answers match the requests one to one. `Err` is a failure
    /// of the whole batch (the database), after which the caller rolls back.
    ///
    /// The facts a run is built from (the workflow's current version, whether it is
    /// enabled, whether its acting user is active) come from this engine's memory when it
    /// has them all, else from Postgres; the insert checks them again, and runs whose facts
    /// changed are built again from a fresh read.
    pub async fn admit(
        &self,
        conn: &mut PgConnection,
        requests: &[RunRequest],
        admitted: &mut Admitted,
    ) -> Result<Vec<Result<Accepted, WorkflowError>>, WorkflowError> {
        let core = &self.core;
        let mut answers: Vec<Option<Result<Accepted, WorkflowError>>> =
            requests.iter().map(|r| check(r).err().map(Err)).collect();
        let mut pending: Vec<usize> = (0..requests.len()).filter(|&i| answers[i].is_none()).collect();
        for pass in 1..=PASSES {
            if pending.is_empty() {
                break;
            }
            let mut names: Vec<&str> = pending.iter().map(|&i| requests[i].workflow.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            let users: Vec<i64> = pending.iter().filter_map(|&i| requests[i].acting_user).collect();
            let known = if pass == 1 { core.known_facts.lookup(&names, &users) } else { None };
            let facts = match known {
                Some(facts) => facts,
                None => {
                    core.metrics.admission_fact_reads.fetch_add(1, Ordering::Relaxed);
                    let (current, active_users) = workflows::admission_facts(conn, &names, &users).await?;
                    let facts = Facts { current, active_users };
                    core.known_facts.remember(&facts);
                    facts
                }
            };
            let stale = self.admit_with(conn, requests, &pending, &facts, &mut answers, admitted).await?;
            core.metrics.admissions_stale.fetch_add(stale.len() as u64, Ordering::Relaxed);
            for &i in &stale {
                core.known_facts.forget(&requests[i].workflow, requests[i].acting_user);
                if pass == PASSES {
                    answers[i] = Some(Err(WorkflowError::Unavailable(format!(
                        "workflow {:?} changed while the run was admitted; try again",
                        requests[i].workflow
                    ))));
                }
            }
            pending = stale;
        }
        Ok(answers
            .into_iter()
            .map(|a| {
                a.unwrap_or_else(|| Err(WorkflowError::Unavailable("the run could not be stored; try again".into())))
            })
            .collect())
    }

    /// Builds and inserts the runs of `requests[pending]` from `facts`, answering each in
    /// `answers`, except those whose facts no longer held at the insert: those are returned.
    async fn admit_with(
        &self,
        conn: &mut PgConnection,
        requests: &[RunRequest],
        pending: &[usize],
        facts: &Facts,
        answers: &mut [Option<Result<Accepted, WorkflowError>>],
        admitted: &mut Admitted,
    ) -> Result<Vec<usize>, WorkflowError> {
        let core = &self.core;
        let dispatch_after = Utc::now() + chrono::Duration::from_std(core.config.fast_path_grace).unwrap_or_default();
        let mut new_runs = Vec::new();
        let mut index = Vec::new();
        let mut versions: Vec<Arc<WorkflowVersion>> = Vec::new();
        for &i in pending {
            let r = &requests[i];
            let Some(&(version, enabled)) = facts.current.get(&r.workflow) else {
                answers[i] = Some(Err(WorkflowError::WorkflowNotFound(r.workflow.clone())));
                continue;
            };
            if !enabled {
                answers[i] = Some(Err(WorkflowError::Disabled(r.workflow.clone())));
                continue;
            }
            if let Some(u) = r.acting_user
                && !facts.active_users.contains(&u)
            {
                answers[i] = Some(Err(WorkflowError::validation("acting_user", format!("no active user with id {u}"))));
                continue;
            }
            let v = core.versions.get(&r.workflow, version).await?;
            let id = Uuid::now_v7();
            let initial = match RunMachine::initial(&v, id, &r.input, core.clock.now()) {
                Ok(i) => i,
                Err((step, message)) => {
                    answers[i] = Some(Err(WorkflowError::validation("input", format!("step {step:?}: {message}"))));
                    continue;
                }
            };
            new_runs.push(NewRun {
                id,
                workflow: r.workflow.clone(),
                version,
                input: r.input.clone(),
                acting_user: r.acting_user,
                notify: r.notify.clone(),
                idempotency_key: r.idempotency_key.clone(),
                trigger: r.trigger.clone().unwrap_or_else(|| "api".into()),
                steps: initial.steps,
                status: initial.status,
                waits: initial.waits,
                dispatch_after,
            });
            versions.push(v);
            index.push(i);
        }
        // Sent ahead, a run's first steps reach a worker while the insert commits; nothing
        // they do outside their sandbox happens before it has.
        let ahead: Vec<Dispatch> = new_runs
            .iter()
            .zip(&versions)
            .filter(|(run, _)| admitted.sends_ahead(run))
            .flat_map(|(run, v)| first_jobs(core, v, run, true))
            .collect();
        let ahead = crate::dispatch::send_ahead(core, ahead);
        let inserted = match runs::insert_runs(conn, &new_runs).await {
            Ok(inserted) => inserted,
            Err(e) => {
                crate::dispatch::decide_ahead(core, &ahead, |_| false);
                return Err(e);
            }
        };
        for (run, outcome) in new_runs.iter().zip(&inserted) {
            if matches!(outcome, Inserted::Created) {
                crm_store::approvals::open(conn, &run.waits).await?;
            }
        }

        let mut stale = Vec::new();
        for (((run, outcome), i), v) in new_runs.iter().zip(inserted).zip(index).zip(versions) {
            answers[i] = Some(match outcome {
                Inserted::Stale => {
                    stale.push(i);
                    continue;
                }
                Inserted::Created => {
                    core.metrics.runs_created.fetch_add(1, Ordering::Relaxed);
                    crm_traces::started_run(run.id, &run.workflow, &run.trigger);
                    if !admitted.sends_ahead(run) {
                        admitted.jobs.extend(first_jobs(core, &v, run, false));
                    }
                    admitted.known.push(inserted_state(run));
                    Ok(Accepted {
                        id: run.id,
                        workflow: run.workflow.clone(),
                        version: run.version,
                        status: run.status,
                        created: true,
                    })
                }
                Inserted::Existing { same_input: false, .. } => Err(WorkflowError::Conflict(format!(
                    "idempotency key {:?} was already used for workflow {:?} with a different input",
                    run.idempotency_key.as_deref().unwrap_or_default(),
                    run.workflow
                ))),
                Inserted::Existing { id, status, same_input: true } => {
                    Ok(Accepted { id, workflow: run.workflow.clone(), version: run.version, status, created: false })
                }
            });
        }
        if admitted.ahead {
            // The insert has committed. The runs are remembered before their first steps
            // may act, so those steps' results find them (and skip the locking path).
            let created: std::collections::HashSet<Uuid> = admitted.known.iter().map(|k| k.run.id).collect();
            core.known.remember(std::mem::take(&mut admitted.known));
            crate::dispatch::decide_ahead(core, &ahead, |k| created.contains(&k.0));
        }
        Ok(stale)
    }

    /// Ends `wait_event` steps in `conn`'s open transaction: each `(run, step, event)` is a
    /// held step and the record change (as a record-event trigger's input) that ends its
    /// wait. A step no longer held (it timed out, the run was cancelled) is left alone; the
    /// first of several events for one step wins. What follows leaves in
    /// [`Admission::committed`].
    pub async fn wake(
        &self,
        conn: &mut PgConnection,
        wakes: Vec<(Uuid, String, serde_json::Value)>,
        admitted: &mut Admitted,
    ) -> Result<(), WorkflowError> {
        if wakes.is_empty() {
            return Ok(());
        }
        let incoming =
            wakes.into_iter().map(|(run_id, step, event)| Incoming::Woken { run_id, step, wake: Wake::Event(event) });
        let staged = crate::apply::stage(&self.core, conn, incoming.collect()).await?;
        admitted.woken.get_or_insert_with(Staged::default).extend(staged);
        Ok(())
    }

    /// The transaction that admitted these runs committed: send their first steps now.
    pub async fn committed(&self, admitted: Admitted) {
        self.core.known.remember(admitted.known);
        crate::dispatch::send_now(&self.core, admitted.jobs);
        if let Some(woken) = admitted.woken {
            woken.after_commit(&self.core).await;
        }
    }
}

/// The jobs of a new run's first steps, `provisional` when they leave ahead of its insert.
fn first_jobs(core: &Core, v: &WorkflowVersion, run: &NewRun, provisional: bool) -> Vec<Dispatch> {
    let ctx = RunContext { run_id: run.id, input: &run.input, acting_user: run.acting_user };
    run.steps
        .iter()
        .filter(|(_, status)| *status == StepStatus::Queued)
        .filter_map(|(step, _)| {
            jobs::build(core, v, &ctx, step, 1, Default::default(), provisional.then(rand::random::<u64>))
        })
        .collect()
}

/// A run as [`runs::insert_runs`] writes it: revision 0, steps at attempt 1 unless they
/// wait for others.
fn inserted_state(run: &NewRun) -> Known {
    Known {
        rev: 0,
        run: RunState {
            id: run.id,
            workflow: run.workflow.clone(),
            version: run.version,
            status: run.status,
            input: run.input.clone(),
            acting_user: run.acting_user,
            notify: run.notify.clone(),
            error: None,
        },
        steps: run
            .steps
            .iter()
            .map(|(step, status)| StepState {
                run_id: run.id,
                step: step.clone(),
                status: *status,
                attempt: runs::first_attempt(*status),
                output: None,
                next: None,
            })
            .collect(),
    }
}
