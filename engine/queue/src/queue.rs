//! The stream operations. Every batch goes out as one pipeline: one round trip per batch,
//! never per job.

use std::time::Duration;

use crm_concepts::step::{StepJob, StepResult};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use redis::{AsyncCommands, Client, RedisError, Value};
use serde::de::DeserializeOwned;

use crate::entries::{JobEntry, ResultEntry};

const WORKERS_GROUP: &str = "workers";
const ENGINE_GROUP: &str = "engine";
/// The field holding an entry's JSON payload.
const FIELD: &str = "p";
/// Slack on top of a blocking read's own timeout before the client gives up on Redis.
const BLOCK_SLACK: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("cannot connect to Redis at {url}: {source}")]
    Connect { url: String, source: RedisError },
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("encoding a queue entry: {0}")]
    Encode(#[from] serde_json::Error),
}

#[derive(Clone)]
pub struct Queue {
    client: Client,
    conn: ConnectionManager,
    /// blocking reads get their own connection: a BLOCK holds its connection for its
    /// whole duration and would stall every other command multiplexed on it
    blocking: ConnectionManager,
    jobs: String,
    results: String,
    workers: String,
}

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

fn decode<T: DeserializeOwned>(entry: &StreamId) -> Result<T, String> {
    match entry.map.get(FIELD) {
        Some(Value::BulkString(bytes)) => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
        Some(other) => Err(format!("unexpected field value {other:?}")),
        None => Err(format!("no `{FIELD}` field")),
    }
}

impl Queue {
    /// Connects and creates the streams and consumer groups if they do not exist yet.
    pub async fn connect(redis_url: &str, prefix: &str) -> Result<Queue, QueueError> {
        let connect_err = |source| QueueError::Connect { url: redis_url.to_string(), source };
        let client = Client::open(redis_url).map_err(connect_err)?;
        let conn = ConnectionManager::new(client.clone()).await.map_err(connect_err)?;
        let blocking = Self::blocking_connection(&client).await.map_err(connect_err)?;
        let queue = Queue {
            client,
            conn,
            blocking,
            jobs: format!("{prefix}:jobs"),
            results: format!("{prefix}:results"),
            workers: format!("{prefix}:workers"),
        };
        queue.ensure_groups().await?;
        Ok(queue)
    }

    async fn blocking_connection(client: &Client) -> Result<ConnectionManager, RedisError> {
        let config = ConnectionManagerConfig::new().set_response_timeout(None);
        ConnectionManager::new_with_config(client.clone(), config).await
    }

    /// Another handle on the same streams with its own blocking connection, for a second
    /// concurrent reader in the same process.
    pub async fn reader(&self) -> Result<Queue, QueueError> {
        let mut q = self.clone();
        q.blocking = Self::blocking_connection(&self.client).await?;
        Ok(q)
    }

