//! `crm bench …`: performance goals, measured on demand rather than in timed tests.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Subcommand;
use crm_store::Db;
use crm_store::database::with_database;
use serde_json::json;

use crate::commands::demo_data::progress_bar;
use crate::config::Config;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Fuzzy search latency over generated contacts (goal: p99 <= 10 ms at 1,000,000).
    Search(SearchArgs),
    /// Step runtime: instantiate and call medians, steps/s with the queue taken out.
    Runtime(crate::commands::bench_runtime::RuntimeArgs),
    /// Telegram bot: command → reply latency through a local Bot API server.
    Bot(crate::commands::bench_bot::BotBenchArgs),
    /// Workflow runs through API, Postgres, Redis and worker processes (goals: >= 9,000
    /// one-step runs/s; three-step p50 <= 3 ms, p99 <= 10 ms).
    Runs(crate::commands::bench_runs::RunsArgs),
    /// Host calls over the workers' channel: round trip of reads and journaled writes
    /// (goal: read p50 <= 150 µs on loopback).
    Hostcalls(crate::commands::bench_hostcalls::HostCallsArgs),
    /// Web app: server-side render of the contacts table and the board (goal: p99 <= 50 ms
    /// with 100,000 contacts and 1,000 open deals).
    Web(crate::commands::bench_web::WebArgs),
    /// CSV import of generated contacts into a fresh database, search index checked
    /// afterwards (goal: 100,000 contacts at >= 20,000 rows/s).
    Import(crate::commands::bench_import::ImportBenchArgs),
    /// Steps that wait: an engine's CPU and memory with 0, 10,000 and 100,000 runs waiting
    /// (goal: no growth), and 10,000 waits due in one second before two engines (goals: p99
    /// lateness <= 1 s, none fires twice).
    Timers(crate::commands::bench_timers::TimersArgs),
}

#[derive(clap::Args, Debug)]
pub struct SearchArgs {
    /// Contacts to generate.
    #[arg(long, default_value_t = 1_000_000)]
    pub contacts: u64,
    /// Queries to time (after a warm-up).
    #[arg(long, default_value_t = 2_000)]
    pub queries: usize,
    /// Scratch database (on the server of CRM_DATABASE_URL), dropped and recreated.
    #[arg(long, default_value = "crm_bench_search")]
    pub database: String,
    /// Reuse the scratch database when it already holds enough contacts.
    #[arg(long)]
    pub reuse: bool,
    /// Keep the scratch database afterwards (for --reuse or a look with psql).
    #[arg(long)]
    pub keep: bool,
    /// Seed of the name generator and of the query typos.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Times each query runs; the report gives every sample and, per query, the fastest
    /// run: on a busy machine the minimum is the query's own cost without waits for a CPU.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
}

pub async fn run(config: &Config, command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Search(args) => search(config, args).await,
        BenchCommand::Runtime(args) => crate::commands::bench_runtime::run(args).await,
        BenchCommand::Bot(args) => crate::commands::bench_bot::run(config, args).await,
        BenchCommand::Runs(args) => crate::commands::bench_runs::run(config, args).await,
        BenchCommand::Hostcalls(args) => crate::commands::bench_hostcalls::run(config, args).await,
        BenchCommand::Web(args) => crate::commands::bench_web::run(config, args).await,
        BenchCommand::Import(args) => crate::commands::bench_import::run(config, args).await,
        BenchCommand::Timers(args) => crate::commands::bench_timers::run(config, args).await,
    }
}

