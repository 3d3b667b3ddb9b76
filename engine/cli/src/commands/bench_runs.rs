//! `crm bench runs`: workflow runs through the whole path — HTTP API, Postgres, Redis,
//! `crm worker` processes, back to Postgres — with the engine and K workers as separate
//! processes on this machine. Goals: ≥ 9,000 one-step runs/s sustained; three-step runs
//! submit-to-completed p50 ≤ 3 ms, p99 ≤ 10 ms.
//!
//! Completion is observed the way the bot observes it: on the `/api/completions` stream,
//! so the latency is what a client sees, submit to notification.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use crm_store::Db;
use crm_store::database::with_database;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::{Mutex, oneshot};
use uuid::Uuid;

use crate::commands::bench_stack::{Processes, Scratch, bench_admin, clean_redis, percentile, spawn, start_engine};
use crate::config::Config;

const ONE_STEP: &str = include_str!("../../../../workflows/bench-one-step/workflow.toml");
const THREE_STEPS: &str = include_str!("../../../../workflows/bench-three-steps/workflow.toml");

#[derive(clap::Args, Debug)]
pub struct RunsArgs {
    /// Worker processes.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Steps each worker runs at once.
    #[arg(long, default_value_t = 128)]
    pub worker_concurrency: usize,
    /// Length of the measured one-step window (after a warm-up of a quarter of it).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// One-step runs kept in flight by the client.
    #[arg(long, default_value_t = 1024)]
    pub in_flight: usize,
    /// Three-step runs timed for latency.
    #[arg(long, default_value_t = 2000)]
    pub latency_runs: usize,
    /// Three-step runs in flight while timing latency.
    #[arg(long, default_value_t = 1)]
    pub latency_concurrency: usize,
    /// Scratch database (on the server of CRM_DATABASE_URL), dropped and recreated.
    #[arg(long, default_value = "crm_bench_runs")]
    pub database: String,
    /// Keep the scratch database afterwards.
    #[arg(long)]
    pub keep: bool,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Who waits for which run; completions may overtake the submit's answer.
#[derive(Default)]
struct Waiters {
    waiting: HashMap<Uuid, oneshot::Sender<Instant>>,
    early: HashMap<Uuid, Instant>,
}

struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
    waiters: Mutex<Waiters>,
    completed: AtomicU64,
    failed: AtomicU64,
}

impl Client {
    /// Submits a run and waits for its completion event; returns submit-to-completed.
    async fn run(&self, workflow: &str, n: u64) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let resp = self
            .http
            .post(format!("{}/api/runs", self.url))
            .bearer_auth(&self.token)
            .json(&json!({"workflow": workflow, "input": {"n": n}}))
            .send()
            .await
            .context("POST /api/runs")?;
        if resp.status() != reqwest::StatusCode::ACCEPTED {
            bail!("POST /api/runs answered {}: {}", resp.status(), resp.text().await.unwrap_or_default());
        }
        let body: Value = resp.json().await.context("reading the run")?;
        let id: Uuid = body["id"].as_str().and_then(|s| s.parse().ok()).context("run id")?;
        let rx = {
            let mut w = self.waiters.lock().await;
            if let Some(at) = w.early.remove(&id) {
                return Ok(at.duration_since(start));
            }
            let (tx, rx) = oneshot::channel();
            w.waiting.insert(id, tx);
            rx
        };
        let at = tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .with_context(|| format!("run {id} did not complete within 60 s"))?
            .context("completion listener stopped")?;
        Ok(at.duration_since(start))
    }

    /// Follows `/api/completions` and wakes the waiting submitters.
    async fn listen(self: Arc<Self>, ready: oneshot::Sender<()>) -> anyhow::Result<()> {
        let resp = self
            .http
            .get(format!("{}/api/completions", self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .context("GET /api/completions")?;
        if !resp.status().is_success() {
            bail!("GET /api/completions answered {}", resp.status());
        }
        let _ = ready.send(());
        let mut stream = resp.bytes_stream();
        let mut buf = Vec::new();
        while let Some(chunk) = stream.next().await {
            let now = Instant::now();
            buf.extend_from_slice(&chunk.context("reading completions")?);
            let mut ids = Vec::new();
            while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
                let frame: Vec<u8> = buf.drain(..end + 2).collect();
                let text = String::from_utf8_lossy(&frame);
                let Some(data) = text.lines().find_map(|l| l.strip_prefix("data:")) else {
                    continue;
                };
                let Ok(c) = serde_json::from_str::<Value>(data.trim()) else {
                    continue;
                };
                if c["status"] != "succeeded" {
                    self.failed.fetch_add(1, Ordering::Relaxed);
                }
                if let Some(id) = c["run_id"].as_str().and_then(|s| s.parse::<Uuid>().ok()) {
                    ids.push(id);
                }
            }
            if ids.is_empty() {
                continue;
            }
            self.completed.fetch_add(ids.len() as u64, Ordering::Relaxed);
            let mut w = self.waiters.lock().await;
            for id in ids {
                match w.waiting.remove(&id) {
                    Some(tx) => {
                        let _ = tx.send(now);
                    }
                    None => {
                        w.early.insert(id, now);
                    }
                }
            }
        }
        bail!("the completions stream ended")
    }
}

