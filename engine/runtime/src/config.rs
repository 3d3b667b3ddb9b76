//! How one process's runtime is sized.

use std::path::PathBuf;
use std::time::Duration;

use crate::egress::EgressPolicy;

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where precompiled components are cached (`<dir>/<digest>.cwasm`); `None` keeps
    /// compiled code in memory only.
    pub cache_dir: Option<PathBuf>,
    /// Steps that can be instantiated at the same time (the pooling allocator's slots).
    pub max_instances: u32,
    /// The largest memory cap a step may be given; the pool reserves this per slot.
    pub max_memory_bytes: u64,
    /// One epoch tick: the granularity of deadlines, and how often a running step yields
    /// to other tasks.
    pub epoch_tick: Duration,
    /// Which internal address ranges outbound HTTP may reach (none by default).
    pub egress: EgressPolicy,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            max_instances: 256,
            max_memory_bytes: 512 << 20,
            epoch_tick: Duration::from_millis(2),
            egress: EgressPolicy::default(),
        }
    }
}
