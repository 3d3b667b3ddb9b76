//! `crm bench runs`: workflow runs through the whole path — HTTP API, Postgres, Redis,
//! `crm worker` processes, back to Postgres — with the engine and K workers as separate
//! processes on this machine. A machine's speed drifts by half from round to round, so the
//! goals are set against the Celery peer (`../shared/peers/celery`) run right after in the
//! same round: ≥ 17× its one-step tasks/s and three-step p50 ≤ 0.4× its `chain3`; besides,
//! three-step p99 ≤ 8 ms (held here, more strictly than the issue asks, also while one-step
//! runs keep the system at half its throughput) and ≤ 200 µs of CPU per one-step run over
//! every process involved, which noise moves least. The output states each goal beside its
//! figure; the ratios need the peer's figures from the same round.
//!
//! Completion is observed the way the bot observes it: on the `/api/completions` stream,
//! so the latency is what a client sees, submit to notification.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use crm_bot::sse::SseParser;
use crm_concepts::run::RunStatus;
use crm_store::Db;
use crm_store::database::with_database;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::{Mutex, oneshot};
use uuid::Uuid;

use crate::commands::bench_cpu::{CpuMeter, Role};
use crate::commands::bench_hops::{self, TimedRun};
use crate::commands::bench_stack::{Processes, Scratch, bench_admin, clean_redis, percentile, spawn, start_engine};
use crate::config::Config;
use crm_concepts::timeline::now_us;

const ONE_STEP: &str = include_str!("../../../../workflows/bench-one-step/workflow.toml");
const THREE_STEPS: &str = include_str!("../../../../workflows/bench-three-steps/workflow.toml");

/// The goals, as the issue that set them states them: relative to the Celery peer run in
/// the same round, whose figures this bench does not have.
const GOAL_RUNS: &str = ">= 17x the Celery peer's tasks/s in the same round";
const GOAL_P50: &str = "p50 <= 0.4x the Celery peer's chain3 p50 in the same round";
const GOAL_P99_MS: u64 = 8;
const GOAL_CPU_US_PER_RUN: u64 = 200;

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
    /// Also time three-step runs while one-step runs keep the system at this fraction of
    /// the throughput just measured (0 to skip).
    #[arg(long, default_value_t = 0.5)]
    pub under_load: f64,
    /// Offer that load at this many one-step runs a second instead: the same load for two
    /// builds whose throughput differs (a fraction of each one's own puts the faster one
    /// under more).
    #[arg(long, value_parser = positive_rate)]
    pub load_rate: Option<f64>,
    /// How often the load's runs are submitted, in ms: each time, those due by the clock.
    /// At 1, arrivals are as smooth as the timer allows: smaller batches all along the
    /// path, so more CPU per run.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub load_tick_ms: u64,
    /// Also measure throughput with 1, 2 and 4 workers and with 2 engines (a fresh set of
    /// processes for each row, each a window of `--seconds`).
    #[arg(long)]
    pub scale_out: bool,
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
    waiting: HashMap<Uuid, oneshot::Sender<Seen>>,
    early: HashMap<Uuid, Seen>,
}

/// What the client reads of a completion event.
#[derive(serde::Deserialize)]
struct Finished {
    run_id: Uuid,
    status: RunStatus,
}

/// When a completion event arrived: for latencies, and as a wall clock for the breakdown.
#[derive(Clone, Copy)]
struct Seen {
    at: Instant,
    wall_us: u64,
    /// the stream entry's time (its id is `<ms>-<seq>` of Redis' clock), in µs; 0 if unknown
    published_us: u64,
}

struct Client {
    http: reqwest::Client,
    /// Every engine's API; submits go round-robin, completions are read from the first
    /// (they are one Redis stream, so any engine's feed has them all).
    urls: Vec<String>,
    token: String,
    waiters: Mutex<Waiters>,
    completed: AtomicU64,
    failed: AtomicU64,
    /// the three-step runs timed since the last [`Client::take_timed`]
    timed: std::sync::Mutex<Vec<TimedRun>>,
}

