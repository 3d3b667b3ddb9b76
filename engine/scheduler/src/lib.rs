//! The run scheduler: admits runs, turns them into signed step jobs on Redis, applies the
//! results workers hand in, serves their host calls, retries, recovers what Redis or a
//! worker lost, and publishes completions. It runs inside `crm serve`; several engine
//! processes may run it at once.

mod admission;
mod apply;
pub mod clock;
mod completions;
mod confirmer;
mod core;
pub mod deploy;
mod dispatch;
mod gather;
pub mod hold;
mod intake;
mod jobs;
mod known_facts;
mod known_runs;
pub mod machine;
mod provisional;
mod publication;
mod recover;
mod redaction;
pub mod retention;
mod scheduler;
mod submit;
mod versions;
mod wake;

pub use admission::{Accepted, Admission, Admitted, TRIGGERS};
pub use completions::{CompletionFeed, FeedEntry, SealedCompletion};
pub use core::{Durability, Metrics, SchedulerConfig};
pub use crm_queue::is_entry_id;
pub use intake::IntakeError;
pub use scheduler::{Scheduler, StartError};
