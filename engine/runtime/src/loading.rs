//! Getting a component ready to run: its digest checked, compiled once (or reloaded from
//! the disk cache after its artifact's hash is checked), its imports vetted, linked and
//! type-checked against the `step` world, and kept as an `InstancePre` in memory.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError};

use crm_concepts::step::{StepError, StepErrorCode, is_digest};
use crm_concepts::wasm::require_component;
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::bindings::StepPre;
use crate::host_calls::HostCalls;
use crate::runtime::{Prepared, Runtime, digest_of};
use crate::state::StepState;

/// `Err(invalid_component)` with the author's words unless the bytes are a component.
pub(crate) fn check_kind(bytes: &[u8]) -> Result<(), StepError> {
    require_component(bytes).map_err(|why| StepError::permanent(StepErrorCode::InvalidComponent, why))
}

impl<H: HostCalls> Runtime<H> {
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

/// The `crm:automation` interfaces this host serves: the imports of the `step` world.
const CRM_INTERFACES: [&str; 7] = [
    "crm:automation/types@0.1.0",
    "crm:automation/records@0.1.0",
    "crm:automation/log@0.1.0",
    "crm:automation/http@0.1.0",
    "crm:automation/secrets@0.1.0",
    "crm:automation/state@0.1.0",
    "crm:automation/notify@0.1.0",
];

/// A step imports the `crm:automation` interfaces and WASI, nothing else. WASI is served
/// with nothing in it — no files, no environment, sockets that refuse every use — because
/// Python's and JavaScript's runtimes import filesystem and socket interfaces whether or
/// not a step uses them. Anything else is refused before the step runs, with its name.
fn check_imports(engine: &Engine, component: &Component) -> Result<(), StepError> {
    for (name, _) in component.component_type().imports(engine) {
        if name.starts_with("wasi:http/") {
            return Err(StepError::permanent(
                StepErrorCode::InvalidComponent,
                format!(
                    "the component imports `{name}`: steps make HTTP requests through crm:automation/http, \
                     which checks the step's grants; build JavaScript with `componentize-js --disable http fetch-event` \
                     (as `crm workflow build` does)"
                ),
            ));
        }
        let served = name.starts_with("wasi:") || CRM_INTERFACES.contains(&name);
        if !served {
            let hint = if name.starts_with("crm:automation/") {
                format!("this host serves {}", CRM_INTERFACES.join(", "))
            } else {
                "steps reach the world only through crm:automation (and WASI clocks and randomness)".to_string()
            };
            return Err(StepError::permanent(
                StepErrorCode::InvalidComponent,
                format!("the component imports `{name}`, which this host does not provide: {hint}"),
            ));
        }
    }
    Ok(())
}
