//! Pure reminder planning: given a participant's event, the offsets, the grace period and
//! the time, decide which reminders to send now and which to record as skipped.
//!
//! No I/O here, so the rules that matter — due, missed, collapsed, armed late — are
//! unit-tested exhaustively. The tick (`service/tick.rs`) and `plan` both call [`decide`].
//!
//! The rules, for one participant of one scheduled event and each offset not yet decided
//! for the event's current start:
//! - the reminder is *due* once `start - offset <= now`; once the event has started it
//!   can only be recorded as skipped (`late`), never sent;
//! - if its moment came before the participant was added or the event was moved to this
//!   start (`armed_at`), it is skipped (`armed_late`): the assignment or reschedule notice
//!   just told them;
//! - when several are due at once, only the latest offset (closest to the start) may be
//!   sent; the others are skipped (`collapsed`), so nobody gets "in 30 minutes" two
//!   minutes before the start;
//! - the one left is sent if it is less than `grace` late, else skipped (`late`).

use chrono::{DateTime, TimeDelta, Utc};

pub use crate::model::Candidate;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    Late,
    Collapsed,
    ArmedLate,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Late => "late",
            SkipReason::Collapsed => "collapsed",
            SkipReason::ArmedLate => "armed_late",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Send,
    Skip(SkipReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub event_id: i64,
    pub user_id: i64,
    pub offset_minutes: i64,
    pub event_start: DateTime<Utc>,
    /// An occurrence of a series: its original start.
    pub occurrence: Option<DateTime<Utc>>,
    pub due_at: DateTime<Utc>,
    pub action: Action,
}

/// What to do now for one candidate. `offsets` are in minutes, in any order: the event's
/// own (`Candidate::offsets_or`), else the config's.
pub fn decide(c: &Candidate, offsets: &[i64], grace: TimeDelta, now: DateTime<Utc>) -> Vec<Decision> {
    let started = now >= c.event_start;
    let mut due: Vec<i64> = offsets
        .iter()
        .copied()
        .filter(|o| !c.decided.contains(o) && c.event_start - TimeDelta::minutes(*o) <= now)
        .collect();
    due.sort_unstable_by(|a, b| b.cmp(a));
    due.dedup();
    let Some(&latest) = due.last() else {
        return Vec::new();
    };
    due.iter()
        .map(|&offset| {
            let due_at = c.event_start - TimeDelta::minutes(offset);
            let action = if due_at < c.armed_at {
                Action::Skip(SkipReason::ArmedLate)
            } else if started {
                Action::Skip(SkipReason::Late)
            } else if offset != latest {
                Action::Skip(SkipReason::Collapsed)
            } else if now - due_at >= grace {
                Action::Skip(SkipReason::Late)
            } else {
                Action::Send
            };
            Decision {
                event_id: c.event_id,
                user_id: c.user_id,
                offset_minutes: offset,
                event_start: c.event_start,
                occurrence: c.occurrence,
                due_at,
                action,
            }
        })
        .collect()
}

