//! The worker loop: intake (with the check that each job is the engine's), takeover of
//! stale jobs, heartbeats, batched hand-in of results, and a draining shutdown.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crm_concepts::step::{
    StepError, StepErrorCode, StepJob, StepOutcome, StepResult, StepUsage, TicketedResult, is_digest,
};
use crm_concepts::timeline::{StepTimeline, now_us};
use crm_queue::{Queue, RawJob};
use crm_runtime::{HostCalls, Runtime, StepCall, StepRun};
use crm_trust::JobVerifier;
use tokio::sync::{Semaphore, mpsc};

use crate::channel::{ChannelError, EngineChannel};
use crate::host::EngineHost;

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
    /// results handed in per request at most
    pub publish_batch: usize,
    /// how often the worker asks which components the current workflow versions run, and
    /// compiles the ones it has not prepared (so a deploy's first run waits for no compile);
    /// `None`: never, each component is compiled by its first job
    pub warm_every: Option<Duration>,
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
            warm_every: Some(Duration::from_secs(1)),
        }
    }
}

pub struct Worker {
    config: WorkerConfig,
    queue: Queue,
    runtime: Arc<Runtime<EngineHost>>,
    host: Arc<EngineHost>,
    channel: EngineChannel,
    verifier: JobVerifier,
}

/// Entry ids of jobs taken and not yet acked: kept fresh against the visibility timeout.
type InFlight = Arc<Mutex<HashSet<String>>>;

struct Shared {
    runtime: Arc<Runtime<EngineHost>>,
    host: Arc<EngineHost>,
    channel: EngineChannel,
    in_flight: InFlight,
    results: mpsc::UnboundedSender<(TicketedResult, String)>,
    worker_id: String,
}

/// Why a job read from Redis is not run: nothing about it is the engine's word.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("it carries no signature")]
    Unsigned,
    #[error("its signature is not the engine's")]
    Forged,
    #[error("it does not decode as a step job: {0}")]
    Malformed(String),
    #[error("{0:?} is not a component digest")]
    BadDigest(String),
}

/// Believes a job only when the engine signed exactly these bytes.
fn admit(verifier: &JobVerifier, raw: &RawJob) -> Result<StepJob, Refusal> {
    let signature = raw.signature.as_deref().ok_or(Refusal::Unsigned)?;
    if !verifier.verify(&raw.payload, signature) {
        return Err(Refusal::Forged);
    }
    let job: StepJob = serde_json::from_slice(&raw.payload).map_err(|e| Refusal::Malformed(e.to_string()))?;
    if !is_digest(&job.component) {
        return Err(Refusal::BadDigest(job.component));
    }
    Ok(job)
}

/// Where a worker finds component bytes it has not compiled yet.
pub trait ComponentSource: Send + Sync + 'static {
    /// The bytes stored under `digest`; [`ChannelError::NoComponent`] when none are.
    fn fetch(&self, digest: &str) -> impl Future<Output = Result<Vec<u8>, ChannelError>> + Send;
}

impl ComponentSource for EngineChannel {
    async fn fetch(&self, digest: &str) -> Result<Vec<u8>, ChannelError> {
        self.component(digest).await
    }
}

/// Runs one job to a result: loads the component (memory, disk cache, then the source), runs
/// it, and turns every failure along the way into a step error rather than an `Err`.
pub async fn execute<H: HostCalls, C: ComponentSource>(
    runtime: &Runtime<H>,
    host: &Arc<H>,
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
            Ok(bytes) => match runtime.load(&job.component, Arc::new(bytes)).await {
                Ok(p) => p,
                Err(e) => return failed(e),
            },
            Err(ChannelError::NoComponent(_)) => {
                return failed(StepError::permanent(
                    StepErrorCode::ComponentMissing,
                    format!("no component with digest {} is stored", job.component),
                ));
            }
            Err(e) => {
                return failed(StepError::retryable(
                    StepErrorCode::Unavailable,
                    format!("fetching the component: {e}"),
                ));
            }
        },
        Err(e) => return failed(e),
    };
    let call = StepCall {
        key: job.key.clone(),
        workflow: job.workflow.clone(),
        acting_user: job.acting_user,
        ticket: job.ticket.clone(),
        provisional: job.provisional,
        input: &job.input,
        grants: Arc::new(job.grants.clone()),
        limits: &job.limits,
    };
    runtime.run(&prepared, call, host.clone()).await
}

