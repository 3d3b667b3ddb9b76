//! `crm bench timers`: steps that wait, at scale (issue 12). Two goals:
//!
//! - Runs that wait cost nothing while they wait: no worker slot, no Redis entry, no
//!   polling per run. Measured as the CPU an engine spends per second of wall time, and its
//!   memory, with 0, 10,000 and 100,000 runs held at a `wait` a month ahead (goal: no
//!   measurable growth with their number). Each level is measured on an engine started
//!   after the runs were created, so the figure is the cost of waiting, not of making them.
//! - 10,000 waits due in the same second, with two engines against one database and Redis:
//!   p99 lateness from the due time ≤ 1 s, and none fires twice. Lateness is measured when
//!   the engine began the transaction that ended the wait (`runs.finished_at`) and when the
//!   run's completion was published on Redis (the stream entry's id is Redis's clock, the
//!   same machine's); "fired twice" is checked three ways: each step has exactly one
//!   attempt, the engines' counts of the waits they claimed add up to the number due, and
//!   no run's completion was published twice.
//!
//! Runs are created through the engine's admission (`crm_scheduler::Admission`, the door
//! every run comes in by: the API's batched submits, triggers) in-process, a few thousand
//! per transaction, so 100,000 take seconds rather than minutes of HTTP requests; the
//! bench's scheduler is shut down before anything is measured or falls due. No workers are
//! started: a run held at its first step needs none.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use chrono::{DateTime, SubsecRound, Utc};
use crm_concepts::run::{RunRequest, RunStatus};
use crm_scheduler::{Admitted, Scheduler, SchedulerConfig};
use crm_store::Db;
use crm_store::database::with_database;
use futures::StreamExt;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::commands::bench_cpu::{CpuMeter, Role};
use crate::commands::bench_stack::{Processes, Scratch, bench_admin, clean_redis, percentile, start_engine};
use crate::commands::demo_data::progress_bar;
use crate::config::Config;

/// One step that waits until the time in the run's input, then the run succeeds.
const MANIFEST: &str = r#"
name = "bench-timers"
version = "1"
description = "Benchmark: one wait until input.at"

[[steps]]
id = "pause"
wait = { until = "{{input.at}}" }
"#;
const WORKFLOW: &str = "bench-timers";
const STEP: &str = "pause";

