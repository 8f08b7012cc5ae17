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
