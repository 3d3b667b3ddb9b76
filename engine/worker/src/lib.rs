//! The worker: takes signed step jobs from Redis, runs them in the sandboxed runtime, and
//! talks to the engine for everything else. It holds no database credentials and no user
//! token: host calls, component bytes and results go over one channel to the engine,
//! authenticated by the worker's credential, each naming its attempt's ticket.
//!
//! Many steps run at once on tokio (bounded by `concurrency`); results are handed in in
//! batches and a job is acked on Redis only once the engine has committed its result;
//! jobs held by dead workers are taken over after the visibility timeout; the worker's
//! own in-flight jobs are kept fresh so a long step is not taken from under it; a shutdown
//! signal stops intake and drains what is running.

mod channel;
mod host;
mod worker;

pub use channel::{ChannelError, EngineChannel};
pub use host::EngineHost;
pub use worker::{ComponentSource, Worker, WorkerConfig, execute};
