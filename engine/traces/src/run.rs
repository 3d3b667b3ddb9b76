//! A run's place in its trace: its ids, and carrying a span's context through a job.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use uuid::Uuid;

use crate::export;

/// The trace id of a run: its id.
fn trace_id(run: Uuid) -> TraceId {
    TraceId::from_bytes(*run.as_bytes())
}

/// The span id of a run's root span: the low half of the run id (random in a v7 UUID),
/// never zero, so the engine and every worker name the same parent without asking.
fn root_span_id(run: Uuid) -> SpanId {
    let mut low = [0u8; 8];
    low.copy_from_slice(&run.as_bytes()[8..]);
    if low == [0; 8] {
        low[7] = 1;
    }
    SpanId::from_bytes(low)
}

/// The context of a run's root span, to parent the spans about the run on.
pub fn run_context(run: Uuid) -> Context {
    let root = SpanContext::new(trace_id(run), root_span_id(run), TraceFlags::SAMPLED, true, TraceState::default());
    Context::new().with_remote_span_context(root)
}

/// Emits the root span of a run just stored (only while exporting).
pub fn started_run(run: Uuid, workflow: &str, trigger: &str) {
    let Some(provider) = export::provider() else { return };
    let tracer = provider.tracer("crm");
    let span = tracer
        .span_builder("run")
        .with_kind(SpanKind::Internal)
        .with_trace_id(trace_id(run))
        .with_span_id(root_span_id(run))
        .with_attributes([
            KeyValue::new("crm.run_id", run.to_string()),
            KeyValue::new("crm.workflow", workflow.to_string()),
            KeyValue::new("crm.trigger", trigger.to_string()),
        ])
        .start_with_context(&tracer, &Context::new());
    drop(span);
}

/// Puts `span` into `run`'s trace, as a child of its root.
pub fn in_run(span: &tracing::Span, run: Uuid) {
    if export::provider().is_some() {
        let _ = span.set_parent(run_context(run));
    }
}

/// Notes on `span` (an API request) the run it started.
pub fn record_run(span: &tracing::Span, run: Uuid) {
    if export::provider().is_some() {
        span.set_attribute("crm.run_id", run.to_string());
    }
}

/// `span`'s context as a W3C `traceparent`, to put in a job; `None` while not exporting.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    export::provider()?;
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` a child of the span a job's `traceparent` names; a missing or malformed
/// one leaves `span` in the run's trace under its root.
pub fn follow(span: &tracing::Span, traceparent: Option<&str>, run: Uuid) {
    if export::provider().is_none() {
        return;
    }
    let parent = traceparent
        .map(|tp| {
            let carrier = HashMap::from([("traceparent".to_string(), tp.to_string())]);
            TraceContextPropagator::new().extract(&carrier)
        })
        .filter(|cx| cx.span().span_context().is_valid() && cx.span().span_context().trace_id() == trace_id(run));
    let _ = span.set_parent(parent.unwrap_or_else(|| run_context(run)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_names_its_trace_and_root() {
        let run = Uuid::parse_str("0193a5f2-1c2d-7e3f-8a4b-5c6d7e8f9a0b").unwrap();
        assert_eq!(trace_id(run).to_string(), "0193a5f21c2d7e3f8a4b5c6d7e8f9a0b");
        assert_eq!(root_span_id(run).to_string(), "8a4b5c6d7e8f9a0b");
        assert_ne!(root_span_id(Uuid::nil()), SpanId::INVALID);
    }
}
