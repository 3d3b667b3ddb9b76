//! Postgres, the source of truth: CRM records, users and tokens, activity and outbox.
//!
//! Every write goes through one of the record modules (`contacts::create`, `deals::move_stage`,
//! …), which validate the input and write the record, an activity entry and an outbox event
//! in one transaction.

pub mod activity;
pub mod approvals;
pub mod audit;
pub mod board;
pub mod companies;
pub mod components;
pub mod contacts;
pub mod credential_changes;
pub mod cursor;
pub mod custom_fields;
pub mod database;
pub mod deals;
pub mod engine_keys;
pub mod engine_marks;
pub mod error;
pub mod export;
pub mod host_calls;
pub mod import;
pub mod invites;
mod journal;
pub mod labels;
pub mod notes;
pub mod notifications;
pub mod pipelines;
pub mod retention;
pub mod run_history;
pub mod run_waits;
pub mod runs;
pub mod sample;
pub mod search;
pub mod secrets;
pub mod sign_in_links;
mod table;
pub mod tasks;
pub mod tokens;
pub mod users;
pub mod web_sessions;
pub mod worker_credentials;
pub mod workflow_error;
pub mod workflow_state;
pub mod workflows;

pub use crm_concepts::records::Actor;
pub use database::{Db, DbError};
pub use error::StoreError;
