//! Booking: creating events (one at a time or from an import file, through the same
//! path), assigning and removing participants, moving and cancelling — each change and its
//! notices in one write transaction, with the double-booking check inside it, so two
//! concurrent bookings of one slot cannot both pass.

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use super::notices::Notifier;
use super::{FieldError, Service};
use crate::error::user_error;
use crate::input::{check_text, limits, parse_duration, parse_time, parse_tz, rfc3339};
use crate::model::{Event, EventStatus, Kind, User};
use crate::store::{self, EventChanges, NewEvent, Ops};

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
}

/// A draft with its times resolved, ready to be written.
#[derive(Debug, Clone)]
pub struct ResolvedEvent {
    pub new: NewEvent,
    /// (user key as given, role)
    pub participants: Vec<(String, String)>,
}

/// What `event add` and `event update` report.
#[derive(Debug, Clone)]
pub struct Booked {
    pub event: Event,
    /// `event update` moved the event (participants were notified).
    pub moved: bool,
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
        (Some(e), _) => parse_time(e, tz)?,
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

/// Refuse when `user` has another scheduled event intersecting [start, end).
fn refuse_overlap(
    ops: &mut dyn Ops,
    user: &User,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    except: Option<i64>,
) -> anyhow::Result<()> {
    if let Some(o) = ops.find_overlap(user.id, start, end, except)? {
        return Err(o.refusal());
    }
    Ok(())
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
/// `notify`) in the caller's transaction.
fn insert(
    ops: &mut dyn Ops,
    notifier: &Notifier,
    spec: &ResolvedEvent,
    allow_overlap: bool,
    notify: bool,
) -> anyhow::Result<Event> {
    let mut users: Vec<(User, String)> = Vec::new();
    for (key, role) in &spec.participants {
        let user = ops.find_user(key)?;
        if users.iter().any(|(u, _)| u.id == user.id) {
            return Err(user_error(format!("participant {} is listed twice", user.email)));
        }
        if !allow_overlap {
            refuse_overlap(ops, &user, spec.new.starts_at, spec.new.ends_at, None)?;
        }
        users.push((user, role.clone()));
    }
    let id = ops.insert_event(&spec.new, notifier.now)?;
    for (user, role) in &users {
        ops.add_participant(id, user.id, role, allow_overlap, notifier.now)?;
    }
    let event = existing(ops, id)?;
    if notify {
        notifier.notify_participants(ops, &event, Kind::Assigned, None)?;
    }
    Ok(event)
}

/// The rows an import could not write, by their position in the batch.
#[derive(Debug)]
pub struct RejectedRows(pub Vec<(usize, anyhow::Error)>);

impl std::fmt::Display for RejectedRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} row(s) could not be written", self.0.len())
    }
}

impl std::error::Error for RejectedRows {}

impl Service {
    /// The zone to read local times in: the given one, else the first participant's, else
    /// the default.
    fn input_zone(&mut self, tz: Option<&str>, first_user: Option<&str>) -> Result<Tz, FieldError> {
        if let Some(z) = tz.filter(|z| !z.trim().is_empty()) {
            return parse_tz(z).map_err(|e| FieldError::new("timezone", e));
        }
        match first_user {
            Some(key) => {
                let user = self
                    .store
                    .find_user(key)
                    .map_err(|e| FieldError::new("participants", e))?;
                Ok(self.user_tz(&user))
            }
            None => Ok(self.config.default_tz()),
        }
    }

    /// Check a draft and resolve its times, the zone and the video link. Reads only.
    pub fn resolve_event(&mut self, d: &EventDraft) -> Result<ResolvedEvent, FieldError> {
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
        let tz = self.input_zone(
            d.timezone.as_deref(),
            participants.first().map(|(k, _)| k.as_str()),
        )?;
        let starts_at = parse_time(&d.start, tz).map_err(|e| FieldError::new("start", e))?;
        let field = if d.end.is_some() { "end" } else { "duration" };
        let ends_at = resolve_end(starts_at, d.end.as_deref(), d.duration.as_deref(), tz)
            .map_err(|e| FieldError::new(field, e))?;
        // Outside any write lock: a video provider may take a moment to answer.
        let video_url = crate::video::resolve(&self.config.video, &d.video, &title, starts_at, ends_at)
            .map_err(|e| FieldError::new("video", e))?;
        Ok(ResolvedEvent {
            new: NewEvent {
                title,
                starts_at,
                ends_at,
                timezone: Some(tz.name().to_string()),
                video_url,
            },
            participants,
        })
    }

    /// `event add`: create an event; participants get an `assigned` notice.
    pub fn add_event(&mut self, draft: &EventDraft, allow_overlap: bool) -> anyhow::Result<Event> {
        let spec = self.resolve_event(draft).map_err(|f| f.error)?;
        let mut events = self.add_events(&[spec], allow_overlap, true).map_err(|e| {
            match e.downcast::<RejectedRows>() {
                Ok(mut rows) if !rows.0.is_empty() => rows.0.remove(0).1,
                Ok(rows) => anyhow::Error::new(rows),
                Err(other) => other,
            }
        })?;
        events
            .pop()
            .ok_or_else(|| anyhow::anyhow!("the event was not stored"))
    }

