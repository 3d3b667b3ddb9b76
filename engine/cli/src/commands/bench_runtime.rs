//! `crm bench runtime`: what one step costs in the runtime, with the queue taken out.
//!
//! - instantiate: a fresh store and instance from the component's `InstancePre`, dropped;
//! - instantiate + call: a whole step as the worker runs it (store, instance, `run`,
//!   output check, usage), one at a time;
//! - steps/s: many concurrent steps through `crm_worker::execute`, the worker's own code
//!   path, on a tokio runtime of `--threads` threads (1 = per core).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use crm_concepts::capability::Grants;
use crm_concepts::step::{AttemptKey, StepInput, StepJob, StepLimits, StepOutcome};
use crm_memory::MemoryCrm;
use crm_runtime::{Runtime, RuntimeConfig, StepCall, digest_of};
use crm_worker::{ChannelError, ComponentSource};
use serde_json::json;

#[derive(clap::Args, Debug)]
pub struct RuntimeArgs {
    /// The step component to measure (default: the trivial echo step).
    #[arg(long)]
    pub component: Option<PathBuf>,
    /// Timed instantiations and timed single calls (each).
    #[arg(long, default_value_t = 20_000)]
    pub iterations: usize,
    /// Steps for the throughput run.
    #[arg(long, default_value_t = 100_000)]
    pub steps: usize,
    /// Steps in flight at once during the throughput run.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Threads of the throughput run's tokio runtime; 1 measures one core.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The benchmark's step is already compiled; the worker path never needs to fetch it.
struct Preloaded;

impl ComponentSource for Preloaded {
    async fn fetch(&self, digest: &str) -> Result<Vec<u8>, ChannelError> {
        Err(ChannelError::NoComponent(digest.to_string()))
    }
}

fn job(digest: &str, n: usize) -> StepJob {
    StepJob {
        key: AttemptKey { run_id: uuid::Uuid::nil(), step: "bench".into(), attempt: 1 },
        workflow: "bench".into(),
        component: digest.to_string(),
        input: StepInput { run_input: json!({ "n": n }), deps: Default::default(), config: serde_json::Value::Null },
        grants: Grants::default(),
        limits: StepLimits::default(),
        acting_user: None,
        ticket: String::new(),
        trace: None,
        provisional: false,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

pub async fn run(args: RuntimeArgs) -> anyhow::Result<()> {
    let path = args.component.clone().unwrap_or_else(|| PathBuf::from(crm_guests::ECHO));
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let digest = digest_of(&bytes);
    let max_instances = u32::try_from(args.concurrency + 8).unwrap_or(u32::MAX);
    let rt = Arc::new(
        Runtime::<MemoryCrm>::new(RuntimeConfig { max_instances, ..RuntimeConfig::default() })
            .context("starting the wasm runtime")?,
    );
    let component = rt.load(&digest, Arc::new(bytes)).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let services = Arc::new(MemoryCrm::empty());
    let limits = StepLimits::default();
    let grants = Arc::new(Grants::default());
    let input = job(&digest, 0).input;
    let call = || StepCall {
        key: AttemptKey { run_id: uuid::Uuid::nil(), step: "bench".into(), attempt: 1 },
        workflow: "bench".into(),
        acting_user: None,
        ticket: String::new(),
        provisional: false,
        input: &input,
        grants: grants.clone(),
        limits: &limits,
    };

    // Warm up: page in the pool slots and code before timing anything.
    for _ in 0..args.iterations.min(2_000) {
        rt.run(&component, call(), services.clone()).await;
    }

    let faults_before = minor_faults();
    let mut inst = Vec::with_capacity(args.iterations);
    for _ in 0..args.iterations {
        let t = Instant::now();
        rt.instantiate_only(&component, call(), services.clone()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        inst.push(t.elapsed());
    }
    inst.sort();
    let faults_after_inst = minor_faults();

    let mut calls = Vec::with_capacity(args.iterations);
    for _ in 0..args.iterations {
        let t = Instant::now();
        let run = rt.run(&component, call(), services.clone()).await;
        calls.push(t.elapsed());
        if let StepOutcome::Failed { error } = run.outcome {
            bail!("the benchmark step failed: {error}");
        }
    }
    calls.sort();
    let per_call = |from: Option<u64>, to: Option<u64>| match (from, to) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / args.iterations.max(1) as f64),
        _ => None,
    };
    let inst_faults = per_call(faults_before, faults_after_inst);
    let call_faults = per_call(faults_after_inst, minor_faults());

    let (elapsed, failures) = throughput(rt.clone(), services, &digest, &args).await?;
    if failures > 0 {
        bail!("{failures} of {} steps failed in the throughput run", args.steps);
    }
    let per_sec = args.steps as f64 / elapsed.as_secs_f64();
    let per_core = per_sec / args.threads.max(1) as f64;

    if args.json {
        println!(
            "{}",
            json!({
                "component": path.display().to_string(),
                "instantiate_median_us": us(percentile(&inst, 0.5)),
                "instantiate_p99_us": us(percentile(&inst, 0.99)),
                "call_median_us": us(percentile(&calls, 0.5)),
                "call_p99_us": us(percentile(&calls, 0.99)),
                "instantiate_page_faults": inst_faults,
                "call_page_faults": call_faults,
                "steps": args.steps,
                "concurrency": args.concurrency,
                "threads": args.threads,
                "steps_per_sec": per_sec,
                "steps_per_sec_per_core": per_core,
            })
        );
    } else {
        println!("component            {}", path.display());
        println!(
            "instantiate          median {:>8.1} µs   p99 {:>8.1} µs   (goal: median <= 10 µs)",
            us(percentile(&inst, 0.5)),
            us(percentile(&inst, 0.99))
        );
        println!(
            "instantiate + call   median {:>8.1} µs   p99 {:>8.1} µs",
            us(percentile(&calls, 0.5)),
            us(percentile(&calls, 0.99))
        );
        if let (Some(inst), Some(call)) = (inst_faults, call_faults) {
            println!("page faults          {inst:.1} per instantiate, {call:.1} per instantiate + call");
        }
        println!(
            "throughput           {:>10.0} steps/s on {} thread(s), {} in flight = {:.0} steps/s per core (goal: >= 20,000)",
            per_sec, args.threads, args.concurrency, per_core
        );
    }
    Ok(())
}

/// The process's minor page faults so far (`/proc/self/stat`, Linux): a fresh instance
/// whose pool slot was not reset in place faults its memory back in on every step.
fn minor_faults() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces;
    // minflt is field 10 of the whole line.
    stat.rsplit_once(')')?.1.split_whitespace().nth(7)?.parse().ok()
}

/// Runs `args.steps` steps through the worker's `execute` on a dedicated tokio runtime.
async fn throughput(
    rt: Arc<Runtime<MemoryCrm>>,
    services: Arc<MemoryCrm>,
    digest: &str,
    args: &RuntimeArgs,
) -> anyhow::Result<(Duration, usize)> {
    let (steps, concurrency, threads) = (args.steps, args.concurrency.max(1), args.threads.max(1));
    let digest = digest.to_string();
    let handle = std::thread::spawn(move || -> anyhow::Result<(Duration, usize)> {
        let tokio_rt = if threads == 1 {
            tokio::runtime::Builder::new_current_thread().enable_all().build()?
        } else {
            tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?
        };
        tokio_rt.block_on(async move {
            let next = Arc::new(AtomicUsize::new(0));
            let failures = Arc::new(AtomicUsize::new(0));
            let source = Arc::new(Preloaded);
            let started = Instant::now();
            let mut tasks = Vec::with_capacity(concurrency);
            for _ in 0..concurrency {
                let (rt, services, source, next, failures, digest) =
                    (rt.clone(), services.clone(), source.clone(), next.clone(), failures.clone(), digest.clone());
                tasks.push(tokio::spawn(async move {
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= steps {
                            break;
                        }
                        let run = crm_worker::execute(&rt, &services, &*source, &job(&digest, n)).await;
                        if matches!(run.outcome, StepOutcome::Failed { .. }) {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }));
            }
            for t in tasks {
                t.await.context("a benchmark task panicked")?;
            }
            Ok((started.elapsed(), failures.load(Ordering::Relaxed)))
        })
    });
    tokio::task::spawn_blocking(move || handle.join())
        .await
        .context("joining the benchmark thread")?
        .map_err(|_| anyhow::anyhow!("the benchmark thread panicked"))?
}
