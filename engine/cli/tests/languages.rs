//! One step, three languages: `lead-score` in Rust (`workflows/lead-score`), Python
//! (`workflows/lead-score-py`) and JavaScript (`workflows/lead-score-js`), built by the real
//! `crm workflow build` (cargo, componentize-py, componentize-js), run on the same fixtures
//! and configs in the same runtime: their outputs, branches, logs and errors agree.

use std::path::PathBuf;
use std::sync::Arc;

use crm_concepts::capability::{Capability, Grants};
use crm_concepts::step::{AttemptKey, StepInput, StepLimits, StepOutcome};
use crm_memory::MemoryCrm;
use crm_runtime::{Runtime, RuntimeConfig, StepCall, digest_of};
use serde_json::{Value, json};

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
