//! The per-hop breakdown of `crm bench runs`: where a timed three-step run's time goes on
//! its way from the client's submit, through the engine, Redis and a worker for each step,
//! to the completion event the client sees. Read from the timelines the engine keeps with
//! every attempt (`crm_concepts::timeline`) plus the client's own two instants; all are wall
//! clocks of processes on this machine. The completion's hop is also split where Redis put
//! it on the stream: its entry id is Redis' clock in whole milliseconds, taken as the middle
//! of its millisecond, so those two parts are good to half a millisecond either way: enough
//! to tell which side a tail is on, not to read a p50 of a fraction of one.

use std::collections::HashMap;

use anyhow::Context;
use crm_concepts::timeline::StepTimeline;
use crm_store::Db;
use serde_json::{Value, json};
use uuid::Uuid;

/// A timed run as the client saw it.
#[derive(Debug, Clone, Copy)]
pub struct TimedRun {
    pub id: Uuid,
    pub submitted_us: u64,
    pub seen_us: u64,
    /// when Redis added the completion to the stream (its entry id), in µs; 0 if unknown
    pub published_us: u64,
}

/// The hops, in path order; each step of a run contributes one sample to each per-step hop.
const HOPS: [&str; 12] = [
    "submit -> first step on Redis",
    "on Redis -> read by a worker",
    "read -> step started",
    "step (instantiate + call)",
    "step done -> result at the engine",
    "at the engine -> its record committed (sent ahead of it)",
    "record committed -> staged by an applier",
    "staged -> next step on Redis (commit, send)",
    "last step staged -> completion seen (commit, publish, SSE)",
    "  of it: staged -> on the completions stream (+-0.5 ms)",
    "  of it: on the stream -> seen (read, seal, SSE, client)",
    "total: submit -> completion seen",
];

/// p50/p99 of every hop over `runs`, as JSON rows (`hop`, `p50_ms`, `p99_ms`, `samples`,
/// `per_run_ms`). Percentiles do not add up along a path (a run slow at one hop is often
/// slow at the next), so each row also has the hop's time in the mean run (its steps'
/// times added up): the path's rows, the completion's split aside, add up to the total's.
pub async fn breakdown(db: &Db, runs: &[TimedRun]) -> anyhow::Result<Value> {
    let ids: Vec<Uuid> = runs.iter().map(|r| r.id).collect();
    let rows: Vec<(Uuid, Option<Vec<i64>>)> =
        sqlx::query_as("SELECT run_id, timeline FROM step_attempts WHERE run_id = ANY($1) AND applied")
            .bind(&ids)
            .fetch_all(&db.pool)
            .await
            .context("reading the timed runs' step timelines")?;
    let mut steps: HashMap<Uuid, Vec<StepTimeline>> = HashMap::new();
    for (run, timeline) in rows {
        let t = timeline.and_then(|points| crm_store::runs::timeline_from_column(&points)).unwrap_or_default();
        steps.entry(run).or_default().push(t);
    }
    let mut samples: Vec<Vec<i64>> = vec![Vec::new(); HOPS.len()];
    let gap = |from: u64, to: u64| to as i64 - from as i64;
    for run in runs {
        let Some(mut path) = steps.remove(&run.id) else { continue };
        // A run whose every point was seen (not one ended by the engine, say).
        let complete = |t: &StepTimeline| t.path().iter().all(|&x| x > 0);
        if path.is_empty() || !path.iter().all(complete) {
            continue;
        }
        path.sort_by_key(|t| t.sent_us);
        samples[0].push(gap(run.submitted_us, path[0].sent_us));
        for (i, t) in path.iter().enumerate() {
            // the per-step hops, HOPS[1..=6], one between each two points of the path
            for (k, w) in t.path().windows(2).enumerate() {
                samples[1 + k].push(gap(w[0], w[1]));
            }
            match path.get(i + 1) {
                Some(next) => samples[7].push(gap(t.applied_us, next.sent_us)),
                None => {
                    samples[8].push(gap(t.applied_us, run.seen_us));
                    if run.published_us > 0 {
                        samples[9].push(gap(t.applied_us, run.published_us));
                        samples[10].push(gap(run.published_us, run.seen_us));
                    }
                }
            }
        }
        samples[11].push(gap(run.submitted_us, run.seen_us));
    }
    let timed_runs = samples[HOPS.len() - 1].len().max(1) as i64;
    let rows: Vec<Value> = HOPS
        .iter()
        .zip(samples.iter_mut())
        .map(|(hop, s)| {
            s.sort_unstable();
            json!({
                "hop": hop,
                "p50_ms": ms(quantile(s, 0.5)),
                "p99_ms": ms(quantile(s, 0.99)),
                "per_run_ms": ms(s.iter().sum::<i64>() / timed_runs),
                "samples": s.len(),
            })
        })
        .collect();
    Ok(Value::Array(rows))
}

fn quantile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(us: i64) -> f64 {
    (us as f64 / 10.0).round() / 100.0
}

/// The breakdown as text lines, one per hop.
pub fn print(title: &str, rows: &Value) {
    println!("{title}");
    for r in rows.as_array().into_iter().flatten() {
        println!(
            "    {:<62} p50 {:>7.2} ms   p99 {:>7.2} ms   mean run {:>7.2} ms",
            r["hop"].as_str().unwrap_or(""),
            r["p50_ms"].as_f64().unwrap_or(0.0),
            r["p99_ms"].as_f64().unwrap_or(0.0),
            r["per_run_ms"].as_f64().unwrap_or(0.0)
        );
    }
}
