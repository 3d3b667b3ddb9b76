//! `crm up`, the README's first command: the whole stack from one process (engine, worker,
//! bot), the examples the README lists deployed from the binary itself, and a clear refusal
//! that writes nothing when PostgreSQL or Redis is not there.

use std::path::Path;
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

/// Processes of the data directory `dir`: those whose command line mentions it (a private
/// postmaster, `redis-server unixsocket:…`) or that work inside it (Postgres's backends).
fn processes_of(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let needle = dir.display().to_string();
    entries
        .flatten()
        .filter_map(|e| {
            let cmdline = String::from_utf8_lossy(&std::fs::read(e.path().join("cmdline")).ok()?).replace('\0', " ");
            let inside = std::fs::read_link(e.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(dir));
            (cmdline.contains(&needle) || inside).then(|| format!("{}: {cmdline}", e.file_name().to_string_lossy()))
        })
        .collect()
}

/// Waits until no process of `dir` is left; the ones still there, if any.
async fn left_behind(dir: &Path) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !processes_of(dir).is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    processes_of(dir)
}

/// A data directory for private servers: a root `crm up` runs Postgres as the `postgres`
/// user, who must reach it.
fn data_dir() -> tempfile::TempDir {
    let data = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(data.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    data
}

/// `crm up` with nothing answering at its URLs, so on private servers under `data`.
fn up_on_nothing(data: &Path) -> std::process::Command {
    let mut cmd = crm();
    crm_testing::process::with_redis_url(&mut cmd, "redis://127.0.0.1:1")
        .env("CRM_DATABASE_URL", "postgres://postgres@127.0.0.1:1/crm")
        .env("CRM_LISTEN", "127.0.0.1:0")
        .env("CRM_DATA_DIR", data)
        .env("RUST_LOG", rust_log("warn"))
        .arg("up");
    cmd
}

/// [`up_on_nothing`] started, once its summary is printed: the process and the API's URL.
async fn start_on_nothing(data: &Path, log: &Path) -> (Process, String) {
    let mut up = Process::spawn("crm up", up_on_nothing(data), log).expect("start crm up");
    let url = up.listening_url(Duration::from_secs(120)).await.unwrap_or_else(|e| panic!("{e}"));
    let deadline = tokio::time::Instant::now() + WAIT;
    while !up.log().contains("stop with Ctrl-C") && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (up, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_with_nothing_running_starts_private_servers_and_stops_them() {
    let data = data_dir();
    let logs = tempfile::tempdir().expect("temp dir");
    let (mut up, url) = start_on_nothing(data.path(), &logs.path().join("up.log")).await;
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
    let running = processes_of(data.path());
    assert!(running.iter().any(|c| c.contains("postgres")), "a private Postgres runs: {running:?}");
    assert!(running.iter().any(|c| c.contains("redis-server")), "a private Redis runs: {running:?}");

    // A second `crm up` on the same data directory refuses instead of fighting over it.
    let second = up_on_nothing(data.path()).output().expect("run a second crm up");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("another `crm up` (pid {}) runs the private servers of CRM_DATA_DIR", up.pid())),
        "{stderr}"
    );

    let status = up.terminate(Duration::from_secs(60)).await.expect("crm up stops on SIGTERM");
    assert!(status.success(), "{status:?}\n{}", up.log());
    assert_eq!(left_behind(data.path()).await, Vec::<String>::new(), "no process is left behind");
}

/// A private server left running on `data` as an older `crm up` killed outright left it:
/// the same program and arguments, no longer anyone's child but this test's.
fn leftover(data: &Path, server: &str) -> std::process::Child {
    let mut cmd = match server {
        "postgres" => {
            let bin = std::fs::read_dir("/usr/lib/postgresql")
                .expect("Debian's postgresql")
                .flatten()
                .map(|e| e.path().join("bin"))
                .find(|b| b.join("postgres").is_file())
                .expect("a postgres program");
            let cluster = data.join("postgres/cluster");
            // As the user the cluster belongs to (`postgres` when the tests run as root).
            let owner = std::fs::metadata(&cluster).expect("the cluster of the first run");
            let mut cmd = std::process::Command::new(bin.join("postgres"));
            cmd.arg("-D").arg(&cluster).arg("-k").arg(data.join("postgres/run")).args([
                "-c",
                "listen_addresses=",
                "-c",
                "unix_socket_permissions=0700",
            ]);
            std::os::unix::process::CommandExt::uid(&mut cmd, std::os::unix::fs::MetadataExt::uid(&owner));
            std::os::unix::process::CommandExt::gid(&mut cmd, std::os::unix::fs::MetadataExt::gid(&owner));
            cmd
        }
        _ => {
            let dir = data.join("redis");
            let mut cmd = std::process::Command::new("redis-server");
            cmd.args(["--port", "0", "--save", "", "--appendonly", "no", "--unixsocket"])
                .arg(dir.join("redis.sock"))
                .arg("--pidfile")
                .arg(dir.join("redis.pid"))
                .arg("--dir")
                .arg(&dir);
            cmd
        }
    };
    cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().expect("start a leftover")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_killed_outright_leaves_no_server_and_the_next_up_starts_on_the_same_data() {
    let data = data_dir();
    let logs = tempfile::tempdir().expect("temp dir");
    let (mut up, url) = start_on_nothing(data.path(), &logs.path().join("first.log")).await;
    let log = up.log();
    let token = log.lines().find_map(|l| l.trim().strip_prefix("export CRM_TOKEN=")).expect("a token").to_string();
    let client = crm_testing::http::client();
    let (status, ann) =
        send(client.post(format!("{url}/api/contacts")).bearer_auth(&token).json(&json!({"name": "Ann"}))).await;
    assert_eq!(status, 201, "{ann}");

    // SIGKILL: `crm up` runs no code of its own to stop anything.
    up.kill();
    assert_eq!(left_behind(data.path()).await, Vec::<String>::new(), "the private servers stop with crm up");

    // The next start on the same data works, and the data is there.
    let (mut up, url) = start_on_nothing(data.path(), &logs.path().join("second.log")).await;
    let (status, contacts) = send(client.get(format!("{url}/api/contacts")).bearer_auth(&token)).await;
    assert_eq!(status, 200, "the first run's token still signs in: {contacts}\n{}", up.log());
    let names: Vec<&str> =
        contacts["items"].as_array().expect("items").iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, vec!["Ann"], "{contacts}");
    let status = up.terminate(Duration::from_secs(60)).await.expect("crm up stops on SIGTERM");
    assert!(status.success(), "{status:?}\n{}", up.log());
    assert_eq!(left_behind(data.path()).await, Vec::<String>::new(), "no process is left behind");

    // Servers an older `crm up` left running on the data directory are stopped cleanly
    // before the new ones start.
    let mut postgres = leftover(data.path(), "postgres");
    let mut redis = leftover(data.path(), "redis");
    let deadline = tokio::time::Instant::now() + WAIT;
    while !(data.path().join("postgres/run/.s.PGSQL.5432").exists() && data.path().join("redis/redis.pid").exists()) {
        assert!(tokio::time::Instant::now() < deadline, "the leftovers did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (mut up, url) = start_on_nothing(data.path(), &logs.path().join("third.log")).await;
    let log = up.log();
    assert!(log.contains(&format!("stopping the private postgres (pid {})", postgres.id())), "{log}");
    assert!(log.contains(&format!("stopping the private redis (pid {})", redis.id())), "{log}");
    assert!(postgres.wait().expect("the leftover postgres").success(), "a clean shutdown");
    assert!(redis.wait().expect("the leftover redis").success(), "a clean shutdown");
    let (status, contacts) = send(client.get(format!("{url}/api/contacts")).bearer_auth(&token)).await;
    assert_eq!(status, 200, "{contacts}\n{}", up.log());
    assert_eq!(contacts["items"].as_array().map(Vec::len), Some(1), "{contacts}");
    let status = up.terminate(Duration::from_secs(60)).await.expect("crm up stops on SIGTERM");
    assert!(status.success(), "{status:?}\n{}", up.log());
    assert_eq!(left_behind(data.path()).await, Vec::<String>::new(), "no process is left behind");
}

#[tokio::test(flavor = "multi_thread")]
async fn up_without_servers_or_their_programs_prints_the_install_command_and_writes_nothing() {
    let nowhere = tempfile::tempdir().expect("an empty directory");
    let data = tempfile::tempdir().expect("temp dir");
    let without_programs = |database_url: &str| {
        let mut cmd = crm();
        let out = crm_testing::process::with_redis_url(&mut cmd, "redis://127.0.0.1:1")
            .env("CRM_DATABASE_URL", database_url)
            .env("CRM_LISTEN", "127.0.0.1:0")
            .env("CRM_DATA_DIR", data.path())
            .env("CRM_POSTGRES_BIN_DIR", nowhere.path())
            .env("CRM_REDIS_BIN_DIR", nowhere.path())
            .arg("up")
            .output()
            .expect("run crm up");
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let install = "\n  sudo apt-get install postgresql redis-server\n";

    // Neither server answers, neither is installed.
    let (ok, stderr) = without_programs("postgres://postgres@127.0.0.1:1/crm");
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("PostgreSQL and Redis are not running and not installed"), "{stderr}");
    assert!(stderr.contains(install), "the command on a line of its own: {stderr}");

    // PostgreSQL answers, Redis neither answers nor is installed: no database is made.
    let name = unique_name("up_no_programs");
    let (ok, stderr) = without_programs(&crm_store::database::with_database(&postgres_url(), &name));
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("Redis is not running and not installed") && stderr.contains(install), "{stderr}");
    assert!(!database_exists(&name).await, "nothing is written before both servers answer");

    let written: Vec<_> =
        std::fs::read_dir(data.path()).expect("the data directory").flatten().map(|e| e.path()).collect();
    assert!(written.is_empty(), "nothing is written into CRM_DATA_DIR: {written:?}");
}
