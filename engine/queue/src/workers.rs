//! Worker heartbeats: a sorted set scored by last-seen time, so the engine lists the live
//! workers in one call.

use std::time::Duration;

use redis::AsyncCommands;

use crate::queue::{Queue, QueueError};

/// A live worker as its heartbeat reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    pub id: String,
    pub last_seen_ms: i64,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Queue {
    /// Records that a worker is alive now.
    pub async fn heartbeat(&self, worker: &str) -> Result<(), QueueError> {
        let () = self.conn.clone().zadd(&self.keys.workers, worker, now_ms()).await?;
        Ok(())
    }

    /// Removes a worker that is shutting down cleanly.
    pub async fn forget_worker(&self, worker: &str) -> Result<(), QueueError> {
        let () = self.conn.clone().zrem(&self.keys.workers, worker).await?;
        Ok(())
    }

    /// Workers whose last heartbeat is younger than `max_age`, and drops the others.
    pub async fn live_workers(&self, max_age: Duration) -> Result<Vec<WorkerInfo>, QueueError> {
        let mut conn = self.conn.clone();
        let cutoff = now_ms() - i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
        let () = conn.zrembyscore(&self.keys.workers, "-inf", format!("({cutoff}")).await?;
        let live: Vec<(String, i64)> = conn.zrangebyscore_withscores(&self.keys.workers, cutoff, "+inf").await?;
        Ok(live.into_iter().map(|(id, last_seen_ms)| WorkerInfo { id, last_seen_ms }).collect())
    }
}
