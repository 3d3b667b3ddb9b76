//! The host side of every `crm:automation` import. Each checks the step's grant first.

pub mod http;
mod records;
mod workflow;
