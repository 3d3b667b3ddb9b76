//! One wasmtime `Engine` per process: pooling allocator, epoch interruption driven by a
//! ticker thread, components compiled once (cached on disk by content digest) and kept
//! pre-instantiated (`InstancePre`) in memory. Every step gets a fresh `Store` — a trapped
//! instance cannot be re-entered, and a fresh store is what isolates one step from the next.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crm_concepts::capability::Grants;
use crm_concepts::step::{AttemptKey, Digest, StepError, StepErrorCode, StepInput, StepLimits, is_digest};
use sha2::{Digest as _, Sha256};
use tokio::sync::OnceCell;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::bindings::{Step, StepPre};
use crate::config::RuntimeConfig;
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
type Slot<H> = Arc<OnceCell<Arc<Prepared<H>>>>;

pub struct Runtime<H: 'static> {
    engine: Engine,
    linker: Arc<Linker<StepState<H>>>,
    config: RuntimeConfig,
    http: reqwest::Client,
    ticks: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    loaded: Mutex<HashMap<Digest, Slot<H>>>,
    /// components whose (digest-verified) bytes do not compile or link, with the reason
    refused: Mutex<HashMap<Digest, StepError>>,
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

fn engine_config(rc: &RuntimeConfig) -> Config {
    let mut pool = PoolingAllocationConfig::new();
    let n = rc.max_instances.max(1);
    pool.total_component_instances(n)
        // a Rust step is a main module plus a few adapter shims
        .max_core_instances_per_component(16)
        .total_core_instances(n.saturating_mul(8))
        .max_memories_per_component(8)
        .total_memories(n.saturating_mul(2))
        .max_tables_per_component(16)
        .total_tables(n.saturating_mul(8))
        .total_stacks(n)
        .max_memory_size(usize::try_from(rc.max_memory_bytes).unwrap_or(usize::MAX))
        // Keep some pages of recently used slots resident: re-zeroing by madvise is the
        // main cost of a fresh instance.
        .linear_memory_keep_resident(64 << 10)
        .table_keep_resident(16 << 10);
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
            config: rc,
            http: crate::host::http::client(),
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

    /// The component with this digest if it is already prepared in memory.
    pub fn prepared(&self, digest: &str) -> Option<Arc<Prepared<H>>> {
        let loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        loaded.get(digest).and_then(|cell| cell.get().cloned())
    }

    fn cache_path(&self, digest: &str) -> Option<PathBuf> {
        let dir = self.config.cache_dir.as_ref().filter(|_| is_digest(digest))?;
        Some(dir.join(format!("{digest}.cwasm")))
    }

    /// Whether the component is prepared in memory or precompiled on disk, so `load_cached`
    /// can succeed without its bytes.
    pub fn has_cached(&self, digest: &str) -> bool {
        self.prepared(digest).is_some() || self.cache_path(digest).is_some_and(|p| p.is_file())
    }

    /// Prepares a component from memory or the disk cache, without its bytes. `Ok(None)`
    /// when neither has it: fetch the bytes and call [`Runtime::load`].
    pub async fn load_cached(&self, digest: &str) -> Result<Option<Arc<Prepared<H>>>, StepError> {
        if let Some(p) = self.prepared(digest) {
            return Ok(Some(p));
        }
        if !self.has_cached(digest) {
            return Ok(None);
        }
        self.prepare(digest, None).await.map(Some)
    }

    /// Prepares a component from its bytes (which must hash to `digest`), compiling it
    /// once and caching the compiled code on disk.
    pub async fn load(&self, digest: &str, bytes: Arc<Vec<u8>>) -> Result<Arc<Prepared<H>>, StepError> {
        self.prepare(digest, Some(bytes)).await
    }

    async fn prepare(&self, digest: &str, bytes: Option<Arc<Vec<u8>>>) -> Result<Arc<Prepared<H>>, StepError> {
        // The digest becomes a file name in the cache: only a plain SHA-256 may.
        if !is_digest(digest) {
            return Err(StepError::permanent(
                StepErrorCode::InvalidComponent,
                format!("{digest:?} is not a component digest (64 lowercase hex digits)"),
            ));
        }
        if let Some(bytes) = &bytes {
            let actual = digest_of(bytes);
            if actual != digest {
                return Err(StepError::permanent(
                    StepErrorCode::InvalidComponent,
                    format!("the component bytes hash to {actual}, not the expected {digest}"),
                ));
            }
        }
        // A digest names fixed bytes: once they failed to compile or link, they always will.
        if let Some(e) = self.refused.lock().unwrap_or_else(PoisonError::into_inner).get(digest) {
            return Err(e.clone());
        }
        let cell = {
            let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
            loaded.entry(digest.to_string()).or_default().clone()
        };
        // The cell makes concurrent loads of one component compile it once; a failed load
        // leaves it empty, so a later job with good bytes can still succeed.
        cell.get_or_try_init(|| async {
            let engine = self.engine.clone();
            let cache = self.cache_path(digest);
            let digest_owned = digest.to_string();
            let component =
                tokio::task::spawn_blocking(move || compile_or_reload(&engine, &digest_owned, bytes, cache))
                    .await
                    .map_err(|e| {
                    StepError::retryable(StepErrorCode::WorkerBusy, format!("compiling the component: {e}"))
                })??;
            let pre = self.link(&component)?;
            Ok(Arc::new(Prepared { digest: digest.to_string(), pre }))
        })
        .await
        .cloned()
        .inspect_err(|e: &StepError| {
            if e.code == StepErrorCode::InvalidComponent {
                let mut refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
                refused.insert(digest.to_string(), e.clone());
            }
        })
    }

    fn link(&self, component: &Component) -> Result<StepPre<StepState<H>>, StepError> {
        check_imports(&self.engine, component)?;
        let instance_pre = self.linker.instantiate_pre(component).map_err(|e| {
            StepError::permanent(StepErrorCode::InvalidComponent, format!("the component cannot be linked: {e:#}"))
        })?;
        StepPre::new(instance_pre).map_err(|e| {
            StepError::permanent(
                StepErrorCode::InvalidComponent,
                format!("the component does not implement the crm:automation/step world: {e:#}"),
            )
        })
    }

    /// Runs one step in a fresh store with its own limits and grants. Never panics and
    /// never fails the caller: every failure is a `StepOutcome::Failed` in the result.
    pub async fn run(&self, component: &Prepared<H>, call: StepCall<'_>, host: Arc<H>) -> crate::run::StepRun {
        crate::run::run_step(self, component, call, host).await
    }

    /// Instantiates without running: for the benchmark of instantiation alone.
    pub async fn instantiate_only(
        &self,
        component: &Prepared<H>,
        call: StepCall<'_>,
        host: Arc<H>,
    ) -> Result<(), StepError> {
        crate::run::instantiate_only(self, component, call, host).await
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
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

/// The wasm header: `\0asm` then a version/layer word telling core modules from components.
pub(crate) enum WasmKind {
    CoreModule,
    Component,
    NotWasm,
}

pub(crate) fn wasm_kind(bytes: &[u8]) -> WasmKind {
    match bytes {
        [0, b'a', b's', b'm', 1, 0, 0, 0, ..] => WasmKind::CoreModule,
        [0, b'a', b's', b'm', _, _, 1, 0, ..] => WasmKind::Component,
        _ => WasmKind::NotWasm,
    }
}

pub(crate) fn check_kind(bytes: &[u8]) -> Result<(), StepError> {
    match wasm_kind(bytes) {
        WasmKind::Component => Ok(()),
        WasmKind::CoreModule => Err(StepError::permanent(
            StepErrorCode::InvalidComponent,
            "this is a core WebAssembly module, not a component; build for wasm32-wasip2 \
             (or wrap it with `wasm-tools component new`)",
        )),
        WasmKind::NotWasm => {
            Err(StepError::permanent(StepErrorCode::InvalidComponent, "this is not WebAssembly (no `\\0asm` header)"))
        }
    }
}

fn compile_or_reload(
    engine: &Engine,
    digest: &str,
    bytes: Option<Arc<Vec<u8>>>,
    cache: Option<PathBuf>,
) -> Result<Component, StepError> {
    if let Some(path) = &cache
        && path.is_file()
    {
        match reload(engine, path) {
            Ok(c) => return Ok(c),
            // A stale artifact (another wasmtime version or config) is recompiled below.
            Err(e) => {
                tracing::info!(path = %path.display(), "recompiling a cached component: {e:#}")
            }
        }
    }
    let Some(bytes) = bytes else {
        return Err(StepError::retryable(
            StepErrorCode::ComponentMissing,
            format!("component {digest} is not in the cache"),
        ));
    };
    // The caller checked that the bytes hash to `digest`.
    check_kind(&bytes)?;
    let compiled = engine.precompile_component(&bytes).map_err(|e| {
        StepError::permanent(StepErrorCode::InvalidComponent, format!("the component does not compile: {e:#}"))
    })?;
    if let Some(path) = &cache
        && let Err(e) = write_atomically(path, &compiled)
    {
        tracing::warn!(path = %path.display(), "cannot cache a compiled component: {e}");
    }
    // SAFETY: the bytes were produced by `precompile_component` of this very engine just above.
    unsafe { Component::deserialize(engine, &compiled) }.map_err(|e| {
        StepError::permanent(StepErrorCode::InvalidComponent, format!("loading the compiled component: {e:#}"))
    })
}

/// Where the artifact's own SHA-256 is kept: checked before the artifact is deserialized,
/// so a corrupted, truncated or swapped file is recompiled instead of loaded.
fn hash_path(path: &Path) -> PathBuf {
    path.with_extension("cwasm.sha256")
}

fn reload(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    let artifact = std::fs::read(path)?;
    let recorded = std::fs::read_to_string(hash_path(path))?;
    if digest_of(&artifact) != recorded.trim() {
        wasmtime::bail!("the artifact does not match its recorded SHA-256");
    }
    if Engine::detect_precompiled(&artifact) != Some(wasmtime::Precompiled::Component) {
        wasmtime::bail!("not a precompiled component");
    }
    // SAFETY: the bytes are what `precompile_component` of an engine wrote into the
    // runtime's own cache directory (their hash is the one recorded when they were
    // written), and `deserialize` checks the compatibility header, refusing artifacts of
    // another wasmtime version or configuration.
    unsafe { Component::deserialize(engine, &artifact) }
}

/// The artifact first, its hash after: a reader that sees the new artifact with the old
/// hash recompiles, it never loads an unchecked file.
fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let put = |target: &Path, bytes: &[u8]| {
        let tmp = target.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, target)
    };
    put(path, data)?;
    put(&hash_path(path), digest_of(data).as_bytes())
}

/// Steps have no sockets: a component that imports them is refused before it runs, with
/// a message that says why, rather than failing later at an obscure call.
fn check_imports(engine: &Engine, component: &Component) -> Result<(), StepError> {
    for (name, _) in component.component_type().imports(engine) {
        if name.starts_with("wasi:sockets/") {
            return Err(StepError::permanent(
                StepErrorCode::InvalidComponent,
                format!(
                    "the component imports `{name}`: steps have no sockets; \
                     use the crm:automation/http interface for outbound requests"
                ),
            ));
        }
    }
    Ok(())
}
