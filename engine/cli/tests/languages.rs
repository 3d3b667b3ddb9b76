//! One step, three languages: `lead-score` in Rust (`workflows/lead-score`), Python
//! (`workflows/lead-score-py`) and JavaScript (`workflows/lead-score-js`), built by the real
//! `crm workflow build` (cargo, componentize-py, componentize-js), run on the same fixtures
//! and configs in the same runtime: their outputs, branches, logs and errors agree. And
//! `task-reminder`'s remind step in the three (`workflows/fixtures/task-reminder-py`, `-js`),
//! deployed side by side to a real engine and worker: the same reminder, the same buttons.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crm_concepts::capability::{Capability, Grants};
use crm_concepts::step::{AttemptKey, StepInput, StepLimits, StepOutcome};
use crm_memory::MemoryCrm;
use crm_runtime::{Runtime, RuntimeConfig, StepCall, digest_of};
use crm_testing::Flow;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

/// `crm workflow build DIR` and the path of the one component it built.
fn build(example: &str) -> PathBuf {
    let dir = crm_testing::workspace::workflows_dir().join(example);
    let out = crm_testing::process::crm().args(["workflow", "build"]).arg(&dir).output().expect("run crm");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "building {example}:\n{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let line = stdout.lines().next().unwrap_or_default();
    PathBuf::from(line.split('\t').nth(1).unwrap_or_else(|| panic!("no component in {stdout}")))
}

#[tokio::test(flavor = "multi_thread")]
async fn lead_score_in_rust_python_and_js_gives_the_same_results() {
    let components = [
        ("rust", PathBuf::from(crm_guests::LEAD_SCORE)),
        ("python", build("lead-score-py")),
        ("js", build("lead-score-js")),
    ];
    let fixtures =
        std::fs::read_to_string(crm_testing::workspace::workflows_dir().join("lead-score/fixtures.json")).unwrap();
    let rt = Runtime::<MemoryCrm>::new(RuntimeConfig { max_instances: 8, ..RuntimeConfig::default() }).unwrap();
    let grants = Arc::new(Grants::new([Capability::RecordsRead, Capability::RecordsWrite, Capability::Log]));
    let limits = StepLimits { timeout_ms: 10_000, ..StepLimits::default() };
    let branches = json!({"hot": ["call"], "warm": ["mail"], "cold": []});
    let cases = [
        (json!({"contact_id": 1}), json!(null)),
        (json!({"contact_id": 2}), json!(null)),
        (json!({}), json!({"contact_id": 1, "hot_at": 101, "warm_at": 60, "recent_days": 7, "branches": branches})),
        (json!({"contact_id": 2}), json!({"branches": branches, "write_back": true})),
        (json!({"contact_id": 999}), json!(null)),
        (json!({"contact_id": 1}), json!({"warm_at": 90, "hot_at": 80})),
        (json!({}), json!(null)),
    ];
    let mut results: Vec<Vec<Value>> = vec![Vec::new(); cases.len()];
    for (lang, path) in &components {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{lang}: {}: {e}", path.display()));
        let prepared = rt
            .load(&digest_of(&bytes), Arc::new(bytes))
            .await
            .unwrap_or_else(|e| panic!("{lang}: the component does not load: {e}"));
        for (i, (run_input, config)) in cases.iter().enumerate() {
            let crm = Arc::new(MemoryCrm::from_json(&fixtures).unwrap());
            let input = StepInput { run_input: run_input.clone(), deps: Default::default(), config: config.clone() };
            let call = StepCall {
                key: AttemptKey { run_id: uuid::Uuid::now_v7(), step: "score".into(), attempt: 1 },
                workflow: "languages".into(),
                acting_user: Some(2),
                ticket: String::new(),
                provisional: false,
                input: &input,
                grants: grants.clone(),
                limits: &limits,
            };
            let run = rt.run(&prepared, call, crm.clone()).await;
            let logs: Vec<Value> = run.logs.iter().map(|l| json!([l.message, l.fields])).collect();
            let written = crm.records(crm_concepts::records::RecordKind::Contact)[1]["custom"].clone();
            results[i].push(match run.outcome {
                StepOutcome::Ok { output, next } => {
                    json!({"output": output, "next": next, "logs": logs, "custom": written})
                }
                // The message after the guest's code is each language's own wording of the
                // same refusal; the code and whether it is retryable must agree.
                StepOutcome::Failed { error } => json!({
                    "error": error.code.to_string(),
                    "guest_code": error.message.split(':').next(),
                    "retryable": error.is_retryable(),
                    "not_found": error.message.contains("contact 999 not found"),
                }),
            });
        }
    }
    for (i, per_lang) in results.iter().enumerate() {
        for (j, (lang, _)) in components.iter().enumerate().skip(1) {
            assert_eq!(per_lang[j], per_lang[0], "case {i} {:?}: {lang} differs from rust", cases[i]);
        }
    }
    // The cases mean something: a hot lead, a cold one with its score written back, a branch,
    // and the refusals.
    assert_eq!(results[0][0]["output"]["grade"], "hot");
    assert_eq!(results[1][0]["output"]["grade"], "cold");
    assert_eq!(results[2][0]["next"], json!(["mail"]));
    assert_eq!(results[3][0]["custom"], json!({"lead_score": 0, "lead_grade": "cold"}));
    assert_eq!(results[4][0]["guest_code"], "not_found");
    assert_eq!(results[4][0]["not_found"], true);
    assert_eq!(results[5][0]["guest_code"], "invalid_input");
    assert_eq!(results[6][0]["guest_code"], "invalid_input");
}

