//! The administrative CLI against a running engine: `crm user add` and `crm token create`
//! give a working API token with the right role; `crm demo-data` fills the CRM with
//! records the API lists and finds.

use crm_testing::{TestStack, send};
use reqwest::{Method, StatusCode};

fn crm(stack: &TestStack, args: &[&str]) -> (bool, String, String) {
    let out = crm_testing::process::crm()
        .args(args)
        .env("CRM_DATABASE_URL", &stack.db_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run crm");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn user_and_token_from_the_cli_work_over_http() {
    let s = TestStack::start("cli_user").await;
    let (ok, out, err) =
        crm(&s, &["user", "add", "--name", "Grace Hopper", "--role", "manager", "--email", "grace@example.com"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("manager"), "{out}");

    let (ok, secret, err) = crm(&s, &["token", "create", "--email", "grace@example.com", "--name", "laptop"]);
    assert!(ok, "{err}");
    let secret = secret.trim();
    assert!(secret.starts_with("crm_") && !secret.contains('\n'), "stdout is the secret alone: {secret:?}");

    let (st, me) = send(s.request_as(secret, Method::GET, "/api/me")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!((me["name"].as_str(), me["role"].as_str()), (Some("Grace Hopper"), Some("manager")));

    let (ok, _, err) = crm(&s, &["user", "add", "--name", "Bad", "--role", "owner"]);
    assert!(!ok && err.contains("unknown role"), "{err}");
    let (ok, _, err) = crm(&s, &["token", "create", "--email", "nobody@example.com"]);
    assert!(!ok && err.contains("no user has the email"), "{err}");
    let (ok, _, err) = crm(&s, &["user", "add", "--name", "Dup", "--role", "viewer", "--email", "GRACE@example.com"]);
    assert!(!ok && err.contains("already exists"), "{err}");
}

#[tokio::test]
async fn demo_data_is_listed_and_searchable() {
    let s = TestStack::start("cli_demo").await;
    let (ok, out, err) = crm(&s, &["demo-data", "--contacts", "300"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("300 contacts"), "{out}");

    let (st, page) = s.get("/api/contacts?limit=5").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(page["items"].as_array().unwrap().len(), 5);
    assert!(page["next_cursor"].is_string());
    let name = page["items"][0]["name"].as_str().unwrap().to_string();
    let typo: String = {
        // drop the second letter of the first name
        let mut c: Vec<char> = name.chars().collect();
        c.remove(1);
        c.into_iter().collect()
    };
    let (st, found) = send(s.request(Method::GET, "/api/search").query(&[("q", typo.as_str()), ("limit", "50")])).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        found["items"].as_array().unwrap().iter().any(|h| h["title"] == name.as_str()),
        "{typo:?} did not find {name:?}: {found}"
    );

    let (_, deals) = s.get("/api/deals?limit=200").await;
    assert!(!deals["items"].as_array().unwrap().is_empty());
    let (_, tasks) = s.get("/api/tasks?done=false&limit=1").await;
    assert_eq!(tasks["items"].as_array().unwrap().len(), 1);
}

#[test]
fn redis_acl_prints_the_users_the_readme_shows() {
    let out = crm_testing::process::crm()
        .args(["redis-acl", "--engine-password", "engine-password-0001", "--worker-password", "worker-password-0001"])
        .output()
        .expect("crm redis-acl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines.iter().all(|l| !l.contains("password-0001")), "passwords appear hashed only: {lines:?}");
    // crm() gives the process a prefix no installation uses; the README shows the default, `crm`.
    let p = crm_testing::process::NO_PREFIX;
    assert!(
        lines[0].starts_with("user crm-engine on #") && lines[0].contains(&format!(" ~{{{p}}}:* ")),
        "{}",
        lines[0]
    );
    // The README's worker line names exactly the commands a worker gets.
    let readme = std::fs::read_to_string(crm_testing::workspace::root().join("README.md")).unwrap();
    let shown = readme.lines().find(|l| l.starts_with("user crm-worker")).expect("the README shows the worker's user");
    let (_, shown_commands) = shown.split_once("<connection commands> ").expect("the README's shape");
    assert!(lines[1].starts_with("user crm-worker on #"), "{}", lines[1]);
    assert!(
        lines[1].contains(&format!("resetkeys ~{{{p}}}:jobs ~{{{p}}}:workers resetchannels -@all ")),
        "{}",
        lines[1]
    );
    assert!(shown.contains("resetkeys ~{crm}:jobs ~{crm}:workers resetchannels -@all "), "{shown}");
    assert!(lines[1].ends_with(shown_commands), "README: {shown_commands}\nprinted: {}", lines[1]);
}
