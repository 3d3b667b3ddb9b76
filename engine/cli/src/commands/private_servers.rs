//! The embedded default of `crm up`: when PostgreSQL or Redis does not answer at its
//! configured URL and the server programs are installed (Debian's `postgresql` and
//! `redis-server`), a private one is started under `CRM_DATA_DIR` for as long as `crm up`
//! runs. Both listen on Unix sockets only (mode 0700), never on a network address; the
//! Postgres cluster is made once with `initdb` and kept, so data survives restarts, while
//! Redis keeps nothing on disk (it is transport). When the programs are missing, the error
//! is the one command that installs them.
//!
//! The servers run in the foreground as children of `crm up`, each told by the kernel to
//! shut down cleanly should `crm up` die ([`parent_death`]). One `crm up` at a time owns a
//! data directory's servers (`private-servers.lock`), and a server an earlier run left
//! behind (an older `crm`, a kill during start) is stopped cleanly before its own starts.
//! The programs are looked up before anything is written.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use nix::sys::signal::Signal;
use tokio::process::{Child, Command};

use crate::commands::parent_death;

/// The Debian packages that bring the servers.
pub const INSTALL: &str = "sudo apt-get install postgresql redis-server";

/// The lock file, in CRM_DATA_DIR, held by the `crm up` that runs the private servers.
const LOCK_FILE: &str = "private-servers.lock";

/// How long a private server may take to accept connections.
const START_WITHIN: Duration = Duration::from_secs(60);

/// How long a server gets to stop cleanly before it is killed.
const STOP_WITHIN: Duration = Duration::from_secs(30);

/// Postgres's "fast" shutdown (roll back, close connections, checkpoint).
const POSTGRES_STOP: Signal = Signal::SIGINT;

/// Redis's clean shutdown.
const REDIS_STOP: Signal = Signal::SIGTERM;

/// Where the server programs are: found before `crm up` writes anything.
pub struct Programs {
    /// the directory of `initdb` and `postgres`
    pub postgres: Option<PathBuf>,
    /// the `redis-server` program
    pub redis: Option<PathBuf>,
}

impl Programs {
    /// The programs of the servers `crm up` needs. `postgres_dir` (CRM_POSTGRES_BIN_DIR) and
    /// `redis_dir` (CRM_REDIS_BIN_DIR) replace the default places when set.
    pub fn find(
        postgres: bool,
        redis: bool,
        postgres_dir: Option<&Path>,
        redis_dir: Option<&Path>,
    ) -> anyhow::Result<Programs> {
        let programs = Programs {
            postgres: if postgres { postgres_bin(postgres_dir) } else { None },
            redis: if redis { redis_server(redis_dir) } else { None },
        };
        let missing = match (postgres && programs.postgres.is_none(), redis && programs.redis.is_none()) {
            (true, true) => Some(("PostgreSQL and Redis are", "CRM_DATABASE_URL and CRM_REDIS_URL")),
            (true, false) => Some(("PostgreSQL is", "CRM_DATABASE_URL")),
            (false, true) => Some(("Redis is", "CRM_REDIS_URL")),
            (false, false) => None,
        };
        if let Some((servers, urls)) = missing {
            bail!(
                "{servers} not running and not installed. Install them with\n  {INSTALL}\nor set {urls} to servers that run"
            );
        }
        Ok(programs)
    }
}

/// Servers started by this `crm up`, stopped by [`PrivateServers::stop`] (or signalled to
/// stop when dropped, and by the kernel when `crm up` dies).
#[derive(Default)]
pub struct PrivateServers {
    children: Vec<(&'static str, Signal, Child)>,
    /// CRM_DATA_DIR, absolute
    dir: PathBuf,
    lock: Option<std::fs::File>,
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

/// The directory of `initdb` and `postgres`: `dir` when given, else the one on PATH, else
/// Debian's newest `/usr/lib/postgresql/VERSION/bin`.
fn postgres_bin(dir: Option<&Path>) -> Option<PathBuf> {
    let has_both = |bin: &Path| bin.join("initdb").is_file() && bin.join("postgres").is_file();
    if let Some(dir) = dir {
        return has_both(dir).then(|| dir.to_path_buf());
    }
    if let Some(dir) = on_path("initdb").and_then(|p| p.parent().map(Path::to_path_buf)) {
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| has_both(bin))
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// `redis-server`: in `dir` when given, else on PATH.
fn redis_server(dir: Option<&Path>) -> Option<PathBuf> {
    match dir {
        Some(dir) => Some(dir.join("redis-server")).filter(|p| p.is_file()),
        None => on_path("redis-server"),
    }
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(program)).find(|p| p.is_file()))
}

impl PrivateServers {
    /// Takes CRM_DATA_DIR's servers for this `crm up`: refuses while another one holds them.
    /// The lock goes with this process, however it ends.
    pub fn lock(data_dir: &Path) -> anyhow::Result<PrivateServers> {
        let dir = absolute(data_dir)?;
        std::fs::create_dir_all(&dir).with_context(|| format!("creating CRM_DATA_DIR {}", dir.display()))?;
        let path = dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() { String::new() } else { format!(" (pid {holder})") };
                bail!(
                    "another `crm up`{holder} runs the private servers of CRM_DATA_DIR {}; stop it first, \
                     or give this one a CRM_DATA_DIR of its own",
                    dir.display()
                )
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
        }
        // Who holds it, for the message above; the lock itself is the flock.
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(PrivateServers { children: Vec::new(), dir, lock: Some(file) })
    }

