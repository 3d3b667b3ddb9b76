//! `crm` processes started by tests (and by `crm bench bot`): a command that cannot reach
//! the default installation, and a running process whose output goes to a log file, whose
//! "listening on http://…" line can be awaited, and which is killed and reaped on drop.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Where a `crm` process given no database of its own would connect: nowhere, so it fails
/// instead of using the default installation's database.
pub const NO_DATABASE: &str = "postgres://nobody@127.0.0.1:1/none";
/// Likewise for Redis.
pub const NO_REDIS: &str = "redis://127.0.0.1:1";
/// The key prefix of a `crm` process given no prefix of its own; never the installation's `crm`.
pub const NO_PREFIX: &str = "crm_t_no_prefix";

/// What a `crm` process prints once its HTTP server accepts connections.
const LISTENING: &str = "listening on http://";
/// How many lines of a process's log a failure message quotes.
const LOG_TAIL_LINES: usize = 60;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot start {name}: {source}")]
    Spawn { name: String, source: std::io::Error },
    #[error("{name} exited with {status}; its log:\n{log}")]
    Exited { name: String, status: ExitStatus, log: String },
    #[error("{name} did not report its address within {within:?}; its log:\n{log}")]
    NotListening { name: String, within: Duration, log: String },
    #[error("{name} did not stop within {within:?} of SIGTERM; its log:\n{log}")]
    StillRunning { name: String, within: Duration, log: String },
}

/// The `crm` binary of this build. Cargo builds it for the `crm` package's integration tests
/// and tells them where it is; elsewhere it is found next to the running test executable.
pub fn crm_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("CARGO_BIN_EXE_crm") {
        return path.into();
    }
    let exe = std::env::current_exe().expect("the path of the running test");
    let mut dir = exe.parent().expect("the test runs from a directory").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join(format!("crm{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "no crm binary at {}: only the crm package's (engine/cli) integration tests have it built",
        bin.display()
    );
    bin
}

/// `crm` with no settings of the test's environment: every inherited `CRM_*` variable
/// (a developer's `CRM_DATABASE_URL`, `CRM_CONFIG`, ...) is removed, and the database and
/// Redis point nowhere until the caller sets the test's own.
pub fn crm() -> Command {
    command(&crm_bin())
}

/// [`crm`] for a given binary (`crm bench bot` passes its own executable).
pub fn command(bin: &Path) -> Command {
    let mut cmd = Command::new(bin);
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("CRM_")) {
            cmd.env_remove(&key);
        }
    }
    cmd.env("CRM_DATABASE_URL", NO_DATABASE)
        .env("CRM_REDIS_URL", NO_REDIS)
        .env("CRM_REDIS_PREFIX", NO_PREFIX)
        .stdin(Stdio::null());
    cmd
}

/// Points a [`crm`] process at a Redis of the test's choosing while its prefix stays
/// [`NO_PREFIX`], which no installation uses: a closed port, to see what `crm` says when
/// Redis is down, or the test Redis for a command that must fail before it writes.
pub fn with_redis_url<'c>(cmd: &'c mut Command, url: &str) -> &'c mut Command {
    cmd.env("CRM_REDIS_URL", url)
}

/// `RUST_LOG` for a started process: the test's own if set, else `default`.
pub fn rust_log(default: &str) -> String {
    std::env::var("RUST_LOG").unwrap_or_else(|_| default.to_string())
}

/// The metrics URL a process printed (`crm ROLE metrics on http://ADDR/metrics`) in the log
/// `log` reads, waiting up to 30 s for it.
pub async fn metrics_url(log: impl Fn() -> String) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = log();
        if let Some(url) = text
            .lines()
            .find(|l| l.contains(" metrics on http://"))
            .and_then(|l| l.split_whitespace().find(|w| w.starts_with("http://")))
        {
            return url.to_string();
        }
        assert!(tokio::time::Instant::now() < deadline, "no metrics address printed:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A running process, killed and reaped when dropped. Its stdout and stderr go to one log
/// file, so a test shows a process's output only when it fails (the log's tail is printed
/// when a test panics while this is alive).
pub struct Process {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    /// Starts `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Process, ProcessError> {
        let spawn_error = |source| ProcessError::Spawn { name: name.to_string(), source };
        let file = OpenOptions::new().create(true).append(true).open(log).map_err(spawn_error)?;
        let err = file.try_clone().map_err(spawn_error)?;
        let child = cmd.stdout(file).stderr(err).spawn().map_err(spawn_error)?;
        Ok(Process { name: name.to_string(), child: Some(child), log: log.to_path_buf() })
    }

    /// Waits for the process to print where it listens and returns that URL
    /// (`http://127.0.0.1:41234`).
    pub async fn listening_url(&mut self, within: Duration) -> Result<String, ProcessError> {
        let deadline = Instant::now() + within;
        loop {
            let log = self.log();
            if let Some(at) = log.find(LISTENING) {
                let rest = &log[at + LISTENING.len() - "http://".len()..];
                let url = rest.split_whitespace().next().unwrap_or_default();
                // The whole line is there once its newline is: stdout is line-buffered.
                if rest.len() > url.len() {
                    return Ok(url.to_string());
                }
            }
            if let Some(status) = self.exit_status() {
                return Err(ProcessError::Exited { name: self.name.clone(), status, log: self.log_tail() });
            }
            if Instant::now() > deadline {
                return Err(ProcessError::NotListening { name: self.name.clone(), within, log: self.log_tail() });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Everything the process printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines of the log, for a failure message.
    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The exit status, once it has exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    pub fn alive(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGKILL: no graceful shutdown, whatever it held in memory is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then the exit status; killed if it does not stop `within`.
    pub async fn terminate(&mut self, within: Duration) -> Result<ExitStatus, ProcessError> {
        let Some(child) = self.child.as_mut() else {
            panic!("{} was already stopped", self.name);
        };
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("a pid fits an i32"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("send SIGTERM");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.exit_status() {
                self.child = None;
                return Ok(status);
            }
            if Instant::now() > deadline {
                let log = self.log_tail();
                self.kill();
                return Err(ProcessError::StillRunning { name: self.name.clone(), within, log });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let running = self.child.is_some();
        self.kill();
        // The harness panicking is a failing test: what the process said is the first clue,
        // and the test runner shows a failing test's stderr.
        if running && std::thread::panicking() {
            eprintln!("--- last lines of {} ({}):\n{}\n---", self.name, self.log.display(), self.log_tail());
        }
    }
}
