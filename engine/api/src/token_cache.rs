//! API tokens and acting users verified lately, so that a request does not cost a database
//! round trip to learn who sent it (on `POST /api/runs` that lookup was the one statement
//! per request left on the run path; every other statement is shared by a batch).
//!
//! An entry is believed only while nothing could have changed it: the engine must be
//! listening on `crm_store::credential_changes::CHANNEL` (no listener, no cache), no change
//! may have been announced or made by this process since the entry was looked up, the token
//! must not have expired, and the entry must be younger than [`TTL`]. So a revoked token,
//! a disabled user or a changed role stops working on every engine as soon as the change
//! commits and its announcement arrives (a few milliseconds), and a lost listener
//! connection empties the cache until it is back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use crm_concepts::records::Id;
use crm_concepts::user::User;
use crm_store::tokens::Presented;
use crm_store::{Db, credential_changes};
use tokio_util::sync::CancellationToken;

/// The longest an entry is believed, announcements or not: a bound on what a listener that
/// is silently cut off (no error, no notifications) can let through.
pub const TTL: Duration = Duration::from_secs(10);

/// Most entries of each kind; past it, expired ones go, and then everything.
const MAX_ENTRIES: usize = 10_000;

/// When an entry was looked up: the changes counted by then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    here: u64,
    announced: u64,
}

struct Entry<T> {
    value: T,
    stamp: Stamp,
    at: Instant,
}

#[derive(Default)]
struct Entries {
    /// by the SHA-256 of the token's secret
    tokens: HashMap<[u8; 32], Entry<(User, Presented)>>,
    users: HashMap<Id, Entry<User>>,
}

#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<Entries>,
    /// announcements heard, and losses of the listener (either may have hidden a change)
    announced: AtomicU64,
    listening: AtomicBool,
}

impl TokenCache {
    /// The changes counted so far. Taken before a lookup in the database:
    /// [`TokenCache::keep_token`] keeps the answer only if nothing changed in between, and
    /// any other cache of credentials can tell the same way whether an entry is stale.
    pub fn stamp(&self) -> Stamp {
        Stamp { here: credential_changes::made_here(), announced: self.announced.load(Ordering::Acquire) }
    }

    fn fresh<T>(&self, entry: &Entry<T>) -> bool {
        self.listening.load(Ordering::Acquire) && entry.stamp == self.stamp() && entry.at.elapsed() < TTL
    }

    /// The user and token behind the secret with this hash, if verified lately.
    pub fn token(&self, hash: &[u8; 32]) -> Option<(User, Presented)> {
        if !self.listening.load(Ordering::Acquire) {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.tokens.get(hash).filter(|e| self.fresh(e))?;
        if entry.value.1.expires_at.is_some_and(|at| at <= Utc::now()) {
            return None;
        }
        Some(entry.value.clone())
    }

    pub fn keep_token(&self, stamp: Stamp, hash: [u8; 32], user: &User, token: &Presented) {
        self.keep(stamp, |e| &mut e.tokens, hash, (user.clone(), *token));
    }

    /// An active user read lately (the user a delegate token acts for).
    pub fn user(&self, id: Id) -> Option<User> {
        if !self.listening.load(Ordering::Acquire) {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.users.get(&id).filter(|e| self.fresh(e)).map(|e| e.value.clone())
    }

    pub fn keep_user(&self, stamp: Stamp, user: &User) {
        self.keep(stamp, |e| &mut e.users, user.id, user.clone());
    }

    fn keep<K: std::hash::Hash + Eq, T>(
        &self,
        stamp: Stamp,
        map: impl Fn(&mut Entries) -> &mut HashMap<K, Entry<T>>,
        key: K,
        value: T,
    ) {
        if !self.listening.load(Ordering::Acquire) {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        // Compared under the lock: a change counted after this check is counted after the
        // entry went in, and makes it stale.
        if stamp != self.stamp() {
            return;
        }
        let map = map(&mut entries);
        if map.len() >= MAX_ENTRIES {
            let now = self.stamp();
            map.retain(|_, e| e.stamp == now && e.at.elapsed() < TTL);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(key, Entry { value, stamp, at: Instant::now() });
    }

    /// Something may have changed that this process did not hear of: forget everything.
    fn forget(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        self.announced.fetch_add(1, Ordering::AcqRel);
        entries.tokens.clear();
        entries.users.clear();
    }

    /// Listens for changes to tokens and users until `stop`; only while it listens is the
    /// cache used. Reconnects after a lost connection, forgetting what it kept.
    pub async fn follow(&self, db: Db, stop: CancellationToken) {
        let mut retry = Duration::from_millis(100);
        loop {
            let listener = tokio::select! {
                _ = stop.cancelled() => return,
                l = credential_changes::listener(&db) => l,
            };
            match listener {
                Ok(mut listener) => {
                    retry = Duration::from_millis(100);
                    // Changes made before the LISTEN took effect were never announced.
                    self.forget();
                    self.listening.store(true, Ordering::Release);
                    loop {
                        let heard = tokio::select! {
                            _ = stop.cancelled() => None,
                            n = listener.try_recv() => Some(n),
                        };
                        match heard {
                            None => {
                                self.listening.store(false, Ordering::Release);
                                return;
                            }
                            // A change was announced (`Some`), or the connection was lost
                            // and made again (`None`), taking what was announced meanwhile.
                            Some(Ok(_)) => self.forget(),
                            Some(Err(e)) => {
                                tracing::warn!(error = %e, "lost the listener for credential changes; tokens are looked up until it is back");
                                break;
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for credential changes; tokens are looked up every time");
                }
            }
            self.listening.store(false, Ordering::Release);
            self.forget();
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(retry) => {}
            }
            retry = (retry * 2).min(Duration::from_secs(5));
        }
    }
}