impl Worker {
    /// Asks the engine for the key its jobs are signed with: a worker that cannot reach
    /// the engine, or whose credential is refused, does not start.
    pub async fn connect(
        config: WorkerConfig,
        queue: Queue,
        runtime: Arc<Runtime<EngineHost>>,
        channel: EngineChannel,
    ) -> Result<Worker, ChannelError> {
        let hello = channel.hello().await?;
        let verifier = JobVerifier::from_hex(&hello.public_key).map_err(|e| ChannelError::Refused(e.to_string()))?;
        let host = Arc::new(EngineHost::new(channel.clone()));
        Ok(Worker { config, queue, runtime, host, channel, verifier })
    }

    /// Works until `shutdown` resolves, then stops taking jobs, finishes the running ones,
    /// publishes their results and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), crm_queue::QueueError> {
        let Worker { config, queue, runtime, host, channel, verifier } = self;
        let concurrency = config.concurrency.max(1);
        let permits = Arc::new(Semaphore::new(concurrency));
        let (tx, rx) = mpsc::unbounded_channel();
        let in_flight: InFlight = Arc::default();
        let shared = Arc::new(Shared {
            runtime,
            host,
            channel: channel.clone(),
            in_flight: in_flight.clone(),
            results: tx,
            worker_id: config.id.clone(),
        });
        let publisher =
            tokio::spawn(publish(queue.clone(), channel, rx, in_flight.clone(), config.publish_batch.max(1)));
        queue.heartbeat(&config.id).await?;
        let beat = tokio::spawn(heartbeat(queue.clone(), in_flight, config.clone()));
        let warmer =
            config.warm_every.map(|every| tokio::spawn(warm(shared.runtime.clone(), shared.channel.clone(), every)));
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
            let picked_us = now_us();
            let mut refused = Vec::new();
            let mut admitted = Vec::with_capacity(entries.len());
            for raw in entries {
                match admit(&verifier, &raw) {
                    Ok(job) => {
                        let timeline = StepTimeline { sent_us: raw.sent_us, picked_us, ..Default::default() };
                        admitted.push((raw.id, job, timeline))
                    }
                    Err(why) => {
                        tracing::warn!(entry = %raw.id, "refused a job from Redis: {why}");
                        refused.push(raw.id);
                    }
                }
            }
            // Nobody may ever run a refused job: take it off the stream for good.
            if let Err(e) = queue.ack_jobs(&refused).await {
                tracing::warn!("cannot remove refused jobs: {e}");
            }
            let mut first = Some(first);
            for entry in admitted {
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
        if let Some(warmer) = warmer {
            warmer.abort();
        }
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

fn spawn_step(
    shared: Arc<Shared>,
    (entry_id, job, mut timeline): (String, StepJob, StepTimeline),
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    shared.in_flight.lock().unwrap_or_else(PoisonError::into_inner).insert(entry_id.clone());
    if let Some(waited) = queue_wait(&entry_id) {
        metrics::histogram!("crm_step_queue_wait_seconds", "workflow" => job.workflow.clone()).record(waited);
    }
    // The step's span, in the run's trace under the engine's dispatch of it.
    let span = if crm_traces::exporting() {
        let key = &job.key;
        let span = tracing::info_span!("step.execute", crm.run_id = %key.run_id, crm.step = %key.step, crm.attempt = key.attempt, crm.workflow = %job.workflow, crm.worker = %shared.worker_id);
        crm_traces::follow(&span, job.trace.as_deref(), key.run_id);
        span
    } else {
        tracing::Span::none()
    };
    let step = async move {
        timeline.started_us = now_us();
        let mut run = execute(&shared.runtime, &shared.host, &shared.channel, &job).await;
        timeline.finished_us = now_us();
        run.usage.timeline = timeline;
        let outcome = match &run.outcome {
            StepOutcome::Ok { .. } => "succeeded",
            StepOutcome::Failed { error } => {
                tracing::info!(run = %job.key.run_id, step = %job.key.step, code = %error.code, "step failed: {}", error.message);
                "failed"
            }
        };
        metrics::counter!("crm_worker_steps_total", "workflow" => job.workflow.clone(), "outcome" => outcome)
            .increment(1);
        let result = StepResult {
            key: job.key,
            outcome: run.outcome,
            usage: run.usage,
            logs: run.logs,
            worker: shared.worker_id.clone(),
        };
        // The receiver lives until every sender is gone, so this cannot fail in practice.
        let _ = shared.results.send((TicketedResult { ticket: job.ticket, result }, entry_id));
        drop(permit);
    };
    tokio::spawn(tracing::Instrument::instrument(step, span));
}

/// Seconds from the job's entry on the stream to now: a stream entry id starts with the
/// millisecond Redis added it (Redis's clock; a job taken over from a dead worker counts its
/// whole wait).
fn queue_wait(entry_id: &str) -> Option<f64> {
    let added_ms = u128::from(crm_queue::entry_ms(entry_id)?);
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
    Some(now_ms.saturating_sub(added_ms) as f64 / 1000.0)
}

/// Hands results to the engine in batches until every sender (the worker loop's `Shared`
/// and the running steps' clones of it) is gone; acks each batch's jobs once the engine has
/// committed it.
async fn publish(
    queue: Queue,
    channel: EngineChannel,
    mut rx: mpsc::UnboundedReceiver<(TicketedResult, String)>,
    in_flight_ids: InFlight,
    batch_max: usize,
) {
    let done = |ids: &[String]| {
        let mut set = in_flight_ids.lock().unwrap_or_else(PoisonError::into_inner);
        for id in ids {
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
        let (results, ids): (Vec<TicketedResult>, Vec<String>) = std::mem::take(&mut batch).into_iter().unzip();
        let mut backoff = Duration::from_millis(50);
        let mut tries = 0u32;
        loop {
            match channel.results(results.clone()).await {
                Ok(()) => {
                    if let Err(e) = queue.ack_jobs(&ids).await {
                        // Redelivered later and run again: the journal and the idempotent
                        // results make that harmless.
                        tracing::warn!("acking handed-in jobs failed: {e}");
                    }
                    break;
                }
                Err(e) => {
                    tries += 1;
                    // Jobs not handed in stay pending in Redis and are redelivered: giving
                    // up after a long outage loses no step, it only repeats some.
                    if tries > 40 || !e.is_retryable() {
                        tracing::error!(count = ids.len(), "giving up handing in results: {e}");
                        break;
                    }
                    tracing::warn!("handing in results failed, retrying in {backoff:?}: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
        done(&ids);
    }
}

/// Keeps the components of the current workflow versions prepared: after a deploy, a
/// rollback or this worker's start, each one it has not prepared is reloaded from the disk
/// cache (milliseconds) or fetched and compiled (seconds for a Python or JavaScript
/// component) before a run needs it. The bytes are checked against their digest as for a
/// job; nothing compiled elsewhere is loaded.
async fn warm(runtime: Arc<Runtime<EngineHost>>, channel: EngineChannel, every: Duration) {
    let mut warmed: Vec<String> = Vec::new();
    loop {
        match channel.current_components().await {
            Ok(digests) if digests != warmed => {
                let mut all = true;
                for digest in digests.iter().filter(|d| runtime.prepared(d).is_none()) {
                    let started = std::time::Instant::now();
                    let loaded = match runtime.load_cached(digest).await {
                        Ok(Some(_)) => Ok(()),
                        Ok(None) => match channel.component(digest).await {
                            Ok(bytes) => runtime.load(digest, Arc::new(bytes)).await.map(drop),
                            Err(e) => Err(StepError::retryable(StepErrorCode::Unavailable, e.to_string())),
                        },
                        Err(e) => Err(e),
                    };
                    match loaded {
                        Ok(()) => {
                            tracing::info!(%digest, ms = started.elapsed().as_millis() as u64, "component prepared ahead of its runs")
                        }
                        Err(e) => {
                            // A component that can never load is refused for good; anything
                            // else is tried again next round.
                            all &= !e.is_retryable();
                            tracing::warn!(%digest, "cannot prepare a current component: {e}");
                        }
                    }
                }
                if all {
                    warmed = digests;
                }
            }
            Ok(_) => {}
            Err(e) => tracing::debug!("cannot list the current components: {e}"),
        }
        tokio::time::sleep(every).await;
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
