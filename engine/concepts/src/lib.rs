//! The domain vocabulary every `crm` crate speaks: CRM records, roles, capabilities,
//! step jobs and results. No I/O lives here.

pub mod capability;
pub mod step;
pub mod manifest;
pub mod run;
pub mod template;
pub mod records;
pub mod user;
