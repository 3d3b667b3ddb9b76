//! `crm serve`: the engine's HTTP API.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use crm_scheduler::{Scheduler, SchedulerConfig};
use tokio::net::TcpListener;

use crate::config::Config;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (default: CRM_LISTEN); port 0 picks a free port.
    #[arg(long)]
    pub listen: Option<String>,
    /// Apply pending database migrations before serving.
    #[arg(long)]
    pub migrate: bool,
    /// Let an admin move the engine's clock forward (`POST /api/engine/clock`), for tests
    /// of long waits. Never in production.
    #[arg(long, env = "CRM_TEST_CLOCK")]
    pub test_clock: bool,
}

pub async fn run(config: &Config, args: ServeArgs) -> anyhow::Result<()> {
    let listen = args.listen.unwrap_or_else(|| config.listen.clone());
    let db = connect(config).await?;
    if args.migrate {
        db.migrate().await.context("applying migrations")?;
    }
    let (listener, addr) = bind(&listen).await?;
    // Tests and `crm up` read this line to learn the port.
    println!("crm api listening on http://{addr}");
    println!("crm web app at {}/", public_url(config, addr));
    serve(config, db, listener, args.test_clock, shutdown_signal()).await
}

pub async fn connect(config: &Config) -> anyhow::Result<crm_store::Db> {
    crm_store::Db::connect(&config.database_url, config.db_max_connections)
        .await
        .with_context(|| format!("connecting to {}", crm_store::database::redact(&config.database_url)))
}

pub async fn bind(listen: &str) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(listen).await.with_context(|| format!("listening on {listen}"))?;
    let addr = listener.local_addr().context("reading the listening address")?;
    Ok((listener, addr))
}

/// Where people's browsers reach this engine: `CRM_PUBLIC_URL`, or the listening address.
pub fn public_url(config: &Config, addr: SocketAddr) -> String {
    config.public_url.clone().unwrap_or_else(|| format!("http://{addr}")).trim_end_matches('/').to_string()
}

/// Serves the API and the web app on `listener` until `shutdown` resolves, then lets
/// in-flight requests finish.
pub async fn serve(
    config: &Config,
    db: crm_store::Db,
    listener: TcpListener,
    test_clock: bool,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let redis = crm_queue::Redis::open(config.redis_url.as_str())
        .with_context(|| format!("invalid CRM_REDIS_URL {}", crm_store::database::redact(&config.redis_url)))?;
    let addr = listener.local_addr().context("reading the listening address")?;
    let public_url = public_url(config, addr);
    let vault = std::sync::Arc::new(config.vault()?);
    let sealed = crm_store::secrets::prepare(&db, &vault).await.context("readying the secrets for this key")?;
    if sealed > 0 {
        tracing::info!(sealed, key = vault.id(), "sealed secrets stored before sealing existed");
    }
    crm_store::users::set_default_time_zone(&db, &config.time_zone).await.context("recording CRM_TIME_ZONE")?;
    let mut state = crm_api::Shared::new(db, redis, vault.clone());
    state.request_timeout = Duration::from_secs(config.request_timeout_secs);
    state.limits = std::sync::Arc::new(crm_api::limits::Limits::new(&config.limits()));
    state.public_url = Some(public_url.clone());
    state.default_currency = config.default_currency.clone();
    // The run scheduler (dispatcher, results appliers, reconciler) lives in this process.
    let scheduler = start_scheduler(config, &state.db, vault, test_clock).await?;
    let state = crm_api::AppState::from(state.with_scheduler(scheduler.clone()));
    // Requests trust recently verified tokens only while this hears of every change to them.
    let credentials_stop = tokio_util::sync::CancellationToken::new();
    let credentials = tokio::spawn({
        let (tokens, db, stop) = (state.tokens.clone(), state.db.clone(), credentials_stop.clone());
        async move { tokens.follow(db, stop).await }
    });
    // Cron ticks and record events: every replica runs them, Postgres arbitrates.
    let triggers = crm_triggers::spawn(state.db.pool.clone(), std::sync::Arc::new(scheduler.admission()));
    let web = crm_web::WebState {
        db: state.db.clone(),
        scheduler: state.scheduler.clone(),
        bot_token: config.bot_token.as_deref().map(std::sync::Arc::from),
        secure_cookies: public_url.starts_with("https://"),
        default_currency: config.default_currency.as_str().into(),
    };
    let app = crm_api::observe::layer(crm_web::router(web).merge(crm_api::router(state)));
    let sampled = scheduler.clone();
    let sampler: crate::telemetry::Sampler = std::sync::Arc::new(move || {
        let scheduler = sampled.clone();
        Box::pin(async move {
            crate::telemetry::export_totals("scheduler", &scheduler.metrics());
            scheduler.sample_gauges().await;
        })
    });
    crate::telemetry::start(config.metrics_listen.as_deref(), "engine", Some(sampler)).await?;
    let prune_stop = tokio_util::sync::CancellationToken::new();
    let policy = crm_store::retention::RetentionPolicy { default_days: config.run_retention_days, batch: 500 };
    let pruner = crm_scheduler::retention::spawn(
        scheduler.pool().clone(),
        policy,
        Duration::from_secs(config.retention_interval_secs),
        prune_stop.clone(),
    );
    let served = crm_api::serve(listener, app, shutdown).await.context("serving the API");
    prune_stop.cancel();
    credentials_stop.cancel();
    let _ = pruner.await;
    let _ = credentials.await;
    triggers.shutdown().await;
    scheduler.shutdown().await;
    served
}

async fn start_scheduler(
    config: &Config,
    db: &crm_store::Db,
    vault: std::sync::Arc<crm_vault::Vault>,
    test_clock: bool,
) -> anyhow::Result<Scheduler> {
    let mut sc = SchedulerConfig::new(config.redis_prefix.clone(), vault);
    sc.test_clock = test_clock;
    if test_clock {
        tracing::warn!("the engine's clock may be moved by an admin (--test-clock): for tests only");
    }
    sc.lost_after = Duration::from_secs(config.step_lost_after_secs);
    sc.durability =
        config.scheduler_durability.parse().map_err(|e: String| anyhow::anyhow!("CRM_SCHEDULER_DURABILITY: {e}"))?;
    Scheduler::start(db, &config.redis_url, sc).await.context("starting the run scheduler")
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
