//! `crm bench hostcalls`: the round trip of one host call over the workers' channel, the
//! way a worker makes it — HTTP to the engine with a worker credential and the ticket of a
//! real in-flight attempt, checked against the deployed grants, served from Postgres.
//! Goal: p50 ≤ 150 µs for a read on loopback.
//!
//! A run is started with no worker listening; the bench takes its signed job off Redis as a
//! worker would, and makes the step's calls itself, one at a time (latency) and many at
//! once (throughput). Writes are journaled by the engine, so each new write number is a new
//! note; sending a write number again is answered from the journal.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use crm_concepts::host_call::{HostCall, HostReply};
use crm_concepts::records::{Actor, NewContact, NewNote};
use crm_concepts::step::StepJob;
use crm_concepts::worker_channel::CallRequest;
use crm_store::Db;
use crm_store::database::with_database;
use crm_worker::EngineChannel;
use serde_json::{Value, json};

use crate::commands::bench_stack::{Processes, Scratch, bench_admin, clean_redis, percentile, start_engine};
use crate::config::Config;

const MANIFEST: &str = r#"name = "bench-host-calls"
version = "1"
description = "Benchmark: a step whose host calls the bench makes itself"

[[steps]]
id = "calls"
component = "fixture-note"
capabilities = ["records:read", "records:write"]
timeout = "10m"
"#;

#[derive(clap::Args, Debug)]
pub struct HostCallsArgs {
    /// Calls timed one at a time, for each kind (read, new write, repeated write).
    #[arg(long, default_value_t = 5_000)]
    pub calls: u32,
    /// Calls in flight at once for the throughput figure.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Length of the throughput window.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Scratch database (on the server of CRM_DATABASE_URL), dropped and recreated.
    #[arg(long, default_value = "crm_bench_hostcalls")]
    pub database: String,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(config: &Config, args: HostCallsArgs) -> anyhow::Result<()> {
    let admin_url = with_database(&config.database_url, "postgres");
    let url = Db::create_scratch(&admin_url, &args.database).await.context("creating the scratch database")?;
    let result = bench(config, &args, &url).await;
    Db::drop_scratch(&admin_url, &args.database).await;
    result
}

/// One call, timed; an answer that is not the expected kind of reply is an error.
async fn timed(channel: &EngineChannel, request: &CallRequest) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let answer = channel.call(request, Duration::from_secs(10)).await.context("host call")?;
    let elapsed = start.elapsed();
    match answer {
        Ok(HostReply::Contact(_) | HostReply::Note(_)) => Ok(elapsed),
        Ok(other) => bail!("unexpected reply {other:?}"),
        Err(e) => bail!("the engine answered with an error: {e}"),
    }
}

fn summary(mut samples: Vec<Duration>) -> Value {
    samples.sort_unstable();
    let us = |p| (percentile(&samples, p) * 1000.0).round();
    json!({ "calls": samples.len(), "p50_us": us(0.5), "p90_us": us(0.9), "p99_us": us(0.99), "max_us": us(1.0) })
}

async fn bench(config: &Config, args: &HostCallsArgs, db_url: &str) -> anyhow::Result<()> {
    let db = Db::connect(db_url, 4).await?;
    let (admin_id, token) = bench_admin(&db, "bench").await?;
    let note = std::fs::read(crm_guests::NOTE).with_context(|| format!("reading {}", crm_guests::NOTE))?;
    let uploads = std::collections::BTreeMap::from([("fixture-note".to_string(), note)]);
    crm_scheduler::deploy::deploy(&db, MANIFEST, &uploads, Some(admin_id)).await?;
    let contact = crm_store::contacts::create(
        &db,
        &Actor::user(admin_id),
        NewContact { name: "Ada Lovelace".into(), email: Some("ada@example.com".into()), ..Default::default() },
    )
    .await?;

    let scratch = Scratch::new(&config.redis_prefix)?;
    let prefix = &scratch.prefix;
    let env = scratch.engine_env(config, db_url);
    let exe = std::env::current_exe().context("locating the crm binary")?;
    let mut procs = Processes(Vec::new());
    let (engine, api) = start_engine(&exe, &env).await?;
    procs.0.push(engine);
    let result = measure(config, args, &db, &api, &token, prefix, contact.id).await;
    drop(procs);
    clean_redis(&config.redis_url, prefix).await;
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for (kind, what) in
            [("read", "get-contact"), ("write", "create-note, new"), ("replay", "create-note, journaled")]
        {
            let r = &report[kind];
            println!(
                "host call {kind:<6} ({what}): p50 {} µs, p90 {} µs, p99 {} µs, max {} µs over {} calls",
                r["p50_us"], r["p90_us"], r["p99_us"], r["max_us"], r["calls"]
            );
        }
        let t = &report["throughput"];
        println!(
            "host call reads at {} in flight: {} calls/s (goal: read p50 <= 150 µs)",
            t["concurrency"], t["calls_per_s"]
        );
    }
    Ok(())
}

