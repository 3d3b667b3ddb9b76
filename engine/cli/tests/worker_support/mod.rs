//! A real `crm worker` process for scenario tests: its own scratch database holding every
//! built guest component, its own Redis key prefix and data directory.

#![allow(dead_code, reason = "each test file uses a different part of this module")]

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crm_concepts::capability::{Capability, Grants};
use crm_concepts::step::{AttemptKey, StepInput, StepJob, StepLimits, StepResult};
use crm_queue::Queue;
use crm_store::Db;

pub fn admin_pg_url() -> String {
    std::env::var("CRM_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("CRM_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub struct WorkerHarness {
    pub db: Db,
    pub db_name: String,
    pub db_url: String,
    pub prefix: String,
    pub queue: Queue,
    /// package name (`fixture-echo`, `lead-score`, ...) → stored digest
    pub digests: BTreeMap<String, String>,
    pub data_dir: tempfile::TempDir,
    pub child: Option<Child>,
}

impl WorkerHarness {
    /// A scratch database with every guest component stored, and no worker yet.
    pub async fn prepare(purpose: &str) -> WorkerHarness {
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..12];
        let db_name = format!("crm_t_{purpose}_{suffix}");
        let db_url = Db::create_scratch(&admin_pg_url(), &db_name).await.expect("create scratch database");
        let db = Db::connect(&db_url, 4).await.expect("connect to scratch database");
        let mut digests = BTreeMap::new();
        for (name, path) in crm_guests::ALL {
            let bytes = std::fs::read(path).expect("guest component built");
            let digest = crm_store::components::put(&db, &bytes).await.expect("store component");
            digests.insert(name.to_string(), digest);
        }
        let prefix = format!("crm_t_{purpose}_{suffix}");
        let queue = Queue::connect(&redis_url(), &prefix).await.expect("redis is up");
        let data_dir = tempfile::tempdir().expect("temp dir");
        WorkerHarness { db, db_name, db_url, prefix, queue, digests, data_dir, child: None }
    }

    /// Starts `crm worker` and waits until it has announced itself with a heartbeat.
    pub async fn start_worker(&mut self, extra_env: &[(&str, &str)]) {
        let log = std::fs::File::create(self.data_dir.path().join("worker.log")).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_crm"));
        cmd.args(["worker", "--concurrency", "8", "--id", "test-worker"])
            .env("CRM_DATABASE_URL", &self.db_url)
            .env("CRM_REDIS_URL", redis_url())
            .env("CRM_REDIS_PREFIX", &self.prefix)
            .env("CRM_DATA_DIR", self.data_dir.path())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("start crm worker"));
        let started = Instant::now();
        loop {
            let live = self.queue.live_workers(Duration::from_secs(30)).await.expect("redis");
            if live.iter().any(|w| w.id == "test-worker") {
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("crm worker exited at start with {status}:\n{}", self.log());
            }
            assert!(started.elapsed() < Duration::from_secs(30), "crm worker did not start:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.path().join("worker.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("worker started").id()
    }

    /// Whether the worker process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn job(
        &self,
        component: &str,
        step: &str,
        caps: &[&str],
        limits: StepLimits,
        input: serde_json::Value,
    ) -> StepJob {
        StepJob {
            key: AttemptKey { run_id: uuid::Uuid::now_v7(), step: step.into(), attempt: 1 },
            workflow: "scenario".into(),
            component: self.digests.get(component).unwrap_or_else(|| panic!("no component {component}")).clone(),
            input: StepInput { run_input: input, deps: Default::default(), config: serde_json::Value::Null },
            grants: Grants::new(caps.iter().map(|c| c.parse::<Capability>().expect("capability"))),
            limits,
            acting_user: None,
        }
    }

    /// Enqueues the jobs and waits for one result per job, by step id.
    pub async fn run(&self, jobs: &[StepJob], within: Duration) -> BTreeMap<String, StepResult> {
        self.queue.enqueue(jobs).await.expect("enqueue");
        self.collect(jobs.len(), within).await
    }

    /// Waits for `count` results, by step id.
    pub async fn collect(&self, count: usize, within: Duration) -> BTreeMap<String, StepResult> {
        let mut results = BTreeMap::new();
        let started = Instant::now();
        while results.len() < count {
            assert!(
                started.elapsed() < within,
                "only {} of {count} results after {within:?}: {:?}\nworker log:\n{}",
                results.len(),
                results.keys().collect::<Vec<_>>(),
                self.log()
            );
            let batch = self.queue.read_results("test", 100, Duration::from_millis(200)).await.expect("read results");
            let ids: Vec<String> = batch.iter().map(|r| r.id.clone()).collect();
            for entry in batch {
                results.insert(entry.result.key.step.clone(), entry.result);
            }
            self.queue.ack_results(&ids).await.expect("ack results");
        }
        results
    }

    /// SIGTERM, then the exit status (killing the worker if it does not stop in `within`).
    pub async fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("worker started");
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid fits"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("send SIGTERM");
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if started.elapsed() > within {
                let _ = child.kill();
                panic!("the worker did not stop within {within:?} of SIGTERM:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn finish(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.db.pool.close().await;
        Db::drop_scratch(&admin_pg_url(), &self.db_name).await;
    }
}

impl Drop for WorkerHarness {
    fn drop(&mut self) {
        // A failed assertion must not leave a worker process behind.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
