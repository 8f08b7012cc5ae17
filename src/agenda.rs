//! The daily agenda's timing: when a zone's agenda for a local day is due, and which
//! instants that day spans. Pure: the zone, the time of day, the grace and the clock in.
//!
//! An agenda for local date D in zone Z is due from D at `[agenda] at` (read as
//! [`localtime::at`] reads it, so a daylight-saving night moves it with the clocks) until
//! `grace` later: a tick that runs in that window sends it, a later one does not (a morning
//! agenda at noon would list events already over). The agenda lists the events that start
//! on D, between the two local midnights.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use chrono_tz::Tz;

use crate::localtime;

/// The local dates whose agenda is due at `now` in `tz` (at most two, with a grace that
/// reaches past midnight).
pub fn due_dates(tz: Tz, at: NaiveTime, grace: TimeDelta, now: DateTime<Utc>) -> Vec<NaiveDate> {
    let today = localtime::date_of(tz, now);
    [today - TimeDelta::days(1), today]
        .into_iter()
        .filter(|&date| {
            let moment = localtime::at(tz, date, at);
            moment <= now && now < moment + grace
        })
        .collect()
}

/// The agenda moments in `tz` after `after` up to `until`: (moment, local date).
pub fn moments(
    tz: Tz,
    at: NaiveTime,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, NaiveDate)> {
    let mut out = Vec::new();
    let mut date = localtime::date_of(tz, after) - TimeDelta::days(1);
    let last = localtime::date_of(tz, until) + TimeDelta::days(1);
    while date <= last {
        let moment = localtime::at(tz, date, at);
        if moment > after && moment <= until {
            out.push((moment, date));
        }
        date += TimeDelta::days(1);
    }
    out
}

/// The instants local date `date` spans in `tz`: [its start, the next day's start).
pub fn day(tz: Tz, date: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    (
        localtime::start_of_day(tz, date),
        localtime::start_of_day(tz, date + TimeDelta::days(1)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn hm(s: &str) -> NaiveTime {
        NaiveTime::parse_from_str(s, "%H:%M").unwrap()
    }

    #[test]
    fn due_from_the_moment_until_grace() {
        let paris = chrono_tz::Europe::Paris;
        let grace = TimeDelta::hours(1);
        let date: NaiveDate = "2030-03-11".parse().unwrap();
        // 07:30 in Paris (winter) is 06:30Z.
        assert!(due_dates(paris, hm("07:30"), grace, t("2030-03-11T06:29:00Z")).is_empty());
        assert_eq!(
            due_dates(paris, hm("07:30"), grace, t("2030-03-11T06:30:00Z")),
            vec![date]
        );
        assert_eq!(
            due_dates(paris, hm("07:30"), grace, t("2030-03-11T07:29:00Z")),
            vec![date]
        );
        assert!(due_dates(paris, hm("07:30"), grace, t("2030-03-11T07:30:00Z")).is_empty());
        // The same instant, New York: not its morning.
        let ny = chrono_tz::America::New_York;
        assert!(due_dates(ny, hm("07:30"), grace, t("2030-03-11T06:30:00Z")).is_empty());
        assert_eq!(
            due_dates(ny, hm("07:30"), grace, t("2030-03-11T11:30:00Z")),
            vec![date],
            "07:30 EDT (New York moved its clocks on March 10)"
        );
    }

    #[test]
    fn a_late_evening_agenda_is_due_past_midnight() {
        let utc = chrono_tz::UTC;
        let dates = due_dates(
            utc,
            hm("23:50"),
            TimeDelta::minutes(30),
            t("2030-03-12T00:10:00Z"),
        );
        assert_eq!(dates, vec!["2030-03-11".parse::<NaiveDate>().unwrap()]);
    }

    #[test]
    fn the_agenda_keeps_its_wall_clock_time_across_daylight_saving_nights() {
        let paris = chrono_tz::Europe::Paris;
        let grace = TimeDelta::minutes(30);
        // 2030-03-31: CET to CEST; 07:30 is 05:30Z that morning (06:30Z the day before).
        let spring: NaiveDate = "2030-03-31".parse().unwrap();
        assert!(due_dates(paris, hm("07:30"), grace, t("2030-03-31T06:30:00Z")).is_empty());
        assert_eq!(
            due_dates(paris, hm("07:30"), grace, t("2030-03-31T05:30:00Z")),
            vec![spring]
        );
        // An agenda at 02:30, which that night skips, is due when the clocks jump (01:00Z).
        assert_eq!(
            due_dates(paris, hm("02:30"), grace, t("2030-03-31T01:00:00Z")),
            vec![spring]
        );
        // 2030-10-27: CEST to CET; 07:30 is 06:30Z; 02:30 happens twice, the first counts.
        let autumn: NaiveDate = "2030-10-27".parse().unwrap();
        assert_eq!(
            due_dates(paris, hm("07:30"), grace, t("2030-10-27T06:30:00Z")),
            vec![autumn]
        );
        assert_eq!(
            due_dates(paris, hm("02:30"), grace, t("2030-10-27T00:30:00Z")),
            vec![autumn]
        );
        assert!(
            due_dates(paris, hm("02:30"), grace, t("2030-10-27T01:30:00Z")).is_empty(),
            "not again at the second 02:30"
        );
        // The day itself is 23 and 25 hours long.
        let (a, b) = day(paris, spring);
        assert_eq!(b - a, TimeDelta::hours(23));
        let (a, b) = day(paris, autumn);
        assert_eq!(b - a, TimeDelta::hours(25));
    }

    #[test]
    fn a_day_spans_its_local_midnights() {
        let paris = chrono_tz::Europe::Paris;
        let (from, to) = day(paris, "2030-03-31".parse().unwrap());
        assert_eq!((from, to), (t("2030-03-30T23:00:00Z"), t("2030-03-31T22:00:00Z")));
    }

    #[test]
    fn moments_in_a_window() {
        let paris = chrono_tz::Europe::Paris;
        let m = moments(
            paris,
            hm("07:30"),
            t("2030-03-11T00:00:00Z"),
            t("2030-03-12T12:00:00Z"),
        );
        assert_eq!(
            m.iter().map(|(at, _)| *at).collect::<Vec<_>>(),
            vec![t("2030-03-11T06:30:00Z"), t("2030-03-12T06:30:00Z")]
        );
    }
}
