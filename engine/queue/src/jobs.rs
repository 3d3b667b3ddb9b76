//! The jobs stream. Every batch goes out as one pipeline: one round trip per batch, never
//! per job.

use std::time::Duration;

use redis::streams::{StreamAutoClaimReply, StreamId};
use redis::{RedisError, Value};

use crate::entries::{RawJob, SignedJob};
use crate::queue::{Queue, QueueError, WORKERS_GROUP, field, xadd};

/// The fields of a job entry: the payload and its signature.
const PAYLOAD: &str = "p";
const SIGNATURE: &str = "s";
const SENT: &str = "t";

fn raw(mut entry: StreamId) -> RawJob {
    let payload = field(&mut entry, PAYLOAD).unwrap_or_default();
    let signature = field(&mut entry, SIGNATURE).and_then(|s| String::from_utf8(s).ok());
    let sent_us = field(&mut entry, SENT).and_then(|s| std::str::from_utf8(&s).ok()?.parse().ok()).unwrap_or(0);
    RawJob { id: entry.id, payload, signature, sent_us }
}

impl Queue {
    /// Adds jobs to the jobs stream in one pipeline; returns their entry ids in order.
    pub async fn enqueue(&self, jobs: &[SignedJob]) -> Result<Vec<String>, QueueError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        let sent_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0)
            .to_string();
        for job in jobs {
            pipe.add_command(xadd(&[
                self.keys.jobs.as_bytes(),
                b"*",
                PAYLOAD.as_bytes(),
                &job.payload,
                SIGNATURE.as_bytes(),
                job.signature.as_bytes(),
                SENT.as_bytes(),
                sent_us.as_bytes(),
            ]));
        }
        Ok(pipe.query_async(&mut self.conn.clone()).await?)
    }

    /// New jobs for this consumer: up to `max`, waiting up to `block` when there are none
    /// (`Duration::ZERO`: do not wait).
    pub async fn read_jobs(&self, consumer: &str, max: usize, block: Duration) -> Result<Vec<RawJob>, QueueError> {
        let entries = self.read_group(&self.keys.jobs, WORKERS_GROUP, consumer, max, block).await?;
        Ok(entries.into_iter().map(raw).collect())
    }

    /// Takes over jobs that other consumers have held for longer than `min_idle` (their
    /// worker died or hung): the visibility timeout. Returns up to `max` of them.
    pub async fn claim_stale_jobs(
        &self,
        consumer: &str,
        min_idle: Duration,
        max: usize,
    ) -> Result<Vec<RawJob>, QueueError> {
        let mut conn = self.conn.clone();
        let mut start = "0-0".to_string();
        let mut claimed = Vec::new();
        // XAUTOCLAIM scans the pending list in pages; follow the cursor until it wraps.
        loop {
            let reply: Result<StreamAutoClaimReply, RedisError> = redis::cmd("XAUTOCLAIM")
                .arg(&self.keys.jobs)
                .arg(WORKERS_GROUP)
                .arg(consumer)
                .arg(u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX))
                .arg(&start)
                .arg("COUNT")
                .arg(max.saturating_sub(claimed.len()).max(1))
                .query_async(&mut conn)
                .await;
            let reply = match reply {
                Ok(r) => r,
                Err(e) if e.code() == Some("NOGROUP") => {
                    self.ensure_groups().await?;
                    return Ok(claimed);
                }
                Err(e) => return Err(e.into()),
            };
            claimed.extend(reply.claimed.into_iter().map(raw));
            if reply.next_stream_id == "0-0" || claimed.len() >= max {
                return Ok(claimed);
            }
            start = reply.next_stream_id;
        }
    }

    /// Resets the idle time of jobs this consumer is still running, so that the
    /// visibility timeout only ever fires for jobs whose worker stopped touching them.
    pub async fn touch_jobs(&self, consumer: &str, ids: &[String]) -> Result<(), QueueError> {
        if ids.is_empty() {
            return Ok(());
        }
        let _: Value = redis::cmd("XCLAIM")
            .arg(&self.keys.jobs)
            .arg(WORKERS_GROUP)
            .arg(consumer)
            .arg(0)
            .arg(ids)
            .arg("JUSTID")
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    /// Acks and deletes jobs: their results are safely with the engine, or they were
    /// refused (unsigned, forged, undecodable) and nobody may ever run them.
    pub async fn ack_jobs(&self, ids: &[String]) -> Result<(), QueueError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("XACK").arg(&self.keys.jobs).arg(WORKERS_GROUP).arg(ids).ignore();
        pipe.cmd("XDEL").arg(&self.keys.jobs).arg(ids).ignore();
        let () = pipe.query_async(&mut self.conn.clone()).await?;
        Ok(())
    }

    /// Entries in the jobs stream not yet acked-and-deleted (queued or in flight).
    pub async fn jobs_len(&self) -> Result<u64, QueueError> {
        Ok(redis::AsyncCommands::xlen(&mut self.conn.clone(), &self.keys.jobs).await?)
    }

    /// Jobs no worker has taken yet: acked jobs are deleted, so what is on the stream and not
    /// pending with a consumer is waiting for one.
    pub async fn undelivered_jobs(&self) -> Result<u64, QueueError> {
        let (len, pending) = (self.jobs_len().await?, self.pending_jobs().await?);
        Ok(len.saturating_sub(pending))
    }

    /// Jobs handed to a worker and not yet acked (running, or held by a dead worker).
    pub async fn pending_jobs(&self) -> Result<u64, QueueError> {
        let reply: Value =
            redis::cmd("XPENDING").arg(&self.keys.jobs).arg(WORKERS_GROUP).query_async(&mut self.conn.clone()).await?;
        // The summary form answers [count, first-id, last-id, consumers].
        Ok(match reply {
            Value::Array(items) => match items.first() {
                Some(Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
                _ => 0,
            },
            _ => 0,
        })
    }
}