/// When a tick run every minute will decide each pending reminder of `c`, up to `until`:
/// the same [`decide`] evaluated at each reminder's moment, so `plan` shows exactly what
/// the ticks will do (collapses and armed-late skips included).
pub fn forecast(
    c: &Candidate,
    offsets: &[i64],
    grace: TimeDelta,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<Decision> {
    let mut c = c.clone();
    let mut moments: Vec<DateTime<Utc>> = offsets
        .iter()
        .map(|o| c.event_start - TimeDelta::minutes(*o))
        .filter(|t| *t > now && *t <= until)
        .collect();
    moments.sort_unstable();
    moments.dedup();
    moments.insert(0, now);
    let mut out = Vec::new();
    for at in moments {
        let decisions = decide(&c, offsets, grace, at);
        c.decided.extend(decisions.iter().map(|d| d.offset_minutes));
        out.extend(decisions.into_iter().map(|mut d| {
            // Decided at the first tick at or after its moment.
            d.due_at = d.due_at.max(now);
            d
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn cand(start: &str, armed: &str, decided: &[i64]) -> Candidate {
        Candidate {
            event_id: 1,
            user_id: 7,
            event_start: t(start),
            armed_at: t(armed),
            decided: decided.to_vec(),
            offsets: None,
            occurrence: None,
        }
    }

    const OFFSETS: [i64; 2] = [30, 5];
    const START: &str = "2030-03-10T11:00:00Z";
    const ARMED: &str = "2030-03-01T00:00:00Z";

    fn actions(c: &Candidate, now: &str) -> Vec<(i64, Action)> {
        decide(c, &OFFSETS, TimeDelta::minutes(10), t(now))
            .into_iter()
            .map(|d| (d.offset_minutes, d.action))
            .collect()
    }

    #[test]
    fn nothing_is_due_before_the_first_moment() {
        assert!(actions(&cand(START, ARMED, &[]), "2030-03-10T10:29:59Z").is_empty());
    }

    #[test]
    fn thirty_minute_reminder_is_due_at_its_moment() {
        assert_eq!(
            actions(&cand(START, ARMED, &[]), "2030-03-10T10:30:00Z"),
            vec![(30, Action::Send)]
        );
    }

    #[test]
    fn decided_offsets_are_never_decided_again() {
        assert!(actions(&cand(START, ARMED, &[30]), "2030-03-10T10:31:00Z").is_empty());
        assert_eq!(
            actions(&cand(START, ARMED, &[30]), "2030-03-10T10:55:00Z"),
            vec![(5, Action::Send)]
        );
        assert!(actions(&cand(START, ARMED, &[30, 5]), "2030-03-10T10:56:00Z").is_empty());
    }

    #[test]
    fn missed_tick_still_sends_within_grace() {
        assert_eq!(
            actions(&cand(START, ARMED, &[]), "2030-03-10T10:39:59Z"),
            vec![(30, Action::Send)]
        );
    }

    #[test]
    fn a_reminder_grace_or_more_late_is_skipped() {
        assert_eq!(
            actions(&cand(START, ARMED, &[]), "2030-03-10T10:40:00Z"),
            vec![(30, Action::Skip(SkipReason::Late))]
        );
    }

    #[test]
    fn only_the_latest_offset_goes_when_several_are_due() {
        assert_eq!(
            actions(&cand(START, ARMED, &[]), "2030-03-10T10:57:00Z"),
            vec![(30, Action::Skip(SkipReason::Collapsed)), (5, Action::Send)]
        );
    }

    #[test]
    fn after_the_start_undecided_reminders_are_recorded_late_never_sent() {
        assert_eq!(
            actions(&cand(START, ARMED, &[]), "2030-03-10T11:00:00Z"),
            vec![
                (30, Action::Skip(SkipReason::Late)),
                (5, Action::Skip(SkipReason::Late))
            ]
        );
        assert_eq!(
            actions(&cand(START, ARMED, &[30]), "2030-03-10T12:00:00Z"),
            vec![(5, Action::Skip(SkipReason::Late))]
        );
    }

    #[test]
    fn reminder_due_before_assignment_is_not_sent() {
        let c = cand(START, "2030-03-10T10:45:00Z", &[]);
        assert_eq!(
            actions(&c, "2030-03-10T10:46:00Z"),
            vec![(30, Action::Skip(SkipReason::ArmedLate))]
        );
        assert_eq!(
            actions(&c, "2030-03-10T10:55:00Z"),
            vec![(30, Action::Skip(SkipReason::ArmedLate)), (5, Action::Send)]
        );
    }

    #[test]
    fn assignment_exactly_at_the_moment_still_sends() {
        let c = cand(START, "2030-03-10T10:30:00Z", &[]);
        assert_eq!(actions(&c, "2030-03-10T10:30:00Z"), vec![(30, Action::Send)]);
    }

    #[test]
    fn forecast_walks_the_moments_with_the_same_rules() {
        let c = cand(START, ARMED, &[]);
        let f = forecast(
            &c,
            &OFFSETS,
            TimeDelta::minutes(10),
            t("2030-03-10T10:00:00Z"),
            t("2030-03-10T12:00:00Z"),
        );
        let got: Vec<(i64, DateTime<Utc>, Action)> =
            f.iter().map(|d| (d.offset_minutes, d.due_at, d.action)).collect();
        assert_eq!(
            got,
            vec![
                (30, t("2030-03-10T10:30:00Z"), Action::Send),
                (5, t("2030-03-10T10:55:00Z"), Action::Send)
            ]
        );
        // Starting late: the overdue 30-minute one is decided by the very next tick.
        let f = forecast(
            &c,
            &OFFSETS,
            TimeDelta::minutes(10),
            t("2030-03-10T10:52:00Z"),
            t("2030-03-10T12:00:00Z"),
        );
        let got: Vec<(i64, Action)> = f.iter().map(|d| (d.offset_minutes, d.action)).collect();
        assert_eq!(got, vec![(30, Action::Skip(SkipReason::Late)), (5, Action::Send)]);
    }

    #[test]
    fn custom_offsets_in_any_order() {
        let c = cand(START, ARMED, &[]);
        let d = decide(
            &c,
            &[5, 60, 1440],
            TimeDelta::minutes(10),
            t("2030-03-10T10:01:00Z"),
        );
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].offset_minutes, 1440);
        assert_eq!(d[0].action, Action::Skip(SkipReason::Collapsed));
        assert_eq!(d[1].offset_minutes, 60);
        assert_eq!(d[1].action, Action::Send);
    }
}
