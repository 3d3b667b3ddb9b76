//! Run requests from the API and the bot. Requests that arrive together share one
//! admission (a few submitter tasks each take whatever is waiting), which is what lets
//! thousands of runs a second through one Postgres: the commit, not the request, is the
//! unit of cost.

use std::sync::Arc;

use crm_concepts::run::RunRequest;
use crm_store::workflow_error::WorkflowError;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::admission::{Accepted, Admission, Admitted};

pub(crate) struct Pending {
    pub request: RunRequest,
    pub reply: oneshot::Sender<Result<Accepted, WorkflowError>>,
}

pub(crate) async fn run_submitter(
    admission: Admission,
    rx: Arc<Mutex<mpsc::Receiver<Pending>>>,
    stop: CancellationToken,
) {
    let max = admission.core.config.batch;
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
            while batch.len() < max {
                match rx.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
        }
        create_batch(&admission, batch).await;
    }
}

async fn create_batch(admission: &Admission, batch: Vec<Pending>) {
    let (requests, replies): (Vec<RunRequest>, Vec<_>) = batch.into_iter().map(|p| (p.request, p.reply)).unzip();
    let mut admitted = Admitted::default();
    // No explicit transaction: the insert is one statement, atomic on its own, that checks
    // the facts the runs were built from (read just before, or known from an earlier
    // batch). Usually one round trip.
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
