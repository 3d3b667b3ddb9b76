//! "Today" for a person: the calendar day in their time zone, as an instant range.
//!
//! Users carry no time zone yet (one is coming as `users.time_zone`); until then
//! [`zone_of`] answers UTC for everyone, and this is the one place to change when it lands.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use crm_concepts::user::User;

/// The zone a user's days are counted in.
pub fn zone_of(_user: &User) -> Tz {
    Tz::UTC
}

/// The start and end (exclusive) of the day `now` falls on in `zone`, as UTC instants. A
/// day is not always 24 hours long: across a daylight-saving change it is 23 or 25.
pub fn day_bounds(zone: Tz, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let local_date = now.with_timezone(&zone).date_naive();
    let start_of = |date: chrono::NaiveDate| {
        // Midnight may not exist (a zone that springs forward at 00:00): take the first
        // instant of the day that does.
        let naive = date.and_time(NaiveTime::MIN);
        zone.from_local_datetime(&naive)
            .earliest()
            .or_else(|| zone.from_local_datetime(&(naive + Duration::hours(1))).earliest())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| Utc.from_utc_datetime(&naive))
    };
    (start_of(local_date), start_of(local_date + Duration::days(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_utc_day() {
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 9, 30, 0).unwrap();
        let (start, end) = day_bounds(Tz::UTC, now);
        assert_eq!(start, Utc.with_ymd_and_hms(2026, 12, 3, 0, 0, 0).unwrap());
        assert_eq!(end, Utc.with_ymd_and_hms(2026, 12, 4, 0, 0, 0).unwrap());
    }

    #[test]
    fn a_day_in_another_zone_and_across_daylight_saving() {
        // 23:30 UTC on 28 March is already 29 March in Berlin, a 23-hour day there.
        let now = Utc.with_ymd_and_hms(2026, 3, 28, 23, 30, 0).unwrap();
        let (start, end) = day_bounds(chrono_tz::Europe::Berlin, now);
        assert_eq!(start, Utc.with_ymd_and_hms(2026, 3, 28, 23, 0, 0).unwrap());
        assert_eq!(end - start, Duration::hours(23));
    }
}
