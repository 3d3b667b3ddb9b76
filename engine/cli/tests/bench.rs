//! The `crm bench` commands end to end on small numbers: each measures what it says it
//! measures and leaves nothing behind. Their figures are not asserted here (speed is
//! measured by the benches, never by a timed test); what is asserted is the report's shape
//! and the correctness checks a bench makes along the way.

use crm_testing::process::{crm, with_redis_url};
use crm_testing::services::{database_exists, keys_under, postgres_url, redis_url, unique_name};
use serde_json::Value;

/// `crm bench timers`: runs held waiting cost no worker and no Redis entry, and waits due
/// at the same moment before two engines each fire once.
#[tokio::test(flavor = "multi_thread")]
async fn bench_timers_holds_runs_without_workers_and_fires_each_due_wait_once_with_two_engines() {
    let database = unique_name("bench_timers");
    let report =
        bench(&["timers", "--waiting", "0,200", "--seconds", "1", "--due", "200", "--engines", "2"], &database);

    // One row per number of waiting runs, each measured with that many runs waiting and
    // nothing of them on Redis.
    let levels = report["waiting"].as_array().expect("waiting rows");
    assert_eq!(levels.len(), 2, "{report}");
    for (row, runs) in levels.iter().zip([0, 200]) {
        assert_eq!(row["runs"], runs, "{row}");
        assert_eq!(row["runs_waiting"], runs, "{row}");
        assert_eq!(row["run_waits_rows"], runs, "{row}");
        assert_eq!(row["redis_jobs"], 0, "{row}");
        assert!(row["engine_cpu_ms_per_s"].is_number() && row["engine_rss_mb"].is_number(), "{row}");
    }
    assert!(levels[1]["created_per_s"].is_number(), "{report}");
    assert!(report["engine_cpu_growth_ms_per_s"].is_number(), "{report}");

    // Every due wait fired, none early, none twice: one claim by one of the two engines,
    // one attempt, one completion published.
    let due = &report["due"];
    assert_eq!(due["runs"], 200, "{due}");
    assert_eq!(due["succeeded"], 200, "{due}");
    assert_eq!(due["unpublished"], 0, "{due}");
    assert_eq!(due["fired_early"], 0, "{due}");
    let claimed: Vec<u64> =
        due["claimed_per_engine"].as_array().expect("claims").iter().map(|c| c.as_u64().unwrap()).collect();
    assert_eq!(claimed.len(), 2, "{due}");
    assert_eq!(claimed.iter().sum::<u64>(), 200, "{due}");
    assert_eq!(due["claimed_beyond_due"], 0, "{due}");
    assert_eq!(due["steps_with_attempts_not_one"], 0, "{due}");
    assert_eq!(due["completions_duplicated"], 0, "{due}");
    for figure in ["woken_lateness", "published_lateness"] {
        for p in ["p50_ms", "p99_ms", "max_ms"] {
            assert!(due[figure][p].is_number(), "{figure}.{p}: {due}");
        }
    }

    left_nothing_behind(&report, &database).await;
}

