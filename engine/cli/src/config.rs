//! Configuration: defaults for a local stack, overridden by an optional TOML file, then by
//! `CRM_*` environment variables. Every key is documented in the README.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// CRM_DATABASE_URL
    pub database_url: String,
    /// CRM_REDIS_URL
    pub redis_url: String,
    /// CRM_LISTEN: where `crm serve` listens
    pub listen: String,
    /// CRM_DATA_DIR: precompiled component cache and other local state
    pub data_dir: PathBuf,
    /// CRM_DB_MAX_CONNECTIONS: Postgres pool size of `crm serve`
    pub db_max_connections: u32,
    /// CRM_REQUEST_TIMEOUT_SECS: an API request that takes longer is answered with 503
    pub request_timeout_secs: u64,
    /// CRM_BOT_TOKEN: the Telegram bot token; `crm up` starts the bot when it is set, and
    /// the web app verifies Telegram Mini App sign-ins with it
    pub bot_token: Option<String>,
    /// CRM_PUBLIC_URL: where people's browsers reach `crm serve` (sign-in links point
    /// there); default `http://` + the listening address
    pub public_url: Option<String>,
    /// CRM_BOT_API_URL: the Bot API server (Telegram's, or a local Bot API server)
    pub bot_api_url: String,
    /// CRM_ENGINE_URL: the engine API the bot talks to; default `http://` + `listen`
    pub engine_url: Option<String>,
    /// CRM_ENGINE_TOKEN: the bot's delegate API token (`crm token create --delegate`)
    pub engine_token: Option<String>,
    /// CRM_BOT_GROUPS: group chat ids (comma-separated) the bot answers in besides private chats
    pub bot_groups: String,
    /// CRM_BOT_WEBHOOK_URL: public HTTPS URL for webhook mode; long polling when unset
    pub bot_webhook_url: Option<String>,
    /// CRM_BOT_WEBHOOK_LISTEN: where the bot listens for webhook posts
    pub bot_webhook_listen: String,
    /// CRM_BOT_WEBHOOK_SECRET: the secret Telegram sends with each webhook post
    pub bot_webhook_secret: Option<String>,
    /// CRM_BOT_POLL_TIMEOUT_SECS: long-poll duration of getUpdates
    pub bot_poll_timeout_secs: u64,
    /// CRM_BOT_CHAT_INTERVAL_MS: a chat's average: one message per this many milliseconds
    pub bot_chat_interval_ms: u64,
    /// CRM_DEFAULT_CURRENCY: the ISO 4217 code of amounts typed without one
    pub default_currency: String,
    /// CRM_TIME_ZONE: the IANA zone of users who are created without one (each user may
    /// choose their own with the bot's `/settings`, the API or `crm user settings`)
    pub time_zone: String,
    /// CRM_BOT_CHAT_BURST: how many messages a quiet chat may get at once
    pub bot_chat_burst: u32,
    /// CRM_BOT_GROUP_PER_MINUTE: most messages a minute to one group chat
    pub bot_group_per_minute: usize,
    /// CRM_BOT_GLOBAL_PER_SECOND: most messages per second over all chats
    pub bot_global_per_second: usize,
    /// CRM_REDIS_PREFIX: prefix of every Redis key of this installation (engine and workers)
    pub redis_prefix: String,
    /// CRM_STEP_LOST_AFTER_SECS: a step on Redis this long past its timeout without a
    /// result is retried as lost (workers reclaim dead workers' steps much sooner)
    pub step_lost_after_secs: u64,
    /// CRM_SCHEDULER_DURABILITY: `runs` (default: run creation waits for the disk, step
    /// transitions do not) or `strict` (every scheduler commit waits for the disk)
    pub scheduler_durability: String,
    /// CRM_WORKER_CONCURRENCY: steps one `crm worker` runs at the same time
    pub worker_concurrency: usize,
    /// CRM_WORKER_VISIBILITY_SECS: a step held this long by a silent worker is taken over
    /// by another (running workers keep their own steps fresh)
    pub worker_visibility_secs: u64,
    /// CRM_WORKER_MAX_MEMORY_MB: the largest memory cap a step may have on this worker
    pub worker_max_memory_mb: u64,
    /// CRM_WORKER_CREDENTIAL: what `crm worker` shows the engine (`crm worker credential
    /// create`); a worker needs nothing else of the engine's secrets
    pub worker_credential: Option<String>,
    /// CRM_SECRET_KEY: the key secrets are sealed with (32 bytes as base64 or 64 hex digits);
    /// when unset, the key file is used
    pub secret_key: Option<String>,
    /// CRM_SECRET_KEY_FILE: where the key is kept when CRM_SECRET_KEY is unset; made on first
    /// use; default `<data_dir>/secret.key`
    pub secret_key_file: Option<PathBuf>,
    /// CRM_EGRESS_ALLOW: internal address ranges (comma-separated CIDRs or addresses) the
    /// steps' outbound HTTP may reach; none by default
    pub egress_allow: String,
    /// CRM_AUTH_FAILURES_PER_MINUTE: failed authentications one client address may make a
    /// minute (and at once) before it is answered 429
    pub auth_failures_per_minute: u32,
    /// CRM_HOOKS_PER_SECOND: webhook deliveries one client address may make a second (twice
    /// that at once)
    pub hooks_per_second: u32,
    /// CRM_STREAMS_PER_TOKEN: event streams one API token may hold open at once
    pub streams_per_token: usize,
    /// CRM_STREAM_LIFETIME_SECS: an event stream is closed after this long (clients resume)
    pub stream_lifetime_secs: u64,
    /// CRM_METRICS_LISTEN: where this process serves Prometheus `/metrics` (and `/healthz`);
    /// a listener apart from the API, so only what can reach that address may scrape
    pub metrics_listen: Option<String>,
    /// CRM_PRIVATE_SERVERS: `auto` lets `crm up` start a private PostgreSQL and Redis under
    /// the data directory when none answers at the configured URLs; `off` never does
    pub private_servers: String,
    /// CRM_POSTGRES_BIN_DIR: where `crm up` finds `initdb` and `postgres` for a private
    /// PostgreSQL; unset looks on PATH, then in Debian's /usr/lib/postgresql/VERSION/bin
    pub postgres_bin_dir: Option<PathBuf>,
    /// CRM_REDIS_BIN_DIR: where `crm up` finds `redis-server` for a private Redis; unset
    /// looks on PATH
    pub redis_bin_dir: Option<PathBuf>,
    /// CRM_RUN_RETENTION_DAYS: finished runs (with their steps, attempts and logs) and
    /// settled notifications older than this are pruned; unset keeps them forever
    pub run_retention_days: Option<u32>,
    /// CRM_RETENTION_INTERVAL_SECS: how often the engine looks for what to prune
    pub retention_interval_secs: u64,
    /// CRM_THREADS: threads of this process's async runtime; one per core when unset.
    /// Every process sizes its own: on a small machine shared by the engine, workers,
    /// Postgres and Redis, fewer threads per process spend less CPU waking each other.
    pub threads: Option<usize>,
}

