//! Secrets: sealed at rest with a key that is not in the database, set and listed without
//! ever being printed back, readable only by steps granted them (never a webhook key),
//! recorded in the activity log when read, and cut out of whatever a step hands back before
//! any viewer can read it.

use std::io::Write;
use std::process::{Output, Stdio};
use std::time::Duration;

use crm_concepts::records::Actor;
use crm_concepts::user::{NewUser, Role};
use crm_testing::{Flow, send};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const STRIPE: &str = "sk_live_51Hx9fakeButLongEnough";

fn crm_secret(flow: &Flow, args: &[&str], stdin: &str) -> Output {
    let mut child = flow
        .command(&[&["secret"], args].concat())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("crm secret");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    let out = child.wait_with_output().expect("crm secret finishes");
    assert!(out.status.success(), "crm secret {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn manifest(name: &str, secret: &str) -> String {
    format!(
        "name = \"{name}\"\nversion = \"1\"\n\n[[steps]]\nid = \"call\"\ncomponent = \"fixture-counter\"\n\
         capabilities = [\"secret:{secret}\", \"state\", \"log\"]\nconfig = {{ secret = \"{secret}\", leak = true }}\n"
    )
}

async fn viewer_token(flow: &Flow) -> String {
    let viewer = crm_store::users::create(
        &flow.db,
        &Actor::system(),
        NewUser { name: "Vic Viewer".into(), email: None, role: Role::Viewer, telegram_user_id: None, time_zone: None },
    )
    .await
    .unwrap();
    crm_store::tokens::create(&flow.db, viewer.id, "test").await.unwrap().1
}

#[tokio::test(flavor = "multi_thread")]
async fn a_step_that_leaks_its_secret_leaks_nothing_a_viewer_can_read() {
    let mut flow = Flow::start("secrets_redact").await;
    let out = crm_secret(&flow, &["set", "STRIPE_KEY"], &format!("{STRIPE}\n"));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(STRIPE)
            && !String::from_utf8_lossy(&out.stderr).contains(STRIPE)
    );
    flow.deploy_manifest(&manifest("charge", "STRIPE_KEY"));
    flow.start_worker(2);

    let run = flow.start_run("charge", json!({})).await;
    assert_eq!(flow.wait_final(&[run], Duration::from_secs(60)).await, ["succeeded"]);

    let viewer = viewer_token(&flow).await;
    let (st, detail) = send(flow.client.get(format!("{}/api/runs/{run}", flow.url)).bearer_auth(&viewer)).await;
    assert_eq!(st, StatusCode::OK);
    let text = detail.to_string();
    assert!(!text.contains(STRIPE), "the secret reached a viewer: {text}");
    let step = &detail["steps"][0];
    assert_eq!(step["output"]["key"], "[secret:STRIPE_KEY]", "{step}");
    let log = &step["attempts"][0]["logs"][0];
    assert_eq!(log["message"], "calling the API with [secret:STRIPE_KEY]", "{log}");
    assert_eq!(log["fields"]["authorization"], "[secret:STRIPE_KEY]", "{log}");
    // Nowhere in Postgres either: not in the run's tables, and the secret itself is sealed.
    let anywhere: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM run_steps WHERE output::text LIKE '%' || $1 || '%')
              + (SELECT count(*) FROM step_attempts WHERE logs::text LIKE '%' || $1 || '%')
              + (SELECT count(*) FROM secrets WHERE value IS NOT NULL OR position($1::bytea IN sealed) > 0)",
    )
    .bind(STRIPE)
    .fetch_one(&flow.db.pool)
    .await
    .unwrap();
    assert_eq!(anywhere, 0);

    // The read is in the activity log, and `crm secret list` counts it (names only).
    let read: (Option<Value>, Option<uuid::Uuid>) =
        sqlx::query_as("SELECT after, origin_run FROM activity WHERE record_kind = 'secret' AND action = 'read'")
            .fetch_one(&flow.db.pool)
            .await
            .unwrap();
    assert_eq!(read.1, Some(run));
    assert_eq!(read.0.unwrap()["name"], "STRIPE_KEY");
    let listed = String::from_utf8(crm_secret(&flow, &["list"], "").stdout).unwrap();
    assert!(listed.contains("STRIPE_KEY") && listed.contains("reads 1") && !listed.contains(STRIPE), "{listed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_step_can_read_a_webhook_key_and_only_operators_manage_secrets() {
    let mut flow = Flow::start("secrets_namespaces").await;
    let (st, key) = flow.post("/api/webhook-keys/SHOP_HMAC", json!({})).await;
    assert_eq!(st, StatusCode::OK, "{key}");
    // A step granted `secret:SHOP_HMAC` asks the step namespace, where there is no such secret.
    flow.deploy_manifest(&manifest("steal-hook-key", "SHOP_HMAC"));
    flow.start_worker(2);
    let run = flow.start_run("steal-hook-key", json!({})).await;
    assert_eq!(flow.wait_final(&[run], Duration::from_secs(60)).await, ["failed"]);
    let (_, detail) = flow.get(&format!("/api/runs/{run}")).await;
    assert!(detail["error"]["message"].as_str().unwrap_or_default().contains("no secret named SHOP_HMAC"), "{detail}");
    assert!(!detail.to_string().contains(key["key"].as_str().unwrap()));

    // Over the API: an admin's own token sets and lists; a viewer can do neither.
    let (st, _) =
        send(flow.request(Method::PUT, "/api/secrets/SLACK_TOKEN").json(&json!({"value": "xoxb-1-2-3"}))).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, listed) = flow.get("/api/secrets").await;
    assert_eq!(listed["items"][0]["name"], "SLACK_TOKEN");
    assert!(!listed.to_string().contains("xoxb"), "{listed}");
    let viewer = viewer_token(&flow).await;
    let (st, _) = send(flow.client.get(format!("{}/api/secrets", flow.url)).bearer_auth(&viewer)).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = send(flow.request(Method::DELETE, "/api/secrets/SLACK_TOKEN")).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_from_before_sealing_are_sealed_and_a_wrong_key_is_refused() {
    let flow = Flow::start("secrets_keys").await;
    // A row as an older release left it: plain text.
    sqlx::query("INSERT INTO secrets (namespace, name, value) VALUES ('step', 'OLD_TOKEN', 'plain-old-token')")
        .execute(&flow.db.pool)
        .await
        .unwrap();
    // Another replica with the installation's key starts and seals it.
    let mut replica = flow.command(&["serve", "--listen", "127.0.0.1:0"]).stdout(Stdio::piped()).spawn().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let plain: i64 = sqlx::query_scalar("SELECT count(*) FROM secrets WHERE value IS NOT NULL")
            .fetch_one(&flow.db.pool)
            .await
            .unwrap();
        if plain == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the old secret was never sealed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = replica.kill();
    let _ = replica.wait();
    let (plain, key_id): (Option<String>, Option<String>) =
        sqlx::query_as("SELECT value, key_id FROM secrets WHERE name = 'OLD_TOKEN'")
            .fetch_one(&flow.db.pool)
            .await
            .unwrap();
    assert_eq!(plain, None);

    // An engine given some other key refuses to start rather than seal with it.
    let other = "22".repeat(32);
    let out =
        flow.command(&["serve", "--listen", "127.0.0.1:0"]).env("CRM_SECRET_KEY", &other).output().expect("crm serve");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("sealed with key {}", key_id.unwrap())) && err.contains("CRM_SECRET_KEY"), "{err}");
}
