//! The whole run path as real processes: `crm serve` (API + scheduler) and `crm worker`s
//! on a scratch database and a Redis key prefix of their own, with the controls the
//! scenario tests need: deploy through the CLI, start runs through the API, SIGKILL or
//! restart any process, wipe Redis, and read the recorded history.

#![allow(dead_code)] // each test file uses a different part of this module

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crm_concepts::records::Actor;
use crm_concepts::user::{NewUser, Role};
use crm_store::Db;
use serde_json::{Value, json};
use uuid::Uuid;

pub fn admin_pg_url() -> String {
    std::env::var("CRM_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn default_redis_url() -> String {
    std::env::var("CRM_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn workflows_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../workflows")
}

pub struct Flow {
    pub db: Db,
    pub db_name: String,
    pub db_url: String,
    pub redis_url: String,
    pub prefix: String,
    pub admin_id: i64,
    pub token: String,
    pub url: String,
    pub client: reqwest::Client,
    engine: Option<Child>,
    workers: Vec<Option<Child>>,
    data_dir: tempfile::TempDir,
    /// extra environment for every process
    env: Vec<(String, String)>,
}

impl Flow {
    /// A scratch database with an admin and a token, and a running engine.
    pub async fn start(purpose: &str) -> Flow {
        Flow::start_on(purpose, default_redis_url(), vec![]).await
    }

    pub async fn start_on(purpose: &str, redis_url: String, env: Vec<(String, String)>) -> Flow {
        let suffix = Uuid::new_v4().simple().to_string()[..12].to_string();
        let db_name = format!("crm_t_{purpose}_{suffix}");
        let db_url = Db::create_scratch(&admin_pg_url(), &db_name).await.expect("create scratch database");
        let db = Db::connect(&db_url, 4).await.expect("connect to scratch database");
        let admin = crm_store::users::create(
            &db,
            &Actor::system(),
            NewUser { name: "Ada Admin".into(), email: None, role: Role::Admin, telegram_user_id: None },
        )
        .await
        .expect("create admin");
        let (_, token) = crm_store::tokens::create(&db, admin.id, "test").await.expect("create token");
        let mut flow = Flow {
            db,
            db_name,
            db_url,
            redis_url,
            prefix: format!("crm_t_{purpose}_{suffix}"),
            admin_id: admin.id,
            token,
            url: String::new(),
            client: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("http client"),
            engine: None,
            workers: Vec::new(),
            data_dir: tempfile::tempdir().expect("temp dir"),
            env,
        };
        flow.start_engine().await;
        flow
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_crm"));
        cmd.args(args)
            .env("CRM_DATABASE_URL", &self.db_url)
            .env("CRM_REDIS_URL", &self.redis_url)
            .env("CRM_REDIS_PREFIX", &self.prefix)
            .env("CRM_DATA_DIR", self.data_dir.path())
            .env("CRM_WORKER_VISIBILITY_SECS", "2")
            .env("CRM_RESULTS_VISIBILITY_SECS", "2")
            .env("CRM_STEP_LOST_AFTER_SECS", "20")
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null());
        cmd
    }

    /// Starts `crm serve` and waits until it listens.
    pub async fn start_engine(&mut self) {
        assert!(self.engine.is_none(), "an engine is already running");
        let mut child = self
            .command(&["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start crm serve");
        let stdout = child.stdout.take().expect("stdout of crm serve");
        let url = tokio::time::timeout(
            Duration::from_secs(30),
            tokio::task::spawn_blocking(move || {
                let mut reader = BufReader::new(stdout);
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 {
                    if let Some(url) = line.trim().strip_prefix("crm api listening on ") {
                        let url = url.to_string();
                        std::thread::spawn(move || for _ in reader.lines() {});
                        return Some(url);
                    }
                    line.clear();
                }
                None
            }),
        )
        .await
        .expect("crm serve did not report its address within 30 s")
        .expect("reader thread")
        .expect("crm serve exited before listening");
        self.url = url;
        self.engine = Some(child);
    }

    /// SIGKILL: no graceful shutdown, whatever it held in memory is gone.
    pub fn kill_engine(&mut self) {
        if let Some(mut c) = self.engine.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts a `crm worker`; returns its index for [`Flow::kill_worker`].
    pub fn start_worker(&mut self, concurrency: usize) -> usize {
        let id = format!("worker-{}", self.workers.len());
        self.start_worker_named(concurrency, &id)
    }

    /// A worker whose consumer name (and so the `worker` of its attempts) is `id`.
    pub fn start_worker_named(&mut self, concurrency: usize, id: &str) -> usize {
        let child = self
            .command(&["worker", "--concurrency", &concurrency.to_string(), "--id", id])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start crm worker");
        self.workers.push(Some(child));
        self.workers.len() - 1
    }

    pub fn kill_worker(&mut self, index: usize) {
        if let Some(mut c) = self.workers.get_mut(index).and_then(Option::take) {
            let _ = c.kill();
            let _ = c.wait();
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
        let mut conn = redis::Client::open(self.redis_url.as_str())
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to redis");
        let reply: redis::Value = redis::cmd("XPENDING")
            .arg(format!("{}:jobs", self.prefix))
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

    /// Simulates Redis losing this installation's data: every key under the prefix goes
    /// (the shared Redis of the test machine is never flushed as a whole).
    pub async fn wipe_redis(&self) -> usize {
        let mut conn = redis::Client::open(self.redis_url.as_str())
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to redis");
        let mut cursor: u64 = 0;
        let mut deleted = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}:*", self.prefix))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .expect("scan");
            if !keys.is_empty() {
                let n: usize = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await.expect("del");
                deleted += n;
            }
            if next == 0 {
                return deleted;
            }
            cursor = next;
        }
    }
}

pub async fn send(req: reqwest::RequestBuilder) -> (reqwest::StatusCode, Value) {
    let resp = req.send().await.expect("request to crm serve");
    let status = resp.status();
    let bytes = resp.bytes().await.expect("response body");
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
    (status, body)
}

impl Drop for Flow {
    fn drop(&mut self) {
        self.kill_engine();
        for i in 0..self.workers.len() {
            self.kill_worker(i);
        }
        let name = self.db_name.clone();
        let redis_url = self.redis_url.clone();
        let prefix = self.prefix.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                rt.block_on(async {
                    Db::drop_scratch(&admin_pg_url(), &name).await;
                    if let Ok(client) = redis::Client::open(redis_url.as_str())
                        && let Ok(mut c) = client.get_multiplexed_async_connection().await
                    {
                        let keys: Vec<String> =
                            redis::cmd("KEYS").arg(format!("{prefix}:*")).query_async(&mut c).await.unwrap_or_default();
                        if !keys.is_empty() {
                            let _: Result<(), _> = redis::cmd("DEL").arg(&keys).query_async(&mut c).await;
                        }
                    }
                });
            }
        })
        .join();
    }
}
