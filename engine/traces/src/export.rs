//! The OTLP/HTTP exporter and the `tracing` layer that feeds it.

use std::sync::OnceLock;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

/// The provider while exporting; set once, at start.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

pub(crate) fn provider() -> Option<&'static SdkTracerProvider> {
    PROVIDER.get()
}

/// Whether this process exports traces: spans made only for the export are not made
/// otherwise, so the hot paths pay nothing for them.
pub fn exporting() -> bool {
    PROVIDER.get().is_some()
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("CRM_OTLP_ENDPOINT {endpoint:?} is not an http:// or https:// URL (e.g. http://collector:4318)")]
    Endpoint { endpoint: String },
    #[error("the OTLP exporter: {0}")]
    Build(String),
}

/// Flushes what is buffered when dropped (at the end of `main`).
pub struct Exporter {
    provider: SdkTracerProvider,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("crm: flushing traces failed: {e}");
        }
    }
}

/// Whether an OTLP endpoint is configured.
pub fn endpoint_configured() -> bool {
    ["CRM_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()))
}

impl Exporter {
    /// The layer that exports spans for `role` (`engine`, `worker`, `bot`, …), when an
    /// endpoint is configured. `CRM_OTLP_ENDPOINT` is the collector's base URL
    /// (`http://collector:4318`, traces go to `/v1/traces`); without it the standard
    /// `OTEL_EXPORTER_OTLP_*` variables apply, as do `OTEL_SERVICE_NAME` (default
    /// `crm-ROLE`), `OTEL_RESOURCE_ATTRIBUTES` and the batch settings `OTEL_BSP_*`.
    pub fn start<S>(role: &str) -> Result<Option<(impl Layer<S> + use<S>, Exporter)>, ExportError>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        if !endpoint_configured() {
            return Ok(None);
        }
        let mut builder = opentelemetry_otlp::SpanExporter::builder().with_http().with_protocol(Protocol::HttpBinary);
        if let Ok(base) = std::env::var("CRM_OTLP_ENDPOINT")
            && !base.trim().is_empty()
        {
            let base = base.trim().trim_end_matches('/');
            if !(base.starts_with("http://") || base.starts_with("https://")) {
                return Err(ExportError::Endpoint { endpoint: base.to_string() });
            }
            builder = builder.with_endpoint(format!("{base}/v1/traces"));
        }
        let exporter = builder.build().map_err(|e| ExportError::Build(e.to_string()))?;
        let mut resource = Resource::builder().with_attribute(KeyValue::new("crm.role", role.to_string()));
        if std::env::var("OTEL_SERVICE_NAME").is_err() {
            resource = resource.with_service_name(format!("crm-{role}"));
        }
        let provider =
            SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource.build()).build();
        let _ = PROVIDER.set(provider.clone());
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("crm"));
        Ok(Some((layer, Exporter { provider })))
    }
}
