//! The one error shape of the API: `{"error": {"code", "message", "fields"}}`, with the
//! status that goes with each code. Internal failures are logged, never described.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_store::StoreError;
use crm_store::workflow_error::WorkflowError;
use serde::Serialize;
use utoipa::{IntoResponses, ToSchema};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// What went wrong, as a client branches on it; each code has one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    ValidationFailed,
    Internal,
    Unavailable,
    Timeout,
    TooManyRequests,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Unavailable | ErrorCode::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub fields: Vec<FieldError>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into(), fields: Vec::new() }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::BadRequest, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Unauthorized, message)
    }
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Forbidden, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::NotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Conflict, message)
    }
    pub fn payload_too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::PayloadTooLarge, message)
    }
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        let (field, message) = (field.into(), message.into());
        ApiError {
            code: ErrorCode::ValidationFailed,
            message: format!("{field}: {message}"),
            fields: vec![FieldError { field, message }],
        }
    }
    /// Logs the cause and answers without details: internals are not the client's business.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "internal error while handling a request");
        ApiError::new(ErrorCode::Internal, "internal error")
    }
    pub fn too_many(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::TooManyRequests, message)
    }
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Unavailable, message)
    }
}

/// What every error answer carries.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    /// the offending input fields of a `validation_failed`; absent otherwise
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code, message: self.message, fields: self.fields } };
        (self.code.status(), Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound { .. } | StoreError::Missing(_) => ApiError::not_found(e.to_string()),
            StoreError::Validation { field, message } => ApiError::validation(field, message),
            StoreError::Conflict(m) => ApiError::conflict(m),
            StoreError::InvalidQuery(m) => ApiError::bad_request(m),
            StoreError::Db(_) if e.is_transient() => {
                tracing::warn!(error = %e, "database unavailable");
                ApiError::unavailable("the database is unavailable; retry shortly")
            }
            StoreError::Db(_) => ApiError::internal(e),
        }
    }
}

impl From<WorkflowError> for ApiError {
    fn from(e: WorkflowError) -> ApiError {
        match e {
            WorkflowError::WorkflowNotFound(_)
            | WorkflowError::VersionNotFound { .. }
            | WorkflowError::RunNotFound(_) => ApiError::not_found(e.to_string()),
            WorkflowError::Disabled(_) | WorkflowError::Conflict(_) => ApiError::conflict(e.to_string()),
            WorkflowError::Validation { field, message } => ApiError::validation(field, message),
            WorkflowError::InvalidQuery(m) => ApiError::bad_request(m),
            WorkflowError::Unavailable(m) => ApiError::unavailable(m),
            WorkflowError::Db(_) => ApiError::internal(e),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::payload_too_large(format!(
                "request body is larger than the limit of {} bytes",
                crate::BODY_LIMIT
            ));
        }
        ApiError::bad_request(r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        ApiError::bad_request(r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> ApiError {
        ApiError::bad_request(r.body_text())
    }
}

// The answers below are what the OpenAPI document lists; handlers name the groups that
// their extractors and store calls can produce.

/// Errors any call with a bearer token can get.
#[derive(IntoResponses)]
pub enum CallerErrors {
    /// malformed query, path or `X-Crm-Acting-User`
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// missing, invalid or revoked token
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// the role does not allow this, or a token that is not an admin's sent `X-Crm-Acting-User`
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// too many failed authentications from this address, or too many open event streams
    /// for this token: wait and retry
    #[response(status = 429)]
    TooManyRequests(ErrorBody),
    /// an internal failure (logged, not described)
    #[response(status = 500)]
    Internal(ErrorBody),
    /// the database is unavailable, or the request took too long
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// the record named in the path does not exist
#[derive(IntoResponses)]
#[response(status = 404)]
pub struct NotFound(pub ErrorBody);

/// Errors of a call whose JSON body changes data.
#[derive(IntoResponses)]
pub enum WriteErrors {
    /// clashes with existing data
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// the body is larger than the limit
    #[response(status = 413)]
    PayloadTooLarge(ErrorBody),
    /// the input breaks a rule; `fields` names the offending fields
    #[response(status = 422)]
    ValidationFailed(ErrorBody),
}