/// `crm bench runs`: one-step throughput with the CPU of every process on the path, and
/// three-step runs timed hop by hop, idle and under load, with the completion's hop split
/// where Redis put it on the stream, and what the load cost. Every run succeeds, and the
/// bench leaves neither its database nor its keys behind.
#[tokio::test(flavor = "multi_thread")]
async fn bench_runs_reports_throughput_cpu_and_every_hop_and_leaves_nothing_behind() {
    let database = unique_name("bench_runs");
    // Every process of the stack on one runtime thread (as on a small shared machine): the
    // bench passes the setting on to the engine and the workers it starts. The load is
    // asked for by rate, and kept far below what a debug build does on a slow machine (362
    // one-step runs a second on one 2-core machine): 300 a second swamped it, the engine
    // fell minutes behind and the bench gave up on a run.
    let report = bench_with(
        &["runs", "--seconds", "1", "--in-flight", "64", "--latency-runs", "20", "--load-rate", "50"],
        &database,
        &[("CRM_THREADS", "1")],
    );
    assert_eq!(report["runtime_threads"], 1, "{report}");

    let one = &report["one_step"];
    assert!(one["completed"].as_u64().unwrap_or(0) > 0 && one["runs_per_s"].as_f64().unwrap_or(0.0) > 0.0, "{one}");
    for process in ["engine", "workers", "postgres", "redis", "total"] {
        assert!(one["cpu_us_per_run"][process].is_number(), "{process}: {one}");
    }
    assert_eq!(report["runs_not_succeeded"], 0, "{report}");

    // Under load, what the load cost and how near the machine was to saturation: the
    // rate that was actually offered (the one asked for, up to the load's 10 ms ticks at
    // either end of the window), and the CPU of every process over that window.
    let load = &report["three_step_under_load"];
    assert_eq!(load["load_rate_asked"], 50.0, "{load}");
    let offered = load["one_step_runs_per_s"].as_f64().unwrap_or(0.0);
    assert!((25.0..=75.0).contains(&offered), "asked for 50 one-step runs a second, offered {offered}: {load}");
    assert!(load["cpu_us_per_run"]["total"].as_f64().unwrap_or(0.0) > 0.0, "{load}");
    let busy = load["cores_busy"].as_f64().unwrap_or(-1.0);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    assert!(busy > 0.0 && busy <= cores * 1.1, "{busy} cores busy of {cores}: {load}");

    for phase in ["three_step", "three_step_under_load"] {
        let timed = &report[phase];
        assert_eq!(timed["runs"], 20, "{phase}: {timed}");
        let hops = timed["hops"].as_array().unwrap_or_else(|| panic!("{phase} has no hops: {timed}"));
        let samples = |name: &str| {
            let row = hops.iter().find(|h| h["hop"].as_str().is_some_and(|h| h.contains(name)));
            row.unwrap_or_else(|| panic!("{phase}: no hop {name:?} in {timed}"))["samples"].as_u64().unwrap()
        };
        // each run's three steps count once each in a per-step hop, its completion once
        assert_eq!(samples("on Redis -> read by a worker"), 60, "{phase}");
        // every result's wait for the record of its attempt is timed, whether or not its
        // step went ahead of that record
        assert_eq!(samples("at the engine -> its record committed"), 60, "{phase}");
        assert_eq!(samples("staged -> next step on Redis"), 40, "{phase}");
        assert_eq!(samples("last step staged -> completion seen"), 20, "{phase}");
        assert_eq!(samples("staged -> on the completions stream"), 20, "{phase}");
        assert_eq!(samples("on the stream -> seen"), 20, "{phase}");
        assert_eq!(samples("total"), 20, "{phase}");
        // The mean run's time, hop by hop along the path (the completion's split aside),
        // adds up to its total, each row rounded to 0.01 ms.
        let per_run = |h: &Value| h["per_run_ms"].as_f64().unwrap_or_else(|| panic!("{phase}: no per_run_ms in {h}"));
        let path: f64 = hops
            .iter()
            .filter(|h| h["hop"].as_str().is_some_and(|n| !n.starts_with("  of it") && !n.starts_with("total")))
            .map(per_run)
            .sum();
        let total = per_run(hops.last().unwrap());
        assert!(
            total > 0.0 && (path - total).abs() <= 0.1,
            "{phase}: hops add up to {path} ms, total {total} ms: {timed}"
        );
    }

    left_nothing_behind(&report, &database).await;
}

