//! What travels between the scheduler and the workers: a step job out, a step result back.
//! Both are idempotent by (run, step, attempt): a redelivered job or a duplicated result
//! never changes a run twice.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::capability::Grants;

/// SHA-256 of a component's bytes, lowercase hex. Components are stored and cached by it.
pub type Digest = String;

/// Identifies one attempt of one step of one run.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AttemptKey {
    pub run_id: Uuid,
    pub step: String,
    pub attempt: u32,
}

/// Hard limits for one step; the runtime enforces every one of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepInput {
    pub run_input: serde_json::Value,
    pub deps: BTreeMap<String, serde_json::Value>,
    pub config: serde_json::Value,
}

/// A unit of work on the jobs stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepJob {
    pub key: AttemptKey,
    pub workflow: String,
    pub component: Digest,
    pub input: StepInput,
    pub grants: Grants,
    pub limits: StepLimits,
    /// the CRM user the run acts for; record writes are attributed to them
    pub acting_user: Option<i64>,
}

/// Whether trying again can help. Only retryable errors are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Retryable,
    Permanent,
}

/// Why a step failed. `code` is stable and machine-readable (e.g. `timeout`,
/// `memory_limit`, `capability_denied`, `trap`, `output_too_large`, `guest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct StepError {
    pub kind: ErrorKind,
    pub code: String,
    pub message: String,
}

impl StepError {
    pub fn permanent(code: impl Into<String>, message: impl Into<String>) -> Self {
        StepError { kind: ErrorKind::Permanent, code: code.into(), message: message.into() }
    }
    pub fn retryable(code: impl Into<String>, message: impl Into<String>) -> Self {
        StepError { kind: ErrorKind::Retryable, code: code.into(), message: message.into() }
    }
    pub fn is_retryable(&self) -> bool {
        self.kind == ErrorKind::Retryable
    }
}

/// What a step produced. `next` lets a step choose which successors run (branching):
/// `None` means all of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StepOutcome {
    Ok {
        output: serde_json::Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<Vec<String>>,
    },
    Failed {
        error: StepError,
    },
}

/// Resources one attempt used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepUsage {
    pub duration_us: u64,
    /// epoch ticks the step ran for (one tick per runtime epoch interval)
    pub epochs: u64,
    pub peak_memory_bytes: u64,
    pub log_lines: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// One line of a step's log: from the log capability, or captured stdout/stderr.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub fields: serde_json::Value,
}

/// A unit of work's answer on the results stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    pub key: AttemptKey,
    pub outcome: StepOutcome,
    pub usage: StepUsage,
    pub logs: Vec<LogLine>,
    pub worker: String,
}
