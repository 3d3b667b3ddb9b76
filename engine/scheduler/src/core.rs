//! What the scheduler's tasks share: configuration, connections, caches and counters. A
//! leaf: it names no task, so every task file depends on it and on nothing of each other.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crm_queue::{Completions, Queue};
use crm_trust::EngineKey;
use sqlx::PgPool;
use tokio::sync::{Notify, mpsc};
use uuid::Uuid;

use crate::confirmer::Confirmer;
use crate::intake::Arrival;
use crate::versions::Versions;

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Redis key prefix shared with the workers
    pub prefix: String,
    /// this engine's name in logs and in attempt records (unique per process)
    pub consumer: String,
    /// most results applied in one transaction, most runs inserted in one
    pub batch: usize,
    /// most run-insert batches in flight at once; beyond the first, only full ones
    /// (see `gather.rs`)
    pub submitters: usize,
    /// concurrent result-applying loops
    pub appliers: usize,
    /// how long the dispatcher leaves a fast-path step to the engine that made it ready
    pub fast_path_grace: Duration,
    /// how long a step may stay on Redis beyond its timeout before it counts as lost; also
    /// how long past its timeout an attempt's ticket is honoured
    pub lost_after: Duration,
    pub reconcile_every: Duration,
    /// the dispatcher's poll interval when nothing woke it
    pub dispatch_poll: Duration,
    pub durability: Durability,
    /// how often the waker looks for due waits (one indexed query, however many wait)
    pub wake_poll: Duration,
    /// a clock an admin may move forward, for tests of long waits (`crm serve --test-clock`)
    pub test_clock: bool,
    /// opens the secrets steps read (the installation's key, see `crm_vault`)
    pub vault: Arc<crm_vault::Vault>,
}

/// Which scheduler commits wait for the disk (fsync), traded against latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// every commit is durable
    Strict,
    /// run creation is durable (a 202 is a promise); step transitions commit without
    /// waiting for the disk. A Postgres crash may forget the last fraction of a second of
    /// transitions: those steps are sent again (outbox grace, lost-step sweep) and their
    /// results applied again, which the host-call journal and idempotent results absorb.
    Runs,
}

impl std::str::FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "strict" => Ok(Durability::Strict),
            "runs" => Ok(Durability::Runs),
            _ => Err(format!("unknown durability {s:?}: expected strict or runs")),
        }
    }
}

