//! Finished runs, published on a stream for the bot and any other listener (through the
//! API's SSE, which forwards only entries the engine sealed). A reader resumes after the
//! last entry id it saw, so nothing is lost while it reconnects; the stream keeps about
//! the latest [`MAX_COMPLETIONS`] entries.

use redis::streams::StreamRangeReply;

use crate::connection::Connection;
use crate::entries::CompletionEntry;
use crate::queue::{Queue, QueueError, field, xadd};
use crate::stream_reply::StreamEntries;

pub const MAX_COMPLETIONS: usize = 100_000;

const RUN: &str = "run_id";
const DATA: &str = "data";
const SEAL: &str = "mac";

/// Publishing and reading completions.
#[derive(Clone)]
pub struct Completions {
    queue: Queue,
}

/// What the completions stream holds (see [`Completions::published_since`]).
#[derive(Debug, Default)]
pub struct Published {
    /// the run ids of the entries read
    pub runs: std::collections::HashSet<String>,
    /// set when the stream is at its cap: the time (ms, Redis' clock) of its oldest entry
    pub trimmed_before_ms: Option<u64>,
}

/// A reader's own connection: its blocking reads must not stall the shared one.
pub struct CompletionReader {
    conn: Connection,
    stream: String,
}

impl Queue {
    pub fn completions(&self) -> Completions {
        Completions { queue: self.clone() }
    }
}

impl Completions {
    /// Adds `(run id, data, seal)` entries in one pipeline.
    pub async fn publish(&self, entries: &[(String, Vec<u8>, String)]) -> Result<(), QueueError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        let max_len = MAX_COMPLETIONS.to_string();
        for (run, data, seal) in entries {
            let add = xadd(&[
                self.queue.keys.completions.as_bytes(),
                b"MAXLEN",
                b"~",
                max_len.as_bytes(),
                b"*",
                RUN.as_bytes(),
                run.as_bytes(),
                DATA.as_bytes(),
                data,
                SEAL.as_bytes(),
                seal.as_bytes(),
            ]);
            pipe.add_command(add).ignore();
        }
        let () = pipe.query_async(&mut self.queue.conn.clone()).await?;
        Ok(())
    }

    pub async fn reader(&self) -> Result<CompletionReader, QueueError> {
        // A blocking XREAD outlasts the client's default response timeout; the block time
        // itself bounds the wait, so this connection has none.
        let conn = self.queue.redis.connect_reader().await?;
        Ok(CompletionReader { conn, stream: self.queue.keys.completions.clone() })
    }

    /// What the stream holds from `since_ms` (Redis' clock) on: the runs of those entries,
    /// and whether it was trimmed to its cap, which means it no longer holds what is older
    /// than its oldest entry (`trimmed_before_ms`).
    pub async fn published_since(&self, since_ms: u64) -> Result<Published, QueueError> {
        let mut conn = self.queue.conn.clone();
        let key = &self.queue.keys.completions;
        let len: usize = redis::cmd("XLEN").arg(key).query_async(&mut conn).await?;
        let trimmed_before_ms = if len >= MAX_COMPLETIONS {
            let oldest: StreamRangeReply =
                redis::cmd("XRANGE").arg(key).arg("-").arg("+").arg("COUNT").arg(1).query_async(&mut conn).await?;
            oldest.ids.first().and_then(|e| entry_ms(&e.id))
        } else {
            None
        };
        let runs = self.entries_since(since_ms).await?.into_iter().map(|(run, _)| run).collect();
        Ok(Published { runs, trimmed_before_ms })
    }

    /// Every entry from `since_ms` (Redis' clock) on, oldest first: its run id and the
    /// millisecond it was published. Read in pages, so that no one reply of a full stream
    /// outlasts a client's response timeout.
    pub async fn entries_since(&self, since_ms: u64) -> Result<Vec<(String, u64)>, QueueError> {
        /// Entries per read: a full stream is read in about ten.
        const PAGE: usize = 10_000;
        let mut conn = self.queue.conn.clone();
        let mut entries = Vec::new();
        let mut start = format!("{since_ms}-0");
        loop {
            let page: StreamRangeReply = redis::cmd("XRANGE")
                .arg(&self.queue.keys.completions)
                .arg(&start)
                .arg("+")
                .arg("COUNT")
                .arg(PAGE)
                .query_async(&mut conn)
                .await?;
            let Some(last) = page.ids.last() else { break };
            start = format!("({}", last.id);
            let full = page.ids.len() == PAGE;
            entries.extend(page.ids.into_iter().filter_map(|mut e| {
                let run = String::from_utf8(field(&mut e, RUN)?).ok()?;
                Some((run, entry_ms(&e.id)?))
            }));
            if !full {
                break;
            }
        }
        Ok(entries)
    }

    /// The id of the newest entry, so a reader without a resume point starts after it.
    pub async fn last_id(&self) -> Result<String, QueueError> {
        let reply: StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(&self.queue.keys.completions)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut self.queue.conn.clone())
            .await?;
        Ok(reply.ids.first().map(|e| e.id.clone()).unwrap_or_else(|| "0-0".into()))
    }
}

impl CompletionReader {
    /// Entries after `after`, waiting up to `block_ms` for the first one.
    pub async fn read(&mut self, after: &str, count: usize, block_ms: u64) -> Result<Vec<CompletionEntry>, QueueError> {
        let StreamEntries(entries) = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(block_ms)
            .arg("STREAMS")
            .arg(&self.stream)
            .arg(after)
            .query_async(&mut self.conn)
            .await?;
        Ok(entries
            .into_iter()
            .map(|mut entry| CompletionEntry {
                data: field(&mut entry, DATA).unwrap_or_default(),
                seal: field(&mut entry, SEAL).and_then(|s| String::from_utf8(s).ok()),
                id: entry.id,
            })
            .collect())
    }
}

/// Whether `id` is a stream entry id (`<ms>-<seq>`), as a `Last-Event-ID` must be.
pub fn is_entry_id(id: &str) -> bool {
    let mut parts = id.splitn(2, '-');
    let ok =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit()));
    ok(parts.next()) && ok(parts.next())
}

/// The millisecond (Redis' clock) at which the entry with id `<ms>-<seq>` was added.
pub fn entry_ms(id: &str) -> Option<u64> {
    id.split('-').next()?.parse().ok()
}
