//! Lazy confirmation of steps sent on the fast path. A step the engine sends right after
//! its commit stays in the outbox (no `enqueued_at`) with a due time a few seconds ahead;
//! if the engine dies before sending, the dispatcher sends it then. Most steps finish long
//! before that, so instead of writing `enqueued_at` for every step, the confirmer writes it
//! only for steps still unfinished after a short delay, in one statement per tick.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

pub type Key = (Uuid, String, i32);

#[derive(Default)]
pub struct Confirmer {
    sent: Mutex<HashMap<Key, Instant>>,
}

impl Confirmer {
    pub fn sent(&self, keys: impl IntoIterator<Item = Key>) {
        let now = Instant::now();
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        for k in keys {
            sent.insert(k, now);
        }
    }

    /// Results for these attempts were applied: nothing left to confirm.
    pub fn settled<'a>(&self, keys: impl IntoIterator<Item = &'a Key>) {
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        for k in keys {
            sent.remove(k);
        }
    }

    /// Takes the keys sent more than `older_than` ago.
    pub fn due(&self, older_than: Duration) -> Vec<Key> {
        let now = Instant::now();
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        let due: Vec<Key> =
            sent.iter().filter(|(_, at)| now.duration_since(**at) >= older_than).map(|(k, _)| k.clone()).collect();
        for k in &due {
            sent.remove(k);
        }
        due
    }

    /// Redis lost its data: whatever was sent is gone and will be sent again.
    pub fn clear(&self) {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settled_keys_are_never_due() {
        let c = Confirmer::default();
        let a = (Uuid::nil(), "a".to_string(), 1);
        let b = (Uuid::nil(), "b".to_string(), 1);
        c.sent([a.clone(), b.clone()]);
        c.settled([&a]);
        assert!(c.due(Duration::from_secs(60)).is_empty());
        assert_eq!(c.due(Duration::ZERO), vec![b]);
        assert!(c.due(Duration::ZERO).is_empty());
    }
}