/// The most runtime threads a process may ask for.
const MAX_THREADS: usize = 1024;

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: "postgres://postgres@127.0.0.1:5432/crm".into(),
            redis_url: "redis://127.0.0.1:6379".into(),
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from(".crm"),
            db_max_connections: 16,
            request_timeout_secs: 30,
            bot_token: None,
            public_url: None,
            bot_api_url: "https://api.telegram.org".into(),
            engine_url: None,
            engine_token: None,
            bot_groups: String::new(),
            bot_webhook_url: None,
            bot_webhook_listen: "127.0.0.1:8443".into(),
            bot_webhook_secret: None,
            bot_poll_timeout_secs: 25,
            bot_chat_interval_ms: 1000,
            bot_chat_burst: 20,
            default_currency: "USD".into(),
            time_zone: "UTC".into(),
            bot_group_per_minute: 20,
            bot_global_per_second: 30,
            redis_prefix: "crm".into(),
            step_lost_after_secs: 120,
            scheduler_durability: "runs".into(),
            worker_concurrency: 64,
            worker_visibility_secs: 30,
            worker_max_memory_mb: 512,
            worker_credential: None,
            egress_allow: String::new(),
            secret_key: None,
            secret_key_file: None,
            auth_failures_per_minute: 60,
            hooks_per_second: 50,
            streams_per_token: 16,
            stream_lifetime_secs: 30 * 60,
            metrics_listen: None,
            private_servers: "auto".into(),
            postgres_bin_dir: None,
            redis_bin_dir: None,
            run_retention_days: None,
            retention_interval_secs: 3600,
            threads: None,
        }
    }
}