#[derive(clap::Args, Debug)]
pub struct TimersArgs {
    /// Numbers of runs held waiting (a month ahead) at which an engine's CPU and memory are
    /// measured, in increasing order; comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [0u64, 10_000, 100_000])]
    pub waiting: Vec<u64>,
    /// Length of each CPU window, in seconds.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Waits due in the same second, fired by `--engines` engines (0 to skip).
    #[arg(long, default_value_t = 10_000)]
    pub due: u64,
    /// Engines (`crm serve` processes on the bench's database and Redis prefix) running
    /// while the due waits fire.
    #[arg(long, default_value_t = 2)]
    pub engines: usize,
    /// How far ahead of the start of their creation the due waits are due, in seconds;
    /// 0: twice the time their creation should take at the rate measured before, plus 3 s.
    #[arg(long, default_value_t = 0)]
    pub lead_seconds: u64,
    /// Scratch database (on the server of CRM_DATABASE_URL), dropped and recreated.
    #[arg(long, default_value = "crm_bench_timers")]
    pub database: String,
    /// Keep the scratch database afterwards.
    #[arg(long)]
    pub keep: bool,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(config: &Config, args: TimersArgs) -> anyhow::Result<()> {
    ensure!(
        args.waiting.windows(2).all(|w| w[0] <= w[1]),
        "--waiting must list numbers of runs in increasing order, e.g. 0,10000,100000"
    );
    ensure!(!args.waiting.is_empty() || args.due > 0, "nothing to measure: --waiting is empty and --due is 0");
    ensure!(args.seconds > 0, "--seconds must be at least 1");
    ensure!(args.engines > 0, "--engines must be at least 1");
    let admin_url = with_database(&config.database_url, "postgres");
    let url = Db::create_scratch(&admin_url, &args.database).await.context("creating the scratch database")?;
    let scratch = Scratch::new(&config.redis_prefix)?;
    let result = bench(config, &args, &url, &scratch).await;
    clean_redis(&config.redis_url, &scratch.prefix).await;
    if !args.keep {
        Db::drop_scratch(&admin_url, &args.database).await;
    }
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    Ok(())
}

async fn bench(config: &Config, args: &TimersArgs, db_url: &str, scratch: &Scratch) -> anyhow::Result<Value> {
    let db = Db::connect(db_url, 4).await?;
    let (admin_id, token) = bench_admin(&db, "bench").await?;
    crm_scheduler::deploy::deploy(&db, MANIFEST, &Default::default(), Some(admin_id)).await?;
    let env = scratch.engine_env(config, db_url);
    let exe = std::env::current_exe().context("locating the crm binary")?;
    let http = reqwest::Client::builder().build()?;

    // Waiting runs: due a month ahead, then measured on a freshly started engine.
    let far = (Utc::now() + chrono::Duration::days(30)).trunc_subsecs(0);
    let mut held = 0u64;
    let mut levels = Vec::new();
    let mut rate: Option<f64> = None;
    for &level in &args.waiting {
        let add = level - held;
        let mut created = None;
        if add > 0 {
            if !args.json {
                eprintln!("creating {add} waiting runs ({held} → {level})…");
            }
            let c = create(&db, config, scratch, add, far).await?;
            rate = Some(add as f64 / c.took.as_secs_f64());
            created = Some(c.took);
        }
        held = level;
        if !args.json {
            eprintln!("{level} runs waiting: measuring an engine for {} s…", args.seconds);
        }
        let mut row = idle_engine(&exe, &env, &db, config, &scratch.prefix, &args.database, args.seconds).await?;
        row["runs"] = json!(level);
        row["created_s"] = json!(created.map(|d| round(d.as_secs_f64(), 2)));
        row["created_per_s"] = json!(created.map(|d| (add as f64 / d.as_secs_f64()).round()));
        levels.push(row);
    }
    let cpu = |r: &Value| r["engine_cpu_ms_per_s"].as_f64().unwrap_or(0.0);
    let growth = match (levels.first(), levels.last()) {
        (Some(a), Some(b)) if levels.len() > 1 => Some(round(cpu(b) - cpu(a), 1)),
        _ => None,
    };

    let due = if args.due > 0 {
        Some(due_burst(&exe, &env, &db, config, scratch, &http, &token, args, rate).await?)
    } else {
        None
    };
    db.pool.close().await;
    Ok(json!({
        "bench": "timers",
        "build": if cfg!(debug_assertions) { "debug" } else { "release" },
        "seconds": args.seconds,
        "waiting": levels,
        "engine_cpu_growth_ms_per_s": growth,
        "due": due,
        "database": args.database,
        "redis_prefix": scratch.prefix,
    }))
}

/// Runs created, and how long that took.
struct Created {
    took: Duration,
    ids: Vec<Uuid>,
}

/// Runs at a time in one admission transaction.
const CHUNK: u64 = 2_000;

/// Creates `count` runs of the bench's workflow waiting until `at`, through the engine's
/// admission on a scheduler of the bench's own, two transactions at a time; the scheduler
/// is shut down before this returns, so it never fires a wait.
async fn create(db: &Db, config: &Config, scratch: &Scratch, count: u64, at: DateTime<Utc>) -> anyhow::Result<Created> {
    let vault = crm_vault::Vault::from_file(&scratch.data_dir.join("secret.key"), true).context("the bench's key")?;
    let mut sc = SchedulerConfig::new(scratch.prefix.clone(), Arc::new(vault));
    sc.consumer = format!("bench-loader-{}", Uuid::new_v4().simple());
    // It only admits: its waker looks once, at its start, when nothing is due yet.
    sc.wake_poll = Duration::from_secs(24 * 3600);
    let scheduler = Scheduler::start(db, &config.redis_url, sc).await.context("starting the bench's scheduler")?;
    let result = admit_all(db, &scheduler, count, at).await;
    scheduler.shutdown().await;
    result
}

async fn admit_all(db: &Db, scheduler: &Scheduler, count: u64, at: DateTime<Utc>) -> anyhow::Result<Created> {
    let at = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let bar = progress_bar(count, "creating waiting runs");
    let started = Instant::now();
    let chunks = (0..count).step_by(CHUNK as usize).map(|first| {
        let (admission, at, bar) = (scheduler.admission(), at.clone(), bar.clone());
        async move {
            let requests: Vec<RunRequest> = (first..(first + CHUNK).min(count))
                .map(|n| RunRequest {
                    workflow: WORKFLOW.into(),
                    input: json!({"at": at, "n": n}),
                    acting_user: None,
                    notify: None,
                    idempotency_key: None,
                    trigger: Some("cli".into()),
                })
                .collect();
            let mut tx = db.pool.begin().await?;
            let mut admitted = Admitted::default();
            let answers = admission.admit(&mut tx, &requests, &mut admitted).await?;
            tx.commit().await?;
            admission.committed(admitted).await;
            let mut ids = Vec::with_capacity(answers.len());
            for a in answers {
                let a = a?;
                ensure!(matches!(a.status, RunStatus::Waiting), "a new run is {} instead of waiting", a.status);
                ids.push(a.id);
            }
            bar.inc(ids.len() as u64);
            anyhow::Ok(ids)
        }
    });
    let mut ids = Vec::with_capacity(count as usize);
    let mut done = futures::stream::iter(chunks).buffer_unordered(2);
    while let Some(chunk) = done.next().await {
        ids.extend(chunk.context("admitting runs")?);
    }
    bar.finish_and_clear();
    Ok(Created { took: started.elapsed(), ids })
}

/// Starts an engine on the runs already waiting, lets it settle, and measures its CPU per
/// second of wall time over `seconds`, with its memory and what the waiting runs hold.
async fn idle_engine(
    exe: &std::path::Path,
    env: &[(&str, String)],
    db: &Db,
    config: &Config,
    prefix: &str,
    database: &str,
    seconds: u64,
) -> anyhow::Result<Value> {
    let (engine, _) = start_engine(exe, env).await?;
    let pid = engine.id();
    let procs = Processes(vec![engine]);
    // Past its start (migrations checked, caches filled, recent completions republished).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let meter = CpuMeter::new(vec![
        ("engine", Role::Pids(vec![pid])),
        // the backends serving this database (their command line names it)
        ("postgres", Role::Named { comm: "postgres", arg: Some(format!(" {database} ")) }),
    ]);
    let before = meter.sample();
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let spent = meter.sample().per_unit_since(&before, 1, &[]);
    let elapsed = t0.elapsed().as_secs_f64();
    let per_s = |us: &Value| round(us.as_f64().unwrap_or(0.0) / 1000.0 / elapsed, 1);
    let rss_mb = rss_kb(pid).map(|kb| round(kb as f64 / 1024.0, 1));
    drop(procs);

    let (runs_waiting, waits): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM runs WHERE status = 'waiting'), (SELECT count(*) FROM run_waits)")
            .fetch_one(&db.pool)
            .await?;
    let bytes: i64 = sqlx::query_scalar(
        "SELECT pg_total_relation_size('runs') + pg_total_relation_size('run_steps') + pg_total_relation_size('run_waits')",
    )
    .fetch_one(&db.pool)
    .await?;
    Ok(json!({
        "engine_cpu_ms_per_s": per_s(&spent["engine"]),
        "postgres_cpu_ms_per_s": per_s(&spent["postgres"]),
        "engine_rss_mb": rss_mb,
        "runs_waiting": runs_waiting,
        "run_waits_rows": waits,
        "redis_jobs": redis_jobs(&config.redis_url, prefix).await?,
        "postgres_run_bytes": bytes,
    }))
}

