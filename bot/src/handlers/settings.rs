//! `/settings`: the person's own time zone, how early task reminders come, and the language
//! the bot speaks to them in.

use chrono::Utc;
use crm_concepts::user::{MAX_REMIND_BEFORE_MINUTES, User, UserSettings};

use super::Req;
use crate::engine::EngineError;
use crate::t;
use crate::texts::Language;

pub async fn settings(req: &Req<'_>, args: &str) {
    let mut words = args.split_whitespace();
    let change = match (words.next().map(str::to_lowercase).as_deref(), words.next(), words.next()) {
        (None, _, _) => {
            req.reply(&format!("{}\n\n{}", describe(&req.user, req.lang), t!(req.lang, "settings-usage")));
            return;
        }
        (Some("zone" | "tz" | "timezone"), Some(zone), None) => {
            UserSettings { time_zone: Some(zone.to_string()), ..UserSettings::default() }
        }
        (Some("remind" | "reminders"), Some(minutes), None) => match minutes.parse::<i32>() {
            Ok(m) if (0..=MAX_REMIND_BEFORE_MINUTES).contains(&m) => {
                UserSettings { remind_before_minutes: Some(m), ..UserSettings::default() }
            }
            _ => {
                req.reply(&t!(req.lang, "settings-remind-invalid", max = MAX_REMIND_BEFORE_MINUTES));
                return;
            }
        },
        (Some("language" | "lang"), Some(code), None) => {
            let language = if code.eq_ignore_ascii_case("auto") {
                None
            } else {
                match code.parse::<Language>() {
                    Ok(l) => Some(l),
                    Err(_) => {
                        req.reply(&t!(req.lang, "settings-language-invalid"));
                        return;
                    }
                }
            };
            UserSettings { language: Some(language), ..UserSettings::default() }
        }
        _ => {
            req.reply(&t!(req.lang, "settings-usage"));
            return;
        }
    };
    let changed: Result<User, EngineError> = req.ctx.engine.patch(req.acting(), "/api/me/settings", &change).await;
    match changed {
        Ok(user) => {
            // The next message must already read times in the new zone (and speak the new
            // language, which this answer already does).
            req.ctx.identity.forget(req.tg_user);
            let lang = user.language.or(req.telegram_language).unwrap_or_default();
            req.reply(&format!("{}\n{}", t!(lang, "settings-saved"), describe(&user, lang)))
        }
        Err(e) => req.fail(&e),
    }
}

fn describe(user: &User, lang: Language) -> String {
    let zone = user.zone();
    let now = Utc::now().with_timezone(&zone).format("%H:%M").to_string();
    let remind = match user.remind_before_minutes {
        0 => t!(lang, "settings-remind-at-due"),
        m => t!(lang, "settings-remind-before", minutes = m),
    };
    let language = match user.language {
        Some(l) => t!(lang, "settings-language-set", language = language_name(l, lang)),
        None => t!(lang, "settings-language-auto", language = language_name(lang, lang)),
    };
    t!(lang, "settings-summary", zone = zone.name(), now = now, remind = remind, language = language)
}

fn language_name(l: Language, lang: Language) -> String {
    match l {
        Language::En => t!(lang, "language-en"),
        Language::Ru => t!(lang, "language-ru"),
    }
}
