//! An in-memory CRM: the second way to answer a step's [`HostCall`]s, beside the engine's
//! Postgres. `crm component run` runs a step against it, and the runtime's tests use it.
//! Records come from a JSON fixture (format in [`fixture`]); writes change the in-memory
//! copy under the same field rules the store applies (`crm_concepts::fields`), and
//! notifications are collected for the caller to print.
//!
//! [`HostCall`]: crm_concepts::host_call::HostCall

mod crm;
pub mod fixture;
mod kinds;

pub use crm::{MemoryCrm, Notification};
pub use fixture::FixtureError;
