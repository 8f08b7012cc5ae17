//! Quiet hours: a daily window in a user's own zone (`22:00-07:00`, across midnight or
//! not) during which outgoing messages that are not urgent wait. Pure: the window, the
//! zone and the time in, the instant the window ends out.
//!
//! The window is computed as instants ([`crate::localtime::at`]) for the local day it
//! started on, not by comparing clock readings, so a night whose clocks go back ends the
//! window once, at the first 02:30, and a night whose clocks skip the end time ends it when
//! they jump past it.

use std::fmt;

use chrono::{DateTime, NaiveTime, TimeDelta, Utc};
use chrono_tz::Tz;

use crate::error::user_error;
use crate::localtime;
use crate::messages::Kind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

/// `HH:MM`, 00:00 to 23:59.
pub fn parse_hhmm(s: &str) -> anyhow::Result<NaiveTime> {
    let t = s.trim();
    let valid = t.len() == 5 && t.as_bytes()[2] == b':';
    valid
        .then(|| NaiveTime::parse_from_str(t, "%H:%M").ok())
        .flatten()
        .ok_or_else(|| {
            user_error(format!(
                "invalid time of day '{}': use HH:MM, like 07:30",
                crate::input::printable(s, 20)
            ))
        })
}

impl QuietHours {
    /// `22:00-07:00`; the same start and end is refused (a window of nothing, or of all day).
    pub fn parse(s: &str) -> anyhow::Result<QuietHours> {
        let bad = || {
            user_error(format!(
                "invalid quiet hours '{}': use HH:MM-HH:MM in the user's zone, like 22:00-07:00 (or none)",
                crate::input::printable(s, 30)
            ))
        };
        let (a, b) = s.trim().split_once('-').ok_or_else(bad)?;
        let (start, end) = (
            parse_hhmm(a).map_err(|_| bad())?,
            parse_hhmm(b).map_err(|_| bad())?,
        );
        if start == end {
            return Err(user_error(format!(
                "invalid quiet hours '{}': the start and the end are the same",
                crate::input::printable(s, 30)
            )));
        }
        Ok(QuietHours { start, end })
    }

    /// When the window that holds `now` ends, or `None` when `now` is outside it.
    pub fn until(&self, now: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let today = localtime::date_of(tz, now);
        // A window that crosses midnight may have started yesterday.
        for day in [today - TimeDelta::days(1), today] {
            let start = localtime::at(tz, day, self.start);
            let end_day = if self.end > self.start {
                day
            } else {
                day + TimeDelta::days(1)
            };
            let end = localtime::at(tz, end_day, self.end);
            if start <= now && now < end {
                return Some(end);
            }
        }
        None
    }
}

