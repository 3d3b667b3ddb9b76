//! One module per group of routes; each exposes `router()` merged in `crate::router`.

pub mod companies;
pub mod contacts;
pub mod deals;
pub mod health;
pub mod hooks;
pub mod invites;
pub mod notes;
pub mod notifications;
pub mod openapi;
pub mod pipelines;
pub mod runs;
pub mod schedules;
pub mod search;
pub mod tasks;
pub mod users;
pub mod workers;
pub mod workflows;
