//! `crm workflow …`: deploy a workflow folder, list, show, disable, enable, roll back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine as _;
use clap::Subcommand;
use crm_concepts::manifest::Manifest;
use serde_json::{Value, json};

use crate::commands::engine_client::{EngineArgs, EngineClient};
use crate::config::Config;

#[derive(Subcommand, Debug)]
pub enum WorkflowCommand {
    /// Deploy DIR/workflow.toml with its components as the workflow's next version.
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

/// The manifest text and the bytes of every component it names (except `sha256:`
/// references, which the engine resolves).
pub fn load(dir: &Path) -> anyhow::Result<(String, BTreeMap<String, Vec<u8>>)> {
    let path = dir.join("workflow.toml");
    let source = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let manifest = Manifest::from_toml(&source).with_context(|| format!("in {}", path.display()))?;
    let mut components = BTreeMap::new();
    for step in &manifest.steps {
        let r = &step.component;
        if r.starts_with("sha256:") || components.contains_key(r) {
            continue;
        }
        match resolve(dir, r) {
            Ok(file) => {
                let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
                eprintln!("component {r}: {} ({} KB)", file.display(), bytes.len() / 1024);
                components.insert(r.clone(), bytes);
            }
            // reported by `check` as an unknown component, with every other problem
            Err(e) => eprintln!("component {r}: {e:#}"),
        }
    }
    Ok((source, components))
}

/// Validates the manifest locally against the components found, reporting every problem.
fn check(source: &str, components: &BTreeMap<String, Vec<u8>>) -> anyhow::Result<Manifest> {
    let m = Manifest::from_toml(source)?;
    m.validate(|c| components.contains_key(c) || c.starts_with("sha256:"))?;
    Ok(m)
}

/// A `.wasm` path relative to the manifest, or a component crate: one built with `crm`
/// itself (the crates in `workflows/`), else a member of the cargo workspace around DIR,
/// built here for wasm32-wasip2.
fn resolve(dir: &Path, reference: &str) -> anyhow::Result<PathBuf> {
    if reference.ends_with(".wasm") {
        let p = dir.join(reference);
        if !p.is_file() {
            bail!("{} does not exist", p.display());
        }
        return Ok(p);
    }
    if let Some((_, p)) = crm_guests::ALL.iter().find(|(name, _)| *name == reference)
        && Path::new(p).is_file()
    {
        return Ok(PathBuf::from(p));
    }
    let workspace = dir
        .ancestors()
        .find(|a| std::fs::read_to_string(a.join("Cargo.toml")).is_ok_and(|t| t.contains("[workspace]")))
        .with_context(|| format!("not a built component crate, and no cargo workspace around {}", dir.display()))?;
    let status = std::process::Command::new("cargo")
        .args(["build", "--release", "--target", "wasm32-wasip2", "-p", reference])
        .current_dir(workspace)
        .status()
        .context("running cargo to build the component")?;
    if !status.success() {
        bail!("`cargo build -p {reference} --target wasm32-wasip2` failed in {}", workspace.display());
    }
    let p = workspace.join("target/wasm32-wasip2/release").join(format!("{}.wasm", reference.replace('-', "_")));
    if !p.is_file() {
        bail!("cargo built {reference} but {} is missing: is it a `cdylib` crate?", p.display());
    }
    Ok(p)
}
