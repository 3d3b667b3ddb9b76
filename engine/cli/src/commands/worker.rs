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
    let concurrency = args.concurrency.unwrap_or(config.worker_concurrency).max(1);
    let id = args.id.unwrap_or_else(default_id);
    let db = Db::connect(&config.database_url, 8)
        .await
        .context("connecting to Postgres")?;
    let queue = Queue::connect(&config.redis_url, &config.redis_prefix)
        .await
        .context("connecting to Redis")?;
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
    worker
        .run(shutdown_signal())
        .await
        .context("the worker failed")?;
    Ok(())
}

fn default_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    format!(
        "{host}-{}-{:04x}",
        std::process::id(),
        rand::random::<u16>()
    )
}

/// SIGTERM (how systemd, Kubernetes and `crm up` stop a worker) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutdown requested");
}
