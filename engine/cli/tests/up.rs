//! `crm up`, the README's first command: the whole stack from one process (engine, worker,
//! bot), the examples the README lists deployed from the binary itself, and a clear refusal
//! that writes nothing when PostgreSQL or Redis is not there.

use std::time::Duration;

use base64::Engine as _;
use crm_testing::process::{Process, crm, rust_log};
use crm_testing::services::{ScratchDb, TestPrefix, database_exists, postgres_url, unique_name};
use crm_testing::{Call, LocalBotApi, TgUser, send};
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const BOT_TOKEN: &str = "5151:up-test-token";

/// The workflows the README's "Example automations (deployed by `crm up`)" table names.
fn readme_examples() -> Vec<String> {
    let readme = std::fs::read_to_string(crm_testing::workspace::root().join("README.md")).expect("README.md");
    let section = readme.split("### Example automations (deployed by `crm up`)").nth(1).expect("the examples section");
    let mut names: Vec<String> = section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.split('|').nth(1))
        .map(str::trim)
        .filter(|cell| cell.starts_with('`'))
        .map(|cell| cell.trim_matches('`').to_string())
        .collect();
    names.sort();
    assert!(names.len() >= 5, "the README's table lists the examples: {names:?}");
    names
}

struct Up {
    // First, so it stops before the database and prefix it uses are removed.
    up: Process,
    url: String,
    token: String,
    scratch: ScratchDb,
    client: reqwest::Client,
    _redis: TestPrefix,
    _data: tempfile::TempDir,
}

impl Up {
    async fn start(purpose: &str, api: &LocalBotApi) -> Up {
        let scratch = ScratchDb::new(purpose, 2).await;
        let redis = TestPrefix::new(purpose);
        let data = tempfile::tempdir().expect("temp dir");
        let mut cmd = crm();
        redis.point(&mut cmd);
        cmd.env("CRM_DATABASE_URL", &scratch.url)
            .env("CRM_LISTEN", "127.0.0.1:0")
            .env("CRM_DATA_DIR", data.path())
            .env("CRM_BOT_TOKEN", api.token())
            .env("CRM_BOT_API_URL", api.url())
            .env("CRM_BOT_POLL_TIMEOUT_SECS", "5")
            .env("RUST_LOG", rust_log("warn"))
            .arg("up");
        let mut up = Process::spawn("crm up", cmd, &data.path().join("up.log")).expect("start crm up");
        let url = up.listening_url(Duration::from_secs(60)).await.unwrap_or_else(|e| panic!("{e}"));
        // The summary ends with this line; the token is printed before it.
        let deadline = tokio::time::Instant::now() + WAIT;
        while !up.log().contains("stop with Ctrl-C") && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = up.log();
        let token = log
            .lines()
            .find_map(|l| l.trim().strip_prefix("export CRM_TOKEN="))
            .unwrap_or_else(|| panic!("crm up prints the first admin's token:\n{log}"))
            .to_string();
        Up { up, url, token, scratch, client: crm_testing::http::client(), _redis: redis, _data: data }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (reqwest::StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.url)).bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        send(req).await
    }
}

async fn say(api: &LocalBotApi, from: &TgUser, text: &str) -> Call {
    let since = api.seq();
    api.send_text(from, text);
    api.reply(from.id, since, WAIT).await.unwrap_or_else(|e| panic!("no reply to {text:?}: {e}"))
}

