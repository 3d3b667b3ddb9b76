//! How far this engine has published what it finished, kept where every engine can read it
//! (`crm_store::engine_marks`).
//!
//! A run's end is committed first and its completion put on the Redis stream after, so an
//! engine that dies in between leaves a completion no listener will see. Each piece of
//! work that may finish runs holds a [`Ticket`] from before its statements until its
//! completions are on the stream (or kept to be published again, when Redis refused them).
//! Once a tick (`reconcile_every`), the engine notes Postgres' time and the tickets handed
//! out by then; once every one of those is closed, every run it finished before that time
//! is on the stream, and the time becomes its mark. A run's end takes its statement's start, later than any
//! ticket its work holds, so no run finishes behind a mark that does not cover it.
//!
//! An engine holds an advisory lock for as long as its session lives. A row whose lock is
//! free is a dead engine's: the first engine to see it publishes again the runs finished
//! after its mark, then removes it. A clean stop removes the engine's own row, so starting
//! engines read nothing back; until this, every engine read back two minutes of finished
//! runs and the whole completions stream of that time at its start.

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use crm_concepts::run::Completion;
use crm_store::engine_marks;
use crm_store::workflow_error::WorkflowError;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::core::Core;

/// The times noted and not yet reached: one a tick, so this is ten minutes of a ticket
/// that does not close (Redis refusing completions). Past it, new times wait their turn.
const MAX_NOTED: usize = 600;

/// The open tickets, the noted times and the completions Redis refused.
#[derive(Default)]
pub(crate) struct Ledger {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    next: AtomicU64,
    open: Mutex<BTreeSet<u64>>,
    /// Postgres' times, each with the first ticket number not handed out when it was read
    noted: Mutex<VecDeque<(DateTime<Utc>, u64)>>,
    /// completions whose publishing failed, held with their tickets until it succeeds
    refused: Mutex<Vec<(Vec<Completion>, Ticket)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Held by work that may finish runs, from before its statements until its completions
/// are on the stream. Dropping it closes it.
pub(crate) struct Ticket {
    number: u64,
    inner: Arc<Inner>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        lock(&self.inner.open).remove(&self.number);
    }
}

impl Ticket {
    /// Of two tickets held for one piece of work, the one that opened first covers both.
    pub(crate) fn earlier(a: Ticket, b: Ticket) -> Ticket {
        if a.number <= b.number { a } else { b }
    }
}

impl Ledger {
    pub(crate) fn open(&self) -> Ticket {
        let mut open = lock(&self.inner.open);
        // numbered under the lock, so a ticket is in the set by the time its number is taken
        let number = self.inner.next.fetch_add(1, Ordering::SeqCst);
        open.insert(number);
        Ticket { number, inner: self.inner.clone() }
    }

    /// Notes Postgres' time `at`, read before this call: every ticket opened before then
    /// has a number below the next one.
    pub(crate) fn note(&self, at: DateTime<Utc>) {
        let bound = {
            let _open = lock(&self.inner.open);
            self.inner.next.load(Ordering::SeqCst)
        };
        let mut noted = lock(&self.inner.noted);
        if noted.len() < MAX_NOTED {
            noted.push_back((at, bound));
        }
    }

    /// The newest noted time by which every ticket open then has closed: every run this
    /// engine finished before it has its completion on the stream.
    pub(crate) fn published_through(&self) -> Option<DateTime<Utc>> {
        let lowest_open = lock(&self.inner.open).first().copied();
        let mut noted = lock(&self.inner.noted);
        let mut reached = None;
        while let Some(&(at, bound)) = noted.front() {
            if lowest_open.is_some_and(|n| n < bound) {
                break;
            }
            reached = Some(at);
            noted.pop_front();
        }
        reached
    }

    /// Redis refused these completions: they are published again at the next tick, and the
    /// mark waits for them.
    pub(crate) fn refused(&self, completions: Vec<Completion>, ticket: Ticket) {
        lock(&self.inner.refused).push((completions, ticket));
    }

    fn take_refused(&self) -> Vec<(Vec<Completion>, Ticket)> {
        std::mem::take(&mut *lock(&self.inner.refused))
    }

    /// Nothing finished is waiting to be published.
    pub(crate) fn settled(&self) -> bool {
        lock(&self.inner.open).is_empty() && lock(&self.inner.refused).is_empty()
    }
}

/// This engine's row and the connection whose session holds its lock.
pub(crate) struct Mark {
    engine: Uuid,
    conn: Option<PgConnection>,
    /// the furthest mark reached, written with the row when it is written again
    reached: Option<DateTime<Utc>>,
}

impl Mark {
    /// Takes the engine's lock and writes its row. Before anything it finishes.
    pub(crate) async fn register(pool: &PgPool) -> Result<Mark, WorkflowError> {
        let mut mark = Mark { engine: Uuid::new_v4(), conn: None, reached: None };
        mark.session(pool).await?;
        Ok(mark)
    }

