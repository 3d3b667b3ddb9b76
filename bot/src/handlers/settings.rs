//! `/settings`: the person's own time zone and how early task reminders come.

use chrono::Utc;
use crm_concepts::user::{MAX_REMIND_BEFORE_MINUTES, User, UserSettings};

use super::Req;
use crate::engine::EngineError;

const USAGE: &str = "Change them with:\n\
    /settings zone Europe/Berlin — your IANA time zone (due times are typed and shown in it)\n\
    /settings remind 15 — minutes before a task is due that its reminder comes (0: at the due time)";

pub async fn settings(req: &Req<'_>, args: &str) {
    let mut words = args.split_whitespace();
    let change = match (words.next().map(str::to_lowercase).as_deref(), words.next(), words.next()) {
        (None, _, _) => {
            req.reply(&format!("{}\n\n{USAGE}", describe(&req.user)));
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
                req.reply(&format!(
                    "Type the minutes as a whole number from 0 to {MAX_REMIND_BEFORE_MINUTES} (a week), e.g. /settings remind 15"
                ));
                return;
            }
        },
        _ => {
            req.reply(USAGE);
            return;
        }
    };
    let changed: Result<User, EngineError> = req.ctx.engine.patch(req.acting(), "/api/me/settings", &change).await;
    match changed {
        Ok(user) => {
            // The next message must already read times in the new zone.
            req.ctx.identity.forget(req.tg_user);
            req.reply(&format!("✅ Saved.\n{}", describe(&user)))
        }
        Err(e) => req.fail(&e),
    }
}

fn describe(user: &User) -> String {
    let zone = user.zone();
    let now = Utc::now().with_timezone(&zone).format("%H:%M");
    let remind = match user.remind_before_minutes {
        0 => "at the due time".to_string(),
        m => format!("{m} min before the due time"),
    };
    format!("⚙️ Your settings\n🕒 Time zone: {} (it is {now} there now)\n⏰ Task reminders: {remind}", zone.name())
}
