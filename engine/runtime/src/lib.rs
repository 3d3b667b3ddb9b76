//! The wasmtime side of `crm`: runs workflow steps (WebAssembly components of the
//! `crm:automation/step` world) with hard limits and only the capabilities they hold.
//! Whatever a step asks of the CRM leaves the sandbox as a [`HostCall`] that a
//! [`HostCalls`] implementation answers: the engine, or an in-memory CRM.
//!
//! ```ignore
//! let rt = Runtime::<MyHost>::new(RuntimeConfig::default())?;
//! let component = rt.load(&digest, bytes).await?;
//! let run = rt.run(&component, StepCall { key, workflow, acting_user, ticket, provisional: false, input: &input, grants, limits: &limits }, host).await;
//! ```
//!
//! [`HostCall`]: crm_concepts::host_call::HostCall

pub mod bindings;
mod capture;
pub mod check;
mod config;
mod convert;
mod egress;
mod error;
mod host;
mod host_calls;
mod limiter;
mod loading;
mod run;
mod runtime;
mod state;

pub use config::RuntimeConfig;
pub use egress::{BadRange, EgressPolicy, InternalAddress};
pub use host_calls::{CallContext, HostCalls};
pub use run::StepRun;
pub use runtime::{Prepared, Runtime, RuntimeError, StepCall, digest_of};
