//! Booking: creating events (one at a time or from an import file, through the same
//! path), assigning and removing participants, moving and cancelling — each change and its
//! notices in one write transaction, with the double-booking check inside it, so two
//! concurrent bookings of one slot cannot both pass.
//!
//! A recurring event (`--repeat RRULE`) is one row with its rule; its occurrences are
//! expanded here (`recurrence::Series`), never stored, and one occurrence is cancelled or
//! moved by an exception row. The double-booking check covers occurrences: a single event
//! against the participants' series (exactly, whatever their length), a series against
//! their single events and series over [`SERIES_CHECK_DAYS`] (or to its end, if sooner).
//! The database's own rule (SQLite's busy index, PostgreSQL's exclusion constraint) knows
//! single events only, so bookings made by notifyctl take `guard_bookings` first.

use std::collections::HashMap;
use std::rc::Rc;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::notices::{NoticeDetail, Notifier};
use super::{user_tz, FieldError, Service};
use crate::config::Config;
use crate::error::user_error;
use crate::input::{check_text, format_duration, limits, parse_duration, parse_time, parse_tz, rfc3339};
use crate::model::{Event, EventException, EventStatus, ExceptionStatus, Kind, User};
use crate::recurrence::{first_conflict, Exception, Occurrence, Series};
use crate::store::{self, DecisionRecord, EventChanges, NewEvent, Ops, Overlap};
use crate::video::{self, VideoRequest};

/// How far ahead a new or moved series is checked against its participants' other
/// bookings: two years from now (or from its first start, if later), or to its end if that
/// comes first. An open-ended series has no last occurrence to stop at; two years of
/// weekly occurrences is about a hundred checks per participant.
pub const SERIES_CHECK_DAYS: i64 = 730;

/// The largest reminder offset an event may have: a year.
const MAX_REMIND_MINUTES: i64 = 525_600;

/// An event as typed on the command line or read from an import row.
#[derive(Debug, Clone, Default)]
pub struct EventDraft {
    pub title: String,
    pub start: String,
    pub end: Option<String>,
    pub duration: Option<String>,
    /// The zone local times are read in; else the first participant's, else the default.
    pub timezone: Option<String>,
    /// `auto` (the configured provider), `none`, or a URL.
    pub video: String,
    /// `user` or `user:role`, the user by id or email.
    pub participants: Vec<String>,
    /// `--remind`: durations, or `none`; empty: the config's offsets.
    pub remind: Vec<String>,
    /// `--repeat`: an RFC 5545 RRULE value; the event is then a series.
    pub repeat: Option<String>,
}

/// A draft with its times resolved, ready to be written once its video link is made.
#[derive(Debug, Clone)]
pub struct ResolvedEvent {
    pub new: NewEvent,
    /// (user key as given, role)
    pub participants: Vec<(String, String)>,
    /// The link to make just before writing (`new.video_url` is empty until then).
    pub video: VideoRequest,
    /// A series: its rule, validated against the first start.
    pub series: Option<Series>,
}

impl ResolvedEvent {
    pub fn slot(&self) -> video::Slot<'_> {
        video::Slot {
            title: &self.new.title,
            starts_at: self.new.starts_at,
            ends_at: self.new.ends_at,
        }
    }
}

/// What one write looks up again and again: users by the key a draft names them with, and
/// each user's live series (an import adds no series, so they stay valid for its write).
#[derive(Debug, Default)]
pub struct UserCache {
    /// Shared, not cloned: an import looks up two users per row.
    users: HashMap<String, Rc<User>>,
    series: HashMap<i64, Vec<Event>>,
}

impl UserCache {
    pub fn new() -> UserCache {
        UserCache::default()
    }

    fn user(&mut self, ops: &mut dyn Ops, key: &str) -> anyhow::Result<Rc<User>> {
        if let Some(u) = self.users.get(key) {
            return Ok(Rc::clone(u));
        }
        let u = Rc::new(ops.find_user(key)?);
        self.users.insert(key.to_string(), Rc::clone(&u));
        Ok(u)
    }

    /// The user's scheduled series that can still have occurrences after `now`.
    fn series(&mut self, ops: &mut dyn Ops, user_id: i64, now: DateTime<Utc>) -> anyhow::Result<&[Event]> {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.series.entry(user_id) {
            let mut live = Vec::new();
            for row in ops.user_series(user_id, now, None)? {
                match row {
                    Ok(e) => live.push(e),
                    // A series that cannot be read cannot be expanded: the tick reports it.
                    Err(b) => log::warn!("double-booking check skips a broken row: {b}"),
                }
            }
            slot.insert(live);
        }
        Ok(self.series.get(&user_id).map_or(&[], Vec::as_slice))
    }
}

/// What a participant is booked into, for the double-booking check.
#[derive(Debug, Clone, Copy)]
enum Slot<'a> {
    Single {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    Series {
        series: &'a Series,
        exceptions: &'a [Exception],
    },
}

