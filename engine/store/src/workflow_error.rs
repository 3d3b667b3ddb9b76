//! What can go wrong when deploying workflows and starting or reading runs, in terms the
//! API maps to one HTTP status each.

use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("workflow {0:?} not found")]
    WorkflowNotFound(String),
    #[error("workflow {workflow:?} has no version {version}")]
    VersionNotFound { workflow: String, version: i32 },
    #[error("run {0} not found")]
    RunNotFound(Uuid),
    #[error("workflow {0:?} is disabled; enable it with `crm workflow enable {0}`")]
    Disabled(String),
    /// The request clashes with existing data (an idempotency key reused with other input).
    #[error("{0}")]
    Conflict(String),
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    /// A malformed list request: a bad cursor or filter.
    #[error("{0}")]
    InvalidQuery(String),
    /// A shared step (a batch insert) failed for reasons outside this request.
    #[error("{0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

impl WorkflowError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> WorkflowError {
        WorkflowError::Validation { field: field.into(), message: message.into() }
    }
}