    /// Starts a private Postgres from `bin`; returns the URL of database `database` on it.
    pub async fn start_postgres(&mut self, bin: &Path, database: &str) -> anyhow::Result<String> {
        let dir = self.dir.join("postgres");
        let (cluster, sockets) = (dir.join("cluster"), dir.join("run"));
        stop_leftover(&cluster.join("postmaster.pid"), &cluster, POSTGRES_STOP, "postgres").await?;
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
        parent_death::signal_on_parent_death(as_user(&mut postgres, user), POSTGRES_STOP);
        let child = postgres.spawn().context("starting postgres")?;
        self.children.push(("postgres", POSTGRES_STOP, child));
        let url = format!("postgres://postgres@localhost/{database}?host={}", sockets.display());
        let admin = format!("postgres://postgres@localhost/postgres?host={}", sockets.display());
        self.wait("postgres", async || crate::commands::preflight::check_postgres(&admin).await.is_ok()).await?;
        Ok(url)
    }

    /// Starts a private Redis from `server` that keeps nothing on disk; returns its URL.
    pub async fn start_redis(&mut self, server: &Path) -> anyhow::Result<String> {
        let dir = self.dir.join("redis");
        let (socket, pidfile) = (dir.join("redis.sock"), dir.join("redis.pid"));
        stop_leftover(&pidfile, &socket, REDIS_STOP, "redis").await?;
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut redis = Command::new(server);
        redis
            .args(["--port", "0", "--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--unixsocket"])
            .arg(&socket)
            .arg("--pidfile")
            .arg(&pidfile)
            .arg("--dir")
            .arg(&dir)
            .stdout(std::fs::File::create(dir.join("redis.log")).context("the Redis log")?)
            .stderr(std::process::Stdio::null());
        parent_death::signal_on_parent_death(&mut redis, REDIS_STOP);
        let child = redis.spawn().context("starting redis-server")?;
        self.children.push(("redis", REDIS_STOP, child));
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
            if let Some((_, _, child)) = self.children.iter_mut().find(|(n, _, _)| *n == name)
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
    /// Redis: SIGTERM) and waits for it; then lets go of the data directory.
    pub async fn stop(mut self) {
        for (name, signal, child) in &mut self.children {
            send(child, *signal);
            if tokio::time::timeout(STOP_WITHIN, child.wait()).await.is_err() {
                tracing::warn!(server = *name, "did not stop in time; killing");
                let _ = child.kill().await;
            }
        }
        self.children.clear();
        self.lock.take();
    }
}

impl Drop for PrivateServers {
    /// Not stopped (an error on the way): each server still gets its clean-stop signal.
    fn drop(&mut self) {
        for (_, signal, child) in &self.children {
            send(child, *signal);
        }
    }
}

/// Sends a running child its clean-stop signal (nothing once it has been reaped).
fn send(child: &Child, signal: Signal) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
    }
}

/// A server an earlier `crm up` left running on this data directory: `pidfile` names a live
/// process whose command line mentions `mark` (its data directory or socket). It is sent
/// `signal` and waited for; a pid file naming anything else is stale, and the server's own
/// start deals with it.
async fn stop_leftover(pidfile: &Path, mark: &Path, signal: Signal, name: &str) -> anyhow::Result<()> {
    let Some(pid) = std::fs::read_to_string(pidfile).ok().and_then(|t| t.lines().next()?.trim().parse::<i32>().ok())
    else {
        return Ok(());
    };
    if !runs(pid, mark) {
        return Ok(());
    }
    println!("stopping the private {name} (pid {pid}) an earlier crm up left running");
    let target = nix::unistd::Pid::from_raw(pid);
    nix::sys::signal::kill(target, signal).with_context(|| format!("stopping the leftover {name} (pid {pid})"))?;
    let deadline = tokio::time::Instant::now() + STOP_WITHIN;
    while runs(pid, mark) {
        if tokio::time::Instant::now() > deadline {
            bail!("the private {name} an earlier crm up left running (pid {pid}) did not stop within {STOP_WITHIN:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Process `pid` is alive (not a zombie) and its command line mentions `mark`.
fn runs(pid: i32, mark: &Path) -> bool {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let zombie = std::fs::read_to_string(proc.join("stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(true);
    let cmdline = std::fs::read(proc.join("cmdline")).unwrap_or_default();
    let mark = mark.as_os_str().as_encoded_bytes();
    !zombie && !mark.is_empty() && cmdline.windows(mark.len()).any(|w| w == mark)
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
