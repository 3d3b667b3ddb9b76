//! The worker loop: intake, takeover of stale jobs, heartbeats, batched publishing, and a
//! draining shutdown.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crm_concepts::step::{StepError, StepJob, StepOutcome, StepResult, StepUsage};
use crm_queue::{JobEntry, Queue};
use crm_runtime::{CallContext, Runtime, Services, StepCall, StepRun};
use tokio::sync::{Semaphore, mpsc};

use crate::components::ComponentSource;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// this worker's consumer name in the jobs group; unique per process
    pub id: String,
    /// steps running at the same time
    pub concurrency: usize,
    /// a job idle this long in another consumer's hands is taken over
    pub visibility_timeout: Duration,
    pub heartbeat: Duration,
    /// how long one read waits for new jobs (bounds how fast shutdown is noticed)
    pub read_block: Duration,
    /// results published per Redis transaction at most
    pub publish_batch: usize,
}

impl WorkerConfig {
    pub fn new(id: String) -> WorkerConfig {
        WorkerConfig {
            id,
            concurrency: 64,
            visibility_timeout: Duration::from_secs(30),
            heartbeat: Duration::from_secs(2),
            read_block: Duration::from_millis(500),
            publish_batch: 256,
        }
    }
}

pub struct Worker<S: 'static, C> {
    config: WorkerConfig,
    queue: Queue,
    runtime: Arc<Runtime<S>>,
    services: Arc<S>,
    components: Arc<C>,
}

/// Entry ids of jobs taken and not yet published: kept fresh against the visibility timeout.
type InFlight = Arc<Mutex<HashSet<String>>>;

struct Shared<S: 'static, C> {
    runtime: Arc<Runtime<S>>,
    services: Arc<S>,
    components: Arc<C>,
    in_flight: InFlight,
    results: mpsc::UnboundedSender<(StepResult, String)>,
    worker_id: String,
}

/// Runs one job to a result: loads the component (memory, disk cache, then Postgres), runs
/// it, and turns every failure along the way into a step error rather than an `Err`.
pub async fn execute<S: Services, C: ComponentSource>(
    runtime: &Runtime<S>,
    services: &Arc<S>,
    components: &C,
    job: &StepJob,
) -> StepRun {
    let failed = |error: StepError| StepRun {
        outcome: StepOutcome::Failed { error },
        usage: StepUsage::default(),
        logs: Vec::new(),
    };
    let prepared = match runtime.load_cached(&job.component).await {
        Ok(Some(p)) => p,
        Ok(None) => match components.fetch(&job.component).await {
            Ok(Some(bytes)) => match runtime.load(&job.component, Arc::new(bytes)).await {
                Ok(p) => p,
                Err(e) => return failed(e),
            },
            Ok(None) => {
                return failed(StepError::permanent(
                    "component_missing",
                    format!("no component with digest {} is stored", job.component),
                ));
            }
            Err(e) => {
                return failed(StepError::retryable("unavailable", format!("fetching the component: {e}")));
            }
        },
        Err(e) => return failed(e),
    };
    let call = StepCall {
        cx: CallContext { key: job.key.clone(), workflow: job.workflow.clone(), acting_user: job.acting_user },
        input: &job.input,
        grants: Arc::new(job.grants.clone()),
        limits: &job.limits,
    };
    runtime.run(&prepared, call, services.clone()).await
}

impl<S: Services, C: ComponentSource> Worker<S, C> {
    pub fn new(
        config: WorkerConfig,
        queue: Queue,
        runtime: Arc<Runtime<S>>,
        services: Arc<S>,
        components: Arc<C>,
    ) -> Self {
        Worker { config, queue, runtime, services, components }
    }

    /// Works until `shutdown` resolves, then stops taking jobs, finishes the running ones,
    /// publishes their results and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), crm_queue::QueueError> {
        let Worker { config, queue, runtime, services, components } = self;
        let concurrency = config.concurrency.max(1);
        let permits = Arc::new(Semaphore::new(concurrency));
        let (tx, rx) = mpsc::unbounded_channel();
        let in_flight: InFlight = Arc::default();
        let shared = Arc::new(Shared {
            runtime,
            services,
            components,
            in_flight: in_flight.clone(),
            results: tx,
            worker_id: config.id.clone(),
        });
        let publisher = tokio::spawn(publish(queue.clone(), rx, in_flight.clone(), config.publish_batch.max(1)));
        queue.heartbeat(&config.id).await?;
        let beat = tokio::spawn(heartbeat(queue.clone(), in_flight, config.clone()));
        tracing::info!(worker = %config.id, concurrency, "worker started");

