//! `crm component check|run`: authoring tools that need neither Postgres nor Redis.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Subcommand;
use crm_concepts::capability::{Capability, Grants};
use crm_concepts::step::{AttemptKey, LogLevel, StepInput, StepLimits, StepOutcome};
use crm_memory::MemoryCrm;
use crm_runtime::{Runtime, RuntimeConfig, StepCall, digest_of};

use crate::config::Config;

#[derive(Subcommand, Debug)]
pub enum ComponentCommand {
    /// Check that FILE is a step component this host can run (the crm:automation/step world).
    Check { file: PathBuf },
    /// Run one step locally with in-memory records; prints its output, log and resource use.
    ///
    /// Without --grant the step holds every capability a local run can serve: records:read,
    /// records:write, log, state, notify, and secret:NAME for each secret in the fixtures
    /// (no http: outbound hosts must be granted by name). With --grant it holds exactly
    /// the capabilities given.
    ///
    /// It reads no database, so the installation's custom field definitions are not
    /// checked: a step's write of `custom` is checked only against the definitions in the
    /// --records file's "fields" section (as `crm field add` makes them), the way the
    /// engine checks it against its own.
    Run(RunArgs),
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    pub file: PathBuf,
    /// The run input, a JSON document.
    #[arg(long, default_value = "{}")]
    pub input: String,
    /// The step's config, a JSON document (`--config` is the global config-file flag).
    #[arg(long = "step-config", default_value = "null")]
    pub step_config: String,
    /// Outputs of the steps this one needs: a JSON object of step id to output.
    #[arg(long, default_value = "{}")]
    pub deps: String,
    /// Records, secrets, state and custom field definitions the step sees (JSON; see
    /// workflows/lead-score/fixtures.json; custom field definitions go in "fields").
    #[arg(long)]
    pub records: Option<PathBuf>,
    /// A capability to grant (repeatable): records:read, records:write, log, state, notify,
    /// http:HOST, secret:NAME.
    #[arg(long = "grant")]
    pub grants: Vec<String>,
    /// The CRM user the run acts for.
    #[arg(long)]
    pub acting_user: Option<i64>,
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
    #[arg(long, default_value_t = 64)]
    pub memory_mb: u64,
}

pub async fn run(config: &Config, command: ComponentCommand) -> anyhow::Result<()> {
    match command {
        ComponentCommand::Check { file } => check(config, &file).await,
        ComponentCommand::Run(args) => run_step(config, args).await,
    }
}

fn local_runtime(config: &Config) -> anyhow::Result<Runtime<MemoryCrm>> {
    Runtime::new(RuntimeConfig { max_instances: 4, egress: config.egress_policy()?, ..RuntimeConfig::default() })
        .context("starting the wasm runtime")
}

fn read(file: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(file).with_context(|| format!("reading {}", file.display()))
}

async fn check(config: &Config, file: &Path) -> anyhow::Result<()> {
    let bytes = read(file)?;
    let rt = local_runtime(config)?;
    match crm_runtime::check::check(&rt, bytes).await {
        Ok(report) => {
            println!("{}: a crm:automation/step component", file.display());
            println!("  digest  {}", report.digest);
            println!("  size    {} bytes", report.size);
            if report.crm_imports.is_empty() {
                println!("  uses no crm:automation capabilities");
            } else {
                println!("  crm imports (grant what it calls): {}", report.crm_imports.join(", "));
            }
            Ok(())
        }
        Err(e) => bail!("{}: {}", file.display(), e.message),
    }
}

fn parse_json(text: &str, what: &str) -> anyhow::Result<serde_json::Value> {
    serde_json::from_str(text).with_context(|| format!("{what} is not valid JSON"))
}

async fn run_step(settings: &Config, args: RunArgs) -> anyhow::Result<()> {
    let bytes = read(&args.file)?;
    let run_input = parse_json(&args.input, "--input")?;
    let config = parse_json(&args.step_config, "--step-config")?;
    let deps: std::collections::BTreeMap<String, std::sync::Arc<serde_json::Value>> =
        serde_json::from_str(&args.deps).context("--deps must be a JSON object of step id to output")?;
    let (services, secret_names) = match &args.records {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let names: Vec<String> = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("secrets").and_then(|s| s.as_object()).map(|o| o.keys().cloned().collect()))
                .unwrap_or_default();
            let svc = MemoryCrm::from_json(&text).with_context(|| format!("loading {}", path.display()))?;
            (svc, names)
        }
        None => (MemoryCrm::empty(), Vec::new()),
    };
    let grants = if args.grants.is_empty() {
        let mut caps = vec![
            Capability::RecordsRead,
            Capability::RecordsWrite,
            Capability::Log,
            Capability::State,
            Capability::Notify,
        ];
        caps.extend(secret_names.iter().filter_map(|n| format!("secret:{n}").parse().ok()));
        Grants::new(caps)
    } else {
        let caps: Result<Vec<Capability>, _> = args.grants.iter().map(|g| g.parse::<Capability>()).collect();
        Grants::new(caps?)
    };

    let rt = local_runtime(settings)?;
    let component = rt
        .load(&digest_of(&bytes), Arc::new(bytes))
        .await
        .map_err(|e| anyhow::anyhow!("{}: {}", args.file.display(), e))?;
    let services = Arc::new(services);
    let input = StepInput { run_input, deps, config };
    let limits = StepLimits {
        timeout_ms: args.timeout_ms,
        memory_bytes: args.memory_mb.saturating_mul(1 << 20),
        ..StepLimits::default()
    };
    let call = StepCall {
        key: AttemptKey { run_id: uuid::Uuid::now_v7(), step: "local".into(), attempt: 1 },
        workflow: "local".into(),
        acting_user: args.acting_user,
        ticket: String::new(),
        provisional: false,
        input: &input,
        grants: Arc::new(grants.clone()),
        limits: &limits,
    };
    let run = rt.run(&component, call, services.clone()).await;

    let granted: Vec<String> = grants.0.iter().map(|c| c.to_string()).collect();
    eprintln!("granted: {}", granted.join(", "));
    for line in &run.logs {
        let level = match line.level {
            LogLevel::Trace => "TRACE",
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO ",
            LogLevel::Warn => "WARN ",
            LogLevel::Error => "ERROR",
        };
        if line.fields.is_null() {
            eprintln!("log {level} {}", line.message);
        } else {
            eprintln!("log {level} {} {}", line.message, line.fields);
        }
    }
    for n in services.notifications() {
        eprintln!("notify user {}: {}", n.user_id, n.text);
    }
    let u = &run.usage;
    eprintln!(
        "usage: {:.2} ms, {} epoch tick(s), peak memory {:.1} MiB, {} log line(s)",
        u.duration_us as f64 / 1000.0,
        u.epochs,
        u.peak_memory_bytes as f64 / f64::from(1 << 20),
        u.log_lines
    );
    match run.outcome {
        StepOutcome::Ok { output, next } => {
            println!("{}", serde_json::to_string_pretty(&output)?);
            if let Some(next) = next {
                eprintln!("next steps: {}", if next.is_empty() { "(none)".into() } else { next.join(", ") });
            }
            Ok(())
        }
        StepOutcome::Failed { error } => {
            let retry = if error.is_retryable() { "retryable" } else { "permanent" };
            bail!("the step failed ({retry}) with {}: {}", error.code, error.message)
        }
    }
}