impl Config {
    /// The API's request budgets.
    pub fn limits(&self) -> crm_api::limits::LimitSettings {
        crm_api::limits::LimitSettings {
            auth_failures_burst: self.auth_failures_per_minute,
            auth_failures_per_minute: self.auth_failures_per_minute,
            hooks_burst: self.hooks_per_second.saturating_mul(2),
            hooks_per_second: self.hooks_per_second,
            streams_per_token: self.streams_per_token,
            stream_lifetime: Duration::from_secs(self.stream_lifetime_secs.max(1)),
        }
    }

    /// The key secrets and webhook keys are sealed with: CRM_SECRET_KEY, else the key file
    /// (made with a fresh random key the first time).
    pub fn vault(&self) -> anyhow::Result<crm_vault::Vault> {
        if let Some(text) = &self.secret_key {
            return crm_vault::Vault::from_text(text).context("CRM_SECRET_KEY");
        }
        let path = self.secret_key_file.clone().unwrap_or_else(|| self.data_dir.join("secret.key"));
        crm_vault::Vault::from_file(&path, true).context("CRM_SECRET_KEY_FILE")
    }

    /// What steps' outbound HTTP may reach besides the public internet.
    pub fn egress_policy(&self) -> anyhow::Result<crm_runtime::EgressPolicy> {
        crm_runtime::EgressPolicy::parse(&self.egress_allow).context("CRM_EGRESS_ALLOW")
    }

    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut config = match file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))?
            }
            None => Config::default(),
        };
        config.apply_env(|k| std::env::var(k).ok())?;
        config.read_secret_files(|k| std::env::var(k).ok())?;
        if let Some(n) = config.threads
            && !(1..=MAX_THREADS).contains(&n)
        {
            anyhow::bail!("threads must be from 1 to {MAX_THREADS}, not {n}");
        }
        Ok(config)
    }

    /// CRM_WORKER_CREDENTIAL_FILE and CRM_ENGINE_TOKEN_FILE: the credential in a file (as
    /// `crm bootstrap` writes it, or a mounted secret) when the variable itself is unset.
    fn read_secret_files(&mut self, get: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        for (key, slot) in [
            ("CRM_WORKER_CREDENTIAL_FILE", &mut self.worker_credential),
            ("CRM_ENGINE_TOKEN_FILE", &mut self.engine_token),
        ] {
            if slot.is_none()
                && let Some(path) = get(key).filter(|p| !p.trim().is_empty())
            {
                let text = std::fs::read_to_string(&path).with_context(|| format!("{key}: reading {path}"))?;
                *slot = Some(text.trim().to_string()).filter(|t| !t.is_empty());
            }
        }
        Ok(())
    }

    fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        if let Some(v) = get("CRM_DATABASE_URL") {
            self.database_url = v;
        }
        if let Some(v) = get("CRM_REDIS_URL") {
            self.redis_url = v;
        }
        if let Some(v) = get("CRM_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = get("CRM_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = get("CRM_DB_MAX_CONNECTIONS") {
            self.db_max_connections = v.parse().context("CRM_DB_MAX_CONNECTIONS must be a positive integer")?;
        }
        if let Some(v) = get("CRM_REQUEST_TIMEOUT_SECS") {
            self.request_timeout_secs = v.parse().context("CRM_REQUEST_TIMEOUT_SECS must be a number of seconds")?;
        }
        for (key, slot) in [
            ("CRM_BOT_TOKEN", &mut self.bot_token),
            ("CRM_PUBLIC_URL", &mut self.public_url),
            ("CRM_ENGINE_URL", &mut self.engine_url),
            ("CRM_ENGINE_TOKEN", &mut self.engine_token),
            ("CRM_BOT_WEBHOOK_URL", &mut self.bot_webhook_url),
            ("CRM_BOT_WEBHOOK_SECRET", &mut self.bot_webhook_secret),
            ("CRM_WORKER_CREDENTIAL", &mut self.worker_credential),
            ("CRM_METRICS_LISTEN", &mut self.metrics_listen),
        ] {
            if let Some(v) = get(key) {
                *slot = if v.trim().is_empty() { None } else { Some(v) };
            }
        }
        if let Some(v) = get("CRM_BOT_API_URL") {
            self.bot_api_url = v;
        }
        if let Some(v) = get("CRM_BOT_WEBHOOK_LISTEN") {
            self.bot_webhook_listen = v;
        }
        if let Some(v) = get("CRM_BOT_POLL_TIMEOUT_SECS") {
            self.bot_poll_timeout_secs = v.parse().context("CRM_BOT_POLL_TIMEOUT_SECS must be a number of seconds")?;
        }
        if let Some(v) = get("CRM_BOT_CHAT_INTERVAL_MS") {
            self.bot_chat_interval_ms =
                v.parse().context("CRM_BOT_CHAT_INTERVAL_MS must be a number of milliseconds")?;
        }
        if let Some(v) = get("CRM_DEFAULT_CURRENCY") {
            self.default_currency = v.trim().to_ascii_uppercase();
        }
        if let Some(v) = get("CRM_TIME_ZONE") {
            let zone = crm_concepts::local_time::zone(&v).context("CRM_TIME_ZONE")?;
            self.time_zone = zone.name().to_string();
        }
        if let Some(v) = get("CRM_BOT_CHAT_BURST") {
            self.bot_chat_burst = v.parse().context("CRM_BOT_CHAT_BURST must be a positive integer")?;
        }
        if let Some(v) = get("CRM_BOT_GROUP_PER_MINUTE") {
            self.bot_group_per_minute = v.parse().context("CRM_BOT_GROUP_PER_MINUTE must be a positive integer")?;
        }
        if let Some(v) = get("CRM_BOT_GLOBAL_PER_SECOND") {
            self.bot_global_per_second = v.parse().context("CRM_BOT_GLOBAL_PER_SECOND must be a positive integer")?;
        }
        if let Some(v) = get("CRM_PRIVATE_SERVERS") {
            if !matches!(v.as_str(), "auto" | "off") {
                anyhow::bail!("CRM_PRIVATE_SERVERS must be auto or off, not {v:?}");
            }
            self.private_servers = v;
        }
        for (key, slot) in
            [("CRM_POSTGRES_BIN_DIR", &mut self.postgres_bin_dir), ("CRM_REDIS_BIN_DIR", &mut self.redis_bin_dir)]
        {
            if let Some(v) = get(key) {
                *slot = if v.trim().is_empty() { None } else { Some(v.into()) };
            }
        }
        if let Some(v) = get("CRM_RUN_RETENTION_DAYS") {
            self.run_retention_days = match v.trim() {
                "" => None,
                days => Some(days.parse().ok().filter(|d| (1..=36_500).contains(d)).context(
                    "CRM_RUN_RETENTION_DAYS must be a number of days from 1 to 36500 (unset keeps runs forever)",
                )?),
            };
        }
        if let Some(v) = get("CRM_RETENTION_INTERVAL_SECS") {
            self.retention_interval_secs = v
                .parse()
                .ok()
                .filter(|s| *s > 0)
                .context("CRM_RETENTION_INTERVAL_SECS must be a positive number of seconds")?;
        }
        if let Some(v) = get("CRM_THREADS") {
            self.threads = match v.trim() {
                "" => None,
                n => Some(
                    n.parse()
                        .ok()
                        .filter(|n| (1..=MAX_THREADS).contains(n))
                        .with_context(|| format!("CRM_THREADS must be a number of threads from 1 to {MAX_THREADS} (unset: one per core), not {v:?}"))?,
                ),
            };
        }
        if let Some(v) = get("CRM_REDIS_PREFIX") {
            self.redis_prefix = v;
        }
        if let Some(v) = get("CRM_STEP_LOST_AFTER_SECS") {
            self.step_lost_after_secs = v.parse().context("CRM_STEP_LOST_AFTER_SECS must be a number of seconds")?;
        }
        if let Some(v) = get("CRM_WORKER_CONCURRENCY") {
            self.worker_concurrency = v.parse().context("CRM_WORKER_CONCURRENCY must be a positive integer")?;
        }
        if let Some(v) = get("CRM_WORKER_VISIBILITY_SECS") {
            self.worker_visibility_secs =
                v.parse().context("CRM_WORKER_VISIBILITY_SECS must be a number of seconds")?;
        }
        if let Some(v) = get("CRM_WORKER_MAX_MEMORY_MB") {
            self.worker_max_memory_mb = v.parse().context("CRM_WORKER_MAX_MEMORY_MB must be a number of MiB")?;
        }
        if let Some(v) = get("CRM_SECRET_KEY") {
            self.secret_key = Some(v);
        }
        if let Some(v) = get("CRM_SECRET_KEY_FILE") {
            self.secret_key_file = Some(PathBuf::from(v));
        }
        if let Some(v) = get("CRM_BOT_GROUPS") {
            self.bot_groups = v;
        }
        if let Some(v) = get("CRM_EGRESS_ALLOW") {
            self.egress_allow = v;
        }
        if let Some(v) = get("CRM_AUTH_FAILURES_PER_MINUTE") {
            self.auth_failures_per_minute =
                v.parse().context("CRM_AUTH_FAILURES_PER_MINUTE must be a positive integer")?;
        }
        if let Some(v) = get("CRM_HOOKS_PER_SECOND") {
            self.hooks_per_second = v.parse().context("CRM_HOOKS_PER_SECOND must be a positive integer")?;
        }
        if let Some(v) = get("CRM_STREAMS_PER_TOKEN") {
            self.streams_per_token = v.parse().context("CRM_STREAMS_PER_TOKEN must be a positive integer")?;
        }
        if let Some(v) = get("CRM_STREAM_LIFETIME_SECS") {
            self.stream_lifetime_secs = v.parse().context("CRM_STREAM_LIFETIME_SECS must be a number of seconds")?;
        }
        if let Some(v) = get("CRM_SCHEDULER_DURABILITY") {
            self.scheduler_durability = v;
        }
        Ok(())
    }
}

