//! The job streams. Every batch goes out as one pipeline: one round trip per batch, never
//! per job.

use std::time::Duration;

use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use redis::{FromRedisValue, RedisError, Value};

use crate::entries::{EntryId, Lane, RawJob, SignedJob};
use crate::queue::{Queue, QueueError, WORKERS_GROUP, field};

/// The fields of a job entry: the payload and its signature.
const PAYLOAD: &str = "p";
const SIGNATURE: &str = "s";
const SENT: &str = "t";

fn raw(lane: Lane, entry: StreamId) -> RawJob {
    let payload = field(&entry, PAYLOAD).unwrap_or_default();
    let signature = field(&entry, SIGNATURE).and_then(|s| String::from_utf8(s).ok());
    let sent_us = field(&entry, SENT).and_then(|s| std::str::from_utf8(&s).ok()?.parse().ok()).unwrap_or(0);
    RawJob { entry: EntryId { lane, id: entry.id }, payload, signature, sent_us }
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Jobs to hand to one worker, the consumer its results came from.
pub struct Hand<'a> {
    pub consumer: &'a str,
    pub jobs: &'a [SignedJob],
}

/// A job on the handed stream, pending with its worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handed {
    pub id: String,
    pub sent_us: u64,
}

impl Queue {
    fn stream(&self, lane: Lane) -> &str {
        match lane {
            Lane::Shared => &self.keys.jobs,
            Lane::Handed => &self.keys.handed,
        }
    }