    /// Write resolved events, all or nothing, in one transaction. Rows that cannot be
    /// written (unknown participant, double booking) come back together as
    /// [`RejectedRows`], and nothing is written.
    pub fn add_events(
        &mut self,
        specs: &[ResolvedEvent],
        allow_overlap: bool,
        notify: bool,
    ) -> anyhow::Result<Vec<Event>> {
        let notifier = Notifier::new(&self.config, &self.templates, &self.reporter, self.clock.now())?;
        store::write(&mut *self.store, |ops| {
            let mut events = Vec::with_capacity(specs.len());
            let mut rejected = Vec::new();
            for (i, spec) in specs.iter().enumerate() {
                match insert(ops, &notifier, spec, allow_overlap, notify) {
                    Ok(e) => events.push(e),
                    Err(e) if e.is::<crate::error::UserError>() => rejected.push((i, e)),
                    Err(e) => return Err(e),
                }
            }
            if rejected.is_empty() {
                Ok(events)
            } else {
                Err(anyhow::Error::new(RejectedRows(rejected)))
            }
        })
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
            let u = ops.find_user(user_key)?;
            if e.participants.iter().any(|p| p.user_id == u.id) {
                return Err(user_error(format!(
                    "{} is already assigned to event {event_id}",
                    u.email
                )));
            }
            if !allow_overlap {
                refuse_overlap(ops, &u, e.starts_at, e.ends_at, Some(e.id))?;
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

    /// `event update`: a new time re-arms the reminders and sends `rescheduled`.
    pub fn update_event(&mut self, id: i64, u: &EventUpdate) -> anyhow::Result<Booked> {
        let current = existing(self.store.ops(), id)?;
        let tz = match &u.timezone {
            Some(z) => parse_tz(z)?,
            None => current
                .timezone
                .as_deref()
                .and_then(|z| z.parse().ok())
                .unwrap_or_else(|| self.config.default_tz()),
        };
        let title = u.title.as_deref().map(check_title).transpose()?;
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
        if let Some(end) = ends_at {
            if end <= start {
                return Err(user_error(
                    "the event would end before it starts: check --end / --duration",
                ));
            }
        }
        let video_url = match &u.video {
            Some(v) => Some(crate::video::resolve(
                &self.config.video,
                v,
                title.as_deref().unwrap_or(&current.title),
                start,
                ends_at.unwrap_or(current.ends_at),
            )?),
            None => None,
        };
        let changes = EventChanges {
            title,
            starts_at,
            ends_at,
            video_url,
            allow_overlap: u.allow_overlap,
        };
        let notifier = Notifier::new(&self.config, &self.templates, &self.reporter, self.clock.now())?;
        store::write(&mut *self.store, |ops| {
            let before = scheduled(ops, id)?;
            let new_start = changes.starts_at.unwrap_or(before.starts_at);
            let new_end = changes.ends_at.unwrap_or(before.ends_at);
            let moved = new_start != before.starts_at || new_end != before.ends_at;
            if moved && !u.allow_overlap {
                for p in &before.participants {
                    if let Some(user) = ops.user(p.user_id)? {
                        refuse_overlap(ops, &user, new_start, new_end, Some(before.id))?;
                    }
                }
            }
            // Only a visible change is written: calendars see a new SEQUENCE only then.
            let retitled = changes.title.as_ref().is_some_and(|t| *t != before.title);
            let relinked = changes.video_url.as_ref().is_some_and(|v| *v != before.video_url);
            if !(moved || retitled || relinked) {
                return Ok(Booked {
                    event: before,
                    moved: false,
                });
            }
            let changes = EventChanges {
                title: changes.title.clone().filter(|_| retitled),
                starts_at: changes.starts_at.filter(|_| moved),
                ends_at: changes.ends_at.filter(|_| moved),
                video_url: changes.video_url.clone().filter(|_| relinked),
                allow_overlap: changes.allow_overlap,
            };
            ops.update_event(before.id, &changes, notifier.now)?;
            let after = existing(ops, before.id)?;
            if moved {
                notifier.notify_participants(ops, &after, Kind::Rescheduled, Some(before.starts_at))?;
            }
            Ok(Booked { event: after, moved })
        })
    }

    /// `event cancel`: `cancelled` notices; pending reminders are dropped at send time.
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

    pub fn event(&mut self, id: i64) -> anyhow::Result<Event> {
        existing(self.store.ops(), id)
    }

    /// Events in a window, by start, streamed.
    pub fn list_events(
        &mut self,
        filter: &store::EventFilter,
        each: &mut dyn FnMut(Result<Event, store::BrokenRow>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.store.list_events(filter, each)
    }
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
}
