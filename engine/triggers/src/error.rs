//! Errors of the trigger consumers and of webhook intake.

use crate::signature::SignatureError;

#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("could not start a run of {workflow}: {message}")]
    StartRun { workflow: String, message: String },
    #[error("{0}")]
    Store(String),
}

impl From<crm_store::workflow_error::WorkflowError> for TriggerError {
    fn from(e: crm_store::workflow_error::WorkflowError) -> Self {
        TriggerError::Store(e.to_string())
    }
}

/// Why a webhook request was refused; the API maps each to a status and a clear message.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("no workflow receives webhooks at /hooks/{0}")]
    UnknownHook(String),
    #[error("webhook /hooks/{path} has no key yet: set one with `crm webhook key {key}`")]
    NoKey { path: String, key: String },
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("this request was already received (same signature inside the replay window)")]
    Replayed,
    #[error("{0}")]
    BadKey(String),
    #[error("the body is not a JSON object: {0}")]
    BadBody(String),
    #[error(transparent)]
    Trigger(#[from] TriggerError),
}

impl From<sqlx::Error> for WebhookError {
    fn from(e: sqlx::Error) -> Self {
        WebhookError::Trigger(TriggerError::Sql(e))
    }
}