/// `--due` runs due in the same whole second, created while the engines run, fired by
/// all of them.
#[allow(clippy::too_many_arguments)]
async fn due_burst(
    exe: &std::path::Path,
    env: &[(&str, String)],
    db: &Db,
    config: &Config,
    scratch: &Scratch,
    http: &reqwest::Client,
    token: &str,
    args: &TimersArgs,
    rate: Option<f64>,
) -> anyhow::Result<Value> {
    let mut procs = Processes(Vec::new());
    let mut urls = Vec::new();
    for _ in 0..args.engines {
        let (engine, url) = start_engine(exe, env).await?;
        procs.0.push(engine);
        urls.push(url);
    }
    let claimed_before = waits_woken(http, token, &urls).await?;

    let lead = if args.lead_seconds > 0 {
        Duration::from_secs(args.lead_seconds)
    } else {
        // Twice the creation time at the rate measured with the waiting runs (or a modest
        // 1,000/s), plus 3 s.
        let rate = rate.unwrap_or(1000.0).max(1.0);
        Duration::from_secs_f64(2.0 * args.due as f64 / rate + 3.0)
    };
    let at = (Utc::now() + chrono::Duration::from_std(lead)?).trunc_subsecs(0) + chrono::Duration::seconds(1);
    if !args.json {
        eprintln!("creating {} runs due at {} before {} engine(s)…", args.due, at.format("%H:%M:%S UTC"), args.engines);
    }
    let created = create(db, config, scratch, args.due, at).await?;
    let margin = (at - Utc::now()).num_milliseconds() as f64 / 1000.0;
    if !args.json {
        eprintln!(
            "created in {:.1} s, {margin:.1} s before they are due; waiting for them…",
            created.took.as_secs_f64()
        );
    }

    // Every run finished, or a minute past the due time; then a moment more for anything
    // that would fire a second time.
    let deadline = at + chrono::Duration::seconds(60);
    loop {
        let finished: i64 =
            sqlx::query_scalar("SELECT count(*) FROM runs WHERE id = ANY($1) AND finished_at IS NOT NULL")
                .bind(&created.ids)
                .fetch_one(&db.pool)
                .await?;
        if finished as usize == created.ids.len() || Utc::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let claimed_after = waits_woken(http, token, &urls).await?;
    drop(procs);

    let published = published_at(&config.redis_url, &scratch.prefix).await?;
    let at_ms = at.timestamp_millis().max(0) as u64;
    let mut published_late = Vec::new();
    let (mut duplicated, mut unpublished) = (0u64, 0u64);
    for id in &created.ids {
        match published.get(id) {
            Some(times) => {
                duplicated += times.len() as u64 - 1;
                let first = times.iter().min().copied().unwrap_or_default();
                published_late.push(Duration::from_millis(first.saturating_sub(at_ms)));
            }
            None => unpublished += 1,
        }
    }
    published_late.sort_unstable();
    let woken: Vec<f64> = sqlx::query_scalar(
        "SELECT (extract(epoch FROM finished_at - $2) * 1000)::float8 FROM runs WHERE id = ANY($1) AND finished_at IS NOT NULL",
    )
    .bind(&created.ids)
    .bind(at)
    .fetch_all(&db.pool)
    .await?;
    let mut woken_late: Vec<Duration> =
        woken.into_iter().map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0)).collect();
    woken_late.sort_unstable();
    let (succeeded, early, attempts_not_one): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE r.status = 'succeeded'),
                count(*) FILTER (WHERE r.finished_at < $3),
                count(*) FILTER (WHERE (SELECT count(*) FROM step_attempts a WHERE a.run_id = r.id AND a.step = $2) <> 1)
         FROM runs r WHERE r.id = ANY($1)",
    )
    .bind(&created.ids)
    .bind(STEP)
    .bind(at)
    .fetch_one(&db.pool)
    .await?;
    let claimed: Vec<u64> = claimed_after.iter().zip(&claimed_before).map(|(a, b)| a - b).collect();
    let claimed_total: u64 = claimed.iter().sum();
    let late = |sorted: &[Duration]| {
        json!({
            "min_ms": round(percentile(sorted, 0.0), 1),
            "p50_ms": round(percentile(sorted, 0.5), 1),
            "p99_ms": round(percentile(sorted, 0.99), 1),
            "max_ms": round(percentile(sorted, 1.0), 1),
        })
    };
    Ok(json!({
        "runs": args.due,
        "engines": args.engines,
        "due_at": at,
        "created_s": round(created.took.as_secs_f64(), 2),
        "created_per_s": (args.due as f64 / created.took.as_secs_f64()).round(),
        "created_before_due_s": round(margin, 2),
        "woken_lateness": late(&woken_late),
        "published_lateness": late(&published_late),
        "goal_p99_ms": 1000,
        "succeeded": succeeded,
        "fired_early": early,
        "unpublished": unpublished,
        "claimed_per_engine": claimed,
        "claimed_beyond_due": claimed_total.saturating_sub(args.due),
        "steps_with_attempts_not_one": attempts_not_one,
        "completions_duplicated": duplicated,
    }))
}