/// `crm bench runs --scale-out`: a row for each set of processes (one engine with 1, 2 and
/// 4 workers, two engines with 2 and 4), each with its throughput, its CPU per run and
/// every engine's counters. Two engines each apply results, among them those of steps the
/// other sent ahead of its record, and every run succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn bench_runs_scale_out_reports_each_set_of_processes_and_what_each_engine_did() {
    let database = unique_name("bench_scale_out");
    let report = bench_with(
        &["runs", "--seconds", "1", "--in-flight", "64", "--latency-runs", "0", "--under-load", "0", "--scale-out"],
        &database,
        &[("CRM_THREADS", "1")],
    );
    let rows = report["scale_out"].as_array().unwrap_or_else(|| panic!("no scale-out rows: {report}"));
    let shape: Vec<(u64, u64)> =
        rows.iter().map(|r| (r["engines"].as_u64().unwrap(), r["workers"].as_u64().unwrap())).collect();
    assert_eq!(shape, [(1, 1), (1, 2), (1, 4), (2, 2), (2, 4)], "{report}");
    for row in rows {
        assert!(row["runs_per_s"].as_f64().unwrap_or(0.0) > 0.0, "{row}");
        assert!(row["cpu_us_per_run"].as_f64().unwrap_or(0.0) > 0.0, "{row}");
        let engines = row["schedulers"].as_array().unwrap_or_else(|| panic!("no counters: {row}"));
        assert_eq!(engines.len() as u64, row["engines"].as_u64().unwrap(), "{row}");
        for counters in engines {
            assert!(counters["results_applied"].as_u64().unwrap_or(0) > 0, "every engine applied results: {row}");
            assert_eq!(counters["provisional_void"], 0, "{row}");
            assert_eq!(counters["results_refused"], 0, "{row}");
            // The set before stopped cleanly and left no mark: nothing is read back.
            assert_eq!(counters["engines_taken_over"], 0, "{row}");
            assert_eq!(counters["completions_republished"], 0, "{row}");
        }
    }
    assert_eq!(report["runs_not_succeeded"], 0, "{report}");
    left_nothing_behind(&report, &database).await;
}

#[test]
fn a_load_rate_that_is_no_rate_is_refused_before_anything_starts() {
    for bad in ["0", "-5", "fast", "inf"] {
        let arg = format!("--load-rate={bad}");
        let out = crm().args(["bench", "runs", "--seconds", "1", &arg]).output().expect("run crm");
        assert!(!out.status.success(), "--load-rate {bad} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("is not a rate: give one-step runs a second, more than 0"), "{stderr}");
    }
}

#[test]
fn a_thread_count_out_of_bounds_is_refused_before_anything_starts() {
    for bad in ["0", "many"] {
        let out = crm().env("CRM_THREADS", bad).args(["bench", "runs", "--seconds", "1"]).output().expect("run crm");
        assert!(!out.status.success(), "CRM_THREADS={bad} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("CRM_THREADS must be a number of threads from 1 to 1024"), "{stderr}");
    }
}

/// Runs `crm bench <args> --database <database> --json` against the test's Postgres server
/// and Redis, and returns its report. The bench makes its database (the name given) and its
/// key prefix (under the test's `crm_t_` one) itself.
fn bench(args: &[&str], database: &str) -> Value {
    bench_with(args, database, &[])
}

/// [`bench`] with more environment.
fn bench_with(args: &[&str], database: &str, env: &[(&str, &str)]) -> Value {
    let mut cmd = crm();
    with_redis_url(&mut cmd, &redis_url());
    let out = cmd
        .envs(env.iter().copied())
        .env("CRM_DATABASE_URL", postgres_url())
        .arg("bench")
        .args(args)
        .args(["--database", database, "--json"])
        .output()
        .expect("run crm bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "crm bench {} failed: {stderr}", args[0]);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("the report is not JSON ({e}): {}\n{stderr}", String::from_utf8_lossy(&out.stdout)))
}

/// The bench's own database and key prefix are both gone.
async fn left_nothing_behind(report: &Value, database: &str) {
    assert_eq!(report["database"], database);
    assert!(!database_exists(database).await, "the scratch database was left behind");
    let prefix = report["redis_prefix"].as_str().expect("the bench's key prefix");
    assert!(keys_under(prefix).await.is_empty(), "keys under {prefix} were left behind");
}
