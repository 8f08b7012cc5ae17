//! Recurring series: which instants an RFC 5545 `RRULE` produces for one event, read in the
//! event's own zone, with single occurrences cancelled or moved. Pure: no I/O, no clock.
//!
//! A series is stored as its first occurrence (`starts_at`/`ends_at`, UTC), the IANA zone it
//! is expanded in and the rule text ([`Series::rule`]); exceptions are rows keyed by the
//! ORIGINAL start of the occurrence they cancel or move ([`Exception`]). Everything that must
//! happen exactly once per occurrence is keyed by that original start.
//!
//! Why it is built this way:
//!
//! - **Expansion is the `rrule` crate's**, run on the local wall-clock time as if it were UTC
//!   ("floating"), so the calendar arithmetic never sees a daylight-saving change and a weekly
//!   09:30 stays 09:30. Each local time is then turned into an instant here, by RFC 5545
//!   §3.3.5: a time that occurs twice (clocks go back) is the first one; a time that does not
//!   exist (clocks go forward) is read with the offset in force before the gap, so 02:30 on the
//!   day Paris springs forward is 03:30 CEST. The crate's own zone handling gets that case
//!   right too, but silently drops an occurrence whose zone also skips midnight (Chile moves
//!   its clocks at 00:00), a lost reminder; this way no occurrence is ever dropped.
//! - **Work is proportional to the window, not to the series' age.** A query far into an
//!   open-ended series restarts the crate at the start of the rule period (day, week from
//!   WKST, month, year, counted in INTERVAL steps from the first occurrence) just before the
//!   window, with the defaults the crate derives from the first start (time of day, weekday,
//!   day of month) already fixed in the rule. A `COUNT` rule cannot jump (which occurrence is
//!   the n-th depends on all before it), so it is walked from the start, at most
//!   [`MAX_COUNT`] occurrences.
//! - **The rule language is narrowed to what bookings need and calendars follow**: daily or
//!   coarser, one time of day (the event's), `INTERVAL`, `COUNT` or `UNTIL`, `BYDAY`,
//!   `BYMONTHDAY`, `BYMONTH`, `BYSETPOS` (monthly/yearly), `WKST`. The first start must be an
//!   occurrence of the rule (RFC 5545 leaves other cases undefined and clients disagree).
//! - Nothing here materialises an open-ended series: every list is bounded by a window, and
//!   the lazy [`Occurrences`] iterator must be bounded by its caller.
//! - An occurrence's instant comes from the zone database compiled in (chrono-tz): if a
//!   country changes its daylight-saving rules and a new release carries that, the future
//!   occurrences' UTC starts move with it, wall-clock time staying put. Its DST rules also stop
//!   after 2099; later occurrences are computed in standard time.

use std::collections::{HashMap, HashSet, VecDeque};

use chrono::{
    DateTime, Datelike, LocalResult, Month, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta, TimeZone,
    Utc, Weekday,
};
use chrono_tz::Tz;
use rrule::{Frequency, NWeekday, RRule, RRuleSet};

/// The most occurrences a `COUNT` may ask for. A `COUNT` series is walked from its first
/// occurrence, so this bounds the work of any query on it; longer series use `UNTIL` or none.
pub const MAX_COUNT: u32 = 10_000;

/// The longest repeat rule, in characters: ample for any real rule (BYMONTHDAY with all 31
/// days is under 100).
const MAX_RULE_CHARS: usize = 1000;

/// The rule parts accepted, in the order [`Series::rule`] writes them.
const KNOWN_PARTS: &str = "FREQ, INTERVAL, COUNT, UNTIL, BYMONTH, BYMONTHDAY, BYDAY, BYSETPOS, WKST";

/// Local times are searched this far around a window, more than any offset change, so an
/// occurrence whose local date differs from its UTC date is never missed.
const SLACK_DAYS: i64 = 2;

/// A change to one occurrence, identified by its original start (the instant the rule gives).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exception {
    /// The occurrence does not take place (EXDATE in iCalendar).
    Cancelled { original_start: DateTime<Utc> },
    /// The occurrence takes place at another time (a RECURRENCE-ID override in iCalendar).
    Moved {
        original_start: DateTime<Utc>,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
}

impl Exception {
    pub fn original_start(&self) -> DateTime<Utc> {
        match *self {
            Exception::Cancelled { original_start } | Exception::Moved { original_start, .. } => {
                original_start
            }
        }
    }
}

/// One occurrence as it takes place: `original_start` is its identity (the key of its
/// reminders and notices), `start`/`end` when it happens (different when `moved`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Occurrence {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub original_start: DateTime<Utc>,
    pub moved: bool,
}

/// A validated recurring series: a rule, its first occurrence, a duration and a zone.
#[derive(Debug, Clone)]
pub struct Series {
    rule_text: String,
    first_start: DateTime<Utc>,
    first_local: NaiveDateTime,
    duration: TimeDelta,
    tz: Tz,
    freq: Frequency,
    interval: u16,
    week_start: Weekday,
    count: Option<u32>,
    until: Option<DateTime<Utc>>,
    /// Validated against the floating first start, so it carries the time of day and the
    /// weekday / day-of-month defaults; without UNTIL, which is checked here on real instants.
    rule: RRule,
}

impl Series {
    /// Validates `rrule` (RFC 5545 RRULE value, optional `RRULE:` prefix, any case) for a
    /// series whose first occurrence starts at `first_start` and lasts `duration`, expanded in
    /// `tz`. Errors are one line: what is wrong and what to do.
    pub fn new(
        rrule: &str,
        first_start: DateTime<Utc>,
        duration: TimeDelta,
        tz: Tz,
    ) -> Result<Series, String> {
        if duration <= TimeDelta::zero() {
            return Err("a series needs a positive duration: the end must be after the start".into());
        }
        if first_start.timestamp_subsec_nanos() != 0 {
            return Err("the first start of a series must be a whole second".into());
        }
        let first_local = first_start.with_timezone(&tz).naive_local();
        let parts = parse_rule(rrule, tz)?;
        if let Some(until) = parts.until {
            if until < first_start {
                return Err(format!(
                    "UNTIL ({}) is before the first occurrence ({}): give a later UNTIL, or COUNT",
                    until.format("%Y-%m-%d %H:%M UTC"),
                    first_start.format("%Y-%m-%d %H:%M UTC"),
                ));
            }
        }
        let mut builder = RRule::new(parts.freq)
            .interval(parts.interval)
            .week_start(parts.week_start);
        if let Some(count) = parts.count {
            builder = builder.count(count);
        }
        if !parts.by_month.is_empty() {
            let months: Vec<Month> = parts
                .by_month
                .iter()
                .filter_map(|m| Month::try_from(*m).ok())
                .collect();
            builder = builder.by_month(&months);
        }
        if !parts.by_month_day.is_empty() {
            builder = builder.by_month_day(parts.by_month_day.clone());
        }
        if !parts.by_day.is_empty() {
            builder = builder.by_weekday(parts.by_day.clone());
        }
        if !parts.by_set_pos.is_empty() {
            builder = builder.by_set_pos(parts.by_set_pos.clone());
        }
        let rule = builder
            .validate(floating(first_local))
            .map_err(|e| format!("invalid repeat rule {}: {}", parts.text, crate_message(&e)))?;
        let series = Series {
            rule_text: parts.text,
            first_start,
            first_local,
            duration,
            tz,
            freq: parts.freq,
            interval: parts.interval,
            week_start: parts.week_start,
            count: parts.count,
            until: parts.until,
            rule,
        };
        if series.raw_from(first_start).next() != Some(first_start) {
            let local = first_start.with_timezone(&tz);
            if resolve_local(tz, first_local) != first_start {
                return Err(format!(
                    "the first start {} ({}) is the second {} of a day the clocks go back, and \
                     iCalendar reads that local time as the first one: start the series an hour \
                     earlier or later",
                    local.format("%Y-%m-%d %H:%M"),
                    tz.name(),
                    local.format("%H:%M"),
                ));
            }
            return Err(format!(
                "the first start ({} {}) is not an occurrence of {}: start the series on a day \
                 the rule selects, or change the rule",
                local.format("%a %Y-%m-%d %H:%M"),
                tz.name(),
                series.rule_text,
            ));
        }
        Ok(series)
    }

    /// The normalised rule for storage and for `RRULE:` in calendars: upper case, no prefix,
    /// parts in a fixed order, defaults left out, `UNTIL` in UTC.
    pub fn rule(&self) -> &str {
        &self.rule_text
    }

    pub fn first_start(&self) -> DateTime<Utc> {
        self.first_start
    }

