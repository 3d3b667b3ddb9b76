//! `crm worker`: a sandboxed step runner, one OS process. Takes step jobs from Redis, runs
//! them in wasmtime with their limits and grants, publishes results; SIGTERM (or Ctrl-C)
//! stops intake and drains the steps in flight before exiting.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use crm_queue::Queue;
use crm_runtime::{Runtime, RuntimeConfig};
use crm_store::Db;
use crm_worker::{PgComponents, PgServices, Worker, WorkerConfig};

use crate::config::Config;

#[derive(clap::Args, Debug)]
pub struct WorkerArgs {
    /// Steps run at the same time (default: CRM_WORKER_CONCURRENCY).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Consumer name in the jobs group (default: host-pid-random).
    #[arg(long)]
    pub id: Option<String>,
}

pub async fn run(config: &Config, args: WorkerArgs) -> anyhow::Result<()> {
    let shutdown = shutdown_signal()?;
    let concurrency = args.concurrency.unwrap_or(config.worker_concurrency).max(1);
    let id = args.id.unwrap_or_else(default_id);
    let db = Db::connect(&config.database_url, 8).await.context("connecting to Postgres")?;
    let queue = Queue::connect(&config.redis_url, &config.redis_prefix).await.context("connecting to Redis")?;
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(config.data_dir.join("cache")),
        // a few spare slots: a step's store is dropped just after its permit is released
        max_instances: u32::try_from(concurrency + 8).unwrap_or(u32::MAX),
        max_memory_bytes: config.worker_max_memory_mb.saturating_mul(1 << 20),
        ..RuntimeConfig::default()
    })
    .context("starting the wasm runtime")?;
    let mut wc = WorkerConfig::new(id);
    wc.concurrency = concurrency;
    wc.visibility_timeout = Duration::from_secs(config.worker_visibility_secs.max(1));
    let worker = Worker::new(
        wc,
        queue,
        Arc::new(runtime),
        Arc::new(PgServices::new(db.clone())),
        Arc::new(PgComponents::new(db)),
    );
    worker.run(shutdown).await.context("the worker failed")?;
    Ok(())
}

fn default_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    format!("{host}-{}-{:04x}", std::process::id(), rand::random::<u16>())
}

/// SIGTERM (how systemd, Kubernetes and `crm up` stop a worker) or Ctrl-C. The handlers
/// are installed here, before the worker starts: installed lazily on the future's first
/// poll, a SIGTERM arriving before that poll would kill the process undrained.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("shutdown requested");
    })
}