impl SchedulerConfig {
    pub fn new(prefix: impl Into<String>, vault: Arc<crm_vault::Vault>) -> SchedulerConfig {
        SchedulerConfig {
            prefix: prefix.into(),
            consumer: format!("engine-{}", Uuid::new_v4().simple()),
            batch: 1000,
            submitters: 3,
            appliers: 2,
            fast_path_grace: Duration::from_secs(3),
            lost_after: Duration::from_secs(120),
            reconcile_every: Duration::from_secs(1),
            dispatch_poll: Duration::from_millis(50),
            durability: Durability::Runs,
            wake_poll: Duration::from_millis(250),
            test_clock: false,
            vault,
        }
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub runs_created: AtomicU64,
    pub steps_sent_fast: AtomicU64,
    pub steps_dispatched: AtomicU64,
    pub results_applied: AtomicU64,
    pub results_stale: AtomicU64,
    pub results_refused: AtomicU64,
    pub host_calls: AtomicU64,
    pub host_calls_refused: AtomicU64,
    pub steps_lost: AtomicU64,
    pub redis_resets: AtomicU64,
    pub apply_batches: AtomicU64,
    pub waits_woken: AtomicU64,
    /// results applied to a remembered run under its revision's guard, without a lock
    pub results_applied_guarded: AtomicU64,
    /// remembered runs whose guarded write missed (changed elsewhere, or the write
    /// failed): applied again under locks
    pub guard_misses: AtomicU64,
    /// admissions that read their facts from Postgres (the others knew them all)
    pub admission_fact_reads: AtomicU64,
    /// runs whose facts had changed by the insert: built again from a fresh read
    pub admissions_stale: AtomicU64,
    /// steps sent beside the write that records them (see `crate::provisional`)
    pub steps_sent_ahead: AtomicU64,
    /// steps sent ahead of the write that was to record them, whose write did not commit:
    /// their host calls are refused and their results dropped
    pub provisional_void: AtomicU64,
    /// results of steps sent ahead by a write this engine did not see, handed in before
    /// that write committed: handed back to their worker's request, which hands them in again
    pub results_before_record: AtomicU64,
    /// completions published again (after Redis lost its data, or for a dead engine)
    pub completions_republished: AtomicU64,
    /// dead engines whose unpublished completions this one published again
    pub engines_taken_over: AtomicU64,
}

impl Metrics {
    pub fn snapshot(&self) -> serde_json::Value {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        serde_json::json!({
            "runs_created": g(&self.runs_created),
            "steps_sent_fast": g(&self.steps_sent_fast),
            "steps_dispatched": g(&self.steps_dispatched),
            "results_applied": g(&self.results_applied),
            "results_stale": g(&self.results_stale),
            "results_refused": g(&self.results_refused),
            "host_calls": g(&self.host_calls),
            "host_calls_refused": g(&self.host_calls_refused),
            "steps_lost": g(&self.steps_lost),
            "redis_resets": g(&self.redis_resets),
            "apply_batches": g(&self.apply_batches),
            "waits_woken": g(&self.waits_woken),
            "results_applied_guarded": g(&self.results_applied_guarded),
            "guard_misses": g(&self.guard_misses),
            "admission_fact_reads": g(&self.admission_fact_reads),
            "admissions_stale": g(&self.admissions_stale),
            "steps_sent_ahead": g(&self.steps_sent_ahead),
            "provisional_void": g(&self.provisional_void),
            "results_before_record": g(&self.results_before_record),
            "completions_republished": g(&self.completions_republished),
            "engines_taken_over": g(&self.engines_taken_over),
        })
    }
}

/// The longest a host call's read may run in Postgres, whatever the step's deadline: a
/// bound on a runaway query, far above what a read of one page of records takes.
pub(crate) const READ_STATEMENT_TIMEOUT: &str = "30s";

pub(crate) struct Core {
    /// durable commits: run creation, host calls and reads
    pub pool: PgPool,
    /// step transitions (applier, dispatcher, reconciler), per [`Durability`]
    pub state_pool: PgPool,
    /// guarded writes to remembered runs: one statement each, planned once per connection
    pub guarded_pool: PgPool,
    /// host calls that only read, served without a transaction; each connection stops a
    /// statement after [`READ_STATEMENT_TIMEOUT`]
    pub reads_pool: PgPool,
    pub queue: Queue,
    pub completions: Completions,
    pub versions: Versions,
    pub confirmer: Confirmer,
    pub key: EngineKey,
    pub config: SchedulerConfig,
    pub dispatch_wake: Notify,
    /// the engine's time for waits
    pub clock: crate::clock::Clock,
    /// wakes the waker before its poll (the clock moved)
    pub wake_now: Notify,
    /// results handed in by workers, waiting for an applier
    pub arrivals: mpsc::Sender<Arrival>,
    /// committed ready steps' jobs, waiting for the sender (`dispatch::run_sender`)
    pub outgoing: mpsc::UnboundedSender<Vec<crate::jobs::Dispatch>>,
    pub metrics: Metrics,
    /// unfinished runs as this engine last wrote them
    pub known: crate::known_runs::KnownRuns,
    /// steps sent ahead of the write that records them, and what became of that write
    pub provisional: crate::provisional::Provisional,
    /// the workflows' current versions and the active users, as admissions last read them
    pub known_facts: crate::known_facts::KnownFacts,
    /// work that may finish runs, until its completions are on the stream
    pub ledger: crate::publication::Ledger,
    /// how far this engine has published, where the other engines read it
    pub mark: tokio::sync::Mutex<crate::publication::Mark>,
}
