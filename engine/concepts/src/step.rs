//! What travels between the scheduler and the workers: a step job out, a step result back.
//! Both are idempotent by (run, step, attempt): a redelivered job or a duplicated result
//! never changes a run twice.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::capability::Grants;
use crate::timeline::StepTimeline;

/// SHA-256 of a component's bytes, lowercase hex. Components are stored and cached by it.
pub type Digest = String;

/// Identifies one attempt of one step of one run.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub struct AttemptKey {
    pub run_id: Uuid,
    pub step: String,
    pub attempt: u32,
}

/// Hard limits for one step; the runtime enforces every one of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StepLimits {
    /// wall-clock deadline, enforced by epoch interruption
    pub timeout_ms: u64,
    /// linear memory cap
    pub memory_bytes: u64,
    /// largest serialized output accepted
    pub output_bytes: u64,
    /// captured stdout/stderr/log cap
    pub log_bytes: u64,
}

impl Default for StepLimits {
    fn default() -> Self {
        StepLimits { timeout_ms: 10_000, memory_bytes: 64 << 20, output_bytes: 1 << 20, log_bytes: 64 << 10 }
    }
}

/// The input a step receives: the run's input, the outputs of the steps it needs, and its config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StepInput {
    pub run_input: serde_json::Value,
    #[schema(value_type = BTreeMap<String, serde_json::Value>)]
    pub deps: BTreeMap<String, Arc<serde_json::Value>>,
    pub config: serde_json::Value,
}

/// A unit of work on the jobs stream, signed by the engine: a worker runs it only when the
/// signature verifies, and everything it sends back for it names `ticket`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepJob {
    pub key: AttemptKey,
    pub workflow: String,
    pub component: Digest,
    pub input: StepInput,
    /// the capabilities granted, in their string form (`records:read`, `http:HOST`, …)
    #[schema(value_type = Vec<String>)]
    pub grants: Grants,
    pub limits: StepLimits,
    /// the CRM user the run acts for; record writes are attributed to them
    pub acting_user: Option<i64>,
    /// the engine's credential for this attempt (opaque to the worker)
    pub ticket: String,
    /// the W3C `traceparent` of the engine's dispatch of this attempt, while the engine
    /// exports traces: the worker's span of the step joins the run's trace under it
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// the engine sent the job before the statement recording its attempt committed: the
    /// step may compute at once, but must ask the engine (`worker_channel::CONFIRM`) before
    /// its first outbound request. Its host calls and result the engine holds back itself.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub provisional: bool,
}

/// Whether `digest` is a SHA-256 in lowercase hex: the only form a component is named by,
/// and so the only one that may become part of a file name.
pub fn is_digest(digest: &str) -> bool {
    digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether trying again can help. Only retryable errors are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Retryable,
    Permanent,
}

/// Why a step failed, as a stable machine-readable code. A guest's own error is always
/// `guest` (its own code leads the message), so a step cannot pass itself off as the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepErrorCode {
    /// the step outlived its wall-clock deadline (guest code, host calls and sleeps alike)
    Timeout,
    MemoryLimit,
    StackOverflow,
    /// the guest trapped: a panic, `unreachable`, an exit, a table limit
    Trap,
    CapabilityDenied,
    OutputTooLarge,
    /// the output is not JSON, or `next` names something that is not a step id
    InvalidOutput,
    /// the step returned an error of its own
    Guest,
    /// the bytes are not a step component (not wasm, a core module, wrong world, sockets)
    InvalidComponent,
    /// the component could not be fetched (yet)
    ComponentMissing,
    /// the worker had no free instance slot or could not compile in time
    WorkerBusy,
    /// something the step needed was down (the engine, the database)
    Unavailable,
    /// no result came back in time: the worker or Redis lost the attempt
    Lost,
    /// a retry made a different write than the earlier attempt at the same position
    ReplayDiverged,
    /// the step's `next` named steps that do not follow it
    BadNext,
    /// a waiting step's template rendered no time (`until`) or no record id (`wait_event`)
    BadWait,
}

impl StepErrorCode {
    pub const ALL: &'static [StepErrorCode] = &[
        StepErrorCode::Timeout,
        StepErrorCode::MemoryLimit,
        StepErrorCode::StackOverflow,
        StepErrorCode::Trap,
        StepErrorCode::CapabilityDenied,
        StepErrorCode::OutputTooLarge,
        StepErrorCode::InvalidOutput,
        StepErrorCode::Guest,
        StepErrorCode::InvalidComponent,
        StepErrorCode::ComponentMissing,
        StepErrorCode::WorkerBusy,
        StepErrorCode::Unavailable,
        StepErrorCode::Lost,
        StepErrorCode::ReplayDiverged,
        StepErrorCode::BadNext,
        StepErrorCode::BadWait,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepErrorCode::Timeout => "timeout",
            StepErrorCode::MemoryLimit => "memory_limit",
            StepErrorCode::StackOverflow => "stack_overflow",
            StepErrorCode::Trap => "trap",
            StepErrorCode::CapabilityDenied => "capability_denied",
            StepErrorCode::OutputTooLarge => "output_too_large",
            StepErrorCode::InvalidOutput => "invalid_output",
            StepErrorCode::Guest => "guest",
            StepErrorCode::InvalidComponent => "invalid_component",
            StepErrorCode::ComponentMissing => "component_missing",
            StepErrorCode::WorkerBusy => "worker_busy",
            StepErrorCode::Unavailable => "unavailable",
            StepErrorCode::Lost => "lost",
            StepErrorCode::ReplayDiverged => "replay_diverged",
            StepErrorCode::BadNext => "bad_next",
            StepErrorCode::BadWait => "bad_wait",
        }
    }
}

