//! Inbound webhooks: `POST /hooks/{path}` (no bearer token: the HMAC signature is the
//! credential) and the admin calls that set and list webhook keys.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use crm_triggers::signature::{SIGNATURE_HEADER, SignatureError, TIMESTAMP_HEADER};
use crm_triggers::webhook::{self, MAX_BODY_BYTES, SignedRequest};
use crm_triggers::{TriggerError, WebhookError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, CallerErrors, ErrorBody};
use crate::extract::{Json, Operator, Path};
use crate::limits::ClientIp;
use crm_concepts::records::Page;
use crm_store::secrets::{Namespace, SecretInfo};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(receive)).routes(routes!(set_key)).routes(routes!(list_keys))
}

/// The run a webhook started.
#[derive(Debug, Serialize, ToSchema)]
struct HookAccepted {
    run_id: Uuid,
    workflow: String,
}

/// Inbound webhook: starts one run of the workflow whose webhook trigger has this path
///
/// The JSON object body is the run's input. The request is signed with the webhook's key:
/// `X-Crm-Signature: sha256=<hex HMAC-SHA256(key, timestamp + "." + path + "." + body)>` (path:
/// the hook's path, e.g. `inbound-lead`), and a timestamp outside the replay window, or one
/// seen before, is refused.
#[utoipa::path(
    post, path = "/hooks/{path}", tag = "triggers", operation_id = "receive_webhook",
    params(
        ("path" = String, Path, description = "the `path` of a webhook trigger"),
        ("X-Crm-Timestamp" = String, Header, description = "unix seconds of when the request was signed"),
        ("X-Crm-Signature" = String, Header, description = "`sha256=` and 64 hex digits"),
    ),
    request_body(content = Object, description = "the run's input"),
    responses(
        (status = 202, description = "the run was started", body = HookAccepted),
        (status = 400, description = "the body is not a JSON object", body = ErrorBody),
        (status = 401, description = "no key is set, or the signature or timestamp is missing or wrong",
            body = ErrorBody),
        (status = 404, description = "no enabled workflow has a webhook with this path", body = ErrorBody),
        (status = 409, description = "this signed request was seen before", body = ErrorBody),
        (status = 413, description = "the body is larger than 256 KiB", body = ErrorBody),
        (status = 429, description = "too many deliveries from this address (`CRM_HOOKS_PER_SECOND`)", body = ErrorBody),
        (status = 500, description = "an internal failure (logged, not described)", body = ErrorBody),
        (status = 503, description = "the database is unavailable, or the request took too long", body = ErrorBody),
    ),
)]
async fn receive(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<HookAccepted>), ApiError> {
    // Budgeted before the body is read or a secret looked up: a flood costs a map lookup.
    if !state.limits.hooks.take(&ip) {
        tracing::info!(path, %ip, "webhook refused: over the per-address rate");
        return Err(ApiError::too_many("too many webhook deliveries from this address; slow down and retry"));
    }
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
    let accepted = webhook::accept(&state.db.pool, &state.vault, starter, request, chrono::Utc::now())
        .await
        .map_err(|e| refusal(&path, e))?;
    Ok((StatusCode::ACCEPTED, Json(HookAccepted { run_id: accepted.run_id, workflow: accepted.workflow })))
}

fn refusal(path: &str, e: WebhookError) -> ApiError {
    let error = match &e {
        WebhookError::UnknownHook(_) => ApiError::not_found(e.to_string()),
        WebhookError::NoKey { .. } | WebhookError::Signature(_) => ApiError::unauthorized(e.to_string()),
        WebhookError::Replayed => ApiError::conflict(e.to_string()),
        WebhookError::BadBody(_) => ApiError::bad_request(e.to_string()),
        WebhookError::BadKey(_) => ApiError::validation("key", e.to_string()),
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

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct KeyBody {
    /// the key to store; a random one is generated when absent
    #[serde(default)]
    key: Option<String>,
}

/// The key as stored: the only time it is shown.
#[derive(Debug, Serialize, ToSchema)]
struct WebhookKey {
    name: String,
    key: String,
}

/// Set or rotate a webhook key (an admin's own token)
///
/// Without a body (or with `{}`) a random key is generated. The answer is the only time the
/// key is shown. Webhook keys live apart from step secrets: no step can read one.
#[utoipa::path(
    post, path = "/api/webhook-keys/{name}", tag = "triggers", operation_id = "set_webhook_key",
    params(("name" = String, Path, description = "the key's name, as a webhook trigger's `key` gives it")),
    request_body = Option<KeyBody>,
    responses(
        (status = 200, description = "the stored key", body = WebhookKey),
        CallerErrors,
        (status = 413, description = "the body is larger than the limit", body = ErrorBody),
        (status = 422, description = "the given key or name is unacceptable", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn set_key(
    State(state): State<AppState>,
    _: Operator,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<WebhookKey>, ApiError> {
    // The body is optional: no body (or `{}`) asks for a generated key.
    let body: KeyBody = if body.iter().all(u8::is_ascii_whitespace) {
        KeyBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    let key = webhook::set_key(&state.db, &state.vault, &name, body.key.as_deref()).await.map_err(|e| match e {
        WebhookError::BadKey(m) => ApiError::validation("key", m),
        other => ApiError::internal(other),
    })?;
    Ok(Json(WebhookKey { name, key }))
}

/// Webhook keys by name (never their values)
#[utoipa::path(
    get, path = "/api/webhook-keys", tag = "triggers", operation_id = "list_webhook_keys",
    responses((status = 200, description = "every webhook key", body = Page<SecretInfo>), CallerErrors),
    security(("bearer" = [])),
)]
async fn list_keys(State(state): State<AppState>, _: Operator) -> Result<Json<Page<SecretInfo>>, ApiError> {
    let items = crm_store::secrets::list(&state.db, Namespace::Webhook).await?;
    Ok(Json(Page { items, next_cursor: None }))
}