    /// Adds jobs to the shared jobs stream in one pipeline; returns their entry ids in order.
    pub async fn enqueue(&self, jobs: &[SignedJob]) -> Result<Vec<String>, QueueError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        let sent_us = now_us();
        for job in jobs {
            pipe.add_command(add(&self.keys.jobs, job, sent_us));
        }
        Ok(pipe.query_async(&mut self.conn.clone()).await?)
    }

    /// Puts jobs on the handed stream as entries already delivered to their worker, in one
    /// MULTI: each hand's entries are added and at once read into its consumer's pending
    /// list, so no other consumer ever reads them as new, and they are acked, kept fresh
    /// and taken over when stale like jobs read from the shared stream. Returns, for each
    /// hand in order, the entries of the jobs now pending with its worker; a job missing
    /// from its hand's list was not handed and must be sent on the shared stream instead.
    pub async fn hand(&self, hands: &[Hand<'_>]) -> Result<Vec<Vec<Option<Handed>>>, QueueError> {
        let hands: Vec<&Hand<'_>> = hands.iter().filter(|h| !h.jobs.is_empty()).collect();
        if hands.is_empty() {
            return Ok(Vec::new());
        }
        let sent_us = now_us();
        let mut pipe = redis::pipe();
        pipe.atomic();
        for hand in &hands {
            for job in hand.jobs {
                // NOMKSTREAM: after a wipe, fail rather than add an entry no group delivers.
                let mut xadd = redis::cmd("XADD");
                xadd.arg(&self.keys.handed).arg("NOMKSTREAM");
                pipe.add_command(add_fields(xadd, job, sent_us));
            }
            pipe.cmd("XREADGROUP")
                .arg("GROUP")
                .arg(WORKERS_GROUP)
                .arg(hand.consumer)
                .arg("COUNT")
                .arg(hand.jobs.len())
                .arg("STREAMS")
                .arg(&self.keys.handed)
                .arg(">");
        }
        let replies: Vec<Value> = match pipe.query_async(&mut self.conn.clone()).await {
            Ok(r) => r,
            Err(e) => {
                // A wipe shows here first as a missing stream or group: put them back for
                // the next hand; this one's jobs go on the shared stream.
                let _ = self.ensure_groups().await;
                return Err(e.into());
            }
        };
        let mut replies = replies.into_iter();
        let mut out = Vec::with_capacity(hands.len());
        for hand in &hands {
            let added: Vec<Option<String>> =
                replies.by_ref().take(hand.jobs.len()).map(|v| String::from_redis_value(v).ok()).collect();
            let read = match replies.next() {
                Some(Value::Nil) | None => StreamReadReply::default(),
                Some(v) => StreamReadReply::from_redis_value(v).map_err(|e| QueueError::Redis(e.into()))?,
            };
            let delivered: std::collections::HashSet<String> =
                read.keys.into_iter().flat_map(|k| k.ids).map(|e| e.id).collect();
            out.push(
                added
                    .into_iter()
                    .map(|id| id.filter(|id| delivered.contains(id)).map(|id| Handed { id, sent_us }))
                    .collect(),
            );
        }
        Ok(out)
    }

    /// New jobs for this consumer from the shared stream: up to `max`, waiting up to
    /// `block` when there are none (`Duration::ZERO`: do not wait).
    pub async fn read_jobs(&self, consumer: &str, max: usize, block: Duration) -> Result<Vec<RawJob>, QueueError> {
        let entries = self.read_group(&self.keys.jobs, WORKERS_GROUP, consumer, max, block).await?;
        Ok(entries.into_iter().map(|e| raw(Lane::Shared, e)).collect())
    }

    /// Takes over jobs that other consumers have held for longer than `min_idle` (their
    /// worker died or hung), on either stream: the visibility timeout. Returns up to `max`
    /// of them.
    pub async fn claim_stale_jobs(
        &self,
        consumer: &str,
        min_idle: Duration,
        max: usize,
    ) -> Result<Vec<RawJob>, QueueError> {
        let mut conn = self.conn.clone();
        let mut claimed = Vec::new();
        for lane in [Lane::Shared, Lane::Handed] {
            let mut start = "0-0".to_string();
            // XAUTOCLAIM scans the pending list in pages; follow the cursor until it wraps.
            while claimed.len() < max {
                let reply: Result<StreamAutoClaimReply, RedisError> = redis::cmd("XAUTOCLAIM")
                    .arg(self.stream(lane))
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
                claimed.extend(reply.claimed.into_iter().map(|e| raw(lane, e)));
                if reply.next_stream_id == "0-0" {
                    break;
                }
                start = reply.next_stream_id;
            }
        }
        Ok(claimed)
    }

    /// Resets the idle time of jobs this consumer is still running, so that the
    /// visibility timeout only ever fires for jobs whose worker stopped touching them.
    pub async fn touch_jobs(&self, consumer: &str, entries: &[EntryId]) -> Result<(), QueueError> {
        let mut pipe = redis::pipe();
        for (lane, ids) in by_lane(entries) {
            pipe.cmd("XCLAIM").arg(self.stream(lane)).arg(WORKERS_GROUP).arg(consumer).arg(0).arg(ids).arg("JUSTID");
        }
        if pipe.is_empty() {
            return Ok(());
        }
        let _: Value = pipe.query_async(&mut self.conn.clone()).await?;
        Ok(())
    }

    /// Acks and deletes jobs: their results are safely with the engine, or they were
    /// refused (unsigned, forged, undecodable) and nobody may ever run them.
    pub async fn ack_jobs(&self, entries: &[EntryId]) -> Result<(), QueueError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (lane, ids) in by_lane(entries) {
            pipe.cmd("XACK").arg(self.stream(lane)).arg(WORKERS_GROUP).arg(&ids).ignore();
            pipe.cmd("XDEL").arg(self.stream(lane)).arg(&ids).ignore();
        }
        if pipe.is_empty() {
            return Ok(());
        }
        let () = pipe.query_async(&mut self.conn.clone()).await?;
        Ok(())
    }

    /// Entries on both job streams not yet acked-and-deleted (queued or in flight).
    pub async fn jobs_len(&self) -> Result<u64, QueueError> {
        Ok(self.len_of(Lane::Shared).await? + self.len_of(Lane::Handed).await?)
    }

    /// Jobs no worker has taken yet: acked jobs are deleted, so what is on the shared stream
    /// and not pending with a consumer is waiting for one. (A handed job is pending with its
    /// worker from the start.)
    pub async fn undelivered_jobs(&self) -> Result<u64, QueueError> {
        let (len, pending) = (self.len_of(Lane::Shared).await?, self.pending_of(Lane::Shared).await?);
        Ok(len.saturating_sub(pending))
    }

    /// Jobs handed to a worker and not yet acked (running, or held by a dead worker), on
    /// both streams.
    pub async fn pending_jobs(&self) -> Result<u64, QueueError> {
        Ok(self.pending_of(Lane::Shared).await? + self.pending_of(Lane::Handed).await?)
    }

    async fn len_of(&self, lane: Lane) -> Result<u64, QueueError> {
        Ok(redis::AsyncCommands::xlen(&mut self.conn.clone(), self.stream(lane)).await?)
    }

    async fn pending_of(&self, lane: Lane) -> Result<u64, QueueError> {
        let reply: Value = redis::cmd("XPENDING")
            .arg(self.stream(lane))
            .arg(WORKERS_GROUP)
            .query_async(&mut self.conn.clone())
            .await?;
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

/// The XADD of a job to `stream`.
fn add(stream: &str, job: &SignedJob, sent_us: u64) -> redis::Cmd {
    let mut xadd = redis::cmd("XADD");
    xadd.arg(stream);
    add_fields(xadd, job, sent_us)
}

/// An XADD's new entry: an id of Redis' choosing and the job's fields.
fn add_fields(mut xadd: redis::Cmd, job: &SignedJob, sent_us: u64) -> redis::Cmd {
    xadd.arg("*").arg(PAYLOAD).arg(&job.payload).arg(SIGNATURE).arg(&job.signature).arg(SENT).arg(sent_us);
    xadd
}

/// Entry ids grouped by stream, for one command per stream.
fn by_lane(entries: &[EntryId]) -> Vec<(Lane, Vec<&str>)> {
    [Lane::Shared, Lane::Handed]
        .into_iter()
        .map(|lane| (lane, entries.iter().filter(|e| e.lane == lane).map(|e| e.id.as_str()).collect::<Vec<_>>()))
        .filter(|(_, ids)| !ids.is_empty())
        .collect()
}
