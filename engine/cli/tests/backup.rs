//! Backups, as the README's Backups section says to make and restore them: `pg_dump` of the
//! engine's database, `pg_restore` into a fresh one, and a `crm serve` on the copy (with a
//! fresh Redis prefix and data directory: both are disposable) serves the same records and
//! the same run history, down to each step's attempts.

use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use crm_testing::process::{Process, crm, rust_log};
use crm_testing::services::{TestPrefix, UnmadeDb};
use crm_testing::{TestStack, send};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pg_dump_restored_into_a_fresh_database_serves_the_same_records_and_runs() {
    let stack = TestStack::start("backup").await;
    let (status, ann) = stack.post("/api/contacts", json!({"name": "Ann Archive", "email": "ann@example.com"})).await;
    assert_eq!(status, 201, "{ann}");
    let (status, deal) = stack
        .post("/api/deals", json!({"title": "Tape library", "amount_minor": 120000, "contact_id": ann["id"]}))
        .await;
    assert_eq!(status, 201, "{deal}");
    let echo = base64::engine::general_purpose::STANDARD.encode(std::fs::read(crm_guests::ECHO).expect("echo"));
    let manifest = "name = \"kept\"\nversion = \"1\"\n[[steps]]\nid = \"echo\"\ncomponent = \"echo\"\n";
    let (status, body) =
        stack.post("/api/workflows", json!({"manifest": manifest, "components": {"echo": echo}})).await;
    assert!(status.is_success(), "{body}");
    let _worker = stack.start_worker(2).await;
    let (status, started) = stack.post("/api/runs", json!({"workflow": "kept", "input": {"n": 7}})).await;
    assert_eq!(status, 202, "{started}");
    let run_path = format!("/api/runs/{}", started["id"].as_str().expect("run id"));
    let deadline = tokio::time::Instant::now() + WAIT;
    while stack.get(&run_path).await.1["status"] != "succeeded" {
        assert!(tokio::time::Instant::now() < deadline, "the run did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The README's commands: dump, make a database, restore into it.
    let dir = tempfile::tempdir().expect("temp dir");
    let dump = dir.path().join("crm.dump");
    run(Command::new("pg_dump").arg("--format=custom").arg("--file").arg(&dump).arg(&stack.db_url));
    let restored = UnmadeDb::new("backup_restored");
    restored.create_empty().await;
    run(Command::new("pg_restore").arg("--no-owner").arg("--dbname").arg(&restored.url).arg(&dump));

    // An engine on the copy, with a Redis prefix and a data directory of its own.
    let redis = TestPrefix::new("backup_restored");
    let mut cmd = crm();
    redis.point(&mut cmd);
    cmd.env("CRM_DATABASE_URL", &restored.url)
        .env("CRM_DATA_DIR", dir.path())
        .env("RUST_LOG", rust_log("warn"))
        .args(["serve", "--listen", "127.0.0.1:0"]);
    let mut copy = Process::spawn("crm serve (restored)", cmd, &dir.path().join("serve.log")).expect("start");
    let copy_url = copy.listening_url(WAIT).await.unwrap_or_else(|e| panic!("{e}"));

    let client = crm_testing::http::client();
    for path in ["/api/contacts", "/api/deals", "/api/workflows", "/api/runs?limit=50", run_path.as_str()] {
        let (status, original): (_, Value) = stack.get(path).await;
        assert_eq!(status, 200, "{path}: {original}");
        let (status, copied) = send(client.get(format!("{copy_url}{path}")).bearer_auth(&stack.admin_token)).await;
        assert_eq!(status, 200, "{path} on the restored copy (the same token works): {copied}");
        assert_eq!(copied, original, "{path} is the same after the restore");
    }
    let (_, copied_run) = send(client.get(format!("{copy_url}{run_path}")).bearer_auth(&stack.admin_token)).await;
    assert_eq!(copied_run["status"], "succeeded", "{copied_run}");
}