/// Every run of a Python or JavaScript step starts from the component's snapshot, however
/// much of its heap the run before dirtied in the same pool slot: one slot, so each run
/// reuses the memory the previous one scribbled over (more disjoint runs of dirty pages than
/// one `PAGEMAP_SCAN` of the slot reports, so the reset must go on past the first scan).
#[tokio::test(flavor = "multi_thread")]
async fn python_and_js_steps_start_from_their_snapshot_on_every_run() {
    let rt = Runtime::<MemoryCrm>::new(RuntimeConfig { max_instances: 1, ..RuntimeConfig::default() }).unwrap();
    let limits = StepLimits { timeout_ms: 10_000, ..StepLimits::default() };
    let grants = Arc::new(Grants::default());
    let input = StepInput { run_input: json!({}), deps: Default::default(), config: json!(null) };
    for example in ["fresh-py", "fresh-js"] {
        let bytes = std::fs::read(build(&format!("fixtures/{example}"))).unwrap();
        let prepared = rt.load(&digest_of(&bytes), Arc::new(bytes)).await.unwrap();
        for attempt in 1..=40 {
            let call = StepCall {
                key: AttemptKey { run_id: Uuid::nil(), step: "fresh".into(), attempt },
                workflow: example.into(),
                acting_user: None,
                ticket: String::new(),
                provisional: false,
                input: &input,
                grants: grants.clone(),
                limits: &limits,
            };
            match rt.run(&prepared, call, Arc::new(MemoryCrm::empty())).await.outcome {
                StepOutcome::Ok { output, .. } => {
                    assert_eq!(*output, json!({"runs": 1, "kept": 266}), "{example}, run {attempt}")
                }
                StepOutcome::Failed { error } => panic!("{example}, run {attempt}: {error}"),
            }
        }
    }
}

const REMINDERS: [&str; 3] = ["task-reminder", "task-reminder-py", "task-reminder-js"];
/// A fresh worker compiles the 13–19 MB Python and JavaScript components (a debug build of
/// wasmtime in tests) before their first run: minutes on a busy machine, not a hang.
const WAIT: Duration = Duration::from_secs(300);

