//! The embedded default of `crm up`: when PostgreSQL or Redis does not answer at its
//! configured URL and the server programs are installed (Debian's `postgresql` and
//! `redis-server`), a private one is started under `CRM_DATA_DIR` for as long as `crm up`
//! runs. Both listen on Unix sockets only (mode 0700), never on a network address; the
//! Postgres cluster is made once with `initdb` and kept, so data survives restarts, while
//! Redis keeps nothing on disk (it is transport). When the programs are missing, the error
//! is the one command that installs them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// The Debian packages that bring the servers.
pub const INSTALL: &str = "sudo apt-get install postgresql redis-server";

/// How long a private server may take to accept connections.
const START_WITHIN: Duration = Duration::from_secs(60);

/// Servers started by this `crm up`, stopped by [`PrivateServers::stop`] (or killed when
/// dropped).
#[derive(Default)]
pub struct PrivateServers {
    children: Vec<(&'static str, Child)>,
}

/// Whom the servers run as: Postgres refuses to run as root, so a root `crm up` starts it
/// as the `postgres` user the package made.
fn run_as() -> Option<(u32, u32)> {
    // The owner of /proc/self is this process's effective user.
    if std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").ok()?) != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let fields: Vec<&str> = l.split(':').collect();
        (fields.first() == Some(&"postgres"))
            .then(|| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))?
    })
}

/// The directory of `initdb` and `postgres`: on PATH, else Debian's newest
/// `/usr/lib/postgresql/VERSION/bin`.
fn postgres_bin() -> Option<PathBuf> {
    if let Some(dir) = on_path("initdb").and_then(|p| p.parent().map(Path::to_path_buf)) {
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("initdb").is_file() && bin.join("postgres").is_file())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(program)).find(|p| p.is_file()))
}

impl PrivateServers {
    /// Starts a private Postgres; returns the URL of database `database` on it.
    pub async fn start_postgres(&mut self, data_dir: &Path, database: &str) -> anyhow::Result<String> {
        let Some(bin) = postgres_bin() else {
            bail!("PostgreSQL is not running and not installed; install it ({INSTALL}), or set CRM_DATABASE_URL")
        };
        let dir = absolute(data_dir)?.join("postgres");
        let (cluster, sockets) = (dir.join("cluster"), dir.join("run"));
        std::fs::create_dir_all(&sockets).with_context(|| format!("creating {}", sockets.display()))?;
        let user = run_as();
        if let Some((uid, gid)) = user {
            for d in [&dir, &sockets] {
                std::os::unix::fs::chown(d, Some(uid), Some(gid)).with_context(|| format!("chown {}", d.display()))?;
            }
        }
        if !cluster.join("PG_VERSION").is_file() {
            let mut initdb = Command::new(bin.join("initdb"));
            initdb.arg("-D").arg(&cluster).args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
            let out = as_user(&mut initdb, user).output().await.context("running initdb")?;
            if !out.status.success() {
                bail!(
                    "initdb {} failed (the data directory must be reachable by the user it runs as): {}",
                    cluster.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
        let mut postgres = Command::new(bin.join("postgres"));
        postgres
            .arg("-D")
            .arg(&cluster)
            .arg("-k")
            .arg(&sockets)
            .args(["-c", "listen_addresses=", "-c", "unix_socket_permissions=0700"])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("postgres.log")).context("the Postgres log")?);
        let child = as_user(&mut postgres, user).kill_on_drop(true).spawn().context("starting postgres")?;
        self.children.push(("postgres", child));
        let url = format!("postgres://postgres@localhost/{database}?host={}", sockets.display());
        let admin = format!("postgres://postgres@localhost/postgres?host={}", sockets.display());
        self.wait("postgres", async || crate::commands::preflight::check_postgres(&admin).await.is_ok()).await?;
        Ok(url)
    }

    /// Starts a private Redis that keeps nothing on disk; returns its URL.
    pub async fn start_redis(&mut self, data_dir: &Path) -> anyhow::Result<String> {
        let Some(server) = on_path("redis-server") else {
            bail!("Redis is not running and not installed; install it ({INSTALL}), or set CRM_REDIS_URL")
        };
        let dir = absolute(data_dir)?.join("redis");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let socket = dir.join("redis.sock");
        let mut redis = Command::new(server);
        redis
            .args(["--port", "0", "--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--unixsocket"])
            .arg(&socket)
            .arg("--dir")
            .arg(&dir)
            .stdout(std::fs::File::create(dir.join("redis.log")).context("the Redis log")?)
            .stderr(std::process::Stdio::null());
        let child = redis.kill_on_drop(true).spawn().context("starting redis-server")?;
        self.children.push(("redis", child));
        let url = format!("redis+unix://{}", socket.display());
        self.wait("redis", async || crate::commands::preflight::check_redis(&url).await.is_ok()).await?;
        Ok(url)
    }

    async fn wait(&mut self, name: &str, ready: impl AsyncFn() -> bool) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + START_WITHIN;
        loop {
            if ready().await {
                return Ok(());
            }
            if let Some((_, child)) = self.children.iter_mut().find(|(n, _)| *n == name)
                && let Ok(Some(status)) = child.try_wait()
            {
                bail!("the private {name} exited ({status}); its log is under CRM_DATA_DIR/{name}/");
            }
            if tokio::time::Instant::now() > deadline {
                bail!("the private {name} did not accept connections within {START_WITHIN:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops each server the way it shuts down cleanly (Postgres: SIGINT, a fast shutdown;
    /// Redis: SIGTERM) and waits for it.
    pub async fn stop(mut self) {
        for (name, child) in &mut self.children {
            let signal = if *name == "postgres" { nix::sys::signal::SIGINT } else { nix::sys::signal::SIGTERM };
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
            }
            if tokio::time::timeout(Duration::from_secs(30), child.wait()).await.is_err() {
                tracing::warn!(server = *name, "did not stop in time; killing");
                let _ = child.kill().await;
            }
        }
    }
}

fn as_user(cmd: &mut Command, user: Option<(u32, u32)>) -> &mut Command {
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

fn absolute(dir: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(dir).with_context(|| format!("CRM_DATA_DIR {}", dir.display()))
}
