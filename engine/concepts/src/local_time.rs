//! Times as a person reads and types them: in their IANA time zone. Instants are stored in
//! UTC; only the edges (the bot, the web pages) convert, and they say which zone a time is
//! in only when it is not the reader's own.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone {0:?}: use an IANA name such as Europe/Berlin, America/New_York or UTC")]
pub struct UnknownZone(pub String);

/// A zone by its IANA name, case-insensitively (`europe/berlin` is `Europe/Berlin`).
pub fn zone(name: &str) -> Result<Tz, UnknownZone> {
    let name = name.trim();
    name.parse::<Tz>()
        .ok()
        .or_else(|| chrono_tz::TZ_VARIANTS.iter().copied().find(|z| z.name().eq_ignore_ascii_case(name)))
        .ok_or_else(|| UnknownZone(name.to_string()))
}

/// The instant a wall-clock time in `zone` names. A time skipped by a daylight-saving jump
/// (02:30 on a spring-forward night) is taken as the first instant after the gap; a repeated
/// one (autumn) as its earlier occurrence.
pub fn instant(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut probe = local;
    for _ in 0..=4 {
        if let Some(t) = zone.from_local_datetime(&probe).earliest() {
            return t.with_timezone(&Utc);
        }
        probe += Duration::minutes(30);
    }
    Utc.from_utc_datetime(&local)
}

/// The start and end (exclusive) of the day `now` falls on in `zone`, as UTC instants. A
/// day is not always 24 hours long: across a daylight-saving change it is 23 or 25.
pub fn day_bounds(zone: Tz, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let local_date = now.with_timezone(&zone).date_naive();
    let start_of = |date: NaiveDate| instant(zone, date.and_time(NaiveTime::MIN));
    (start_of(local_date), start_of(local_date + Duration::days(1)))
}

/// The calendar day `now` is in `zone`.
pub fn today(zone: Tz, now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&zone).date_naive()
}

/// `2026-12-03 09:30` in the reader's zone; `2026-12-03 09:30 (Asia/Tokyo)` when `shown_in`
/// is another zone than the reader's.
pub fn format(t: DateTime<Utc>, shown_in: Tz, reader: Tz) -> String {
    let local = t.with_timezone(&shown_in).format("%Y-%m-%d %H:%M");
    if shown_in == reader { local.to_string() } else { format!("{local} ({})", shown_in.name()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_are_found_by_their_iana_name_in_any_case() {
        assert_eq!(zone("Europe/Berlin").unwrap(), chrono_tz::Europe::Berlin);
        assert_eq!(zone(" asia/tokyo ").unwrap(), chrono_tz::Asia::Tokyo);
        assert_eq!(zone("UTC").unwrap(), Tz::UTC);
        let err = zone("Mars/Olympus").unwrap_err().to_string();
        assert!(err.contains("Mars/Olympus") && err.contains("Europe/Berlin"), "{err}");
        assert!(zone("").is_err());
    }

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
        assert_eq!(today(chrono_tz::Europe::Berlin, now), NaiveDate::from_ymd_opt(2026, 3, 29).unwrap());
    }

    #[test]
    fn a_skipped_local_time_lands_after_the_gap_and_a_repeated_one_on_its_first_occurrence() {
        let berlin = chrono_tz::Europe::Berlin;
        let gap = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap().and_hms_opt(2, 30, 0).unwrap();
        assert_eq!(instant(berlin, gap), Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap());
        let twice = NaiveDate::from_ymd_opt(2026, 10, 25).unwrap().and_hms_opt(2, 30, 0).unwrap();
        assert_eq!(instant(berlin, twice), Utc.with_ymd_and_hms(2026, 10, 25, 0, 30, 0).unwrap());
    }

    #[test]
    fn the_zone_is_named_only_when_it_is_not_the_readers() {
        let t = Utc.with_ymd_and_hms(2026, 12, 3, 0, 30, 0).unwrap();
        let tokyo = chrono_tz::Asia::Tokyo;
        assert_eq!(format(t, tokyo, tokyo), "2026-12-03 09:30");
        assert_eq!(format(t, Tz::UTC, tokyo), "2026-12-03 00:30 (UTC)");
    }
}
