//! Finished runs, published for the bot and any other listener on the completions stream,
//! each sealed with the engine's MAC. The API's SSE forwards only entries whose seal
//! verifies, so a completion forged on Redis never reaches a chat.
//!
//! Publishing happens after the run's transaction commits. If the engine dies in between,
//! the completion is published again by the first engine to see it gone (from its mark:
//! `crate::publication`), and after Redis lost its data: delivery is at least once, readers
//! dedupe by run id.

use crm_concepts::language::Language;
use crm_concepts::run::{Completion, RunStatus};
use crm_queue::{CompletionReader, QueueError};
use crm_trust::EngineKey;

use crate::core::Core;

pub(crate) async fn publish(core: &Core, completions: &[Completion]) -> Result<(), QueueError> {
    let entries: Vec<(String, Vec<u8>, String)> = completions
        .iter()
        .map(|c| {
            // room for a typical completion, as for a job (`crate::jobs::build`)
            let mut data = Vec::with_capacity(768);
            if serde_json::to_writer(&mut data, c).is_err() {
                data.clear();
            }
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
pub type FeedEntry = (String, Option<SealedCompletion>);

/// A completion the engine sealed, kept as the JSON it was published as: a reader forwards
/// it without parsing it into a [`Completion`] and serializing it again, which was most of
/// the cost of serving the stream.
#[derive(Debug)]
pub struct SealedCompletion {
    json: String,
    head: Head,
}

/// What a reader needs of a completion besides its JSON. Parsing into it checks the whole
/// entry is JSON and carries the fields every completion has.
#[derive(Debug, serde::Deserialize)]
struct Head {
    run_id: uuid::Uuid,
    status: RunStatus,
    #[serde(default)]
    notify: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    acting_user: Option<i64>,
}

impl SealedCompletion {
    fn parse(data: Vec<u8>) -> Result<SealedCompletion, String> {
        let head: Head = serde_json::from_slice(&data).map_err(|e| e.to_string())?;
        let json = String::from_utf8(data).map_err(|e| e.to_string())?;
        Ok(SealedCompletion { json, head })
    }

    pub fn run_id(&self) -> uuid::Uuid {
        self.head.run_id
    }

    pub fn status(&self) -> RunStatus {
        self.head.status
    }

    /// The user whose chat this completion answers, for a completion that answers one.
    pub fn answers_chat_of(&self) -> Option<i64> {
        self.head.notify.as_ref().and(self.head.acting_user)
    }

    /// The whole completion, parsed.
    pub fn completion(&self) -> Result<Completion, serde_json::Error> {
        serde_json::from_str(&self.json)
    }

    /// Adds the acting user's language setting (the one change a reader makes).
    pub fn set_language(&mut self, language: Language) -> Result<(), serde_json::Error> {
        let mut c = self.completion()?;
        c.language = Some(language);
        self.json = serde_json::to_string(&c)?;
        Ok(())
    }

    pub fn into_json(self) -> String {
        self.json
    }
}

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
                match SealedCompletion::parse(e.data) {
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

#[cfg(test)]
mod tests {
    use crm_concepts::run::Notify;

    use super::*;

    fn completion(notify: Option<Notify>, acting_user: Option<i64>) -> Completion {
        Completion {
            run_id: uuid::Uuid::now_v7(),
            workflow: "qualify-lead".into(),
            status: RunStatus::Succeeded,
            rendered: "Qualified: hot".into(),
            notify,
            acting_user,
            result: Some(serde_json::json!({"score": 90}).into()),
            error: None,
            language: None,
        }
    }

    #[test]
    fn a_completion_is_forwarded_as_it_was_published() {
        let c = completion(None, Some(7));
        let published = serde_json::to_vec(&c).unwrap();
        let sealed = SealedCompletion::parse(published.clone()).unwrap();
        assert_eq!((sealed.run_id(), sealed.status()), (c.run_id, c.status));
        assert_eq!(sealed.answers_chat_of(), None, "no chat to answer");
        assert_eq!(sealed.into_json().into_bytes(), published);
    }

    #[test]
    fn a_completion_that_answers_a_chat_gets_the_users_language() {
        let c = completion(Some(Notify { chat_id: 42, message_id: Some(3) }), Some(7));
        let mut sealed = SealedCompletion::parse(serde_json::to_vec(&c).unwrap()).unwrap();
        assert_eq!(sealed.answers_chat_of(), Some(7));
        sealed.set_language(Language::Ru).unwrap();
        let forwarded: Completion = serde_json::from_str(&sealed.into_json()).unwrap();
        assert_eq!(forwarded.language, Some(Language::Ru));
        assert_eq!((forwarded.run_id, forwarded.rendered), (c.run_id, c.rendered));
    }

    #[test]
    fn an_entry_that_is_not_a_completion_is_refused() {
        for data in [&b"{\"run_id\": 1"[..], b"{\"status\": \"succeeded\"}", b"[1, 2]", b"\xff\xfe"] {
            assert!(SealedCompletion::parse(data.to_vec()).is_err(), "{data:?}");
        }
    }
}
