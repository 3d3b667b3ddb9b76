//! Redis Streams transport between the scheduler and the workers. Postgres is the truth;
//! this is delivery: at least once, acknowledged only after the answer is safely out.
//!
//! Keys (all under a configurable prefix, so tests and tenants do not collide):
//! - `{prefix}:jobs` — stream of [`StepJob`]s, consumer group `workers`;
//! - `{prefix}:results` — stream of [`StepResult`]s, consumer group `engine`;
//! - `{prefix}:workers` — sorted set of worker ids scored by their last heartbeat (ms).
//!
//! The life of a job: the scheduler [`Queue::enqueue`]s it; a worker takes it with
//! [`Queue::read_jobs`], runs it, then [`Queue::publish_results_and_ack`] adds the result
//! and acks (and deletes) the job in one MULTI/EXEC, so a result is never lost between the
//! two. A job held by a worker that died stays pending; live workers take it over with
//! [`Queue::claim_stale_jobs`] once it has been idle longer than the visibility timeout.
//! The engine reads results with [`Queue::read_results`] and acks them with
//! [`Queue::ack_results`] after applying them; results are idempotent by (run, step,
//! attempt), so a redelivered job or a duplicated result is harmless.

mod entries;
mod queue;

pub use entries::{JobEntry, ResultEntry};
pub use queue::{Queue, QueueError, WorkerInfo};