    pub fn duration(&self) -> TimeDelta {
        self.duration
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// True when the rule has `COUNT` or `UNTIL`.
    pub fn is_bounded(&self) -> bool {
        self.count.is_some() || self.until.is_some()
    }

    /// The occurrences whose start (the moved start for a moved one) is in `[from, to)`,
    /// ordered by start. Cancelled occurrences are left out; an exception for an instant the
    /// rule does not produce (left over from an earlier rule) is ignored.
    pub fn occurrences(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        exceptions: &[Exception],
    ) -> Vec<Occurrence> {
        if to <= from {
            return Vec::new();
        }
        self.occurrences_from(from, exceptions)
            .take_while(|o| o.start < to)
            .collect()
    }

    /// The occurrences starting at or after `from`, lazily, ordered by start. Unbounded for
    /// an open-ended series: the caller bounds it (`take_while`, `take`).
    pub fn occurrences_from(&self, from: DateTime<Utc>, exceptions: &[Exception]) -> Occurrences {
        let mut cancelled = HashSet::new();
        for e in exceptions {
            if let Exception::Cancelled { original_start } = e {
                cancelled.insert(*original_start);
            }
        }
        let moved_by_original = self.valid_moves(exceptions, &cancelled);
        let mut moved: Vec<Occurrence> = moved_by_original
            .values()
            .filter(|o| o.start >= from)
            .copied()
            .collect();
        moved.sort();
        Occurrences {
            raw: self.raw_from(from),
            duration: self.duration,
            cancelled,
            moved_originals: moved_by_original.into_keys().collect(),
            moved: moved.into(),
            pending: None,
        }
    }

    /// The first occurrence starting strictly after `after`, exceptions applied.
    pub fn next_after(&self, after: DateTime<Utc>, exceptions: &[Exception]) -> Option<Occurrence> {
        self.occurrences_from(after, exceptions).find(|o| o.start > after)
    }

    /// Whether `original_start` is an instant the rule produces (cancelled or moved ones
    /// included): the check for `--occurrence TIME` and for a delivery's re-check.
    pub fn contains(&self, original_start: DateTime<Utc>) -> bool {
        self.raw_from(original_start).next() == Some(original_start)
    }

    /// The occurrence (exceptions applied) that takes place at `start`, if one does: the
    /// re-check of a reminder or a decision against a series that may have changed since.
    pub fn occurrence_at(&self, start: DateTime<Utc>, exceptions: &[Exception]) -> Option<Occurrence> {
        self.occurrences_from(start, exceptions)
            .take_while(|o| o.start <= start)
            .find(|o| o.start == start)
    }

    /// The occurrence the rule gives at `original_start`, as it is now: `None` when the rule
    /// gives none there or it was cancelled; moved when it was moved.
    pub fn occurrence_of(
        &self,
        original_start: DateTime<Utc>,
        exceptions: &[Exception],
    ) -> Option<Occurrence> {
        if !self.contains(original_start) {
            return None;
        }
        let cancelled = exceptions
            .iter()
            .any(|e| matches!(e, Exception::Cancelled { original_start: o } if *o == original_start));
        if cancelled {
            return None;
        }
        let moved = exceptions.iter().rev().find_map(|e| match *e {
            Exception::Moved {
                original_start: o,
                start,
                end,
            } if o == original_start && end > start => Some(Occurrence {
                start,
                end,
                original_start,
                moved: true,
            }),
            _ => None,
        });
        Some(moved.unwrap_or(Occurrence {
            start: original_start,
            end: original_start + self.duration,
            original_start,
            moved: false,
        }))
    }

    /// The same series cut so that its last occurrence starts before `cut` (its `COUNT` or
    /// `UNTIL` replaced by `UNTIL` one second before `cut`): "cancel this and the following
    /// occurrences". `None` when no occurrence would be left (`cut` at or before the first).
    pub fn ending_before(&self, cut: DateTime<Utc>) -> Result<Option<Series>, String> {
        if cut <= self.first_start {
            return Ok(None);
        }
        let until = cut - TimeDelta::seconds(1);
        let mut parts: Vec<String> = self
            .rule_text
            .split(';')
            .filter(|p| !p.starts_with("COUNT=") && !p.starts_with("UNTIL="))
            .map(str::to_string)
            .collect();
        parts.push(format!("UNTIL={}", until.format("%Y%m%dT%H%M%SZ")));
        Series::new(&parts.join(";"), self.first_start, self.duration, self.tz).map(Some)
    }

    /// When the rule's last occurrence ends, for a bounded rule; `None` when open-ended.
    /// Exceptions are not applied: a moved occurrence may end later, a cancelled last one
    /// does not move the bound.
    pub fn end(&self) -> Option<DateTime<Utc>> {
        let last = if self.count.is_some() {
            self.raw_from(self.first_start).last()
        } else {
            let until = self.until?;
            // Look back from UNTIL over doubling spans: work stays proportional to the gap
            // between UNTIL and the last occurrence, not to the series' length.
            let mut span = TimeDelta::days(8);
            loop {
                let from = until
                    .checked_sub_signed(span)
                    .map_or(self.first_start, |t| t.max(self.first_start));
                if let Some(last) = self.raw_from(from).last() {
                    break Some(last);
                }
                if from == self.first_start {
                    break None;
                }
                span = span.checked_mul(2).unwrap_or(TimeDelta::MAX);
            }
        };
        last.map(|t| t + self.duration)
    }

    /// The first occurrence (exceptions applied) that intersects the half-open `[start, end)`,
    /// for the double-booking check.
    pub fn overlaps(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        exceptions: &[Exception],
    ) -> Option<Occurrence> {
        if end <= start {
            return None;
        }
        let back = self.longest(exceptions);
        let from = start.checked_sub_signed(back).unwrap_or(start);
        self.occurrences_from(from, exceptions)
            .take_while(|o| o.start < end)
            .find(|o| o.end > start)
    }

    /// The longest occurrence: the duration, or a moved one that lasts longer.
    fn longest(&self, exceptions: &[Exception]) -> TimeDelta {
        exceptions
            .iter()
            .filter_map(|e| match e {
                Exception::Moved { start, end, .. } => Some(*end - *start),
                Exception::Cancelled { .. } => None,
            })
            .fold(self.duration, TimeDelta::max)
    }

    /// Moved occurrences keyed by original start, keeping only those the rule produces and
    /// that are not also cancelled (cancelling wins).
    fn valid_moves(
        &self,
        exceptions: &[Exception],
        cancelled: &HashSet<DateTime<Utc>>,
    ) -> HashMap<DateTime<Utc>, Occurrence> {
        let mut moved = HashMap::new();
        for e in exceptions {
            if let Exception::Moved {
                original_start,
                start,
                end,
            } = *e
            {
                if !cancelled.contains(&original_start) && end > start && self.contains(original_start) {
                    moved.insert(
                        original_start,
                        Occurrence {
                            start,
                            end,
                            original_start,
                            moved: true,
                        },
                    );
                }
            }
        }
        moved
    }

    /// The rule's instants from `from` on, before exceptions, restarting the crate at the
    /// rule period just before `from` when the rule allows it.
    fn raw_from(&self, from: DateTime<Utc>) -> RawStarts {
        let restart = if self.count.is_some() || from <= self.first_start {
            self.first_local
        } else {
            from.with_timezone(&self.tz)
                .naive_local()
                .checked_sub_signed(TimeDelta::days(SLACK_DAYS))
                .and_then(|t| self.period_start(t.date()))
                .map_or(self.first_local, |d| {
                    d.and_time(NaiveTime::MIN).max(self.first_local)
                })
        };
        let set = RRuleSet::new(floating(restart)).rrule(self.rule.clone()).limit();
        RawStarts {
            inner: set.into_iter(),
            tz: self.tz,
            until: self.until,
            from,
            pulled: 0,
            done: false,
        }
    }

    /// The first day of the rule period (of the grid that starts at the first occurrence and
    /// steps by INTERVAL) that contains `date`.
    fn period_start(&self, date: NaiveDate) -> Option<NaiveDate> {
        let first = self.first_local.date();
        let n = i64::from(self.interval.max(1));
        match self.freq {
            Frequency::Daily => {
                let days = (date - first).num_days();
                first.checked_add_signed(TimeDelta::try_days(days.div_euclid(n) * n)?)
            }
            Frequency::Weekly => {
                let week_start = first.checked_sub_signed(TimeDelta::try_days(i64::from(
                    first.weekday().days_since(self.week_start),
                ))?)?;
                let step = 7 * n;
                let days = (date - week_start).num_days();
                week_start.checked_add_signed(TimeDelta::try_days(days.div_euclid(step) * step)?)
            }
            Frequency::Monthly => {
                let month_index = |d: NaiveDate| i64::from(d.year()) * 12 + i64::from(d.month0());
                let months = month_index(date) - month_index(first);
                let target = month_index(first) + months.div_euclid(n) * n;
                let year = i32::try_from(target.div_euclid(12)).ok()?;
                let month = u32::try_from(target.rem_euclid(12)).ok()? + 1;
                NaiveDate::from_ymd_opt(year, month, 1)
            }
            Frequency::Yearly => {
                let years = i64::from(date.year() - first.year());
                let year = i64::from(first.year()) + years.div_euclid(n) * n;
                NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, 1, 1)
            }
            // Refused by `parse_rule`.
            Frequency::Hourly | Frequency::Minutely | Frequency::Secondly => None,
        }
    }

