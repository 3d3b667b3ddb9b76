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

    /// Starts several runs in `conn`'s open transaction; the results match `requests` one
    /// to one. The default starts them one by one; a starter that can insert a batch at
    /// once overrides it (the record-event consumer starts a batch per pass).
    fn start_runs<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        requests: Vec<RunRequest>,
    ) -> BoxFuture<'a, Vec<Result<Uuid, StartRunError>>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(requests.len());
            for r in requests {
                out.push(self.start_run(conn, r).await);
            }
            out
        })
    }

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
        StoreStarter { on_commit: Some(Box::new(hook)) }
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
            self.start_runs(conn, vec![request])
                .await
                .into_iter()
                .next()
                .unwrap_or_else(|| Err(StartRunError::Failed("the run insert returned nothing".into())))
        })
    }

    /// One query for the current versions of the workflows named, one set-based insert for
    /// all the runs and their steps.
    fn start_runs<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        requests: Vec<RunRequest>,
    ) -> BoxFuture<'a, Vec<Result<Uuid, StartRunError>>> {
        Box::pin(async move {
            match insert_batch(conn, requests).await {
                Ok(results) => results,
                Err((n, e)) => (0..n).map(|_| Err(StartRunError::Failed(e.clone()))).collect(),
            }
        })
    }

    fn committed(&self, runs: &[Uuid]) {
        if let Some(hook) = &self.on_commit {
            hook(runs);
        }
    }
}

/// The runs of `requests` inserted at once. An error of the whole batch comes back as the
/// number of requests and the message; per-request outcomes come back in order.
async fn insert_batch(
    conn: &mut PgConnection,
    requests: Vec<RunRequest>,
) -> Result<Vec<Result<Uuid, StartRunError>>, (usize, String)> {
    use std::collections::HashMap;

    use crm_concepts::manifest::Manifest;
    use crm_store::runs::{Inserted, NewRun, insert_runs};
    use sqlx::Row;

    let n = requests.len();
    let fail = |e: &dyn std::fmt::Display| (n, e.to_string());
    let mut names: Vec<&str> = requests.iter().map(|r| r.workflow.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let rows = sqlx::query(
        "SELECT w.name, w.current_version, v.manifest FROM workflows w
         JOIN workflow_versions v ON v.workflow = w.name AND v.version = w.current_version
         WHERE w.name = ANY($1) AND w.enabled",
    )
    .bind(&names)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| fail(&e))?;
    // workflow -> (version, its steps with "ready at start")
    let mut versions: HashMap<String, (i32, Vec<(String, bool)>)> = HashMap::new();
    for row in rows {
        let name: String = row.try_get("name").map_err(|e| fail(&e))?;
        let version: i32 = row.try_get("current_version").map_err(|e| fail(&e))?;
        let manifest: Manifest =
            serde_json::from_value(row.try_get("manifest").map_err(|e| fail(&e))?).map_err(|e| fail(&e))?;
        let steps = manifest.steps.iter().map(|s| (s.id.clone(), s.needs.is_empty())).collect();
        versions.insert(name, (version, steps));
    }

    let now = chrono::Utc::now();
    let mut runs = Vec::with_capacity(n);
    // for each request: Some(index into runs) or None when its workflow is unavailable
    let mut slots = Vec::with_capacity(n);
    for request in requests {
        match versions.get(&request.workflow) {
            None => slots.push(Err(request.workflow)),
            Some((version, steps)) => {
                slots.push(Ok(runs.len()));
                runs.push(NewRun {
                    id: Uuid::now_v7(),
                    workflow: request.workflow,
                    version: *version,
                    input: request.input,
                    acting_user: request.acting_user,
                    notify: request.notify,
                    idempotency_key: request.idempotency_key,
                    trigger: request.trigger.unwrap_or_else(|| "api".into()),
                    steps: steps.clone(),
                    dispatch_after: now,
                });
            }
        }
    }
    let inserted = insert_runs(conn, &runs).await.map_err(|e| fail(&e))?;
    if inserted.len() != runs.len() {
        return Err(fail(&"the run insert returned a different number of rows"));
    }
    Ok(slots
        .into_iter()
        .map(|slot| match slot {
            Err(workflow) => Err(StartRunError::Unavailable(workflow)),
            Ok(i) => match &inserted[i] {
                Inserted::Created => Ok(runs[i].id),
                // The idempotency key was used before (a firing seen twice): the same run.
                Inserted::Existing { id, .. } => Ok(*id),
            },
        })
        .collect())
}
