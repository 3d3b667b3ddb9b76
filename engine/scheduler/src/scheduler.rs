//! The scheduler handle and its background tasks: the run submitters (batched inserts),
//! the dispatcher (outbox → Redis), the appliers (results → Postgres), the confirmer, and
//! the reconciler (lost Redis data, lost steps). `crm serve` starts one; several engine
//! processes may each run one against the same Postgres and Redis.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use crm_concepts::host_call::{HostCall, HostCallError, HostReply};
use crm_concepts::run::RunRequest;
use crm_concepts::step::TicketedResult;
use crm_queue::Queue;
use crm_store::Db;
use crm_store::run_history::{self, RunSummary};
use crm_store::workflow_error::WorkflowError;
use crm_store::workflows::WorkflowVersion;
use crm_trust::EngineKey;
use sqlx::PgPool;
use tokio::sync::{Mutex, Notify, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::admission::{Accepted, Admission};
use crate::completions::CompletionFeed;
use crate::confirmer::Confirmer;
use crate::core::{Core, Durability, READ_STATEMENT_TIMEOUT, SchedulerConfig};
use crate::gather::Gather;
use crate::intake::IntakeError;
use crate::submit::Pending;
use crate::versions::Versions;

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
    #[error("cannot read the engine key: {0}")]
    Key(#[from] crm_store::StoreError),
    #[error("cannot register the engine's publication mark: {0}")]
    Mark(#[from] crm_store::workflow_error::WorkflowError),
}

/// A pool of the scheduler's own beside `pool`, of up to `size` connections: the same
/// server and session settings, plus `settings`.
async fn side_pool(pool: &PgPool, size: u32, settings: &[(&str, &str)]) -> Result<PgPool, sqlx::Error> {
    let options = (*pool.connect_options()).clone().options(settings.iter().copied());
    crm_store::database::pool_options(size).connect_with(options).await
}

impl Scheduler {
    pub async fn start(db: &Db, redis_url: &str, config: SchedulerConfig) -> Result<Scheduler, StartError> {
        let redis_err =
            |e: &dyn std::fmt::Display| StartError::Redis { url: crm_queue::redact(redis_url), message: e.to_string() };
        let queue = Queue::connect(redis_url, &config.prefix).await.map_err(|e| redis_err(&e))?;
        let key = EngineKey::from_seed(crm_store::engine_keys::seed(db).await?);
        let pool = db.pool.clone();
        // The scheduler's statements join arrays against tables that grow with every run.
        // A plan cached while a table was small (a seq scan) would stay cached while the
        // table grows, so these connections plan each statement for the data at hand.
        let state_pool = match config.durability {
            Durability::Strict => side_pool(&pool, 8, &[("plan_cache_mode", "force_custom_plan")]).await?,
            Durability::Runs => {
                side_pool(&pool, 8, &[("plan_cache_mode", "force_custom_plan"), ("synchronous_commit", "off")]).await?
            }
        };
        // The guarded write (`apply::apply_known`) is one statement of many CTEs, so
        // planning it costs more than running it (about 400 µs against 290 µs per batch,
        // measured with `log_min_duration_statement`). Its every table access is a
        // primary-key lookup joined to the batch's arrays, so it is planned once per
        // connection, with sequential scans ruled out: a plan made while the tables were
        // small stays an index plan as they grow.
        let mut guarded = vec![("plan_cache_mode", "force_generic_plan"), ("enable_seqscan", "off")];
        if matches!(config.durability, Durability::Runs) {
            guarded.push(("synchronous_commit", "off"));
        }
        // one connection per applier, the only users
        let guarded_pool = side_pool(&pool, config.appliers.max(1) as u32, &guarded).await?;
        // A step's read is one statement with no transaction around it, so the step's
        // deadline cannot be set per call without a round trip: these connections stop any
        // statement at a fixed bound instead, and the call itself waits no longer than the
        // step's deadline (`host_calls::read`).
        let reads_pool = side_pool(&pool, 8, &[("statement_timeout", READ_STATEMENT_TIMEOUT)]).await?;
        let (arrivals, arrivals_rx) = mpsc::channel(4096);
        let (outgoing, outgoing_rx) = mpsc::unbounded_channel();
        // before any work that could finish a run
        let mark = crate::publication::Mark::register(&pool).await?;
        let clock = if config.test_clock { crate::clock::Clock::adjustable() } else { crate::clock::Clock::real() };
        let core = Arc::new(Core {
            versions: Versions::new(pool.clone()),
            pool,
            state_pool,
            guarded_pool,
            reads_pool,
            completions: queue.completions(),
            queue,
            confirmer: Confirmer::default(),
            key,
            config,
            dispatch_wake: Notify::new(),
            clock,
            wake_now: Notify::new(),
            arrivals,
            outgoing,
            metrics: Default::default(),
            known: Default::default(),
            provisional: Default::default(),
            known_facts: Default::default(),
            ledger: Default::default(),
            mark: tokio::sync::Mutex::new(mark),
        });
        let (submit_tx, submit_rx) = mpsc::channel::<Pending>(65_536);
        let door = Arc::new(Gather::new(submit_rx, crate::submit::PATIENCE));
        let arrivals_rx = Arc::new(Mutex::new(arrivals_rx));
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let admission = Admission { core: core.clone() };
        for _ in 0..core.config.submitters.max(1) {
            tasks.spawn(crate::submit::run_submitter(admission.clone(), door.clone(), stop.clone()));
        }
        tasks.spawn(crate::dispatch::run_sender(core.clone(), outgoing_rx, stop.clone()));
        tasks.spawn(crate::dispatch::run_dispatcher(core.clone(), stop.clone()));
        tasks.spawn(crate::dispatch::run_confirmer(core.clone(), stop.clone()));
        for _ in 0..core.config.appliers.max(1) {
            tasks.spawn(crate::apply::run_applier(core.clone(), arrivals_rx.clone(), stop.clone()));
        }
        tasks.spawn(crate::recover::run_reconciler(core.clone(), stop.clone()));
        tasks.spawn(crate::publication::run(core.clone(), stop.clone()));
        // As many wakers as appliers: ending a batch of waits is mostly round trips to
        // Postgres, so a burst of due waits goes through two transactions at a time, each
        // claiming its own rows (SKIP LOCKED).
        for _ in 0..core.config.appliers.max(1) {
            tasks.spawn(crate::wake::run_waker(core.clone(), stop.clone()));
        }
        Ok(Scheduler { core, submit_tx, tasks: Arc::new(Mutex::new(tasks)), stop })
    }

    /// Creates a run (or returns the one holding its idempotency key) and sends its first
    /// steps. Concurrent calls share one admission.
    pub async fn submit(&self, request: RunRequest) -> Result<Accepted, WorkflowError> {
        let (tx, rx) = oneshot::channel();
        self.submit_tx
            .send(Pending { request, reply: tx })
            .await
            .map_err(|_| WorkflowError::Unavailable("the scheduler is shutting down".into()))?;
        let accepted = rx.await.map_err(|_| WorkflowError::Unavailable("the scheduler is shutting down".into()))??;
        // The caller's span (an API request) names the run, whose trace is its own.
        crm_traces::record_run(&tracing::Span::current(), accepted.id);
        Ok(accepted)
    }

    /// The door triggers start runs through, inside their own transactions.
    pub fn admission(&self) -> Admission {
        Admission { core: self.core.clone() }
    }

    pub async fn cancel(&self, id: Uuid) -> Result<RunSummary, WorkflowError> {
        crate::apply::cancel(&self.core, id).await?;
        Ok(run_history::get(&self.core.pool, id).await?.summary)
    }

    /// Runs a failed run again from its failed steps, keeping what the succeeded steps
    /// output. A run that is not failed is refused with [`WorkflowError::Conflict`].
    pub async fn retry(&self, id: Uuid) -> Result<RunSummary, WorkflowError> {
        if !crate::apply::retry(&self.core, id).await? {
            let run = run_history::get(&self.core.pool, id).await?.summary;
            return Err(WorkflowError::Conflict(format!(
                "run {id} is {}; only a failed run can be retried",
                run.status
            )));
        }
        Ok(run_history::get(&self.core.pool, id).await?.summary)
    }

    /// Steps were made ready outside the scheduler's own transactions: look at the outbox
    /// now rather than at the next poll.
    pub fn wake_dispatcher(&self) {
        self.core.dispatch_wake.notify_one();
    }

    /// Completions as the engine published them: forged entries never come out.
    pub async fn completion_feed(&self) -> Result<CompletionFeed, crm_queue::QueueError> {
        Ok(CompletionFeed::new(self.core.completions.reader().await?, self.core.key.clone()))
    }

    /// The id of the newest completion, where a reader without a resume point starts.
    pub async fn last_completion_id(&self) -> Result<String, crm_queue::QueueError> {
        self.core.completions.last_id().await
    }

    /// The key workers verify jobs with.
    pub fn public_key(&self) -> String {
        self.core.key.public_key()
    }

    pub fn prefix(&self) -> &str {
        &self.core.config.prefix
    }

    /// A workflow version, from the cache.
    pub async fn version(&self, workflow: &str, version: i32) -> Result<Arc<WorkflowVersion>, WorkflowError> {
        self.core.versions.get(workflow, version).await
    }

    /// Serves a host call a worker makes for one of its attempts.
    pub async fn host_call(
        &self,
        ticket: &str,
        write_seq: Option<u32>,
        remaining_ms: u64,
        call: HostCall,
    ) -> Result<Result<HostReply, HostCallError>, IntakeError> {
        crate::intake::host_call(&self.core, ticket, write_seq, remaining_ms, call).await
    }

    /// Returns once the attempt `ticket` names is recorded (at once for one that was not
    /// sent provisionally); refused when it never will be.
    pub async fn confirm(&self, ticket: &str, remaining_ms: u64) -> Result<(), IntakeError> {
        crate::intake::confirm(&self.core, ticket, remaining_ms).await
    }

    /// Applies results a worker hands in; returns once they are committed.
    pub async fn accept_results(&self, results: Vec<TicketedResult>) -> Result<(), IntakeError> {
        crate::intake::results(&self.core, results).await
    }

    /// Decides a held `approval` step for user `by` (whom the caller checked may decide);
    /// false when it was decided (or timed out) already.
    pub async fn decide(
        &self,
        run_id: Uuid,
        step: &str,
        decision: crm_concepts::wait::Decision,
        by: i64,
        comment: Option<String>,
    ) -> Result<bool, WorkflowError> {
        let wake = crate::hold::Wake::Decision { decision, by, comment };
        crate::apply::decide(&self.core, run_id, step.to_string(), wake).await
    }

    /// The engine's time for waits.
    pub async fn now(&self) -> Result<DateTime<Utc>, WorkflowError> {
        self.core.clock.refresh(&self.core.pool).await?;
        Ok(self.core.clock.now())
    }

    /// Moves a test clock forward (every engine of the installation follows) and fires
    /// what fell due; `None` when this engine runs on the real clock.
    pub async fn advance_clock(&self, by: Duration) -> Result<Option<DateTime<Utc>>, WorkflowError> {
        let now = self.core.clock.advance(&self.core.pool, by).await?;
        if now.is_some() {
            self.core.wake_now.notify_one();
        }
        Ok(now)
    }

    pub fn metrics(&self) -> serde_json::Value {
        self.core.metrics.snapshot()
    }

    /// Sets the gauges that describe the database rather than count events: steps waiting
    /// in the step outbox and on Redis, and how far behind the step outbox and the records
    /// outbox (record-event triggers) are. Read at scrape time; a failed read leaves them.
    pub async fn sample_gauges(&self) {
        let steps = sqlx::query_as::<_, (i64, i64, f64)>(
            "SELECT count(*) FILTER (WHERE enqueued_at IS NULL),
                    count(*) FILTER (WHERE enqueued_at IS NOT NULL),
                    COALESCE(EXTRACT(EPOCH FROM now() - min(dispatch_after)
                        FILTER (WHERE enqueued_at IS NULL AND dispatch_after <= now())), 0)::float8
             FROM run_steps WHERE status = 'queued'",
        )
        .fetch_one(&self.core.pool)
        .await;
        match steps {
            Ok((outbox, on_redis, lag)) => {
                metrics::gauge!("crm_queue_depth", "where" => "outbox").set(outbox as f64);
                metrics::gauge!("crm_queue_depth", "where" => "redis").set(on_redis as f64);
                metrics::gauge!("crm_outbox_lag_seconds", "outbox" => "steps").set(lag);
            }
            Err(e) => tracing::warn!(error = %e, "sampling the step queue failed"),
        }
        let records = sqlx::query_scalar::<_, f64>(
            "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(at)), 0)::float8 FROM outbox WHERE processed_at IS NULL",
        )
        .fetch_one(&self.core.pool)
        .await;
        match records {
            Ok(lag) => metrics::gauge!("crm_outbox_lag_seconds", "outbox" => "records").set(lag),
            Err(e) => tracing::warn!(error = %e, "sampling the records outbox failed"),
        }
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
                _ = &mut deadline => {
                    // Work cut off may have committed runs it did not publish: the row
                    // and its last mark stay for the next engine to take over from.
                    tasks.abort_all();
                    return;
                }
            }
        }
        crate::publication::retire(&self.core).await;
    }
}