    /// Every instant from the first occurrence up to `to`, walked without jumping: the
    /// reference the windowed answers are checked against.
    #[cfg(test)]
    fn raw_walk_from_first(&self, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let set = RRuleSet::new(floating(self.first_local)).rrule(self.rule.clone());
        let mut out = Vec::new();
        for local in &set {
            let start = resolve_local(self.tz, local.naive_utc());
            if start >= to || self.until.is_some_and(|u| start > u) {
                break;
            }
            out.push(start);
        }
        out
    }

    /// How many instants the crate produced to answer `occurrences(from, to)`: the measure of
    /// work that must stay proportional to the window.
    #[cfg(test)]
    fn work_for_window(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> usize {
        let mut raw = self.raw_from(from);
        for start in raw.by_ref() {
            if start >= to {
                break;
            }
        }
        raw.pulled
    }
}

/// The first conflict between two series' occurrences (exceptions applied) whose start is
/// before `until` and whose end is after `from`, as (occurrence of `a`, occurrence of `b`).
/// Work is proportional to the number of occurrences of both in that horizon, which the
/// caller chooses: an open-ended series has no last occurrence to stop at.
pub fn first_conflict(
    a: &Series,
    a_exceptions: &[Exception],
    b: &Series,
    b_exceptions: &[Exception],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Option<(Occurrence, Occurrence)> {
    let back = a.longest(a_exceptions).max(b.longest(b_exceptions));
    let start = from.checked_sub_signed(back).unwrap_or(from);
    let mut left = a
        .occurrences_from(start, a_exceptions)
        .take_while(|o| o.start < until)
        .filter(|o| o.end > from)
        .peekable();
    let mut right = b
        .occurrences_from(start, b_exceptions)
        .take_while(|o| o.start < until)
        .filter(|o| o.end > from)
        .peekable();
    // Sweep both lists in start order, always dropping the occurrence that ends first: it
    // cannot meet any later occurrence of the other list, which all start later.
    loop {
        let (x, y) = (*left.peek()?, *right.peek()?);
        if x.start < y.end && y.start < x.end {
            return Some((x, y));
        }
        if x.end <= y.end {
            left.next();
        } else {
            right.next();
        }
    }
}

/// Lazy occurrences of a series, exceptions applied, in start order. See
/// [`Series::occurrences_from`].
#[derive(Debug, Clone)]
pub struct Occurrences {
    raw: RawStarts,
    duration: TimeDelta,
    cancelled: HashSet<DateTime<Utc>>,
    moved_originals: HashSet<DateTime<Utc>>,
    /// Moved occurrences starting at or after `from`, sorted by start.
    moved: VecDeque<Occurrence>,
    pending: Option<Occurrence>,
}

impl Iterator for Occurrences {
    type Item = Occurrence;

    fn next(&mut self) -> Option<Occurrence> {
        if self.pending.is_none() {
            self.pending = self
                .raw
                .by_ref()
                .find(|s| !self.cancelled.contains(s) && !self.moved_originals.contains(s))
                .map(|start| Occurrence {
                    start,
                    end: start + self.duration,
                    original_start: start,
                    moved: false,
                });
        }
        match (self.pending, self.moved.front()) {
            (Some(rule), Some(moved)) if *moved < rule => self.moved.pop_front(),
            (Some(_), _) => self.pending.take(),
            (None, _) => self.moved.pop_front(),
        }
    }
}

/// The crate's local instants turned into UTC, from `from` on, stopped at UNTIL.
#[derive(Debug, Clone)]
struct RawStarts {
    inner: rrule::RRuleSetIter,
    tz: Tz,
    until: Option<DateTime<Utc>>,
    from: DateTime<Utc>,
    /// Instants taken from the crate, for the bounded-work test.
    pulled: usize,
    done: bool,
}

impl Iterator for RawStarts {
    type Item = DateTime<Utc>;

    fn next(&mut self) -> Option<DateTime<Utc>> {
        while !self.done {
            let Some(local) = self.inner.next() else {
                self.done = true;
                break;
            };
            self.pulled += 1;
            // With one time of day per date, later local times never give earlier instants,
            // so the first one past UNTIL ends the series.
            let start = resolve_local(self.tz, local.naive_utc());
            if self.until.is_some_and(|until| start > until) {
                self.done = true;
                break;
            }
            if start >= self.from {
                return Some(start);
            }
        }
        None
    }
}

/// The instant a local date-time in `tz` denotes, by RFC 5545 §3.3.5: the first of two when
/// the clocks go back; when they go forward over it, the offset in force before the gap.
pub fn resolve_local(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => {
            // A day earlier is before the gap (gaps are hours long, transitions months apart).
            let before = local.checked_sub_signed(TimeDelta::days(1)).unwrap_or(local);
            let offset = tz.offset_from_utc_datetime(&before).fix();
            let seconds = TimeDelta::seconds(i64::from(offset.local_minus_utc()));
            local.checked_sub_signed(seconds).unwrap_or(local).and_utc()
        }
    }
}

fn floating(local: NaiveDateTime) -> DateTime<rrule::Tz> {
    rrule::Tz::UTC.from_utc_datetime(&local)
}

fn crate_message(e: &rrule::RRuleError) -> String {
    match e {
        rrule::RRuleError::ValidationError(v) => v.to_string(),
        rrule::RRuleError::ParserError(p) => p.to_string(),
        rrule::RRuleError::IterError(s) => s.clone(),
    }
}

/// A rule as parsed, before it meets its first start.
struct Parts {
    text: String,
    freq: Frequency,
    interval: u16,
    count: Option<u32>,
    until: Option<DateTime<Utc>>,
    by_month: Vec<u8>,
    by_month_day: Vec<i8>,
    by_day: Vec<NWeekday>,
    by_set_pos: Vec<i32>,
    week_start: Weekday,
}

/// Parses the rule text. Done here rather than by the crate, whose parser is lenient where a
/// user needs a clear answer (`BYDAY=XMO` reads as `MO`) and accepts DTSTART/EXDATE lines.
fn parse_rule(input: &str, tz: Tz) -> Result<Parts, String> {
    let text = input.trim();
    if text.is_empty() {
        return Err("the repeat rule is empty: give an RRULE such as FREQ=WEEKLY;COUNT=10".into());
    }
    // A rule is a short line; a longer value is a mistake, and the errors below quote it.
    if text.chars().count() > MAX_RULE_CHARS {
        return Err(format!(
            "the repeat rule is {} characters long: at most {MAX_RULE_CHARS}, e.g. \
             FREQ=WEEKLY;BYDAY=MO,TH;COUNT=10",
            text.chars().count()
        ));
    }
    if let Some(c) = text.chars().find(|c| c.is_control() && !matches!(c, '\n' | '\r')) {
        return Err(format!(
            "the repeat rule holds a control character ({}): give one line of plain text, \
             e.g. FREQ=WEEKLY;COUNT=10",
            c.escape_unicode()
        ));
    }
    if text.contains(['\n', '\r']) || text.to_ascii_uppercase().contains("DTSTART") {
        return Err(format!(
            "give only the RRULE value, e.g. FREQ=WEEKLY;COUNT=10, not {text:?}: the series \
             starts at the event's start (no DTSTART), and single occurrences are cancelled \
             or moved with --occurrence (no EXDATE/RDATE)"
        ));
    }
    let body = match text.split_once(':') {
        Some((prefix, rest)) if prefix.trim().eq_ignore_ascii_case("RRULE") => rest.trim(),
        Some((prefix, _)) => {
            return Err(format!(
                "{text:?} is not an RRULE ({prefix}:...): give the rule parts only, e.g. \
                 FREQ=WEEKLY;BYDAY=MO,TH"
            ))
        }
        None => text,
    };
    let mut seen: HashMap<String, String> = HashMap::new();
    for part in body.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((name, value)) = part.split_once('=') else {
            return Err(format!(
                "{part:?} in the repeat rule is not NAME=VALUE: write parts like \
                 FREQ=WEEKLY;COUNT=10"
            ));
        };
        let name = name.trim().to_ascii_uppercase();
        let value = value.trim().to_ascii_uppercase();
        if value.is_empty() {
            return Err(format!("{name}= has no value in the repeat rule"));
        }
        match name.as_str() {
            "FREQ" | "INTERVAL" | "COUNT" | "UNTIL" | "BYMONTH" | "BYMONTHDAY" | "BYDAY" | "BYSETPOS"
            | "WKST" => {}
            "BYHOUR" | "BYMINUTE" | "BYSECOND" => {
                return Err(format!(
                    "{name} is not supported: a series takes its time of day from the event's \
                     start; book one series per time of day"
                ))
            }
            "BYWEEKNO" | "BYYEARDAY" | "BYEASTER" => {
                return Err(format!(
                    "{name} is not supported (calendar apps do not all follow it): use \
                     BYMONTH, BYMONTHDAY, BYDAY or BYSETPOS"
                ))
            }
            _ => return Err(format!("unknown repeat rule part {name:?}: use {KNOWN_PARTS}")),
        }
        if seen.insert(name.clone(), value).is_some() {
            return Err(format!("{name} appears twice in the repeat rule: keep one"));
        }
    }
    let get = |name: &str| seen.get(name).map(String::as_str);

