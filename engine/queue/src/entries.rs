//! One stream entry and its payload.

use crm_concepts::step::{StepJob, StepResult};

/// A job read from the jobs stream; `id` is what the worker acks.
#[derive(Debug, Clone)]
pub struct JobEntry {
    pub id: String,
    pub job: StepJob,
    /// how many times the group has handed this entry out (1 on first delivery), when known
    pub deliveries: Option<u64>,
}

/// A result read from the results stream; `id` is what the engine acks.
#[derive(Debug, Clone)]
pub struct ResultEntry {
    pub id: String,
    pub result: StepResult,
}
