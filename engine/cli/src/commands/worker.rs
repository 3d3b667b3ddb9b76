//! `crm worker`: a sandboxed step runner, one OS process. Takes signed step jobs from
//! Redis, runs them in wasmtime with their limits and grants, and talks to the engine for
//! everything else: it needs the engine's URL, a worker credential and Redis, and neither
//! a database URL nor any user's token. SIGTERM (or Ctrl-C) stops intake and drains the
//! steps in flight before exiting.
//!
//! `crm worker credential create|list|revoke` manage the credentials (an admin's command,
//! run where the database is reachable).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Subcommand;
use crm_queue::Queue;
use crm_runtime::{Runtime, RuntimeConfig};
use crm_worker::{EngineChannel, Worker, WorkerConfig};

use crate::config::Config;

#[derive(clap::Args, Debug)]
pub struct WorkerArgs {
    #[command(subcommand)]
    pub command: Option<CredentialCommand>,
    /// Steps run at the same time (default: CRM_WORKER_CONCURRENCY).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Consumer name in the jobs group (default: host-pid-random).
    #[arg(long)]
    pub id: Option<String>,
    /// Do not compile the current workflow versions' components ahead of their runs: each
    /// is compiled by the first job that needs it (a worker among many workflows with
    /// little memory, or to measure what preparing saves).
    #[arg(long)]
    pub no_prepare: bool,
}

#[derive(Subcommand, Debug)]
pub enum CredentialCommand {
    /// Worker credentials: what a worker shows the engine.
    Credential {
        #[command(subcommand)]
        command: CredentialAction,
    },
}

#[derive(Subcommand, Debug)]
pub enum CredentialAction {
    /// Create a credential and print its secret (shown only this once), for
    /// CRM_WORKER_CREDENTIAL of one or more workers.
    Create {
        /// What the credential is for, e.g. "worker-host-3".
        #[arg(long, default_value = "worker")]
        name: String,
    },
    /// List the credentials (never their secrets).
    List,
    /// Revoke a credential: workers holding it are refused within seconds.
    Revoke { id: i64 },
}

pub async fn run(config: &Config, args: WorkerArgs) -> anyhow::Result<()> {
    match args.command {
        Some(CredentialCommand::Credential { command }) => credential(config, command).await,
        None => {
            crate::telemetry::start(config.metrics_listen.as_deref(), "worker", None).await?;
            work(config, args.concurrency, args.id, !args.no_prepare).await
        }
    }
}

async fn credential(config: &Config, action: CredentialAction) -> anyhow::Result<()> {
    let db = crate::commands::serve::connect(config).await?;
    match action {
        CredentialAction::Create { name } => {
            let (c, secret) =
                crm_store::worker_credentials::create(&db, &name).await.context("creating the credential")?;
            eprintln!(
                "worker credential {} {:?} (shown once; give it to the worker as CRM_WORKER_CREDENTIAL):",
                c.id, c.name
            );
            println!("{secret}");
        }
        CredentialAction::List => {
            for c in crm_store::worker_credentials::list(&db).await? {
                let state = match c.revoked_at {
                    Some(at) => format!("revoked {}", at.to_rfc3339()),
                    None => format!(
                        "last used {}",
                        c.last_used_at.map(|a| a.to_rfc3339()).unwrap_or_else(|| "never".into())
                    ),
                };
                println!("{:>5}  {:<24} created {}  {state}", c.id, c.name, c.created_at.to_rfc3339());
            }
        }
        CredentialAction::Revoke { id } => {
            crm_store::worker_credentials::revoke(&db, id).await?;
            eprintln!("worker credential {id} revoked");
        }
    }
    Ok(())
}

async fn work(config: &Config, concurrency: Option<usize>, id: Option<String>, prepare: bool) -> anyhow::Result<()> {
    let shutdown = shutdown_signal()?;
    let concurrency = concurrency.unwrap_or(config.worker_concurrency).max(1);
    let id = id.unwrap_or_else(default_id);
    let Some(credential) = config.worker_credential.as_deref() else {
        bail!("set CRM_WORKER_CREDENTIAL to a worker credential (`crm worker credential create` on the engine's side)");
    };
    let engine_url = config.engine_url.clone().unwrap_or_else(|| format!("http://{}", config.listen));
    let channel = EngineChannel::new(&engine_url, credential).map_err(|e| anyhow::anyhow!("{e}"))?;
    let queue = Queue::connect(&config.redis_url, &config.redis_prefix).await.context("connecting to Redis")?;
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(config.data_dir.join("cache")),
        // a few spare slots: a step's store is dropped just after its permit is released
        max_instances: u32::try_from(concurrency + 8).unwrap_or(u32::MAX),
        max_memory_bytes: config.worker_max_memory_mb.saturating_mul(1 << 20),
        egress: config.egress_policy()?,
        ..RuntimeConfig::default()
    })
    .context("starting the wasm runtime")?;
    let mut wc = WorkerConfig::new(id);
    if !prepare {
        wc.warm_every = None;
    }
    wc.concurrency = concurrency;
    wc.visibility_timeout = Duration::from_secs(config.worker_visibility_secs.max(1));
    let worker = Worker::connect(wc, queue, Arc::new(runtime), channel)
        .await
        .with_context(|| format!("introducing the worker to the engine at {engine_url}"))?;
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
