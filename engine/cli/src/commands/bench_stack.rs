//! What the whole-path benchmarks share: the engine and workers as child processes of
//! the bench, stopped whatever happens, and the figures' arithmetic.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use crm_concepts::records::{Actor, Id};
use crm_concepts::user::{NewUser, Role};
use crm_store::Db;
use uuid::Uuid;

use crate::config::Config;

/// An admin of a bench's scratch database and an API token of theirs.
pub async fn bench_admin(db: &Db, token_name: &str) -> anyhow::Result<(Id, String)> {
    let admin = crm_store::users::create(
        db,
        &Actor::system(),
        NewUser { name: "Bench Admin".into(), email: None, role: Role::Admin, telegram_user_id: None, time_zone: None },
    )
    .await?;
    let (_, token) = crm_store::tokens::create(db, admin.id, token_name).await?;
    Ok((admin.id, token))
}

/// A bench's own installation beside the real one: a Redis prefix and a data directory
/// (the compiled-component cache) no other installation uses, removed on drop.
pub struct Scratch {
    pub prefix: String,
    pub data_dir: std::path::PathBuf,
}

impl Scratch {
    /// `installation` is the configured prefix (`crm` by default): the bench's is
    /// `{installation}_bench_{random}`, so a bench started by a test stays among the test's names.
    pub fn new(installation: &str) -> anyhow::Result<Scratch> {
        let prefix = format!("{installation}_bench_{}", &Uuid::new_v4().simple().to_string()[..8]);
        let data_dir = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        Ok(Scratch { prefix, data_dir })
    }

    /// What `crm serve` of this installation is started with.
    pub fn engine_env(&self, config: &Config, db_url: &str) -> Vec<(&'static str, String)> {
        vec![
            ("CRM_DATABASE_URL", db_url.to_string()),
            ("CRM_REDIS_URL", config.redis_url.clone()),
            ("CRM_REDIS_PREFIX", self.prefix.clone()),
            ("CRM_DATA_DIR", self.data_dir.display().to_string()),
            ("CRM_DB_MAX_CONNECTIONS", config.db_max_connections.to_string()),
        ]
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// Child processes, stopped (and reaped) on drop whatever happens.
pub struct Processes(pub Vec<Child>);

impl Drop for Processes {
    /// Stops them in the reverse of their start: workers hand in what they hold before
    /// the engine they hand it to goes.
    fn drop(&mut self) {
        for c in self.0.iter_mut().rev() {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn spawn(exe: &std::path::Path, args: &[&str], env: &[(&str, String)], stdout: Stdio) -> anyhow::Result<Child> {
    let mut cmd = Command::new(exe);
    if args.first() == Some(&"worker") {
        // A worker is never given the database, not even by inheritance.
        cmd.env_remove("CRM_DATABASE_URL");
    }
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting crm {}", args.join(" ")))
}

/// Starts `crm serve` on a free loopback port; returns it with the API's URL.
pub async fn start_engine(exe: &std::path::Path, env: &[(&str, String)]) -> anyhow::Result<(Child, String)> {
    let mut engine = spawn(exe, &["serve", "--listen", "127.0.0.1:0"], env, Stdio::piped())?;
    let stdout = engine.stdout.take().context("engine stdout")?;
    let url = tokio::task::spawn_blocking(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(url) = line.trim().strip_prefix("crm api listening on ") {
                let url = url.to_string();
                // keep draining, so the engine never blocks on a full pipe
                std::thread::spawn(move || for _ in reader.lines() {});
                return Some(url);
            }
            line.clear();
        }
        None
    })
    .await?;
    match url {
        Some(url) => Ok((engine, url)),
        None => {
            let _ = engine.kill();
            let _ = engine.wait();
            anyhow::bail!("the engine exited before listening")
        }
    }
}

/// The `p` quantile of sorted durations, in milliseconds.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Removes what a bench left under its Redis prefix.
pub async fn clean_redis(redis_url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(redis_url) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(crm_queue::Keys::new(prefix).all).query_async(&mut conn).await.unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<(), _> = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await;
    }
}
