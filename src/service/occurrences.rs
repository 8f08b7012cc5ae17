//! The reminder candidates of recurring series: their occurrences are expanded here, in
//! each series' zone (`recurrence::Series`), never stored. The tick and `plan` read the live
//! series a page at a time (`ReminderOps::series_in_window`: an ended series is never read),
//! expand each over the window, and only for a series with an occurrence there read its
//! participants and the reminders already decided (`ReminderOps::occurrence_candidates`).
//! So a tick costs one expansion per live series, and an unbounded series costs the same in
//! its tenth year as in its first: nothing grows with its age.

use chrono::{DateTime, TimeDelta, Utc};

use super::report::Reporter;
use crate::model::{Candidate, Event, ExceptionStatus};
use crate::recurrence::Occurrence;
use crate::store::{BrokenRow, Ops};

/// Series read per page.
const PAGE: u32 = 500;

/// The occurrences of `event` whose reminders may be due in the window: starting in
/// (after, until], and, with `lead` (the config's offsets), up to `until` plus the series'
/// largest offset. `None` for a series with no reminders at all.
pub fn occurrences_in_window(
    event: &Event,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
    lead: Option<&[i64]>,
) -> Result<Vec<Occurrence>, String> {
    let Some(series) = event.series()? else {
        return Ok(Vec::new());
    };
    let reach = match lead {
        Some(default) => {
            let Some(largest) = event.offsets_or(default).iter().copied().max() else {
                return Ok(Vec::new());
            };
            until + TimeDelta::minutes(largest)
        }
        None => until,
    };
    let second = TimeDelta::seconds(1);
    Ok(series.occurrences(after + second, reach + second, &event.rule_exceptions()))
}

/// The window a caller walks the series' candidates over (see [`occurrences_in_window`]).
#[derive(Debug, Clone, Copy)]
pub struct SeriesWindow<'a> {
    pub after: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// The config's offsets, when the window reaches ahead by each series' largest.
    pub lead: Option<&'a [i64]>,
}

/// One page of live series after `cursor`, turned into the candidates of their occurrences
/// in the window; and where the next page starts (`None`: this was the last).
pub fn series_page(
    ops: &mut dyn Ops,
    reporter: &Reporter,
    w: &SeriesWindow,
    cursor: Option<i64>,
) -> anyhow::Result<(Vec<Candidate>, Option<i64>)> {
    let series = ops.series_in_window(w.after, cursor, PAGE)?;
    for b in &series.broken {
        reporter.broken(b);
    }
    let mut candidates = Vec::new();
    for event in &series.series {
        let occurrences = match occurrences_in_window(event, w.after, w.until, w.lead) {
            Ok(o) => o,
            Err(why) => {
                reporter.broken(&broken_rule(event, why));
                continue;
            }
        };
        let (Some(first), Some(last)) = (occurrences.first(), occurrences.last()) else {
            continue;
        };
        let people = ops.occurrence_candidates(event.id, first.start, last.start)?;
        for b in &people.broken {
            reporter.broken(b);
        }
        for o in &occurrences {
            candidates.extend(people.participants.iter().map(|(user_id, added_at)| {
                occurrence_candidate(event, o, *user_id, *added_at, &people.decided)
            }));
        }
    }
    Ok((candidates, series.next))
}

/// One participant of one occurrence, as the planner sees it.
pub fn occurrence_candidate(
    event: &Event,
    o: &Occurrence,
    user_id: i64,
    added_at: DateTime<Utc>,
    decided: &[(i64, DateTime<Utc>, i64)],
) -> Candidate {
    // A moved occurrence is re-armed when it moved.
    let moved_at = event
        .exceptions
        .iter()
        .filter(|x| x.original_start == o.original_start && x.status == ExceptionStatus::Moved)
        .map(|x| x.armed_at)
        .max();
    let armed_at = event
        .armed_at
        .max(added_at)
        .max(moved_at.unwrap_or(event.armed_at));
    Candidate {
        event_id: event.id,
        user_id,
        event_start: o.start,
        armed_at,
        decided: decided
            .iter()
            .filter(|(u, start, _)| *u == user_id && *start == o.start)
            .map(|(_, _, offset)| *offset)
            .collect(),
        offsets: event.remind_offsets.clone(),
        occurrence: Some(o.original_start),
    }
}

