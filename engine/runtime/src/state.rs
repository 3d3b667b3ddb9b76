//! The data of one step's `Store`: its WASI context (no files, no env, no sockets), its
//! grants, limits, captured output and log, and the services its imports reach.

use std::sync::Arc;

use crm_concepts::capability::{Capability, Grants, MissingCapability};
use crm_concepts::step::{LogLevel, LogLine, StepLimits};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::capture::CappedPipe;
use crate::egress::Outbound;
use crate::host_calls::{CallContext, HostCalls};
use crate::limiter::Limiter;

/// Host resources (streams, pollables, …) one step may hold at once. A Rust step uses a
/// handful; the cap keeps a guest that leaks them from growing the worker's memory, which
/// the step's own memory limit does not cover.
const MAX_RESOURCES: usize = 1024;

pub struct StepState<H> {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) grants: Arc<Grants>,
    pub(crate) host: Arc<H>,
    pub(crate) cx: CallContext,
    /// writes made so far: numbers each write for the engine's journal
    pub(crate) writes: u32,
    pub(crate) http: Outbound,
    pub(crate) log: LogBuffer,
    pub(crate) stdout: CappedPipe,
    pub(crate) stderr: CappedPipe,
    /// set when the step called an import it holds no grant for
    pub(crate) denied: Option<MissingCapability>,
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Denied(pub MissingCapability);

impl<H: HostCalls> StepState<H> {
    pub(crate) fn new(
        cx: CallContext,
        grants: Arc<Grants>,
        limits: &StepLimits,
        host: Arc<H>,
        http: Outbound,
    ) -> StepState<H> {
        let cap = usize::try_from(limits.log_bytes).unwrap_or(usize::MAX);
        let stdout = CappedPipe::new(cap);
        let stderr = CappedPipe::new(cap);
        // The builder grants nothing by default: no preopened directories (so the
        // filesystem interfaces Python and JS components import reach no file), no
        // environment variables, no arguments, and a socket address check that refuses
        // every address. TCP, UDP and name lookups are switched off outright as well, so
        // a step that tries a socket is refused at the call before any OS socket exists.
        // Clocks and randomness are the host's.
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        StepState {
            wasi,
            table,
            limiter: Limiter::new(limits.memory_bytes),
            grants,
            host,
            cx,
            writes: 0,
            http,
            log: LogBuffer::new(cap),
            stdout,
            stderr,
            denied: None,
        }
    }

    /// `Ok` when granted; otherwise remembers the refusal and returns the trap that ends
    /// the step, so a guest cannot ignore it.
    pub(crate) fn require(&mut self, cap: Capability) -> wasmtime::Result<()> {
        match self.grants.require(cap) {
            Ok(()) => Ok(()),
            Err(missing) => {
                self.denied = Some(missing.clone());
                Err(Denied(missing).into())
            }
        }
    }
}

impl<H: Send + Sync> WasiView for StepState<H> {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The step's log lines, capped in total bytes; lines past the cap are counted.
#[derive(Debug)]
pub(crate) struct LogBuffer {
    cap: usize,
    used: usize,
    pub lines: Vec<LogLine>,
    pub dropped: u32,
}

impl LogBuffer {
    fn new(cap: usize) -> LogBuffer {
        LogBuffer { cap, used: 0, lines: Vec::new(), dropped: 0 }
    }

    pub fn push(&mut self, level: LogLevel, message: String, fields: serde_json::Value) {
        let size = message.len() + if fields.is_null() { 0 } else { fields.to_string().len() };
        if self.used + size > self.cap {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        self.used += size;
        self.lines.push(LogLine { level, message, fields });
    }
}
