//! A real `crm serve` for scenario tests: its own scratch database, a free loopback port,
//! an admin, a manager and a viewer with tokens, killed and cleaned up on drop.
//!
//! ```ignore
//! mod support;
//! let stack = support::TestStack::start("contacts").await;
//! let (status, body) = stack.post("/api/contacts", json!({"name": "Ann"})).await;
//! ```

#![allow(dead_code)] // each test file uses a different part of this module

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crm_concepts::records::Actor;
use crm_concepts::user::{NewUser, Role};
use crm_store::Db;
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub fn admin_pg_url() -> String {
    std::env::var("CRM_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("CRM_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

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
    pub client: reqwest::Client,
    pub admin_id: i64,
    pub admin_token: String,
    pub manager_id: i64,
    pub manager_token: String,
    pub viewer_id: i64,
    pub viewer_token: String,
    child: Child,
}

impl TestStack {
    pub async fn start(purpose: &str) -> TestStack {
        TestStack::start_with(purpose, Options::default()).await
    }

    pub async fn start_with(purpose: &str, options: Options) -> TestStack {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let db_name = format!("crm_t_{purpose}_{}", &suffix[..12]);
        let db_url = Db::create_scratch(&admin_pg_url(), &db_name).await.expect("create scratch database");
        let db = Db::connect(&db_url, 4).await.expect("connect to scratch database");

        let mut people = Vec::new();
        for (name, role) in [("Ada Admin", Role::Admin), ("Max Manager", Role::Manager), ("Vic Viewer", Role::Viewer)] {
            let user = crm_store::users::create(
                &db,
                &Actor::system(),
                NewUser { name: name.into(), email: None, role, telegram_user_id: None },
            )
            .await
            .expect("create test user");
            let (_, token) = crm_store::tokens::create(&db, user.id, "test").await.expect("create test token");
            people.push((user.id, token));
        }

        let mut cmd = Command::new(env!("CARGO_BIN_EXE_crm"));
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .args(&options.args)
            .env("CRM_DATABASE_URL", &db_url)
            .env("CRM_REDIS_URL", redis_url())
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
            .envs(options.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start crm serve");
        let stdout = child.stdout.take().expect("stdout of crm serve");
        let url = tokio::time::timeout(
            Duration::from_secs(30),
            tokio::task::spawn_blocking(move || {
                let mut reader = BufReader::new(stdout);
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 {
                    if let Some(url) = line.trim().strip_prefix("crm api listening on ") {
                        let url = url.to_string();
                        // keep draining so the server never blocks on a full pipe
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

        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("http client");
        let [(admin_id, admin_token), (manager_id, manager_token), (viewer_id, viewer_token)] =
            <[(i64, String); 3]>::try_from(people).expect("three test users");
        TestStack {
            url,
            db_url,
            db_name,
            db,
            client,
            admin_id,
            admin_token,
            manager_id,
            manager_token,
            viewer_id,
            viewer_token,
            child,
        }
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

/// Sends and returns the status and the JSON body (`Value::Null` for an empty body).
pub async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.expect("request to crm serve");
    let status = resp.status();
    let bytes = resp.bytes().await.expect("response body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("response is not JSON ({status}): {}", String::from_utf8_lossy(&bytes)))
    };
    (status, body)
}

impl Drop for TestStack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let name = self.db_name.clone();
        // Drop runs inside the test's runtime, which cannot block on async work: clean up
        // from a thread with its own small runtime.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                rt.block_on(Db::drop_scratch(&admin_pg_url(), &name));
            }
        })
        .join();
    }
}
