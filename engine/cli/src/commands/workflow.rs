//! `crm workflow …`: scaffold, build, test locally and deploy a workflow folder; list, show,
//! disable, enable, roll back deployed ones.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine as _;
use clap::Subcommand;
use crm_concepts::manifest::Manifest;
use serde_json::{Value, json};

use crate::authoring::Lang;
use crate::authoring::scaffold::{self, TriggerKind};
use crate::authoring::toolchain;
use crate::commands::engine_client::{EngineArgs, EngineClient};
use crate::config::Config;

#[derive(Subcommand, Debug)]
pub enum WorkflowCommand {
    /// Make a new workflow folder NAME (a path) that works as it is: the step in the chosen
    /// language, workflow.toml with the chosen trigger, fixtures and a test case.
    New {
        name: PathBuf,
        #[arg(long, value_enum)]
        lang: Lang,
        #[arg(long, value_enum, default_value = "bot")]
        trigger: TriggerKind,
    },
    /// Build DIR's components (cargo, componentize-py, componentize-js) and say where they are.
    Build { dir: PathBuf },
    /// Run DIR's workflow locally — every step, in graph order, with branches — against its
    /// fixtures, without Postgres or Redis; compare with tests/*.json (non-zero exit on a
    /// mismatch). Without test cases, run once with --input.
    Test(crate::commands::workflow_test::TestArgs),
    /// Print the JSON Schema of workflow.toml.
    Schema,
    /// Build DIR's components, then deploy DIR/workflow.toml with them as the workflow's next
    /// version.
    Deploy {
        dir: PathBuf,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Check DIR/workflow.toml and find its components, without deploying.
    Validate { dir: PathBuf },
    /// List deployed workflows.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Show a workflow: its current manifest and its versions.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Stop new runs of a workflow (runs in progress finish).
    Disable {
        name: String,
        #[command(flatten)]
        engine: EngineArgs,
    },
    Enable {
        name: String,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Make an earlier version current again (default: the one before the current).
    Rollback {
        name: String,
        #[arg(long)]
        version: Option<i32>,
        #[command(flatten)]
        engine: EngineArgs,
    },
}

pub async fn run(config: &Config, command: WorkflowCommand) -> anyhow::Result<()> {
    match command {
        WorkflowCommand::New { name, lang, trigger } => {
            let source = scaffold::create(&name, lang, trigger)?;
            println!("created {} ({}): edit {}", name.display(), lang.label(), source.display());
            println!("then: crm workflow test {0}   and   crm workflow deploy {0}", name.display());
            Ok(())
        }
        WorkflowCommand::Build { dir } => {
            let path = dir.join("workflow.toml");
            let source = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            let manifest = Manifest::from_toml(&source).with_context(|| format!("in {}", path.display()))?;
            let built = toolchain::build_all(&dir, &manifest)?;
            let bytes: BTreeMap<String, Vec<u8>> = built.iter().map(|(r, c)| (r.clone(), c.bytes.clone())).collect();
            let m = check(&source, &bytes)?;
            for (reference, c) in &built {
                let digest = crm_runtime::digest_of(&c.bytes);
                println!("{reference}\t{}\tsha256:{digest}\t{} bytes", c.path.display(), c.bytes.len());
            }
            println!("{} {}: {} component(s) built", m.name, m.version, built.len());
            Ok(())
        }
        WorkflowCommand::Test(args) => crate::commands::workflow_test::run(config, args).await,
        WorkflowCommand::Schema => {
            println!("{}", serde_json::to_string_pretty(&crm_concepts::manifest_schema::workflow_schema())?);
            Ok(())
        }
        WorkflowCommand::Deploy { dir, engine } => {
            let (source, components) = load(&dir)?;
            check(&source, &components)?;
            let client = EngineClient::new(config, &engine)?;
            let encoded: BTreeMap<&String, String> =
                components.iter().map(|(r, b)| (r, base64::engine::general_purpose::STANDARD.encode(b))).collect();
            let d = client.post("/api/workflows", &json!({"manifest": source, "components": encoded})).await?;
            if d["created"].as_bool() == Some(true) {
                println!("deployed {} version {} ({})", s(&d["name"]), d["version"], s(&d["label"]));
            } else {
                println!("{} is unchanged: version {} ({}) stays current", s(&d["name"]), d["version"], s(&d["label"]));
            }
            Ok(())
        }
        WorkflowCommand::Validate { dir } => {
            let (source, components) = load(&dir)?;
            let m = check(&source, &components)?;
            println!("{} {} is valid: {} step(s), {} trigger(s)", m.name, m.version, m.steps.len(), m.triggers.len());
            Ok(())
        }
        WorkflowCommand::List { json, engine } => {
            let page = EngineClient::new(config, &engine)?.get("/api/workflows").await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&page)?);
                return Ok(());
            }
            println!("{:<28} {:>7} {:<9} {:<30} DESCRIPTION", "NAME", "VERSION", "STATE", "TRIGGERS");
            for w in page["items"].as_array().into_iter().flatten() {
                let triggers: Vec<String> = w["triggers"].as_array().into_iter().flatten().map(trigger_label).collect();
                println!(
                    "{:<28} {:>7} {:<9} {:<30} {}",
                    s(&w["name"]),
                    format!("{} ({})", w["current_version"], s(&w["label"])),
                    if w["enabled"].as_bool() == Some(true) { "enabled" } else { "disabled" },
                    triggers.join(", "),
                    s(&w["description"])
                );
            }
            Ok(())
        }
        WorkflowCommand::Show { name, json, engine } => {
            let w = EngineClient::new(config, &engine)?.get(&format!("/api/workflows/{name}")).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&w)?);
                return Ok(());
            }
            println!("{} — {}", s(&w["name"]), s(&w["description"]));
            println!(
                "current version {} ({}), {}",
                w["current_version"],
                s(&w["label"]),
                if w["enabled"].as_bool() == Some(true) { "enabled" } else { "disabled" }
            );
            for st in w["manifest"]["steps"].as_array().into_iter().flatten() {
                let needs: Vec<&str> = st["needs"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                println!("  step {:<16} {:<24} needs [{}]", s(&st["id"]), s(&st["component"]), needs.join(", "));
            }
            println!("versions:");
            for v in w["versions"].as_array().into_iter().flatten() {
                println!("  {:>3} {:<10} deployed {}", v["version"], s(&v["label"]), s(&v["deployed_at"]));
            }
            Ok(())
        }
        WorkflowCommand::Disable { name, engine } => toggle(config, &engine, &name, "disable").await,
        WorkflowCommand::Enable { name, engine } => toggle(config, &engine, &name, "enable").await,
        WorkflowCommand::Rollback { name, version, engine } => {
            let body = match version {
                Some(v) => json!({"version": v}),
                None => json!({}),
            };
            let w = EngineClient::new(config, &engine)?.post(&format!("/api/workflows/{name}/rollback"), &body).await?;
            println!("{name}: version {} ({}) is current", w["current_version"], s(&w["label"]));
            Ok(())
        }
    }
}