    /// Creates the groups; also the recovery after Redis lost its keys (FLUSHALL, restart
    /// without persistence), which readers call when Redis says a group is missing.
    pub async fn ensure_groups(&self) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        for (stream, group) in [(&self.jobs, WORKERS_GROUP), (&self.results, ENGINE_GROUP)] {
            let created: Result<(), RedisError> = conn.xgroup_create_mkstream(stream, group, "0").await;
            if let Err(e) = created
                && e.code() != Some("BUSYGROUP")
            {
                return Err(e.into());
            }
        }
        Ok(())
    }

    pub fn jobs_key(&self) -> &str {
        &self.jobs
    }

    pub fn results_key(&self) -> &str {
        &self.results
    }

    /// Adds jobs to the jobs stream in one pipeline; returns their entry ids in order.
    pub async fn enqueue(&self, jobs: &[StepJob]) -> Result<Vec<String>, QueueError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for job in jobs {
            pipe.cmd("XADD").arg(&self.jobs).arg("*").arg(FIELD).arg(serde_json::to_vec(job)?);
        }
        Ok(pipe.query_async(&mut self.conn.clone()).await?)
    }

    async fn read_group(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        max: usize,
        block: Duration,
    ) -> Result<Vec<StreamId>, QueueError> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP").arg(group).arg(consumer).arg("COUNT").arg(max.max(1));
        if !block.is_zero() {
            cmd.arg("BLOCK").arg(u64::try_from(block.as_millis()).unwrap_or(u64::MAX));
        }
        cmd.arg("STREAMS").arg(stream).arg(">");
        let mut conn = self.blocking.clone();
        let limit = block + BLOCK_SLACK;
        let reply: Result<Option<StreamReadReply>, RedisError> =
            tokio::time::timeout(limit, cmd.query_async(&mut conn)).await.map_err(|_| QueueError::Timeout(limit))?;
        match reply {
            Ok(reply) => Ok(reply.map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect()).unwrap_or_default()),
            Err(e) if e.code() == Some("NOGROUP") => {
                // Redis lost the stream (FLUSHALL, restart): recreate and read again next time.
                tracing::warn!(stream, "consumer group missing; recreating it");
                self.ensure_groups().await?;
                Ok(Vec::new())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Acks and deletes entries whose payload cannot be decoded: nobody can ever process
    /// them, and left pending they would be reclaimed forever.
    async fn drop_poison(&self, stream: &str, group: &str, ids: &[String]) -> Result<(), QueueError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.cmd("XACK").arg(stream).arg(group).arg(ids).ignore();
        pipe.cmd("XDEL").arg(stream).arg(ids).ignore();
        let () = pipe.query_async(&mut self.conn.clone()).await?;
        Ok(())
    }

    async fn jobs_from(&self, entries: Vec<StreamId>) -> Result<Vec<JobEntry>, QueueError> {
        let mut jobs = Vec::with_capacity(entries.len());
        let mut poison = Vec::new();
        for entry in entries {
            match decode::<StepJob>(&entry) {
                Ok(job) => jobs.push(JobEntry { id: entry.id, job }),
                Err(e) => {
                    tracing::error!(id = %entry.id, "dropping an undecodable job: {e}");
                    poison.push(entry.id);
                }
            }
        }
        self.drop_poison(&self.jobs, WORKERS_GROUP, &poison).await?;
        Ok(jobs)
    }

    /// New jobs for this consumer: up to `max`, waiting up to `block` when there are none
    /// (`Duration::ZERO`: do not wait).
    pub async fn read_jobs(&self, consumer: &str, max: usize, block: Duration) -> Result<Vec<JobEntry>, QueueError> {
        let entries = self.read_group(&self.jobs, WORKERS_GROUP, consumer, max, block).await?;
        self.jobs_from(entries).await
    }

    /// Takes over jobs that other consumers have held for longer than `min_idle` (their
    /// worker died or hung): the visibility timeout. Returns up to `max` of them.
    pub async fn claim_stale_jobs(
        &self,
        consumer: &str,
        min_idle: Duration,
        max: usize,
    ) -> Result<Vec<JobEntry>, QueueError> {
        let entries = self.autoclaim(&self.jobs, WORKERS_GROUP, consumer, min_idle, max).await?;
        self.jobs_from(entries).await
    }

    async fn autoclaim(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        max: usize,
    ) -> Result<Vec<StreamId>, QueueError> {
        let mut conn = self.conn.clone();
        let mut start = "0-0".to_string();
        let mut claimed = Vec::new();
        // XAUTOCLAIM scans the pending list in pages; follow the cursor until it wraps.
        loop {
            let reply: Result<StreamAutoClaimReply, RedisError> = redis::cmd("XAUTOCLAIM")
                .arg(stream)
                .arg(group)
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
            claimed.extend(reply.claimed);
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
            .arg(&self.jobs)
            .arg(WORKERS_GROUP)
            .arg(consumer)
            .arg(0)
            .arg(ids)
            .arg("JUSTID")
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    /// Publishes a result and acks its job in one transaction.
    pub async fn publish_result_and_ack(&self, result: &StepResult, job_entry_id: &str) -> Result<(), QueueError> {
        self.publish_results_and_ack(&[(result.clone(), job_entry_id.to_string())]).await
    }

    /// Publishes results and acks (and deletes) their jobs in one MULTI/EXEC: either the
    /// results are out and the jobs done, or nothing changed and the jobs will be retried.
    pub async fn publish_results_and_ack(&self, batch: &[(StepResult, String)]) -> Result<(), QueueError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut ids = Vec::with_capacity(batch.len());
        for (result, job_id) in batch {
            pipe.cmd("XADD").arg(&self.results).arg("*").arg(FIELD).arg(serde_json::to_vec(result)?).ignore();
            ids.push(job_id.as_str());
        }
        pipe.cmd("XACK").arg(&self.jobs).arg(WORKERS_GROUP).arg(&ids).ignore();
        pipe.cmd("XDEL").arg(&self.jobs).arg(&ids).ignore();
        let () = pipe.query_async(&mut self.conn.clone()).await?;
        Ok(())
    }

    /// Results for the engine: up to `max`, waiting up to `block` when there are none.
    pub async fn read_results(
        &self,
        consumer: &str,
        max: usize,
        block: Duration,
    ) -> Result<Vec<ResultEntry>, QueueError> {
        let entries = self.read_group(&self.results, ENGINE_GROUP, consumer, max, block).await?;
        self.results_from(entries).await
    }

    /// Results another engine consumer read but never acked (it died mid-batch).
    pub async fn claim_stale_results(
        &self,
        consumer: &str,
        min_idle: Duration,
        max: usize,
    ) -> Result<Vec<ResultEntry>, QueueError> {
        let entries = self.autoclaim(&self.results, ENGINE_GROUP, consumer, min_idle, max).await?;
        self.results_from(entries).await
    }

    async fn results_from(&self, entries: Vec<StreamId>) -> Result<Vec<ResultEntry>, QueueError> {
        let mut results = Vec::with_capacity(entries.len());
        let mut poison = Vec::new();
        for entry in entries {
            match decode::<StepResult>(&entry) {
                Ok(result) => results.push(ResultEntry { id: entry.id, result }),
                Err(e) => {
                    tracing::error!(id = %entry.id, "dropping an undecodable result: {e}");
                    poison.push(entry.id);
                }
            }
        }
        self.drop_poison(&self.results, ENGINE_GROUP, &poison).await?;
        Ok(results)
    }

    /// Acks (and deletes) results once they are applied.
    pub async fn ack_results(&self, ids: &[String]) -> Result<(), QueueError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.cmd("XACK").arg(&self.results).arg(ENGINE_GROUP).arg(ids).ignore();
        pipe.cmd("XDEL").arg(&self.results).arg(ids).ignore();
        let () = pipe.query_async(&mut self.conn.clone()).await?;
        Ok(())
    }

    /// Records that a worker is alive now.
    pub async fn heartbeat(&self, worker: &str) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let () = conn.zadd(&self.workers, worker, now_ms()).await?;
        Ok(())
    }

    /// Removes a worker that is shutting down cleanly.
    pub async fn forget_worker(&self, worker: &str) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let () = conn.zrem(&self.workers, worker).await?;
        Ok(())
    }

    /// Workers whose last heartbeat is younger than `max_age`, and drops the others.
    pub async fn live_workers(&self, max_age: Duration) -> Result<Vec<WorkerInfo>, QueueError> {
        let mut conn = self.conn.clone();
        let cutoff = now_ms() - i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
        let () = conn.zrembyscore(&self.workers, "-inf", format!("({cutoff}")).await?;
        let live: Vec<(String, i64)> = conn.zrangebyscore_withscores(&self.workers, cutoff, "+inf").await?;
        Ok(live.into_iter().map(|(id, last_seen_ms)| WorkerInfo { id, last_seen_ms }).collect())
    }

    /// Entries in the jobs stream not yet acked-and-deleted (queued or in flight).
    pub async fn jobs_len(&self) -> Result<u64, QueueError> {
        Ok(self.conn.clone().xlen(&self.jobs).await?)
    }

    /// Jobs handed to a worker and not yet acked (running, or held by a dead worker).
    pub async fn pending_jobs(&self) -> Result<u64, QueueError> {
        let reply: Value =
            redis::cmd("XPENDING").arg(&self.jobs).arg(WORKERS_GROUP).query_async(&mut self.conn.clone()).await?;
        // The summary form answers [count, first-id, last-id, consumers].
        Ok(match reply {
            Value::Array(items) => match items.first() {
                Some(Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
                _ => 0,
            },
            _ => 0,
        })
    }

    /// Entries in the results stream not yet acked by the engine.
    pub async fn results_len(&self) -> Result<u64, QueueError> {
        Ok(self.conn.clone().xlen(&self.results).await?)
    }
}
