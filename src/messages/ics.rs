//! iCalendar (RFC 5545) attachments for event emails, so that mail clients offer "add to
//! calendar" and later update or remove the entry. Written by hand because the output is one
//! fixed shape: the rules that matter are CRLF line ends, TEXT escaping, and folding long lines
//! at 75 octets without splitting a UTF-8 character. Invitations use METHOD:REQUEST, withdrawals
//! METHOD:CANCEL (RFC 5546); clients match them to the original by UID and keep the entry with
//! the highest SEQUENCE, so the caller must keep the UID stable and raise SEQUENCE on every change.
//!
//! A recurring event ([`build_series`]) is written in its own zone (`DTSTART;TZID=...` with
//! the local wall-clock time, `RRULE`, `EXDATE` for cancelled occurrences, `RECURRENCE-ID`
//! overrides for moved ones), because only then does a calendar keep a weekly 09:30 at 09:30
//! across daylight saving. RFC 5545 wants a `VTIMEZONE` for every TZID, and Outlook reads it
//! instead of the zone name, so one is derived from chrono-tz (see [`vtimezone`]).

use std::collections::HashMap;

use chrono::{DateTime, Datelike, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::{OffsetComponents, OffsetName, Tz};

use crate::recurrence::{resolve_local, Exception, Series};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Request,
    Cancel,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Request => "REQUEST",
            Method::Cancel => "CANCEL",
        }
    }
}

#[derive(Debug, Clone)]
pub struct IcsInput<'a> {
    /// Stable across every message about the same event, e.g. `event-42@notifyctl`.
    pub uid: &'a str,
    pub sequence: i64,
    pub title: &'a str,
    pub description: &'a str,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub video_url: Option<&'a str>,
    pub organizer_email: &'a str,
    pub attendee_email: &'a str,
    pub attendee_name: &'a str,
    /// When this version of the object was created; an input because the clock is never read here.
    pub stamp: DateTime<Utc>,
}

const PRODID: &str = "-//notifyctl//notifyctl//EN";
const MAX_LINE_OCTETS: usize = 75;

/// The whole `.ics` body, CRLF-terminated, ready to attach as `text/calendar; method=...`.
pub fn build(input: &IcsInput, method: Method) -> String {
    let times = vec![
        format!("DTSTART:{}", utc_stamp(input.starts_at)),
        format!("DTEND:{}", utc_stamp(input.ends_at)),
    ];
    let mut lines = calendar_head(method);
    lines.extend(event_lines(input, method, &times));
    finish(lines)
}

/// What makes an invitation one for a recurring series, beside the [`IcsInput`] of the event
/// (whose `starts_at`/`ends_at` are not used: the times come from the series).
#[derive(Debug, Clone, Copy)]
pub struct SeriesIcs<'a> {
    pub series: &'a Series,
    /// The series' exceptions, all of them: cancelled ones become EXDATE, moved ones
    /// RECURRENCE-ID overrides. Exceptions for instants the rule does not produce are left out.
    pub exceptions: &'a [Exception],
    pub scope: Scope,
}

/// Which part of a series a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The whole series. REQUEST: the rule with its EXDATEs and an override for every moved
    /// occurrence (so a newly invited attendee gets all of it). CANCEL: the series ends.
    Series,
    /// One occurrence, by its original start. REQUEST: its override (the moved time, when it
    /// was moved). CANCEL: that occurrence only (RECURRENCE-ID, STATUS:CANCELLED).
    Occurrence(DateTime<Utc>),
}

/// The `.ics` body for a recurring event: VTIMEZONE, then the master VEVENT and/or overrides
/// as [`Scope`] says. Every component carries `input.sequence`: raise the event's SEQUENCE on
/// any change to the series or to one of its occurrences.
pub fn build_series(input: &IcsInput, series: &SeriesIcs, method: Method) -> String {
    let rule = series.series;
    let tz = rule.timezone();
    let mut cancelled: Vec<DateTime<Utc>> = Vec::new();
    let mut moved: HashMap<DateTime<Utc>, (DateTime<Utc>, DateTime<Utc>)> = HashMap::new();
    for exception in series.exceptions {
        match *exception {
            Exception::Cancelled { original_start } => cancelled.push(original_start),
            Exception::Moved {
                original_start,
                start,
                end,
            } => {
                moved.insert(original_start, (start, end));
            }
        }
    }
    cancelled.retain(|t| rule.contains(*t));
    cancelled.sort();
    cancelled.dedup();
    // Cancelling wins over moving, as in `Series::occurrences`.
    moved.retain(|original, (start, end)| {
        end > start && !cancelled.contains(original) && rule.contains(*original)
    });
    let mut moved: Vec<(DateTime<Utc>, DateTime<Utc>, DateTime<Utc>)> = moved
        .into_iter()
        .map(|(original, (start, end))| (original, start, end))
        .collect();
    moved.sort();

    // The zone must describe every instant written in it.
    let mut earliest = rule.first_start();
    // An open series goes on: describe the zone for some years past the later of its start
    // and this message.
    let mut latest = rule
        .end()
        .unwrap_or_else(|| rule.first_start().max(input.stamp) + TimeDelta::days(OPEN_SERIES_HORIZON_DAYS));
    for (original, start, end) in &moved {
        earliest = earliest.min(*start).min(*original);
        latest = latest.max(*end);
    }
    if let Scope::Occurrence(original) = series.scope {
        earliest = earliest.min(original);
        latest = latest.max(original + rule.duration());
    }

    let mut lines = calendar_head(method);
    lines.extend(vtimezone(tz, earliest, latest));
    let recurrence_id = |original: DateTime<Utc>| zoned("RECURRENCE-ID", tz, original);
    match series.scope {
        Scope::Series => {
            let mut times = vec![
                zoned("DTSTART", tz, rule.first_start()),
                zoned("DTEND", tz, rule.first_start() + rule.duration()),
                format!("RRULE:{}", rule.rule()),
            ];
            times.extend(exdates(tz, &cancelled));
            lines.extend(event_lines(input, method, &times));
            if method == Method::Request {
                for (original, start, end) in &moved {
                    let times = vec![
                        recurrence_id(*original),
                        zoned("DTSTART", tz, *start),
                        zoned("DTEND", tz, *end),
                    ];
                    lines.extend(event_lines(input, method, &times));
                }
            }
        }
        Scope::Occurrence(original) => {
            let (start, end) = moved
                .iter()
                .find(|(o, _, _)| *o == original)
                .map_or((original, original + rule.duration()), |(_, s, e)| (*s, *e));
            let times = vec![
                recurrence_id(original),
                zoned("DTSTART", tz, start),
                zoned("DTEND", tz, end),
            ];
            lines.extend(event_lines(input, method, &times));
        }
    }
    finish(lines)
}