    /// The connection holding the engine's lock; after one was lost, a new one that takes
    /// the lock again and writes the row back with the mark reached.
    async fn session(&mut self, pool: &PgPool) -> Result<&mut PgConnection, WorkflowError> {
        if self.conn.is_none() {
            let mut conn = pool.acquire().await?.detach();
            engine_marks::register(&mut conn, self.engine, self.reached).await?;
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("opened above"))
    }
}

/// How long one tick may take, a take-over's publishing included, before its connection
/// is given up for a new one: a session that stopped answering must not hold the mark.
const TICK_TIMEOUT: Duration = Duration::from_secs(60);

/// Keeps the mark, once every `reconcile_every`, in a task of its own: its connection
/// stalling holds up no other recovery.
pub(crate) async fn run(core: Arc<Core>, stop: CancellationToken) {
    loop {
        if let Err(e) = keep(&core).await {
            tracing::warn!(error = %e, "keeping the engine's publication mark failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(core.config.reconcile_every) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// One tick: publishes what Redis refused before, moves the mark, and publishes again what
/// dead engines may have left unpublished.
async fn keep(core: &Arc<Core>) -> Result<(), WorkflowError> {
    for (completions, ticket) in core.ledger.take_refused() {
        crate::apply::publish(core, completions, ticket).await;
    }
    let mut mark = core.mark.lock().await;
    let result = match tokio::time::timeout(TICK_TIMEOUT, tick(core, &mut mark)).await {
        Ok(r) => r,
        Err(_) => Err(WorkflowError::Unavailable(format!("no answer within {TICK_TIMEOUT:?}"))),
    };
    if result.is_err() {
        // Its session (and lock) may be gone: a new one takes the lock again next tick.
        // Dropping this one ends its session, and with it any lock it held.
        mark.conn = None;
    }
    result
}

async fn tick(core: &Arc<Core>, mark: &mut Mark) -> Result<(), WorkflowError> {
    let through = core.ledger.published_through();
    mark.reached = mark.reached.max(through);
    let (engine, reached) = (mark.engine, mark.reached);
    let conn = mark.session(&core.pool).await?;
    match engine_marks::beat(conn, engine, through).await? {
        Some(at) => core.ledger.note(at),
        // taken for dead while its connection was down: stand up again
        None => engine_marks::register(conn, engine, reached).await?,
    }

    let dead = engine_marks::dead(conn, engine).await?;
    let Some(since) = dead.iter().map(|d| d.published_through).min() else { return Ok(()) };
    match crate::recover::republish_since(core, since).await {
        Ok(n) => {
            engine_marks::forget(conn, &dead).await?;
            core.metrics.engines_taken_over.fetch_add(dead.len() as u64, Ordering::Relaxed);
            tracing::info!(engines = dead.len(), %since, republished = n, "published again what stopped engines may have left");
            Ok(())
        }
        Err(e) => {
            engine_marks::release(conn, &dead).await?;
            Err(e)
        }
    }
}

/// A stop after every task ended: with nothing left to publish the row goes, so no engine
/// reads anything back for this one; otherwise the mark stays where it is for another to
/// take over from.
pub(crate) async fn retire(core: &Core) {
    let mut mark = core.mark.lock().await;
    let engine = mark.engine;
    let Some(mut conn) = mark.conn.take() else { return };
    let done = if core.ledger.settled() {
        engine_marks::retire(&mut conn, engine).await
    } else {
        engine_marks::beat(&mut conn, engine, core.ledger.published_through()).await.map(|_| ())
    };
    if let Err(e) = done {
        tracing::warn!(error = %e, "writing the engine's mark at its stop failed; the next engine publishes again from its last one");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn a_noted_time_is_reached_once_every_ticket_open_before_it_closed() {
        let ledger = Ledger::default();
        assert_eq!(ledger.published_through(), None, "nothing noted yet");
        let first = ledger.open();
        ledger.note(at(1));
        let second = ledger.open();
        ledger.note(at(2));
        assert_eq!(ledger.published_through(), None, "the first ticket is open");
        drop(first);
        assert_eq!(ledger.published_through(), Some(at(1)), "the second ticket opened after the first time");
        ledger.note(at(3));
        drop(second);
        assert_eq!(ledger.published_through(), Some(at(3)));
        assert_eq!(ledger.published_through(), None, "nothing new noted");
        assert!(ledger.settled());
    }

    #[test]
    fn refused_completions_hold_the_mark_until_they_are_published() {
        let ledger = Ledger::default();
        let ticket = ledger.open();
        ledger.note(at(1));
        ledger.refused(Vec::new(), ticket);
        assert_eq!(ledger.published_through(), None);
        assert!(!ledger.settled());
        let held = ledger.take_refused();
        assert_eq!(held.len(), 1);
        drop(held);
        assert_eq!(ledger.published_through(), Some(at(1)));
        assert!(ledger.settled());
    }

    #[test]
    fn of_two_tickets_the_earlier_covers_both() {
        let ledger = Ledger::default();
        let (a, b) = (ledger.open(), ledger.open());
        ledger.note(at(1));
        let kept = Ticket::earlier(b, a);
        assert_eq!(kept.number, 0);
        assert_eq!(ledger.published_through(), None);
        drop(kept);
        assert_eq!(ledger.published_through(), Some(at(1)));
    }
}
