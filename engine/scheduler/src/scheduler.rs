//! The scheduler handle and its background tasks: the run submitter (batched inserts), the
//! dispatcher (outbox → Redis), the applier (results → Postgres), the confirmer, and the
//! reconciler (lost Redis data, lost steps). `crm serve` starts one; several engine
//! processes may each run one against the same Postgres and Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use crm_concepts::run::RunRequest;
use crm_store::runs::{self, RunSummary};
use crm_store::workflow_error::WorkflowError;
use sqlx::PgPool;
use tokio::sync::{Mutex, Notify, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::completions::Completions;
use crate::confirmer::Confirmer;
use crate::submit::{Accepted, Pending};
use crate::transport::Transport;
use crate::versions::Versions;

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Redis key prefix shared with the workers
    pub prefix: String,
    /// this engine's name in the results consumer group (unique per process)
    pub consumer: String,
    /// most results applied in one transaction, most runs inserted in one
    pub batch: usize,
    /// concurrent run-insert transactions
    pub submitters: usize,
    /// concurrent result-applying loops
    pub appliers: usize,
    /// how long the dispatcher leaves a fast-path step to the engine that made it ready
    pub fast_path_grace: Duration,
    /// how long a step may stay on Redis beyond its timeout before it counts as lost
    pub lost_after: Duration,
    /// results pending this long with a consumer (a dead engine) are claimed
    pub results_visibility: Duration,
    pub reconcile_every: Duration,
    /// the dispatcher's poll interval when nothing woke it
    pub dispatch_poll: Duration,
    pub durability: Durability,
}

/// Which scheduler commits wait for the disk (fsync), traded against latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// every commit is durable
    Strict,
    /// run creation is durable (a 202 is a promise); step transitions commit without
    /// waiting for the disk. A Postgres crash may forget the last fraction of a second of
    /// transitions: those steps are sent again (outbox grace, lost-step sweep) and their
    /// results applied again, which at-least-once steps and idempotent results absorb.
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
    pub fn new(prefix: impl Into<String>) -> SchedulerConfig {
        SchedulerConfig {
            prefix: prefix.into(),
            consumer: format!("engine-{}", Uuid::new_v4().simple()),
            batch: 1000,
            submitters: 3,
            appliers: 2,
            fast_path_grace: Duration::from_secs(3),
            lost_after: Duration::from_secs(120),
            results_visibility: Duration::from_secs(15),
            reconcile_every: Duration::from_secs(1),
            dispatch_poll: Duration::from_millis(50),
            durability: Durability::Runs,
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
    pub steps_lost: AtomicU64,
    pub redis_resets: AtomicU64,
    pub apply_batches: AtomicU64,
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
            "steps_lost": g(&self.steps_lost),
            "redis_resets": g(&self.redis_resets),
            "apply_batches": g(&self.apply_batches),
        })
    }
}

/// Everything the tasks share.
pub(crate) struct Core {
    /// durable commits: run creation and reads
    pub pool: PgPool,
    /// step transitions (applier, dispatcher, reconciler), per [`Durability`]
    pub state_pool: PgPool,
    pub transport: Transport,
    pub versions: Versions,
    pub confirmer: Confirmer,
    pub completions: Completions,
    pub config: SchedulerConfig,
    pub dispatch_wake: Notify,
    pub metrics: Metrics,
}

