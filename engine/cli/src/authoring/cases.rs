//! A workflow folder's test cases: `tests/*.json`, each a run input and what the run must
//! come to. Only what a case names is compared, so a case can pin the chat message alone
//! or every step's output.
//!
//! ```json
//! {
//!   "input": {"name": "Ann"},
//!   "acting_user": 1,
//!   "fixtures": "fixtures.json",
//!   "expect": {
//!     "status": "succeeded",
//!     "message": "Hello, Ann!",
//!     "result": {"text": "Hello, Ann!"},
//!     "steps": {"greet": {"status": "succeeded", "output": {"text": "Hello, Ann!"}}}
//!   }
//! }
//! ```
//!
//! `fixtures` (default `fixtures.json` beside the manifest, when there is one) holds the
//! records, secrets and state the run sees (format: `crm_memory::fixture`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    #[serde(default = "empty_object")]
    pub input: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acting_user: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixtures: Option<String>,
    #[serde(default)]
    pub expect: Expect,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub steps: BTreeMap<String, ExpectStep>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectStep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// Every `tests/*.json` of the folder, by file name.
pub fn load(dir: &Path) -> anyhow::Result<Vec<(PathBuf, Case)>> {
    let tests = dir.join("tests");
    let Ok(entries) = std::fs::read_dir(&tests) else {
        return Ok(Vec::new());
    };
    let mut files: Vec<PathBuf> =
        entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            let case: Case =
                serde_json::from_str(&text).with_context(|| format!("{} is not a test case", path.display()))?;
            Ok((path, case))
        })
        .collect()
}

/// What a run came to, in the terms of a case's `expect`.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: String,
    pub message: String,
    pub result: Option<Value>,
    pub steps: BTreeMap<String, (String, Option<Value>)>,
}

/// Each difference between what the case expects and what happened, as a line to print.
pub fn compare(expect: &Expect, got: &Outcome) -> Vec<String> {
    let mut diffs = Vec::new();
    let check = |diffs: &mut Vec<String>, what: &str, want: &Value, have: &Value| {
        if want != have {
            diffs.push(format!("{what}:\n    expected {}\n    got      {}", pretty(want), pretty(have)));
        }
    };
    if let Some(s) = &expect.status {
        check(&mut diffs, "status", &Value::String(s.clone()), &Value::String(got.status.clone()));
    }
    if let Some(m) = &expect.message {
        check(&mut diffs, "message", &Value::String(m.clone()), &Value::String(got.message.clone()));
    }
    if let Some(r) = &expect.result {
        check(&mut diffs, "result", r, got.result.as_ref().unwrap_or(&Value::Null));
    }
    for (id, want) in &expect.steps {
        let Some((status, output)) = got.steps.get(id) else {
            diffs.push(format!("step {id}: not a step of this workflow"));
            continue;
        };
        if let Some(s) = &want.status {
            check(&mut diffs, &format!("step {id} status"), &Value::String(s.clone()), &Value::String(status.clone()));
        }
        if let Some(o) = &want.output {
            check(&mut diffs, &format!("step {id} output"), o, output.as_ref().unwrap_or(&Value::Null));
        }
    }
    diffs
}

/// The case with `expect` rewritten to what happened (for `--update`).
pub fn updated(case: &Case, got: &Outcome) -> Case {
    let mut case = case.clone();
    let steps = got
        .steps
        .iter()
        .map(|(id, (status, output))| (id.clone(), ExpectStep { status: Some(status.clone()), output: output.clone() }))
        .collect();
    case.expect = Expect {
        status: Some(got.status.clone()),
        message: Some(got.message.clone()),
        result: got.result.clone(),
        steps,
    };
    case
}

fn pretty(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}