/// How far past its start (or the message) the VTIMEZONE of an open-ended series is worked out. Regular zones end in
/// open yearly rules that go on past it; irregular ones are listed transition by transition.
const OPEN_SERIES_HORIZON_DAYS: i64 = 10 * 366;

fn calendar_head(method: Method) -> Vec<String> {
    vec![
        "BEGIN:VCALENDAR".into(),
        format!("PRODID:{PRODID}"),
        "VERSION:2.0".into(),
        "CALSCALE:GREGORIAN".into(),
        format!("METHOD:{}", method.as_str()),
    ]
}

/// One VEVENT; `times` are the date-time (and recurrence) properties, written after DTSTAMP.
fn event_lines(input: &IcsInput, method: Method, times: &[String]) -> Vec<String> {
    let status = match method {
        Method::Request => "CONFIRMED",
        Method::Cancel => "CANCELLED",
    };
    let mut lines: Vec<String> = vec![
        "BEGIN:VEVENT".into(),
        format!("UID:{}", escape_text(input.uid)),
        format!("SEQUENCE:{}", input.sequence.max(0)),
        format!("DTSTAMP:{}", utc_stamp(input.stamp)),
    ];
    lines.extend(times.iter().cloned());
    lines.push(format!("SUMMARY:{}", escape_text(input.title)));
    if !input.description.is_empty() {
        lines.push(format!("DESCRIPTION:{}", escape_text(input.description)));
    }
    if let Some(url) = input.video_url.filter(|u| !u.trim().is_empty()) {
        lines.push(format!("LOCATION:{}", escape_text(url)));
        // URL is a URI value, not TEXT: backslash escapes would corrupt it, so only strip what
        // could end the line.
        lines.push(format!("URL:{}", strip_controls(url)));
    }
    lines.push(format!(
        "ORGANIZER:mailto:{}",
        strip_controls(input.organizer_email)
    ));
    lines.push(format!(
        "ATTENDEE;CN={};ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=FALSE:mailto:{}",
        quote_param(input.attendee_name),
        strip_controls(input.attendee_email)
    ));
    lines.push(format!("STATUS:{status}"));
    lines.push("END:VEVENT".into());
    lines
}

fn finish(mut lines: Vec<String>) -> String {
    lines.push("END:VCALENDAR".into());
    let mut out = String::new();
    for line in &lines {
        fold_into(&mut out, line);
    }
    out
}

/// `NAME;TZID=zone:local` when the local wall-clock time reads back as `t` (RFC 5545 §3.3.5),
/// else `NAME:utcZ`: the second 01:30 of a night the clocks go back has no local spelling.
fn zoned(name: &str, tz: Tz, t: DateTime<Utc>) -> String {
    match local_spelling(tz, t) {
        Some(local) => format!("{name};TZID={}:{local}", tz.name()),
        None => format!("{name}:{}", utc_stamp(t)),
    }
}

fn local_spelling(tz: Tz, t: DateTime<Utc>) -> Option<String> {
    let local = t.with_timezone(&tz).naive_local();
    (resolve_local(tz, local) == t).then(|| local_stamp(local))
}

/// EXDATE lines: the zoned values on one line, any that need UTC on another.
fn exdates(tz: Tz, cancelled: &[DateTime<Utc>]) -> Vec<String> {
    let mut zoned_values = Vec::new();
    let mut utc_values = Vec::new();
    for t in cancelled {
        match local_spelling(tz, *t) {
            Some(local) => zoned_values.push(local),
            None => utc_values.push(utc_stamp(*t)),
        }
    }
    let mut lines = Vec::new();
    if !zoned_values.is_empty() {
        lines.push(format!("EXDATE;TZID={}:{}", tz.name(), zoned_values.join(",")));
    }
    if !utc_values.is_empty() {
        lines.push(format!("EXDATE:{}", utc_values.join(",")));
    }
    lines
}

fn utc_stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

fn local_stamp(t: NaiveDateTime) -> String {
    t.format("%Y%m%dT%H%M%S").to_string()
}

/// A change of the zone's UTC offset.
#[derive(Debug, Clone)]
struct Transition {
    /// The first instant of the new offset.
    at: DateTime<Utc>,
    from: i32,
    to: i32,
    dst: bool,
    name: Option<String>,
}

impl Transition {
    /// The onset as RFC 5545 writes it: the local time in the offset that ends.
    fn onset(&self) -> NaiveDateTime {
        self.at.naive_utc() + TimeDelta::seconds(i64::from(self.from))
    }

