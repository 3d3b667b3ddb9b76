//! The wasmtime side of `crm`: runs workflow steps (WebAssembly components of the
//! `crm:automation/step` world) with hard limits and only the capabilities they hold.
//!
//! ```ignore
//! let rt = Runtime::<MemoryServices>::new(RuntimeConfig::default())?;
//! let component = rt.load(&digest, bytes).await?;
//! let run = rt.run(&component, StepCall { cx, input: &input, grants, limits: &limits }, services).await;
//! ```

pub mod bindings;
mod capture;
pub mod check;
mod config;
mod error;
mod host;
mod limiter;
pub mod memory;
mod run;
mod runtime;
pub mod services;
mod state;

pub use config::RuntimeConfig;
pub use run::StepRun;
pub use runtime::{Prepared, Runtime, RuntimeError, StepCall, digest_of};
pub use services::{CallContext, HostResult, RecordsHost, Services, WorkflowHost};