/// A cheap, cloneable handle; dropping the last one does not stop the tasks, `shutdown` does.
#[derive(Clone)]
pub struct Scheduler {
    core: Arc<Core>,
    submit_tx: mpsc::Sender<Pending>,
    tasks: Arc<Mutex<JoinSet<()>>>,
    stop: CancellationToken,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot reach Redis at {url}: {message}")]
    Redis { url: String, message: String },
    #[error("cannot open the scheduler's database connections: {0}")]
    Db(#[from] sqlx::Error),
}

impl Scheduler {
    pub async fn start(pool: PgPool, redis_url: &str, config: SchedulerConfig) -> Result<Scheduler, StartError> {
        let redis_err =
            |e: &dyn std::fmt::Display| StartError::Redis { url: redis_url.to_string(), message: e.to_string() };
        let transport = Transport::connect(redis_url, &config.prefix).await.map_err(|e| redis_err(&e))?;
        let completions = Completions::connect(redis_url, &config.prefix).await.map_err(|e| redis_err(&e))?;
        // The scheduler's statements join arrays against tables that grow with every run.
        // A plan cached while a table was small (a seq scan) would stay cached while the
        // table grows, so these connections plan each statement for the data at hand.
        let mut options = (*pool.connect_options()).clone();
        options = match config.durability {
            Durability::Strict => options.options([("plan_cache_mode", "force_custom_plan")]),
            Durability::Runs => {
                options.options([("plan_cache_mode", "force_custom_plan"), ("synchronous_commit", "off")])
            }
        };
        let state_pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        let core = Arc::new(Core {
            versions: Versions::new(pool.clone()),
            pool,
            state_pool,
            transport,
            confirmer: Confirmer::default(),
            completions,
            config,
            dispatch_wake: Notify::new(),
            metrics: Metrics::default(),
        });
        let (submit_tx, submit_rx) = mpsc::channel::<Pending>(65_536);
        let submit_rx = Arc::new(Mutex::new(submit_rx));
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        for _ in 0..core.config.submitters.max(1) {
            tasks.spawn(crate::submit::run_submitter(core.clone(), submit_rx.clone(), stop.clone()));
        }
        tasks.spawn(crate::dispatch::run_dispatcher(core.clone(), stop.clone()));
        tasks.spawn(crate::dispatch::run_confirmer(core.clone(), stop.clone()));
        for _ in 0..core.config.appliers.max(1) {
            let reader = core.transport.reader().await.map_err(|e| redis_err(&e))?;
            tasks.spawn(crate::apply::run_applier(core.clone(), reader, stop.clone()));
        }
        tasks.spawn(crate::recover::run_reconciler(core.clone(), stop.clone()));
        tasks.spawn(crate::recover::republish_recent(core.clone(), Utc::now() - chrono::Duration::seconds(120)));
        Ok(Scheduler { core, submit_tx, tasks: Arc::new(Mutex::new(tasks)), stop })
    }

    /// Creates a run (or returns the one holding its idempotency key) and sends its first
    /// steps. Concurrent calls share one transaction.
    pub async fn submit(&self, request: RunRequest) -> Result<Accepted, WorkflowError> {
        let (tx, rx) = oneshot::channel();
        self.submit_tx
            .send(Pending { request, reply: tx })
            .await
            .map_err(|_| WorkflowError::Unavailable("the scheduler is shutting down".into()))?;
        rx.await.map_err(|_| WorkflowError::Unavailable("the scheduler is shutting down".into()))?
    }

    pub async fn cancel(&self, id: Uuid) -> Result<RunSummary, WorkflowError> {
        crate::apply::cancel(&self.core, id).await?;
        Ok(runs::get(&self.core.pool, id).await?.summary)
    }

    /// Steps were made ready in someone else's transaction (a trigger) and it committed:
    /// look at the outbox now rather than at the next poll.
    pub fn wake_dispatcher(&self) {
        self.core.dispatch_wake.notify_one();
    }

    pub fn completions(&self) -> &Completions {
        &self.core.completions
    }

    pub fn metrics(&self) -> serde_json::Value {
        self.core.metrics.snapshot()
    }

    pub fn pool(&self) -> &PgPool {
        &self.core.pool
    }

    /// Stops the background tasks, letting each finish the batch it holds.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        let mut tasks = self.tasks.lock().await;
        let deadline = tokio::time::sleep(Duration::from_secs(5));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = tasks.join_next() => if next.is_none() { break },
                _ = &mut deadline => { tasks.abort_all(); break }
            }
        }
    }
}
