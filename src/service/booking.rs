//! Booking: creating events (one at a time or from an import file, through the same
//! path), assigning and removing participants, moving and cancelling — each change and its
//! notices in one write transaction, with the double-booking check inside it, so two
//! concurrent bookings of one slot cannot both pass.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use super::notices::Notifier;
use super::{user_tz, FieldError, Service};
use crate::config::Config;
use crate::error::user_error;
use crate::input::{check_text, limits, parse_duration, parse_time, parse_tz, rfc3339};
use crate::model::{Event, EventStatus, Kind, User};
use crate::store::{self, EventChanges, NewEvent, Ops};
use crate::video::{self, VideoRequest};

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

/// A draft with its times resolved, ready to be written once its video link is made.
#[derive(Debug, Clone)]
pub struct ResolvedEvent {
    pub new: NewEvent,
    /// (user key as given, role)
    pub participants: Vec<(String, String)>,
    /// The link to make just before writing (`new.video_url` is empty until then).
    pub video: VideoRequest,
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

/// Users looked up by the key a draft names them with, within one write.
pub type UserCache = std::collections::HashMap<String, User>;

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
    let mut users: Vec<(User, String)> = Vec::new();
    for (key, role) in &spec.participants {
        let user = match cache.get(key) {
            Some(u) => u.clone(),
            None => {
                let u = ops.find_user(key)?;
                cache.insert(key.clone(), u.clone());
                u
            }
        };
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
    Ok(ResolvedEvent {
        new: NewEvent {
            title,
            starts_at,
            ends_at,
            timezone: Some(tz.name().to_string()),
            video_url: None,
        },
        participants,
        video,
    })
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
        if !allow_overlap {
            for (key, _) in &spec.participants {
                let user = self.store.find_user(key)?;
                refuse_overlap(
                    self.store.ops(),
                    &user,
                    spec.new.starts_at,
                    spec.new.ends_at,
                    None,
                )?;
            }
        }
        // Outside any write lock: a video provider may take a moment to answer.
        let link = video::create(&self.config.video, &spec.video, &spec.slot())?;
        spec.new.video_url = link.as_ref().map(|l| l.url.clone());
        let notifier = Notifier::new(&self.config, &self.templates, &self.reporter, self.clock.now())?;
        let written = store::write(&mut *self.store, |ops| {
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
        let link = match &u.video {
            Some(v) => {
                let request = video::parse_request(v)?;
                let slot = video::Slot {
                    title: title.as_deref().unwrap_or(&current.title),
                    starts_at: start,
                    ends_at: ends_at.unwrap_or(current.ends_at),
                };
                Some(video::create(&self.config.video, &request, &slot)?)
            }
            None => None,
        };
        let video_url = link.as_ref().map(|l| l.as_ref().map(|l| l.url.clone()));
        let changes = EventChanges {
            title,
            starts_at,
            ends_at,
            video_url,
            allow_overlap: u.allow_overlap,
        };
        let notifier = Notifier::new(&self.config, &self.templates, &self.reporter, self.clock.now())?;
        let written = store::write(&mut *self.store, |ops| {
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
        });
        // A meeting made for a change that was refused (a double booking) is deleted.
        if written.is_err() {
            if let Some(Some(link)) = &link {
                video::discard(&self.config.video, std::slice::from_ref(link));
            }
        }
        written
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
