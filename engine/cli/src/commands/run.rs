//! `crm run …`: start a run, list runs, show one with its steps, cancel or retry one.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Subcommand;
use crm_concepts::timeline::StepTimeline;
use serde_json::{Value, json};

use crate::commands::engine_client::{EngineArgs, EngineClient};
use crate::config::Config;

#[derive(Subcommand, Debug)]
pub enum RunCommand {
    /// Start a run of WORKFLOW.
    Start {
        workflow: String,
        /// The run's input, a JSON object.
        #[arg(long, default_value = "{}")]
        input: String,
        /// Return the same run for a repeated key instead of starting another.
        #[arg(long)]
        idempotency_key: Option<String>,
        /// Wait for the run to finish and print its result.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Recent runs, newest first.
    List {
        #[arg(long)]
        workflow: Option<String>,
        /// queued, running, succeeded, failed or cancelled
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// A run with its steps: inputs, outputs, attempts, logs, resource use, errors.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        engine: EngineArgs,
    },
    Cancel {
        id: String,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Run a failed run again from its failed step; the steps that succeeded keep their
    /// outputs.
    Retry {
        id: String,
        #[command(flatten)]
        engine: EngineArgs,
    },
}

pub async fn run(config: &Config, command: RunCommand) -> anyhow::Result<()> {
    match command {
        RunCommand::Start { workflow, input, idempotency_key, wait, engine } => {
            let input: Value = serde_json::from_str(&input).context("--input is not valid JSON")?;
            let client = EngineClient::new(config, &engine)?;
            let mut body = json!({"workflow": workflow, "input": input, "trigger": "cli"});
            if let Some(k) = idempotency_key {
                body["idempotency_key"] = json!(k);
            }
            let accepted = client.post("/api/runs", &body).await?;
            let id = s(&accepted["id"]).to_string();
            if !wait {
                println!("{id}");
                return Ok(());
            }
            let started = Instant::now();
            loop {
                let run = client.get(&format!("/api/runs/{id}")).await?;
                if ["succeeded", "failed", "cancelled"].contains(&s(&run["status"])) {
                    println!("{id} {} in {:.1} ms", s(&run["status"]), run["duration_ms"].as_f64().unwrap_or(0.0));
                    if let Some(text) = run["rendered"].as_str() {
                        println!("{text}");
                    }
                    if s(&run["status"]) != "succeeded" {
                        bail!("run {id} {}", s(&run["status"]));
                    }
                    return Ok(());
                }
                if started.elapsed() > Duration::from_secs(300) {
                    bail!("run {id} is still {} after 5 minutes", s(&run["status"]));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        RunCommand::List { workflow, status, limit, json, engine } => {
            let mut path = format!("/api/runs?limit={limit}");
            if let Some(w) = workflow {
                path.push_str(&format!("&workflow={w}"));
            }
            if let Some(st) = status {
                path.push_str(&format!("&status={st}"));
            }
            let page = EngineClient::new(config, &engine)?.get(&path).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&page)?);
                return Ok(());
            }
            println!("{:<36} {:<24} {:<10} {:<26} {:>10}", "ID", "WORKFLOW", "STATUS", "CREATED", "MS");
            for r in page["items"].as_array().into_iter().flatten() {
                println!(
                    "{:<36} {:<24} {:<10} {:<26} {:>10}",
                    s(&r["id"]),
                    format!("{} v{}", s(&r["workflow"]), r["version"]),
                    s(&r["status"]),
                    s(&r["created_at"]),
                    r["duration_ms"].as_f64().map(|d| format!("{d:.1}")).unwrap_or_default()
                );
            }
            Ok(())
        }
        RunCommand::Show { id, json, engine } => {
            let run = EngineClient::new(config, &engine)?.get(&format!("/api/runs/{id}")).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&run)?);
            } else {
                print_run(&run);
            }
            Ok(())
        }
        RunCommand::Cancel { id, engine } => {
            let r = EngineClient::new(config, &engine)?.post(&format!("/api/runs/{id}/cancel"), &json!({})).await?;
            println!("{id}: {}", s(&r["status"]));
            Ok(())
        }
        RunCommand::Retry { id, engine } => {
            let r = EngineClient::new(config, &engine)?
                .post(&format!("/api/runs/{id}/retry"), &json!({}))
                .await
                .with_context(|| format!("cannot retry run {id}"))?;
            println!("{id}: {} (retrying from the failed step)", s(&r["status"]));
            Ok(())
        }
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn print_run(run: &Value) {
    println!("run {}  {} v{}  {}", s(&run["id"]), s(&run["workflow"]), run["version"], s(&run["status"]));
    println!("  created {}  finished {}", s(&run["created_at"]), run["finished_at"].as_str().unwrap_or("-"));
    for w in run["waiting_for"].as_array().into_iter().flatten() {
        println!("  waiting: step {} waits {}", s(&w["step"]), s(&w["what"]));
    }
    if let Some(d) = run["duration_ms"].as_f64() {
        println!("  took {d:.1} ms");
    }
    println!("  input  {}", run["input"]);
    if !run["error"].is_null() {
        println!("  error  {}", run["error"]);
    }
    if let Some(text) = run["rendered"].as_str() {
        println!("  chat   {}", text.replace('\n', "\n         "));
    }
    for st in run["steps"].as_array().into_iter().flatten() {
        println!();
        println!(
            "  step {}{}  {}  attempt {}{}",
            s(&st["step"]),
            match s(&st["kind"]) {
                "" | "component" => String::new(),
                kind => format!(" ({kind})"),
            },
            s(&st["status"]),
            st["attempt"],
            st["duration_ms"].as_f64().map(|d| format!("  {d:.1} ms")).unwrap_or_default()
        );
        if !st["input"].is_null() {
            println!("    input   {}", st["input"]);
        }
        if !st["output"].is_null() {
            println!("    output  {}", st["output"]);
        }
        if !st["next"].is_null() {
            println!("    next    {}", st["next"]);
        }
        for a in st["attempts"].as_array().into_iter().flatten() {
            let u = &a["usage"];
            println!(
                "    #{} {} on {}  {} µs  peak {} KB  {} log line(s){}",
                a["attempt"],
                s(&a["status"]),
                s(&a["worker"]),
                u["duration_us"],
                u["peak_memory_bytes"].as_u64().unwrap_or(0) / 1024,
                u["log_lines"],
                if a["applied"].as_bool() == Some(false) { "  (late, not applied)" } else { "" }
            );
            if let Some(path) = timeline(&u["timeline"]) {
                println!("       path  {path}");
            }
            if !a["error"].is_null() {
                println!("       error {}", a["error"]);
            }
            for l in a["logs"].as_array().into_iter().flatten() {
                println!(
                    "       [{}] {} {}",
                    s(&l["level"]),
                    s(&l["message"]),
                    if l["fields"].is_null() { String::new() } else { l["fields"].to_string() }
                );
            }
        }
    }
}

/// An attempt's way through the system as milliseconds per hop, when its timeline is whole.
fn timeline(t: &Value) -> Option<String> {
    let points = serde_json::from_value::<StepTimeline>(t.clone()).ok()?.path();
    if points.contains(&0) {
        return None;
    }
    let hops = ["on Redis", "to start", "run", "back to engine", "until recorded", "until applied"];
    let parts: Vec<String> = hops
        .iter()
        .zip(points.windows(2))
        .map(|(hop, w)| format!("{hop} {:.2} ms", (w[1] as f64 - w[0] as f64) / 1000.0))
        .collect();
    Some(parts.join(", "))
}
