//! Why a step failed, in the stable codes the scheduler and people read: `timeout`,
//! `memory_limit`, `stack_overflow`, `trap`, `capability_denied`, `output_too_large`,
//! `invalid_output`, `guest`, `invalid_component`, `worker_busy`.

use crm_concepts::step::{ErrorKind, StepError, StepErrorCode, StepLimits};
use wasmtime::Trap;

use crate::limiter::MemoryLimitHit;
use crate::state::Denied;

/// A host call found that a retry diverged from the journaled writes: the step ends.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Diverged(pub String);

/// The epoch callback's error when a step outlives its deadline.
#[derive(Debug, thiserror::Error)]
#[error("deadline exceeded")]
pub struct DeadlineExceeded;

/// What the runtime knows after a failed call, beyond the error itself.
pub(crate) struct Evidence<'a> {
    pub limits: &'a StepLimits,
    pub memory_denied: Option<usize>,
    pub table_denied: Option<usize>,
    pub denied: Option<String>,
    /// the tail of captured stderr: a Rust panic message lands there before the trap
    pub stderr: &'a str,
}

fn mib(bytes: u64) -> String {
    if bytes >= 1 << 20 { format!("{} MiB", bytes >> 20) } else { format!("{bytes} bytes") }
}

pub(crate) fn classify(err: &wasmtime::Error, ev: &Evidence<'_>) -> StepError {
    // Every slot of the instance pool is taken: the worker is full, not the step broken.
    if err.downcast_ref::<wasmtime::PoolConcurrencyLimitError>().is_some() {
        return StepError::retryable(StepErrorCode::WorkerBusy, format!("the worker has no free instance slot: {err}"));
    }
    if let Some(diverged) = err.downcast_ref::<Diverged>() {
        return StepError::permanent(StepErrorCode::ReplayDiverged, diverged.0.clone());
    }
    if let Some(missing) = &ev.denied {
        return StepError::permanent(StepErrorCode::CapabilityDenied, missing.clone());
    }
    if err.downcast_ref::<Denied>().is_some() {
        return StepError::permanent(StepErrorCode::CapabilityDenied, format!("{err}"));
    }
    if err.downcast_ref::<DeadlineExceeded>().is_some() || matches!(err.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        return StepError::permanent(
            StepErrorCode::Timeout,
            format!("the step ran longer than its {} ms time limit and was stopped", ev.limits.timeout_ms),
        );
    }
    if let Some(wanted) = ev.memory_denied.or_else(|| err.downcast_ref::<MemoryLimitHit>().map(|m| m.wanted)) {
        return StepError::permanent(
            StepErrorCode::MemoryLimit,
            format!(
                "the step tried to use {} of memory, over its {} limit",
                mib(wanted as u64),
                mib(ev.limits.memory_bytes)
            ),
        );
    }
    if let Some(wanted) = ev.table_denied {
        return StepError::permanent(
            StepErrorCode::Trap,
            format!("the step tried to grow a table to {wanted} elements"),
        );
    }
    if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return StepError::permanent(
            StepErrorCode::Trap,
            format!("the step called exit({}) instead of returning", exit.0),
        );
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => StepError::permanent(
            StepErrorCode::StackOverflow,
            "the step exhausted its call stack (unbounded recursion?) and was stopped",
        ),
        Some(Trap::UnreachableCodeReached) => match panic_message(ev.stderr) {
            Some(msg) => StepError::permanent(StepErrorCode::Trap, format!("the step panicked: {msg}")),
            None => StepError::permanent(StepErrorCode::Trap, "the step aborted (wasm `unreachable` reached)"),
        },
        Some(trap) => StepError::permanent(StepErrorCode::Trap, format!("the step trapped: {trap}")),
        None => StepError::permanent(StepErrorCode::Trap, format!("the step failed in the host: {err:#}")),
    }
}

/// A Rust panic prints `thread '…' panicked at src/lib.rs:9:5:\n<message>` to stderr.
fn panic_message(stderr: &str) -> Option<String> {
    let start = stderr.find("panicked at ")?;
    let rest = &stderr[start + "panicked at ".len()..];
    let (location, message) = rest.split_once('\n').unwrap_or((rest, ""));
    let location = location.trim_end_matches(':');
    let message = message.lines().next().unwrap_or("").trim();
    Some(if message.is_empty() { location.to_string() } else { format!("{message} (at {location})") })
}

/// A guest's own error keeps its retryable flag; its code becomes part of the message so
/// that host codes cannot be forged by a guest.
pub(crate) fn from_guest(e: crate::bindings::crm::automation::types::StepError) -> StepError {
    use crate::bindings::ErrorKind as GuestKind;
    let kind = match e.kind {
        GuestKind::Retryable => ErrorKind::Retryable,
        GuestKind::Permanent => ErrorKind::Permanent,
    };
    let code: String = e.code.chars().take(64).collect();
    let message: String = e.message.chars().take(4096).collect();
    StepError { kind, code: StepErrorCode::Guest, message: format!("{code}: {message}") }
}

#[cfg(test)]
mod tests {
    use super::panic_message;

    #[test]
    fn finds_the_panic_message() {
        let stderr = "\nthread '<unnamed>' panicked at fixtures/panic/src/lib.rs:9:16:\nindex out of bounds: the len is 0 but the index is 7\nnote: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(
            panic_message(stderr).as_deref(),
            Some("index out of bounds: the len is 0 but the index is 7 (at fixtures/panic/src/lib.rs:9:16)")
        );
        assert_eq!(panic_message("nothing here"), None);
    }
}
