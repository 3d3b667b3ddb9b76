//! The run scheduler: turns run requests into step jobs on Redis, applies step results as
//! they come back, retries, recovers what Redis or a worker lost, and publishes completions.
//! It runs inside `crm serve`; several engine processes may run it at once.

mod apply;
pub mod completions;
mod confirmer;
pub mod deploy;
mod dispatch;
pub mod history;
mod jobs;
pub mod machine;
mod recover;
mod scheduler;
mod submit;
pub mod transport;
mod versions;

pub use scheduler::{Durability, Metrics, Scheduler, SchedulerConfig, StartError};
pub use submit::Accepted;
