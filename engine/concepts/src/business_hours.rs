//! Business hours: the weekly opening times of a team in its time zone. A `wait` that names
//! them wakes at its time if that falls inside them, else at the next opening, so "wait 3
//! days, then call" does not call at 3 a.m. on a Sunday.

use chrono::{DateTime, Datelike, Duration, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `business_hours = { zone = "Europe/Berlin", days = ["mon", "tue", "wed", "thu", "fri"],
/// from = "09:00", to = "17:00" }`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BusinessHours {
    /// the IANA zone the hours are in
    pub zone: String,
    /// the open days: `mon` … `sun`; default Monday to Friday
    #[serde(default = "weekdays")]
    pub days: Vec<String>,
    /// opening, `HH:MM` local time
    pub from: String,
    /// closing, `HH:MM` local time, after `from` (the same day)
    pub to: String,
}

fn weekdays() -> Vec<String> {
    ["mon", "tue", "wed", "thu", "fri"].map(String::from).to_vec()
}

/// Business hours checked and ready to compute with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opening {
    zone: Tz,
    days: [bool; 7],
    from: NaiveTime,
    to: NaiveTime,
}

impl BusinessHours {
    /// Checks the hours; the error says which part is wrong and how to write it.
    pub fn opening(&self) -> Result<Opening, String> {
        let zone = crate::local_time::zone(&self.zone).map_err(|e| e.to_string())?;
        let time = |field: &str, text: &str| {
            NaiveTime::parse_from_str(text.trim(), "%H:%M")
                .map_err(|_| format!("`{field}` {text:?} is not a time of day such as 09:00"))
        };
        let (from, to) = (time("from", &self.from)?, time("to", &self.to)?);
        if from >= to {
            return Err(format!(
                "`from` {} must be before `to` {} (hours past midnight are not supported)",
                self.from, self.to
            ));
        }
        let mut days = [false; 7];
        for d in &self.days {
            let day: Weekday =
                d.trim().parse().map_err(|_| format!("unknown day {d:?}: use mon, tue, wed, thu, fri, sat or sun"))?;
            days[day.num_days_from_monday() as usize] = true;
        }
        if !days.contains(&true) {
            return Err("`days` names no day: the wait would never end".into());
        }
        Ok(Opening { zone, days, from, to })
    }
}

impl Opening {
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// `t` if the business is open then, else the next time it opens.
    pub fn next_open(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let local = t.with_timezone(&self.zone);
        // At most a week ahead (plus a day for a clock change) holds an open day.
        for ahead in 0..=8 {
            let date = local.date_naive() + Duration::days(ahead);
            if !self.days[date.weekday().num_days_from_monday() as usize] {
                continue;
            }
            let opens = crate::local_time::instant(self.zone, date.and_time(self.from));
            let closes = crate::local_time::instant(self.zone, date.and_time(self.to));
            if t < opens {
                return opens;
            }
            if t < closes {
                return t;
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn berlin_office() -> Opening {
        BusinessHours { zone: "Europe/Berlin".into(), days: weekdays(), from: "09:00".into(), to: "17:00".into() }
            .opening()
            .unwrap()
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    #[test]
    fn inside_the_hours_a_time_stays_and_outside_it_moves_to_the_next_opening() {
        let office = berlin_office();
        // Thursday 3 December 2026, 10:00 in Berlin (UTC+1): open.
        assert_eq!(office.next_open(utc(2026, 12, 3, 9, 0)), utc(2026, 12, 3, 9, 0));
        // 07:30 there: opens at 09:00 the same day.
        assert_eq!(office.next_open(utc(2026, 12, 3, 6, 30)), utc(2026, 12, 3, 8, 0));
        // 17:00 sharp is closed: Friday 09:00.
        assert_eq!(office.next_open(utc(2026, 12, 3, 16, 0)), utc(2026, 12, 4, 8, 0));
        // Saturday noon: Monday 09:00.
        assert_eq!(office.next_open(utc(2026, 12, 5, 11, 0)), utc(2026, 12, 7, 8, 0));
    }

    #[test]
    fn the_opening_follows_daylight_saving() {
        // Sunday 29 March 2026 Berlin moves to UTC+2: Monday opens at 07:00 UTC.
        assert_eq!(berlin_office().next_open(utc(2026, 3, 28, 12, 0)), utc(2026, 3, 30, 7, 0));
    }

    #[test]
    fn bad_hours_say_what_is_wrong() {
        let hours = |zone: &str, days: &[&str], from: &str, to: &str| {
            BusinessHours {
                zone: zone.into(),
                days: days.iter().map(|d| d.to_string()).collect(),
                from: from.into(),
                to: to.into(),
            }
            .opening()
            .unwrap_err()
        };
        assert!(hours("Europe/Berln", &["mon"], "09:00", "17:00").contains("unknown time zone"));
        assert!(hours("UTC", &["mon", "funday"], "09:00", "17:00").contains("funday"));
        assert!(hours("UTC", &[], "09:00", "17:00").contains("never"));
        assert!(hours("UTC", &["mon"], "9am", "17:00").contains("9am"));
        assert!(hours("UTC", &["mon"], "18:00", "09:00").contains("before"));
    }
}
