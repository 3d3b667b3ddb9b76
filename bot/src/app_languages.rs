//! The Telegram app language of each CRM user the bot has heard from, for what it writes
//! unasked (notifications, run results): an update carries the app's `language_code`, but
//! the engine's notification and completion streams know only a person's setting. Kept in
//! memory: after a restart a person without a setting gets English until they write again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::texts::{self, Language};

/// Past this many people the map starts afresh rather than grow without bound.
const MAX_PEOPLE: usize = 100_000;

#[derive(Clone, Default)]
pub struct AppLanguages(Arc<Mutex<HashMap<i64, Language>>>);

impl AppLanguages {
    /// CRM user `user` wrote from an app in `language_code`.
    pub fn remember(&self, user: i64, language_code: Option<&str>) {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match language_code.and_then(Language::from_tag) {
            Some(lang) => {
                if map.len() >= MAX_PEOPLE && !map.contains_key(&user) {
                    map.clear();
                }
                map.insert(user, lang);
            }
            None => {
                map.remove(&user);
            }
        }
    }

    /// The language to write to CRM user `user` in: `setting`, else their app's as last
    /// seen, else English.
    pub fn for_user(&self, user: Option<i64>, setting: Option<Language>) -> Language {
        let app = user.and_then(|u| self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&u).copied());
        texts::language_for(setting.or(app), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_wins_then_the_app_last_seen_then_english() {
        let langs = AppLanguages::default();
        assert_eq!(langs.for_user(Some(1), None), Language::En);
        langs.remember(1, Some("ru-RU"));
        assert_eq!(langs.for_user(Some(1), None), Language::Ru);
        assert_eq!(langs.for_user(Some(1), Some(Language::En)), Language::En);
        assert_eq!(langs.for_user(None, None), Language::En);
        // An app in a language the bot does not speak: English again.
        langs.remember(1, Some("de"));
        assert_eq!(langs.for_user(Some(1), None), Language::En);
    }
}