pub async fn run(config: &Config, args: RunsArgs) -> anyhow::Result<()> {
    let admin_url = with_database(&config.database_url, "postgres");
    let url = Db::create_scratch(&admin_url, &args.database).await.context("creating the scratch database")?;
    let result = bench(config, &args, &url).await;
    if !args.keep {
        Db::drop_scratch(&admin_url, &args.database).await;
    }
    result
}

async fn bench(config: &Config, args: &RunsArgs, db_url: &str) -> anyhow::Result<()> {
    let db = Db::connect(db_url, 4).await?;
    let (admin_id, token) = bench_admin(&db, "bench").await?;
    let echo = std::fs::read(crm_guests::ECHO).with_context(|| format!("reading {}", crm_guests::ECHO))?;
    for manifest in [ONE_STEP, THREE_STEPS] {
        let uploads = std::collections::BTreeMap::from([("fixture-echo".to_string(), echo.clone())]);
        crm_scheduler::deploy::deploy(&db, manifest, &uploads, Some(admin_id)).await?;
    }

    let scratch = Scratch::new()?;
    let (prefix, data_dir) = (&scratch.prefix, &scratch.data_dir);
    let env = scratch.engine_env(config, db_url);
    let exe = std::env::current_exe().context("locating the crm binary")?;
    let mut procs = Processes(Vec::new());
    let (engine, api) = start_engine(&exe, &env).await?;
    procs.0.push(engine);
    let (_, credential) = crm_store::worker_credentials::create(&db, "bench").await?;
    let worker_env = [
        ("CRM_ENGINE_URL", api.clone()),
        ("CRM_WORKER_CREDENTIAL", credential),
        ("CRM_REDIS_URL", config.redis_url.clone()),
        ("CRM_REDIS_PREFIX", prefix.clone()),
        ("CRM_DATA_DIR", data_dir.display().to_string()),
    ];
    for i in 0..args.workers {
        let id = format!("bench-worker-{i}");
        let conc = args.worker_concurrency.to_string();
        procs.0.push(spawn(&exe, &["worker", "--concurrency", &conc, "--id", &id], &worker_env, Stdio::null())?);
    }

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.in_flight.max(args.latency_concurrency))
        .tcp_nodelay(true)
        .build()?;
    let client = Arc::new(Client {
        http,
        url: api.clone(),
        token,
        waiters: Mutex::new(Waiters::default()),
        completed: AtomicU64::new(0),
        failed: AtomicU64::new(0),
    });
    let (ready_tx, ready_rx) = oneshot::channel();
    let listener = tokio::spawn(client.clone().listen(ready_tx));
    ready_rx.await.context("the completions stream did not open")?;
    // Workers compile the component on first use: one run of each warms them up.
    client.run("bench-one-step", 0).await?;
    client.run("bench-three-steps", 0).await?;

    // One-step throughput: a closed loop keeping `in_flight` runs going.
    let warmup = Duration::from_secs((args.seconds / 4).max(1));
    let window = Duration::from_secs(args.seconds.max(1));
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let mut loops = Vec::new();
    for t in 0..args.in_flight {
        let (client, stop, errors) = (client.clone(), stop.clone(), errors.clone());
        loops.push(tokio::spawn(async move {
            let mut n = t as u64;
            while !stop.load(Ordering::Relaxed) {
                if let Err(e) = client.run("bench-one-step", n).await {
                    if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                        eprintln!("bench: {e:#}");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                n += 1_000_000;
            }
        }));
    }
    if !args.json {
        eprintln!(
            "one-step runs: {} in flight, {} worker(s) x {}, warming up {warmup:?}…",
            args.in_flight, args.workers, args.worker_concurrency
        );
    }
    tokio::time::sleep(warmup).await;
    let before = client.completed.load(Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let completed = client.completed.load(Ordering::Relaxed) - before;
    let elapsed = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        let _ = l.await;
    }
    let throughput = completed as f64 / elapsed.as_secs_f64();

    // Three-step latency, submit to completion event.
    if !args.json {
        eprintln!("three-step runs: timing {} at concurrency {}…", args.latency_runs, args.latency_concurrency);
    }
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(args.latency_runs)));
    let per_task = args.latency_runs.div_ceil(args.latency_concurrency.max(1));
    let mut tasks = Vec::new();
    for t in 0..args.latency_concurrency.max(1) {
        let (client, latencies) = (client.clone(), latencies.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..per_task {
                let d = client.run("bench-three-steps", (t * per_task + i) as u64).await?;
                latencies.lock().await.push(d);
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let mut lat = latencies.lock().await.clone();
    lat.sort_unstable();
    let db_side: (Option<f64>, Option<f64>) = sqlx::query_as(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at) * 1000),
                percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at) * 1000)
         FROM runs WHERE workflow = 'bench-three-steps' AND finished_at IS NOT NULL",
    )
    .fetch_one(&db.pool)
    .await?;
    let metrics: Value = client
        .http
        .get(format!("{api}/api/scheduler/metrics"))
        .bearer_auth(&client.token)
        .send()
        .await?
        .json()
        .await
        .unwrap_or(Value::Null);
    listener.abort();
    let failed = client.failed.load(Ordering::Relaxed);
    drop(procs);
    clean_redis(&config.redis_url, prefix).await;

    let report = json!({
        "one_step": {
            "runs_per_s": (throughput * 10.0).round() / 10.0,
            "completed": completed,
            "seconds": elapsed.as_secs_f64(),
            "in_flight": args.in_flight,
            "goal_runs_per_s": 9000,
            "submit_errors": errors.load(Ordering::Relaxed),
        },
        "three_step": {
            "runs": lat.len(),
            "concurrency": args.latency_concurrency,
            "p50_ms": percentile(&lat, 0.5),
            "p90_ms": percentile(&lat, 0.9),
            "p99_ms": percentile(&lat, 0.99),
            "max_ms": percentile(&lat, 1.0),
            "engine_p50_ms": db_side.0,
            "engine_p99_ms": db_side.1,
            "goal_p50_ms": 3,
            "goal_p99_ms": 10,
        },
        "durability": config.scheduler_durability,
        "workers": args.workers,
        "worker_concurrency": args.worker_concurrency,
        "runs_not_succeeded": failed,
        "scheduler": metrics,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let o = &report["one_step"];
        let t = &report["three_step"];
        println!(
            "one-step runs:   {:.0} runs/s sustained ({} completed in {:.1} s, {} in flight; goal >= 9000)",
            throughput,
            completed,
            elapsed.as_secs_f64(),
            args.in_flight
        );
        println!(
            "three-step runs: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} runs at concurrency {} (goal p50 <= 3, p99 <= 10)",
            t["p50_ms"].as_f64().unwrap_or(0.0),
            t["p90_ms"].as_f64().unwrap_or(0.0),
            t["p99_ms"].as_f64().unwrap_or(0.0),
            t["max_ms"].as_f64().unwrap_or(0.0),
            lat.len(),
            args.latency_concurrency
        );
        println!(
            "                 engine-side (created -> finished in Postgres): p50 {:.2} ms, p99 {:.2} ms",
            db_side.0.unwrap_or(0.0),
            db_side.1.unwrap_or(0.0)
        );
        if o["submit_errors"].as_u64() != Some(0) || failed != 0 {
            println!("errors: {} submits failed, {failed} runs did not succeed", o["submit_errors"]);
        }
    }
    Ok(())
}
