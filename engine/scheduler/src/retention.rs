//! The pruner: every `every`, deletes expired finished runs and settled notifications
//! (see `crm_store::retention`) in small batches with a pause between them, on a connection
//! of the pool and never inside the scheduler's own transactions, until a batch comes back
//! short. Every replica may run one: rows another holds are skipped.

use std::time::Duration;

use crm_store::retention::{self, RetentionPolicy};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// Between two batches: the hot path gets the database back in between.
const PAUSE: Duration = Duration::from_millis(200);

/// Runs until `stop` is cancelled: a pass at once, then one every `every`.
pub fn spawn(
    pool: PgPool,
    policy: RetentionPolicy,
    every: Duration,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let runs = drain(&stop, "runs", || retention::prune_runs(&pool, &policy), policy.batch).await;
            let notes =
                drain(&stop, "notifications", || retention::prune_notifications(&pool, &policy), policy.batch).await;
            if runs + notes > 0 {
                tracing::info!(runs, notifications = notes, "pruned what outlived its retention");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    })
}

async fn drain<F, Fut>(stop: &CancellationToken, what: &'static str, batch: F, size: i64) -> u64
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<u64, sqlx::Error>>,
{
    let mut total = 0;
    loop {
        if stop.is_cancelled() {
            return total;
        }
        match batch().await {
            Ok(n) => {
                total += n;
                metrics::counter!("crm_pruned_total", "what" => what).increment(n);
                if i64::try_from(n).unwrap_or(i64::MAX) < size {
                    return total;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, what, "pruning failed; trying again at the next pass");
                return total;
            }
        }
        tokio::select! {
            () = stop.cancelled() => return total,
            () = tokio::time::sleep(PAUSE) => {}
        }
    }
}
