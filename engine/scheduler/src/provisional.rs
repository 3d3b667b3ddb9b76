//! Steps sent before the statement that records them has committed. When a result makes a
//! step ready, the engine sends that step's job beside the guarded write that records the
//! result and queues the step, so the job's trip through Redis and a worker overlaps the
//! write instead of following it. Until the write commits, nothing the step does may reach
//! outside its sandbox: the job's ticket says it was sent provisionally, and its host
//! calls, its outbound requests (the worker asks first) and its result wait here for the
//! write's verdict. A write that misses its guard (the run changed elsewhere: a cancel,
//! another engine) or fails voids its provisional attempts: their calls are refused and
//! their results dropped, and the step runs only as the write that does record it sends
//! it again.
//!
//! What is here is this engine's knowledge of its own writes. An engine that does not know
//! a dispatch (it restarted, or another engine sent it) reads the attempt's record from
//! Postgres, again until the dispatch is too old for its statement to be still running
//! ([`past_its_write`]): a host call or a confirmation asks
//! [`crm_store::runs::attempt_recorded`] (`intake::recorded`); a result is checked by the
//! applier under its run's lock, which also waits for a write of the run in flight
//! (`apply::stage_with`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::confirmer::Key;

/// What became of the write that was to record a provisional attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// committed: the attempt may act
    Recorded,
    /// never committed, or this dispatch was superseded: the attempt may do nothing
    Void,
    /// the write is still in flight after the wait allowed
    Undecided,
}

struct Entry {
    dispatch: u64,
    verdict: Option<Verdict>,
    at: Instant,
}

#[derive(Default)]
pub(crate) struct Provisional {
    entries: Mutex<HashMap<Key, Entry>>,
    decided: Notify,
}

/// How long a voided dispatch is remembered: as long as its job could still run (a
/// ticket's lifetime is bounded by the step's timeout and the queue allowance, far less
/// than this in practice for a job sent to an idle worker).
const VOID_KEPT: Duration = Duration::from_secs(6 * 3600);
/// How long a recorded or undecided one is: Postgres answers for it after that.
const RECORDED_KEPT: Duration = Duration::from_secs(60);
/// How long after a provisional dispatch left the statement that was to record it has
/// surely ended, committed or not, whichever engine ran it: far beyond any one statement.
const SETTLED_AFTER_MS: i64 = 30_000;

/// Whether an attempt sent ahead at `sent_at_ms` and not recorded now never will be.
pub(crate) fn past_its_write(sent_at_ms: i64) -> bool {
    chrono::Utc::now().timestamp_millis() - sent_at_ms > SETTLED_AFTER_MS
}

/// Voided dispatches are rare (a guard miss with a successor in flight); past this many
/// the oldest are forgotten rather than grow without bound.
const CAPACITY: usize = 65_536;

impl Provisional {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// These dispatches are about to leave, ahead of the write that records them.
    pub fn begin(&self, dispatches: impl IntoIterator<Item = (Key, u64)>) {
        let now = Instant::now();
        let mut entries = self.lock();
        for (key, dispatch) in dispatches {
            entries.insert(key, Entry { dispatch, verdict: None, at: now });
        }
    }

