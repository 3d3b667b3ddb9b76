//! CPU time spent per unit of work by every process on a benchmark's path, read from
//! `/proc` before and after the measured window. Unlike throughput, this figure barely
//! moves with how busy the machine is, so rounds on a noisy machine stay comparable.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

/// `/proc` reports times in USER_HZ, which the kernel fixes at 100 for user space on every
/// architecture (`sysconf(_SC_CLK_TCK)` is always 100 on Linux).
const TICKS_PER_SECOND: u64 = 100;

/// Which processes a figure is about.
#[derive(Clone, Debug)]
pub enum Role {
    /// Processes the bench started (the engine, the workers), by pid.
    Pids(Vec<u32>),
    /// Every process with this command name (`comm`), e.g. Postgres's backends, whose pids
    /// come and go; when `arg` is set, only those whose command line contains it.
    Named { comm: &'static str, arg: Option<String> },
    /// The bench itself (its HTTP client and completion listener).
    This,
}

/// The processes a bench watches, by role name.
pub struct CpuMeter {
    roles: Vec<(&'static str, Role)>,
}

/// CPU used by each role since a `CpuMeter::sample`.
pub struct CpuSample(BTreeMap<&'static str, Duration>);

impl CpuMeter {
    pub fn new(roles: Vec<(&'static str, Role)>) -> CpuMeter {
        CpuMeter { roles }
    }

    /// Each role's CPU time (user + system, all threads) so far.
    pub fn sample(&self) -> CpuSample {
        let named = all_processes();
        let mut out = BTreeMap::new();
        for (name, role) in &self.roles {
            let ticks: u64 = match role {
                Role::Pids(pids) => pids.iter().filter_map(|p| ticks_of(&p.to_string())).sum(),
                Role::This => ticks_of("self").unwrap_or(0),
                Role::Named { comm, arg } => named
                    .iter()
                    .filter(|p| p.comm == *comm && arg.as_ref().is_none_or(|a| p.cmdline.contains(a.as_str())))
                    .map(|p| p.ticks)
                    .sum(),
            };
            out.insert(*name, Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND));
        }
        CpuSample(out)
    }
}

impl CpuSample {
    /// µs of CPU per unit for each role between `before` and `self`, with `total` over the
    /// server side (every role but the bench itself).
    pub fn per_unit_since(&self, before: &CpuSample, units: u64, exclude_from_total: &[&str]) -> Value {
        let units = units.max(1) as f64;
        let mut out = serde_json::Map::new();
        let mut total = 0.0;
        for (name, spent) in self.spent_since(before) {
            let us = spent.as_secs_f64() * 1e6 / units;
            if !exclude_from_total.contains(&name) {
                total += us;
            }
            out.insert(name.to_string(), json!(us.round() as i64));
        }
        out.insert("total".into(), json!(total.round() as i64));
        Value::Object(out)
    }

    /// Cores kept busy between `before` and `self`, `wall` apart, by every role together:
    /// how near the machine was to saturation.
    pub fn cores_busy_since(&self, before: &CpuSample, wall: Duration) -> f64 {
        let spent: Duration = self.spent_since(before).map(|(_, spent)| spent).sum();
        spent.as_secs_f64() / wall.as_secs_f64().max(1e-9)
    }

    /// Each role's CPU time between `before` and `self`.
    fn spent_since<'a>(&'a self, before: &'a CpuSample) -> impl Iterator<Item = (&'static str, Duration)> + 'a {
        self.0
            .iter()
            .map(|(name, after)| (*name, after.saturating_sub(before.0.get(name).copied().unwrap_or_default())))
    }
}

struct Process {
    comm: String,
    cmdline: String,
    ticks: u64,
}

fn all_processes() -> Vec<Process> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())).map(String::from))
        .filter_map(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?.trim_end().to_string();
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            Some(Process { comm, cmdline, ticks: ticks_of(&pid)? })
        })
        .collect()
}

/// utime + stime of a process (all its threads) in clock ticks; `None` once it is gone.
fn ticks_of(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_ticks(&stat)
}

/// Fields 14 and 15 of `/proc/PID/stat`, counted after the command name, which may itself
/// hold spaces and parentheses.
fn parse_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_and_system_time_past_an_awkward_command_name() {
        let stat = "4242 (crm (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_ticks(stat), Some(325));
    }

    #[test]
    fn the_bench_itself_uses_cpu_that_is_counted() {
        let meter = CpuMeter::new(vec![("bench", Role::This), ("nobody", Role::Pids(vec![u32::MAX]))]);
        let before = meter.sample();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(100) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let figures = meter.sample().per_unit_since(&before, 1, &["bench"]);
        assert!(figures["bench"].as_f64().unwrap() >= 50_000.0, "{figures}");
        assert_eq!(figures["nobody"], json!(0));
        assert_eq!(figures["total"], json!(0));
    }
}
