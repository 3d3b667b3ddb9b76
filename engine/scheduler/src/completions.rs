//! Finished runs, published for the bot and any other listener on the completions stream,
//! each sealed with the engine's MAC. The API's SSE forwards only entries whose seal
//! verifies, so a completion forged on Redis never reaches a chat.
//!
//! Publishing happens after the run's transaction commits. If the engine dies in between,
//! the completion is published again at the next start (runs finished shortly before
//! it), and after Redis lost its data: delivery is at least once, readers dedupe by run id.

use crm_concepts::run::Completion;
use crm_queue::{CompletionReader, QueueError};
use crm_trust::EngineKey;

use crate::core::Core;

pub(crate) async fn publish(core: &Core, completions: &[Completion]) -> Result<(), QueueError> {
    let entries: Vec<(String, Vec<u8>, String)> = completions
        .iter()
        .map(|c| {
            let data = serde_json::to_vec(c).unwrap_or_default();
            let seal = core.key.seal(&data);
            (c.run_id.to_string(), data, seal)
        })
        .collect();
    core.queue.completions().publish(&entries).await
}

/// Completions larger than this are not even checked: the engine never publishes one (a
/// run's result is bounded by the step output cap), so a bigger entry is forged and its
/// MAC not worth computing.
pub const MAX_COMPLETION_BYTES: usize = 2 << 20;

/// Reads completions and keeps only the engine's own.
pub struct CompletionFeed {
    reader: CompletionReader,
    key: EngineKey,
}

/// One entry of the feed: its stream id (the SSE event id) and, for a genuine entry, the
/// completion.
pub type FeedEntry = (String, Option<Completion>);

impl CompletionFeed {
    pub(crate) fn new(reader: CompletionReader, key: EngineKey) -> CompletionFeed {
        CompletionFeed { reader, key }
    }

    /// Entries after `after`, waiting up to `block_ms` for the first. An entry that is not
    /// sealed by this engine, or does not parse, comes back as `None` (so the reader moves
    /// past it) and is logged.
    pub async fn read(&mut self, after: &str, count: usize, block_ms: u64) -> Result<Vec<FeedEntry>, QueueError> {
        let entries = self.reader.read(after, count, block_ms).await?;
        Ok(entries
            .into_iter()
            .map(|e| {
                if e.data.len() > MAX_COMPLETION_BYTES {
                    tracing::warn!(id = %e.id, bytes = e.data.len(), "dropping an oversized completion (forged on Redis?)");
                    return (e.id, None);
                }
                let genuine = e.seal.as_deref().is_some_and(|s| self.key.is_sealed(&e.data, s));
                if !genuine {
                    tracing::warn!(id = %e.id, "dropping a completion the engine did not seal (forged on Redis?)");
                    return (e.id, None);
                }
                match serde_json::from_slice::<Completion>(&e.data) {
                    Ok(c) => (e.id, Some(c)),
                    Err(err) => {
                        tracing::warn!(id = %e.id, "dropping a malformed completion: {err}");
                        (e.id, None)
                    }
                }
            })
            .collect())
    }
}
