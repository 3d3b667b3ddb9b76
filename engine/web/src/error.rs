//! What a page answers when something goes wrong: a small HTML page with the status that
//! fits, or, for the app's own `fetch` calls (`Accept: application/json`), the API's error
//! shape. Internal failures are logged, never described.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use crm_store::StoreError;
use crm_store::workflow_error::WorkflowError;
use maud::html;

#[derive(Debug, Clone, thiserror::Error)]
pub enum WebError {
    #[error("{0}")]
    BadRequest(String),
    /// Not signed in (or the session ended): go to the sign-in page, then back to `next`.
    #[error("sign in first")]
    SignIn { next: String },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

/// Attached to an error response, so the guard can answer a `fetch` in JSON instead.
#[derive(Debug, Clone)]
pub struct ErrorNote {
    pub code: &'static str,
    pub message: String,
}

impl WebError {
    pub fn forbidden(message: impl Into<String>) -> WebError {
        WebError::Forbidden(message.into())
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            WebError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            WebError::SignIn { .. } => (StatusCode::UNAUTHORIZED, "unauthorized"),
            WebError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            WebError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            WebError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            WebError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            WebError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    fn public_message(&self) -> String {
        match self {
            WebError::Internal(_) => "Something went wrong on our side; it has been logged. Please try again.".into(),
            other => other.to_string(),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if let WebError::Internal(detail) = &self {
            tracing::error!(error = %detail, "web page failed");
        }
        let (status, code) = self.status_and_code();
        let message = self.public_message();
        let mut response = match &self {
            WebError::SignIn { next } => {
                let target = format!("/sign-in?{}", serde_urlencoded::to_string([("next", next)]).unwrap_or_default());
                Redirect::to(&target).into_response()
            }
            _ => {
                let title = match status {
                    StatusCode::FORBIDDEN => "Not allowed",
                    StatusCode::NOT_FOUND => "Not found",
                    StatusCode::BAD_REQUEST => "That did not work",
                    StatusCode::CONFLICT => "That did not work",
                    _ => "Something went wrong",
                };
                let body = crate::layout::bare(
                    title,
                    html! {
                        h1 { (title) }
                        p.error-message { (message) }
                        p { a href="/" { "Back to the start page" } }
                    },
                );
                (status, [(header::CACHE_CONTROL, "no-store")], body).into_response()
            }
        };
        response.extensions_mut().insert(ErrorNote { code, message });
        response
    }
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> WebError {
        match e {
            StoreError::NotFound { .. } => WebError::NotFound(e.to_string()),
            StoreError::Validation { .. } | StoreError::InvalidQuery(_) => WebError::BadRequest(e.to_string()),
            StoreError::Conflict(m) => WebError::Conflict(m),
            StoreError::Missing(m) => WebError::NotFound(m),
            StoreError::Db(_) if e.is_transient() => {
                WebError::Unavailable("The database is busy or unreachable; please try again.".into())
            }
            StoreError::Db(e) => WebError::Internal(e.to_string()),
        }
    }
}

impl From<WorkflowError> for WebError {
    fn from(e: WorkflowError) -> WebError {
        match e {
            WorkflowError::WorkflowNotFound(_)
            | WorkflowError::VersionNotFound { .. }
            | WorkflowError::RunNotFound(_) => WebError::NotFound(e.to_string()),
            WorkflowError::Disabled(_) | WorkflowError::Conflict(_) => WebError::Conflict(e.to_string()),
            WorkflowError::Validation { .. } | WorkflowError::InvalidQuery(_) => WebError::BadRequest(e.to_string()),
            WorkflowError::Unavailable(m) => WebError::Unavailable(m),
            WorkflowError::Db(e) => WebError::Internal(e.to_string()),
        }
    }
}
