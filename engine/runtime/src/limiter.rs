//! Per-step resource limits on memories, tables and instances. Behaves like wasmtime's
//! `StoreLimits` with `trap_on_grow_failure(true)` (growing past the cap traps instead of
//! letting the guest see a failed `memory.grow`), and also remembers the peak memory and
//! whether the cap was hit, so the step's error can say `memory_limit` for certain.

use wasmtime::ResourceLimiter;

/// Component instances, memories and tables one step may create: a Rust step needs a few
/// core instances and one or two memories; anything far beyond that is not a step.
const MAX_INSTANCES: usize = 32;
const MAX_TABLES: usize = 32;
const MAX_MEMORIES: usize = 8;
const MAX_TABLE_ELEMENTS: usize = 100_000;

#[derive(Debug)]
pub struct Limiter {
    memory_cap: usize,
    /// bytes currently held by all of the step's linear memories
    memory_now: usize,
    pub peak_memory: usize,
    /// the total the step tried to reach when it went over its cap
    pub memory_denied: Option<usize>,
    pub table_denied: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
#[error("memory limit reached: growing to {wanted} bytes exceeds the step's {cap} bytes")]
pub struct MemoryLimitHit {
    pub wanted: usize,
    pub cap: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("table limit reached: {wanted} elements exceeds {MAX_TABLE_ELEMENTS}")]
pub struct TableLimitHit {
    pub wanted: usize,
}

impl Limiter {
    pub fn new(memory_cap: u64) -> Limiter {
        Limiter {
            memory_cap: usize::try_from(memory_cap).unwrap_or(usize::MAX),
            memory_now: 0,
            peak_memory: 0,
            memory_denied: None,
            table_denied: None,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.memory_now.saturating_sub(current).saturating_add(desired);
        if total > self.memory_cap {
            self.memory_denied = Some(total);
            return Err(MemoryLimitHit { wanted: total, cap: self.memory_cap }.into());
        }
        self.memory_now = total;
        self.peak_memory = self.peak_memory.max(total);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            self.table_denied = Some(desired);
            return Err(TableLimitHit { wanted: desired }.into());
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}