impl<'a> Slot<'a> {
    fn of(spec: &'a ResolvedEvent) -> Slot<'a> {
        match &spec.series {
            Some(series) => Slot::Series {
                series,
                exceptions: &[],
            },
            None => Slot::Single {
                start: spec.new.starts_at,
                end: spec.new.ends_at,
            },
        }
    }
}

/// The window a series is checked over (see [`SERIES_CHECK_DAYS`]).
pub fn series_check_window(series: &Series, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let from = now;
    let horizon = now.max(series.first_start()) + TimeDelta::days(SERIES_CHECK_DAYS);
    let until = series.end().map_or(horizon, |end| end.min(horizon));
    (from, until)
}

/// Offsets as typed with `--remind` (or an import's `remind`): `None` when none were given
/// or `default` (the config's apply), `Some([])` for `none`, else whole minutes, largest
/// first.
pub fn parse_remind(values: &[String]) -> anyhow::Result<Option<Vec<i64>>> {
    let values: Vec<&str> = values
        .iter()
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .collect();
    if values.is_empty() {
        return Ok(None);
    }
    for word in ["none", "default"] {
        if values.iter().any(|v| v.eq_ignore_ascii_case(word)) {
            if values.len() > 1 {
                return Err(user_error(format!(
                    "reminder offsets: '{word}' cannot be combined with durations: give it alone, or durations only"
                )));
            }
            // `default`: the config's [reminders] offsets.
            return Ok((word == "none").then(Vec::new));
        }
    }
    let mut minutes = Vec::new();
    for v in values {
        let d = parse_duration(v).map_err(|e| user_error(format!("reminder offset: {e}")))?;
        if d <= TimeDelta::zero() || d.num_seconds() % 60 != 0 {
            return Err(user_error(format!(
                "reminder offset '{}': it must be a positive whole number of minutes (like 10m, 1h, 1d)",
                crate::input::printable(v, 40)
            )));
        }
        if d.num_minutes() > MAX_REMIND_MINUTES {
            return Err(user_error(format!(
                "reminder offset '{}': at most 365d before the start",
                crate::input::printable(v, 40)
            )));
        }
        minutes.push(d.num_minutes());
    }
    minutes.sort_unstable_by(|a, b| b.cmp(a));
    minutes.dedup();
    Ok(Some(minutes))
}

/// Offsets as shown: `30m, 5m`, or `none`.
pub fn offsets_text(offsets: &[i64]) -> String {
    if offsets.is_empty() {
        return "none".into();
    }
    offsets
        .iter()
        .map(|m| format_duration(TimeDelta::minutes(*m)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A series from a rule typed for an event: validated in the event's zone, with the first
/// start and duration; the error is the user's to fix (one line).
fn series_for(rule: &str, start: DateTime<Utc>, end: DateTime<Utc>, tz: Tz) -> anyhow::Result<Series> {
    Series::new(rule, start, end - start, tz).map_err(|e| user_error(format!("--repeat: {e}")))
}

/// When a series ends, moved occurrences included (they may end later than the rule's last).
fn series_end(series: &Series, exceptions: &[Exception]) -> Option<DateTime<Utc>> {
    let end = series.end()?;
    Some(exceptions.iter().fold(end, |end, x| match x {
        Exception::Moved { end: moved, .. } => end.max(*moved),
        Exception::Cancelled { .. } => end,
    }))
}

/// The event's series, which a stored rule must give (else the event cannot be changed
/// as a series: the admin is told what is wrong with the row).
fn stored_series(e: &Event) -> anyhow::Result<Option<Series>> {
    e.series().map_err(|why| {
        user_error(format!(
            "event {} has a repeat rule that cannot be used ({why}): fix or cancel the event",
            e.id
        ))
    })
}

/// What `event add` and `event update` report.
#[derive(Debug, Clone)]
pub struct Booked {
    pub event: Event,
    /// `event update` moved the event (participants were notified).
    pub moved: bool,
    /// `--occurrence`: the occurrence as it now takes place.
    pub occurrence: Option<Occurrence>,
}

/// Split `ana@example.org:mentor` into the user key and the role.
pub fn parse_participant(arg: &str) -> (String, String) {
    match arg.rsplit_once(':') {
        Some((user, role)) if !role.trim().is_empty() && !user.trim().is_empty() => {
            (user.trim().to_string(), role.trim().to_string())
        }
        _ => (arg.trim().to_string(), "participant".to_string()),
    }
}

/// The end from `end` or `duration` (default one hour).
pub fn resolve_end(
    start: DateTime<Utc>,
    end: Option<&str>,
    duration: Option<&str>,
    tz: Tz,
) -> anyhow::Result<DateTime<Utc>> {
    let end = match (end, duration) {
        (Some(e), Some(d)) => {
            let end = parse_time(e, tz)?;
            if start + parse_duration(d)? != end {
                return Err(user_error(
                    "the end and the duration disagree: give one of them, not both",
                ));
            }
            end
        }
        (Some(e), None) => parse_time(e, tz)?,
        (None, Some(d)) => start + parse_duration(d)?,
        (None, None) => start + TimeDelta::hours(1),
    };
    // Stored instants are four-digit-year text that sorts as time.
    if chrono::Datelike::year(&end) > 9999 {
        return Err(user_error(
            "the event would end after the year 9999: check --start / --duration",
        ));
    }
    if end <= start {
        return Err(user_error(format!(
            "the event ends ({}) before it starts ({}): check --end / --duration",
            rfc3339(end),
            rfc3339(start)
        )));
    }
    Ok(end)
}

fn check_title(title: &str) -> anyhow::Result<String> {
    if title.trim().is_empty() {
        return Err(user_error("an event needs a title (--title)"));
    }
    check_text("the title", title, limits::TITLE)
}

fn check_role(role: &str) -> anyhow::Result<String> {
    check_text("the role", role, limits::ROLE)
}

/// Refuse when `user` has another scheduled event (a single event, or an occurrence of a
/// series other than `except`) intersecting what `slot` books.
fn refuse_overlap(
    ops: &mut dyn Ops,
    user: &User,
    slot: Slot,
    except: Option<i64>,
    now: DateTime<Utc>,
    cache: &mut UserCache,
) -> anyhow::Result<()> {
    let clash = |e: &Event, o: Occurrence| Overlap {
        user_email: user.email.clone(),
        event_id: e.id,
        title: e.title.clone(),
        starts_at: o.start,
        ends_at: o.end,
    };
    match slot {
        Slot::Single { start, end } => {
            if let Some(o) = ops.find_overlap(user.id, start, end, except)? {
                return Err(o.refusal());
            }
            for e in cache.series(ops, user.id, now)? {
                if Some(e.id) == except {
                    continue;
                }
                let Ok(Some(series)) = e.series() else { continue };
                if let Some(o) = series.overlaps(start, end, &e.rule_exceptions()) {
                    return Err(clash(e, o).refusal());
                }
            }
        }
        Slot::Series { series, exceptions } => {
            let (from, until) = series_check_window(series, now);
            let longest = exceptions
                .iter()
                .filter_map(|x| match x {
                    Exception::Moved { start, end, .. } => Some(*end - *start),
                    Exception::Cancelled { .. } => None,
                })
                .fold(series.duration(), TimeDelta::max);
            let occurrences = series
                .occurrences_from(from - longest, exceptions)
                .take_while(|o| o.start < until)
                .filter(|o| o.end > from);
            for o in occurrences {
                if let Some(found) = ops.find_overlap(user.id, o.start, o.end, except)? {
                    return Err(found.refusal());
                }
            }
            for e in cache.series(ops, user.id, now)? {
                if Some(e.id) == except {
                    continue;
                }
                let Ok(Some(other)) = e.series() else { continue };
                let theirs = e.rule_exceptions();
                if let Some((_, o)) = first_conflict(series, exceptions, &other, &theirs, from, until) {
                    return Err(clash(e, o).refusal());
                }
            }
        }
    }
    Ok(())
}

/// An event's slot for the double-booking check: its series, or its times.
fn event_slot<'a>(e: &Event, series: Option<&'a Series>, exceptions: &'a [Exception]) -> Slot<'a> {
    match series {
        Some(series) => Slot::Series { series, exceptions },
        None => Slot::Single {
            start: e.starts_at,
            end: e.ends_at,
        },
    }
}

/// The event, which must exist and be scheduled.
fn scheduled(ops: &mut dyn Ops, id: i64) -> anyhow::Result<Event> {
    let e = existing(ops, id)?;
    if e.status != EventStatus::Scheduled {
        return Err(user_error(format!(
            "event {id} is cancelled: nothing was changed"
        )));
    }
    Ok(e)
}

fn existing(ops: &mut dyn Ops, id: i64) -> anyhow::Result<Event> {
    ops.event(id)?
        .ok_or_else(|| user_error(format!("unknown event {id}: see `notifyctl event list`")))
}

/// Write a resolved event and its participants (and their `assigned` notices when
/// `notify`) in the caller's transaction; returns its id. The one path for `event add`
/// and `import events`.
pub(super) fn insert(
    ops: &mut dyn Ops,
    notifier: &Notifier,
    spec: &ResolvedEvent,
    allow_overlap: bool,
    notify: bool,
    cache: &mut UserCache,
) -> anyhow::Result<i64> {
    let mut users: Vec<(Rc<User>, &str)> = Vec::new();
    for (key, role) in &spec.participants {
        let user = cache.user(ops, key)?;
        if users.iter().any(|(u, _)| u.id == user.id) {
            return Err(user_error(format!("participant {} is listed twice", user.email)));
        }
        if !allow_overlap {
            refuse_overlap(ops, &user, Slot::of(spec), None, notifier.now, cache)?;
        }
        users.push((user, role));
    }
    let id = ops.insert_event(&spec.new, notifier.now)?;
    for (user, role) in &users {
        ops.add_participant(id, user.id, role, allow_overlap, notifier.now)?;
    }
    if notify {
        let event = existing(ops, id)?;
        notifier.notify_participants(ops, &event, Kind::Assigned, None)?;
    }
    Ok(id)
}

/// The zone to read local times in: the given one, else the first participant's (looked
/// up once per key, `zones` remembers), else the default.
fn input_zone(
    config: &Config,
    ops: &mut dyn Ops,
    tz: Option<&str>,
    first_user: Option<&str>,
    zones: &mut HashMap<String, Tz>,
) -> Result<Tz, FieldError> {
    if let Some(z) = tz.filter(|z| !z.trim().is_empty()) {
        return parse_tz(z).map_err(|e| FieldError::new("timezone", e));
    }
    let Some(key) = first_user else {
        return Ok(config.default_tz());
    };
    if let Some(tz) = zones.get(key) {
        return Ok(*tz);
    }
    let user = ops
        .find_user(key)
        .map_err(|e| FieldError::new("participants", e))?;
    let tz = user_tz(config, &user);
    zones.insert(key.to_string(), tz);
    Ok(tz)
}

/// Check a draft and resolve its times and zone: the one path of `event add` and both
/// passes of `import events`. Reads only; the video link is made just before writing.
pub(super) fn resolve(
    config: &Config,
    ops: &mut dyn Ops,
    d: &EventDraft,
    zones: &mut HashMap<String, Tz>,
) -> Result<ResolvedEvent, FieldError> {
    let title = check_title(&d.title).map_err(|e| FieldError::new("title", e))?;
    let participants: Vec<(String, String)> = d
        .participants
        .iter()
        .map(|p| {
            let (user, role) = parse_participant(p);
            Ok((user, check_role(&role)?))
        })
        .collect::<anyhow::Result<_>>()
        .map_err(|e| FieldError::new("participants", e))?;
    let first = participants.first().map(|(k, _)| k.as_str());
    let tz = input_zone(config, ops, d.timezone.as_deref(), first, zones)?;
    let starts_at = parse_time(&d.start, tz).map_err(|e| FieldError::new("start", e))?;
    let field = if d.end.is_some() { "end" } else { "duration" };
    let ends_at = resolve_end(starts_at, d.end.as_deref(), d.duration.as_deref(), tz)
        .map_err(|e| FieldError::new(field, e))?;
    let video = video::parse_request(&d.video).map_err(|e| FieldError::new("video", e))?;
    let remind_offsets = parse_remind(&d.remind).map_err(|e| FieldError::new("remind", e))?;
    let series = match d.repeat.as_deref().filter(|r| !r.trim().is_empty()) {
        Some(rule) => {
            Some(series_for(rule, starts_at, ends_at, tz).map_err(|e| FieldError::new("repeat", e))?)
        }
        None => None,
    };
    Ok(ResolvedEvent {
        new: NewEvent {
            title,
            starts_at,
            ends_at,
            timezone: Some(tz.name().to_string()),
            video_url: None,
            remind_offsets,
            repeat_rule: series.as_ref().map(|s| s.rule().to_string()),
            series_end: series.as_ref().and_then(Series::end),
        },
        participants,
        video,
        series,
    })
}

/// Newly added reminder offsets whose moment has already passed are recorded as skipped
/// (`armed_late`) for every participant, as a reminder due before a booking is: no tick
/// sends them late. Offsets already decided stay decided (the key is unchanged).
fn skip_passed_new_offsets(
    ops: &mut dyn Ops,
    event: &Event,
    before: &[i64],
    after: &[i64],
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let added: Vec<i64> = after.iter().copied().filter(|o| !before.contains(o)).collect();
    let Some(&largest) = added.iter().max() else {
        return Ok(());
    };
    // The starts still to come whose new reminders may already be due.
    let starts: Vec<DateTime<Utc>> = match stored_series(event)? {
        Some(series) => series
            .occurrences(
                now + TimeDelta::seconds(1),
                now + TimeDelta::minutes(largest) + TimeDelta::seconds(1),
                &event.rule_exceptions(),
            )
            .into_iter()
            .map(|o| o.start)
            .collect(),
        None => vec![event.starts_at].into_iter().filter(|s| *s > now).collect(),
    };
    for start in starts {
        for offset in &added {
            if start - TimeDelta::minutes(*offset) > now {
                continue;
            }
            for p in &event.participants {
                ops.record_decision(
                    &DecisionRecord {
                        event_id: event.id,
                        user_id: p.user_id,
                        offset_minutes: *offset,
                        event_start: start,
                        skipped_reason: Some(crate::reminders::SkipReason::ArmedLate.as_str()),
                    },
                    now,
                )?;
            }
        }
    }
    Ok(())
}

impl Service {
    /// Check a draft and resolve its times and zone. Reads only; no video link yet.
    pub fn resolve_event(&mut self, d: &EventDraft) -> Result<ResolvedEvent, FieldError> {
        resolve(&self.config, self.store.ops(), d, &mut HashMap::new())
    }

    /// `event add`: create an event; participants get an `assigned` notice. A double
    /// booking is refused before any video meeting is made (and checked again inside the
    /// write); a meeting made for a booking refused after all is deleted.
    pub fn add_event(&mut self, draft: &EventDraft, allow_overlap: bool) -> anyhow::Result<Event> {
        let mut spec = self.resolve_event(draft).map_err(|f| f.error)?;
        let now = self.now();
        if !allow_overlap {
            let mut cache = UserCache::new();
            for (key, _) in &spec.participants {
                let user = cache.user(self.store.ops(), key)?;
                refuse_overlap(self.store.ops(), &user, Slot::of(&spec), None, now, &mut cache)?;
            }
        }
        // Outside any write lock: a video provider may take a moment to answer.
        let link = video::create(&self.config.video, &spec.video, &spec.slot())?;
        spec.new.video_url = link.as_ref().map(|l| l.url.clone());
        let notifier = Notifier::new(&self.config, &self.templates, &self.reporter, self.clock.now())?;
        let written = store::write(&mut *self.store, |ops| {
            ops.guard_bookings(spec.series.is_some())?;
            let id = insert(ops, &notifier, &spec, allow_overlap, true, &mut UserCache::new())?;
            existing(ops, id)
        });
        if written.is_err() {
            video::discard(&self.config.video, link.as_slice());
        }
        written
    }

    /// `event assign`: add a participant, with an `assigned` notice.
    pub fn assign(
        &mut self,
        event_id: i64,
        user_key: &str,
        role: &str,
        allow_overlap: bool,
    ) -> anyhow::Result<(Event, User)> {
        let role = check_role(role)?;
        let notifier = Notifier::new(&self.config, &self.templates, &self.reporter, self.clock.now())?;
        store::write(&mut *self.store, |ops| {
            let e = scheduled(ops, event_id)?;
            ops.guard_bookings(e.is_series())?;
            let u = ops.find_user(user_key)?;
            if e.participants.iter().any(|p| p.user_id == u.id) {
                return Err(user_error(format!(
                    "{} is already assigned to event {event_id}",
                    u.email
                )));
            }
            if !allow_overlap {
                let series = stored_series(&e)?;
                let exceptions = e.rule_exceptions();
                let slot = event_slot(&e, series.as_ref(), &exceptions);
                refuse_overlap(ops, &u, slot, Some(e.id), notifier.now, &mut UserCache::new())?;
            }
            ops.add_participant(e.id, u.id, &role, allow_overlap, notifier.now)?;
            ops.bump_sequence(e.id, notifier.now)?;
            let e = existing(ops, e.id)?;
            notifier.event_notice(ops, &e, &u, Kind::Assigned, None, None)?;
            Ok((e, u))
        })
    }

    /// `event unassign`: the removed user gets a `cancelled` notice (the event leaves
    /// their calendar) and their pending reminders are dropped.
    pub fn unassign(&mut self, event_id: i64, user_key: &str) -> anyhow::Result<(Event, User)> {
        let notifier = Notifier::new(&self.config, &self.templates, &self.reporter, self.clock.now())?;
        store::write(&mut *self.store, |ops| {
            let e = existing(ops, event_id)?;
            let u = ops.find_user(user_key)?;
            if !ops.remove_participant(e.id, u.id)? {
                return Err(user_error(format!(
                    "{} is not assigned to event {event_id}",
                    u.email
                )));
            }
            ops.bump_sequence(e.id, notifier.now)?;
            let e = existing(ops, e.id)?;
            if e.status == EventStatus::Scheduled {
                notifier.event_notice(ops, &e, &u, Kind::Cancelled, None, None)?;
            }
            Ok((e, u))
        })
    }

    /// `event update`: a new time (or rule) re-arms the reminders and sends `rescheduled`;
    /// new reminder offsets re-plan the reminders not yet decided. With `--occurrence`, one
    /// occurrence of a series is moved ([`Service::move_occurrence`]).
    pub fn update_event(&mut self, id: i64, u: &EventUpdate) -> anyhow::Result<Booked> {
        let current = existing(self.store.ops(), id)?;
        if let Some(occurrence) = &u.occurrence {
            return self.move_occurrence(&current, occurrence, u);
        }
        let tz = match &u.timezone {
            Some(z) => parse_tz(z)?,
            None => current
                .timezone
                .as_deref()
                .and_then(|z| z.parse().ok())
                .unwrap_or_else(|| self.config.default_tz()),
        };
        let title = u.title.as_deref().map(check_title).transpose()?;
        // Blank values (a web form's empty field) are no value: the offsets stay unchanged,
        // as with no --remind; `default` is how to go back to [reminders] offsets.
        let remind = u
            .remind
            .iter()
            .any(|v| !v.trim().is_empty())
            .then(|| parse_remind(&u.remind))
            .transpose()?;
        let starts_at = u.start.as_deref().map(|s| parse_time(s, tz)).transpose()?;
        let start = starts_at.unwrap_or(current.starts_at);
        let ends_at = if u.end.is_some() || u.duration.is_some() {
            Some(resolve_end(start, u.end.as_deref(), u.duration.as_deref(), tz)?)
        } else if starts_at.is_some() {
            // Moving the start keeps the length.
            Some(start + (current.ends_at - current.starts_at))
        } else {
            None
        };
        let end = ends_at.unwrap_or(current.ends_at);
        if end <= start {
            return Err(user_error(
                "the event would end before it starts: check --end / --duration",
            ));
        }
        // A series moved or given a new rule: the rule is checked again at its (new) first
        // start, in the event's own zone.
        let rule = u
            .repeat
            .as_deref()
            .filter(|r| !r.trim().is_empty())
            .or(current.repeat_rule.as_deref());
        let retimed = starts_at.is_some() || ends_at.is_some() || u.repeat.is_some();
        let series = match rule.filter(|_| retimed) {
            Some(rule) => {
                let zone = current
                    .timezone
                    .as_deref()
                    .and_then(|z| z.parse::<Tz>().ok())
                    .ok_or_else(|| {
                        user_error(format!(
                        "event {id} has no usable time zone, which a series needs: book it again with --tz"
                    ))
                    })?;
                Some(series_for(rule, start, end, zone)?)
            }
            None => None,
        };
        let link = match &u.video {
            Some(v) => {
                let request = video::parse_request(v)?;
                let slot = video::Slot {
                    title: title.as_deref().unwrap_or(&current.title),
                    starts_at: start,
                    ends_at: end,
                };
                Some(video::create(&self.config.video, &request, &slot)?)
            }
            None => None,
        };
        let video_url = link.as_ref().map(|l| l.as_ref().map(|l| l.url.clone()));
        let default_offsets = self.config.offsets_minutes();
        let notifier = Notifier::new(&self.config, &self.templates, &self.reporter, self.clock.now())?;
        let now = notifier.now;
        let written = store::write(&mut *self.store, |ops| {
            let before = scheduled(ops, id)?;
            ops.guard_bookings(before.is_series() || series.is_some())?;
            let new_start = starts_at.unwrap_or(before.starts_at);
            let new_end = ends_at.unwrap_or(before.ends_at);
            let moved = new_start != before.starts_at || new_end != before.ends_at;
            let new_rule = series.as_ref().map(|s| s.rule().to_string());
            let rule_changed = u.repeat.is_some() && new_rule != before.repeat_rule;
            let exceptions = before.rule_exceptions();
            if (moved || rule_changed) && !u.allow_overlap {
                let slot = match &series {
                    Some(series) => Slot::Series {
                        series,
                        exceptions: &exceptions,
                    },
                    None => Slot::Single {
                        start: new_start,
                        end: new_end,
                    },
                };
                let mut cache = UserCache::new();
                for p in &before.participants {
                    if let Some(user) = ops.user(p.user_id)? {
                        refuse_overlap(ops, &user, slot, Some(before.id), now, &mut cache)?;
                    }
                }
            }
            // Only a visible change is written: calendars see a new SEQUENCE only then.
            let retitled = title.as_ref().is_some_and(|t| *t != before.title);
            let relinked = video_url.as_ref().is_some_and(|v| *v != before.video_url);
            if moved || retitled || relinked || rule_changed {
                let new_end_of_series = series.as_ref().map(|s| series_end(s, &exceptions));
                let changes = EventChanges {
                    title: title.clone().filter(|_| retitled),
                    starts_at: starts_at.filter(|_| moved),
                    ends_at: ends_at.filter(|_| moved),
                    video_url: video_url.clone().filter(|_| relinked),
                    repeat: new_rule
                        .clone()
                        .filter(|_| rule_changed)
                        .map(|r| (r, new_end_of_series.flatten())),
                    series_end: new_end_of_series.filter(|_| moved),
                    allow_overlap: u.allow_overlap,
                };
                ops.update_event(before.id, &changes, now)?;
            }
            if let Some(offsets) = &remind {
                if *offsets != before.remind_offsets {
                    ops.set_remind_offsets(before.id, offsets.as_deref(), now)?;
                    let after = existing(ops, before.id)?;
                    skip_passed_new_offsets(
                        ops,
                        &after,
                        before.offsets_or(&default_offsets),
                        after.offsets_or(&default_offsets),
                        now,
                    )?;
                }
            }
            let after = existing(ops, before.id)?;
            if moved || rule_changed {
                let previous = super::notices::shown_times(&before, None, now).0;
                notifier.notify_participants(ops, &after, Kind::Rescheduled, Some(previous))?;
            }
            Ok(Booked {
                event: after,
                moved: moved || rule_changed,
                occurrence: None,
            })
        });
        // A meeting made for a change that was refused (a double booking) is deleted.
        if written.is_err() {
            if let Some(Some(link)) = &link {
                video::discard(&self.config.video, std::slice::from_ref(link));
            }
        }
        written
    }

    /// `event update EVENT --occurrence TIME --start ...`: one occurrence of a series takes
    /// place at another time. Its participants get `rescheduled` (about that occurrence);
    /// its reminders are re-armed for the new time, the others are untouched.
    fn move_occurrence(
        &mut self,
        current: &Event,
        occurrence: &str,
        u: &EventUpdate,
    ) -> anyhow::Result<Booked> {
        if u.title.is_some()
            || u.video.is_some()
            || u.remind.iter().any(|v| !v.trim().is_empty())
            || u.repeat.is_some()
        {
            return Err(user_error(
                "--occurrence moves one occurrence: give only --start and/or --end / --duration (change the title, link, reminders or rule of the whole series without --occurrence)",
            ));
        }
        if u.start.is_none() && u.end.is_none() && u.duration.is_none() {
            return Err(user_error(
                "--occurrence: give the occurrence's new --start and/or --end / --duration (or cancel it with `event cancel EVENT --occurrence TIME`)",
            ));
        }
        let series = stored_series(current)?.ok_or_else(|| not_a_series(current.id))?;
        let tz = match &u.timezone {
            Some(z) => parse_tz(z)?,
            None => series.timezone(),
        };
        let wanted = parse_time(occurrence, tz)?;
        let notifier = Notifier::new(&self.config, &self.templates, &self.reporter, self.clock.now())?;
        let now = notifier.now;
        store::write(&mut *self.store, |ops| {
            let before = scheduled(ops, current.id)?;
            ops.guard_bookings(true)?;
            let series = stored_series(&before)?.ok_or_else(|| not_a_series(before.id))?;
            let exceptions = before.rule_exceptions();
            let occ = find_occurrence(&before, &series, &exceptions, wanted)?;
            let start = u
                .start
                .as_deref()
                .map(|s| parse_time(s, tz))
                .transpose()?
                .unwrap_or(occ.start);
            let end = if u.end.is_some() || u.duration.is_some() {
                resolve_end(start, u.end.as_deref(), u.duration.as_deref(), tz)?
            } else {
                start + (occ.end - occ.start)
            };
            if end <= start {
                return Err(user_error(
                    "the occurrence would end before it starts: check --end / --duration",
                ));
            }
            if (start, end) == (occ.start, occ.end) {
                return Ok(Booked {
                    event: before,
                    moved: false,
                    occurrence: Some(occ),
                });
            }
            if start < series.first_start() {
                return Err(user_error(format!(
                    "an occurrence cannot move before the series' first occurrence ({}): book a separate event",
                    rfc3339(series.first_start())
                )));
            }
            if let Some(other) = series.occurrence_at(start, &exceptions) {
                if other.original_start != occ.original_start {
                    return Err(user_error(format!(
                        "another occurrence of event {} starts at {}: pick another time",
                        before.id,
                        rfc3339(start)
                    )));
                }
            }
            if !u.allow_overlap {
                // The series' other occurrences count too: this one is left out of them.
                let mut others = exceptions.clone();
                others.push(Exception::Cancelled {
                    original_start: occ.original_start,
                });
                let mut cache = UserCache::new();
                for p in &before.participants {
                    let Some(user) = ops.user(p.user_id)? else {
                        continue;
                    };
                    refuse_overlap(
                        ops,
                        &user,
                        Slot::Single { start, end },
                        Some(before.id),
                        now,
                        &mut cache,
                    )?;
                    if let Some(o) = series.overlaps(start, end, &others) {
                        return Err(Overlap {
                            user_email: user.email.clone(),
                            event_id: before.id,
                            title: before.title.clone(),
                            starts_at: o.start,
                            ends_at: o.end,
                        }
                        .refusal());
                    }
                }
            }
            ops.set_exception(
                before.id,
                &EventException {
                    original_start: occ.original_start,
                    status: ExceptionStatus::Moved,
                    starts_at: Some(start),
                    ends_at: Some(end),
                    armed_at: now,
                },
                now,
            )?;
            let after = existing(ops, before.id)?;
            let moved = Occurrence {
                start,
                end,
                original_start: occ.original_start,
                moved: true,
            };
            let detail = NoticeDetail {
                offset_minutes: None,
                previous_start: Some(occ.start),
                occurrence: Some(moved),
            };
            notifier.notify_participants_with(ops, &after, Kind::Rescheduled, &detail)?;
            Ok(Booked {
                event: after,
                moved: true,
                occurrence: Some(moved),
            })
        })
    }

    /// `event cancel`: `cancelled` notices; pending reminders are dropped at send time. A
    /// series ends as a whole (calendars remove it).
    pub fn cancel_event(&mut self, id: i64) -> anyhow::Result<(Event, usize)> {
        let notifier = Notifier::new(&self.config, &self.templates, &self.reporter, self.clock.now())?;
        store::write(&mut *self.store, |ops| {
            scheduled(ops, id)?;
            ops.cancel_event(id, notifier.now)?;
            let e = existing(ops, id)?;
            let n = notifier.notify_participants(ops, &e, Kind::Cancelled, None)?;
            Ok((e, n))
        })
    }

    /// `event cancel EVENT --occurrence TIME`: one occurrence of a series does not take
    /// place. Its participants get `cancelled` (about that occurrence); no reminder goes out
    /// for it; the rest of the series is untouched. TIME is the occurrence's start as the
    /// rule gives it (or as it was moved to), read in the event's zone.
    pub fn cancel_occurrence(
        &mut self,
        id: i64,
        occurrence: &str,
    ) -> anyhow::Result<(Event, Occurrence, usize)> {
        let current = existing(self.store.ops(), id)?;
        let series = stored_series(&current)?.ok_or_else(|| not_a_series(id))?;
        let wanted = parse_time(occurrence, series.timezone())?;
        let notifier = Notifier::new(&self.config, &self.templates, &self.reporter, self.clock.now())?;
        let now = notifier.now;
        store::write(&mut *self.store, |ops| {
            let before = scheduled(ops, id)?;
            let series = stored_series(&before)?.ok_or_else(|| not_a_series(id))?;
            let occ = find_occurrence(&before, &series, &before.rule_exceptions(), wanted)?;
            ops.set_exception(
                id,
                &EventException {
                    original_start: occ.original_start,
                    status: ExceptionStatus::Cancelled,
                    starts_at: None,
                    ends_at: None,
                    armed_at: now,
                },
                now,
            )?;
            let after = existing(ops, id)?;
            let detail = NoticeDetail {
                occurrence: Some(occ),
                ..NoticeDetail::default()
            };
            let n = notifier.notify_participants_with(ops, &after, Kind::Cancelled, &detail)?;
            Ok((after, occ, n))
        })
    }

    /// `event cancel EVENT --from TIME`: a series' occurrences from TIME on (by the start the
    /// rule gives them) do not take place; the earlier ones stay, with their history. The
    /// rule is cut (`UNTIL` just before the first of them), participants get `cancelled`
    /// about that first one, and their calendars get the series as it now is. From the
    /// first occurrence on, it is the whole series: [`Service::cancel_event`].
    pub fn cancel_from(&mut self, id: i64, from: &str) -> anyhow::Result<CancelledRest> {
        let current = existing(self.store.ops(), id)?;
        let series = stored_series(&current)?.ok_or_else(|| not_a_series(id))?;
        let cut = parse_time(from, series.timezone())?;
        let notifier = Notifier::new(&self.config, &self.templates, &self.reporter, self.clock.now())?;
        let now = notifier.now;
        store::write(&mut *self.store, |ops| {
            let before = scheduled(ops, id)?;
            let series = stored_series(&before)?.ok_or_else(|| not_a_series(id))?;
            let exceptions = before.rule_exceptions();
            // The first occurrence the rule gives from the cut on, as it now takes place.
            let Some(first) = series.occurrences_from(cut, &[]).next() else {
                return Err(user_error(format!(
                    "event {id} has no occurrence from {} on: nothing to cancel (see `notifyctl event show {id}`)",
                    rfc3339(cut)
                )));
            };
            let shown = series
                .occurrence_of(first.original_start, &exceptions)
                .unwrap_or(first);
            let Some(cut_series) = series
                .ending_before(first.original_start)
                .map_err(|e| user_error(format!("event {id}: the series cannot be cut there: {e}")))?
            else {
                ops.cancel_event(id, now)?;
                let e = existing(ops, id)?;
                let notified = notifier.notify_participants(ops, &e, Kind::Cancelled, None)?;
                return Ok(CancelledRest {
                    event: e,
                    from: shown,
                    whole_series: true,
                    notified,
                });
            };
            let changes = EventChanges {
                repeat: Some((
                    cut_series.rule().to_string(),
                    series_end(&cut_series, &exceptions),
                )),
                ..EventChanges::default()
            };
            ops.update_event(id, &changes, now)?;
            let after = existing(ops, id)?;
            let detail = NoticeDetail {
                occurrence: Some(shown),
                ..NoticeDetail::default()
            };
            let notified = notifier.notify_participants_with(ops, &after, Kind::Cancelled, &detail)?;
            Ok(CancelledRest {
                event: after,
                from: shown,
                whole_series: false,
                notified,
            })
        })
    }

    pub fn event(&mut self, id: i64) -> anyhow::Result<Event> {
        existing(self.store.ops(), id)
    }

    /// `event show`: the event with what applies to it now.
    pub fn event_view(&mut self, id: i64) -> anyhow::Result<EventView> {
        let event = existing(self.store.ops(), id)?;
        let default = self.config.offsets_minutes();
        // A rule an app wrote wrong still shows (`repeat:`), with no next occurrences: the
        // tick reports it; `show` is how support finds it.
        let next = match event.series() {
            Ok(Some(series)) if event.status == EventStatus::Scheduled => series
                .occurrences_from(self.now(), &event.rule_exceptions())
                .take(SHOWN_OCCURRENCES)
                .map(|o| OccurrenceView::from(&o))
                .collect(),
            _ => Vec::new(),
        };
        Ok(EventView {
            offsets: event.offsets_or(&default).to_vec(),
            own_offsets: event.remind_offsets.is_some(),
            event,
            next,
        })
    }

    /// Events in a window, by start, streamed. A series is shown by its occurrences in
    /// the window (see [`Listed`]); without `to`, up to [`LIST_SERIES_DAYS`] after `from`
    /// (or now), so that an open-ended series never lists forever.
    pub fn list_events(
        &mut self,
        filter: &store::EventFilter,
        each: &mut dyn FnMut(Result<Listed, store::BrokenRow>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let now = self.now();
        let from = filter
            .from
            .or(filter.to.map(|t| t - TimeDelta::days(LIST_SERIES_DAYS)))
            .unwrap_or(now);
        let to = filter.to.unwrap_or(from + TimeDelta::days(LIST_SERIES_DAYS));
        // Occurrences wait in start order until no earlier row can come: a series' first
        // start bounds all its occurrences, and the rows arrive by start.
        let mut waiting: std::collections::BinaryHeap<std::cmp::Reverse<(DateTime<Utc>, i64, usize)>> =
            std::collections::BinaryHeap::new();
        let mut listed: Vec<Option<Listed>> = Vec::new();
        let emit_before = |limit: Option<DateTime<Utc>>,
                           waiting: &mut std::collections::BinaryHeap<_>,
                           listed: &mut Vec<Option<Listed>>,
                           each: &mut dyn FnMut(Result<Listed, store::BrokenRow>) -> anyhow::Result<()>|
         -> anyhow::Result<()> {
            while let Some(std::cmp::Reverse((start, _, i))) = waiting.peek().copied() {
                if limit.is_some_and(|l| start >= l) {
                    break;
                }
                waiting.pop();
                if let Some(item) = listed.get_mut(i).and_then(Option::take) {
                    each(Ok(item))?;
                }
            }
            Ok(())
        };
        self.store.list_events(filter, &mut |row| {
            let event = match row {
                Ok(e) => e,
                Err(b) => return each(Err(b)),
            };
            emit_before(Some(event.starts_at), &mut waiting, &mut listed, each)?;
            let series = match event.series() {
                Ok(Some(series)) => series,
                Ok(None) => {
                    return each(Ok(Listed {
                        event,
                        occurrence: None,
                    }))
                }
                Err(why) => {
                    return each(Err(store::BrokenRow {
                        table: "events",
                        id: format!("id {}", event.id),
                        column: "repeat_rule".into(),
                        problem: why,
                        value: crate::input::printable(event.repeat_rule.as_deref().unwrap_or(""), 80),
                    }))
                }
            };
            let exceptions = event.rule_exceptions();
            // Occurrences still running at `from` count, as events do.
            let back = from - series.duration().max(TimeDelta::days(1));
            for o in series.occurrences(back, to, &exceptions) {
                if o.end <= from {
                    continue;
                }
                let mut shown = event.clone();
                shown.starts_at = o.start;
                shown.ends_at = o.end;
                listed.push(Some(Listed {
                    event: shown,
                    occurrence: Some(o),
                }));
                waiting.push(std::cmp::Reverse((o.start, event.id, listed.len() - 1)));
            }
            Ok(())
        })?;
        emit_before(None, &mut waiting, &mut listed, each)
    }
}

/// How far ahead `event list` shows a series' occurrences when no `--to` is given.
pub const LIST_SERIES_DAYS: i64 = 30;

/// One line of `event list`: an event, or one occurrence of a series (the event with the
/// occurrence's times). JSON: the event's object, with `occurrence` (null for an event).
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    #[serde(flatten)]
    pub event: Event,
    #[serde(serialize_with = "occurrence_json")]
    pub occurrence: Option<Occurrence>,
}

fn occurrence_json<S: serde::Serializer>(o: &Option<Occurrence>, s: S) -> Result<S::Ok, S::Error> {
    match o {
        Some(o) => OccurrenceView::from(o).serialize(s),
        None => s.serialize_none(),
    }
}

/// An occurrence as the JSON shows it.
#[derive(Debug, Clone, Serialize)]
pub struct OccurrenceView {
    #[serde(with = "crate::model::utc")]
    pub original_start: DateTime<Utc>,
    #[serde(with = "crate::model::utc")]
    pub starts_at: DateTime<Utc>,
    #[serde(with = "crate::model::utc")]
    pub ends_at: DateTime<Utc>,
    pub moved: bool,
}

impl From<&Occurrence> for OccurrenceView {
    fn from(o: &Occurrence) -> OccurrenceView {
        OccurrenceView {
            original_start: o.original_start,
            starts_at: o.start,
            ends_at: o.end,
            moved: o.moved,
        }
    }
}

/// What `event cancel EVENT --from TIME` did.
#[derive(Debug, Clone)]
pub struct CancelledRest {
    pub event: Event,
    /// The first occurrence cancelled, as it was to take place.
    pub from: Occurrence,
    /// The cut was at the first occurrence: the whole series is cancelled.
    pub whole_series: bool,
    pub notified: usize,
}

/// `event show`: the event, the reminder offsets that apply, and a series' next occurrences.
#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    #[serde(flatten)]
    pub event: Event,
    /// The offsets that apply (minutes): the event's own, or the config's.
    #[serde(rename = "reminder_offsets")]
    pub offsets: Vec<i64>,
    /// Whether they are the event's own (`--remind`).
    pub own_offsets: bool,
    /// A series: its next occurrences from now.
    pub next: Vec<OccurrenceView>,
}

/// How many next occurrences `event show` lists.
const SHOWN_OCCURRENCES: usize = 5;

fn not_a_series(id: i64) -> anyhow::Error {
    user_error(format!(
        "event {id} is not a recurring series: --occurrence is for events booked with --repeat"
    ))
}

/// The occurrence `wanted` names: the one the rule gives at that start, or one moved there.
fn find_occurrence(
    e: &Event,
    series: &Series,
    exceptions: &[Exception],
    wanted: DateTime<Utc>,
) -> anyhow::Result<Occurrence> {
    if let Some(o) = series.occurrence_of(wanted, exceptions) {
        return Ok(o);
    }
    if series.contains(wanted) {
        return Err(user_error(format!(
            "the occurrence of event {} at {} is already cancelled",
            e.id,
            rfc3339(wanted)
        )));
    }
    if let Some(o) = series.occurrence_at(wanted, exceptions) {
        return Ok(o);
    }
    let next = series
        .next_after(wanted - TimeDelta::seconds(1), exceptions)
        .map(|o| format!(": the next one starts at {}", rfc3339(o.start)))
        .unwrap_or_default();
    Err(user_error(format!(
        "event {} has no occurrence starting at {}{next} (see `notifyctl event show {}`)",
        e.id,
        rfc3339(wanted),
        e.id
    )))
}

/// `event update`'s changes as typed.
#[derive(Debug, Clone, Default)]
pub struct EventUpdate {
    pub title: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub duration: Option<String>,
    pub timezone: Option<String>,
    pub video: Option<String>,
    pub allow_overlap: bool,
    /// `--remind`: new offsets, `none`, or `default` (the config's); empty: unchanged.
    pub remind: Vec<String>,
    /// `--repeat`: a new rule (the event becomes, or stays, a series).
    pub repeat: Option<String>,
    /// `--occurrence`: move this occurrence of a series only.
    pub occurrence: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remind(values: &[&str]) -> Result<Option<Vec<i64>>, String> {
        let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        parse_remind(&values).map_err(|e| e.to_string())
    }

    #[test]
    fn remind_offsets_are_whole_minutes_largest_first_without_duplicates() {
        assert_eq!(remind(&[]), Ok(None));
        assert_eq!(remind(&["  "]), Ok(None), "an empty import cell: the config's");
        assert_eq!(remind(&["none"]), Ok(Some(vec![])));
        assert_eq!(remind(&["NONE"]), Ok(Some(vec![])));
        assert_eq!(remind(&["default"]), Ok(None));
        assert_eq!(
            remind(&["10m", "1d", "10m", "1h30m"]),
            Ok(Some(vec![1440, 90, 10]))
        );
        assert_eq!(remind(&["365d"]), Ok(Some(vec![525_600])));
    }

    #[test]
    fn bad_remind_offsets_are_one_line_errors() {
        for (values, expected) in [
            (&["0m"][..], "positive whole number of minutes"),
            (&["90s"], "positive whole number of minutes"),
            (&["366d"], "at most 365d"),
            (&["5x"], "5x"),
            (&["none", "10m"], "cannot be combined"),
            (&["default", "none"], "cannot be combined"),
            (&["\u{1b}[31m10m"], "invalid"),
        ] {
            let e = remind(values).expect_err(expected);
            assert!(e.contains(expected), "{values:?}: {e}");
            assert!(!e.contains('\n'), "{values:?}: one line: {e}");
            assert!(!e.contains('\u{1b}'), "{values:?}: no raw control character: {e}");
        }
    }

    #[test]
    fn offsets_read_as_durations() {
        assert_eq!(offsets_text(&[]), "none");
        assert_eq!(offsets_text(&[1440, 30]), "1d, 30m");
    }
}