    /// "The n-th (or last, -1) weekday of the month at this time": the shape of every
    /// yearly rule in common use, and the only one Outlook reads.
    fn yearly_shape(&self) -> (u32, chrono::Weekday, i8, chrono::NaiveTime) {
        let onset = self.onset();
        let day = onset.day();
        let days_in_month = days_in_month(onset.year(), onset.month());
        let nth = if day + 7 > days_in_month {
            -1
        } else {
            i8::try_from((day - 1) / 7 + 1).unwrap_or(1)
        };
        (onset.month(), onset.weekday(), nth, onset.time())
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    let next = if month == 12 {
        chrono::NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        chrono::NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    next.and_then(|n| n.pred_opt()).map_or(31, |last| last.day())
}

fn offset_at(tz: Tz, t: DateTime<Utc>) -> (i32, bool, Option<String>) {
    let offset = tz.offset_from_utc_datetime(&t.naive_utc());
    (
        offset.fix().local_minus_utc(),
        !offset.dst_offset().is_zero(),
        offset.abbreviation().map(str::to_string),
    )
}

/// The zone's offset changes in `[from, to)`, found by probing each day and bisecting to the
/// second (chrono-tz has no transition API; zones change at most a few times a year).
fn transitions(tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Transition> {
    let mut found = Vec::new();
    let mut t = from;
    let (mut offset, _, _) = offset_at(tz, t);
    while t < to {
        let next = t + TimeDelta::days(1);
        let (next_offset, _, _) = offset_at(tz, next);
        if next_offset != offset {
            // Transitions fall on whole seconds: bisect on those.
            let (mut before, mut after) = (t.timestamp(), next.timestamp());
            while after - before > 1 {
                let middle = before + (after - before) / 2;
                let at = DateTime::from_timestamp(middle, 0).unwrap_or(t);
                if offset_at(tz, at).0 == offset {
                    before = middle;
                } else {
                    after = middle;
                }
            }
            let after = DateTime::from_timestamp(after, 0).unwrap_or(next);
            let (to_offset, dst, name) = offset_at(tz, after);
            found.push(Transition {
                at: after,
                from: offset,
                to: to_offset,
                dst,
                name,
            });
            offset = next_offset;
        }
        t = next;
    }
    found
}

/// The longest span a VTIMEZONE is worked out for (a day's probe per year each).
const MAX_SPAN_YEARS: i32 = 60;

/// A VTIMEZONE for `tz` that is right for every instant in `[earliest, latest]`.
///
/// The transitions from the January of the year before `earliest` to the end of `latest`'s
/// year (at most 60 years) are found by probing chrono-tz. Consecutive yearly transitions of
/// the same kind that fall on "the n-th / last weekday of a month at the same time" become one
/// STANDARD or DAYLIGHT with `RRULE:FREQ=YEARLY;BYMONTH=m;BYDAY=nWD`, open-ended when it runs
/// to the end of that span (so a calendar extends it, as it must for an open series), closed
/// with UNTIL when the zone changed its rules. Any other transition (zones whose rule is
/// "Friday before the last Sunday" or follows Ramadan) is written on its own, so such zones
/// are exact up to the end of the span only. A zone without transitions gets one STANDARD.
pub fn vtimezone(tz: Tz, earliest: DateTime<Utc>, latest: DateTime<Utc>) -> Vec<String> {
    let start_year = earliest.year() - 1;
    let end_year = latest
        .year()
        .clamp(earliest.year(), earliest.year() + MAX_SPAN_YEARS);
    let span_start = Utc
        .with_ymd_and_hms(start_year, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(earliest);
    let span_end = Utc
        .with_ymd_and_hms(end_year + 1, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(latest);
    let found = transitions(tz, span_start, span_end);

    let mut lines = vec!["BEGIN:VTIMEZONE".to_string(), format!("TZID:{}", tz.name())];
    // Before the first transition found (or for ever, in a zone without any), the offset of
    // the span's start holds.
    if found.first().is_none_or(|first| first.at > earliest) {
        let (offset, dst, name) = offset_at(tz, span_start);
        lines.extend(observance(
            dst,
            "19700101T000000",
            offset,
            offset,
            name.as_deref(),
            None,
        ));
    }

    // Runs of yearly transitions of one kind and one shape.
    let mut runs: Vec<Vec<&Transition>> = Vec::new();
    let mut open: HashMap<(i32, i32, bool), usize> = HashMap::new();
    for t in &found {
        let key = (t.from, t.to, t.dst);
        let extends = open.get(&key).is_some_and(|&i| {
            runs[i].last().is_some_and(|last| {
                last.onset().year() + 1 == t.onset().year()
                    && last.yearly_shape() == t.yearly_shape()
                    && last.name == t.name
            })
        });
        if extends {
            if let Some(&i) = open.get(&key) {
                runs[i].push(t);
            }
        } else {
            open.insert(key, runs.len());
            runs.push(vec![t]);
        }
    }
    for run in &runs {
        let (Some(first), Some(last)) = (run.first(), run.last()) else {
            continue;
        };
        let rule = if run.len() < 2 {
            None
        } else {
            let (month, weekday, nth, _) = first.yearly_shape();
            let mut rule = format!("FREQ=YEARLY;BYMONTH={month};BYDAY={nth}{}", weekday_code(weekday));
            if last.onset().year() < end_year {
                rule.push_str(&format!(";UNTIL={}", utc_stamp(last.at)));
            }
            Some(rule)
        };
        lines.extend(observance(
            first.dst,
            &local_stamp(first.onset()),
            first.from,
            first.to,
            first.name.as_deref(),
            rule.as_deref(),
        ));
    }
    lines.push("END:VTIMEZONE".into());
    lines
}

fn observance(
    dst: bool,
    onset: &str,
    from: i32,
    to: i32,
    name: Option<&str>,
    rule: Option<&str>,
) -> Vec<String> {
    let kind = if dst { "DAYLIGHT" } else { "STANDARD" };
    let mut lines = vec![
        format!("BEGIN:{kind}"),
        format!("DTSTART:{onset}"),
        format!("TZOFFSETFROM:{}", utc_offset(from)),
        format!("TZOFFSETTO:{}", utc_offset(to)),
    ];
    if let Some(rule) = rule {
        lines.push(format!("RRULE:{rule}"));
    }
    if let Some(name) = name.filter(|n| !n.is_empty()) {
        lines.push(format!("TZNAME:{}", escape_text(name)));
    }
    lines.push(format!("END:{kind}"));
    lines
}

/// RFC 5545 UTC-OFFSET: `+HHMM`, with seconds only when there are some (`-0002 30`-style
/// local mean times of old dates).
fn utc_offset(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let s = seconds.unsigned_abs();
    let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60);
    if sec == 0 {
        format!("{sign}{h:02}{m:02}")
    } else {
        format!("{sign}{h:02}{m:02}{sec:02}")
    }
}

fn weekday_code(day: chrono::Weekday) -> &'static str {
    match day {
        chrono::Weekday::Mon => "MO",
        chrono::Weekday::Tue => "TU",
        chrono::Weekday::Wed => "WE",
        chrono::Weekday::Thu => "TH",
        chrono::Weekday::Fri => "FR",
        chrono::Weekday::Sat => "SA",
        chrono::Weekday::Sun => "SU",
    }
}

/// RFC 5545 §3.3.11. Other control characters are not allowed in TEXT at all, so they are
/// dropped rather than escaped; CRLF and lone CR count as one line break.
fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            '\t' => out.push('\t'),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn strip_controls(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

/// Parameter values cannot contain DQUOTE and have no escape for it (short of RFC 6868, which
/// not every client reads), so a quote in a display name becomes an apostrophe.
fn quote_param(s: &str) -> String {
    let inner: String = s
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if c == '"' { '\'' } else { c })
        .collect();
    format!("\"{inner}\"")
}

/// Appends `line` folded so that no physical line exceeds 75 octets (the leading space of a
/// continuation counts), cutting only between characters so multi-byte UTF-8 stays intact.
fn fold_into(out: &mut String, line: &str) {
    let mut budget = MAX_LINE_OCTETS;
    let mut used = 0;
    for c in line.chars() {
        if used + c.len_utf8() > budget {
            out.push_str("\r\n ");
            budget = MAX_LINE_OCTETS - 1;
            used = 0;
        }
        out.push(c);
        used += c.len_utf8();
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use icalendar::parser::{read_calendar, unfold, Component};

    fn input<'a>(title: &'a str, description: &'a str) -> IcsInput<'a> {
        IcsInput {
            uid: "event-42@notifyctl",
            sequence: 3,
            title,
            description,
            starts_at: Utc.with_ymd_and_hms(2030, 3, 31, 0, 30, 0).unwrap(),
            ends_at: Utc.with_ymd_and_hms(2030, 3, 31, 1, 30, 0).unwrap(),
            video_url: Some("https://meet.example.com/abc-def?pwd=x;y,z"),
            organizer_email: "noreply@notifyctl.example",
            attendee_email: "alice@example.com",
            attendee_name: "Alice \"Al\" Martin, PhD",
            stamp: Utc.with_ymd_and_hms(2030, 3, 1, 12, 0, 0).unwrap(),
        }
    }

    fn prop(component: &Component, name: &str) -> String {
        component
            .find_prop(name)
            .unwrap_or_else(|| panic!("no {name} property"))
            .val
            .as_str()
            .to_string()
    }

    fn parse(ics: &str, check: impl FnOnce(&Component, &Component)) {
        let unfolded = unfold(ics);
        let cal = read_calendar(&unfolded).expect("icalendar parser rejected the output");
        let root = Component {
            name: "VCALENDAR".into(),
            properties: cal.properties.clone(),
            components: vec![],
        };
        let events: Vec<&Component> = cal.components.iter().filter(|c| c.name == "VEVENT").collect();
        assert_eq!(events.len(), 1, "exactly one VEVENT expected");
        check(&root, events[0]);
    }

    #[test]
    fn request_parses_with_expected_properties() {
        let inp = input("Mentoring", "See you there");
        let ics = build(&inp, Method::Request);
        parse(&ics, |cal, ev| {
            assert_eq!(prop(cal, "VERSION"), "2.0");
            assert_eq!(prop(cal, "PRODID"), PRODID);
            assert_eq!(prop(cal, "METHOD"), "REQUEST");
            assert_eq!(prop(ev, "UID"), "event-42@notifyctl");
            assert_eq!(prop(ev, "SEQUENCE"), "3");
            assert_eq!(prop(ev, "STATUS"), "CONFIRMED");
            assert_eq!(prop(ev, "DTSTAMP"), "20300301T120000Z");
            let start = chrono::NaiveDateTime::parse_from_str(&prop(ev, "DTSTART"), "%Y%m%dT%H%M%SZ")
                .unwrap()
                .and_utc();
            assert_eq!(start, inp.starts_at);
            assert_eq!(prop(ev, "DTEND"), "20300331T013000Z");
            assert_eq!(prop(ev, "SUMMARY"), "Mentoring");
            assert_eq!(prop(ev, "URL"), "https://meet.example.com/abc-def?pwd=x;y,z");
            assert_eq!(prop(ev, "LOCATION"), "https://meet.example.com/abc-def?pwd=x;y,z");
            assert_eq!(prop(ev, "ORGANIZER"), "mailto:noreply@notifyctl.example");
            let attendee = ev.find_prop("ATTENDEE").unwrap();
            assert_eq!(attendee.val.as_str(), "mailto:alice@example.com");
        });
    }

    #[test]
    fn cancel_sets_method_and_status() {
        let mut inp = input("Mentoring", "");
        inp.sequence = 4;
        inp.video_url = None;
        let ics = build(&inp, Method::Cancel);
        parse(&ics, |cal, ev| {
            assert_eq!(prop(cal, "METHOD"), "CANCEL");
            assert_eq!(prop(ev, "STATUS"), "CANCELLED");
            assert_eq!(prop(ev, "SEQUENCE"), "4");
            assert!(ev.find_prop("URL").is_none());
            assert!(ev.find_prop("LOCATION").is_none());
            assert!(ev.find_prop("DESCRIPTION").is_none());
        });
    }

    #[test]
    fn every_line_ends_in_crlf_and_fits_75_octets() {
        let long = "Ordre du jour : présentation, questions; suivi — ".repeat(12);
        let ics = build(&input(&long, &long), Method::Request);
        assert!(ics.ends_with("\r\n"));
        assert!(!ics.replace("\r\n", "").contains('\n'), "bare LF found");
        assert!(!ics.replace("\r\n", "").contains('\r'), "bare CR found");
        for line in ics.split("\r\n") {
            assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
        }
        assert!(ics.contains("\r\n "), "long lines should have been folded");
    }

    #[test]
    fn long_description_unfolds_back_to_original() {
        // Multi-byte characters at every position make a mid-character cut likely if folding
        // counted chars instead of octets.
        let description = "Événement « été » ✓ 日本語 ".repeat(20);
        let ics = build(&input("t", &description), Method::Request);
        let desc_lines: Vec<&str> = ics
            .split("\r\n")
            .skip_while(|l| !l.starts_with("DESCRIPTION:"))
            .take_while(|l| l.starts_with("DESCRIPTION:") || l.starts_with(' '))
            .collect();
        assert!(desc_lines.len() > 5);
        assert!(desc_lines.iter().all(|l| l.len() <= 75));
        parse(&ics, |_, ev| assert_eq!(prop(ev, "DESCRIPTION"), description));
    }

    #[test]
    fn text_escaping_round_trips() {
        let title = "Point d'étape; budget, planning";
        let description = "Ligne 1\nLigne 2; avec, ponctuation\r\nChemin C:\\partage\\docs";
        let ics = build(&input(title, description), Method::Request);
        assert!(ics.contains("SUMMARY:Point d'étape\\; budget\\, planning\r\n"));
        parse(&ics, |_, ev| {
            assert_eq!(prop(ev, "SUMMARY"), title);
            assert_eq!(
                prop(ev, "DESCRIPTION"),
                "Ligne 1\nLigne 2; avec, ponctuation\nChemin C:\\partage\\docs"
            );
        });
    }

    #[test]
    fn hostile_values_cannot_inject_properties() {
        let mut inp = input("x\r\nSTATUS:CANCELLED", "y");
        inp.attendee_name = "Eve\r\nATTENDEE:mailto:evil@example.com";
        inp.attendee_email = "eve@example.com\r\nX-EVIL:1";
        let ics = build(&inp, Method::Request);
        assert_eq!(ics.matches("\r\nSTATUS:").count(), 1);
        assert_eq!(ics.matches("\r\nATTENDEE").count(), 1);
        assert!(!ics.contains("\r\nX-EVIL"));
    }

    #[test]
    fn folding_respects_utf8_boundaries() {
        let mut out = String::new();
        let line = format!("X:{}", "é".repeat(100));
        fold_into(&mut out, &line);
        for physical in out.split("\r\n") {
            assert!(physical.len() <= 75);
        }
        assert_eq!(unfold(&out).trim_end(), line);
    }
}

#[cfg(test)]
mod series_tests {
    use super::*;
    use crate::recurrence::Occurrence;
    use icalendar::parser::{read_calendar, unfold, Component, Property};
    use rrule::RRuleSet;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .with_timezone(&Utc)
    }

    fn input() -> IcsInput<'static> {
        IcsInput {
            uid: "event-7@notifyctl",
            sequence: 2,
            title: "Thérapie",
            description: "",
            starts_at: utc("2030-03-18T08:30:00Z"),
            ends_at: utc("2030-03-18T09:30:00Z"),
            video_url: None,
            organizer_email: "noreply@notifyctl.example",
            attendee_email: "ana@example.org",
            attendee_name: "Ana",
            stamp: utc("2030-03-01T12:00:00Z"),
        }
    }

    /// Mondays 09:30 Paris from 18 March 2030, across both changes of 2030.
    fn weekly_paris() -> Series {
        Series::new(
            "FREQ=WEEKLY;COUNT=40",
            utc("2030-03-18T08:30:00Z"),
            TimeDelta::hours(1),
            chrono_tz::Europe::Paris,
        )
        .expect("valid series")
    }

    fn exceptions() -> Vec<Exception> {
        vec![
            Exception::Cancelled {
                original_start: utc("2030-04-01T07:30:00Z"),
            },
            Exception::Cancelled {
                original_start: utc("2030-10-28T08:30:00Z"),
            },
            Exception::Moved {
                original_start: utc("2030-04-08T07:30:00Z"),
                start: utc("2030-04-09T14:00:00Z"),
                end: utc("2030-04-09T15:30:00Z"),
            },
        ]
    }

    fn parsed(ics: &str) -> (Component<'static>, Vec<Component<'static>>) {
        let unfolded: &'static str = Box::leak(unfold(ics).into_boxed_str());
        let cal = read_calendar(unfolded).expect("icalendar parser rejected the output");
        let root = Component {
            name: "VCALENDAR".into(),
            properties: cal.properties.clone(),
            components: vec![],
        };
        (root, cal.components.clone())
    }

    fn prop<'a>(c: &'a Component, name: &str) -> &'a Property<'a> {
        c.find_prop(name)
            .unwrap_or_else(|| panic!("{} has no {name}", c.name.as_str()))
    }

    fn value(c: &Component, name: &str) -> String {
        prop(c, name).val.as_str().to_string()
    }

    fn param(p: &Property, key: &str) -> Option<String> {
        p.params
            .iter()
            .find(|x| x.key.as_str() == key)
            .and_then(|x| x.val.as_ref())
            .map(|v| v.as_str().to_string())
    }

    fn events(components: &[Component<'static>]) -> Vec<Component<'static>> {
        components
            .iter()
            .filter(|c| c.name.as_str() == "VEVENT")
            .cloned()
            .collect()
    }

    #[test]
    fn series_invitation_carries_zone_rule_exdates_and_overrides() {
        let series = weekly_paris();
        let exceptions = exceptions();
        let ics = build_series(
            &input(),
            &SeriesIcs {
                series: &series,
                exceptions: &exceptions,
                scope: Scope::Series,
            },
            Method::Request,
        );
        let (root, components) = parsed(&ics);
        assert_eq!(value(&root, "METHOD"), "REQUEST");
        let zone = components
            .iter()
            .find(|c| c.name.as_str() == "VTIMEZONE")
            .expect("a VTIMEZONE");
        assert_eq!(value(zone, "TZID"), "Europe/Paris");
        let events = events(&components);
        assert_eq!(events.len(), 2, "the master and one override");
        let master = &events[0];
        assert_eq!(value(master, "UID"), "event-7@notifyctl");
        assert!(master.find_prop("RECURRENCE-ID").is_none());
        let start = prop(master, "DTSTART");
        assert_eq!(param(start, "TZID").as_deref(), Some("Europe/Paris"));
        assert_eq!(start.val.as_str(), "20300318T093000");
        assert_eq!(value(master, "DTEND"), "20300318T103000");
        assert_eq!(value(master, "RRULE"), "FREQ=WEEKLY;COUNT=40");
        let exdate = prop(master, "EXDATE");
        assert_eq!(param(exdate, "TZID").as_deref(), Some("Europe/Paris"));
        // Both at 09:30 local, one in summer time and one in winter time.
        assert_eq!(exdate.val.as_str(), "20300401T093000,20301028T093000");
        assert_eq!(value(master, "STATUS"), "CONFIRMED");
        let moved = &events[1];
        assert_eq!(value(moved, "UID"), "event-7@notifyctl");
        assert_eq!(value(moved, "SEQUENCE"), "2");
        let id = prop(moved, "RECURRENCE-ID");
        assert_eq!(param(id, "TZID").as_deref(), Some("Europe/Paris"));
        assert_eq!(id.val.as_str(), "20300408T093000");
        assert_eq!(value(moved, "DTSTART"), "20300409T160000");
        assert_eq!(value(moved, "DTEND"), "20300409T173000");
        assert!(moved.find_prop("RRULE").is_none());
    }

    #[test]
    fn moved_occurrence_is_one_override() {
        let series = weekly_paris();
        let exceptions = exceptions();
        let ics = build_series(
            &input(),
            &SeriesIcs {
                series: &series,
                exceptions: &exceptions,
                scope: Scope::Occurrence(utc("2030-04-08T07:30:00Z")),
            },
            Method::Request,
        );
        let (root, components) = parsed(&ics);
        assert_eq!(value(&root, "METHOD"), "REQUEST");
        let events = events(&components);
        assert_eq!(events.len(), 1);
        let ev = &events[0];
        assert_eq!(value(ev, "RECURRENCE-ID"), "20300408T093000");
        assert_eq!(value(ev, "DTSTART"), "20300409T160000");
        assert_eq!(value(ev, "SEQUENCE"), "2");
        assert_eq!(value(ev, "STATUS"), "CONFIRMED");
        assert!(ev.find_prop("RRULE").is_none() && ev.find_prop("EXDATE").is_none());
        assert!(components.iter().any(|c| c.name.as_str() == "VTIMEZONE"));
    }

    #[test]
    fn cancelled_occurrence_is_a_cancel_with_recurrence_id() {
        let series = weekly_paris();
        let exceptions = exceptions();
        let ics = build_series(
            &input(),
            &SeriesIcs {
                series: &series,
                exceptions: &exceptions,
                scope: Scope::Occurrence(utc("2030-10-28T08:30:00Z")),
            },
            Method::Cancel,
        );
        let (root, components) = parsed(&ics);
        assert_eq!(value(&root, "METHOD"), "CANCEL");
        let events = events(&components);
        assert_eq!(events.len(), 1);
        let ev = &events[0];
        let id = prop(ev, "RECURRENCE-ID");
        assert_eq!(param(id, "TZID").as_deref(), Some("Europe/Paris"));
        assert_eq!(id.val.as_str(), "20301028T093000");
        assert_eq!(value(ev, "STATUS"), "CANCELLED");
        assert!(ev.find_prop("RRULE").is_none());
    }

    #[test]
    fn cancelling_the_series_has_no_recurrence_id() {
        let series = weekly_paris();
        let ics = build_series(
            &input(),
            &SeriesIcs {
                series: &series,
                exceptions: &exceptions(),
                scope: Scope::Series,
            },
            Method::Cancel,
        );
        let (root, components) = parsed(&ics);
        assert_eq!(value(&root, "METHOD"), "CANCEL");
        let events = events(&components);
        assert_eq!(events.len(), 1, "no overrides in a cancel of the whole series");
        assert!(events[0].find_prop("RECURRENCE-ID").is_none());
        assert_eq!(value(&events[0], "STATUS"), "CANCELLED");
        assert_eq!(value(&events[0], "UID"), "event-7@notifyctl");
    }

    #[test]
    fn lines_fit_75_octets_with_many_exdates() {
        let series = Series::new(
            "FREQ=DAILY",
            utc("2030-01-01T08:00:00Z"),
            TimeDelta::hours(1),
            chrono_tz::America::Argentina::Buenos_Aires,
        )
        .expect("valid series");
        let cancelled: Vec<Exception> = (0..40)
            .map(|d| Exception::Cancelled {
                original_start: utc("2030-01-01T08:00:00Z") + TimeDelta::days(d * 3),
            })
            .collect();
        let ics = build_series(
            &input(),
            &SeriesIcs {
                series: &series,
                exceptions: &cancelled,
                scope: Scope::Series,
            },
            Method::Request,
        );
        for line in ics.split("\r\n") {
            assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
        }
        let (_, components) = parsed(&ics);
        let exdate = events(&components)[0]
            .find_prop("EXDATE")
            .map(|p| p.val.as_str().split(',').count());
        assert_eq!(exdate, Some(40));
    }

    /// Reads a VTIMEZONE back the way a calendar does: every onset of every observance
    /// (expanding its RRULE with the rrule crate), then the offset in force at an instant is
    /// that of the latest onset before it.
    fn offsets_from_vtimezone(zone: &Component, until_year: i32) -> Vec<(DateTime<Utc>, i32)> {
        let parse_offset = |s: &str| -> i32 {
            let sign = if s.starts_with('-') { -1 } else { 1 };
            let digits = &s[1..];
            let h: i32 = digits[0..2].parse().expect("hours");
            let m: i32 = digits[2..4].parse().expect("minutes");
            let sec: i32 = digits.get(4..6).map_or(0, |x| x.parse().expect("seconds"));
            sign * (h * 3600 + m * 60 + sec)
        };
        let mut onsets = Vec::new();
        for obs in &zone.components {
            let from = parse_offset(&value(obs, "TZOFFSETFROM"));
            let to = parse_offset(&value(obs, "TZOFFSETTO"));
            let start = value(obs, "DTSTART");
            let locals: Vec<NaiveDateTime> = match obs.find_prop("RRULE") {
                None => vec![NaiveDateTime::parse_from_str(&start, "%Y%m%dT%H%M%S").expect("onset")],
                Some(rule) => {
                    // UNTIL is a UTC instant, compared with the onsets' instants (RFC 5545
                    // §3.3.10), so it is applied below rather than by the crate.
                    let (parts, until): (Vec<&str>, Vec<&str>) = rule
                        .val
                        .as_str()
                        .split(';')
                        .partition(|p| !p.starts_with("UNTIL="));
                    let until = until.first().map(|u| {
                        NaiveDateTime::parse_from_str(&u["UNTIL=".len()..], "%Y%m%dT%H%M%SZ")
                            .expect("UTC UNTIL")
                            .and_utc()
                    });
                    let text = format!("DTSTART:{start}Z\nRRULE:{}", parts.join(";"));
                    let set: RRuleSet = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
                    set.into_iter()
                        .take_while(|t| t.year() <= until_year)
                        .map(|t| t.naive_utc())
                        .filter(|t| {
                            until.is_none_or(|u| (*t - TimeDelta::seconds(i64::from(from))).and_utc() <= u)
                        })
                        .collect()
                }
            };
            for local in locals {
                onsets.push(((local - TimeDelta::seconds(i64::from(from))).and_utc(), to));
            }
        }
        onsets.sort();
        onsets
    }

    fn check_vtimezone(tz: Tz, earliest: &str, latest: &str, check_until_year: i32) {
        let (earliest, latest) = (utc(earliest), utc(latest));
        let mut text = String::new();
        text.push_str("BEGIN:VCALENDAR\r\n");
        for line in vtimezone(tz, earliest, latest) {
            fold_into(&mut text, &line);
        }
        text.push_str("END:VCALENDAR\r\n");
        let (_, components) = parsed(&text);
        let zone = &components[0];
        assert_eq!(value(zone, "TZID"), tz.name());
        let onsets = offsets_from_vtimezone(zone, check_until_year);
        let mut t = earliest;
        let until = Utc
            .with_ymd_and_hms(check_until_year, 12, 31, 0, 0, 0)
            .single()
            .expect("date");
        while t < until {
            let expected = tz
                .offset_from_utc_datetime(&t.naive_utc())
                .fix()
                .local_minus_utc();
            let got = onsets
                .iter()
                .take_while(|(at, _)| *at <= t)
                .last()
                .map(|(_, o)| *o);
            assert_eq!(got, Some(expected), "{tz} at {t}:\n{text}");
            t += TimeDelta::hours(5);
        }
    }

    #[test]
    fn vtimezone_agrees_with_the_zone_database() {
        // Regular rules: yearly RRULEs, open-ended, so also right years past the span.
        check_vtimezone(
            chrono_tz::Europe::Paris,
            "2030-03-18T08:30:00Z",
            "2031-01-01T00:00:00Z",
            2045,
        );
        check_vtimezone(
            chrono_tz::America::New_York,
            "2030-01-04T14:30:00Z",
            "2030-06-01T00:00:00Z",
            2045,
        );
        check_vtimezone(
            chrono_tz::Australia::Sydney,
            "2030-01-04T14:30:00Z",
            "2032-06-01T00:00:00Z",
            2045,
        );
        check_vtimezone(
            chrono_tz::Australia::Lord_Howe,
            "2030-01-04T14:30:00Z",
            "2031-06-01T00:00:00Z",
            2040,
        );
        // Irregular rules: exact over the span.
        check_vtimezone(
            chrono_tz::America::Santiago,
            "2030-01-04T14:30:00Z",
            "2034-06-01T00:00:00Z",
            2034,
        );
        check_vtimezone(
            chrono_tz::Asia::Jerusalem,
            "2030-01-04T14:30:00Z",
            "2034-06-01T00:00:00Z",
            2034,
        );
        check_vtimezone(
            chrono_tz::Africa::Casablanca,
            "2030-01-04T14:30:00Z",
            "2032-06-01T00:00:00Z",
            2032,
        );
        // No daylight saving.
        check_vtimezone(
            chrono_tz::Asia::Kolkata,
            "2030-01-04T14:30:00Z",
            "2031-06-01T00:00:00Z",
            2040,
        );
        check_vtimezone(
            chrono_tz::UTC,
            "2030-01-04T14:30:00Z",
            "2031-06-01T00:00:00Z",
            2040,
        );
        // A zone that stopped daylight saving (Brazil, 2019) inside the span.
        check_vtimezone(
            chrono_tz::America::Sao_Paulo,
            "2016-01-04T14:30:00Z",
            "2024-06-01T00:00:00Z",
            2030,
        );
    }

    #[test]
    fn vtimezone_shapes() {
        let paris = vtimezone(
            chrono_tz::Europe::Paris,
            utc("2030-03-18T08:30:00Z"),
            utc("2031-01-01T00:00:00Z"),
        )
        .join("\n");
        assert!(
            paris.contains(
                "BEGIN:DAYLIGHT\nDTSTART:20290325T020000\nTZOFFSETFROM:+0100\nTZOFFSETTO:+0200\n\
             RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\nTZNAME:CEST\nEND:DAYLIGHT"
            ),
            "{paris}"
        );
        assert!(
            paris.contains(
                "BEGIN:STANDARD\nDTSTART:20291028T030000\nTZOFFSETFROM:+0200\nTZOFFSETTO:+0100\n\
             RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\nTZNAME:CET\nEND:STANDARD"
            ),
            "{paris}"
        );
        assert_eq!(paris.matches("BEGIN:").count(), 3, "{paris}");
        let new_york = vtimezone(
            chrono_tz::America::New_York,
            utc("2030-01-04T14:30:00Z"),
            utc("2030-06-01T00:00:00Z"),
        )
        .join("\n");
        assert!(
            new_york.contains("RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU"),
            "{new_york}"
        );
        assert!(
            new_york.contains("RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU"),
            "{new_york}"
        );
        let tokyo = vtimezone(
            chrono_tz::Asia::Tokyo,
            utc("2030-01-04T14:30:00Z"),
            utc("2030-06-01T00:00:00Z"),
        )
        .join("\n");
        assert_eq!(
            tokyo,
            "BEGIN:VTIMEZONE\nTZID:Asia/Tokyo\nBEGIN:STANDARD\nDTSTART:19700101T000000\n\
             TZOFFSETFROM:+0900\nTZOFFSETTO:+0900\nTZNAME:JST\nEND:STANDARD\nEND:VTIMEZONE"
        );
    }

    /// The calendar's own reading of what was written (DTSTART;TZID, RRULE, EXDATE, overrides),
    /// expanded by the rrule crate's zone-aware parser, is the series as notifyctl sees it.
    #[test]
    fn expanding_the_invitation_gives_the_series_occurrences() {
        for (rule, first, tz) in [
            (
                "FREQ=WEEKLY;COUNT=40",
                "2030-03-18T08:30:00Z",
                chrono_tz::Europe::Paris,
            ),
            (
                "FREQ=WEEKLY;BYDAY=MO,TH;UNTIL=20310301T000000Z",
                "2030-01-07T14:30:00Z",
                chrono_tz::America::New_York,
            ),
            (
                "FREQ=MONTHLY;BYDAY=-1FR;COUNT=24",
                "2030-01-24T22:00:00Z",
                chrono_tz::Australia::Sydney,
            ),
            (
                "FREQ=DAILY;COUNT=400",
                "2030-01-01T01:30:00Z",
                chrono_tz::Europe::Paris,
            ),
        ] {
            let series = Series::new(rule, utc(first), TimeDelta::hours(1), tz).expect("valid");
            let all = series.occurrences(utc(first), utc("2040-01-01T00:00:00Z"), &[]);
            let exceptions = vec![
                Exception::Cancelled {
                    original_start: all[3].start,
                },
                Exception::Cancelled {
                    original_start: all[10].start,
                },
                Exception::Moved {
                    original_start: all[5].start,
                    start: all[5].start + TimeDelta::hours(30),
                    end: all[5].start + TimeDelta::hours(32),
                },
            ];
            let ics = build_series(
                &input(),
                &SeriesIcs {
                    series: &series,
                    exceptions: &exceptions,
                    scope: Scope::Series,
                },
                Method::Request,
            );
            let (_, components) = parsed(&ics);
            let events = events(&components);
            let master = &events[0];
            let tzid = param(prop(master, "DTSTART"), "TZID").expect("TZID");
            let text = format!(
                "DTSTART;TZID={tzid}:{}\nRRULE:{}\nEXDATE;TZID={tzid}:{}",
                value(master, "DTSTART"),
                value(master, "RRULE"),
                value(master, "EXDATE"),
            );
            let set: RRuleSet = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            let override_ids: Vec<DateTime<Utc>> = events[1..]
                .iter()
                .map(|ev| {
                    let local = NaiveDateTime::parse_from_str(&value(ev, "RECURRENCE-ID"), "%Y%m%dT%H%M%S")
                        .expect("local time");
                    resolve_local(tz, local)
                })
                .collect();
            let mut from_calendar: Vec<DateTime<Utc>> = set
                .into_iter()
                .map(|t| t.with_timezone(&Utc))
                .filter(|t| !override_ids.contains(t))
                .collect();
            for ev in &events[1..] {
                let local = NaiveDateTime::parse_from_str(&value(ev, "DTSTART"), "%Y%m%dT%H%M%S")
                    .expect("local time");
                from_calendar.push(resolve_local(tz, local));
            }
            from_calendar.sort();
            let expected: Vec<DateTime<Utc>> = series
                .occurrences(utc(first), utc("2040-01-01T00:00:00Z"), &exceptions)
                .iter()
                .map(|o: &Occurrence| o.start)
                .collect();
            assert_eq!(from_calendar, expected, "{rule}");
        }
    }

    /// Writes invitations and the occurrences notifyctl expects from them for an independent
    /// reader: `ci/check_ics_series.py` runs this and expands each file with Python's
    /// `icalendar` and `recurring_ical_events`, by zone name and by the VTIMEZONE alone.
    #[test]
    #[ignore = "writes files for ci/check_ics_series.py"]
    fn write_ics_samples() {
        let dir = std::env::var("ICS_SAMPLES_DIR").expect("ICS_SAMPLES_DIR");
        std::fs::create_dir_all(&dir).expect("samples dir");
        let samples = [
            (
                "paris-weekly",
                "FREQ=WEEKLY;COUNT=40",
                "2030-03-18T08:30:00Z",
                chrono_tz::Europe::Paris,
            ),
            (
                "paris-daily-0230",
                "FREQ=DAILY;UNTIL=20301105T000000Z",
                "2030-03-20T01:30:00Z",
                chrono_tz::Europe::Paris,
            ),
            (
                "new-york-mo-th",
                "FREQ=WEEKLY;BYDAY=MO,TH;UNTIL=20310301T000000Z",
                "2030-01-07T14:30:00Z",
                chrono_tz::America::New_York,
            ),
            (
                "new-york-0130",
                "FREQ=WEEKLY;BYDAY=SU;COUNT=60",
                "2030-01-06T06:30:00Z",
                chrono_tz::America::New_York,
            ),
            (
                "sydney-last-friday",
                "FREQ=MONTHLY;BYDAY=-1FR;COUNT=30",
                "2030-01-24T22:00:00Z",
                chrono_tz::Australia::Sydney,
            ),
            (
                "santiago-daily-0030",
                "FREQ=DAILY;COUNT=400",
                "2030-01-01T03:30:00Z",
                chrono_tz::America::Santiago,
            ),
            (
                "jerusalem-weekly",
                "FREQ=WEEKLY;INTERVAL=2;COUNT=80",
                "2030-01-06T08:00:00Z",
                chrono_tz::Asia::Jerusalem,
            ),
            (
                "tokyo-monthly",
                "FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=24",
                "2030-01-31T01:00:00Z",
                chrono_tz::Asia::Tokyo,
            ),
            (
                "paris-open-weekly",
                "FREQ=WEEKLY;BYDAY=TU",
                "2030-01-01T16:00:00Z",
                chrono_tz::Europe::Paris,
            ),
        ];
        for (name, rule, first, tz) in samples {
            let series = Series::new(rule, utc(first), TimeDelta::minutes(50), tz).expect("valid");
            let to = series.end().unwrap_or(utc(first) + TimeDelta::days(3 * 366));
            let all = series.occurrences(utc(first), to, &[]);
            let exceptions = vec![
                Exception::Cancelled {
                    original_start: all[2].start,
                },
                Exception::Cancelled {
                    original_start: all[all.len() / 2].start,
                },
                Exception::Moved {
                    original_start: all[4].start,
                    start: all[4].start + TimeDelta::hours(26),
                    end: all[4].start + TimeDelta::hours(28),
                },
            ];
            let ics = build_series(
                &input(),
                &SeriesIcs {
                    series: &series,
                    exceptions: &exceptions,
                    scope: Scope::Series,
                },
                Method::Request,
            );
            let expected: Vec<String> = series
                .occurrences(utc(first), to + TimeDelta::days(2), &exceptions)
                .iter()
                .map(|o| format!("[\"{}\", \"{}\"]", o.start.to_rfc3339(), o.end.to_rfc3339()))
                .collect();
            let json = format!(
                "{{\"from\": \"{}\", \"to\": \"{}\", \"occurrences\": [{}]}}\n",
                utc(first).to_rfc3339(),
                (to + TimeDelta::days(2)).to_rfc3339(),
                expected.join(", ")
            );
            std::fs::write(format!("{dir}/{name}.ics"), ics).expect("write ics");
            std::fs::write(format!("{dir}/{name}.json"), json).expect("write json");
        }
    }
}
