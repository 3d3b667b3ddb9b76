//! `/schedules`: the cron schedules of the deployed workflows and when each fires next.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use crm_concepts::records::Page;
use serde::Deserialize;

use super::Req;
use crate::t;
use crate::texts::Language;

/// Upcoming fire times shown per schedule.
const SHOWN: usize = 2;

/// A schedule as `GET /api/schedules` lists it (the fields the chat shows).
#[derive(Debug, Clone, Deserialize)]
pub struct Schedule {
    pub workflow: String,
    pub expression: String,
    pub timezone: String,
    #[serde(default)]
    pub next_fire_times: Vec<DateTime<Utc>>,
}

pub async fn list(req: &Req<'_>) {
    let query = [("next", SHOWN.to_string())];
    match req.ctx.engine.get::<Page<Schedule>>(req.acting(), "/api/schedules", &query).await {
        Ok(page) => req.reply(&render(&page.items, Utc::now(), req.zone(), req.lang)),
        Err(e) => req.fail(&e),
    }
}

/// The chat text: each expression with the zone it ticks in, the fire times in the reader's
/// `zone` with how far away the next one is.
pub fn render(schedules: &[Schedule], now: DateTime<Utc>, zone: Tz, lang: Language) -> String {
    if schedules.is_empty() {
        return t!(lang, "schedules-none");
    }
    let mut lines = vec![t!(lang, "schedules-title", zone = zone.name())];
    for s in schedules {
        lines.push(String::new());
        lines.push(format!("• {} — {} ({})", s.workflow, s.expression, s.timezone));
        let mut times = s.next_fire_times.iter();
        match times.next() {
            Some(first) => {
                lines.push(format!(
                    "  {}",
                    t!(lang, "schedules-next", at = local(first, zone), until = until(now, *first, lang))
                ));
                let rest: Vec<String> = times.map(|at| local(at, zone)).collect();
                if !rest.is_empty() {
                    lines.push(format!("  {}", t!(lang, "schedules-then", at = rest.join(", "))));
                }
            }
            None => lines.push(format!("  {}", t!(lang, "schedules-never"))),
        }
    }
    lines.join("\n")
}

fn local(t: &DateTime<Utc>, zone: Tz) -> String {
    t.with_timezone(&zone).format("%Y-%m-%d %H:%M:%S").to_string()
}

fn until(now: DateTime<Utc>, at: DateTime<Utc>, lang: Language) -> String {
    let secs = (at - now).num_seconds();
    if secs <= 0 {
        return t!(lang, "until-now");
    }
    let (days, hours, minutes) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (days, hours, minutes) {
        (0, 0, 0) => t!(lang, "until-seconds", s = secs),
        (0, 0, m) => t!(lang, "until-minutes", m = m),
        (0, h, m) => t!(lang, "until-hours", h = h, m = m),
        (d, h, _) => t!(lang, "until-days", d = d, h = h),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_each_schedule_with_its_next_fire_times() {
        let now: DateTime<Utc> = "2026-11-26T06:30:00Z".parse().unwrap();
        let s = Schedule {
            workflow: "stale-deals-digest".into(),
            expression: "0 0 9 * * *".into(),
            timezone: "UTC".into(),
            next_fire_times: vec!["2026-11-26T09:00:00Z".parse().unwrap(), "2026-11-27T09:00:00Z".parse().unwrap()],
        };
        let text = render(std::slice::from_ref(&s), now, Tz::UTC, Language::En);
        assert!(text.contains("• stale-deals-digest — 0 0 9 * * * (UTC)"), "{text}");
        assert!(text.contains("next: 2026-11-26 09:00:00 (in 2h 30m)"), "{text}");
        assert!(text.contains("then: 2026-11-27 09:00:00"), "{text}");
        assert!(render(&[], now, Tz::UTC, Language::En).contains("No scheduled workflows"));
        // A reader in Berlin sees the same ticks at their own clock's 10:00.
        let text = render(&[s], now, chrono_tz::Europe::Berlin, Language::En);
        assert!(text.contains("(times in your zone, Europe/Berlin)"), "{text}");
        assert!(text.contains("next: 2026-11-26 10:00:00 (in 2h 30m)"), "{text}");
    }
}
