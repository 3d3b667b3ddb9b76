//! Postgres, the source of truth: CRM records, users and tokens, activity and outbox.

pub mod database;

pub use database::{Db, DbError};
