//! Finished runs, published on a Redis stream (`<prefix>:completions`) for the bot and any
//! other listener. A reader resumes after the last entry id it saw, so nothing is lost
//! while it reconnects; the stream keeps the latest entries only (about `MAX_LEN`).
//!
//! Publishing happens after the run's transaction commits. If the engine dies in between,
//! the completion is published again at the next start (runs finished shortly before
//! it), and after Redis lost its data: delivery is at least once, readers dedupe by run id.

use crm_concepts::run::Completion;
use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::streams::StreamReadReply;

pub const MAX_LEN: usize = 100_000;

#[derive(Clone)]
pub struct Completions {
    client: redis::Client,
    conn: ConnectionManager,
    stream: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CompletionsError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("malformed completion entry {id}: {message}")]
    Malformed { id: String, message: String },
}

/// A reader's own connection: its blocking reads must not stall the shared one.
pub struct CompletionReader {
    conn: MultiplexedConnection,
    stream: String,
}

impl Completions {
    pub async fn connect(redis_url: &str, prefix: &str) -> Result<Completions, CompletionsError> {
        let client = redis::Client::open(redis_url)?;
        let conn = client.get_connection_manager().await?;
        Ok(Completions { client, conn, stream: format!("{prefix}:completions") })
    }

    pub async fn publish(&self, completions: &[Completion]) -> Result<(), CompletionsError> {
        if completions.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for c in completions {
            let data = serde_json::to_string(c).unwrap_or_default();
            pipe.cmd("XADD")
                .arg(&self.stream)
                .arg("MAXLEN")
                .arg("~")
                .arg(MAX_LEN)
                .arg("*")
                .arg("run_id")
                .arg(c.run_id.to_string())
                .arg("data")
                .arg(data)
                .ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await?;
        Ok(())
    }

    pub async fn reader(&self) -> Result<CompletionReader, CompletionsError> {
        Ok(CompletionReader {
            // A blocking XREAD outlasts the client's default response timeout; the block
            // time itself bounds the wait, so this connection has none.
            conn: self
                .client
                .get_multiplexed_async_connection_with_config(
                    &redis::AsyncConnectionConfig::new().set_response_timeout(None),
                )
                .await?,
            stream: self.stream.clone(),
        })
    }

    /// The id of the newest entry, so a reader without a resume point starts after it.
    pub async fn last_id(&self) -> Result<String, CompletionsError> {
        let mut conn = self.conn.clone();
        let reply: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(&self.stream)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut conn)
            .await?;
        Ok(reply.ids.first().map(|e| e.id.clone()).unwrap_or_else(|| "0-0".into()))
    }
}

impl CompletionReader {
    /// Entries after `after`, waiting up to `block_ms` for the first one.
    pub async fn read(
        &mut self,
        after: &str,
        count: usize,
        block_ms: u64,
    ) -> Result<Vec<(String, Result<Completion, CompletionsError>)>, CompletionsError> {
        let reply: Option<StreamReadReply> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(block_ms)
            .arg("STREAMS")
            .arg(&self.stream)
            .arg(after)
            .query_async(&mut self.conn)
            .await?;
        let mut out = Vec::new();
        for key in reply.map(|r| r.keys).unwrap_or_default() {
            for entry in key.ids {
                let parsed = match entry.map.get("data") {
                    Some(redis::Value::BulkString(b)) => serde_json::from_slice::<Completion>(b)
                        .map_err(|e| CompletionsError::Malformed { id: entry.id.clone(), message: e.to_string() }),
                    _ => Err(CompletionsError::Malformed { id: entry.id.clone(), message: "no data field".into() }),
                };
                out.push((entry.id, parsed));
            }
        }
        Ok(out)
    }
}

/// Whether `id` is a stream entry id (`<ms>-<seq>`), as a `Last-Event-ID` must be.
pub fn is_entry_id(id: &str) -> bool {
    let mut parts = id.splitn(2, '-');
    let ok =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit()));
    ok(parts.next()) && ok(parts.next())
}
