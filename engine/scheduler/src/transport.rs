//! The scheduler's side of Redis: step jobs out and step results in through the shared
//! queue (crm-queue), plus the epoch marker that tells the reconciler whether Redis still
//! holds what it was given.

use std::time::Duration;

use crm_concepts::step::{StepJob, StepResult};
use crm_queue::{Queue, QueueError};
use redis::aio::ConnectionManager;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

pub struct Transport {
    queue: Queue,
    conn: ConnectionManager,
    epoch_key: String,
}

/// Entry ids (to acknowledge) and the results they carried.
type Batch = (Vec<String>, Vec<StepResult>);

impl Transport {
    pub async fn connect(redis_url: &str, prefix: &str) -> Result<Transport, TransportError> {
        let queue = Queue::connect(redis_url, prefix).await?;
        let conn = redis::Client::open(redis_url)?.get_connection_manager().await?;
        Ok(Transport { queue, conn, epoch_key: format!("{prefix}:epoch") })
    }

    /// Another handle with its own blocking connection, for a second concurrent reader.
    pub async fn reader(&self) -> Result<Transport, TransportError> {
        Ok(Transport { queue: self.queue.reader().await?, conn: self.conn.clone(), epoch_key: self.epoch_key.clone() })
    }

    /// Recreates the consumer groups (after Redis lost them).
    pub async fn ensure_groups(&self) -> Result<(), TransportError> {
        Ok(self.queue.ensure_groups().await?)
    }

    /// Appends the jobs to the jobs stream in one pipeline.
    pub async fn send(&self, jobs: &[StepJob]) -> Result<(), TransportError> {
        self.queue.enqueue(jobs).await?;
        Ok(())
    }

    /// New results for this engine, waiting up to `block` for the first.
    pub async fn receive(&self, consumer: &str, max: usize, block: Duration) -> Result<Batch, TransportError> {
        let entries = self.queue.read_results(consumer, max, block).await?;
        Ok(entries.into_iter().map(|e| (e.id, e.result)).unzip())
    }

    /// Results another engine read but never acknowledged (it died mid-batch).
    pub async fn claim_stale_results(
        &self,
        consumer: &str,
        idle: Duration,
        max: usize,
    ) -> Result<Batch, TransportError> {
        let entries = self.queue.claim_stale_results(consumer, idle, max).await?;
        Ok(entries.into_iter().map(|e| (e.id, e.result)).unzip())
    }

    pub async fn ack(&self, ids: &[String]) -> Result<(), TransportError> {
        Ok(self.queue.ack_results(ids).await?)
    }

    /// The marker naming Redis' current "life", set to `candidate` when missing.
    pub async fn epoch(&self, candidate: &str) -> Result<String, TransportError> {
        let mut conn = self.conn.clone();
        let (value,): (Option<String>,) = redis::pipe()
            .cmd("SET")
            .arg(&self.epoch_key)
            .arg(candidate)
            .arg("NX")
            .ignore()
            .cmd("GET")
            .arg(&self.epoch_key)
            .query_async(&mut conn)
            .await?;
        Ok(value.unwrap_or_else(|| candidate.to_string()))
    }
}
