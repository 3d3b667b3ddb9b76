//! Running one step: a fresh store with its limits, the call, and the reading of what
//! came back (or why nothing did).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_concepts::step::{LogLevel, LogLine, StepError, StepErrorCode, StepLimits, StepOutcome, StepUsage};
use wasmtime::{Store, UpdateDeadline};

use crate::bindings::{StepContext, StepInput};
use crate::error::{DeadlineExceeded, Evidence, classify, from_guest};
use crate::host_calls::{CallContext, HostCalls};
use crate::runtime::{Prepared, Runtime, StepCall};
use crate::state::StepState;

/// Longest step id a guest may name in `next`.
const MAX_STEP_ID: usize = 100;

/// The result of one step, as the worker publishes it.
#[derive(Debug, Clone)]
pub struct StepRun {
    pub outcome: StepOutcome,
    pub usage: StepUsage,
    pub logs: Vec<LogLine>,
}

impl<H: HostCalls> Runtime<H> {
    /// Runs one step in a fresh store with its own limits and grants. Never panics and
    /// never fails the caller: every failure is a `StepOutcome::Failed` in the result.
    pub async fn run(&self, component: &Prepared<H>, call: StepCall<'_>, host: Arc<H>) -> StepRun {
        run_step(self, component, call, host).await
    }

    /// Instantiates without running: for the benchmark of instantiation alone.
    pub async fn instantiate_only(
        &self,
        component: &Prepared<H>,
        call: StepCall<'_>,
        host: Arc<H>,
    ) -> Result<(), StepError> {
        instantiate_only(self, component, call, host).await
    }
}

async fn run_step<H: HostCalls>(rt: &Runtime<H>, component: &Prepared<H>, call: StepCall<'_>, host: Arc<H>) -> StepRun {
    let started = Instant::now();
    let ticks_at_start = rt.ticks();
    let limits = clamp(call.limits, rt);
    let deadline = started + Duration::from_millis(limits.timeout_ms);
    let input = guest_input(&call);
    let call = StepCall { limits: &limits, ..call };
    let mut store = new_store(rt, state_for(rt, &call, host, deadline));

    // The deadline covers the whole step: epoch interruption stops guest code, but a step
    // waiting in a host call or a sleep runs no guest code, so the future is dropped at the
    // deadline too (wasmtime unwinds the suspended fiber; the store is discarded after).
    let result = tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), async {
        let step = component.pre.instantiate_async(&mut store).await?;
        step.call_run(&mut store, &input).await
    })
    .await
    .unwrap_or_else(|_elapsed| Err(DeadlineExceeded.into()));

    let state = store.data_mut();
    let (stderr, stderr_dropped) = state.stderr.take();
    let (stdout, stdout_dropped) = state.stdout.take();
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    let outcome = match result {
        Ok(Ok(out)) => read_output(out, call.limits.output_bytes),
        Ok(Err(guest_error)) => StepOutcome::Failed { error: from_guest(guest_error) },
        Err(err) => {
            let evidence = Evidence {
                limits: call.limits,
                memory_denied: state.limiter.memory_denied,
                table_denied: state.limiter.table_denied,
                denied: state.denied.as_ref().map(|m| m.to_string()),
                stderr: &stderr,
            };
            StepOutcome::Failed { error: classify(&err, &evidence) }
        }
    };

    let mut logs = std::mem::take(&mut state.log.lines);
    push_stream(&mut logs, "stdout", LogLevel::Info, &String::from_utf8_lossy(&stdout), stdout_dropped);
    push_stream(&mut logs, "stderr", LogLevel::Warn, &stderr, stderr_dropped);
    if state.log.dropped > 0 {
        logs.push(LogLine {
            level: LogLevel::Warn,
            message: format!(
                "{} log line(s) dropped: the step's log is capped at {} bytes",
                state.log.dropped, call.limits.log_bytes
            ),
            fields: serde_json::Value::Null,
        });
    }
    let usage = StepUsage {
        duration_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        epochs: rt.ticks().saturating_sub(ticks_at_start),
        peak_memory_bytes: state.limiter.peak_memory as u64,
        log_lines: u32::try_from(logs.len()).unwrap_or(u32::MAX),
        timeline: Default::default(),
    };
    StepRun { outcome, usage, logs }
}

/// Longest deadline a job may ask for: a day is far beyond any step, and keeps the
/// deadline arithmetic far from overflow.
const MAX_TIMEOUT_MS: u64 = 86_400_000;
/// Most captured output and log a step may keep, whatever its job asks for: the log
/// lives in the worker's memory until the result is published.
const MAX_LOG_BYTES: u64 = 4 << 20;