/// The runs of each reminder workflow for task `task`, once each of them waits.
async fn reminder_runs_waiting(flow: &Flow, task: i64) -> Vec<(String, Uuid)> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let runs: Vec<(String, Uuid)> =
            sqlx::query_as("SELECT workflow, id FROM runs WHERE (input->>'task_id')::bigint = $1 ORDER BY workflow")
                .bind(task)
                .fetch_all(&flow.db.pool)
                .await
                .expect("read reminder runs");
        if runs.len() == REMINDERS.len() {
            for (_, id) in &runs {
                flow.wait_status(*id, "waiting", WAIT).await;
            }
            return runs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "task {task} has runs of {runs:?}, not of all of {REMINDERS:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `remind` step's output of each run, by workflow, once the run succeeded.
async fn remind_outputs(flow: &Flow, runs: &[(String, Uuid)]) -> Vec<(String, Value)> {
    let mut outputs = Vec::new();
    for (workflow, id) in runs {
        let run = flow.wait_status(*id, "succeeded", WAIT).await;
        let remind = run["steps"].as_array().and_then(|s| s.iter().find(|s| s["step"] == "remind")).cloned();
        outputs.push((
            workflow.clone(),
            remind.unwrap_or_else(|| panic!("{workflow}: no remind step in {run}"))["output"].clone(),
        ));
    }
    outputs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_reminder_in_rust_python_and_js_sends_the_same_reminder_with_the_same_buttons() {
    let mut flow = Flow::start_with_test_clock("languages_reminders").await;
    flow.deploy("task-reminder");
    flow.deploy("fixtures/task-reminder-py");
    flow.deploy("fixtures/task-reminder-js");
    flow.start_worker(2);
    let kenji =
        crm_testing::users::linked(&flow.db, "Kenji", crm_concepts::user::Role::Manager, 7501, Some("Asia/Tokyo"))
            .await;
    let due = chrono::Utc::now() + chrono::Duration::minutes(30);
    let new_task = |title: &str| {
        let body = json!({"title": title, "assignee_id": kenji.id, "due_at": due.to_rfc3339()});
        let flow = &flow;
        async move {
            let (status, task) = flow.post("/api/tasks", body).await;
            assert_eq!(status, StatusCode::CREATED, "{task}");
            task["id"].as_i64().expect("task id")
        }
    };
    let call = new_task("Call the Osaka office").await;
    let booked = new_task("Book the venue").await;
    let call_runs = reminder_runs_waiting(&flow, call).await;
    let booked_runs = reminder_runs_waiting(&flow, booked).await;
    let (status, body) = flow.post(&format!("/api/tasks/{booked}/complete"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    flow.advance_clock("31m").await;
    let sent = remind_outputs(&flow, &call_runs).await;
    let silent = remind_outputs(&flow, &booked_runs).await;
    for (workflow, output) in &sent[1..] {
        assert_eq!(output, &sent[0].1, "{workflow} differs from {}", sent[0].0);
    }
    for (workflow, output) in &silent[1..] {
        assert_eq!(output, &silent[0].1, "{workflow} differs from {}", silent[0].0);
    }
    assert_eq!(silent[0].1, json!({"sent": false, "why": "the task was done meanwhile"}));

    // The messages as the bot would deliver them: the same text and buttons, each Snooze
    // starting its own workflow again.
    let messages: Vec<(String, String, Value)> =
        sqlx::query_as("SELECT workflow, text, buttons FROM notifications WHERE user_id = $1 ORDER BY workflow")
            .bind(kenji.id)
            .fetch_all(&flow.db.pool)
            .await
            .expect("read notifications");
    let workflows: Vec<&str> = messages.iter().map(|(w, _, _)| w.as_str()).collect();
    assert_eq!(workflows, ["task-reminder", "task-reminder-js", "task-reminder-py"], "one message each");
    let tokyo_due = due.with_timezone(&chrono_tz::Asia::Tokyo).format("%Y-%m-%d %H:%M");
    for (workflow, text, buttons) in &messages {
        assert_eq!(text, &format!("⏰ Reminder: Call the Osaka office\nDue {tokyo_due}"), "{workflow}");
        assert_eq!(
            buttons,
            &json!([
                {"label": "✅ Done", "action": {"kind": "complete_task", "task_id": call}},
                {"label": "⏰ Snooze 1 h", "action": {"kind": "start_run", "workflow": workflow,
                    "input": {"task_id": call, "snooze_minutes": 60}}},
            ]),
            "{workflow}"
        );
    }
    assert_eq!(sent[0].1, json!({"sent": true, "user_id": kenji.id, "text": messages[0].1}));
}
