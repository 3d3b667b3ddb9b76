//! The workers' channel: what a `crm worker` may ask of the engine, authenticated by its
//! worker credential (never a user's token). A worker can fetch component bytes, make the
//! host calls of the attempts it was handed, and hand in their results; the scheduler
//! checks each against the attempt's ticket and the deployed version's grants.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use crm_concepts::step::is_digest;
use crm_concepts::worker_channel::{CallAnswer, CallRequest, ConfirmRequest, CurrentComponents, Hello, ResultsRequest};
use crm_scheduler::{IntakeError, Scheduler};
use crm_store::worker_credentials;
use sha2::{Digest, Sha256};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, CallerErrors, NotFound};
use crate::extract::{Json, Path, failed, too_many_failures};
use crate::limits::client_ip;
use crate::token_cache::Stamp;

/// A batch of results may carry many outputs; the rest of the API keeps its 1 MiB.
const RESULTS_BODY_LIMIT: usize = 64 << 20;

pub fn router() -> OpenApiRouter<AppState> {
    let results = OpenApiRouter::new().routes(routes!(results)).layer(DefaultBodyLimit::max(RESULTS_BODY_LIMIT));
    OpenApiRouter::new()
        .routes(routes!(hello))
        .routes(routes!(current_components))
        .routes(routes!(component))
        .routes(routes!(call))
        .routes(routes!(confirm))
        .merge(results)
}

/// How long a verified credential is believed without asking Postgres again: a host call
/// should not cost a database round trip for authentication. A revoke forgets it at once
/// (this engine's own, or one Postgres announces: the same changes as
/// [`crate::token_cache`] follows); this bounds it for an engine that is not listening.
const CREDENTIAL_TTL: Duration = Duration::from_secs(5);

/// Credentials verified recently, by the SHA-256 of their secret, with when and under
/// which count of credential changes.
#[derive(Default)]
pub struct WorkerCredentials {
    seen: Mutex<HashMap<[u8; 32], (Instant, Stamp)>>,
}

/// A request from a worker with a live credential.
pub struct Worker;

impl FromRequestParts<AppState> for Worker {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Worker, ApiError> {
        let ip = client_ip(&parts.extensions);
        if !state.limits.auth_failures.allows(&ip) {
            return Err(too_many_failures());
        }
        let Some(secret) = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            let e = ApiError::unauthorized("a worker credential is required (Authorization: Bearer crmw_…)");
            return Err(failed(state, ip, e));
        };
        let hash: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let stamp = state.tokens.stamp();
        let fresh = |(at, taken): &(Instant, Stamp)| at.elapsed() < CREDENTIAL_TTL && *taken == stamp;
        {
            let seen = state.worker_credentials.seen.lock().unwrap_or_else(|p| p.into_inner());
            if seen.get(&hash).is_some_and(fresh) {
                return Ok(Worker);
            }
        }
        // Boxed, as in `crate::extract`: kept inline, the query's future would be moved
        // with every worker request's future, though a credential seen lately never reaches it.
        match Box::pin(worker_credentials::authenticate(&state.db, secret)).await? {
            Some(_) => {
                let mut seen = state.worker_credentials.seen.lock().unwrap_or_else(|p| p.into_inner());
                seen.retain(|_, entry| fresh(&*entry));
                seen.insert(hash, (Instant::now(), stamp));
                Ok(Worker)
            }
            None => Err(failed(state, ip, ApiError::unauthorized("unknown or revoked worker credential"))),
        }
    }
}

fn scheduler(s: &AppState) -> Result<&Scheduler, ApiError> {
    s.scheduler.as_ref().ok_or_else(|| ApiError::unavailable("this API runs without the scheduler"))
}

fn intake_error(e: IntakeError) -> ApiError {
    match e {
        IntakeError::Refused(m) => ApiError::forbidden(m),
        IntakeError::Unavailable(m) => ApiError::unavailable(m),
    }
}

/// The key jobs are signed with
#[utoipa::path(
    get, path = "/worker/v1/hello", tag = "workers", operation_id = "worker_hello",
    responses((status = 200, description = "the engine's public key", body = Hello), CallerErrors),
    security(("worker" = [])),
)]
async fn hello(State(s): State<AppState>, _: Worker) -> Result<Json<Hello>, ApiError> {
    Ok(Json(Hello { public_key: scheduler(&s)?.public_key() }))
}

