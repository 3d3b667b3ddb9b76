//! Deploying workflows: versions, unchanged redeploys, disable/enable, roll back, and clear
//! errors for broken manifests and components — through `crm workflow` and the API.

use base64::Engine as _;
use crm_concepts::records::Actor;
use crm_concepts::user::{NewUser, Role};
use crm_testing::Flow;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn crm(flow: &Flow, args: &[&str]) -> (bool, String) {
    let out = crm_testing::process::crm()
        .args(args)
        .args(["--engine", &flow.url, "--token", &flow.token])
        .output()
        .expect("run crm");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn fields(body: &Value) -> Vec<(String, String)> {
    body["error"]["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| (f["field"].as_str().unwrap_or("").to_string(), f["message"].as_str().unwrap_or("").to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn deploys_make_versions_and_runs_follow_enable_disable_and_rollback() {
    let flow = Flow::start("deploy_versions").await;
    assert!(flow.deploy("qualify-lead").contains("deployed qualify-lead version 1 (1.0.0)"));
    assert!(flow.deploy("qualify-lead").contains("qualify-lead is unchanged: version 1"));

    let source =
        std::fs::read_to_string(crm_testing::workspace::workflows_dir().join("qualify-lead/workflow.toml")).unwrap();
    let changed =
        source.replace("version = \"1.0.0\"", "version = \"1.1.0\"").replace("due_in_days = 1", "due_in_days = 2");
    assert!(flow.deploy_manifest(&changed).contains("deployed qualify-lead version 2 (1.1.0)"));

    let (_, list) = flow.get("/api/workflows").await;
    let w = &list["items"][0];
    assert_eq!(
        (w["name"].as_str(), w["current_version"].as_i64(), w["enabled"].as_bool()),
        (Some("qualify-lead"), Some(2), Some(true))
    );
    let bot = w["triggers"].as_array().unwrap().iter().find(|t| t["kind"] == "bot_command").unwrap();
    assert_eq!(bot["command"], "qualify");
    assert_eq!(
        bot["args"][0],
        json!({"name": "contact_id", "type": "integer", "required": true, "description": "the contact's id"})
    );
    let (_, detail) = flow.get("/api/workflows/qualify-lead").await;
    let versions: Vec<i64> =
        detail["versions"].as_array().unwrap().iter().map(|v| v["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, vec![2, 1]);
    assert_eq!(detail["manifest"]["steps"][1]["config"]["due_in_days"], 2);

    let (ok, out) = crm(&flow, &["workflow", "rollback", "qualify-lead"]);
    assert!(ok && out.contains("version 1 (1.0.0) is current"), "{out}");
    let (ok, out) = crm(&flow, &["workflow", "rollback", "qualify-lead", "--version", "2"]);
    assert!(ok && out.contains("version 2 (1.1.0) is current"), "{out}");
    let (ok, out) = crm(&flow, &["workflow", "rollback", "qualify-lead", "--version", "9"]);
    assert!(!ok && out.contains("has no version 9"), "{out}");

    let (ok, _) = crm(&flow, &["workflow", "disable", "qualify-lead"]);
    assert!(ok);
    let (status, body) = flow.post("/api/runs", json!({"workflow": "qualify-lead", "input": {"contact_id": 1}})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("is disabled"));
    let (ok, _) = crm(&flow, &["workflow", "enable", "qualify-lead"]);
    assert!(ok);
    let (status, body) = flow.post("/api/runs", json!({"workflow": "qualify-lead", "input": {"contact_id": 1}})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["version"], 2);
    let (_, run) = flow.get(&format!("/api/runs/{}", body["id"].as_str().unwrap())).await;
    assert_eq!(run["version"], 2);

    let (status, body) = flow.post("/api/runs", json!({"workflow": "nope", "input": {}})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (status, _) = flow.post("/api/runs", json!({"workflow": "qualify-lead", "input": [1]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let (ok, out) = crm(&flow, &["workflow", "list"]);
    assert!(ok && out.contains("qualify-lead") && out.contains("/qualify"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_manifests_and_components_get_errors_that_name_the_field() {
    let flow = Flow::start("deploy_errors").await;
    let echo = base64::engine::general_purpose::STANDARD.encode(std::fs::read(crm_guests::ECHO).unwrap());
    let manifest = r#"
name = "broken"
version = "1"
[[triggers]]
kind = "cron"
schedule = "0 9 * * *"
[[steps]]
id = "a"
component = "echo"
needs = ["b"]
capabilities = ["fs:/etc"]
[[steps]]
id = "b"
component = "echo"
needs = ["a"]
[[steps]]
id = "c"
component = "missing"
"#;
    let (status, body) = flow.post("/api/workflows", json!({"manifest": manifest, "components": {"echo": echo}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "validation_failed");
    let f = fields(&body);
    let has = |field: &str, text: &str| f.iter().any(|(k, m)| k == field && m.contains(text));
    assert!(has("triggers[0].schedule", "has 5 fields"), "{f:?}");
    assert!(has("steps[0].capabilities[0]", "unknown capability \"fs:/etc\""), "{f:?}");
    assert!(has("steps[2].component", "unknown component \"missing\""), "{f:?}");
    assert!(has("steps", "dependency cycle: a -> b -> a"), "{f:?}");

    // a core module and junk are not components
    let core = base64::engine::general_purpose::STANDARD.encode(b"\0asm\x01\x00\x00\x00");
    let one = "name = \"one\"\nversion = \"1\"\n[[steps]]\nid = \"a\"\ncomponent = \"x\"\n";
    let (status, body) = flow.post("/api/workflows", json!({"manifest": one, "components": {"x": core}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(fields(&body).iter().any(|(k, m)| k == "components.x" && m.contains("core WebAssembly module")), "{body}");
    let (status, body) = flow.post("/api/workflows", json!({"manifest": "name = ", "components": {}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(fields(&body)[0].0.starts_with("line 1"), "{body}");

    // a component stored by an earlier deploy can be named by digest
    let (status, body) = flow
        .post("/api/workflows", json!({"manifest": one.replace("\"x\"", "\"echo\""), "components": {"echo": echo}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, detail) = flow.get("/api/workflows/one").await;
    let digest = detail["versions"][0]["components"]["echo"].as_str().unwrap().to_string();
    let by_digest = one.replace("\"x\"", &format!("\"sha256:{digest}\""));
    let (status, body) = flow.post("/api/workflows", json!({"manifest": by_digest})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["version"], 2);

    // only admins deploy
    let viewer = crm_store::users::create(
        &flow.db,
        &Actor::system(),
        NewUser { name: "Vic Viewer".into(), email: None, role: Role::Viewer, telegram_user_id: None, time_zone: None },
    )
    .await
    .unwrap();
    let (_, token) = crm_store::tokens::create(&flow.db, viewer.id, "t").await.unwrap();
    let resp = flow
        .client
        .post(format!("{}/api/workflows", flow.url))
        .bearer_auth(token)
        .json(&json!({"manifest": one, "components": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // the CLI validates locally with the same messages
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("workflow.toml"), manifest.replace("\"echo\"", "\"fixture-echo\"")).unwrap();
    let out =
        crm_testing::process::crm().args(["workflow", "validate", dir.path().to_str().unwrap()]).output().unwrap();
    let (ok, out) = (out.status.success(), String::from_utf8_lossy(&out.stderr).to_string());
    assert!(!ok && out.contains("dependency cycle") && out.contains("steps[2].component"), "{out}");
}