impl std::fmt::Display for StepErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Codes compare with their string form, as people and older records spell them.
impl PartialEq<&str> for StepErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for StepErrorCode {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl std::str::FromStr for StepErrorCode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        StepErrorCode::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown step error code {s:?}"))
    }
}

/// Why a step failed: the code, whether retrying can help, and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error, ToSchema)]
#[error("{code}: {message}")]
pub struct StepError {
    pub kind: ErrorKind,
    pub code: StepErrorCode,
    pub message: String,
}

impl StepError {
    pub fn permanent(code: StepErrorCode, message: impl Into<String>) -> Self {
        StepError { kind: ErrorKind::Permanent, code, message: message.into() }
    }
    pub fn retryable(code: StepErrorCode, message: impl Into<String>) -> Self {
        StepError { kind: ErrorKind::Retryable, code, message: message.into() }
    }
    pub fn is_retryable(&self) -> bool {
        self.kind == ErrorKind::Retryable
    }
}

/// What a step produced. `next` lets a step choose which successors run (branching):
/// `None` means all of them.
///
/// Read through [`OutcomeWire`] rather than serde's internally tagged form, which first
/// copies the whole object, output and all, into a buffer of its own and then reads the
/// variant out of that copy: every result a worker hands in was parsed twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case", try_from = "OutcomeWire")]
pub enum StepOutcome {
    Ok {
        /// shared, not copied, by everything that carries it on (the step's row, the run's
        /// result, its completion, the next steps' inputs)
        #[schema(value_type = serde_json::Value)]
        output: Arc<serde_json::Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<Vec<String>>,
    },
    Failed {
        error: StepError,
    },
}

/// [`StepOutcome`] as it is written: `status` names the variant, and the variant's fields
/// sit beside it. `status` may come last, so `next` and `error` are kept as they came and
/// read only for the variant that has them: the other variant's fields are ignored however
/// they are written, as serde's tagged form does. (Any JSON is an output, so `output` is
/// read at once.)
#[derive(Deserialize)]
struct OutcomeWire {
    status: OutcomeStatus,
    /// `Some` whenever the field is there, `null` included
    #[serde(default, deserialize_with = "present")]
    output: Option<Arc<serde_json::Value>>,
    #[serde(default)]
    next: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum OutcomeStatus {
    Ok,
    Failed,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Arc<serde_json::Value>>, D::Error> {
    Arc::<serde_json::Value>::deserialize(d).map(Some)
}

impl TryFrom<OutcomeWire> for StepOutcome {
    type Error = String;

    fn try_from(wire: OutcomeWire) -> Result<StepOutcome, Self::Error> {
        match wire.status {
            OutcomeStatus::Ok => Ok(StepOutcome::Ok {
                output: wire.output.ok_or("missing field `output`")?,
                next: wire.next.map(serde_json::from_value).transpose().map_err(|e| format!("next: {e}"))?,
            }),
            OutcomeStatus::Failed => Ok(StepOutcome::Failed {
                error: serde_json::from_value(wire.error.ok_or("missing field `error`")?)
                    .map_err(|e| format!("error: {e}"))?,
            }),
        }
    }
}

/// Resources one attempt used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StepUsage {
    pub duration_us: u64,
    /// epoch ticks the step ran for (one tick per runtime epoch interval)
    pub epochs: u64,
    pub peak_memory_bytes: u64,
    pub log_lines: u32,
    /// where the attempt's time went between the engine, Redis and the worker
    #[serde(default, skip_serializing_if = "StepTimeline::is_empty")]
    pub timeline: StepTimeline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// One line of a step's log: from the log capability, or captured stdout/stderr.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub fields: serde_json::Value,
}

/// A unit of work's answer, as a worker hands it to the engine with the attempt's ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StepResult {
    pub key: AttemptKey,
    pub outcome: StepOutcome,
    pub usage: StepUsage,
    pub logs: Vec<LogLine>,
    pub worker: String,
}

/// A result as it travels: the result and the ticket of the attempt it answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketedResult {
    pub ticket: String,
    pub result: StepResult,
}
