//! `event add|assign|unassign|update|cancel|list|show`.
//!
//! Every change and its notices are written in one `BEGIN IMMEDIATE` transaction, with
//! the double-booking check inside it: two concurrent bookings of one slot cannot both
//! pass the check.

use std::process::ExitCode;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use rusqlite::Connection;
use serde_json::json;

use crate::cli::{EventAdd, EventCmd, EventUpdate};
use crate::error::user_error;
use crate::input::{parse_duration, parse_time, parse_tz, rfc3339};
use crate::model::{Event, Kind, User};
use crate::notices;
use crate::store::{self, EventChanges, EventFilter, NewEvent};
use crate::Ctx;

/// An event ready to be written: times resolved, participants named.
pub struct EventSpec {
    pub new: NewEvent,
    /// (user key as given, role)
    pub participants: Vec<(String, String)>,
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

/// The end from `--end` or `--duration` (default one hour).
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
    let t = title.trim();
    if t.is_empty() {
        return Err(user_error("an event needs a title (--title)"));
    }
    Ok(t.to_string())
}

/// Refuse when `user` has another scheduled event intersecting [start, end).
fn refuse_overlap(
    conn: &Connection,
    user: &User,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    except: Option<i64>,
) -> anyhow::Result<()> {
    if let Some(o) = store::find_overlap(conn, user.id, start, end, except)? {
        return Err(user_error(format!(
            "{} is already booked from {} to {} (event {} '{}'): pick another time or pass --allow-overlap",
            o.user_email, o.starts_at, o.ends_at, o.event_id, o.title
        )));
    }
    Ok(())
}

/// Write a new event, its participants and (if `notify`) their `assigned` notices, in
/// the caller's transaction. Shared by `event add` and `import events`.
pub fn insert(
    conn: &Connection,
    ctx: &Ctx,
    spec: &EventSpec,
    allow_overlap: bool,
    notify: bool,
) -> anyhow::Result<Event> {
    let now = ctx.now();
    let mut users: Vec<(User, String)> = Vec::new();
    for (key, role) in &spec.participants {
        let user = store::find_user(conn, key)?;
        if users.iter().any(|(u, _)| u.id == user.id) {
            return Err(user_error(format!("participant {} is listed twice", user.email)));
        }
        if !allow_overlap {
            refuse_overlap(conn, &user, spec.new.starts_at, spec.new.ends_at, None)?;
        }
        users.push((user, role.clone()));
    }
    let id = store::insert_event(conn, &spec.new, now)?;
    for (user, role) in &users {
        store::insert_participant(conn, id, user.id, role, now)?;
    }
    let event = store::get_event(conn, id)?;
    if notify {
        notices::notify_participants(conn, ctx, &event, Kind::Assigned, None)?;
    }
    Ok(event)
}

/// The zone to read local times in: --tz, else the first participant's, else the default.
fn input_zone(ctx: &Ctx, tz: Option<&str>, first_user: Option<&User>) -> anyhow::Result<Tz> {
    match (tz, first_user) {
        (Some(z), _) => parse_tz(z),
        (None, Some(u)) => Ok(notices::user_tz(ctx, u)),
        (None, None) => Ok(ctx.config.default_tz()),
    }
}