/// What is exported as trace spans when an OTLP endpoint is set.
const OTLP_FILTER: &str = "info,sqlx=warn,hyper=warn,hyper_util=warn,reqwest=warn,h2=warn";

/// Logs go to stderr; `RUST_LOG` picks the level, `CRM_LOG_FORMAT=json` switches to JSON
/// lines. With an OTLP endpoint configured, spans are exported too (see `crm_traces`) as
/// the service `crm-ROLE`; keep the returned exporter until the end, which flushes it.
pub fn init_tracing(role: &str) -> anyhow::Result<Option<crm_traces::Exporter>> {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if std::env::var("CRM_LOG_FORMAT").as_deref() == Ok("json") { fmt.json().boxed() } else { fmt.boxed() };
    let (otlp, exporter) = match crm_traces::Exporter::start(role)? {
        // Spans are exported whatever RUST_LOG keeps out of the log, at info and above;
        // the HTTP client's own spans never, so exporting does not feed itself.
        Some((layer, exporter)) => {
            (Some(layer.with_filter(tracing_subscriber::EnvFilter::new(OTLP_FILTER))), Some(exporter))
        }
        None => (None, None),
    };
    tracing_subscriber::registry().with(fmt.with_filter(filter)).with(otlp).init();
    Ok(exporter)
}