/// Each engine's count of the waits it claimed and fired since it started.
async fn waits_woken(http: &reqwest::Client, token: &str, urls: &[String]) -> anyhow::Result<Vec<u64>> {
    let mut out = Vec::new();
    for url in urls {
        let m: Value = http
            .get(format!("{url}/api/scheduler/metrics"))
            .bearer_auth(token)
            .send()
            .await
            .context("GET /api/scheduler/metrics")?
            .error_for_status()?
            .json()
            .await?;
        out.push(m["waits_woken"].as_u64().context("waits_woken in the scheduler metrics")?);
    }
    Ok(out)
}

/// When each run's completions were published: the millisecond part of their entry ids on
/// the installation's completions stream (Redis's clock). More than one for a run would be
/// a wait that fired twice.
async fn published_at(redis_url: &str, prefix: &str) -> anyhow::Result<HashMap<Uuid, Vec<u64>>> {
    let queue = crm_queue::Queue::connect(redis_url, prefix).await.context("connecting to Redis")?;
    let mut out: HashMap<Uuid, Vec<u64>> = HashMap::new();
    for (run, ms) in queue.completions().entries_since(0).await? {
        if let Ok(run) = run.parse() {
            out.entry(run).or_default().push(ms);
        }
    }
    Ok(out)
}

