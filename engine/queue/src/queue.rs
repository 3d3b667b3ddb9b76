//! The connections: one multiplexed for commands, one for blocking reads, to one Redis
//! server or a Redis Cluster (see [`crate::connection`]).

use std::time::Duration;

use redis::streams::StreamId;
use redis::{RedisError, Value};

use crate::connection::{Connection, Redis};
use crate::keys::Keys;
use crate::stream_reply::StreamEntries;

pub(crate) const WORKERS_GROUP: &str = "workers";
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
    #[error("{0}")]
    Prefix(String),
}

#[derive(Clone)]
pub struct Queue {
    pub(crate) redis: Redis,
    pub(crate) conn: Connection,
    /// blocking reads get their own connection: a BLOCK holds its connection for its
    /// whole duration and would stall every other command multiplexed on it
    pub(crate) blocking: Connection,
    pub(crate) keys: Keys,
}

/// `XADD` with `args`, its buffer sized for them up front: grown as they were added, a
/// command's buffer was copied over again several times for each entry.
pub(crate) fn xadd(args: &[&[u8]]) -> redis::Cmd {
    let mut cmd = redis::Cmd::with_capacity(args.len() + 1, 4 + args.iter().map(|a| a.len()).sum::<usize>());
    cmd.arg("XADD");
    for a in args {
        cmd.arg(*a);
    }
    cmd
}

/// The bytes of one field of a stream entry, taken out of it: a job's payload or a
/// completion is read once, so it is moved rather than copied.
pub(crate) fn field(entry: &mut StreamId, name: &str) -> Option<Vec<u8>> {
    match entry.map.remove(name) {
        Some(Value::BulkString(bytes)) => Some(bytes),
        _ => None,
    }
}

impl Queue {
    /// Connects and creates the jobs stream's consumer group if it does not exist yet.
    /// `redis_url` may carry a user and password (`redis://user:pass@host:6379`), or name
    /// a cluster (`redis+cluster://…`, see [`Redis::open`]); errors never print the password.
    pub async fn connect(redis_url: &str, prefix: &str) -> Result<Queue, QueueError> {
        Keys::check_prefix(prefix).map_err(QueueError::Prefix)?;
        let connect_err = |source| QueueError::Connect { url: redact(redis_url), source };
        let redis = Redis::open(redis_url).map_err(connect_err)?;
        let conn = redis.connect().await.map_err(connect_err)?;
        let blocking = redis.connect_blocking().await.map_err(connect_err)?;
        let queue = Queue { redis, conn, blocking, keys: Keys::new(prefix) };
        queue.ensure_groups().await?;
        Ok(queue)
    }

    /// Another handle on the same streams with its own blocking connection, for a second
    /// concurrent reader in the same process.
    pub async fn reader(&self) -> Result<Queue, QueueError> {
        let mut q = self.clone();
        q.blocking = self.redis.connect_blocking().await?;
        Ok(q)
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Creates the group; also the recovery after Redis lost its keys (FLUSHALL, restart
    /// without persistence), which readers call when Redis says the group is missing.
    pub async fn ensure_groups(&self) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let created: Result<(), RedisError> =
            redis::AsyncCommands::xgroup_create_mkstream(&mut conn, &self.keys.jobs, WORKERS_GROUP, "0").await;
        match created {
            Err(e) if e.code() != Some("BUSYGROUP") => Err(e.into()),
            _ => Ok(()),
        }
    }

    pub(crate) async fn read_group(
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
        let reply: Result<StreamEntries, RedisError> =
            tokio::time::timeout(limit, cmd.query_async(&mut conn)).await.map_err(|_| QueueError::Timeout(limit))?;
        match reply {
            Ok(StreamEntries(entries)) => Ok(entries),
            Err(e) if e.code() == Some("NOGROUP") => {
                // Redis lost the stream (FLUSHALL, restart): recreate and read again next time.
                tracing::warn!(stream, "consumer group missing; recreating it");
                self.ensure_groups().await?;
                Ok(Vec::new())
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// A Redis URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split(':').next().unwrap_or_default();
                if user.is_empty() { format!("{scheme}://***@{host}") } else { format!("{scheme}://{user}:***@{host}") }
            }
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_credentials() {
        assert_eq!(super::redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(super::redact("redis://:s3cret@10.0.0.1:6379/0"), "redis://***@10.0.0.1:6379/0");
        assert_eq!(super::redact("rediss://worker:s3cret@r:6380"), "rediss://worker:***@r:6380");
    }
}