/// Whether a message of `kind` may wait until `until`, the end of the recipient's quiet
/// hours. Never: reminders and cancellations (they are about now), and a move of an event
/// less than a day away. Nor any notice about an event that would start before it arrives.
/// The others — assignments, moves more than a day ahead, custom notices and the agenda —
/// wait.
pub fn may_wait(
    kind: Kind,
    event_start: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> bool {
    let before_start = event_start.is_none_or(|start| until < start);
    match kind {
        Kind::Reminder | Kind::Cancelled => false,
        Kind::Rescheduled => {
            event_start.is_some_and(|start| start - now > TimeDelta::days(1)) && before_start
        }
        Kind::Assigned | Kind::Custom | Kind::Agenda => before_start,
    }
}

impl fmt::Display for QuietHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start.format("%H:%M"), self.end.format("%H:%M"))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn q(s: &str) -> QuietHours {
        QuietHours::parse(s).unwrap()
    }

    #[test]
    fn parses_and_refuses() {
        assert_eq!(q("22:00-07:00").to_string(), "22:00-07:00");
        assert_eq!(q(" 09:15-10:45 ").to_string(), "09:15-10:45");
        for bad in [
            "",
            "22-07",
            "22:00",
            "22:00-7:00",
            "24:00-07:00",
            "22:60-07:00",
            "07:00-07:00",
            "a-b",
        ] {
            assert!(QuietHours::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn across_midnight() {
        let paris = chrono_tz::Europe::Paris;
        let w = q("22:00-07:00");
        // 23:00 Paris (winter, UTC+1): until 07:00 the next morning.
        assert_eq!(
            w.until(t("2030-01-15T22:00:00Z"), paris),
            Some(t("2030-01-16T06:00:00Z"))
        );
        // 03:00: the window that started yesterday.
        assert_eq!(
            w.until(t("2030-01-16T02:00:00Z"), paris),
            Some(t("2030-01-16T06:00:00Z"))
        );
        // 07:00 sharp and the day: outside.
        assert_eq!(w.until(t("2030-01-16T06:00:00Z"), paris), None);
        assert_eq!(w.until(t("2030-01-16T12:00:00Z"), paris), None);
        // 22:00 sharp: inside.
        assert_eq!(
            w.until(t("2030-01-16T21:00:00Z"), paris),
            Some(t("2030-01-17T06:00:00Z"))
        );
    }

    #[test]
    fn within_a_day() {
        let w = q("12:00-14:00");
        let utc = chrono_tz::UTC;
        assert_eq!(
            w.until(t("2030-01-16T13:00:00Z"), utc),
            Some(t("2030-01-16T14:00:00Z"))
        );
        assert_eq!(w.until(t("2030-01-16T14:00:00Z"), utc), None);
        assert_eq!(w.until(t("2030-01-16T11:59:00Z"), utc), None);
    }

    #[test]
    fn an_end_the_clocks_repeat_ends_the_window_once() {
        // Paris, 2030-10-27: 03:00 CEST becomes 02:00 CET at 01:00Z, so 02:00-03:00 happens
        // twice. Quiet until 02:30: the first 02:30 (00:30Z) ends it.
        let paris = chrono_tz::Europe::Paris;
        let w = q("22:00-02:30");
        assert_eq!(
            w.until(t("2030-10-26T21:00:00Z"), paris),
            Some(t("2030-10-27T00:30:00Z"))
        );
        assert_eq!(
            w.until(t("2030-10-27T00:29:00Z"), paris),
            Some(t("2030-10-27T00:30:00Z"))
        );
        // 02:45 CEST, then 02:15 CET (the second pass): over.
        assert_eq!(w.until(t("2030-10-27T00:45:00Z"), paris), None);
        assert_eq!(w.until(t("2030-10-27T01:15:00Z"), paris), None);
    }

    #[test]
    fn an_end_the_clocks_skip_ends_the_window_when_they_jump() {
        // Paris, 2030-03-31: 02:00 CET becomes 03:00 CEST at 01:00Z: 02:30 never shows.
        let paris = chrono_tz::Europe::Paris;
        let w = q("22:00-02:30");
        assert_eq!(
            w.until(t("2030-03-30T22:00:00Z"), paris),
            Some(t("2030-03-31T01:00:00Z"))
        );
        assert_eq!(w.until(t("2030-03-31T01:00:00Z"), paris), None);
        // The next night is ordinary again (CEST, UTC+2).
        assert_eq!(
            w.until(t("2030-03-31T21:00:00Z"), paris),
            Some(t("2030-04-01T00:30:00Z"))
        );
    }

    #[test]
    fn what_waits() {
        let now = t("2030-01-15T22:00:00Z");
        let until = t("2030-01-16T06:00:00Z");
        let in_days = Some(t("2030-01-20T09:00:00Z"));
        let tonight = Some(t("2030-01-16T02:00:00Z"));
        let tomorrow_noon = Some(t("2030-01-16T12:00:00Z"));
        assert!(!may_wait(Kind::Reminder, in_days, now, until));
        assert!(!may_wait(Kind::Cancelled, in_days, now, until));
        assert!(may_wait(Kind::Rescheduled, in_days, now, until));
        assert!(
            !may_wait(Kind::Rescheduled, tomorrow_noon, now, until),
            "within a day"
        );
        assert!(may_wait(Kind::Assigned, tomorrow_noon, now, until));
        assert!(
            !may_wait(Kind::Assigned, tonight, now, until),
            "it would start first"
        );
        assert!(may_wait(Kind::Custom, None, now, until));
        assert!(may_wait(Kind::Agenda, None, now, until));
    }

    /// Every half hour of 2030 (every five minutes around the changes), in zones with odd
    /// daylight-saving rules: outside the window nothing waits; inside it, the end is later
    /// than now, at most a day (plus a DST hour) away, and not itself inside the window.
    #[test]
    fn the_end_is_always_ahead_and_outside_the_window() {
        let zones = [
            chrono_tz::Europe::Paris,
            chrono_tz::America::New_York,
            chrono_tz::Australia::Lord_Howe,
            chrono_tz::America::Santiago,
            chrono_tz::Pacific::Chatham,
        ];
        let windows = [
            "22:00-07:00",
            "00:00-02:30",
            "02:00-03:00",
            "12:00-14:00",
            "23:59-00:00",
        ];
        let start = t("2030-01-01T00:00:00Z");
        for tz in zones {
            for w in windows.map(q) {
                let mut now = start;
                while now < t("2031-01-01T00:00:00Z") {
                    if let Some(end) = w.until(now, tz) {
                        assert!(end > now, "{w} {tz} at {now}: ends at {end}");
                        assert!(end - now <= TimeDelta::hours(25), "{w} {tz} at {now}: {end}");
                        assert_eq!(w.until(end, tz), None, "{w} {tz}: {end} is still quiet");
                    }
                    let near_change = tz.offset_from_utc_datetime(&(now + TimeDelta::hours(3)).naive_utc())
                        != tz.offset_from_utc_datetime(&(now - TimeDelta::hours(3)).naive_utc());
                    now += if near_change {
                        TimeDelta::minutes(5)
                    } else {
                        TimeDelta::minutes(30)
                    };
                }
            }
        }
    }

    #[test]
    fn the_zone_decides() {
        let w = q("22:00-07:00");
        let ny = chrono_tz::America::New_York;
        // 23:00 New York in winter is 04:00Z: until 07:00 local = 12:00Z.
        assert_eq!(
            w.until(t("2030-01-16T04:00:00Z"), ny),
            Some(t("2030-01-16T12:00:00Z"))
        );
    }
}