    let freq = match get("FREQ") {
        None => return Err("the repeat rule has no FREQ: add FREQ=DAILY, WEEKLY, MONTHLY or YEARLY".into()),
        Some("DAILY") => Frequency::Daily,
        Some("WEEKLY") => Frequency::Weekly,
        Some("MONTHLY") => Frequency::Monthly,
        Some("YEARLY") => Frequency::Yearly,
        Some(f @ ("HOURLY" | "MINUTELY" | "SECONDLY")) => {
            return Err(format!(
                "FREQ={f} is not supported: booking series repeat daily or less often \
                 (DAILY, WEEKLY, MONTHLY, YEARLY)"
            ))
        }
        Some(f) => {
            return Err(format!(
                "FREQ={f} is not a frequency: use DAILY, WEEKLY, MONTHLY or YEARLY"
            ))
        }
    };
    let interval = match get("INTERVAL") {
        None => 1,
        Some(v) => match v.parse::<u16>() {
            Ok(n) if n >= 1 => n,
            _ => {
                return Err(format!(
                    "INTERVAL={v} is not a whole number from 1 to {}: e.g. INTERVAL=2 for every \
                     other",
                    u16::MAX
                ))
            }
        },
    };
    if get("COUNT").is_some() && get("UNTIL").is_some() {
        return Err("COUNT and UNTIL cannot both be given (RFC 5545): keep one".into());
    }
    let count = match get("COUNT") {
        None => None,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=MAX_COUNT).contains(&n) => Some(n),
            Ok(n) if n > MAX_COUNT => {
                return Err(format!(
                    "COUNT={n} is too large: at most {MAX_COUNT} occurrences; use UNTIL, or \
                     leave both out for an open-ended series"
                ))
            }
            _ => return Err(format!("COUNT={v} is not a whole number from 1 to {MAX_COUNT}")),
        },
    };
    let until = get("UNTIL").map(|v| parse_until(v, tz)).transpose()?;
    let by_month = match get("BYMONTH") {
        None => Vec::new(),
        Some(v) => number_list(v, "BYMONTH", "1 to 12", |n: u8| (1..=12).contains(&n))?,
    };
    let by_month_day = match get("BYMONTHDAY") {
        None => Vec::new(),
        Some(v) => number_list(v, "BYMONTHDAY", "1 to 31 or -31 to -1", |n: i8| {
            n != 0 && (-31..=31).contains(&n)
        })?,
    };
    if !by_month_day.is_empty() && freq == Frequency::Weekly {
        return Err("BYMONTHDAY cannot be used with FREQ=WEEKLY: use BYDAY, or FREQ=MONTHLY".into());
    }
    let by_day = match get("BYDAY") {
        None => Vec::new(),
        Some(v) => parse_by_day(v, freq)?,
    };
    let by_set_pos = match get("BYSETPOS") {
        None => Vec::new(),
        Some(v) => {
            if !matches!(freq, Frequency::Monthly | Frequency::Yearly) {
                return Err("BYSETPOS needs FREQ=MONTHLY or FREQ=YEARLY, e.g. \
                     FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1 for the last weekday"
                    .into());
            }
            if by_day.is_empty() && by_month_day.is_empty() {
                return Err(
                    "BYSETPOS picks among the days BYDAY or BYMONTHDAY select: add one, e.g. \
                     BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1"
                        .into(),
                );
            }
            number_list(v, "BYSETPOS", "1 to 366 or -366 to -1", |n: i32| {
                n != 0 && (-366..=366).contains(&n)
            })?
        }
    };
    let week_start = match get("WKST") {
        None => Weekday::Mon,
        Some(v) => weekday(v)
            .ok_or_else(|| format!("WKST={v} is not a weekday: use MO, TU, WE, TH, FR, SA or SU"))?,
    };

    let join = |items: Vec<String>| items.join(",");
    let mut out = vec![format!("FREQ={}", freq_name(freq))];
    if interval != 1 {
        out.push(format!("INTERVAL={interval}"));
    }
    if let Some(count) = count {
        out.push(format!("COUNT={count}"));
    }
    if let Some(until) = until {
        out.push(format!("UNTIL={}", until.format("%Y%m%dT%H%M%SZ")));
    }
    if !by_month.is_empty() {
        out.push(format!(
            "BYMONTH={}",
            join(by_month.iter().map(u8::to_string).collect())
        ));
    }
    if !by_month_day.is_empty() {
        out.push(format!(
            "BYMONTHDAY={}",
            join(by_month_day.iter().map(i8::to_string).collect())
        ));
    }
    if !by_day.is_empty() {
        out.push(format!(
            "BYDAY={}",
            join(by_day.iter().map(|d| by_day_text(*d)).collect())
        ));
    }
    if !by_set_pos.is_empty() {
        out.push(format!(
            "BYSETPOS={}",
            join(by_set_pos.iter().map(i32::to_string).collect())
        ));
    }
    if week_start != Weekday::Mon {
        out.push(format!("WKST={}", weekday_code(week_start)));
    }
    Ok(Parts {
        text: out.join(";"),
        freq,
        interval,
        count,
        until,
        by_month,
        by_month_day,
        by_day,
        by_set_pos,
        week_start,
    })
}

/// `UNTIL` as UTC (`20301231T235959Z`, the RFC form next to a zoned start), as a local time in
/// the event's zone (`20301231T235959`), or as a date, meaning the end of that local day.
fn parse_until(value: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    let bad = || {
        format!(
            "UNTIL={value} is not a date-time: write UNTIL=20301231T235959Z (UTC) or \
             UNTIL=20301231 (through that day, in the event's zone)"
        )
    };
    if let Some(utc) = value.strip_suffix('Z') {
        return NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S")
            .map(|t| t.and_utc())
            .map_err(|_| bad());
    }
    if value.len() == 8 {
        let date = NaiveDate::parse_from_str(value, "%Y%m%d").map_err(|_| bad())?;
        let last_second = NaiveTime::from_hms_opt(23, 59, 59).unwrap_or(NaiveTime::MIN);
        return Ok(resolve_local(tz, date.and_time(last_second)));
    }
    NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%S")
        .map(|t| resolve_local(tz, t))
        .map_err(|_| bad())
}

fn number_list<T: std::str::FromStr + Ord + Copy>(
    value: &str,
    name: &str,
    range: &str,
    valid: impl Fn(T) -> bool,
) -> Result<Vec<T>, String> {
    let mut items = Vec::new();
    for item in value.split(',').map(str::trim) {
        match item.trim_start_matches('+').parse::<T>() {
            Ok(n) if valid(n) => items.push(n),
            _ => return Err(format!("{name}={value}: {item:?} is not a number from {range}")),
        }
    }
    items.sort();
    items.dedup();
    Ok(items)
}

