//! Redis, the transport between the engine and the workers. Postgres is the truth; this
//! is delivery, at least once, and nothing read from it is trusted without a check:
//! jobs are signed by the engine, completions sealed with its MAC (`crm-trust`).
//!
//! Every key of an installation is under its prefix, so tests and tenants do not collide,
//! and the prefix in braces is the keys' Redis Cluster hash tag (one slot per installation):
//! - `{prefix}:jobs` — stream of signed step jobs, consumer group `workers`;
//! - `{prefix}:workers` — sorted set of worker ids scored by their last heartbeat (ms);
//! - `{prefix}:completions` — stream of sealed run completions, read by the API's SSE;
//! - `{prefix}:epoch` — a marker naming Redis' current "life", to notice a wipe.
//!
//! The life of a job: the engine [`Queue::enqueue`]s it; a worker takes it with
//! [`Queue::read_jobs`], runs it, hands the result to the engine over HTTP and only then
//! [`Queue::ack_jobs`] (acks and deletes) it, so a result is never lost in between. A job
//! held by a worker that died stays pending; live workers take it over with
//! [`Queue::claim_stale_jobs`] once it has been idle longer than the visibility timeout.

pub mod acl;
mod completions;
mod connection;
mod entries;
mod epoch;
mod jobs;
mod keys;
mod queue;
mod stream_reply;
mod workers;

pub use completions::{CompletionReader, Completions, MAX_COMPLETIONS, Published, entry_ms, is_entry_id};
pub use connection::{Connection, Redis};
pub use entries::{CompletionEntry, RawJob, SignedJob};
pub use keys::Keys;
pub use queue::{Queue, QueueError, redact};
pub use workers::WorkerInfo;
