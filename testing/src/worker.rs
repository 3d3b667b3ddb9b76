//! A real `crm worker` process for scenario tests: its own scratch database holding every
//! built guest component, its own Redis key prefix and data directory; the test plays the
//! engine's side of the queue.

use std::collections::BTreeMap;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use crm_concepts::capability::{Capability, Grants};
use crm_concepts::step::{AttemptKey, StepInput, StepJob, StepLimits, StepResult};
use crm_queue::Queue;
use crm_store::Db;

use crate::process::{Process, rust_log};
use crate::services::{ScratchDb, TestPrefix};
use crate::stack::services_command;

/// The consumer name of the harness's worker.
pub const WORKER_ID: &str = "test-worker";

pub struct WorkerHarness {
    pub db: Db,
    pub db_name: String,
    pub db_url: String,
    pub prefix: String,
    pub queue: Queue,
    /// package name (`fixture-echo`, `lead-score`, ...) → stored digest
    pub digests: BTreeMap<String, String>,
    worker: Option<Process>,
    // Dropped after the worker that uses them.
    scratch: ScratchDb,
    redis: TestPrefix,
    data_dir: tempfile::TempDir,
}

impl WorkerHarness {
    /// A scratch database with every guest component stored, and no worker yet.
    pub async fn prepare(purpose: &str) -> WorkerHarness {
        let scratch = ScratchDb::new(purpose, 4).await;
        let mut digests = BTreeMap::new();
        for (name, path) in crm_guests::ALL {
            let bytes = std::fs::read(path).expect("guest component built");
            let digest = crm_store::components::put(&scratch.db, &bytes).await.expect("store component");
            digests.insert(name.to_string(), digest);
        }
        let redis = TestPrefix::new(purpose);
        let queue = redis.queue().await;
        WorkerHarness {
            db: scratch.db.clone(),
            db_name: scratch.name.clone(),
            db_url: scratch.url.clone(),
            prefix: redis.as_str().to_string(),
            queue,
            digests,
            worker: None,
            scratch,
            redis,
            data_dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Starts `crm worker` and waits until it has announced itself with a heartbeat.
    pub async fn start_worker(&mut self, extra_env: &[(&str, &str)]) {
        let mut cmd = services_command(&self.scratch, &self.redis, &self.data_dir);
        cmd.args(["worker", "--concurrency", "8", "--id", WORKER_ID]).env("RUST_LOG", rust_log("info"));
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let log = self.data_dir.path().join("worker.log");
        self.worker = Some(Process::spawn("crm worker", cmd, &log).unwrap_or_else(|e| panic!("{e}")));
        let started = Instant::now();
        loop {
            let live = self.queue.live_workers(Duration::from_secs(30)).await.expect("redis");
            if live.iter().any(|w| w.id == WORKER_ID) {
                return;
            }
            if let Some(status) = self.worker.as_mut().and_then(Process::exit_status) {
                panic!("crm worker exited at start with {status}:\n{}", self.log());
            }
            assert!(started.elapsed() < Duration::from_secs(30), "crm worker did not start:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log(&self) -> String {
        self.worker.as_ref().map(Process::log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.worker.as_ref().expect("worker started").pid()
    }

    /// Whether the worker process is still running.
    pub fn alive(&mut self) -> bool {
        self.worker.as_mut().is_some_and(Process::alive)
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
    pub async fn terminate(&mut self, within: Duration) -> ExitStatus {
        let mut worker = self.worker.take().expect("worker started");
        let status = worker.terminate(within).await.unwrap_or_else(|e| panic!("{e}"));
        // Keep the log readable for the rest of the test.
        self.worker = Some(worker);
        status
    }

    /// Stops the worker and removes the database and the keys, waiting for both.
    pub async fn finish(self) {
        let WorkerHarness { worker, scratch, redis, db, .. } = self;
        drop(worker);
        redis.clear().await;
        db.pool.close().await;
        scratch.close().await;
    }
}
