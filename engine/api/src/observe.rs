//! Every request, observed: an id (`x-request-id`, the client's or a fresh UUID, echoed in
//! the response), a tracing span that carries it (so whatever a handler logs names its
//! request; `RUST_LOG=info,tower_http=debug` adds an access line per response), and the
//! HTTP series of `/metrics` by method, matched route (never the raw path, whose ids would
//! make a series per record) and status.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::request_id::MakeRequestUuid;

/// The route label of a request no route matched.
const UNMATCHED: &str = "unmatched";

/// Wraps every route and fallback of `router`.
pub fn layer<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    // Outermost first: the id is set, echoed, in the span, then counted. One `layer` call,
    // for the reason given at `crate::router`.
    router.layer(
        tower::ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(TraceLayer::new_for_http().make_span_with(span))
            .layer(middleware::from_fn(record)),
    )
}

fn route(req: &Request) -> String {
    req.extensions().get::<MatchedPath>().map_or_else(|| UNMATCHED.to_string(), |m| m.as_str().to_string())
}

/// A method as a label: the standard ones by name, anything else as `other`.
fn method(req: &Request) -> &'static str {
    use axum::http::Method;
    match *req.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn span(req: &Request) -> tracing::Span {
    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
    tracing::info_span!("request", method = method(req), route = %route(req), request_id = %id)
}

async fn record(req: Request, next: Next) -> Response {
    let (method, route) = (method(&req), route(&req));
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("crm_http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("crm_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
