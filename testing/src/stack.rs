//! A real `crm serve` for scenario tests: its own scratch database and Redis key prefix, a
//! free loopback port, an admin, a manager and a viewer with tokens; killed and cleaned up
//! on drop.
//!
//! ```ignore
//! let stack = crm_testing::TestStack::start("contacts").await;
//! let (status, body) = stack.post("/api/contacts", json!({"name": "Ann"})).await;
//! ```

use std::process::Command;
use std::time::Duration;

use crm_concepts::user::Role;
use crm_store::Db;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::http::send;
use crate::process::{Process, crm, rust_log};
use crate::services::{ScratchDb, TestPrefix};

/// Extra settings for [`TestStack::start_with`].
#[derive(Default, Clone)]
pub struct Options {
    /// environment for the `crm serve` process (CRM_* settings)
    pub env: Vec<(String, String)>,
    /// extra arguments after `crm serve --listen 127.0.0.1:0`
    pub args: Vec<String>,
}

pub struct TestStack {
    /// e.g. `http://127.0.0.1:41234`
    pub url: String,
    pub db_url: String,
    pub db_name: String,
    /// a pool on the scratch database, for checking what a request left behind
    pub db: Db,
    /// the Redis key prefix of this stack's processes
    pub prefix: String,
    pub client: reqwest::Client,
    pub admin_id: i64,
    pub admin_token: String,
    pub manager_id: i64,
    pub manager_token: String,
    pub viewer_id: i64,
    pub viewer_token: String,
    /// a delegate token of the admin, as the bot holds
    pub bot_token: String,
    serve: Process,
    // Dropped after the process that uses them.
    scratch: ScratchDb,
    redis: TestPrefix,
    data_dir: tempfile::TempDir,
}

impl TestStack {
    pub async fn start(purpose: &str) -> TestStack {
        TestStack::start_with(purpose, Options::default()).await
    }

    pub async fn start_with(purpose: &str, options: Options) -> TestStack {
        let scratch = ScratchDb::new(purpose, 4).await;
        let redis = TestPrefix::new(purpose);
        let data_dir = tempfile::tempdir().expect("temp dir");
        let (admin_id, admin_token) = crate::users::with_token(&scratch.db, "Ada Admin", Role::Admin).await;
        let (manager_id, manager_token) = crate::users::with_token(&scratch.db, "Max Manager", Role::Manager).await;
        let (viewer_id, viewer_token) = crate::users::with_token(&scratch.db, "Vic Viewer", Role::Viewer).await;
        let bot_token = crate::users::delegate_token(&scratch.db, admin_id).await;

        let mut cmd = services_command(&scratch, &redis, &data_dir);
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .args(&options.args)
            .env("RUST_LOG", rust_log("warn"))
            .envs(options.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut serve =
            Process::spawn("crm serve", cmd, &data_dir.path().join("serve.log")).unwrap_or_else(|e| panic!("{e}"));
        let url = serve.listening_url(Duration::from_secs(30)).await.unwrap_or_else(|e| panic!("{e}"));
        TestStack {
            url,
            db_url: scratch.url.clone(),
            db_name: scratch.name.clone(),
            db: scratch.db.clone(),
            prefix: redis.as_str().to_string(),
            client: crate::http::client(),
            admin_id,
            admin_token,
            manager_id,
            manager_token,
            viewer_id,
            viewer_token,
            bot_token,
            serve,
            scratch,
            redis,
            data_dir,
        }
    }

    /// `crm ARGS` on this stack's database, Redis prefix and data directory (another replica,
    /// a worker, an admin command).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = services_command(&self.scratch, &self.redis, &self.data_dir);
        cmd.args(args).env("RUST_LOG", rust_log("warn"));
        cmd
    }

    /// Starts `crm ARGS` on this stack's services, logging to a file of its own.
    pub fn spawn(&self, name: &str, args: &[&str]) -> Process {
        let log = self.data_dir.path().join(format!("{}.log", uuid::Uuid::new_v4().simple()));
        Process::spawn(name, self.command(args), &log).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts a `crm worker` for this stack's engine, as production starts one: the engine's
    /// URL, a fresh worker credential and Redis; no database.
    pub async fn start_worker(&self, concurrency: usize) -> Process {
        self.start_worker_with(concurrency, &[]).await
    }

    /// [`TestStack::start_worker`] with extra environment (e.g. a `RUST_LOG` that shows what
    /// the test waits for).
    pub async fn start_worker_with(&self, concurrency: usize, env: &[(&str, &str)]) -> Process {
        let (_, credential) =
            crm_store::worker_credentials::create(&self.db, "test").await.expect("create a worker credential");
        let mut cmd = crm();
        cmd.env("CRM_REDIS_URL", self.redis.worker_redis_url())
            .env("CRM_REDIS_PREFIX", self.redis.as_str())
            .env("CRM_DATA_DIR", self.data_dir.path())
            .env("CRM_ENGINE_URL", &self.url)
            .env("CRM_WORKER_CREDENTIAL", credential)
            .env("RUST_LOG", rust_log("warn"))
            .envs(env.iter().copied())
            .args(["worker", "--concurrency", &concurrency.to_string()]);
        let log = self.data_dir.path().join(format!("worker-{}.log", uuid::Uuid::new_v4().simple()));
        Process::spawn("crm worker", cmd, &log).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The key prefix of this stack, to look at what its processes left on Redis.
    pub fn redis(&self) -> &TestPrefix {
        &self.redis
    }

    /// What `crm serve` logged so far.
    pub fn log(&self) -> String {
        self.serve.log()
    }

    /// A request with the admin token.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.request_as(&self.admin_token, method, path)
    }

    pub fn request_as(&self, token: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.url)).bearer_auth(token)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        send(self.request(Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        send(self.request(Method::POST, path).json(&body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        send(self.request(Method::PATCH, path).json(&body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        send(self.request(Method::DELETE, path)).await
    }

    /// One number from the scratch database, e.g. `count("SELECT count(*) FROM outbox")`.
    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.db.pool).await.expect("count query")
    }
}

/// `crm` on a scratch database, a key prefix and a data directory.
pub(crate) fn services_command(scratch: &ScratchDb, redis: &TestPrefix, data_dir: &tempfile::TempDir) -> Command {
    let mut cmd = crm();
    cmd.env("CRM_DATABASE_URL", &scratch.url)
        .env("CRM_REDIS_URL", redis.redis_url())
        .env("CRM_REDIS_PREFIX", redis.as_str())
        .env("CRM_DATA_DIR", data_dir.path());
    cmd
}
