//! Configuration: defaults for a local stack, overridden by an optional TOML file, then by
//! `CRM_*` environment variables. Every key is documented in the README.

use std::path::{Path, PathBuf};

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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: "postgres://postgres@127.0.0.1:5432/crm".into(),
            redis_url: "redis://127.0.0.1:6379".into(),
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from(".crm"),
        }
    }
}

impl Config {
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))?
            }
            None => Config::default(),
        };
        config.apply_env(|k| std::env::var(k).ok());
        Ok(config)
    }

    fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) {
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
    }
}

/// Logs go to stderr; `RUST_LOG` picks the level, `CRM_LOG_FORMAT=json` switches to JSON lines.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var("CRM_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