/// A series whose stored rule cannot be expanded, as a report line.
pub fn broken_rule(event: &Event, why: String) -> BrokenRow {
    BrokenRow {
        table: "events",
        id: format!("id {}", event.id),
        column: "repeat_rule".into(),
        problem: format!("{why}: this series gets no reminders"),
        value: crate::input::printable(event.repeat_rule.as_deref().unwrap_or(""), 80),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventException, EventStatus};

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("a time")
            .with_timezone(&Utc)
    }

    /// A weekly 09:30 Paris series from Monday 2030-03-18 (08:30 UTC, 07:30 UTC after the
    /// clocks change on 31 March).
    fn series(offsets: Option<Vec<i64>>) -> Event {
        let t = utc("2030-03-01T00:00:00Z");
        Event {
            id: 7,
            title: "Weekly".into(),
            starts_at: utc("2030-03-18T08:30:00Z"),
            ends_at: utc("2030-03-18T09:30:00Z"),
            timezone: Some("Europe/Paris".into()),
            video_url: None,
            status: EventStatus::Scheduled,
            sequence: 0,
            created_at: t,
            updated_at: t,
            participants: Vec::new(),
            remind_offsets: offsets,
            repeat_rule: Some("FREQ=WEEKLY".into()),
            series_end: None,
            exceptions: Vec::new(),
            armed_at: t,
        }
    }

    fn starts(o: &[Occurrence]) -> Vec<DateTime<Utc>> {
        o.iter().map(|o| o.start).collect()
    }

    #[test]
    fn the_window_reaches_ahead_by_the_series_largest_offset() {
        let e = series(Some(vec![1440, 10]));
        let now = utc("2030-03-31T08:00:00Z");
        // Due within a day: the occurrence of 1 April (07:30 UTC, after the change).
        let got = occurrences_in_window(&e, now, now, Some(&[30])).expect("a series");
        assert_eq!(starts(&got), [utc("2030-04-01T07:30:00Z")]);
        // The config's offsets (30m) when the series has none of its own.
        let e = series(None);
        assert!(occurrences_in_window(&e, now, now, Some(&[30]))
            .unwrap()
            .is_empty());
        // `--remind none`: nothing to decide, however far ahead.
        let e = series(Some(vec![]));
        assert!(occurrences_in_window(&e, now, now, Some(&[30]))
            .unwrap()
            .is_empty());
        // History (no lead): the occurrences that started in (after, until].
        let e = series(None);
        let got = occurrences_in_window(&e, utc("2030-03-18T08:30:00Z"), utc("2030-04-01T07:30:00Z"), None)
            .unwrap();
        assert_eq!(
            starts(&got),
            [utc("2030-03-25T08:30:00Z"), utc("2030-04-01T07:30:00Z")]
        );
    }

    #[test]
    fn a_moved_occurrence_is_armed_when_it_moved_and_keyed_by_its_original_start() {
        let mut e = series(None);
        let moved_at = utc("2030-03-24T12:00:00Z");
        e.exceptions.push(EventException {
            original_start: utc("2030-03-25T08:30:00Z"),
            status: crate::model::ExceptionStatus::Moved,
            starts_at: Some(utc("2030-03-26T08:30:00Z")),
            ends_at: Some(utc("2030-03-26T09:30:00Z")),
            armed_at: moved_at,
        });
        let got = occurrences_in_window(&e, utc("2030-03-25T00:00:00Z"), utc("2030-03-27T00:00:00Z"), None)
            .unwrap();
        assert_eq!(starts(&got), [utc("2030-03-26T08:30:00Z")]);
        let added = utc("2030-03-02T00:00:00Z");
        let decided = [
            (3, utc("2030-03-26T08:30:00Z"), 30),
            (4, utc("2030-03-26T08:30:00Z"), 5),
        ];
        let c = occurrence_candidate(&e, &got[0], 3, added, &decided);
        assert_eq!(c.event_start, utc("2030-03-26T08:30:00Z"));
        assert_eq!(c.occurrence, Some(utc("2030-03-25T08:30:00Z")));
        assert_eq!(c.armed_at, moved_at);
        assert_eq!(c.decided, [30], "only this recipient's decisions");
        // A participant added after the move is armed when added.
        let late = utc("2030-03-25T20:00:00Z");
        assert_eq!(occurrence_candidate(&e, &got[0], 3, late, &[]).armed_at, late);
    }

    #[test]
    fn a_rule_that_cannot_be_read_is_an_error_not_a_panic() {
        let mut e = series(None);
        e.repeat_rule = Some("FREQ=SOMETIMES".into());
        let now = utc("2030-03-31T08:00:00Z");
        assert!(occurrences_in_window(&e, now, now, Some(&[30])).is_err());
        e.repeat_rule = Some("FREQ=WEEKLY".into());
        e.timezone = Some("Mars/Olympus".into());
        assert!(occurrences_in_window(&e, now, now, Some(&[30])).is_err());
        let b = broken_rule(&e, "unknown time zone".into());
        assert_eq!((b.table, b.column.as_str()), ("events", "repeat_rule"));
    }
}