fn parse_by_day(value: &str, freq: Frequency) -> Result<Vec<NWeekday>, String> {
    let mut days = Vec::new();
    for item in value.split(',').map(str::trim) {
        let split = item.len().saturating_sub(2);
        let (number, code) = (item.get(..split).unwrap_or(""), item.get(split..).unwrap_or(""));
        let Some(day) = weekday(code) else {
            return Err(format!(
                "BYDAY={value}: {item:?} is not a weekday: use MO, TU, WE, TH, FR, SA, SU, \
                 optionally numbered for monthly or yearly rules (1MO, -1FR)"
            ));
        };
        if number.is_empty() {
            days.push(NWeekday::Every(day));
            continue;
        }
        let Ok(n) = number.trim_start_matches('+').parse::<i16>() else {
            return Err(format!(
                "BYDAY={value}: {item:?} is not a weekday: use MO, TU, WE, TH, FR, SA, SU, \
                 optionally numbered for monthly or yearly rules (1MO, -1FR)"
            ));
        };
        let limit = match freq {
            Frequency::Monthly => 5,
            Frequency::Yearly => 53,
            _ => {
                return Err(format!(
                    "BYDAY={value}: a numbered day ({item}) needs FREQ=MONTHLY or FREQ=YEARLY; \
                     with FREQ={} use plain days such as BYDAY={code}",
                    freq_name(freq)
                ))
            }
        };
        if n == 0 || n.abs() > limit {
            return Err(format!(
                "BYDAY={value}: in {item:?} the number must be 1 to {limit} or -{limit} to -1 \
                 (e.g. 2MO for the second Monday, -1FR for the last Friday)"
            ));
        }
        days.push(NWeekday::Nth(n, day));
    }
    days.sort();
    days.dedup();
    Ok(days)
}

fn weekday(code: &str) -> Option<Weekday> {
    Some(match code {
        "MO" => Weekday::Mon,
        "TU" => Weekday::Tue,
        "WE" => Weekday::Wed,
        "TH" => Weekday::Thu,
        "FR" => Weekday::Fri,
        "SA" => Weekday::Sat,
        "SU" => Weekday::Sun,
        _ => return None,
    })
}

/// Written here: the crate's `Display` drops the number of `1MO`, which would turn "the first
/// Monday" into "every Monday".
fn by_day_text(day: NWeekday) -> String {
    match day {
        NWeekday::Every(d) => weekday_code(d).to_string(),
        NWeekday::Nth(n, d) => format!("{n}{}", weekday_code(d)),
    }
}

fn weekday_code(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "MO",
        Weekday::Tue => "TU",
        Weekday::Wed => "WE",
        Weekday::Thu => "TH",
        Weekday::Fri => "FR",
        Weekday::Sat => "SA",
        Weekday::Sun => "SU",
    }
}

