//! Creating runs. Requests that arrive together share one transaction (a few submitter
//! tasks each take whatever is waiting), which is what lets thousands of runs a second
//! through one Postgres: the commit, not the request, is the unit of cost. After the
//! commit the first steps go straight to Redis; the outbox row stays as the fallback.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::Utc;
use crm_concepts::run::{RunRequest, RunStatus};
use crm_store::runs::{self, Inserted, NewRun};
use crm_store::workflow_error::WorkflowError;
use crm_store::workflows::WorkflowVersion;
use serde::Serialize;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::jobs::{self, RunContext};
use crate::scheduler::Core;

/// The answer to `POST /api/runs`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Accepted {
    pub id: Uuid,
    pub workflow: String,
    pub version: i32,
    pub status: RunStatus,
    /// false when an earlier run with the same idempotency key was returned
    pub created: bool,
}

pub(crate) struct Pending {
    pub request: RunRequest,
    pub reply: oneshot::Sender<Result<Accepted, WorkflowError>>,
}

pub(crate) async fn run_submitter(core: Arc<Core>, rx: Arc<Mutex<mpsc::Receiver<Pending>>>, stop: CancellationToken) {
    loop {
        let mut batch = Vec::new();
        {
            let mut rx = rx.lock().await;
            let first = tokio::select! {
                p = rx.recv() => p,
                _ = stop.cancelled() => None,
            };
            let Some(first) = first else { return };
            batch.push(first);
            while batch.len() < core.config.batch {
                match rx.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
        }
        create_batch(&core, batch).await;
    }
}

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
        && !["api", "bot", "cron", "record_event", "webhook", "cli"].contains(&t.as_str())
    {
        return Err(WorkflowError::validation("trigger", "must be one of api, bot, cron, record_event, webhook, cli"));
    }
    Ok(())
}

async fn create_batch(core: &Arc<Core>, batch: Vec<Pending>) {
    let mut answers: Vec<Option<Result<Accepted, WorkflowError>>> = (0..batch.len()).map(|_| None).collect();
    for (i, p) in batch.iter().enumerate() {
        if let Err(e) = check(&p.request) {
            answers[i] = Some(Err(e));
        }
    }
    match insert(core, &batch, &mut answers).await {
        Ok(sent) => {
            if !sent.is_empty() {
                crate::dispatch::send_now(core, sent).await;
            }
        }
        Err(e) => {
            tracing::error!(error = %e, runs = batch.len(), "inserting runs failed");
            for a in answers.iter_mut().filter(|a| a.is_none()) {
                *a = Some(Err(WorkflowError::Unavailable("the run could not be stored; try again".into())));
            }
        }
    }
    for (p, a) in batch.into_iter().zip(answers) {
        let answer =
            a.unwrap_or_else(|| Err(WorkflowError::Unavailable("the run could not be stored; try again".into())));
        let _ = p.reply.send(answer);
    }
}

/// Inserts the valid requests in one transaction; fills their answers and returns the
/// first steps' jobs to send once committed.
async fn insert(
    core: &Arc<Core>,
    batch: &[Pending],
    answers: &mut [Option<Result<Accepted, WorkflowError>>],
) -> Result<Vec<crm_concepts::step::StepJob>, WorkflowError> {
    let mut names: Vec<&str> = batch.iter().map(|p| p.request.workflow.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let users: Vec<i64> = batch.iter().filter_map(|p| p.request.acting_user).collect();

    // No explicit transaction: the lookup below and the insert (one statement, atomic on
    // its own) are two round trips instead of four. A workflow disabled in between still
    // gets this batch's runs, as if they had come a moment earlier.
    let mut conn = core.pool.acquire().await?;
    let rows: Vec<(String, i32, bool, Vec<i64>)> = sqlx::query_as(
        "SELECT w.name, w.current_version, w.enabled,
                ARRAY(SELECT id FROM users WHERE id = ANY($2) AND disabled_at IS NULL)
         FROM workflows w WHERE w.name = ANY($1)",
    )
    .bind(&names)
    .bind(&users)
    .fetch_all(&mut *conn)
    .await?;
    let known_users: HashSet<i64> = rows.first().map(|r| r.3.iter().copied().collect()).unwrap_or_default();
    let current: HashMap<String, (i32, bool)> = rows.into_iter().map(|(n, v, e, _)| (n, (v, e))).collect();

    let now = Utc::now();
    let dispatch_after = now + chrono::Duration::from_std(core.config.fast_path_grace).unwrap_or_default();
    let mut new_runs = Vec::new();
    let mut index = Vec::new();
    let mut versions: Vec<Arc<WorkflowVersion>> = Vec::new();
    for (i, p) in batch.iter().enumerate() {
        if answers[i].is_some() {
            continue;
        }
        let r = &p.request;
        let Some(&(version, enabled)) = current.get(&r.workflow) else {
            answers[i] = Some(Err(WorkflowError::WorkflowNotFound(r.workflow.clone())));
            continue;
        };
        if !enabled {
            answers[i] = Some(Err(WorkflowError::Disabled(r.workflow.clone())));
            continue;
        }
        if let Some(u) = r.acting_user
            && !known_users.contains(&u)
        {
            answers[i] = Some(Err(WorkflowError::validation("acting_user", format!("no active user with id {u}"))));
            continue;
        }
        let v = core.versions.get(&r.workflow, version).await?;
        new_runs.push(NewRun {
            id: Uuid::now_v7(),
            workflow: r.workflow.clone(),
            version,
            input: r.input.clone(),
            acting_user: r.acting_user,
            notify: r.notify.clone(),
            idempotency_key: r.idempotency_key.clone(),
            trigger: r.trigger.clone().unwrap_or_else(|| "api".into()),
            steps: crate::machine::RunMachine::initial_steps(&v),
            dispatch_after,
        });
        versions.push(v);
        index.push(i);
    }
    let inserted = runs::insert_runs(&mut conn, &new_runs).await?;
    drop(conn);

    let mut jobs = Vec::new();
    for (((run, outcome), i), v) in new_runs.iter().zip(inserted).zip(index).zip(versions) {
        answers[i] = Some(match outcome {
            Inserted::Created => {
                core.metrics.runs_created.fetch_add(1, Ordering::Relaxed);
                let ctx = RunContext { run_id: run.id, input: &run.input, acting_user: run.acting_user };
                for (step, ready) in &run.steps {
                    if *ready && let Some(job) = jobs::build(&v, &ctx, step, 1, Default::default()) {
                        jobs.push(job);
                    }
                }
                Ok(Accepted {
                    id: run.id,
                    workflow: run.workflow.clone(),
                    version: run.version,
                    status: RunStatus::Queued,
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
    Ok(jobs)
}
