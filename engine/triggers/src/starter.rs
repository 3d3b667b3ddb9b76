//! The one thing triggers need from the run scheduler: admit a run inside the trigger's
//! own transaction. Claiming a tick, consuming an outbox event or accepting a webhook
//! commits together with the run it starts, so a crash between the two can neither lose a
//! firing nor fire it twice. Runs come in through the scheduler's [`Admission`], the same
//! door as the API's: the same checks, the same first steps, the same fast path.

use crm_concepts::run::RunRequest;
use crm_scheduler::{Admission, Admitted};
use crm_store::workflow_error::WorkflowError;
use futures::future::BoxFuture;
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum StartRunError {
    /// The run can never start (the workflow is not deployed or is disabled, the acting
    /// user is gone): the firing is dropped, not retried.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else (database trouble): the caller rolls back and tries again later.
    #[error("{0}")]
    Failed(String),
}

impl From<WorkflowError> for StartRunError {
    fn from(e: WorkflowError) -> StartRunError {
        match e {
            WorkflowError::Db(_) | WorkflowError::Unavailable(_) => StartRunError::Failed(e.to_string()),
            other => StartRunError::Unavailable(other.to_string()),
        }
    }
}

pub trait RunStarter: Send + Sync + 'static {
    /// Creates the runs in `conn`'s open transaction; the answers match `requests` one to
    /// one. Nothing leaves the process before the transaction commits: the caller passes
    /// the returned [`Admitted`] to [`RunStarter::committed`] after it does.
    fn start_runs<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        requests: Vec<RunRequest>,
    ) -> BoxFuture<'a, (Vec<Result<Uuid, StartRunError>>, Admitted)>;

    fn start_run<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        request: RunRequest,
    ) -> BoxFuture<'a, (Result<Uuid, StartRunError>, Admitted)> {
        Box::pin(async move {
            let (mut results, admitted) = self.start_runs(conn, vec![request]).await;
            let result =
                results.pop().unwrap_or_else(|| Err(StartRunError::Failed("the run insert returned nothing".into())));
            (result, admitted)
        })
    }

    /// Ends `wait_event` steps (`(run, step, event input)`) in `conn`'s open transaction;
    /// what follows leaves with [`RunStarter::committed`].
    fn wake_waits<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        wakes: Vec<(Uuid, String, serde_json::Value)>,
        admitted: &'a mut Admitted,
    ) -> BoxFuture<'a, Result<(), WorkflowError>>;

    /// The transaction that started these runs committed: hand their first steps over.
    fn committed(&self, admitted: Admitted) -> BoxFuture<'_, ()>;
}

impl RunStarter for Admission {
    fn start_runs<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        requests: Vec<RunRequest>,
    ) -> BoxFuture<'a, (Vec<Result<Uuid, StartRunError>>, Admitted)> {
        Box::pin(async move {
            let mut admitted = Admitted::default();
            let answers = match self.admit(conn, &requests, &mut admitted).await {
                // An idempotency key seen before (a firing seen twice) answers with the same run.
                Ok(answers) => answers.into_iter().map(|a| a.map(|a| a.id).map_err(StartRunError::from)).collect(),
                Err(e) => {
                    let message = e.to_string();
                    requests.iter().map(|_| Err(StartRunError::Failed(message.clone()))).collect()
                }
            };
            (answers, admitted)
        })
    }

    fn wake_waits<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        wakes: Vec<(Uuid, String, serde_json::Value)>,
        admitted: &'a mut Admitted,
    ) -> BoxFuture<'a, Result<(), WorkflowError>> {
        Box::pin(self.wake(conn, wakes, admitted))
    }

    fn committed(&self, admitted: Admitted) -> BoxFuture<'_, ()> {
        Box::pin(Admission::committed(self, admitted))
    }
}