        tokio::pin!(shutdown);
        let mut claim_every = tokio::time::interval((config.visibility_timeout / 2).max(Duration::from_millis(100)));
        // A slow iteration must not be followed by a burst of back-to-back claims.
        claim_every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut backoff = Duration::from_millis(100);
        loop {
            // Wait for a free slot, then take as many jobs as there are free slots.
            let first = tokio::select! {
                () = &mut shutdown => break,
                p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            };
            let want = 1 + permits.available_permits();
            let stale_due = tokio::select! {
                biased;
                _ = claim_every.tick() => true,
                () = std::future::ready(()) => false,
            };
            let read = if stale_due {
                queue.claim_stale_jobs(&config.id, config.visibility_timeout, want).await
            } else {
                // Not raced against shutdown: a read cancelled after Redis handed out
                // entries would strand them until the visibility timeout. `read_block`
                // bounds how long shutdown waits for it.
                queue.read_jobs(&config.id, want, config.read_block).await
            };
            let entries = match read {
                Ok(entries) => {
                    backoff = Duration::from_millis(100);
                    entries
                }
                Err(e) => {
                    tracing::warn!("reading jobs failed, retrying in {backoff:?}: {e}");
                    drop(first);
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            if stale_due && !entries.is_empty() {
                tracing::info!(count = entries.len(), "took over jobs held by an unresponsive worker");
            }
            let mut first = Some(first);
            for entry in entries {
                let permit = match first.take() {
                    Some(p) => p,
                    None => match permits.clone().acquire_owned().await {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                };
                spawn_step(shared.clone(), entry, permit);
            }
        }

        tracing::info!(worker = %config.id, "shutting down: draining in-flight steps");
        // Every permit back means every step has finished and sent its result.
        let all = u32::try_from(concurrency).unwrap_or(u32::MAX);
        let _drained = permits.acquire_many(all).await;
        beat.abort();
        // Dropping the last sender ends the publisher once it has published everything.
        drop(shared);
        if let Err(e) = publisher.await {
            tracing::error!("the result publisher failed: {e}");
        }
        if let Err(e) = queue.forget_worker(&config.id).await {
            tracing::warn!("cannot deregister the worker: {e}");
        }
        tracing::info!(worker = %config.id, "worker stopped");
        Ok(())
    }
}

fn spawn_step<S: Services, C: ComponentSource>(
    shared: Arc<Shared<S, C>>,
    entry: JobEntry,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    shared.in_flight.lock().unwrap_or_else(PoisonError::into_inner).insert(entry.id.clone());
    tokio::spawn(async move {
        let job = entry.job;
        let run = execute(&shared.runtime, &shared.services, &*shared.components, &job).await;
        if let StepOutcome::Failed { error } = &run.outcome {
            tracing::info!(run = %job.key.run_id, step = %job.key.step, code = %error.code, "step failed: {}", error.message);
        }
        let result = StepResult {
            key: job.key,
            outcome: run.outcome,
            usage: run.usage,
            logs: run.logs,
            worker: shared.worker_id.clone(),
        };
        // The receiver lives until every sender is gone, so this cannot fail in practice.
        let _ = shared.results.send((result, entry.id));
        drop(permit);
    });
}

/// Publishes results in batches until every sender (the worker loop's `Shared` and the
/// running steps' clones of it) is gone.
async fn publish(
    queue: Queue,
    mut rx: mpsc::UnboundedReceiver<(StepResult, String)>,
    in_flight_ids: InFlight,
    batch_max: usize,
) {
    let done = |ids: &[(StepResult, String)]| {
        let mut set = in_flight_ids.lock().unwrap_or_else(PoisonError::into_inner);
        for (_, id) in ids {
            set.remove(id);
        }
    };
    let mut batch = Vec::with_capacity(batch_max);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < batch_max {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let mut backoff = Duration::from_millis(50);
        let mut tries = 0u32;
        loop {
            match queue.publish_results_and_ack(&batch).await {
                Ok(()) => break,
                Err(e) => {
                    tries += 1;
                    // Unpublished jobs stay pending in Redis and are redelivered: giving up
                    // after a long outage loses no step, it only repeats some.
                    if tries > 40 {
                        tracing::error!(count = batch.len(), "giving up publishing results: {e}");
                        break;
                    }
                    tracing::warn!("publishing results failed, retrying in {backoff:?}: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
        done(&batch);
        batch.clear();
    }
}

async fn heartbeat(queue: Queue, in_flight: InFlight, config: WorkerConfig) {
    let mut every = tokio::time::interval(config.heartbeat);
    loop {
        every.tick().await;
        let ids: Vec<String> = in_flight.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned().collect();
        if let Err(e) = queue.heartbeat(&config.id).await {
            tracing::warn!("heartbeat failed: {e}");
        }
        if let Err(e) = queue.touch_jobs(&config.id, &ids).await {
            tracing::warn!("refreshing in-flight jobs failed: {e}");
        }
    }
}