/// The components the current workflow versions run
#[utoipa::path(
    get, path = "/worker/v1/components", tag = "workers", operation_id = "worker_current_components",
    responses((status = 200, description = "digests to keep compiled", body = CurrentComponents), CallerErrors),
    security(("worker" = [])),
)]
async fn current_components(State(s): State<AppState>, _: Worker) -> Result<Json<CurrentComponents>, ApiError> {
    let digests = crm_store::workflows::current_components(&s.db.pool).await?;
    Ok(Json(CurrentComponents { digests }))
}

/// A stored component's bytes
#[utoipa::path(
    get, path = "/worker/v1/components/{digest}", tag = "workers", operation_id = "worker_component",
    params(("digest" = String, Path, description = "the component's SHA-256, 64 lowercase hex digits")),
    responses(
        (status = 200, description = "the component", content_type = "application/wasm", body = Vec<u8>),
        CallerErrors,
        NotFound,
    ),
    security(("worker" = [])),
)]
async fn component(
    State(s): State<AppState>,
    _: Worker,
    Path(digest): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    if !is_digest(&digest) {
        return Err(ApiError::bad_request("a component is named by its SHA-256 (64 lowercase hex digits)"));
    }
    let bytes = crm_store::components::get(&s.db, &digest)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no component {digest}")))?;
    Ok(([(header::CONTENT_TYPE, "application/wasm")], Bytes::from(bytes)))
}

/// One host call of an attempt the worker holds
#[utoipa::path(
    post, path = "/worker/v1/calls", tag = "workers", operation_id = "worker_call",
    request_body = CallRequest,
    responses(
        (status = 200, description = "the call's answer: a reply, or the error the step sees", body = CallAnswer),
        CallerErrors,
    ),
    security(("worker" = [])),
)]
async fn call(
    State(s): State<AppState>,
    _: Worker,
    Json(request): Json<CallRequest>,
) -> Result<Json<CallAnswer>, ApiError> {
    let answer = scheduler(&s)?
        .host_call(&request.ticket, request.write_seq, request.remaining_ms, request.call)
        .await
        .map_err(intake_error)?;
    Ok(Json(answer.into()))
}

/// Waits until a provisionally sent attempt is recorded: its step may then act outside its sandbox
#[utoipa::path(
    post, path = "/worker/v1/confirm", tag = "workers", operation_id = "worker_confirm",
    request_body = ConfirmRequest,
    responses(
        (status = 204, description = "the attempt is recorded (403: it never will be, as its run changed first)"),
        CallerErrors,
    ),
    security(("worker" = [])),
)]
async fn confirm(
    State(s): State<AppState>,
    _: Worker,
    Json(request): Json<ConfirmRequest>,
) -> Result<StatusCode, ApiError> {
    scheduler(&s)?.confirm(&request.ticket, request.remaining_ms).await.map_err(intake_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Results of attempts the worker held; answered once committed
#[utoipa::path(
    post, path = "/worker/v1/results", tag = "workers", operation_id = "worker_results",
    request_body = ResultsRequest,
    responses((status = 204, description = "applied: the worker may ack the jobs"), CallerErrors),
    security(("worker" = [])),
)]
async fn results(
    State(s): State<AppState>,
    _: Worker,
    Json(request): Json<ResultsRequest>,
) -> Result<StatusCode, ApiError> {
    scheduler(&s)?.accept_results(request.results).await.map_err(intake_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use crm_concepts::worker_channel as wire;

    /// The worker's client builds its URLs from these: they must be the routed paths.
    #[test]
    fn the_workers_client_and_these_routes_name_the_same_paths() {
        let doc = crate::openapi::to_json(&crate::routes::all().split_for_parts().1);
        for path in
            [wire::HELLO, wire::CALLS, wire::CONFIRM, wire::RESULTS, &format!("{}/{{digest}}", wire::COMPONENTS)]
        {
            assert!(doc["paths"].get(path).is_some(), "{path} is not a route");
        }
    }
}
