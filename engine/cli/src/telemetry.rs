//! Prometheus metrics for every role. The crates record through the `metrics` facade
//! (`metrics::counter!` and friends, no-ops until a recorder is installed); a process given
//! `CRM_METRICS_LISTEN` installs the Prometheus recorder and serves `/metrics` and
//! `/healthz` on that address, apart from the API. Who may scrape is who can reach that
//! address: bind it to loopback or a monitoring network, never to where the API is public.
//! Gauges that describe the database (queue depth, outbox lag) are read at scrape time by
//! the role's sampler, so they are as fresh as the scrape and cost nothing between scrapes.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use futures::future::BoxFuture;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Called before each scrape is rendered, to set the gauges that are read, not counted.
pub type Sampler = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// Histogram buckets of every `*_seconds` series: 1 ms to a minute.
const SECONDS_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

#[derive(Clone)]
struct Scrape {
    handle: PrometheusHandle,
    sampler: Option<Sampler>,
}

/// Serves `/metrics` for `role` on `listen` when it is set; returns the address it took.
/// Prints `crm ROLE metrics on http://ADDR/metrics` (port 0 picks a free port).
pub async fn start(
    listen: Option<&str>,
    role: &'static str,
    sampler: Option<Sampler>,
) -> anyhow::Result<Option<SocketAddr>> {
    let Some(listen) = listen else { return Ok(None) };
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .context("histogram buckets")?
        .add_global_label("role", role)
        .install_recorder()
        .context("installing the metrics recorder")?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("CRM_METRICS_LISTEN: listening on {listen}"))?;
    let addr = listener.local_addr().context("reading the metrics address")?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(Scrape { handle, sampler });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    });
    println!("crm {role} metrics on http://{addr}/metrics");
    Ok(Some(addr))
}

async fn metrics(State(scrape): State<Scrape>) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    if let Some(sample) = &scrape.sampler {
        sample().await;
    }
    scrape.handle.run_upkeep();
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], scrape.handle.render())
}

/// Sets counters from a JSON object of running totals (`{"results_applied": 12, …}`) as
/// `crm_{prefix}_{key}_total`: a component's own counters exported without a second list.
pub fn export_totals(prefix: &str, totals: &serde_json::Value) {
    let Some(map) = totals.as_object() else { return };
    for (key, value) in map {
        if let Some(n) = value.as_u64() {
            metrics::counter!(format!("crm_{prefix}_{key}_total")).absolute(n);
        }
    }
}