impl Client {
    fn take_timed(&self) -> Vec<TimedRun> {
        std::mem::take(&mut *self.timed.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    fn finished(&self, workflow: &str, id: Uuid, start: Instant, submitted_us: u64, seen: Seen) -> Duration {
        self.completed.fetch_add(1, Ordering::Relaxed);
        if workflow == "bench-three-steps" {
            let run = TimedRun { id, submitted_us, seen_us: seen.wall_us, published_us: seen.published_us };
            self.timed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(run);
        }
        seen.at.duration_since(start)
    }

    /// Submits a run and waits for its completion event; returns submit-to-completed.
    async fn run(&self, workflow: &str, n: u64) -> anyhow::Result<Duration> {
        let (start, submitted_us) = (Instant::now(), now_us());
        let resp = self
            .http
            .post(format!("{}/api/runs", self.urls[n as usize % self.urls.len()]))
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
            if let Some(seen) = w.early.remove(&id) {
                return Ok(self.finished(workflow, id, start, submitted_us, seen));
            }
            let (tx, rx) = oneshot::channel();
            w.waiting.insert(id, tx);
            rx
        };
        let seen = tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .with_context(|| format!("run {id} did not complete within 60 s"))?
            .context("completion listener stopped")?;
        Ok(self.finished(workflow, id, start, submitted_us, seen))
    }

    /// Follows `/api/completions` and wakes the waiting submitters. The stream may replay
    /// completions of earlier sets of processes on the same prefix: only the runs this client
    /// submitted count (in [`Client::run`]).
    async fn listen(self: Arc<Self>, ready: oneshot::Sender<()>) -> anyhow::Result<()> {
        let resp = self
            .http
            .get(format!("{}/api/completions", self.urls[0]))
            .bearer_auth(&self.token)
            .send()
            .await
            .context("GET /api/completions")?;
        if !resp.status().is_success() {
            bail!("GET /api/completions answered {}", resp.status());
        }
        let _ = ready.send(());
        let mut stream = resp.bytes_stream();
        let mut parser = SseParser::default();
        while let Some(chunk) = stream.next().await {
            let (at, wall_us) = (Instant::now(), now_us());
            let mut ids = Vec::new();
            for event in parser.feed(&chunk.context("reading completions")?) {
                let published_ms = event.id.as_deref().and_then(crm_queue::entry_ms);
                // the middle of the entry's millisecond: off by at most half of one, either way
                let published_us = published_ms.map_or(0, |ms| ms * 1000 + 500);
                let seen = Seen { at, wall_us, published_us };
                let Ok(c) = serde_json::from_str::<Finished>(&event.data) else {
                    continue;
                };
                if c.status != RunStatus::Succeeded {
                    self.failed.fetch_add(1, Ordering::Relaxed);
                }
                ids.push((c.run_id, seen));
            }
            if ids.is_empty() {
                continue;
            }
            let mut w = self.waiters.lock().await;
            for (id, seen) in ids {
                match w.waiting.remove(&id) {
                    Some(tx) => {
                        let _ = tx.send(seen);
                    }
                    None => {
                        w.early.insert(id, seen);
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
    let scratch = Scratch::new(&config.redis_prefix)?;
    let setup = Setup { config, args, db: &db, db_url, scratch: &scratch, token };

    let stack = setup.start(1, args.workers).await?;
    if !args.json {
        eprintln!(
            "one-step runs: {} in flight, {} worker(s) x {}, {}, warming up…",
            args.in_flight,
            args.workers,
            args.worker_concurrency,
            match config.threads {
                Some(n) => format!("{n} runtime thread(s) per process (CRM_THREADS)"),
                None => "a runtime thread per core in each process".to_string(),
            }
        );
    }
    let one_step = stack.throughput(args).await;

    if !args.json {
        eprintln!("three-step runs: timing {} at concurrency {}…", args.latency_runs, args.latency_concurrency);
    }
    stack.client.take_timed();
    let idle = stack.latency(args.latency_runs, args.latency_concurrency).await?;
    let idle_hops = bench_hops::breakdown(&db, &stack.client.take_timed()).await?;
    // Before the runs under load join them.
    let db_side: (Option<f64>, Option<f64>) = sqlx::query_as(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at) * 1000),
                percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at) * 1000)
         FROM runs WHERE workflow = 'bench-three-steps' AND finished_at IS NOT NULL",
    )
    .fetch_one(&db.pool)
    .await?;
    let load_rate = args.load_rate.or_else(|| {
        (args.under_load > 0.0 && one_step.runs_per_s > 0.0).then_some(one_step.runs_per_s * args.under_load)
    });
    let under_load = if let Some(rate) = load_rate {
        if !args.json {
            eprintln!("three-step runs: timing {} while one-step runs arrive at {rate:.0}/s…", args.latency_runs);
        }
        let tick = Duration::from_millis(args.load_tick_ms);
        let load = stack.latency_under_load(rate, tick, args.latency_runs).await?;
        let hops = bench_hops::breakdown(&db, &stack.client.take_timed()).await?;
        Some((load, hops))
    } else {
        None
    };
    let metrics = stack.counters().await?.into_iter().next().unwrap_or(Value::Null);
    let failed = stack.client.failed.load(Ordering::Relaxed);
    drop(stack);

    let mut scale_out = Vec::new();
    if args.scale_out {
        for (engines, workers) in [(1, 1), (1, 2), (1, 4), (2, 2), (2, 4)] {
            if !args.json {
                eprintln!("scale-out: {engines} engine(s), {workers} worker(s)…");
            }
            forget_runs(&db).await?;
            let stack = setup.start(engines, workers).await?;
            let t = stack.throughput(args).await;
            scale_out.push(json!({
                "engines": engines, "workers": workers,
                "runs_per_s": (t.runs_per_s * 10.0).round() / 10.0,
                "cpu_us_per_run": t.cpu["total"],
                "schedulers": stack.counters().await?,
            }));
        }
    }
    clean_redis(&config.redis_url, &scratch.prefix).await;

    let three_step = |lat: &[Duration]| {
        json!({
            "runs": lat.len(),
            "p50_ms": percentile(lat, 0.5),
            "p90_ms": percentile(lat, 0.9),
            "p99_ms": percentile(lat, 0.99),
            "max_ms": percentile(lat, 1.0),
        })
    };
    let mut idle_report = three_step(&idle);
    idle_report["concurrency"] = json!(args.latency_concurrency);
    idle_report["engine_p50_ms"] = json!(db_side.0);
    idle_report["engine_p99_ms"] = json!(db_side.1);
    idle_report["goal"] = json!(GOAL_P50);
    idle_report["goal_p99_ms"] = json!(GOAL_P99_MS);
    idle_report["hops"] = idle_hops.clone();
    let report = json!({
        "one_step": {
            "runs_per_s": (one_step.runs_per_s * 10.0).round() / 10.0,
            "completed": one_step.completed,
            "seconds": one_step.elapsed.as_secs_f64(),
            "in_flight": args.in_flight,
            "goal": GOAL_RUNS,
            "submit_errors": one_step.errors,
            "cpu_us_per_run": one_step.cpu,
            "goal_cpu_us_per_run": GOAL_CPU_US_PER_RUN,
        },
        "three_step": idle_report,
        "three_step_under_load": under_load.as_ref().map(|(load, hops)| {
            let mut r = three_step(&load.latencies);
            r["one_step_runs_per_s"] = json!(load.one_step_runs_per_s.round());
            r["cpu_us_per_run"] = load.cpu_us_per_run.clone();
            r["cores_busy"] = json!((load.cores_busy * 100.0).round() / 100.0);
            r["load_tick_ms"] = json!(args.load_tick_ms);
            r["load_rate_asked"] = json!(load_rate.map(f64::round));
            r["hops"] = hops.clone();
            r["goal_p99_ms"] = json!(GOAL_P99_MS);
            r
        }),
        "scale_out": scale_out,
        "durability": config.scheduler_durability,
        "workers": args.workers,
        "worker_concurrency": args.worker_concurrency,
        // null: a thread per core
        "runtime_threads": config.threads,
        "runs_not_succeeded": failed,
        "scheduler": metrics,
        "database": args.database,
        "redis_prefix": scratch.prefix,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let o = &report["one_step"];
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    println!(
        "one-step runs:   {:.0} runs/s sustained ({} completed in {:.1} s, {} in flight; goal: {GOAL_RUNS})",
        one_step.runs_per_s,
        one_step.completed,
        one_step.elapsed.as_secs_f64(),
        args.in_flight
    );
    let c = &o["cpu_us_per_run"];
    println!(
        "                 CPU per run: {} µs in total (engine {}, workers {}, Postgres {}, Redis {}; the bench's client {} besides; goal <= {GOAL_CPU_US_PER_RUN})",
        c["total"], c["engine"], c["workers"], c["postgres"], c["redis"], c["bench_client"]
    );
    let t = &report["three_step"];
    println!(
        "three-step runs: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} runs at concurrency {} (goal: {GOAL_P50}, p99 <= {GOAL_P99_MS} ms)",
        f(&t["p50_ms"]),
        f(&t["p90_ms"]),
        f(&t["p99_ms"]),
        f(&t["max_ms"]),
        idle.len(),
        args.latency_concurrency
    );
    println!(
        "                 engine-side (created -> finished in Postgres): p50 {:.2} ms, p99 {:.2} ms",
        db_side.0.unwrap_or(0.0),
        db_side.1.unwrap_or(0.0)
    );
    let l = &report["three_step_under_load"];
    if !l.is_null() {
        println!(
            "                 under load ({} one-step runs/s): p50 {:.2} ms, p99 {:.2} ms (goal: p99 <= {GOAL_P99_MS} ms); {} µs CPU per one-step run, {:.2} of {} cores busy",
            l["one_step_runs_per_s"],
            f(&l["p50_ms"]),
            f(&l["p99_ms"]),
            l["cpu_us_per_run"]["total"],
            f(&l["cores_busy"]),
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
    }
    bench_hops::print(
        "                 where an idle three-step run's time goes (per-step hops count each of its three steps):",
        &idle_hops,
    );
    if let Some((_, hops)) = &under_load {
        bench_hops::print("                 and under load:", hops);
    }
    for row in &scale_out {
        println!(
            "scale-out:       {} engine(s), {} worker(s): {:.0} runs/s, {} µs CPU per run",
            row["engines"],
            row["workers"],
            f(&row["runs_per_s"]),
            row["cpu_us_per_run"]
        );
    }
    if one_step.errors != 0 || failed != 0 {
        println!("errors: {} submits failed, {failed} runs did not succeed", one_step.errors);
    }
    Ok(())
}

/// What every set of processes of one bench shares: its database, Redis prefix, data
/// directory and the admin token its client uses.
struct Setup<'a> {
    config: &'a Config,
    args: &'a RunsArgs,
    db: &'a Db,
    db_url: &'a str,
    scratch: &'a Scratch,
    token: String,
}

/// Engines and workers started for one measurement, with a client following completions;
/// stopped on drop.
struct Stack {
    procs: Processes,
    workers: usize,
    client: Arc<Client>,
    listener: tokio::task::JoinHandle<anyhow::Result<()>>,
    redis_url: String,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl Setup<'_> {
    async fn start(&self, engines: usize, workers: usize) -> anyhow::Result<Stack> {
        let mut env = self.scratch.engine_env(self.config, self.db_url);
        env.extend(runtime_threads(self.config));
        let exe = std::env::current_exe().context("locating the crm binary")?;
        let mut procs = Processes(Vec::new());
        let mut urls = Vec::new();
        for _ in 0..engines.max(1) {
            let (engine, api) = start_engine(&exe, &env).await?;
            procs.0.push(engine);
            urls.push(api);
        }
        let (_, credential) = crm_store::worker_credentials::create(self.db, "bench").await?;
        for i in 0..workers {
            let mut worker_env = vec![
                // Workers spread over the engines, as behind a load balancer.
                ("CRM_ENGINE_URL", urls[i % urls.len()].clone()),
                ("CRM_WORKER_CREDENTIAL", credential.clone()),
                ("CRM_REDIS_URL", self.config.redis_url.clone()),
                ("CRM_REDIS_PREFIX", self.scratch.prefix.clone()),
                ("CRM_DATA_DIR", self.scratch.data_dir.display().to_string()),
            ];
            worker_env.extend(runtime_threads(self.config));
            let id = format!("bench-worker-{i}");
            let conc = self.args.worker_concurrency.to_string();
            procs.0.push(spawn(&exe, &["worker", "--concurrency", &conc, "--id", &id], &worker_env, Stdio::null())?);
        }
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(self.args.in_flight.max(self.args.latency_concurrency))
            .tcp_nodelay(true)
            .build()?;
        let client = Arc::new(Client {
            http,
            urls,
            token: self.token.clone(),
            waiters: Mutex::new(Waiters::default()),
            completed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            timed: std::sync::Mutex::new(Vec::new()),
        });
        let (ready_tx, ready_rx) = oneshot::channel();
        let listener = tokio::spawn(client.clone().listen(ready_tx));
        ready_rx.await.context("the completions stream did not open")?;
        let stack = Stack { procs, workers, client, listener, redis_url: self.config.redis_url.clone() };
        // Workers compile the component on first use: a run of each per worker warms them.
        for n in 0..(2 * workers.max(1)) as u64 {
            stack.client.run("bench-one-step", n).await?;
            stack.client.run("bench-three-steps", n).await?;
        }
        Ok(stack)
    }
}

/// Empties the runs of the bench's database, so that every set of processes starts on
/// what the first one did: runs left by the row before made each row slower than the last
/// (larger tables and indexes).
async fn forget_runs(db: &Db) -> anyhow::Result<()> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT c.table_name::text FROM information_schema.columns c
         JOIN information_schema.tables t USING (table_schema, table_name)
         WHERE c.table_schema = current_schema() AND c.column_name = 'run_id' AND t.table_type = 'BASE TABLE'",
    )
    .fetch_all(&db.pool)
    .await?;
    // names from the catalog, quoted
    let all = std::iter::once("runs".to_string()).chain(tables).map(|t| format!("\"{t}\"")).collect::<Vec<_>>();
    sqlx::query(sqlx::AssertSqlSafe(format!("TRUNCATE {}", all.join(", "))))
        .execute(&db.pool)
        .await
        .context("emptying the bench's runs")?;
    Ok(())
}

/// `--load-rate`: a finite number of one-step runs a second, more than 0.
fn positive_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!("{s:?} is not a rate: give one-step runs a second, more than 0")),
    }
}