pub fn run(ctx: &Ctx, cmd: EventCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        EventCmd::Add(a) => add(ctx, a),
        EventCmd::Assign {
            event,
            user,
            role,
            allow_overlap,
        } => {
            let mut store = ctx.store()?;
            let (e, u) = store.write(|tx| {
                let e = scheduled(tx, event)?;
                let u = store::find_user(tx, &user)?;
                if e.participants.iter().any(|p| p.user_id == u.id) {
                    return Err(user_error(format!(
                        "{} is already assigned to event {event}",
                        u.email
                    )));
                }
                if !allow_overlap {
                    refuse_overlap(tx, &u, e.starts_at, e.ends_at, Some(e.id))?;
                }
                let now = ctx.now();
                store::insert_participant(tx, e.id, u.id, role.trim(), now)?;
                store::bump_sequence(tx, e.id, now)?;
                let e = store::get_event(tx, e.id)?;
                notices::emit_event_notice(tx, ctx, &e, &u, Kind::Assigned, None, None)?;
                Ok((e, u))
            })?;
            super::created(
                ctx,
                json!({"id": e.id, "user_id": u.id, "assigned": true}),
                format!("assigned {} to event {}", u.email, e.id),
            );
            Ok(ExitCode::SUCCESS)
        }
        EventCmd::Unassign { event, user } => {
            let mut store = ctx.store()?;
            let (e, u) = store.write(|tx| {
                let e = store::get_event(tx, event)?;
                let u = store::find_user(tx, &user)?;
                if !store::delete_participant(tx, e.id, u.id)? {
                    return Err(user_error(format!(
                        "{} is not assigned to event {event}",
                        u.email
                    )));
                }
                let now = ctx.now();
                store::bump_sequence(tx, e.id, now)?;
                let e = store::get_event(tx, e.id)?;
                // For the removed user the event is off: a `cancelled` notice takes it
                // out of their calendar, and their pending reminders are dropped.
                if e.status == crate::model::EventStatus::Scheduled {
                    notices::emit_event_notice(tx, ctx, &e, &u, Kind::Cancelled, None, None)?;
                }
                Ok((e, u))
            })?;
            super::created(
                ctx,
                json!({"id": e.id, "user_id": u.id, "assigned": false}),
                format!("removed {} from event {}", u.email, e.id),
            );
            Ok(ExitCode::SUCCESS)
        }
        EventCmd::Update(u) => update(ctx, u),
        EventCmd::Cancel { event } => {
            let mut store = ctx.store()?;
            let (e, n) = store.write(|tx| {
                scheduled(tx, event)?;
                store::cancel_event(tx, event, ctx.now())?;
                let e = store::get_event(tx, event)?;
                let n = notices::notify_participants(tx, ctx, &e, Kind::Cancelled, None)?;
                Ok((e, n))
            })?;
            super::created(
                ctx,
                json!({"id": e.id, "status": "cancelled", "notified": n}),
                format!("cancelled event {} ({n} participants notified)", e.id),
            );
            Ok(ExitCode::SUCCESS)
        }
        EventCmd::List {
            user,
            from,
            to,
            all,
            tz,
        } => {
            let store = ctx.store()?;
            let zone = match &tz {
                Some(z) => parse_tz(z)?,
                None => ctx.config.default_tz(),
            };
            let filter = EventFilter {
                user_id: user.map(|u| store.find_user(&u).map(|u| u.id)).transpose()?,
                from: from.map(|f| parse_time(&f, zone)).transpose()?,
                to: to.map(|t| parse_time(&t, zone)).transpose()?,
                include_cancelled: all,
                limit: None,
            };
            let events = store.list_events(&filter)?;
            if ctx.out.json {
                ctx.out.json(&events);
            } else {
                let rows: Vec<Vec<String>> = events
                    .iter()
                    .map(|e| {
                        vec![
                            e.id.to_string(),
                            rfc3339(e.starts_at),
                            rfc3339(e.ends_at),
                            e.status.as_str().to_string(),
                            crate::output::cell(&e.title, 40),
                            e.participants
                                .iter()
                                .map(|p| p.email.as_str())
                                .collect::<Vec<_>>()
                                .join(", "),
                        ]
                    })
                    .collect();
                ctx.out.table(
                    &[
                        "ID",
                        "START (UTC)",
                        "END (UTC)",
                        "STATUS",
                        "TITLE",
                        "PARTICIPANTS",
                    ],
                    &rows,
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        EventCmd::Show { event } => {
            let e = ctx.store()?.get_event(event)?;
            show(ctx, &e);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn scheduled(conn: &Connection, id: i64) -> anyhow::Result<Event> {
    let e = store::get_event(conn, id)?;
    if e.status != crate::model::EventStatus::Scheduled {
        return Err(user_error(format!(
            "event {id} is cancelled: nothing was changed"
        )));
    }
    Ok(e)
}

fn add(ctx: &Ctx, a: EventAdd) -> anyhow::Result<ExitCode> {
    let title = check_title(&a.title)?;
    let participants: Vec<(String, String)> = a.participants.iter().map(|p| parse_participant(p)).collect();
    let mut store = ctx.store()?;
    let first = participants
        .first()
        .map(|(k, _)| store.find_user(k))
        .transpose()?;
    let tz = input_zone(ctx, a.tz.as_deref(), first.as_ref())?;
    let starts_at = parse_time(&a.start, tz)?;
    let ends_at = resolve_end(starts_at, a.end.as_deref(), a.duration.as_deref(), tz)?;
    // Outside the write lock: a video provider may take a moment to answer.
    let video_url = crate::video::resolve(&ctx.config.video, &a.video, &title, starts_at, ends_at)?;
    let spec = EventSpec {
        new: NewEvent {
            title,
            starts_at,
            ends_at,
            timezone: Some(tz.name().to_string()),
            video_url,
        },
        participants,
    };
    let event = store.write(|tx| insert(tx, ctx, &spec, a.allow_overlap, true))?;
    super::created(
        ctx,
        json!({"id": event.id, "starts_at": rfc3339(event.starts_at), "ends_at": rfc3339(event.ends_at), "video_url": event.video_url}),
        event.id.to_string(),
    );
    Ok(ExitCode::SUCCESS)
}

fn update(ctx: &Ctx, u: EventUpdate) -> anyhow::Result<ExitCode> {
    let mut store = ctx.store()?;
    let current = store.get_event(u.event)?;
    let tz = match &u.tz {
        Some(z) => parse_tz(z)?,
        None => current
            .timezone
            .as_deref()
            .and_then(|z| z.parse().ok())
            .unwrap_or_else(|| ctx.config.default_tz()),
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
            &ctx.config.video,
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
    };
    let (event, moved) = store.write(|tx| {
        let before = scheduled(tx, u.event)?;
        let new_start = changes.starts_at.unwrap_or(before.starts_at);
        let new_end = changes.ends_at.unwrap_or(before.ends_at);
        let moved = new_start != before.starts_at || new_end != before.ends_at;
        if moved && !u.allow_overlap {
            for p in &before.participants {
                let user = store::get_user(tx, p.user_id)?;
                refuse_overlap(tx, &user, new_start, new_end, Some(before.id))?;
            }
        }
        store::update_event(tx, before.id, &changes, ctx.now())?;
        let after = store::get_event(tx, before.id)?;
        if moved {
            notices::notify_participants(tx, ctx, &after, Kind::Rescheduled, Some(before.starts_at))?;
        }
        Ok((after, moved))
    })?;
    super::created(
        ctx,
        json!({"id": event.id, "starts_at": rfc3339(event.starts_at), "ends_at": rfc3339(event.ends_at), "rescheduled": moved}),
        if moved {
            format!(
                "event {} moved to {} (participants notified)",
                event.id,
                rfc3339(event.starts_at)
            )
        } else {
            format!("event {} updated", event.id)
        },
    );
    Ok(ExitCode::SUCCESS)
}

fn show(ctx: &Ctx, e: &Event) {
    if ctx.out.json {
        ctx.out.json(e);
        return;
    }
    ctx.out.line(format!("id:        {}", e.id));
    ctx.out.line(format!("title:     {}", e.title));
    ctx.out.line(format!("status:    {}", e.status.as_str()));
    ctx.out.line(format!("start:     {}", rfc3339(e.starts_at)));
    ctx.out.line(format!("end:       {}", rfc3339(e.ends_at)));
    ctx.out
        .line(format!("zone:      {}", e.timezone.as_deref().unwrap_or("-")));
    ctx.out
        .line(format!("video:     {}", e.video_url.as_deref().unwrap_or("-")));
    ctx.out.line(format!("sequence:  {}", e.sequence));
    for p in &e.participants {
        ctx.out
            .line(format!("participant: {} <{}> ({})", p.name, p.email, p.role));
    }
}
