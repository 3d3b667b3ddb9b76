//! One stream entry and its payload.

use crm_concepts::step::{StepJob, StepResult};

/// A job read from the jobs stream; `id` is what the worker acks.
#[derive(Debug, Clone)]
pub struct JobEntry {
    pub id: String,
    pub job: StepJob,
}

/// A result read from the results stream; `id` is what the engine acks.
#[derive(Debug, Clone)]
pub struct ResultEntry {
    pub id: String,
    pub result: StepResult,
}