/// The bench's own runtime threads for the engines and workers it starts, whether they
/// came from the environment or the configuration file.
fn runtime_threads(config: &Config) -> Option<(&'static str, String)> {
    config.threads.map(|n| ("CRM_THREADS", n.to_string()))
}

/// Three-step latency while one-step runs arrive at a fixed rate, and what the load cost.
struct UnderLoad {
    latencies: Vec<Duration>,
    /// the rate at which one-step runs were submitted while the three-step runs were timed
    one_step_runs_per_s: f64,
    cpu_us_per_run: Value,
    /// CPU of every process on the path, the client's included, per second of the window
    cores_busy: f64,
}

struct Throughput {
    runs_per_s: f64,
    completed: u64,
    elapsed: Duration,
    errors: u64,
    cpu: Value,
}

impl Stack {
    /// Each engine's scheduler counters, in the order the engines started.
    async fn counters(&self) -> anyhow::Result<Vec<Value>> {
        let mut all = Vec::with_capacity(self.client.urls.len());
        for url in &self.client.urls {
            let get = self.client.http.get(format!("{url}/api/scheduler/metrics")).bearer_auth(&self.client.token);
            all.push(get.send().await?.error_for_status()?.json().await?);
        }
        Ok(all)
    }

    /// One-step runs in a closed loop keeping `in_flight` going: a warm-up of a quarter of
    /// the window, then the window.
    async fn throughput(&self, args: &RunsArgs) -> Throughput {
        let warmup = Duration::from_secs((args.seconds / 4).max(1));
        let window = Duration::from_secs(args.seconds.max(1));
        let stop = Arc::new(AtomicBool::new(false));
        let errors = Arc::new(AtomicU64::new(0));
        let mut loops = Vec::new();
        for t in 0..args.in_flight {
            let (client, stop, errors) = (self.client.clone(), stop.clone(), errors.clone());
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
        tokio::time::sleep(warmup).await;
        let meter = cpu_meter(&self.redis_url, &self.procs, self.workers);
        let cpu_before = meter.sample();
        let before = self.client.completed.load(Ordering::Relaxed);
        let t0 = Instant::now();
        tokio::time::sleep(window).await;
        let completed = self.client.completed.load(Ordering::Relaxed) - before;
        let elapsed = t0.elapsed();
        let cpu = meter.sample().per_unit_since(&cpu_before, completed, &["bench_client"]);
        stop.store(true, Ordering::Relaxed);
        for l in loops {
            let _ = l.await;
        }
        Throughput {
            runs_per_s: completed as f64 / elapsed.as_secs_f64(),
            completed,
            elapsed,
            errors: errors.load(Ordering::Relaxed),
            cpu,
        }
    }

    /// Three-step runs, submit to completion event, `concurrency` at a time; sorted.
    async fn latency(&self, runs: usize, concurrency: usize) -> anyhow::Result<Vec<Duration>> {
        let latencies = Arc::new(Mutex::new(Vec::with_capacity(runs)));
        let per_task = runs.div_ceil(concurrency.max(1));
        let mut tasks = Vec::new();
        for t in 0..concurrency.max(1) {
            let (client, latencies) = (self.client.clone(), latencies.clone());
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
        Ok(lat)
    }

    /// Three-step latency, one at a time, while one-step runs arrive at `rate` per second
    /// (an open loop: they keep coming whether or not earlier ones are done).
    async fn latency_under_load(&self, rate: f64, tick: Duration, runs: usize) -> anyhow::Result<UnderLoad> {
        let stop = Arc::new(AtomicBool::new(false));
        let submitted = Arc::new(AtomicU64::new(0));
        let load = {
            let (client, stop, submitted) = (self.client.clone(), stop.clone(), submitted.clone());
            tokio::spawn(async move {
                // Each tick submits what is due by the clock, so a late tick catches up and
                // the rate holds (counting ticks fell short of it whenever one was late).
                let mut interval = tokio::time::interval(tick);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                let start = Instant::now();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    interval.tick().await;
                    let due = (start.elapsed().as_secs_f64() * rate) as u64;
                    while n < due {
                        n += 1;
                        submitted.fetch_add(1, Ordering::Relaxed);
                        let client = client.clone();
                        tokio::spawn(async move { client.run("bench-one-step", 500_000_000 + n).await });
                    }
                }
            })
        };
        // Let the load settle before timing.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let meter = cpu_meter(&self.redis_url, &self.procs, self.workers);
        let (before, cpu_before, t0) = (submitted.load(Ordering::Relaxed), meter.sample(), Instant::now());
        let lat = self.latency(runs, 1).await;
        let (elapsed, cpu_after) = (t0.elapsed(), meter.sample());
        let one_step = submitted.load(Ordering::Relaxed) - before;
        stop.store(true, Ordering::Relaxed);
        let _ = load.await;
        Ok(UnderLoad {
            latencies: lat?,
            one_step_runs_per_s: one_step as f64 / elapsed.as_secs_f64(),
            // the timed three-step runs' share is small beside the load's
            cpu_us_per_run: cpu_after.per_unit_since(&cpu_before, one_step, &["bench_client"]),
            cores_busy: cpu_after.cores_busy_since(&cpu_before, elapsed),
        })
    }
}

/// The processes a one-step run passes through: the engines and the workers this bench
/// started, every Postgres process (backends, WAL writer: the commit's fsync is part of a
/// run's cost), the Redis server on the configured port, and the bench's own client apart.
fn cpu_meter(redis_url: &str, procs: &Processes, workers: usize) -> CpuMeter {
    let pids: Vec<u32> = procs.0.iter().map(|c| c.id()).collect();
    let engines = pids.len() - workers;
    let redis_port = reqwest::Url::parse(redis_url).ok().and_then(|u| u.port()).unwrap_or(6379);
    CpuMeter::new(vec![
        ("engine", Role::Pids(pids[..engines].to_vec())),
        ("workers", Role::Pids(pids[engines..].to_vec())),
        ("postgres", Role::Named { comm: "postgres", arg: None }),
        ("redis", Role::Named { comm: "redis-server", arg: Some(format!(":{redis_port}")) }),
        ("bench_client", Role::This),
    ])
}
