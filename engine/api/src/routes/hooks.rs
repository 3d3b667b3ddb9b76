//! Inbound webhooks: `POST /hooks/{path}` (no bearer token: the HMAC signature is the
//! credential) and the admin call that sets a webhook secret.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use crm_triggers::signature::{SIGNATURE_HEADER, SignatureError, TIMESTAMP_HEADER};
use crm_triggers::webhook::{self, MAX_BODY_BYTES, SignedRequest};
use crm_triggers::{TriggerError, WebhookError};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Admin, Json, Path};

pub fn router() -> Router<AppState> {
    Router::new().route("/hooks/{path}", post(receive)).route("/api/webhook-secrets/{name}", post(set_secret))
}

async fn receive(
    State(state): State<AppState>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // Read at most one byte past the limit: enough to know the body is too large without
    // buffering whatever a sender streams at us.
    let body = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::payload_too_large(format!("webhook bodies are limited to {MAX_BODY_BYTES} bytes")))?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let request = SignedRequest {
        path: &path,
        timestamp: header(TIMESTAMP_HEADER),
        signature: header(SIGNATURE_HEADER),
        body: &body,
    };
    let starter = state
        .run_starter
        .as_deref()
        .ok_or_else(|| ApiError::unavailable("this API runs without the scheduler; start `crm serve`"))?;
    let accepted =
        webhook::accept(&state.db.pool, starter, request, chrono::Utc::now()).await.map_err(|e| refusal(&path, e))?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "run_id": accepted.run_id, "workflow": accepted.workflow }))))
}

fn refusal(path: &str, e: WebhookError) -> ApiError {
    let error = match &e {
        WebhookError::UnknownHook(_) => ApiError::not_found(e.to_string()),
        WebhookError::NoSecret { .. } | WebhookError::Signature(_) => ApiError::unauthorized(e.to_string()),
        WebhookError::Replayed => ApiError::conflict(e.to_string()),
        WebhookError::BadBody(_) => ApiError::bad_request(e.to_string()),
        WebhookError::BadSecret(_) => ApiError::validation("secret", e.to_string()),
        WebhookError::Trigger(TriggerError::Sql(_) | TriggerError::StartRun { .. } | TriggerError::Store(_)) => {
            return ApiError::internal(e);
        }
    };
    // Refusals are what an operator looks for when a sender says "it did not work".
    if matches!(e, WebhookError::Signature(SignatureError::Mismatch) | WebhookError::Replayed) {
        tracing::warn!(path, reason = %e, "webhook refused");
    } else {
        tracing::info!(path, reason = %e, "webhook refused");
    }
    error
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretBody {
    /// the secret to store; a random one is generated when absent
    #[serde(default)]
    secret: Option<String>,
}

/// Sets (or rotates) a webhook secret and shows it once.
async fn set_secret(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    // The body is optional: no body (or `{}`) asks for a generated secret.
    let body: SecretBody = if body.iter().all(u8::is_ascii_whitespace) {
        SecretBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    let secret = webhook::set_secret(&state.db.pool, &name, body.secret.as_deref()).await.map_err(|e| match e {
        WebhookError::BadSecret(m) => ApiError::validation("secret", m),
        other => ApiError::internal(other),
    })?;
    Ok(Json(json!({ "name": name, "secret": secret })))
}
