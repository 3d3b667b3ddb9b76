//! One real `crm worker` against a real engine, for tests about the worker itself: each
//! job is a one-step workflow deployed with exactly the grants and limits the test gives,
//! its run started through the API, and its result read back from the run's history as the
//! engine recorded it. The worker gets what a production worker gets (the engine's URL, a
//! worker credential, Redis) and no database.

use std::collections::BTreeMap;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use crm_concepts::step::{AttemptKey, LogLine, StepError, StepLimits, StepOutcome, StepResult, StepUsage};
use crm_queue::Queue;
use crm_store::Db;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::flow::Flow;

/// The consumer name of the harness's worker.
pub const WORKER_ID: &str = "test-worker";
/// The step id of every harness workflow.
pub const STEP: &str = "step";

pub struct WorkerHarness {
    pub flow: Flow,
    pub db: Db,
    pub prefix: String,
    pub queue: Queue,
    /// package name (`fixture-echo`, `lead-score`, ...) → stored digest
    pub digests: BTreeMap<String, String>,
    worker: Option<usize>,
}

/// A step to run: its workflow (deployed by [`WorkerHarness::job`]) and its run input.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub workflow: String,
    pub input: Value,
}

/// Jobs whose runs were started, by job name.
pub type Started = BTreeMap<String, Uuid>;

fn workflow_name(job: &str) -> String {
    let cleaned: String =
        job.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    format!("t-{cleaned}")
}

fn timeout_text(ms: u64) -> String {
    format!("{ms}ms")
}

impl WorkerHarness {
    /// An engine on a scratch database holding every built guest component, and no worker.
    pub async fn prepare(purpose: &str) -> WorkerHarness {
        let flow = Flow::start(purpose).await;
        let mut digests = BTreeMap::new();
        for (name, path) in crm_guests::ALL {
            let bytes = std::fs::read(path).expect("guest component built");
            let digest = crm_store::components::put(&flow.db, &bytes).await.expect("store component");
            digests.insert(name.to_string(), digest);
        }
        let queue = flow.queue().await;
        WorkerHarness { db: flow.db.clone(), prefix: flow.prefix.clone(), queue, digests, flow, worker: None }
    }

    /// Starts `crm worker` and waits until it has announced itself with a heartbeat.
    pub async fn start_worker(&mut self, extra_env: &[(&str, &str)]) {
        self.start_worker_running(8, extra_env).await;
    }