/// The job's limits within what this runtime can honour: no more memory than the pool
/// reserves per instance, a bounded deadline and log.
fn clamp<H: HostCalls>(limits: &StepLimits, rt: &Runtime<H>) -> StepLimits {
    StepLimits {
        timeout_ms: limits.timeout_ms.clamp(1, MAX_TIMEOUT_MS),
        memory_bytes: limits.memory_bytes.min(rt.config().max_memory_bytes),
        output_bytes: limits.output_bytes,
        log_bytes: limits.log_bytes.min(MAX_LOG_BYTES),
    }
}

fn state_for<H: HostCalls>(rt: &Runtime<H>, call: &StepCall<'_>, host: Arc<H>, deadline: Instant) -> StepState<H> {
    let cx = CallContext {
        key: call.key.clone(),
        workflow: call.workflow.clone(),
        acting_user: call.acting_user,
        ticket: call.ticket.clone(),
        deadline,
        provisional: call.provisional,
    };
    StepState::new(cx, call.grants.clone(), call.limits, host, rt.http().clone())
}

fn new_store<H: HostCalls>(rt: &Runtime<H>, state: StepState<H>) -> Store<StepState<H>> {
    let mut store = Store::new(rt.engine(), state);
    store.limiter(|s| &mut s.limiter);
    // Every tick the step yields to the executor (so one busy step cannot starve the
    // others on its thread) and is stopped once past its deadline.
    store.epoch_deadline_callback(|ctx| {
        if Instant::now() >= ctx.data().cx.deadline {
            return Err(DeadlineExceeded.into());
        }
        Ok(UpdateDeadline::Yield(1))
    });
    store.set_epoch_deadline(1);
    store
}

/// Creates the store and instance exactly as a step run does, without calling `run`:
/// what the benchmark reports as the cost of instantiation.
async fn instantiate_only<H: HostCalls>(
    rt: &Runtime<H>,
    component: &Prepared<H>,
    call: StepCall<'_>,
    host: Arc<H>,
) -> Result<(), StepError> {
    let limits = clamp(call.limits, rt);
    let deadline = Instant::now() + Duration::from_millis(limits.timeout_ms);
    let call = StepCall { limits: &limits, ..call };
    let mut store = new_store(rt, state_for(rt, &call, host, deadline));
    component
        .pre
        .instantiate_async(&mut store)
        .await
        .map(drop)
        .map_err(|e| StepError::permanent(StepErrorCode::Trap, format!("instantiating: {e:#}")))
}

fn guest_input(call: &StepCall<'_>) -> StepInput {
    let key = &call.key;
    StepInput {
        context: StepContext {
            workflow: call.workflow.clone(),
            run_id: key.run_id.to_string(),
            step: key.step.clone(),
            attempt: key.attempt,
            acting_user: call.acting_user,
        },
        run_input: call.input.run_input.to_string(),
        deps: call.input.deps.iter().map(|(k, v)| (k.clone(), v.to_string())).collect(),
        config: call.input.config.to_string(),
    }
}

fn read_output(out: crate::bindings::StepOutput, cap: u64) -> StepOutcome {
    if out.output.len() as u64 > cap {
        return StepOutcome::Failed {
            error: StepError::permanent(
                StepErrorCode::OutputTooLarge,
                format!("the step returned {} bytes of output, over its {cap} byte limit", out.output.len()),
            ),
        };
    }
    let output = match serde_json::from_str(&out.output) {
        Ok(v) => v,
        Err(e) => {
            return StepOutcome::Failed {
                error: StepError::permanent(
                    StepErrorCode::InvalidOutput,
                    format!("the step's output is not valid JSON: {e}"),
                ),
            };
        }
    };
    if let Some(next) = &out.next
        && let Some(bad) = next.iter().find(|s| s.is_empty() || s.len() > MAX_STEP_ID)
    {
        return StepOutcome::Failed {
            error: StepError::permanent(StepErrorCode::InvalidOutput, format!("{bad:?} is not a step id")),
        };
    }
    StepOutcome::Ok { output: std::sync::Arc::new(output), next: out.next }
}

/// Captured stdout/stderr become log lines, one per line of text.
fn push_stream(logs: &mut Vec<LogLine>, stream: &str, level: LogLevel, text: &str, dropped: u64) {
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        logs.push(LogLine { level, message: line.to_string(), fields: serde_json::json!({ "stream": stream }) });
    }
    if dropped > 0 {
        logs.push(LogLine {
            level: LogLevel::Warn,
            message: format!("{dropped} byte(s) of {stream} dropped past the capture cap"),
            fields: serde_json::json!({ "stream": stream }),
        });
    }
}