async fn search(config: &Config, args: SearchArgs) -> anyhow::Result<()> {
    let admin_url = with_database(&config.database_url, "postgres");
    let url = with_database(&config.database_url, &args.database);
    let mut sample = crm_store::sample::Sample::new(args.seed);

    let existing = if args.reuse { count_contacts(&url).await } else { None };
    let db = match existing {
        Some(n) if n >= args.contacts => {
            eprintln!("reusing {} with {n} contacts", args.database);
            Db::connect(&url, 4).await?
        }
        _ => {
            let url = Db::create_scratch(&admin_url, &args.database).await.context("creating the scratch database")?;
            let db = Db::connect(&url, 4).await?;
            let companies = (args.contacts / 100).max(1);
            let bar = progress_bar(companies + args.contacts, "generating contacts");
            let started = Instant::now();
            crm_store::sample::load(&db, &mut sample, companies, args.contacts, false, &|d, _| bar.set_position(d))
                .await
                .context("generating contacts")?;
            bar.finish_and_clear();
            eprintln!("generated {} contacts and {companies} companies in {:.1?}", args.contacts, started.elapsed());
            sqlx::query("VACUUM ANALYZE contacts").execute(&db.pool).await?;
            sqlx::query("VACUUM ANALYZE companies").execute(&db.pool).await?;
            db
        }
    };

    // Queries are names people actually have in this database, typed exactly, partly,
    // in lower case, or with a typo (swapped or missing letter).
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM contacts TABLESAMPLE SYSTEM (1) LIMIT $1")
        .bind(i64::try_from(args.queries + 100).unwrap_or(i64::MAX))
        .fetch_all(&db.pool)
        .await?;
    anyhow::ensure!(!names.is_empty(), "the scratch database has no contacts");
    let queries: Vec<(String, String)> =
        names.iter().cycle().take(args.queries + 100).map(|n| (n.clone(), sample.query_for(n))).collect();

    let (warmup, timed) = queries.split_at(100.min(queries.len()));
    for (_, q) in warmup {
        crm_store::search::search(&db, q, &[], 10).await?;
    }
    let repeat = args.repeat.max(1);
    let mut samples = Vec::with_capacity(timed.len() * repeat);
    let mut best = Vec::with_capacity(timed.len());
    let mut slowest: Vec<(Duration, &str)> = Vec::with_capacity(timed.len());
    let mut found = 0usize;
    for (name, q) in timed {
        let mut fastest = Duration::MAX;
        let mut hits = Vec::new();
        for _ in 0..repeat {
            let t = Instant::now();
            hits = crm_store::search::search(&db, q, &[], 10).await?;
            let took = t.elapsed();
            samples.push(took);
            fastest = fastest.min(took);
        }
        best.push(fastest);
        slowest.push((fastest, q.as_str()));
        // "found" when the query was the whole name (or a typo of it) and that person is in
        // the top 10; a bare surname matches thousands, so it only has to return something.
        let whole = q.contains(' ');
        if (whole && hits.iter().any(|h| h.title.eq_ignore_ascii_case(name))) || (!whole && !hits.is_empty()) {
            found += 1;
        }
    }
    slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
    for (d, q) in slowest.iter().take(5) {
        eprintln!("slowest (best of {repeat}): {:>7.2} ms  {q:?}", ms(*d));
    }
    let all = Percentiles::of(&mut samples);
    let best = Percentiles::of(&mut best);
    let found_rate = found as f64 / timed.len() as f64;
    println!(
        "search over {} contacts, {} queries x {repeat}: every run p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; \
         best of {repeat} p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; found {:.1}%",
        args.contacts,
        timed.len(),
        all.p50,
        all.p90,
        all.p99,
        all.max,
        best.p50,
        best.p90,
        best.p99,
        best.max,
        found_rate * 100.0
    );
    println!(
        "{}",
        json!({
            "bench": "search",
            "contacts": args.contacts,
            "queries": timed.len(),
            "repeat": repeat,
            "p50_ms": all.p50, "p90_ms": all.p90, "p99_ms": all.p99, "max_ms": all.max, "mean_ms": all.mean,
            "best_p50_ms": best.p50, "best_p90_ms": best.p90, "best_p99_ms": best.p99, "best_max_ms": best.max,
            "found_rate": found_rate,
        })
    );
    db.pool.close().await;
    if !args.keep {
        Db::drop_scratch(&admin_url, &args.database).await;
    }
    Ok(())
}

async fn count_contacts(url: &str) -> Option<u64> {
    let db = Db::connect(url, 1).await.ok()?;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM contacts").fetch_one(&db.pool).await.ok()?;
    db.pool.close().await;
    u64::try_from(n).ok()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Latency percentiles in milliseconds.
struct Percentiles {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

impl Percentiles {
    fn of(samples: &mut [Duration]) -> Percentiles {
        samples.sort();
        let at = |p: f64| samples.get(((samples.len() as f64 - 1.0) * p).round() as usize).copied().map_or(0.0, ms);
        let total: Duration = samples.iter().sum();
        Percentiles {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: at(1.0),
            mean: if samples.is_empty() { 0.0 } else { ms(total) / samples.len() as f64 },
        }
    }
}