#[cfg(test)]
mod tests {
    use super::Config;

    #[test]
    fn credentials_come_from_their_files_unless_set_directly() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("credential");
        std::fs::write(&file, "crmw_secret\n").expect("write");
        let path = file.display().to_string();
        let get = |k: &str| (k == "CRM_WORKER_CREDENTIAL_FILE" || k == "CRM_ENGINE_TOKEN_FILE").then(|| path.clone());

        let mut config = Config::default();
        config.read_secret_files(get).expect("read");
        assert_eq!(config.worker_credential.as_deref(), Some("crmw_secret"));
        assert_eq!(config.engine_token.as_deref(), Some("crmw_secret"));

        let mut config = Config { worker_credential: Some("direct".into()), ..Config::default() };
        config.read_secret_files(get).expect("read");
        assert_eq!(config.worker_credential.as_deref(), Some("direct"), "the variable wins over the file");

        let missing = |k: &str| (k == "CRM_WORKER_CREDENTIAL_FILE").then(|| "/nonexistent/credential".to_string());
        let err = Config::default().read_secret_files(missing).expect_err("a missing file is an error");
        assert!(format!("{err:#}").contains("CRM_WORKER_CREDENTIAL_FILE"), "{err:#}");
    }

    #[test]
    fn runtime_threads_are_one_per_core_unless_set_within_bounds() {
        let with = |v: &str| {
            let mut config = Config::default();
            let v = v.to_string();
            config.apply_env(move |k| (k == "CRM_THREADS").then(|| v.clone())).map(|()| config.threads)
        };
        assert_eq!(Config::default().threads, None, "unset: one per core");
        assert_eq!(with("1").unwrap(), Some(1));
        assert_eq!(with(" 4 ").unwrap(), Some(4));
        assert_eq!(with("").unwrap(), None);
        for bad in ["0", "-1", "two", "1025"] {
            let err = with(bad).expect_err(bad);
            assert!(format!("{err:#}").contains("CRM_THREADS must be a number of threads from 1 to 1024"), "{err:#}");
        }
    }
}
