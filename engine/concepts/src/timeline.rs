//! When one attempt passed each point of its path from the engine through Redis and a
//! worker back to the engine. Part of the attempt's usage as the API shows it, so `crm run
//! show` and the benchmark's per-hop breakdown read where a run's time went without a
//! tracing backend. Postgres keeps it beside the usage, as an `int8[]` of [`StepTimeline::path`]
//! (`migrations/0029_timeline_beside_usage.sql`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Wall-clock instants in µs since the Unix epoch; 0 where a point was not seen (an older
/// worker, an attempt the engine ended itself). Stamped by different processes: comparable
/// on one machine, within clock skew across machines. Timing only: nothing decides on them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StepTimeline {
    /// the engine put the job on Redis
    #[serde(default)]
    pub sent_us: u64,
    /// a worker read it from Redis
    #[serde(default)]
    pub picked_us: u64,
    /// the worker began the step (component lookup, instantiation, the call)
    #[serde(default)]
    pub started_us: u64,
    /// the step ended and its result went to the worker's publisher
    #[serde(default)]
    pub finished_us: u64,
    /// the engine took the result in
    #[serde(default)]
    pub received_us: u64,
    /// the engine knew the attempt recorded: at once for a step sent after its record
    /// committed; for one this engine sent ahead of it (`crm_scheduler::provisional`), when
    /// that write committed, which a fast step can beat. One sent ahead by a write this
    /// engine did not see end (another engine's, or its own before a restart) passes at
    /// once: the applier checks its record under the run's lock, so that wait falls in the
    /// next hop.
    #[serde(default)]
    pub recorded_us: u64,
    /// an applier staged it into the run's transaction
    #[serde(default)]
    pub applied_us: u64,
}

impl StepTimeline {
    pub fn is_empty(&self) -> bool {
        *self == StepTimeline::default()
    }

    /// How many points a path has.
    pub const POINTS: usize = 7;

    /// Every point in path order, the one list readers walk: consecutive points bound a hop.
    pub fn path(&self) -> [u64; Self::POINTS] {
        [
            self.sent_us,
            self.picked_us,
            self.started_us,
            self.finished_us,
            self.received_us,
            self.recorded_us,
            self.applied_us,
        ]
    }

    /// The timeline of a [`StepTimeline::path`], or `None` if `points` is not one.
    pub fn from_path(points: &[u64]) -> Option<StepTimeline> {
        let &[sent_us, picked_us, started_us, finished_us, received_us, recorded_us, applied_us] = points else {
            return None;
        };
        Some(StepTimeline { sent_us, picked_us, started_us, finished_us, received_us, recorded_us, applied_us })
    }
}

/// Now, in the timeline's unit.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
