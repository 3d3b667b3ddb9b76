//! Cron expressions with seconds and a time zone, and the policy that decides which ticks
//! of a schedule are due.
//!
//! # Missed-tick policy
//!
//! A tick is *due* when it lies after the schedule's last claimed tick and at or before now.
//! Due ticks no older than the catch-up window (a minute by default) fire one by one: a
//! replica that paused for a few seconds, or an engine restarted by a rolling deploy, loses
//! nothing. Ticks older than the window were missed while no engine was running; they are
//! **coalesced into one run**: the schedule runs once for the latest of them, or, when a
//! newer tick is due anyway, that tick stands in for them. Either way the run's input says
//! how many ticks were missed (`"missed": n`), so a digest can widen its window. A schedule
//! never bursts through hours of backlog after an outage.

use std::str::FromStr;

use chrono::{DateTime, Duration, TimeDelta, Utc};
use chrono_tz::Tz;

/// How many missed ticks are counted before the count is reported as "at least this many";
/// an every-second schedule down for a day would otherwise walk 86,400 ticks.
const MISSED_COUNT_CAP: u32 = 10_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CronError {
    #[error(
        "bad cron expression {expression:?}: {reason} (expected 6 or 7 fields: sec min hour day-of-month month day-of-week [year])"
    )]
    Expression { expression: String, reason: String },
    #[error("unknown time zone {0:?} (expected an IANA name such as \"Europe/Berlin\" or \"UTC\")")]
    TimeZone(String),
}

/// A parsed schedule: the expression, evaluated in its time zone, so "09:00 every weekday"
/// follows daylight-saving changes.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expression: String,
    timezone: Tz,
    schedule: cron::Schedule,
}

/// One tick chosen to fire, with the number of earlier ticks it stands in for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueTick {
    pub at: DateTime<Utc>,
    pub missed: u32,
}

impl CronSchedule {
    pub fn parse(expression: &str, timezone: &str) -> Result<CronSchedule, CronError> {
        let schedule = cron::Schedule::from_str(expression.trim())
            .map_err(|e| CronError::Expression { expression: expression.to_string(), reason: e.to_string() })?;
        let timezone = Tz::from_str(timezone.trim()).map_err(|_| CronError::TimeZone(timezone.to_string()))?;
        Ok(CronSchedule { expression: expression.trim().to_string(), timezone, schedule })
    }