    /// The write is over: `recorded` says, for each dispatch begun for it, whether it committed.
    pub fn decide<'a>(&self, keys: impl IntoIterator<Item = &'a Key>, recorded: impl Fn(&Key) -> bool) -> u64 {
        let mut voided = 0;
        {
            let mut entries = self.lock();
            for key in keys {
                if let Some(e) = entries.get_mut(key)
                    && e.verdict.is_none()
                {
                    let verdict = if recorded(key) { Verdict::Recorded } else { Verdict::Void };
                    voided += u64::from(verdict == Verdict::Void);
                    e.verdict = Some(verdict);
                }
            }
        }
        self.decided.notify_waiters();
        voided
    }

    /// Results for these attempts were applied: their record is Postgres' to tell now.
    pub fn settled<'a>(&self, keys: impl IntoIterator<Item = &'a Key>) {
        let mut entries = self.lock();
        for key in keys {
            if entries.get(key).is_some_and(|e| e.verdict == Some(Verdict::Recorded)) {
                entries.remove(key);
            }
        }
    }

    /// Forgets what no attempt will ask about any more.
    pub fn prune(&self) {
        self.prune_at(Instant::now());
    }

    fn prune_at(&self, now: Instant) {
        let mut entries = self.lock();
        entries.retain(|_, e| {
            let kept = if e.verdict == Some(Verdict::Void) { VOID_KEPT } else { RECORDED_KEPT };
            now.saturating_duration_since(e.at) < kept
        });
        if entries.len() > CAPACITY {
            let mut ages: Vec<Instant> = entries.values().map(|e| e.at).collect();
            ages.sort_unstable();
            let cut = ages[entries.len() - CAPACITY];
            entries.retain(|_, e| e.at >= cut);
        }
    }

    /// The verdict on `dispatch` of `key`, waiting up to `wait` for a write in flight;
    /// `None` when this engine knows nothing of it.
    pub async fn verdict(&self, key: &Key, dispatch: u64, wait: Duration) -> Option<Verdict> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before looking, so a decision in between is not missed.
            let decided = self.decided.notified();
            tokio::pin!(decided);
            decided.as_mut().enable();
            match self.lock().get(key) {
                None => return None,
                Some(e) if e.dispatch != dispatch => return Some(Verdict::Void),
                Some(Entry { verdict: Some(v), .. }) => return Some(*v),
                Some(_) => {}
            }
            if tokio::time::timeout_at(deadline, decided).await.is_err() {
                return Some(Verdict::Undecided);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use uuid::Uuid;

    fn key(step: &str) -> Key {
        (Uuid::nil(), step.to_string(), 1)
    }

    #[tokio::test]
    async fn a_caller_waits_for_the_write_and_hears_what_became_of_it() {
        let p = Arc::new(Provisional::default());
        p.begin([(key("a"), 7), (key("b"), 8)]);
        let waiting = {
            let p = p.clone();
            tokio::spawn(async move { p.verdict(&key("a"), 7, Duration::from_secs(10)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "the write is in flight");
        let voided = p.decide(&[key("a"), key("b")], |k| k.1 == "a");
        assert_eq!(voided, 1);
        assert_eq!(waiting.await.unwrap(), Some(Verdict::Recorded));
        assert_eq!(p.verdict(&key("b"), 8, Duration::ZERO).await, Some(Verdict::Void));
    }

    #[tokio::test]
    async fn another_dispatch_of_the_attempt_is_void_and_an_unknown_one_is_postgres_to_answer() {
        let p = Provisional::default();
        p.begin([(key("a"), 7)]);
        p.decide(&[key("a")], |_| true);
        assert_eq!(p.verdict(&key("a"), 9, Duration::ZERO).await, Some(Verdict::Void));
        assert_eq!(p.verdict(&key("z"), 7, Duration::ZERO).await, None);
        p.settled(&[key("a")]);
        assert_eq!(p.verdict(&key("a"), 7, Duration::ZERO).await, None);
    }

    #[tokio::test]
    async fn a_write_still_in_flight_after_the_wait_is_undecided() {
        let p = Provisional::default();
        p.begin([(key("a"), 7)]);
        assert_eq!(p.verdict(&key("a"), 7, Duration::from_millis(10)).await, Some(Verdict::Undecided));
    }

    #[test]
    fn a_void_dispatch_outlives_a_recorded_one() {
        let p = Provisional::default();
        p.begin([(key("a"), 1), (key("b"), 2)]);
        p.decide(&[key("a"), key("b")], |k| k.1 == "a");
        p.prune_at(Instant::now() + RECORDED_KEPT);
        let left: Vec<String> = p.lock().keys().map(|k| k.1.clone()).collect();
        assert_eq!(left, vec!["b".to_string()]);
    }
}
