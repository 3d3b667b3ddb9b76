//! The states of unfinished runs as this engine last wrote them, with their revisions
//! (`runs.rev`). A result for a run found here is applied without locking and re-reading
//! it: the machine starts from the remembered state and the write is guarded by the
//! revision (`crm_store::runs::Expect::Revisions`), so a run changed anywhere else since
//! (another engine, a cancel, a wake) fails the guard and takes the locking path. What is
//! here is therefore only ever a shortcut, never the truth: forgetting any of it costs a
//! round trip or two, nothing else.

use std::collections::HashMap;
use std::sync::Mutex;

use crm_concepts::run::RunStatus;
use crm_store::runs::{RunState, StepState};
use uuid::Uuid;

/// A run as of one revision.
#[derive(Debug, Clone)]
pub(crate) struct Known {
    pub rev: i64,
    pub run: RunState,
    pub steps: Vec<StepState>,
}

pub(crate) struct KnownRuns {
    runs: Mutex<HashMap<Uuid, Known>>,
    capacity: usize,
}

impl Default for KnownRuns {
    fn default() -> Self {
        // Far more than the runs in flight at full throughput (about a thousand in
        // `crm bench runs`); runs whose results never come back are what fills it, and it
        // then starts over.
        KnownRuns { runs: Mutex::default(), capacity: 16_384 }
    }
}

impl KnownRuns {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Known>> {
        self.runs.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes the run out while a result is applied to it: a second result for the same run
    /// meanwhile finds nothing and takes the locking path rather than a state about to
    /// go stale.
    pub fn take(&self, id: &Uuid) -> Option<Known> {
        self.lock().remove(id)
    }

    /// Remembers runs as a commit left them. A finished run is forgotten, as no result
    /// moves it any more, and so is a waiting one: nothing of it is in flight, and what
    /// ends its wait (the waker, an event, a decision) takes the run's lock anyway.
    pub fn remember(&self, runs: impl IntoIterator<Item = Known>) {
        let mut known = self.lock();
        for k in runs {
            if k.run.status.is_final() || k.run.status == RunStatus::Waiting {
                known.remove(&k.run.id);
                continue;
            }
            if known.len() >= self.capacity {
                known.clear();
            }
            known.insert(k.run.id, k);
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(status: RunStatus) -> Known {
        Known {
            rev: 0,
            run: RunState {
                id: Uuid::now_v7(),
                workflow: "w".into(),
                version: 1,
                status,
                input: serde_json::json!({}),
                acting_user: None,
                notify: None,
                error: None,
            },
            steps: Vec::new(),
        }
    }

    #[test]
    fn a_taken_run_is_gone_until_remembered_again() {
        let runs = KnownRuns::default();
        let k = known(RunStatus::Running);
        let id = k.run.id;
        runs.remember([k]);
        assert!(runs.take(&id).is_some());
        assert!(runs.take(&id).is_none());
    }

    #[test]
    fn a_finished_or_waiting_run_is_forgotten() {
        for status in [RunStatus::Succeeded, RunStatus::Waiting] {
            let runs = KnownRuns::default();
            let mut k = known(RunStatus::Running);
            let id = k.run.id;
            runs.remember([k.clone()]);
            k.run.status = status;
            runs.remember([k]);
            assert!(runs.take(&id).is_none(), "{status:?}");
        }
    }

    #[test]
    fn a_full_memory_starts_over_rather_than_grow() {
        let runs = KnownRuns { runs: Mutex::default(), capacity: 3 };
        runs.remember((0..3).map(|_| known(RunStatus::Running)));
        assert_eq!(runs.len(), 3);
        runs.remember([known(RunStatus::Running)]);
        assert_eq!(runs.len(), 1);
    }
}