async fn edited(api: &LocalBotApi, running: &Call) -> Call {
    api.wait_for(running.seq, Duration::from_secs(60), |c| {
        c.method == "editMessageText" && c.message_id() == running.message_id() && c.result.is_some()
    })
    .await
    .expect("the running message is edited into the result")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_deploys_the_readme_examples_from_the_binary_and_the_bot_learns_new_commands_at_once() {
    let api = LocalBotApi::start(BOT_TOKEN).await.expect("local Bot API server");
    let up = Up::start("up_stack", &api).await;

    // Every example the README lists, and nothing it does not.
    let (status, list) = up.call(Method::GET, "/api/workflows?limit=200", None).await;
    assert_eq!(status, 200, "{list}");
    let mut deployed: Vec<String> =
        list["items"].as_array().expect("items").iter().map(|w| w["name"].as_str().unwrap_or("").to_string()).collect();
    deployed.sort();
    assert_eq!(deployed, readme_examples(), "crm up deploys exactly the README's examples");

    // `/qualify` answers from the first start: the bot child, the worker child and the
    // embedded qualify-lead together.
    api.wait_for(0, WAIT, |c| c.method == "getUpdates" && c.result.is_some()).await.expect("the bot polls");
    let ann = TgUser::new(7001, "Ann");
    let (_, me) = up.call(Method::GET, "/api/me", None).await;
    sqlx::query("UPDATE users SET telegram_user_id = $1 WHERE id = $2")
        .bind(ann.id)
        .bind(me["id"].as_i64().expect("the admin's id"))
        .execute(&up.scratch.db.pool)
        .await
        .expect("link the admin to Telegram");
    let (status, lena) =
        up.call(Method::POST, "/api/contacts", Some(json!({"name": "Lena Lead", "email": "lena@example.com"}))).await;
    assert_eq!(status, 201, "{lena}");
    let running = say(&api, &ann, &format!("/qualify {}", lena["id"])).await;
    assert!(running.text().contains("Running qualify-lead"), "{}", running.text());
    let result = edited(&api, &running).await;
    assert!(result.text().contains("Lena Lead") && !result.text().contains("Could not"), "{}", result.text());

    // A workflow deployed while the bot runs: its command works on the next message, not
    // after the next periodic refresh, and Telegram's menu learns it too.
    let echo = base64::engine::general_purpose::STANDARD.encode(std::fs::read(crm_guests::ECHO).expect("echo"));
    let manifest = r#"
name = "hello-echo"
version = "1"
[[triggers]]
kind = "bot_command"
command = "hello"
description = "Say hello"
[[steps]]
id = "echo"
component = "echo"
[result]
template = "hello back"
"#;
    let (status, body) = up
        .call(Method::POST, "/api/workflows", Some(json!({"manifest": manifest, "components": {"echo": echo}})))
        .await;
    assert!(status.is_success(), "{status} {body}");
    let running = say(&api, &ann, "/hello").await;
    assert!(running.text().contains("Running hello-echo"), "{}", running.text());
    assert!(edited(&api, &running).await.text().contains("hello back"));
    let menu = api.calls().into_iter().rfind(|c| c.method == "setMyCommands").expect("commands registered");
    assert!(menu.params["commands"].as_array().expect("list").iter().any(|c| c["command"] == "hello"), "{menu:?}");

    // A command no workflow declares is still unknown.
    let unknown = say(&api, &ann, "/nosuchthing").await;
    assert!(unknown.text().contains("Unknown command /nosuchthing"), "{}", unknown.text());

    let mut up = up;
    let status = up.up.terminate(Duration::from_secs(30)).await.expect("crm up stops on SIGTERM");
    assert!(status.success(), "{status:?}");
}

/// `crm up` with these URLs and no private servers, to completion: (success, stderr).
fn up_with(database_url: &str, redis_url: &str) -> (bool, String) {
    let data = tempfile::tempdir().expect("temp dir");
    let mut cmd = crm();
    let out = crm_testing::process::with_redis_url(&mut cmd, redis_url)
        .env("CRM_DATABASE_URL", database_url)
        .env("CRM_LISTEN", "127.0.0.1:0")
        .env("CRM_DATA_DIR", data.path())
        .env("CRM_PRIVATE_SERVERS", "off")
        .arg("up")
        .output()
        .expect("run crm up");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn up_without_redis_says_how_to_start_it_and_writes_nothing() {
    let name = unique_name("up_no_redis");
    let database_url = crm_store::database::with_database(&postgres_url(), &name);
    let (ok, stderr) = up_with(&database_url, "redis://crm-engine:hunter2@127.0.0.1:1");
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("cannot reach Redis at redis://crm-engine:***@127.0.0.1:1"), "{stderr}");
    // and names the Redis URL setting to change
    assert!(stderr.contains("apt-get install redis-server") && stderr.contains("_REDIS_URL"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "the password is never printed: {stderr}");
    assert!(!database_exists(&name).await, "nothing is written before both servers answer");
}

#[tokio::test(flavor = "multi_thread")]
async fn up_without_postgres_says_how_to_start_it() {
    let (ok, stderr) =
        up_with("postgres://postgres:hunter2@127.0.0.1:1/crm", crm_testing::services::redis_url().as_str());
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("cannot reach PostgreSQL at postgres://postgres:***@127.0.0.1:1/crm"), "{stderr}");
    assert!(stderr.contains("apt-get install postgresql") && stderr.contains("CRM_DATABASE_URL"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "the password is never printed: {stderr}");
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(needle))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_with_nothing_running_starts_private_servers_and_stops_them() {
    let data = tempfile::tempdir().expect("temp dir");
    // A root `crm up` runs Postgres as the `postgres` user, who must reach the directory.
    std::fs::set_permissions(data.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let dir = data.path().display().to_string();
    let mut cmd = crm();
    crm_testing::process::with_redis_url(&mut cmd, "redis://127.0.0.1:1")
        .env("CRM_DATABASE_URL", "postgres://postgres@127.0.0.1:1/crm")
        .env("CRM_LISTEN", "127.0.0.1:0")
        .env("CRM_DATA_DIR", data.path())
        .env("RUST_LOG", rust_log("warn"))
        .arg("up");
    let mut up = Process::spawn("crm up", cmd, &data.path().join("up.log")).expect("start crm up");
    let url = up.listening_url(Duration::from_secs(120)).await.unwrap_or_else(|e| panic!("{e}"));
    let deadline = tokio::time::Instant::now() + WAIT;
    while !up.log().contains("stop with Ctrl-C") && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = up.log();
    assert!(log.contains("PostgreSQL did not answer: started a private one"), "{log}");
    assert!(log.contains("Redis did not answer: started a private one"), "{log}");
    let token = log.lines().find_map(|l| l.trim().strip_prefix("export CRM_TOKEN=")).expect("a token").to_string();
    let client = crm_testing::http::client();
    let (status, ann) =
        send(client.post(format!("{url}/api/contacts")).bearer_auth(&token).json(&json!({"name": "Ann"}))).await;
    assert_eq!(status, 201, "{ann}");
    // The new contact starts score-new-leads, which the worker child runs through the
    // private Redis: the whole run path works on the private servers.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, runs) = send(client.get(format!("{url}/api/runs?limit=10")).bearer_auth(&token)).await;
        let done = runs["items"]
            .as_array()
            .is_some_and(|r| r.iter().any(|run| run["workflow"] == "score-new-leads" && run["status"] == "succeeded"));
        if done {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no finished run: {runs}\n{}", up.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, ready) = send(client.get(format!("{url}/readyz"))).await;
    assert_eq!(status, 200, "Postgres and Redis both answer: {ready}");
    assert!(processes_mentioning(&dir).iter().any(|c| c.contains("postgres")), "a private Postgres runs");
    assert!(processes_mentioning(&dir).iter().any(|c| c.contains("redis-server")), "a private Redis runs");

    let status = up.terminate(Duration::from_secs(60)).await.expect("crm up stops on SIGTERM");
    assert!(status.success(), "{status:?}\n{}", up.log());
    // Postgres's own children exit after it; give them a moment.
    let deadline = tokio::time::Instant::now() + WAIT;
    while !processes_mentioning(&dir).is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(processes_mentioning(&dir), Vec::<String>::new(), "no process is left behind");
}
