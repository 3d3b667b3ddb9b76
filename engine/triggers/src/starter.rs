//! The one thing triggers need from the run scheduler: create a run inside the trigger's
//! own transaction. Claiming a tick, consuming an outbox event or accepting a webhook
//! commits together with the run it starts, so a crash between the two can neither lose a
//! firing nor fire it twice.

use crm_concepts::run::RunRequest;
use futures::future::BoxFuture;
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum StartRunError {
    /// The workflow is not deployed or is disabled: the firing is dropped, not retried.
    #[error("workflow {0:?} is not deployed or is disabled")]
    Unavailable(String),
    /// Anything else (database trouble): the caller rolls back and tries again later.
    #[error("{0}")]
    Failed(String),
}

pub trait RunStarter: Send + Sync + 'static {
    /// Creates the run and its first steps in `conn`'s open transaction. Nothing may leave
    /// the process before that transaction commits.
    fn start_run<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        request: RunRequest,
    ) -> BoxFuture<'a, Result<Uuid, StartRunError>>;

    /// Called after the transaction that started `runs` committed, so the scheduler can
    /// hand their ready steps to the workers at once instead of at its next outbox pass.
    fn committed(&self, runs: &[Uuid]) {
        let _ = runs;
    }
}

/// Starts runs with the store's set-based insert, in the trigger's transaction: the run of
/// the workflow's current version, its steps without dependencies queued. The scheduler's
/// dispatcher sends those steps to Redis after commit (at once when a `committed` hook is
/// given, at its next pass otherwise).
type CommitHook = Box<dyn Fn(&[Uuid]) + Send + Sync>;

pub struct StoreStarter {
    on_commit: Option<CommitHook>,
}

impl StoreStarter {
    pub fn new() -> StoreStarter {
        StoreStarter { on_commit: None }
    }

    /// `hook` runs after each commit that started runs, e.g. to wake the dispatcher.
    pub fn with_commit_hook(hook: impl Fn(&[Uuid]) + Send + Sync + 'static) -> StoreStarter {
        StoreStarter {
            on_commit: Some(Box::new(hook)),
        }
    }
}

impl Default for StoreStarter {
    fn default() -> Self {
        StoreStarter::new()
    }
}

impl RunStarter for StoreStarter {
    fn start_run<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        request: RunRequest,
    ) -> BoxFuture<'a, Result<Uuid, StartRunError>> {
        Box::pin(async move {
            use crm_concepts::manifest::Manifest;
            use crm_store::runs::{Inserted, NewRun, insert_runs};
            use sqlx::Row;

            let failed = |e: &dyn std::fmt::Display| StartRunError::Failed(e.to_string());
            let row = sqlx::query(
                "SELECT w.current_version, v.manifest FROM workflows w
                 JOIN workflow_versions v ON v.workflow = w.name AND v.version = w.current_version
                 WHERE w.name = $1 AND w.enabled",
            )
            .bind(&request.workflow)
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| failed(&e))?
            .ok_or_else(|| StartRunError::Unavailable(request.workflow.clone()))?;
            let version: i32 = row.try_get("current_version").map_err(|e| failed(&e))?;
            let manifest: Manifest =
                serde_json::from_value(row.try_get("manifest").map_err(|e| failed(&e))?)
                    .map_err(|e| failed(&e))?;
            let run = NewRun {
                id: Uuid::now_v7(),
                workflow: request.workflow.clone(),
                version,
                input: request.input,
                acting_user: request.acting_user,
                notify: request.notify,
                idempotency_key: request.idempotency_key,
                trigger: request.trigger.unwrap_or_else(|| "api".into()),
                steps: manifest
                    .steps
                    .iter()
                    .map(|s| (s.id.clone(), s.needs.is_empty()))
                    .collect(),
                dispatch_after: chrono::Utc::now(),
            };
            let inserted = insert_runs(conn, std::slice::from_ref(&run))
                .await
                .map_err(|e| failed(&e))?;
            match inserted.into_iter().next() {
                Some(Inserted::Created) => Ok(run.id),
                // The idempotency key was used before (a firing seen twice): the same run.
                Some(Inserted::Existing { id, .. }) => Ok(id),
                None => Err(StartRunError::Failed(
                    "the run insert returned nothing".into(),
                )),
            }
        })
    }

    fn committed(&self, runs: &[Uuid]) {
        if let Some(hook) = &self.on_commit {
            hook(runs);
        }
    }
}
