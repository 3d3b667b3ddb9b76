//! Run requests from the API and the bot. Requests that arrive together share one
//! admission: a few submitter tasks take them from a [`Gather`], where the next batch
//! gathers behind the one on its way to Postgres. That is what lets thousands of runs a
//! second through one Postgres: the commit, not the request, is the unit of cost.

use std::sync::Arc;
use std::time::Duration;

use crm_concepts::run::RunRequest;
use crm_store::workflow_error::WorkflowError;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::admission::{Accepted, Admission, Admitted};
use crate::gather::Gather;

/// How long run requests gather behind an admission in flight before they go beside it:
/// far above what an insert takes (about a millisecond), so only a batch stuck on a lock
/// (another transaction inserting the same idempotency key) is gone around.
pub(crate) const PATIENCE: Duration = Duration::from_millis(20);

pub(crate) struct Pending {
    pub request: RunRequest,
    pub reply: oneshot::Sender<Result<Accepted, WorkflowError>>,
}

pub(crate) async fn run_submitter(admission: Admission, door: Arc<Gather<Pending>>, stop: CancellationToken) {
    let max = admission.core.config.batch;
    while let Some(mut batch) = door.next(max, &stop).await {
        create_batch(&admission, std::mem::take(&mut batch.items)).await;
    }
}

async fn create_batch(admission: &Admission, batch: Vec<Pending>) {
    let (requests, replies): (Vec<RunRequest>, Vec<_>) = batch.into_iter().map(|p| (p.request, p.reply)).unzip();
    // No explicit transaction: the insert is one statement, atomic on its own, that checks
    // the facts the runs were built from (read just before, or known from an earlier
    // batch). Usually one round trip, and the first steps leave beside it.
    let mut admitted = Admitted::ahead();
    let answers = match admission.core.pool.acquire().await {
        Ok(mut conn) => admission.admit(&mut conn, &requests, &mut admitted).await,
        Err(e) => Err(e.into()),
    };
    let answers = match answers {
        Ok(answers) => {
            admission.committed(admitted).await;
            answers
        }
        Err(e) => {
            tracing::error!(error = %e, runs = requests.len(), "inserting runs failed");
            (0..requests.len())
                .map(|_| Err(WorkflowError::Unavailable("the run could not be stored; try again".into())))
                .collect()
        }
    };
    for (reply, a) in replies.into_iter().zip(answers) {
        let _ = reply.send(a);
    }
}