async fn toggle(config: &Config, engine: &EngineArgs, name: &str, action: &str) -> anyhow::Result<()> {
    EngineClient::new(config, engine)?.post(&format!("/api/workflows/{name}/{action}"), &json!({})).await?;
    println!("{name}: {action}d");
    Ok(())
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn trigger_label(t: &Value) -> String {
    match s(&t["kind"]) {
        "bot_command" => format!("/{}", s(&t["command"])),
        "cron" => format!("cron {}", s(&t["schedule"])),
        "record_event" => format!("on {}", s(&t["record"])),
        "webhook" => format!("hook {}", s(&t["path"])),
        other => other.to_string(),
    }
}

/// The manifest text and the bytes of every component it names, built as needed (except
/// `sha256:` references, which the engine resolves).
pub fn load(dir: &Path) -> anyhow::Result<(String, BTreeMap<String, Vec<u8>>)> {
    let path = dir.join("workflow.toml");
    let source = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let manifest = Manifest::from_toml(&source).with_context(|| format!("in {}", path.display()))?;
    let built = toolchain::build_all(dir, &manifest)?;
    Ok((source, built.into_iter().map(|(r, c)| (r, c.bytes)).collect()))
}

/// Validates the manifest locally against the components found, reporting every problem.
pub fn check(source: &str, components: &BTreeMap<String, Vec<u8>>) -> anyhow::Result<Manifest> {
    let m = Manifest::from_toml(source)?;
    m.validate(|c| components.contains_key(c) || c.starts_with("sha256:"))?;
    Ok(m)
}
