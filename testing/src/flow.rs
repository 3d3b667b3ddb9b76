//! The whole run path as real processes: `crm serve` (API + scheduler) and `crm worker`s
//! on a scratch database and a Redis key prefix of their own, with the controls the
//! scenario tests need: deploy through the CLI, start runs through the API, SIGKILL or
//! restart any process, wipe Redis, and read the recorded history.
//!
//! Workers get what a production worker gets: the engine's URL, a worker credential and
//! Redis; their database URL points at nothing. The engine keeps its port across restarts,
//! so workers find it again.

use std::process::Command;
use std::time::{Duration, Instant};

use crm_concepts::user::Role;
use crm_store::Db;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::http::send;
use crate::process::{Process, rust_log};
use crate::services::{ScratchDb, TestPrefix};
use crate::stack::services_command;
use crate::workspace::workflows_dir;

pub struct Flow {
    pub db: Db,
    pub db_name: String,
    pub db_url: String,
    pub redis_url: String,
    pub prefix: String,
    pub admin_id: i64,
    pub token: String,
    /// a delegate token of the admin, for a bot
    pub bot_token: String,
    pub url: String,
    /// what the workers show the engine
    pub worker_credential: String,
    pub client: reqwest::Client,
    /// the engine's address, the same after a restart
    listen: String,
    /// extra `crm serve` arguments (`--test-clock`)
    engine_args: Vec<String>,
    /// extra environment of every process of the flow
    env: Vec<(String, String)>,
    engine: Option<Process>,
    workers: Vec<Option<Process>>,
    /// processes started so far, to give each its own log file
    started: usize,
    // Dropped after the processes that use them.
    scratch: ScratchDb,
    redis: TestPrefix,
    data_dir: tempfile::TempDir,
}

impl Flow {
    /// A scratch database with an admin and a token, and a running engine.
    pub async fn start(purpose: &str) -> Flow {
        Flow::start_on(purpose, TestPrefix::new(purpose), Vec::new()).await
    }

    /// On a private password-protected Redis (as [`Flow::start_with_acl_redis`]), with an
    /// engine whose clock the test moves ([`Flow::advance_clock`]), restarts included.
    pub async fn start_with_test_clock(purpose: &str) -> Flow {
        Flow::start_on(purpose, TestPrefix::acl(purpose).await, vec!["--test-clock".into()]).await
    }

    /// The same on a private Redis with a password, where the engine and the workers connect
    /// as their own ACL users (see `crm_queue::acl`).
    pub async fn start_with_acl_redis(purpose: &str) -> Flow {
        Flow::start_on(purpose, TestPrefix::acl(purpose).await, Vec::new()).await
    }

    /// The same on a private three-master Redis Cluster (`redis+cluster://` URL).
    pub async fn start_with_redis_cluster(purpose: &str) -> Flow {
        Flow::start_on(purpose, TestPrefix::cluster(purpose).await, Vec::new()).await
    }

    /// The same on a private Redis Cluster where the engine and the workers connect as the
    /// ACL users `crm redis-acl` prints.
    pub async fn start_with_acl_redis_cluster(purpose: &str) -> Flow {
        Flow::start_on(purpose, TestPrefix::cluster_with_acl(purpose).await, Vec::new()).await
    }

    /// [`Flow::start`] with extra environment for every process of the flow (engine,
    /// workers, commands), e.g. where to export traces.
    pub async fn start_with_env(purpose: &str, env: &[(&str, &str)]) -> Flow {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Flow::start_on_with(purpose, TestPrefix::new(purpose), Vec::new(), env).await
    }

    async fn start_on(purpose: &str, redis: TestPrefix, engine_args: Vec<String>) -> Flow {
        Flow::start_on_with(purpose, redis, engine_args, Vec::new()).await
    }

    async fn start_on_with(
        purpose: &str,
        redis: TestPrefix,
        engine_args: Vec<String>,
        env: Vec<(String, String)>,
    ) -> Flow {
        let scratch = ScratchDb::new(purpose, 4).await;
        let (admin_id, token) = crate::users::with_token(&scratch.db, "Ada Admin", Role::Admin).await;
        let bot_token = crate::users::delegate_token(&scratch.db, admin_id).await;
        let (_, worker_credential) =
            crm_store::worker_credentials::create(&scratch.db, "test").await.expect("create a worker credential");
        let mut flow = Flow {
            db: scratch.db.clone(),
            db_name: scratch.name.clone(),
            db_url: scratch.url.clone(),
            redis_url: redis.redis_url().to_string(),
            prefix: redis.as_str().to_string(),
            admin_id,
            token,
            bot_token,
            url: String::new(),
            worker_credential,
            client: crate::http::client(),
            // the engine listens there for the whole flow, restarts included
            listen: crate::ports::free_address(),
            engine_args,
            env,
            engine: None,
            workers: Vec::new(),
            started: 0,
            scratch,
            redis,
            data_dir: tempfile::tempdir().expect("temp dir"),
        };
        flow.start_engine().await;
        flow
    }