    pub fn expression(&self) -> &str {
        &self.expression
    }

    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// The first tick strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule.after(&t.with_timezone(&self.timezone)).next().map(|d| d.with_timezone(&Utc))
    }

    /// The next `n` ticks strictly after `t`.
    pub fn upcoming(&self, t: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        self.schedule.after(&t.with_timezone(&self.timezone)).take(n).map(|d| d.with_timezone(&Utc)).collect()
    }

    /// The latest tick at or before `t`. Searching backwards from the next tick after `t`
    /// keeps this exact whether or not the crate's backward search includes its start.
    fn latest_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = self.next_after(t).unwrap_or(t + TimeDelta::seconds(1));
        self.schedule.after(&start.with_timezone(&self.timezone)).rev().map(|d| d.with_timezone(&Utc)).find(|d| *d <= t)
    }

    /// The ticks to fire now, given the latest tick already claimed (or the moment the
    /// schedule appeared) and the catch-up window; see the module docs for the policy.
    /// `limit` bounds one call's work; the rest is due on the next call.
    pub fn due_ticks(&self, last: DateTime<Utc>, now: DateTime<Utc>, catch_up: Duration, limit: usize) -> Vec<DueTick> {
        if now <= last {
            return Vec::new();
        }
        let window_start = now - catch_up;
        let mut recent: Vec<DueTick> = Vec::new();
        let recent_from = if last > window_start { last } else { window_start };
        let mut cursor = recent_from;
        // `recent_from` itself may be a tick inside the window that has not fired (when the
        // window, not `last`, bounds it): include it by starting a hair earlier.
        if recent_from == window_start {
            cursor = window_start - TimeDelta::nanoseconds(1);
        }
        while recent.len() < limit {
            match self.next_after(cursor) {
                Some(t) if t <= now => {
                    if t > last {
                        recent.push(DueTick { at: t, missed: 0 });
                    }
                    cursor = t;
                }
                _ => break,
            }
        }

        // Ticks older than the window: missed while nothing ran.
        let missed_before =
            if last < window_start { self.count_between(last, window_start - TimeDelta::nanoseconds(1)) } else { 0 };
        if missed_before == 0 {
            return recent;
        }
        if let Some(first) = recent.first_mut() {
            first.missed = missed_before;
            return recent;
        }
        match self.latest_at_or_before(window_start - TimeDelta::nanoseconds(1)) {
            Some(at) if at > last => vec![DueTick { at, missed: missed_before - 1 }],
            _ => recent,
        }
    }

    /// Ticks in `(after, until]`, counted up to [`MISSED_COUNT_CAP`].
    fn count_between(&self, after: DateTime<Utc>, until: DateTime<Utc>) -> u32 {
        let mut n = 0;
        for t in self.schedule.after(&after.with_timezone(&self.timezone)) {
            if t.with_timezone(&Utc) > until || n >= MISSED_COUNT_CAP {
                break;
            }
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).map(|d| d.with_timezone(&Utc)).expect("test timestamp")
    }

    fn every_second() -> CronSchedule {
        CronSchedule::parse("* * * * * *", "UTC").expect("valid")
    }

    #[test]
    fn rejects_bad_expressions_and_zones_with_reasons() {
        let e = CronSchedule::parse("* * *", "UTC").unwrap_err();
        assert!(matches!(e, CronError::Expression { .. }), "{e}");
        assert!(e.to_string().contains("6 or 7 fields"));
        let e = CronSchedule::parse("0 0 9 * * *", "Mars/Olympus").unwrap_err();
        assert_eq!(e, CronError::TimeZone("Mars/Olympus".into()));
    }

    #[test]
    fn next_fire_times_follow_the_time_zone() {
        let s = CronSchedule::parse("0 0 9 * * *", "Europe/Berlin").expect("valid");
        // 09:00 in Berlin is 08:00 UTC in winter and 07:00 UTC in summer.
        assert_eq!(s.next_after(at("2026-01-10T12:00:00Z")), Some(at("2026-01-11T08:00:00Z")));
        assert_eq!(s.next_after(at("2026-07-10T12:00:00Z")), Some(at("2026-07-11T07:00:00Z")));
        assert_eq!(
            s.upcoming(at("2026-01-10T12:00:00Z"), 2),
            vec![at("2026-01-11T08:00:00Z"), at("2026-01-12T08:00:00Z")]
        );
    }

    #[test]
    fn each_tick_after_the_last_claimed_one_is_due_once() {
        let s = every_second();
        let last = at("2026-01-01T00:00:10Z");
        let now = at("2026-01-01T00:00:13.400Z");
        let due = s.due_ticks(last, now, Duration::seconds(60), 100);
        let times: Vec<_> = due.iter().map(|d| d.at).collect();
        assert_eq!(times, vec![at("2026-01-01T00:00:11Z"), at("2026-01-01T00:00:12Z"), at("2026-01-01T00:00:13Z")]);
        assert!(due.iter().all(|d| d.missed == 0));
        assert!(s.due_ticks(at("2026-01-01T00:00:13Z"), now, Duration::seconds(60), 100).is_empty());
    }

    #[test]
    fn a_tick_exactly_now_is_due() {
        let s = every_second();
        let due = s.due_ticks(at("2026-01-01T00:00:10Z"), at("2026-01-01T00:00:11Z"), Duration::seconds(60), 100);
        assert_eq!(due, vec![DueTick { at: at("2026-01-01T00:00:11Z"), missed: 0 }]);
    }

    #[test]
    fn ticks_missed_during_an_outage_coalesce_into_one_run() {
        // Hourly schedule, engine down from 01:30 to 05:10: ticks 02..05 were missed, none
        // is inside the catch-up minute, so the 05:00 tick fires once, standing for 3 more.
        let s = CronSchedule::parse("0 0 * * * *", "UTC").expect("valid");
        let due = s.due_ticks(at("2026-01-01T01:00:00Z"), at("2026-01-01T05:10:00Z"), Duration::seconds(60), 100);
        assert_eq!(due, vec![DueTick { at: at("2026-01-01T05:00:00Z"), missed: 3 }]);
    }

    #[test]
    fn a_current_tick_stands_in_for_the_missed_ones() {
        let s = CronSchedule::parse("0 * * * * *", "UTC").expect("valid");
        // Down from 00:00:30 to 00:10:20; ticks 00:01..00:09 missed, 00:10 is within a minute.
        let due = s.due_ticks(at("2026-01-01T00:00:00Z"), at("2026-01-01T00:10:20Z"), Duration::seconds(60), 100);
        assert_eq!(due, vec![DueTick { at: at("2026-01-01T00:10:00Z"), missed: 9 }]);
    }

    #[test]
    fn the_per_call_limit_leaves_the_rest_for_later() {
        let s = every_second();
        let due = s.due_ticks(at("2026-01-01T00:00:00Z"), at("2026-01-01T00:00:30Z"), Duration::seconds(60), 5);
        assert_eq!(due.len(), 5);
        assert_eq!(due[4].at, at("2026-01-01T00:00:05Z"));
    }

    #[test]
    fn nothing_is_due_before_the_first_tick() {
        let s = CronSchedule::parse("0 0 9 * * *", "UTC").expect("valid");
        assert!(
            s.due_ticks(at("2026-01-01T09:00:00Z"), at("2026-01-01T20:00:00Z"), Duration::seconds(60), 10).is_empty()
        );
    }
}
