//! `/schedules`: the cron schedules of the deployed workflows and when each fires next.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use crm_concepts::records::Page;
use serde::Deserialize;

use super::Req;

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
        Ok(page) => req.reply(&render(&page.items, Utc::now(), req.zone())),
        Err(e) => req.fail(&e),
    }
}

/// The chat text: each expression with the zone it ticks in, the fire times in the reader's
/// `zone` with how far away the next one is.
pub fn render(schedules: &[Schedule], now: DateTime<Utc>, zone: Tz) -> String {
    if schedules.is_empty() {
        return "No scheduled workflows. A workflow with a cron trigger shows up here once deployed.".into();
    }
    let mut lines = vec![format!("⏰ Scheduled workflows (times in your zone, {}):", zone.name())];
    for s in schedules {
        lines.push(String::new());
        lines.push(format!("• {} — {} ({})", s.workflow, s.expression, s.timezone));
        let mut times = s.next_fire_times.iter();
        match times.next() {
            Some(first) => {
                lines.push(format!("  next: {} ({})", local(first, zone), until(now, *first)));
                let rest: Vec<String> = times.map(|t| local(t, zone)).collect();
                if !rest.is_empty() {
                    lines.push(format!("  then: {}", rest.join(", ")));
                }
            }
            None => lines.push("  next: never (no future tick)".into()),
        }
    }
    lines.join("\n")
}

fn local(t: &DateTime<Utc>, zone: Tz) -> String {
    t.with_timezone(&zone).format("%Y-%m-%d %H:%M:%S").to_string()
}

fn until(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let secs = (at - now).num_seconds();
    if secs <= 0 {
        return "due now".into();
    }
    let (days, hours, minutes) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("in {secs}s"),
        (0, 0, m) => format!("in {m}m"),
        (0, h, m) => format!("in {h}h {m}m"),
        (d, h, _) => format!("in {d}d {h}h"),
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
        let text = render(std::slice::from_ref(&s), now, Tz::UTC);
        assert!(text.contains("• stale-deals-digest — 0 0 9 * * * (UTC)"), "{text}");
        assert!(text.contains("next: 2026-11-26 09:00:00 (in 2h 30m)"), "{text}");
        assert!(text.contains("then: 2026-11-27 09:00:00"), "{text}");
        assert!(render(&[], now, Tz::UTC).contains("No scheduled workflows"));
        // A reader in Berlin sees the same ticks at their own clock's 10:00.
        let text = render(&[s], now, chrono_tz::Europe::Berlin);
        assert!(text.contains("(times in your zone, Europe/Berlin)"), "{text}");
        assert!(text.contains("next: 2026-11-26 10:00:00 (in 2h 30m)"), "{text}");
    }
}
