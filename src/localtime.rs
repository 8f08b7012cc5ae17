//! Wall-clock times of day in a zone, turned into instants, for the settings that name a
//! time of day: quiet hours (`22:00-07:00`) and the daily agenda (`07:30`).
//!
//! A time of day is read as *the first instant at which the local clock shows that time or
//! later*. That one rule answers both daylight-saving cases the way a person expects:
//! a time that happens twice (clocks go back) happens at its first occurrence, so a quiet
//! window ending at 02:30 ends once, not again an hour later; a time the clocks skip (they go
//! forward) happens when they jump past it, so a window ending at 02:30 on the night Paris
//! goes from 02:00 to 03:00 ends at 03:00, the moment 02:30 is behind the clock. (Recurring
//! events read a skipped time differently, by RFC 5545: see `recurrence.rs`. A meeting keeps
//! its length; a boundary does not need to.)

use chrono::{
    DateTime, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;

/// The first instant of `date` at which the clock in `tz` shows `time` or later.
pub fn at(tz: Tz, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let wanted = NaiveDateTime::new(date, time);
    match tz.from_local_datetime(&wanted) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => after_gap(tz, wanted),
    }
}

/// The instant the clocks jump over `wanted`: the end of the gap it falls in. Gaps begin
/// and end on whole minutes in every zone of the database; the longest (a day, Samoa in
/// 2011) bounds the search.
fn after_gap(tz: Tz, wanted: NaiveDateTime) -> DateTime<Utc> {
    let mut local = wanted;
    for _ in 0..=(24 * 60) {
        local += TimeDelta::minutes(1);
        let local_minute = local.with_second(0).unwrap_or(local);
        if let Some(t) = tz.from_local_datetime(&local_minute).earliest() {
            // The first valid minute after the gap is the transition itself.
            return t.with_timezone(&Utc);
        }
    }
    // Not reached with a real zone; read the time as UTC rather than fail.
    wanted.and_utc()
}

/// The start of local `date` in `tz` (midnight, or when the clocks jump past it).
pub fn start_of_day(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    at(tz, date, NaiveTime::MIN)
}

/// The local date of `t` in `tz`.
pub fn date_of(tz: Tz, t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn hm(s: &str) -> NaiveTime {
        NaiveTime::parse_from_str(s, "%H:%M").unwrap()
    }

    #[test]
    fn an_ordinary_time_is_that_time() {
        let paris = chrono_tz::Europe::Paris;
        assert_eq!(at(paris, d("2030-01-15"), hm("07:30")), t("2030-01-15T06:30:00Z"));
        assert_eq!(at(paris, d("2030-07-15"), hm("07:30")), t("2030-07-15T05:30:00Z"));
    }

    #[test]
    fn a_skipped_time_happens_when_the_clocks_jump_past_it() {
        // Paris, 2030-03-31: 02:00 CET becomes 03:00 CEST (01:00Z).
        let paris = chrono_tz::Europe::Paris;
        assert_eq!(at(paris, d("2030-03-31"), hm("02:30")), t("2030-03-31T01:00:00Z"));
        assert_eq!(at(paris, d("2030-03-31"), hm("02:00")), t("2030-03-31T01:00:00Z"));
        assert_eq!(at(paris, d("2030-03-31"), hm("03:00")), t("2030-03-31T01:00:00Z"));
        // Santiago skips midnight (2030-09-08 00:00 -04 becomes 01:00 -03).
        let santiago = chrono_tz::America::Santiago;
        assert_eq!(start_of_day(santiago, d("2030-09-08")), t("2030-09-08T04:00:00Z"));
    }

    #[test]
    fn a_repeated_time_happens_at_its_first_occurrence() {
        // Paris, 2030-10-27: 03:00 CEST becomes 02:00 CET (01:00Z): 02:30 happens twice.
        let paris = chrono_tz::Europe::Paris;
        assert_eq!(at(paris, d("2030-10-27"), hm("02:30")), t("2030-10-27T00:30:00Z"));
    }
}