    /// `crm ARGS` on this flow's database, Redis prefix and data directory (an admin command
    /// on the engine's host, another replica).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = services_command(&self.scratch, &self.redis, &self.data_dir);
        cmd.args(args)
            .env("CRM_WORKER_VISIBILITY_SECS", "2")
            .env("CRM_STEP_LOST_AFTER_SECS", "20")
            .env("RUST_LOG", rust_log("warn"))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd
    }

    /// A worker's command: Redis, the engine and a credential; no database.
    pub fn worker_command(&self, args: &[&str]) -> Command {
        let mut cmd = crate::process::crm();
        cmd.env("CRM_REDIS_URL", self.redis.worker_redis_url())
            .env("CRM_REDIS_PREFIX", self.redis.as_str())
            .env("CRM_DATA_DIR", self.data_dir.path())
            .env("CRM_ENGINE_URL", format!("http://{}", self.listen))
            .env("CRM_WORKER_CREDENTIAL", &self.worker_credential)
            .env("CRM_WORKER_VISIBILITY_SECS", "2")
            .env("RUST_LOG", rust_log("warn"))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(args);
        cmd
    }

    fn spawn(&mut self, name: &str, args: &[&str]) -> Process {
        let cmd = self.command(args);
        self.spawn_command(name, cmd)
    }

    /// Starts `cmd` with its own log file in the flow's data directory.
    pub fn spawn_command(&mut self, name: &str, cmd: Command) -> Process {
        self.started += 1;
        let log = self.data_dir.path().join(format!("{}-{}.log", self.started, name.replace(' ', "-")));
        Process::spawn(name, cmd, &log).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts `crm serve` and waits until it listens.
    pub async fn start_engine(&mut self) {
        assert!(self.engine.is_none(), "an engine is already running");
        let listen = self.listen.clone();
        let mut args = vec!["serve", "--listen", &listen];
        let extra = self.engine_args.clone();
        args.extend(extra.iter().map(String::as_str));
        let mut engine = self.spawn("crm serve", &args);
        self.url = engine.listening_url(Duration::from_secs(30)).await.unwrap_or_else(|e| panic!("{e}"));
        self.engine = Some(engine);
    }

    /// SIGKILL: no graceful shutdown, whatever it held in memory is gone.
    pub fn kill_engine(&mut self) {
        if let Some(mut engine) = self.engine.take() {
            engine.kill();
        }
    }

    /// Starts a `crm worker`; returns its index for [`Flow::kill_worker`].
    pub fn start_worker(&mut self, concurrency: usize) -> usize {
        let id = format!("worker-{}", self.workers.len());
        self.start_worker_named(concurrency, &id)
    }

    /// A worker whose consumer name (and so the `worker` of its attempts) is `id`.
    pub fn start_worker_named(&mut self, concurrency: usize, id: &str) -> usize {
        self.start_worker_with(concurrency, id, &[])
    }

    /// A worker with extra settings (`CRM_*` variables).
    pub fn start_worker_with(&mut self, concurrency: usize, id: &str, env: &[(&str, &str)]) -> usize {
        let mut cmd = self.worker_command(&["worker", "--concurrency", &concurrency.to_string(), "--id", id]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let worker = self.spawn_command("crm worker", cmd);
        self.workers.push(Some(worker));
        self.workers.len() - 1
    }

    /// The worker's output so far.
    pub fn worker_log(&self, index: usize) -> String {
        self.workers.get(index).and_then(Option::as_ref).map(Process::log).unwrap_or_default()
    }

    /// The worker process, to signal or inspect it.
    pub fn worker(&mut self, index: usize) -> Option<&mut Process> {
        self.workers.get_mut(index).and_then(Option::as_mut)
    }

    /// The engine's output so far.
    pub fn engine_log(&self) -> String {
        self.engine.as_ref().map(Process::log).unwrap_or_default()
    }

    /// This flow's key prefix, to read or forge what is on Redis.
    pub fn redis(&self) -> &TestPrefix {
        &self.redis
    }

    /// A handle on this flow's Redis streams.
    pub async fn queue(&self) -> crm_queue::Queue {
        self.redis.queue().await
    }

    pub fn kill_worker(&mut self, index: usize) {
        if let Some(mut worker) = self.workers.get_mut(index).and_then(Option::take) {
            worker.kill();
        }
    }

    /// `crm workflow deploy workflows/<name>` against this engine.
    pub fn deploy(&self, name: &str) -> String {
        self.deploy_dir(&workflows_dir().join(name))
    }

    /// Deploys a manifest written for the test (its components resolved like any other).
    pub fn deploy_manifest(&self, manifest: &str) -> String {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("workflow.toml"), manifest).expect("write manifest");
        self.deploy_dir(dir.path())
    }

    fn deploy_dir(&self, dir: &std::path::Path) -> String {
        let name = dir.display().to_string();
        let out = self
            .command(&[
                "workflow",
                "deploy",
                dir.to_str().expect("utf-8 path"),
                "--engine",
                &self.url,
                "--token",
                &self.token,
            ])
            .output()
            .expect("run crm workflow deploy");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "deploy of {name} failed: {}{}", stdout, String::from_utf8_lossy(&out.stderr));
        stdout
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.url)).bearer_auth(&self.token)
    }

    pub async fn get(&self, path: &str) -> (reqwest::StatusCode, Value) {
        send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (reqwest::StatusCode, Value) {
        send(self.request(reqwest::Method::POST, path).json(&body)).await
    }

    /// Jobs that workers have taken but not finished (the jobs group's pending list).
    pub async fn jobs_in_progress(&self) -> usize {
        let mut conn = self.redis.connection().await;
        let reply: redis::Value = redis::cmd("XPENDING")
            .arg(crm_queue::Keys::new(&self.prefix).jobs)
            .arg("workers")
            .query_async(&mut conn)
            .await
            .unwrap_or(redis::Value::Nil);
        match reply {
            redis::Value::Array(items) => match items.first() {
                Some(redis::Value::Int(n)) => *n as usize,
                _ => 0,
            },
            _ => 0,
        }
    }

    pub async fn start_run(&self, workflow: &str, input: Value) -> Uuid {
        let (status, body) = self.post("/api/runs", json!({"workflow": workflow, "input": input})).await;
        assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{body}");
        body["id"].as_str().and_then(|s| s.parse().ok()).expect("run id")
    }

    /// Starts `n` runs of `workflow` with inputs `{"n": 0}`, `{"n": 1}`, …
    pub async fn start_runs(&self, workflow: &str, n: usize) -> Vec<Uuid> {
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            ids.push(self.start_run(workflow, json!({"n": i})).await);
        }
        ids
    }

    /// Moves the engine's test clock forward by `by` (`"3d"`); see [`Flow::start_with_test_clock`].
    pub async fn advance_clock(&self, by: &str) {
        let (status, body) = self.post("/api/engine/clock", json!({"by": by})).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    }

    /// Waits until the run has `status`, reading Postgres; returns the run as the API
    /// shows it.
    pub async fn wait_status(&self, id: Uuid, status: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let now: String = sqlx::query_scalar("SELECT status FROM runs WHERE id = $1")
                .bind(id)
                .fetch_one(&self.db.pool)
                .await
                .expect("read the run's status");
            if now == status {
                let (_, run) = self.get(&format!("/api/runs/{id}")).await;
                return run;
            }
            assert!(Instant::now() < deadline, "run {id} is {now}, not {status}, after {within:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every run is final, reading Postgres (so it works while the engine is
    /// down); returns their statuses.
    pub async fn wait_final(&self, ids: &[Uuid], within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        loop {
            let statuses: Vec<(Uuid, String)> = sqlx::query_as("SELECT id, status FROM runs WHERE id = ANY($1)")
                .bind(ids)
                .fetch_all(&self.db.pool)
                .await
                .expect("read run statuses");
            let open =
                statuses.iter().filter(|(_, s)| !["succeeded", "failed", "cancelled"].contains(&s.as_str())).count();
            if open == 0 && statuses.len() == ids.len() {
                return statuses.into_iter().map(|(_, s)| s).collect();
            }
            assert!(Instant::now() < deadline, "{open} of {} runs still unfinished after {within:?}", ids.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The history invariants every run must keep, whatever crashed: each step that
    /// succeeded has exactly one succeeded attempt, and the applied attempts of a step are
    /// exactly 1..=its attempt count (none applied twice, none missing).
    pub async fn assert_clean_history(&self, ids: &[Uuid]) {
        let rows: Vec<(Uuid, String, String, i32, Vec<i32>, i64)> = sqlx::query_as(
            "SELECT s.run_id, s.step, s.status, s.attempt,
                    COALESCE(array_agg(a.attempt ORDER BY a.attempt) FILTER (WHERE a.applied), '{}'),
                    count(a.*) FILTER (WHERE a.applied AND a.status = 'succeeded')
             FROM run_steps s LEFT JOIN step_attempts a ON a.run_id = s.run_id AND a.step = s.step
             WHERE s.run_id = ANY($1)
             GROUP BY s.run_id, s.step, s.status, s.attempt",
        )
        .bind(ids)
        .fetch_all(&self.db.pool)
        .await
        .expect("read history");
        assert!(!rows.is_empty());
        for (run, step, status, attempt, applied, succeeded) in rows {
            let expected: Vec<i32> = (1..=attempt).collect();
            if status == "succeeded" {
                assert_eq!(succeeded, 1, "run {run} step {step}: exactly one applied success");
                assert_eq!(applied, expected, "run {run} step {step}: applied attempts 1..={attempt}");
            } else {
                assert_eq!(succeeded, 0, "run {run} step {step} is {status} but has a success");
            }
        }
    }

    /// Redis loses this installation's data: a FLUSHALL on a private Redis, every key under
    /// the prefix on the shared one (which is never flushed as a whole).
    pub async fn wipe_redis(&self) -> usize {
        self.redis.clear().await
    }
}

impl Drop for Flow {
    fn drop(&mut self) {
        // Before the database and the prefix go, so no process writes to them afterwards.
        self.kill_engine();
        for i in 0..self.workers.len() {
            self.kill_worker(i);
        }
    }
}
