//! One wasmtime `Engine` per process: pooling allocator, epoch interruption driven by a
//! ticker thread, components compiled once (cached on disk by content digest) and kept
//! pre-instantiated (`InstancePre`) in memory. Every step gets a fresh `Store` — a trapped
//! instance cannot be re-entered, and a fresh store is what isolates one step from the next.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crm_concepts::capability::Grants;
use crm_concepts::step::{AttemptKey, Digest, StepError, StepInput, StepLimits};
use sha2::{Digest as _, Sha256};
use tokio::sync::OnceCell;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::bindings::{Step, StepPre};
use crate::config::RuntimeConfig;
use crate::egress::Outbound;
use crate::host_calls::HostCalls;
use crate::state::StepState;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("configuring the wasm engine: {0}")]
    Engine(String),
    #[error("creating the component cache {path}: {source}")]
    CacheDir { path: PathBuf, source: std::io::Error },
}

/// A component ready to run: compiled, linked, type-checked against the `step` world.
pub struct Prepared<H: 'static> {
    pub digest: Digest,
    pub(crate) pre: StepPre<StepState<H>>,
}

/// One component's place in the in-memory cache: filled once, by the first load.
pub(crate) type Slot<H> = Arc<OnceCell<Arc<Prepared<H>>>>;

pub struct Runtime<H: 'static> {
    pub(crate) engine: Engine,
    pub(crate) linker: Arc<Linker<StepState<H>>>,
    pub(crate) config: RuntimeConfig,
    pub(crate) http: Outbound,
    pub(crate) ticks: Arc<AtomicU64>,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) loaded: Mutex<HashMap<Digest, Slot<H>>>,
    /// components whose (digest-verified) bytes do not compile or link, with the reason
    pub(crate) refused: Mutex<HashMap<Digest, StepError>>,
}

impl<H: 'static> Drop for Runtime<H> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// SHA-256 of a component's bytes, lowercase hex: its identity everywhere.
pub fn digest_of(bytes: &[u8]) -> Digest {
    hex::encode(Sha256::digest(bytes))
}

/// How much of a reused pool slot stays resident. A fresh instance's main cost is its
/// memory: pages dropped by madvise on reset fault back in (copied from the snapshot) on the
/// next step. With Linux's PAGEMAP_SCAN (6.7+) a reset finds the pages the step dirtied and
/// copies back only those, up to `memory` per slot, keeping them resident: a Python step
/// dirties a few MB of its interpreter's heap in hundreds of scattered runs of pages, a Rust
/// step a few pages. The scan must go on past its first 32 runs for that (the patched
/// wasmtime in `vendor/`): measured per fresh instance and call, Python 188 -> 0 page
/// faults, JavaScript 61 -> 0. Without the scan a reset would memset all of `memory` every
/// time, so older kernels keep only the first 64 KiB.
struct KeepResident {
    scan: bool,
    memory: usize,
    tables: usize,
}

impl KeepResident {
    fn for_this_kernel() -> KeepResident {
        if pagemap_scan_available() {
            KeepResident { scan: true, memory: 16 << 20, tables: 1 << 20 }
        } else {
            KeepResident { scan: false, memory: 64 << 10, tables: 16 << 10 }
        }
    }
}

/// Whether the kernel has the PAGEMAP_SCAN ioctl (Linux 6.7 and later).
fn pagemap_scan_available() -> bool {
    let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else { return false };
    let mut parts = release.trim().split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse::<u32>().ok());
    matches!((parts.next(), parts.next()), (Some(major), Some(minor)) if (major, minor) >= (6, 7))
}

fn engine_config(rc: &RuntimeConfig) -> Config {
    let mut pool = PoolingAllocationConfig::new();
    let n = rc.max_instances.max(1);
    let keep = KeepResident::for_this_kernel();
    pool.total_component_instances(n)
        // A Rust step is a main module plus a few adapter shims; a Python or JavaScript step
        // links its interpreter from a dozen or more core modules with several memories and
        // tables. The totals are sized for every slot running the largest (they reserve
        // address space, not memory).
        .max_core_instances_per_component(32)
        .total_core_instances(n.saturating_mul(32))
        .max_memories_per_component(8)
        .total_memories(n.saturating_mul(4))
        .max_tables_per_component(32)
        .total_tables(n.saturating_mul(32))
        .total_stacks(n)
        .max_memory_size(usize::try_from(rc.max_memory_bytes).unwrap_or(usize::MAX))
        .linear_memory_keep_resident(keep.memory)
        .table_keep_resident(keep.tables)
        .pagemap_scan(if keep.scan { wasmtime::Enabled::Auto } else { wasmtime::Enabled::No });
    let mut config = Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .epoch_interruption(true)
        .wasm_component_model(true)
        .max_wasm_stack(512 << 10)
        .async_stack_size(2 << 20);
    config
}

impl<H: HostCalls> Runtime<H> {
    pub fn new(rc: RuntimeConfig) -> Result<Runtime<H>, RuntimeError> {
        let engine = Engine::new(&engine_config(&rc)).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        Step::add_to_linker::<_, HasSelf<StepState<H>>>(&mut linker, |s| s)
            .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        if let Some(dir) = &rc.cache_dir {
            std::fs::create_dir_all(dir).map_err(|source| RuntimeError::CacheDir { path: dir.clone(), source })?;
        }
        let ticks = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        spawn_ticker(engine.clone(), rc.epoch_tick, ticks.clone(), stop.clone());
        Ok(Runtime {
            engine,
            linker: Arc::new(linker),
            http: Outbound::new(rc.egress.clone())
                .map_err(|e| RuntimeError::Engine(format!("building the steps' HTTP client: {e}")))?,
            config: rc,
            ticks,
            stop,
            loaded: Mutex::new(HashMap::new()),
            refused: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub(crate) fn http(&self) -> &Outbound {
        &self.http
    }

    pub(crate) fn ticks(&self) -> u64 {
        self.ticks.load(Ordering::Relaxed)
    }
}

/// What one step run needs besides the component.
pub struct StepCall<'a> {
    pub key: AttemptKey,
    pub workflow: String,
    /// the CRM user the run acts for
    pub acting_user: Option<i64>,
    /// the engine's credential for this attempt, handed to the host with every call
    pub ticket: String,
    /// the attempt may not be recorded yet: the host confirms it before the step's first
    /// outbound request (`StepJob::provisional`)
    pub provisional: bool,
    pub input: &'a StepInput,
    pub grants: Arc<Grants>,
    pub limits: &'a StepLimits,
}

fn spawn_ticker(engine: Engine, tick: Duration, ticks: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    let tick = tick.max(Duration::from_micros(100));
    let spawned = std::thread::Builder::new().name("crm-epoch-ticker".into()).spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(tick);
            engine.increment_epoch();
            ticks.fetch_add(1, Ordering::Relaxed);
        }
    });
    if let Err(e) = spawned {
        // Without the ticker no deadline fires; the runtime must not run steps at all then.
        tracing::error!("cannot start the epoch ticker thread: {e}");
        std::process::abort();
    }
}
