//! What admissions last read of the workflows and users their runs name: each enabled
//! workflow's current version, and the users that were active. A batch whose every
//! workflow and acting user is known here is admitted in one round trip (the insert)
//! instead of two. Only what was true is kept, and the insert checks it again
//! (`crm_store::runs::Inserted::Stale`): a run built from a fact that has changed since (a
//! deploy, a rollback, a disable, a user switched off) is not written, and the admission
//! reads the facts afresh. So this is a shortcut, never the truth: a refusal always comes
//! from Postgres.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// The facts a batch is admitted with: per workflow its current version and whether it
/// is enabled, and the acting users found active.
#[derive(Debug, Default, Clone)]
pub(crate) struct Facts {
    pub current: HashMap<String, (i32, bool)>,
    pub active_users: HashSet<i64>,
}

#[derive(Default)]
struct Known {
    /// enabled workflows' current versions
    workflows: HashMap<String, i32>,
    active_users: HashSet<i64>,
}

pub(crate) struct KnownFacts {
    known: Mutex<Known>,
    capacity: usize,
}

impl Default for KnownFacts {
    fn default() -> Self {
        // Far more workflows and users than an installation has; reaching it means
        // something odd (ids of users long gone), and it then starts over.
        KnownFacts { known: Mutex::default(), capacity: 65_536 }
    }
}

impl KnownFacts {
    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The facts for `workflows` and `users` if every one of them is known, else `None`.
    pub fn lookup(&self, workflows: &[&str], users: &[i64]) -> Option<Facts> {
        let known = self.lock();
        let mut facts = Facts::default();
        for w in workflows {
            facts.current.insert((*w).to_string(), (*known.workflows.get(*w)?, true));
        }
        for u in users {
            if !known.active_users.contains(u) {
                return None;
            }
            facts.active_users.insert(*u);
        }
        Some(facts)
    }

    /// Keeps what Postgres just said was true: an enabled workflow's version, an active
    /// user. A disabled workflow is forgotten (the next admission asks again).
    pub fn remember(&self, facts: &Facts) {
        let mut known = self.lock();
        if known.workflows.len() + known.active_users.len() >= self.capacity {
            *known = Known::default();
        }
        for (name, &(version, enabled)) in &facts.current {
            if enabled {
                known.workflows.insert(name.clone(), version);
            } else {
                known.workflows.remove(name);
            }
        }
        known.active_users.extend(&facts.active_users);
    }

    /// Drops what a run that failed the insert's guard was built from.
    pub fn forget(&self, workflow: &str, user: Option<i64>) {
        let mut known = self.lock();
        known.workflows.remove(workflow);
        if let Some(u) = user {
            known.active_users.remove(&u);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(workflows: &[(&str, i32, bool)], users: &[i64]) -> Facts {
        Facts {
            current: workflows.iter().map(|(n, v, e)| ((*n).to_string(), (*v, *e))).collect(),
            active_users: users.iter().copied().collect(),
        }
    }

    #[test]
    fn only_a_batch_whose_every_fact_is_known_is_answered() {
        let k = KnownFacts::default();
        assert!(k.lookup(&["a"], &[]).is_none());
        k.remember(&facts(&[("a", 3, true), ("off", 1, false)], &[7]));
        let f = k.lookup(&["a"], &[7]).expect("known");
        assert_eq!(f.current["a"], (3, true));
        assert!(f.active_users.contains(&7));
        assert!(k.lookup(&["a", "b"], &[]).is_none(), "b was never read");
        assert!(k.lookup(&["a"], &[8]).is_none(), "user 8 was never read");
        assert!(k.lookup(&["off"], &[]).is_none(), "a disabled workflow is asked again");
    }

    #[test]
    fn a_newer_read_replaces_and_a_failed_guard_forgets() {
        let k = KnownFacts::default();
        k.remember(&facts(&[("a", 3, true)], &[7]));
        k.remember(&facts(&[("a", 4, true)], &[]));
        assert_eq!(k.lookup(&["a"], &[7]).expect("known").current["a"], (4, true));
        k.remember(&facts(&[("a", 4, false)], &[]));
        assert!(k.lookup(&["a"], &[]).is_none(), "disabled since");
        k.remember(&facts(&[("a", 5, true)], &[7]));
        k.forget("a", Some(7));
        assert!(k.lookup(&["a"], &[]).is_none());
        k.remember(&facts(&[("a", 5, true)], &[]));
        assert!(k.lookup(&["a"], &[7]).is_none());
    }

    #[test]
    fn it_starts_over_when_full() {
        let k = KnownFacts { known: Mutex::default(), capacity: 3 };
        k.remember(&facts(&[], &[1, 2, 3]));
        k.remember(&facts(&[("a", 1, true)], &[]));
        assert!(k.lookup(&[], &[1]).is_none());
        assert!(k.lookup(&["a"], &[]).is_some());
    }
}
