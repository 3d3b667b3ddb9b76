//! The domain vocabulary every `crm` crate speaks: CRM records, roles, capabilities,
//! step jobs and results. No I/O lives here.

pub mod business_hours;
pub mod capability;
pub mod custom_fields;
pub mod egress;
pub mod fields;
pub mod host_call;
pub mod import;
pub mod language;
pub mod local_time;
pub mod manifest;
pub mod manifest_schema;
pub mod message_button;
pub mod money;
pub mod notification_frame;
pub mod press_outcome;
pub mod records;
pub mod run;
pub mod step;
pub mod template;
pub mod timeline;
pub mod user;
pub mod wait;
pub mod wasm;
pub mod worker_channel;
