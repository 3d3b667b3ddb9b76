//! The engine's HTTP API (axum): CRM records, search, users, health, and the OpenAPI
//! document with a page that renders it. Every error has the shape
//! `{"error": {"code", "message", "fields"}}`.
//!
//! Route groups live in `routes/`, one module each, merged in [`routes::all`].

pub mod error;
pub mod extract;
pub mod limits;
pub mod observe;
pub mod openapi;
mod request_id;
pub mod routes;
pub mod run_watch;
mod serve;
pub mod token_cache;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use crm_store::Db;

use crate::error::{ApiError, ErrorCode};
pub use crate::serve::serve;

/// Request bodies above this are refused with 413 before they are parsed.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// What every handler can reach: one `Arc` around [`Shared`], because axum clones the
/// state for every extractor and middleware of every request (cloning the fields one by
/// one, with the drops and cancellation-token counts that go with it, was about 8 % of
/// the engine's CPU samples in `perf` during `crm bench hostcalls`).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl From<Shared> for AppState {
    fn from(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

/// The parts of [`AppState`], set up before the API serves.
pub struct Shared {
    pub db: Db,
    /// for `/readyz` (one server or a cluster); it connects lazily, so the API starts even
    /// while Redis is down
    pub redis: crm_queue::Redis,
    /// the one Redis connection `/readyz` probes with, made on first use and kept
    pub readiness: Arc<tokio::sync::OnceCell<crm_queue::Connection>>,
    /// budgets for failed authentications, webhooks and event streams
    pub limits: Arc<limits::Limits>,
    /// the one watcher behind every run event stream of this process
    pub run_watch: Arc<run_watch::RunWatch>,
    /// seals and opens secrets and webhook keys (the installation's key, never in Postgres)
    pub vault: Arc<crm_vault::Vault>,
    /// a handler that runs longer is answered with 503 (streams are not affected: the
    /// limit covers producing the response head, not sending an event stream)
    pub request_timeout: Duration,
    /// starts runs for webhooks, inside the transaction that records the delivery; `None`
    /// without a scheduler, where webhooks answer 503
    pub run_starter: Option<Arc<dyn crm_triggers::RunStarter>>,
    /// starts, cancels and follows runs; `None` in an API without an engine (tests of the
    /// record routes), where the run routes answer 503
    pub scheduler: Option<crm_scheduler::Scheduler>,
    /// worker credentials verified recently
    pub worker_credentials: Arc<routes::workers::WorkerCredentials>,
    /// API tokens and acting users verified recently; used only while
    /// [`token_cache::TokenCache::follow`] runs
    pub tokens: Arc<token_cache::TokenCache>,
    /// where people's browsers reach this engine (`CRM_PUBLIC_URL`): sign-in links point
    /// there; `None` gives links relative to the engine
    pub public_url: Option<String>,
    /// the ISO 4217 code of a new deal that names none (`CRM_DEFAULT_CURRENCY`)
    pub default_currency: String,
}

impl Shared {
    pub fn new(db: Db, redis: crm_queue::Redis, vault: Arc<crm_vault::Vault>) -> Shared {
        Shared {
            vault,
            run_watch: run_watch::RunWatch::new(db.pool.clone()),
            db,
            redis,
            readiness: Arc::default(),
            limits: Arc::default(),
            request_timeout: Duration::from_secs(30),
            run_starter: None,
            scheduler: None,
            worker_credentials: Arc::default(),
            tokens: Arc::default(),
            public_url: None,
            default_currency: "USD".into(),
        }
    }

    pub fn with_scheduler(mut self, scheduler: crm_scheduler::Scheduler) -> Shared {
        self.run_starter = Some(Arc::new(scheduler.admission()));
        self.scheduler = Some(scheduler);
        self
    }
}

#[cfg(test)]
impl AppState {
    /// Postgres and Redis on a closed port: for tests of routing, which must not depend on
    /// (or write to) either; a handler that reaches the database fails within half a second.
    pub(crate) fn unreachable() -> AppState {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .acquire_timeout(Duration::from_millis(500))
            .connect_lazy("postgres://postgres@127.0.0.1:1/unreachable")
            .expect("a valid URL");
        let redis = crm_queue::Redis::open("redis://127.0.0.1:1").expect("a valid URL");
        Shared::new(Db { pool }, redis, Arc::new(crm_vault::Vault::ephemeral())).into()
    }
}

pub fn router(state: AppState) -> Router {
    let (routes, api) = routes::all().split_for_parts();
    // One `layer` call with the whole stack: each `Router::layer` boxes every route again,
    // and a `from_fn` middleware clones the service under it on every request, boxes and
    // all, so separate calls cost an allocation per layer per middleware per request.
    // Outermost first.
    let stack = tower::ServiceBuilder::new()
        .layer(middleware::from_fn(close_after_refused_body))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        .layer(Extension(openapi::Document::new(&api)));
    routes.fallback(not_found).method_not_allowed_fallback(method_not_allowed).layer(stack).with_state(state)
}

/// A body refused for its size was not read to its end, so its connection cannot carry
/// another request: say so, or a client that pools connections (reqwest does) sends its
/// next request down a connection the server is closing, and that request fails.
async fn close_after_refused_body(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    if res.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        res.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    }
    res
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowed, "method not allowed on this route")
}

async fn deadline(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // Kept only to name the request if it times out: a `Uri` clone shares its bytes.
    let (method, uri) = (req.method().clone(), req.uri().clone());
    match tokio::time::timeout(state.request_timeout, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::warn!(%method, path = uri.path(), "request timed out");
            ApiError::new(ErrorCode::Timeout, "the request took too long").into_response()
        }
    }
}
