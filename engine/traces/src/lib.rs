//! OpenTelemetry traces of runs, exported over OTLP/HTTP when an endpoint is configured
//! (`CRM_OTLP_ENDPOINT`, or the standard `OTEL_EXPORTER_OTLP_ENDPOINT` /
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); without one nothing is exported and the spans
//! below cost what an unobserved `tracing` span costs.
//!
//! One run is one trace, and its trace id *is* the run id (the UUID's 128 bits, so a
//! run's trace is found by its id in any trace viewer):
//! - `run`: the root, emitted by the engine when it stores the run;
//! - `step.dispatch`: the engine building a step's job, a child of `run`; its context
//!   rides in the job ([`traceparent`], covered by the engine's signature);
//! - `step.execute`: the worker running the step, a child of `step.dispatch`;
//! - `step.apply`: the engine applying the step's result, a child of `run`;
//! - `request`: every API request (its own trace), with the `crm.run_id` of a run it
//!   started.

mod export;
mod run;

pub use export::{ExportError, Exporter, endpoint_configured, exporting};
pub use run::{follow, in_run, record_run, run_context, started_run, traceparent};
