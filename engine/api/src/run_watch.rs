//! One watcher for every run event stream of this process. However many clients follow
//! runs, the process looks at Postgres once per tick, with one query over every watched run,
//! and reads a run's steps only when that run moved; each client then gets the same
//! snapshot. A client costs a slot in a map, not a poll.
//!
//! Why a shared look and not LISTEN/NOTIFY from the hot path: a NOTIFY in every apply
//! transaction would put every run — watched or not, on any replica — through Postgres's
//! notify-queue lock at commit, to serve the rare run someone is watching. The shared look
//! costs nothing while nobody watches and one indexed query per tick while anyone does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crm_store::run_history::{self, RunProgress, RunRecord, StepRecord};
use sqlx::PgPool;
use tokio::sync::{Notify, watch};
use uuid::Uuid;

/// How often the watcher looks at the watched runs.
const TICK: Duration = Duration::from_millis(150);

/// What a run's followers see: its steps, and the run itself once it has ended.
#[derive(Debug)]
pub struct RunSnapshot {
    pub steps: Vec<StepRecord>,
    /// set once the run is final
    pub finished: Option<RunRecord>,
}

type Slot = watch::Sender<Option<Arc<RunSnapshot>>>;

/// The runs this process's clients follow.
pub struct RunWatch {
    pool: PgPool,
    runs: Mutex<HashMap<Uuid, Slot>>,
    /// wakes the watcher at once when a run gets its first follower
    wake: Notify,
    started: std::sync::Once,
}

impl RunWatch {
    pub fn new(pool: PgPool) -> Arc<RunWatch> {
        Arc::new(RunWatch { pool, runs: Mutex::default(), wake: Notify::new(), started: std::sync::Once::new() })
    }

    /// Follows run `id`: the receiver sees a snapshot as soon as the watcher has looked, then
    /// every time the run moves.
    pub fn follow(self: &Arc<Self>, id: Uuid) -> watch::Receiver<Option<Arc<RunSnapshot>>> {
        self.started.call_once(|| {
            tokio::spawn(Arc::clone(self).watch());
        });
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        let mut rx = runs.entry(id).or_insert_with(|| watch::Sender::new(None)).subscribe();
        drop(runs);
        // A later follower of a run that is not moving must see what the first one saw.
        rx.mark_changed();
        self.wake.notify_one();
        rx
    }

    /// The number of runs being followed (for tests and metrics).
    pub fn followed(&self) -> usize {
        self.runs.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    async fn watch(self: Arc<Self>) {
        let mut seen: HashMap<Uuid, RunProgress> = HashMap::new();
        loop {
            let ids: Vec<Uuid> = {
                let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
                runs.retain(|_, slot| slot.receiver_count() > 0);
                // A slot without a snapshot is new (perhaps a run followed again after its
                // last follower left): it must get one even if the run has not moved.
                seen.retain(|id, _| runs.get(id).is_some_and(|slot| slot.borrow().is_some()));
                runs.keys().copied().collect()
            };
            if ids.is_empty() {
                self.wake.notified().await;
                continue;
            }
            match run_history::progress(&self.pool, &ids).await {
                Ok(now) => {
                    for progress in now {
                        if seen.get(&progress.id) == Some(&progress) {
                            continue;
                        }
                        match self.snapshot(&progress).await {
                            Ok(snapshot) => {
                                self.publish(progress.id, snapshot);
                                seen.insert(progress.id, progress);
                            }
                            Err(e) => tracing::warn!(run = %progress.id, error = %e, "reading a followed run failed"),
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "looking at followed runs failed; trying again"),
            }
            tokio::select! {
                () = tokio::time::sleep(TICK) => {}
                () = self.wake.notified() => {}
            }
        }
    }

    async fn snapshot(&self, progress: &RunProgress) -> Result<RunSnapshot, crm_store::workflow_error::WorkflowError> {
        let steps = run_history::steps(&self.pool, progress.id).await?;
        let finished =
            if progress.status.is_final() { Some(run_history::get(&self.pool, progress.id).await?) } else { None };
        Ok(RunSnapshot { steps, finished })
    }

    fn publish(&self, id: Uuid, snapshot: RunSnapshot) {
        let runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = runs.get(&id) {
            slot.send_replace(Some(Arc::new(snapshot)));
        }
    }
}
