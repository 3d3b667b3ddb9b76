//! "Today" for a person: the calendar day in their time zone, as an instant range.

use chrono_tz::Tz;
use crm_concepts::user::User;

pub use crm_concepts::local_time::day_bounds;

/// The zone a user's days are counted in and their times shown in: their own setting.
pub fn zone_of(user: &User) -> Tz {
    user.zone()
}