    /// A worker that runs at most `concurrency` steps at once.
    pub async fn start_worker_running(&mut self, concurrency: usize, extra_env: &[(&str, &str)]) {
        let index = self.flow.start_worker_with(concurrency, WORKER_ID, extra_env);
        self.worker = Some(index);
        let started = Instant::now();
        loop {
            let live = self.queue.live_workers(Duration::from_secs(30)).await.expect("redis");
            if live.iter().any(|w| w.id == WORKER_ID) {
                return;
            }
            if let Some(status) = self.flow.worker(index).and_then(|w| w.exit_status()) {
                panic!("crm worker exited at start with {status}:\n{}", self.log());
            }
            assert!(started.elapsed() < Duration::from_secs(30), "crm worker did not start:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log(&self) -> String {
        self.worker.map(|i| self.flow.worker_log(i)).unwrap_or_default()
    }

    pub fn pid(&mut self) -> u32 {
        let index = self.worker.expect("worker started");
        self.flow.worker(index).expect("worker running").pid()
    }

    /// Whether the worker process is still running.
    pub fn alive(&mut self) -> bool {
        let Some(index) = self.worker else { return false };
        self.flow.worker(index).is_some_and(|w| w.alive())
    }

    /// Deploys a one-step workflow running `component` with exactly `caps` and `limits`;
    /// `name` names the job in the results.
    pub async fn job(&self, component: &str, name: &str, caps: &[&str], limits: StepLimits, input: Value) -> Job {
        let digest = self.digests.get(component).unwrap_or_else(|| panic!("no component {component}"));
        let workflow = workflow_name(name);
        let caps: Vec<String> = caps.iter().map(|c| format!("{c:?}")).collect();
        let manifest = format!(
            "name = \"{workflow}\"\nversion = \"1\"\n\n[[steps]]\nid = \"{STEP}\"\ncomponent = \"sha256:{digest}\"\n\
             capabilities = [{}]\ntimeout = \"{}\"\nmemory_mb = {}\nretry = {{ max_attempts = 1 }}\n",
            caps.join(", "),
            timeout_text(limits.timeout_ms),
            (limits.memory_bytes >> 20).max(1),
        );
        let (status, body) = self.flow.post("/api/workflows", json!({ "manifest": manifest, "components": {} })).await;
        assert!(status.is_success(), "deploying {workflow}: {status} {body}");
        Job { name: name.to_string(), workflow, input }
    }

    /// Starts the jobs' runs through the API.
    pub async fn start(&self, jobs: &[Job]) -> Started {
        let mut started = BTreeMap::new();
        for job in jobs {
            started.insert(job.name.clone(), self.flow.start_run(&job.workflow, job.input.clone()).await);
        }
        started
    }

    /// Starts the jobs and waits for one result per job, by job name.
    pub async fn run(&self, jobs: &[Job], within: Duration) -> BTreeMap<String, StepResult> {
        let started = self.start(jobs).await;
        self.collect(&started, within).await
    }

    /// Waits until the started runs are final and reads each one's step result.
    pub async fn collect(&self, started: &Started, within: Duration) -> BTreeMap<String, StepResult> {
        let ids: Vec<Uuid> = started.values().copied().collect();
        let deadline = Instant::now() + within;
        loop {
            let open: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM runs WHERE id = ANY($1) AND status NOT IN ('succeeded', 'failed', 'cancelled')",
            )
            .bind(&ids)
            .fetch_one(&self.db.pool)
            .await
            .expect("read run statuses");
            if open == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{open} of {} runs unfinished after {within:?}\nworker log:\n{}\nengine log:\n{}",
                ids.len(),
                self.log(),
                self.flow.engine_log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut results = BTreeMap::new();
        for (name, run) in started {
            results.insert(name.clone(), self.result_of(*run).await);
        }
        results
    }

    /// The step's last attempt as the engine recorded it.
    async fn result_of(&self, run: Uuid) -> StepResult {
        let (status, output, next): (String, Option<Value>, Option<Vec<String>>) =
            sqlx::query_as("SELECT status, output, next FROM run_steps WHERE run_id = $1 AND step = $2")
                .bind(run)
                .bind(STEP)
                .fetch_one(&self.db.pool)
                .await
                .expect("read the step");
        let (attempt, worker, error, logs, usage): (i32, String, Option<Value>, Value, Value) = sqlx::query_as(
            "SELECT attempt, worker, error, logs, usage FROM step_attempts
             WHERE run_id = $1 AND step = $2 ORDER BY attempt DESC LIMIT 1",
        )
        .bind(run)
        .bind(STEP)
        .fetch_one(&self.db.pool)
        .await
        .expect("read the step's attempt");
        let outcome = if status == "succeeded" {
            StepOutcome::Ok { output: output.unwrap_or(Value::Null).into(), next }
        } else {
            let error: StepError = serde_json::from_value(error.unwrap_or(Value::Null)).expect("a recorded step error");
            StepOutcome::Failed { error }
        };
        StepResult {
            key: AttemptKey { run_id: run, step: STEP.into(), attempt: attempt as u32 },
            outcome,
            usage: serde_json::from_value::<StepUsage>(usage).unwrap_or_default(),
            logs: serde_json::from_value::<Vec<LogLine>>(logs).unwrap_or_default(),
            worker,
        }
    }

    /// The jobs on the stream right now, without taking them: (entry id, payload, signature).
    pub async fn jobs_on_redis(&self) -> Vec<(String, Vec<u8>, Option<String>)> {
        let mut conn = self.flow.redis().connection().await;
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(&self.queue.keys().jobs)
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .expect("XRANGE");
        let field = |e: &redis::streams::StreamId, name: &str| match e.map.get(name) {
            Some(redis::Value::BulkString(b)) => Some(b.clone()),
            _ => None,
        };
        reply
            .ids
            .iter()
            .map(|e| {
                let signature = field(e, "s").and_then(|s| String::from_utf8(s).ok());
                (e.id.clone(), field(e, "p").unwrap_or_default(), signature)
            })
            .collect()
    }

    /// Waits until the engine has put a job for `run` on the stream and returns it as sent.
    pub async fn sent_job(&self, run: Uuid) -> (crm_concepts::step::StepJob, Vec<u8>, String) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            for (_, payload, signature) in self.jobs_on_redis().await {
                if let Ok(job) = serde_json::from_slice::<crm_concepts::step::StepJob>(&payload)
                    && job.key.run_id == run
                {
                    return (job, payload, signature.unwrap_or_default());
                }
            }
            assert!(Instant::now() < deadline, "the engine sent no job for run {run}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then the exit status (killing the worker if it does not stop in `within`).
    pub async fn terminate(&mut self, within: Duration) -> ExitStatus {
        let index = self.worker.expect("worker started");
        let worker = self.flow.worker(index).expect("worker running");
        worker.terminate(within).await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// Stops the processes and removes the database and the keys.
    pub async fn finish(self) {
        drop(self.flow);
    }
}