/// Resident memory of a process, from `/proc/PID/status`.
fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse().ok()
}

/// Entries of the installation's jobs stream: a waiting run must have none.
async fn redis_jobs(redis_url: &str, prefix: &str) -> anyhow::Result<u64> {
    let client = redis::Client::open(redis_url).context("the Redis URL")?;
    let mut conn = client.get_multiplexed_async_connection().await.context("connecting to Redis")?;
    let n: u64 = redis::cmd("XLEN").arg(crm_queue::Keys::new(prefix).jobs).query_async(&mut conn).await?;
    Ok(n)
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

fn print_text(r: &Value) {
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    println!("crm bench timers ({} build), CPU windows of {} s:", r["build"].as_str().unwrap_or("?"), r["seconds"]);
    for row in r["waiting"].as_array().into_iter().flatten() {
        let created = match row["created_s"].as_f64() {
            Some(s) => format!("; created in {s:.1} s ({} runs/s)", row["created_per_s"]),
            None => String::new(),
        };
        println!(
            "waiting {:>7} runs: engine {:.1} ms CPU/s, RSS {:.1} MB; Postgres backends {:.1} ms CPU/s; {} waiting, {} jobs on Redis, {:.1} MB of run tables{created}",
            row["runs"],
            f(&row["engine_cpu_ms_per_s"]),
            f(&row["engine_rss_mb"]),
            f(&row["postgres_cpu_ms_per_s"]),
            row["runs_waiting"],
            row["redis_jobs"],
            f(&row["postgres_run_bytes"]) / 1e6,
        );
    }
    if let Some(g) = r["engine_cpu_growth_ms_per_s"].as_f64() {
        println!("engine CPU growth from the fewest to the most waiting runs: {g:+.1} ms/s (goal: none measurable)");
    }
    let d = &r["due"];
    if d.is_object() {
        println!(
            "due at once: {} waits due at {} before {} engine(s), created in {:.1} s ({} runs/s), {:.1} s before the due time",
            d["runs"],
            d["due_at"].as_str().unwrap_or("?"),
            d["engines"],
            f(&d["created_s"]),
            d["created_per_s"],
            f(&d["created_before_due_s"])
        );
        let (w, p) = (&d["woken_lateness"], &d["published_lateness"]);
        println!(
            "  lateness, due → the engine began the transaction ending the wait: min {:.0} ms, p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            f(&w["min_ms"]),
            f(&w["p50_ms"]),
            f(&w["p99_ms"]),
            f(&w["max_ms"])
        );
        println!(
            "  lateness, due → the run's completion published: min {:.0} ms, p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (goal p99 <= 1000)",
            f(&p["min_ms"]),
            f(&p["p50_ms"]),
            f(&p["p99_ms"]),
            f(&p["max_ms"])
        );
        println!(
            "  {} succeeded, {} unpublished, {} fired early; claimed per engine {}; fired twice: {} claims beyond the number due, {} steps without exactly one attempt, {} completions published twice",
            d["succeeded"],
            d["unpublished"],
            d["fired_early"],
            d["claimed_per_engine"],
            d["claimed_beyond_due"],
            d["steps_with_attempts_not_one"],
            d["completions_duplicated"]
        );
    }
}