async fn measure(
    config: &Config,
    args: &HostCallsArgs,
    db: &Db,
    api: &str,
    token: &str,
    prefix: &str,
    contact_id: i64,
) -> anyhow::Result<Value> {
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{api}/api/runs"))
        .bearer_auth(token)
        .json(&json!({"workflow": "bench-host-calls", "input": {"contact_id": contact_id}}))
        .send()
        .await
        .context("POST /api/runs")?;
    if resp.status() != reqwest::StatusCode::ACCEPTED {
        bail!("POST /api/runs answered {}: {}", resp.status(), resp.text().await.unwrap_or_default());
    }
    let ticket = take_ticket(&config.redis_url, prefix).await?;
    let (_, credential) = crm_store::worker_credentials::create(db, "bench").await?;
    let channel = EngineChannel::new(api, &credential)?;
    let read = CallRequest {
        ticket: ticket.clone(),
        write_seq: None,
        remaining_ms: 60_000,
        call: HostCall::GetContact { id: contact_id },
    };
    let write = |seq: u32| CallRequest {
        ticket: ticket.clone(),
        write_seq: Some(seq),
        remaining_ms: 60_000,
        call: HostCall::CreateNote {
            fields: NewNote { body: format!("bench note {seq}"), contact_id: Some(contact_id), ..Default::default() },
        },
    };
    // Warm the connections, the engine's version cache and Postgres' plans.
    for _ in 0..200 {
        timed(&channel, &read).await?;
    }
    if !args.json {
        eprintln!("timing {} calls of each kind, one at a time…", args.calls);
    }
    let mut reads = Vec::with_capacity(args.calls as usize);
    for _ in 0..args.calls {
        reads.push(timed(&channel, &read).await?);
    }
    let mut writes = Vec::with_capacity(args.calls as usize);
    for seq in 1..=args.calls {
        writes.push(timed(&channel, &write(seq)).await?);
    }
    let mut replays = Vec::with_capacity(args.calls as usize);
    for seq in 1..=args.calls {
        replays.push(timed(&channel, &write(seq)).await?);
    }
    let notes: i64 = sqlx::query_scalar("SELECT count(*) FROM notes WHERE contact_id = $1")
        .bind(contact_id)
        .fetch_one(&db.pool)
        .await?;
    if notes != i64::from(args.calls) {
        bail!("{} new writes and as many repeats left {notes} notes", args.calls);
    }

    if !args.json {
        eprintln!("reads at {} in flight for {} s…", args.concurrency, args.seconds);
    }
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(args.seconds.max(1));
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (channel, read, done) = (channel.clone(), read.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                timed(&channel, &read).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    let t0 = Instant::now();
    for t in tasks {
        t.await??;
    }
    let calls_per_s = done.load(Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64();
    Ok(json!({
        "read": summary(reads),
        "write": summary(writes),
        "replay": summary(replays),
        "throughput": { "concurrency": args.concurrency, "calls_per_s": calls_per_s.round() },
        "goal_read_p50_us": 150,
    }))
}

/// The ticket of the bench run's job, taken off the jobs stream the way a worker takes it.
async fn take_ticket(redis_url: &str, prefix: &str) -> anyhow::Result<String> {
    let queue = crm_queue::Queue::connect(redis_url, prefix).await.context("connecting to Redis")?;
    let jobs =
        queue.read_jobs("bench-hostcalls", 1, Duration::from_secs(10)).await.context("reading the jobs stream")?;
    let Some(raw) = jobs.into_iter().next() else {
        bail!("no job reached the jobs stream within 10 s");
    };
    let job: StepJob = serde_json::from_slice(&raw.payload).context("reading the job")?;
    Ok(job.ticket)
}