fn freq_name(freq: Frequency) -> &'static str {
    match freq {
        Frequency::Yearly => "YEARLY",
        Frequency::Monthly => "MONTHLY",
        Frequency::Weekly => "WEEKLY",
        Frequency::Daily => "DAILY",
        Frequency::Hourly => "HOURLY",
        Frequency::Minutely => "MINUTELY",
        Frequency::Secondly => "SECONDLY",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::{New_York, Santiago};
    use chrono_tz::Europe::Paris;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .with_timezone(&Utc)
    }

    fn hour() -> TimeDelta {
        TimeDelta::hours(1)
    }

    fn series(rule: &str, first: &str, tz: Tz) -> Series {
        Series::new(rule, utc(first), hour(), tz).unwrap_or_else(|e| panic!("{rule}: {e}"))
    }

    fn starts(occurrences: &[Occurrence]) -> Vec<DateTime<Utc>> {
        occurrences.iter().map(|o| o.start).collect()
    }

    fn local_times(occurrences: &[Occurrence], tz: Tz) -> Vec<String> {
        occurrences
            .iter()
            .map(|o| o.start.with_timezone(&tz).format("%a %H:%M").to_string())
            .collect()
    }

    fn error(rule: &str) -> String {
        match Series::new(rule, utc("2030-03-04T08:30:00Z"), hour(), Paris) {
            Ok(s) => panic!("{rule} was accepted as {}", s.rule()),
            Err(e) => e,
        }
    }

    #[test]
    fn weekly_0930_paris_keeps_local_time_across_both_dst_changes() {
        // Mondays 09:30 Paris from 2030-03-18; clocks go forward on 31 March, back on 27 October.
        let s = series("FREQ=WEEKLY", "2030-03-18T08:30:00Z", Paris);
        let spring = s.occurrences(utc("2030-03-18T00:00:00Z"), utc("2030-04-09T00:00:00Z"), &[]);
        assert_eq!(
            starts(&spring),
            vec![
                utc("2030-03-18T08:30:00Z"),
                utc("2030-03-25T08:30:00Z"),
                utc("2030-04-01T07:30:00Z"),
                utc("2030-04-08T07:30:00Z"),
            ]
        );
        assert!(local_times(&spring, Paris).iter().all(|t| t == "Mon 09:30"));
        let autumn = s.occurrences(utc("2030-10-20T00:00:00Z"), utc("2030-11-05T00:00:00Z"), &[]);
        assert_eq!(
            starts(&autumn),
            vec![
                utc("2030-10-21T07:30:00Z"),
                utc("2030-10-28T08:30:00Z"),
                utc("2030-11-04T08:30:00Z"),
            ]
        );
        assert!(local_times(&autumn, Paris).iter().all(|t| t == "Mon 09:30"));
        assert!(spring.iter().chain(&autumn).all(|o| o.end - o.start == hour()));
    }

    #[test]
    fn weekly_0930_new_york_keeps_local_time_across_both_dst_changes() {
        // Fridays 09:30 New York; clocks go forward on 10 March 2030, back on 3 November.
        let s = series("FREQ=WEEKLY;BYDAY=FR", "2030-01-04T14:30:00Z", New_York);
        let spring = s.occurrences(utc("2030-03-01T00:00:00Z"), utc("2030-03-20T00:00:00Z"), &[]);
        assert_eq!(
            starts(&spring),
            vec![
                utc("2030-03-01T14:30:00Z"),
                utc("2030-03-08T14:30:00Z"),
                utc("2030-03-15T13:30:00Z"),
            ]
        );
        let autumn = s.occurrences(utc("2030-10-30T00:00:00Z"), utc("2030-11-10T00:00:00Z"), &[]);
        assert_eq!(
            starts(&autumn),
            vec![utc("2030-11-01T13:30:00Z"), utc("2030-11-08T14:30:00Z")]
        );
        assert!(local_times(&spring, New_York)
            .iter()
            .chain(&local_times(&autumn, New_York))
            .all(|t| t == "Fri 09:30"));
    }

    #[test]
    fn daily_0230_in_the_spring_gap_is_read_with_the_offset_before_it() {
        // RFC 5545 §3.3.5: 02:30 does not exist on 31 March 2030 in Paris; it is read as
        // 02:30 CET, which is 03:30 CEST. The next day is 02:30 CEST again.
        let s = series("FREQ=DAILY", "2030-03-29T01:30:00Z", Paris);
        let got = s.occurrences(utc("2030-03-29T00:00:00Z"), utc("2030-04-02T00:00:00Z"), &[]);
        assert_eq!(
            starts(&got),
            vec![
                utc("2030-03-29T01:30:00Z"),
                utc("2030-03-30T01:30:00Z"),
                utc("2030-03-31T01:30:00Z"),
                utc("2030-04-01T00:30:00Z"),
            ]
        );
        assert_eq!(
            local_times(&got, Paris),
            vec!["Fri 02:30", "Sat 02:30", "Sun 03:30", "Mon 02:30"]
        );
    }

    #[test]
    fn daily_0230_on_the_autumn_change_is_the_first_of_the_two() {
        // 02:30 happens twice on 27 October 2030 in Paris: the first (CEST) is the occurrence.
        let s = series("FREQ=DAILY", "2030-10-26T00:30:00Z", Paris);
        let got = s.occurrences(utc("2030-10-26T00:00:00Z"), utc("2030-10-29T00:00:00Z"), &[]);
        assert_eq!(
            starts(&got),
            vec![
                utc("2030-10-26T00:30:00Z"),
                utc("2030-10-27T00:30:00Z"),
                utc("2030-10-28T01:30:00Z"),
            ]
        );
    }

    #[test]
    fn regression_no_occurrence_dropped_when_the_zone_skips_midnight() {
        // Chile moves its clocks at midnight: on 8 September 2030 Santiago goes from 00:00 to
        // 01:00. The rrule crate's own zone handling drops a 00:30 occurrence that day; read
        // by RFC 5545 it is 00:30 at -04, i.e. 01:30 -03.
        let s = series("FREQ=DAILY", "2030-09-06T04:30:00Z", Santiago);
        let got = s.occurrences(utc("2030-09-06T00:00:00Z"), utc("2030-09-10T00:00:00Z"), &[]);
        assert_eq!(
            starts(&got),
            vec![
                utc("2030-09-06T04:30:00Z"),
                utc("2030-09-07T04:30:00Z"),
                utc("2030-09-08T04:30:00Z"),
                utc("2030-09-09T03:30:00Z"),
            ]
        );
    }

    #[test]
    fn byday_monday_and_thursday() {
        let s = series("FREQ=WEEKLY;BYDAY=MO,TH;COUNT=5", "2030-03-04T17:00:00Z", Paris);
        let all = s.occurrences(utc("2030-01-01T00:00:00Z"), utc("2031-01-01T00:00:00Z"), &[]);
        assert_eq!(
            local_times(&all, Paris),
            vec!["Mon 18:00", "Thu 18:00", "Mon 18:00", "Thu 18:00", "Mon 18:00"]
        );
        assert_eq!(all[4].start, utc("2030-03-18T17:00:00Z"));
    }

    #[test]
    fn count_bounds_the_series() {
        let s = series("FREQ=WEEKLY;COUNT=16", "2030-01-07T08:00:00Z", Paris);
        let all = s.occurrences(utc("2029-01-01T00:00:00Z"), utc("2035-01-01T00:00:00Z"), &[]);
        assert_eq!(all.len(), 16);
        assert_eq!(all[15].start, utc("2030-04-22T07:00:00Z"));
        assert_eq!(s.end(), Some(utc("2030-04-22T08:00:00Z")));
        assert!(s.is_bounded());
        assert!(s.contains(utc("2030-04-22T07:00:00Z")));
        assert!(!s.contains(utc("2030-04-29T07:00:00Z")), "17th is past COUNT");
        assert_eq!(s.next_after(utc("2030-04-22T07:00:00Z"), &[]), None);
    }

    #[test]
    fn until_is_inclusive_and_may_be_utc_local_or_a_date() {
        let first = "2030-01-07T08:00:00Z"; // Mondays 09:00 Paris
        let exact = series("FREQ=WEEKLY;UNTIL=20300128T080000Z", first, Paris);
        assert_eq!(
            exact
                .occurrences(utc(first), utc("2031-01-01T00:00:00Z"), &[])
                .len(),
            4
        );
        assert_eq!(exact.end(), Some(utc("2030-01-28T09:00:00Z")));
        let date = series("FREQ=WEEKLY;UNTIL=20300128", first, Paris);
        assert_eq!(date.rule(), "FREQ=WEEKLY;UNTIL=20300128T225959Z");
        assert_eq!(date.end(), Some(utc("2030-01-28T09:00:00Z")));
        let local = series("FREQ=WEEKLY;UNTIL=20300128T085959", first, Paris);
        assert_eq!(local.rule(), "FREQ=WEEKLY;UNTIL=20300128T075959Z");
        assert_eq!(local.end(), Some(utc("2030-01-21T09:00:00Z")));
        // A long UNTIL: the bound is found without walking the series.
        let long = series("FREQ=DAILY;UNTIL=20391231T235959Z", first, Paris);
        assert_eq!(long.end(), Some(utc("2039-12-31T09:00:00Z")));
    }

    #[test]
    fn open_series_has_no_end() {
        let s = series("FREQ=DAILY", "2030-01-07T08:00:00Z", Paris);
        assert_eq!(s.end(), None);
        assert!(!s.is_bounded());
    }

    #[test]
    fn unbounded_daily_series_five_years_out_costs_the_window_only() {
        let s = series("FREQ=DAILY", "2030-01-07T08:00:00Z", Paris);
        let (from, to) = (utc("2035-06-01T00:00:00Z"), utc("2035-06-08T00:00:00Z"));
        let got = s.occurrences(from, to, &[]);
        assert_eq!(got.len(), 7);
        assert_eq!(got[0].start, utc("2035-06-01T07:00:00Z"));
        // 7 in the window, the slack days before it, and the one that ends the scan.
        let work = s.work_for_window(from, to);
        assert!(work <= 7 + 2 * SLACK_DAYS as usize + 2, "{work} instants");
        // The same for the coarser frequencies, with INTERVAL, far out.
        for (rule, first) in [
            (
                "FREQ=WEEKLY;INTERVAL=3;BYDAY=TU,SA;WKST=SU",
                "2030-01-08T08:00:00Z",
            ),
            ("FREQ=MONTHLY;BYDAY=-1FR", "2030-01-25T08:00:00Z"),
            (
                "FREQ=YEARLY;INTERVAL=2;BYMONTH=3;BYDAY=2MO",
                "2030-03-11T08:00:00Z",
            ),
        ] {
            let s = series(rule, first, Paris);
            let from = utc("2070-01-01T00:00:00Z");
            let to = from + TimeDelta::days(30);
            assert!(s.work_for_window(from, to) <= 10, "{rule}");
            // Same answer as walking from the first occurrence.
            let walked: Vec<_> = s
                .raw_walk_from_first(to)
                .into_iter()
                .filter(|t| *t >= from)
                .collect();
            assert_eq!(starts(&s.occurrences(from, to, &[])), walked, "{rule}");
        }
    }

    #[test]
    fn cancelled_occurrences_are_left_out_and_moved_ones_appear_at_their_new_time() {
        let s = series("FREQ=WEEKLY", "2030-01-07T08:00:00Z", Paris); // Mondays 09:00
        let cancelled = utc("2030-01-14T08:00:00Z");
        let moved_from = utc("2030-01-21T08:00:00Z");
        let exceptions = [
            Exception::Cancelled {
                original_start: cancelled,
            },
            // Moved a month later, into another window.
            Exception::Moved {
                original_start: moved_from,
                start: utc("2030-02-20T15:00:00Z"),
                end: utc("2030-02-20T17:00:00Z"),
            },
            // Not an occurrence of the rule (a Tuesday): ignored.
            Exception::Cancelled {
                original_start: utc("2030-01-08T08:00:00Z"),
            },
        ];
        let january = s.occurrences(
            utc("2030-01-01T00:00:00Z"),
            utc("2030-02-01T00:00:00Z"),
            &exceptions,
        );
        assert_eq!(
            starts(&january),
            vec![utc("2030-01-07T08:00:00Z"), utc("2030-01-28T08:00:00Z")]
        );
        let february = s.occurrences(
            utc("2030-02-15T00:00:00Z"),
            utc("2030-02-22T00:00:00Z"),
            &exceptions,
        );
        assert_eq!(
            february,
            vec![
                Occurrence {
                    start: utc("2030-02-18T08:00:00Z"),
                    end: utc("2030-02-18T09:00:00Z"),
                    original_start: utc("2030-02-18T08:00:00Z"),
                    moved: false,
                },
                Occurrence {
                    start: utc("2030-02-20T15:00:00Z"),
                    end: utc("2030-02-20T17:00:00Z"),
                    original_start: moved_from,
                    moved: true,
                },
            ]
        );
        // Identity stays the original start: a cancelled or moved one is still "of the rule".
        assert!(s.contains(cancelled) && s.contains(moved_from));
        // Moved before an earlier occurrence: the order is by the new start.
        let early = [Exception::Moved {
            original_start: utc("2030-01-28T08:00:00Z"),
            start: utc("2030-01-06T08:00:00Z"),
            end: utc("2030-01-06T09:00:00Z"),
        }];
        let got = s.occurrences(utc("2030-01-01T00:00:00Z"), utc("2030-02-01T00:00:00Z"), &early);
        assert_eq!(
            starts(&got),
            vec![
                utc("2030-01-06T08:00:00Z"),
                utc("2030-01-07T08:00:00Z"),
                utc("2030-01-14T08:00:00Z"),
                utc("2030-01-21T08:00:00Z"),
            ]
        );
        // Cancelling wins over moving the same occurrence.
        let both = [
            Exception::Moved {
                original_start: moved_from,
                start: utc("2030-01-22T08:00:00Z"),
                end: utc("2030-01-22T09:00:00Z"),
            },
            Exception::Cancelled {
                original_start: moved_from,
            },
        ];
        let got = s.occurrences(utc("2030-01-20T00:00:00Z"), utc("2030-01-23T00:00:00Z"), &both);
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn next_after_skips_cancelled_and_sees_moved() {
        let s = series("FREQ=WEEKLY", "2030-01-07T08:00:00Z", Paris);
        let t = utc("2030-01-07T08:00:00Z");
        assert_eq!(
            s.next_after(t, &[]).map(|o| o.start),
            Some(utc("2030-01-14T08:00:00Z"))
        );
        let exceptions = [
            Exception::Cancelled {
                original_start: utc("2030-01-14T08:00:00Z"),
            },
            Exception::Moved {
                original_start: utc("2030-01-28T08:00:00Z"),
                start: utc("2030-01-20T10:00:00Z"),
                end: utc("2030-01-20T11:00:00Z"),
            },
        ];
        let next = s.next_after(t, &exceptions).map(|o| o.start);
        assert_eq!(next, Some(utc("2030-01-20T10:00:00Z")));
    }

    #[test]
    fn contains_only_the_rules_instants() {
        let s = series("FREQ=WEEKLY;BYDAY=MO,TH", "2030-03-04T08:30:00Z", Paris);
        assert!(s.contains(utc("2030-03-04T08:30:00Z")));
        assert!(s.contains(utc("2030-03-07T08:30:00Z")));
        assert!(
            s.contains(utc("2034-06-01T07:30:00Z")),
            "a Thursday in summer time"
        );
        assert!(!s.contains(utc("2034-06-01T08:30:00Z")), "an hour off");
        assert!(!s.contains(utc("2030-03-05T08:30:00Z")), "a Tuesday");
        assert!(!s.contains(utc("2030-02-28T08:30:00Z")), "before the first");
    }

    #[test]
    fn overlaps_finds_the_first_occurrence_meeting_a_slot() {
        let s = series("FREQ=WEEKLY", "2030-01-07T08:00:00Z", Paris); // Mon 09:00-10:00
                                                                      // A slot starting in the middle of an occurrence.
        let hit = s.overlaps(utc("2032-05-03T07:30:00Z"), utc("2032-05-03T08:30:00Z"), &[]);
        assert_eq!(hit.map(|o| o.start), Some(utc("2032-05-03T07:00:00Z")));
        // Touching ends do not overlap (half-open).
        assert_eq!(
            s.overlaps(utc("2032-05-03T08:00:00Z"), utc("2032-05-03T09:00:00Z"), &[]),
            None
        );
        // Cancelled: free; moved onto the slot: taken.
        let exceptions = [
            Exception::Cancelled {
                original_start: utc("2032-05-03T07:00:00Z"),
            },
            Exception::Moved {
                original_start: utc("2032-05-10T07:00:00Z"),
                start: utc("2032-05-04T12:00:00Z"),
                end: utc("2032-05-04T14:00:00Z"),
            },
        ];
        let slot = (utc("2032-05-03T07:30:00Z"), utc("2032-05-03T08:30:00Z"));
        assert_eq!(s.overlaps(slot.0, slot.1, &exceptions), None);
        let hit = s.overlaps(
            utc("2032-05-04T13:00:00Z"),
            utc("2032-05-04T13:30:00Z"),
            &exceptions,
        );
        assert!(hit.is_some_and(|o| o.moved));
    }

    #[test]
    fn first_conflict_between_two_series() {
        // Mondays 09:00-10:00 every week vs. the first Monday of the month 09:30-10:30.
        let weekly = series("FREQ=WEEKLY", "2030-01-07T08:00:00Z", Paris);
        let monthly = series("FREQ=MONTHLY;BYDAY=1MO", "2030-02-04T08:30:00Z", Paris);
        let (a, b) = first_conflict(
            &weekly,
            &[],
            &monthly,
            &[],
            utc("2030-01-01T00:00:00Z"),
            utc("2031-01-01T00:00:00Z"),
        )
        .expect("a conflict");
        assert_eq!(
            (a.start, b.start),
            (utc("2030-02-04T08:00:00Z"), utc("2030-02-04T08:30:00Z"))
        );
        // Cancel the weekly one that day: the next clash is in March.
        let cancelled = [Exception::Cancelled {
            original_start: utc("2030-02-04T08:00:00Z"),
        }];
        let (a, _) = first_conflict(
            &weekly,
            &cancelled,
            &monthly,
            &[],
            utc("2030-01-01T00:00:00Z"),
            utc("2031-01-01T00:00:00Z"),
        )
        .expect("a conflict");
        assert_eq!(a.start, utc("2030-03-04T08:00:00Z"));
        // Tuesdays never meet Mondays, up to any horizon given.
        let tuesdays = series("FREQ=WEEKLY;BYDAY=TU", "2030-01-08T08:00:00Z", Paris);
        let none = first_conflict(
            &weekly,
            &[],
            &tuesdays,
            &[],
            utc("2030-01-01T00:00:00Z"),
            utc("2040-01-01T00:00:00Z"),
        );
        assert_eq!(none, None);
    }

    #[test]
    fn rule_text_is_normalised() {
        let s = series(
            " rrule:freq=weekly;byday=th,mo;interval=1;wkst=mo;until=20301231T235959Z ",
            "2030-03-04T08:30:00Z",
            Paris,
        );
        assert_eq!(s.rule(), "FREQ=WEEKLY;UNTIL=20301231T235959Z;BYDAY=MO,TH");
        let s = series(
            "FREQ=MONTHLY;BYDAY=1MO;INTERVAL=2;COUNT=6",
            "2030-03-04T08:30:00Z",
            Paris,
        );
        assert_eq!(s.rule(), "FREQ=MONTHLY;INTERVAL=2;COUNT=6;BYDAY=1MO");
        // The numbered day survives: "first Monday", not "every Monday".
        assert!(!s.contains(utc("2030-03-11T08:30:00Z")));
    }

    #[test]
    fn rules_are_refused_with_what_to_do() {
        let cases = [
            ("", "empty"),
            ("FREQ=WEEKLY;FOO=1", "unknown repeat rule part \"FOO\""),
            ("COUNT=3", "no FREQ"),
            (
                "FREQ=WEEKLY;COUNT=20000",
                "COUNT=20000 is too large: at most 10000",
            ),
            ("FREQ=WEEKLY;COUNT=0", "COUNT=0 is not a whole number"),
            (
                "FREQ=WEEKLY;UNTIL=20290101T000000Z",
                "is before the first occurrence",
            ),
            ("FREQ=WEEKLY;COUNT=3;UNTIL=20310101", "cannot both be given"),
            ("FREQ=HOURLY", "daily or less often"),
            ("FREQ=MINUTELY", "daily or less often"),
            ("FREQ=SECONDLY", "daily or less often"),
            ("FREQ=FORTNIGHTLY", "not a frequency"),
            ("FREQ=DAILY;BYHOUR=9,17", "time of day from the event"),
            ("FREQ=YEARLY;BYWEEKNO=20", "not supported"),
            ("FREQ=WEEKLY;BYSETPOS=1;BYDAY=MO", "needs FREQ=MONTHLY"),
            ("FREQ=MONTHLY;BYSETPOS=1", "add one"),
            ("FREQ=WEEKLY;BYDAY=1MO", "numbered day (1MO) needs FREQ=MONTHLY"),
            ("FREQ=WEEKLY;BYDAY=XMO", "not a weekday"),
            ("FREQ=MONTHLY;BYDAY=6MO", "the number must be 1 to 5"),
            ("FREQ=WEEKLY;BYMONTHDAY=4", "cannot be used with FREQ=WEEKLY"),
            ("FREQ=MONTHLY;BYMONTHDAY=0", "not a number from 1 to 31"),
            ("FREQ=YEARLY;BYMONTH=13", "not a number from 1 to 12"),
            ("FREQ=WEEKLY;INTERVAL=0", "INTERVAL=0 is not a whole number"),
            ("FREQ=WEEKLY;WKST=XX", "WKST=XX is not a weekday"),
            ("FREQ=WEEKLY;UNTIL=tomorrow", "not a date-time"),
            ("FREQ=WEEKLY;FREQ=DAILY", "appears twice"),
            ("FREQ=WEEKLY;WEEKLY", "not NAME=VALUE"),
            ("FREQ=WEEKLY;COUNT=", "has no value"),
            ("DTSTART:20300304T093000\nRRULE:FREQ=WEEKLY", "no DTSTART"),
            ("DTSTART=20300304T093000;FREQ=WEEKLY", "no DTSTART"),
            ("EXDATE:20300304T093000", "not an RRULE"),
            // 2030-03-04 is a Monday.
            (
                "FREQ=WEEKLY;BYDAY=TU",
                "is not an occurrence of FREQ=WEEKLY;BYDAY=TU",
            ),
            (
                "FREQ=MONTHLY;BYMONTHDAY=15",
                "start the series on a day the rule selects",
            ),
        ];
        for (rule, expected) in cases {
            let e = error(rule);
            assert!(e.contains(expected), "{rule:?}: {e}");
            assert!(!e.contains('\n'), "{rule:?}: one line please: {e}");
        }
        let e = Series::new(
            "FREQ=WEEKLY",
            utc("2030-03-04T08:30:00Z"),
            TimeDelta::zero(),
            Paris,
        )
        .err()
        .unwrap_or_default();
        assert!(e.contains("positive duration"), "{e}");
        let e = Series::new("FREQ=WEEKLY", utc("2030-03-04T08:30:00.5Z"), hour(), Paris)
            .err()
            .unwrap_or_default();
        assert!(e.contains("whole second"), "{e}");
        // The second 02:30 of 27 October 2030 (CET) cannot be a series' first start.
        let e = Series::new("FREQ=DAILY", utc("2030-10-27T01:30:00Z"), hour(), Paris)
            .err()
            .unwrap_or_default();
        assert!(e.contains("clocks go back"), "{e}");
    }

    #[test]
    fn ending_before_keeps_the_earlier_occurrences_and_wall_clock() {
        // Weekly 09:30 Paris from Monday 2030-03-18, across the spring-forward change.
        let s = Series::new("FREQ=WEEKLY;COUNT=16", utc("2030-03-18T08:30:00Z"), hour(), Paris)
            .expect("a series");
        let cut = utc("2030-04-08T07:30:00Z");
        let cut_series = s.ending_before(cut).expect("valid").expect("some left");
        assert_eq!(cut_series.rule(), "FREQ=WEEKLY;UNTIL=20300408T072959Z");
        let all = |s: &Series| {
            starts(&s.occurrences(utc("2030-01-01T00:00:00Z"), utc("2031-01-01T00:00:00Z"), &[]))
        };
        assert_eq!(
            all(&cut_series),
            [
                utc("2030-03-18T08:30:00Z"),
                utc("2030-03-25T08:30:00Z"),
                utc("2030-04-01T07:30:00Z"),
            ]
        );
        assert_eq!(cut_series.end(), Some(utc("2030-04-01T08:30:00Z")));
        // Open-ended rules get an end; a cut at the first start leaves nothing.
        let open = Series::new(
            "FREQ=WEEKLY;BYDAY=MO,TH",
            utc("2030-03-18T08:30:00Z"),
            hour(),
            Paris,
        )
        .expect("a series");
        let cut_open = open.ending_before(utc("2030-03-22T00:00:00Z")).unwrap().unwrap();
        assert_eq!(
            all(&cut_open),
            [utc("2030-03-18T08:30:00Z"), utc("2030-03-21T08:30:00Z")]
        );
        assert!(open.ending_before(utc("2030-03-18T08:30:00Z")).unwrap().is_none());
    }

    /// A tiny deterministic generator, so the property test needs no extra crate.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len() as u64) as usize]
        }
    }

    fn random_rule(rng: &mut Rng) -> String {
        let freq = rng.pick(&["DAILY", "WEEKLY", "MONTHLY", "YEARLY"]);
        let mut parts = vec![format!("FREQ={freq}")];
        if rng.below(3) == 0 {
            parts.push(format!("INTERVAL={}", 2 + rng.below(3)));
        }
        let days = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];
        let mut by_day = false;
        match freq {
            "WEEKLY" if rng.below(2) == 0 => {
                let mut chosen: Vec<&str> = days.iter().copied().filter(|_| rng.below(3) == 0).collect();
                if chosen.is_empty() {
                    chosen.push(rng.pick(&days));
                }
                parts.push(format!("BYDAY={}", chosen.join(",")));
                if rng.below(2) == 0 {
                    parts.push(format!("WKST={}", rng.pick(&days)));
                }
            }
            "DAILY" if rng.below(3) == 0 => {
                parts.push(format!("BYDAY={}", rng.pick(&["MO,WE,FR", "SA,SU", "TU"])))
            }
            "MONTHLY" | "YEARLY" => match rng.below(4) {
                0 => {
                    by_day = true;
                    let n = rng.pick(&["1", "2", "-1", "3", ""]);
                    parts.push(format!("BYDAY={n}{}", rng.pick(&days)));
                }
                1 => parts.push(format!(
                    "BYMONTHDAY={}",
                    rng.pick(&["1", "15", "28", "31", "-1", "1,15"])
                )),
                2 => {
                    by_day = true;
                    parts.push("BYDAY=MO,TU,WE,TH,FR".into());
                    parts.push(format!("BYSETPOS={}", rng.pick(&["1", "-1", "2"])));
                }
                _ => {}
            },
            _ => {}
        }
        if freq == "YEARLY" && rng.below(2) == 0 || freq == "DAILY" && rng.below(4) == 0 {
            parts.push(format!("BYMONTH={}", rng.pick(&["3", "10", "3,10", "11,12,1"])));
        }
        let _ = by_day;
        match rng.below(3) {
            0 => parts.push(format!("COUNT={}", 1 + rng.below(60))),
            1 => parts.push(format!(
                "UNTIL=20{}0{}15T120000Z",
                31 + rng.below(8),
                1 + rng.below(9)
            )),
            _ => {}
        }
        parts.join(";")
    }

    /// The rrule crate's own expansion, in the zone, walked from DTSTART: a second, independent
    /// path (its DST handling agrees with RFC 5545 where a zone does not skip midnight).
    fn crate_expansion(s: &Series, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let local = s.first_start().with_timezone(&s.timezone()).naive_local();
        let text = format!(
            "DTSTART;TZID={}:{}\nRRULE:{}",
            s.timezone().name(),
            local.format("%Y%m%dT%H%M%S"),
            s.rule()
        );
        let set: RRuleSet = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        let mut out = Vec::new();
        for t in &set {
            let t = t.with_timezone(&Utc);
            if t >= to {
                break;
            }
            out.push(t);
        }
        out
    }

    #[test]
    fn windows_match_a_full_expansion_for_random_rules() {
        let zones = [
            Paris,
            New_York,
            chrono_tz::Asia::Tokyo,
            chrono_tz::Australia::Sydney,
            chrono_tz::UTC,
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut checked = 0;
        for _ in 0..300 {
            let rule = random_rule(&mut rng);
            let tz = zones[rng.below(zones.len() as u64) as usize];
            // Any start; then the rule's first instant from there becomes the first start.
            let candidate = NaiveDate::from_ymd_opt(2030, 1, 1)
                .and_then(|d| d.checked_add_days(chrono::Days::new(rng.below(700))))
                .and_then(|d| d.and_hms_opt(rng.below(24) as u32, [0, 30, 45][rng.below(3) as usize], 0))
                .expect("a date");
            let open_rule: String = rule
                .split(';')
                .filter(|p| !p.starts_with("COUNT") && !p.starts_with("UNTIL"))
                .collect::<Vec<_>>()
                .join(";");
            let probe = format!(
                "DTSTART;TZID={}:{}\nRRULE:{}",
                tz.name(),
                candidate.format("%Y%m%dT%H%M%S"),
                open_rule
            );
            let set: RRuleSet = probe.parse().unwrap_or_else(|e| panic!("{probe}: {e}"));
            let Some(first) = set.into_iter().next() else {
                continue;
            };
            let first = first.with_timezone(&Utc);
            let s = match Series::new(&rule, first, TimeDelta::minutes(45), tz) {
                Ok(s) => s,
                // UNTIL before the (moved) first start.
                Err(e) if e.contains("UNTIL") => continue,
                Err(e) => panic!("{rule} from {first} in {tz}: {e}"),
            };
            for _ in 0..4 {
                let from = first
                    + TimeDelta::days(rng.below(4000) as i64 - 30)
                    + TimeDelta::hours(rng.below(24) as i64);
                let to = from + TimeDelta::days(1 + rng.below(90) as i64);
                let expected: Vec<_> = crate_expansion(&s, to)
                    .into_iter()
                    .filter(|t| *t >= from)
                    .collect();
                let got = s.occurrences(from, to, &[]);
                assert_eq!(
                    starts(&got),
                    expected,
                    "{} from {first} in {tz}, window {from}..{to}",
                    s.rule()
                );
                assert_eq!(
                    s.raw_walk_from_first(to)
                        .into_iter()
                        .filter(|t| *t >= from)
                        .collect::<Vec<_>>(),
                    expected
                );
                for o in &got {
                    assert!(s.contains(o.start), "{} contains {}", s.rule(), o.start);
                    assert!(!s.contains(o.start + TimeDelta::minutes(30)));
                }
                checked += 1;
            }
            if let Some(end) = s.end() {
                let all = crate_expansion(&s, utc("9000-01-01T00:00:00Z"));
                assert_eq!(all.last().map(|t| *t + s.duration()), Some(end), "{}", s.rule());
            }
        }
        assert!(checked > 800, "only {checked} windows checked");
    }
}
