//! The worker: takes step jobs from Redis, runs them in the sandboxed runtime, publishes
//! their results, and acks a job only once its result is out.
//!
//! Many steps run at once on tokio (bounded by `concurrency`); results are published in
//! batches; jobs held by dead workers are taken over after the visibility timeout; the
//! worker's own in-flight jobs are kept fresh so a long step is not taken from under it;
//! a shutdown signal stops intake and drains what is running.

mod components;
mod pg_services;
mod worker;

pub use components::{ComponentSource, PgComponents};
pub use pg_services::PgServices;
pub use worker::{Worker, WorkerConfig, execute};
