//! `crm workflow new NAME --lang rust|python|js --trigger bot|cron|event|webhook`: a folder
//! that works as it is — the step's project, `workflow.toml` with the chosen trigger,
//! `fixtures.json` and a test case with its expected output — outside the crm source tree,
//! needing nothing in it.

use std::path::{Path, PathBuf};

use anyhow::bail;
use crm_concepts::manifest::Manifest;
use serde_json::json;

use crate::authoring::cases::{Case, Expect, ExpectStep};
use crate::authoring::{Lang, vendor};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TriggerKind {
    /// `/NAME [who]` in the Telegram bot
    Bot,
    /// every weekday at 09:00 UTC
    Cron,
    /// a contact is created
    Event,
    /// a signed `POST /hooks/NAME`
    Webhook,
}

const WORKFLOW: &str = include_str!("../../templates/common/workflow.toml");
const FIXTURES: &str = include_str!("../../templates/common/fixtures.json");
const GITIGNORE: &str = include_str!("../../templates/common/gitignore");
const README: &str = include_str!("../../templates/common/README.md");
const PYTHON_STEP: &str = include_str!("../../templates/python/step.py");
const JS_STEP: &str = include_str!("../../templates/js/step.js");
const RUST_STEP: &str = include_str!("../../templates/rust/src/lib.rs");
const RUST_MANIFEST: &str = include_str!("../../templates/rust/Cargo.toml");

fn trigger_toml(kind: TriggerKind, name: &str) -> String {
    let command = name.replace('-', "_");
    match kind {
        TriggerKind::Bot => format!(
            "[[triggers]]\nkind = \"bot_command\"\ncommand = \"{command}\"\ndescription = \"Say hello\"\n\
             args = [{{ name = \"name\", type = \"text\", required = false, description = \"who to greet\" }}]\n"
        ),
        TriggerKind::Cron => {
            "[[triggers]]\nkind = \"cron\"\n# sec min hour day-of-month month day-of-week: weekdays at 09:00\n\
             schedule = \"0 0 9 * * Mon-Fri\"\ntimezone = \"UTC\"\ninput = { name = \"team\" }\n"
                .to_string()
        }
        TriggerKind::Event => {
            "[[triggers]]\nkind = \"record_event\"\nrecord = \"contact\"\nactions = [\"created\"]\n".to_string()
        }
        TriggerKind::Webhook => format!("[[triggers]]\nkind = \"webhook\"\npath = \"{name}\"\n"),
    }
}

/// The run input a trigger of this kind would give the step, for the first test case.
fn sample_input(kind: TriggerKind) -> (serde_json::Value, &'static str) {
    match kind {
        TriggerKind::Bot | TriggerKind::Webhook => (json!({"name": "Ann"}), "Ann"),
        TriggerKind::Cron => (json!({"name": "team", "trigger": "cron", "tick": "2026-01-05T09:00:00Z"}), "team"),
        TriggerKind::Event => (
            json!({"record_kind": "contact", "record_id": 2, "contact_id": 2, "action": "created",
                   "record": {"id": 2, "name": "Bo Chen"}}),
            "Bo Chen",
        ),
    }
}

/// Writes the new workflow's folder `dir` (which must not exist or be empty).
pub fn create(dir: &Path, lang: Lang, trigger: TriggerKind) -> anyhow::Result<PathBuf> {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
    if dir.exists() && std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{} already exists and is not empty", dir.display());
    }
    let (component, source, how) = match lang {
        Lang::Rust => (name.clone(), "src/lib.rs".to_string(), "cargo, from Cargo.toml and src/lib.rs"),
        Lang::Python => {
            let file = format!("{}.py", name.replace('-', "_"));
            (file.clone(), file, "componentize-py, from this Python module")
        }
        Lang::Js => {
            let file = format!("{name}.js");
            (file.clone(), file, "componentize-js, from this JavaScript module")
        }
    };
    let fill = |t: &str| {
        t.replace("{{name}}", &name)
            .replace("{{trigger}}", &trigger_toml(trigger, &name))
            .replace("{{component}}", &component)
            .replace("{{how}}", how)
            .replace("{{lang}}", lang.label())
            .replace("{{source}}", &source)
    };
    let manifest = fill(WORKFLOW);
    // The name rules are the manifest's: check them before writing anything.
    Manifest::parse(&manifest).map_err(|e| anyhow::anyhow!("{name:?} cannot name a workflow: {e}"))?;

    vendor::put(&dir.join("workflow.toml"), &manifest)?;
    vendor::put(&dir.join("fixtures.json"), FIXTURES)?;
    vendor::put(&dir.join(".gitignore"), GITIGNORE)?;
    vendor::put(&dir.join("README.md"), &fill(README))?;
    match lang {
        Lang::Rust => {
            vendor::put(&dir.join("Cargo.toml"), &fill(RUST_MANIFEST))?;
            vendor::put(&dir.join("Cargo.lock"), vendor::CARGO_LOCK)?;
            vendor::put(&dir.join(&source), &fill(RUST_STEP))?;
        }
        Lang::Python => vendor::put(&dir.join(&source), &fill(PYTHON_STEP))?,
        Lang::Js => vendor::put(&dir.join(&source), &fill(JS_STEP))?,
    }
    let (input, who) = sample_input(trigger);
    let text = format!("Hello, {who}! The CRM has 2 contact(s).");
    let case = Case {
        input,
        acting_user: None,
        fixtures: None,
        expect: Expect {
            status: Some("succeeded".into()),
            message: Some(text.clone()),
            result: None,
            steps: [("greet".to_string(), ExpectStep { status: None, output: Some(json!({ "text": text })) })]
                .into_iter()
                .collect(),
        },
    };
    vendor::put(&dir.join("tests").join(format!("{name}.json")), &(serde_json::to_string_pretty(&case)? + "\n"))?;
    vendor::vendor(dir, &[lang])?;
    Ok(dir.join(&source))
}
