//! Events and their participants, and the double-booking check.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{get_ts, ts, Store};
use crate::error::user_error;
use crate::model::{Event, EventStatus, Participant};

const COLUMNS: &str =
    "id, title, starts_at, ends_at, timezone, video_url, status, sequence, created_at, updated_at";

fn from_row(r: &Row) -> rusqlite::Result<Event> {
    let status: String = r.get(6)?;
    Ok(Event {
        id: r.get(0)?,
        title: r.get(1)?,
        starts_at: get_ts(r, 2)?,
        ends_at: get_ts(r, 3)?,
        timezone: r.get(4)?,
        video_url: r.get(5)?,
        status: if status == "cancelled" {
            EventStatus::Cancelled
        } else {
            EventStatus::Scheduled
        },
        sequence: r.get(7)?,
        created_at: get_ts(r, 8)?,
        updated_at: get_ts(r, 9)?,
        participants: Vec::new(),
    })
}

#[derive(Debug, Clone)]
pub struct NewEvent {
    pub title: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub timezone: Option<String>,
    pub video_url: Option<String>,
}

#[derive(Debug, Default, Clone)]
pub struct EventChanges {
    pub title: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub video_url: Option<Option<String>>,
}

#[derive(Debug, Default, Clone)]
pub struct EventFilter {
    pub user_id: Option<i64>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub include_cancelled: bool,
    pub limit: Option<u32>,
}

pub(crate) fn insert_event(conn: &Connection, e: &NewEvent, now: DateTime<Utc>) -> anyhow::Result<i64> {
    conn.execute(
        "INSERT INTO events (title, starts_at, ends_at, timezone, video_url, status, sequence,
                             armed_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'scheduled', 0, ?6, ?6, ?6)",
        params![
            e.title,
            ts(e.starts_at),
            ts(e.ends_at),
            e.timezone,
            e.video_url,
            ts(now)
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Add a participant; false when they already were one.
pub(crate) fn insert_participant(
    conn: &Connection,
    event_id: i64,
    user_id: i64,
    role: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let n = conn.execute(
        "INSERT OR IGNORE INTO participants (event_id, user_id, role, added_at) VALUES (?1, ?2, ?3, ?4)",
        params![event_id, user_id, role, ts(now)],
    )?;
    Ok(n == 1)
}

pub(crate) fn delete_participant(conn: &Connection, event_id: i64, user_id: i64) -> anyhow::Result<bool> {
    let n = conn.execute(
        "DELETE FROM participants WHERE event_id = ?1 AND user_id = ?2",
        params![event_id, user_id],
    )?;
    Ok(n == 1)
}

/// A scheduled event of `user_id` that intersects [start, end), other than `except`.
#[derive(Debug, Clone)]
pub struct Overlap {
    pub user_email: String,
    pub event_id: i64,
    pub title: String,
    pub starts_at: String,
    pub ends_at: String,
}

pub(crate) fn find_overlap(
    conn: &Connection,
    user_id: i64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    except: Option<i64>,
) -> anyhow::Result<Option<Overlap>> {
    // Half-open intervals: back-to-back events do not overlap. CROSS JOIN makes SQLite
    // start from the user's participant rows (participants_by_user) instead of scanning
    // every scheduled event before the end through the start index: 9 ms instead of
    // 0.15 s per participant at 1M events. The comparison is on sortable UTC text.
    Ok(conn
        .query_row(
            "SELECT u.email, e.id, e.title, e.starts_at, e.ends_at
             FROM participants p
             CROSS JOIN events e ON e.id = p.event_id
             JOIN users u ON u.id = p.user_id
             WHERE p.user_id = ?1 AND e.status = 'scheduled'
               AND e.starts_at < ?3 AND e.ends_at > ?2 AND e.id IS NOT ?4
             ORDER BY e.starts_at LIMIT 1",
            params![user_id, ts(start), ts(end), except],
            |r| {
                Ok(Overlap {
                    user_email: r.get(0)?,
                    event_id: r.get(1)?,
                    title: r.get(2)?,
                    starts_at: r.get(3)?,
                    ends_at: r.get(4)?,
                })
            },
        )
        .optional()?)
}

pub(crate) fn get_event(conn: &Connection, id: i64) -> anyhow::Result<Event> {
    let event = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM events WHERE id = ?1"),
            [id],
            from_row,
        )
        .optional()?;
    let mut event =
        event.ok_or_else(|| user_error(format!("unknown event {id}: see `notifyctl event list`")))?;
    event.participants = participants(conn, id)?;
    Ok(event)
}

pub(crate) fn participants(conn: &Connection, event_id: i64) -> anyhow::Result<Vec<Participant>> {
    let mut stmt = conn.prepare_cached(
        "SELECT p.user_id, u.email, u.name, p.role FROM participants p
         JOIN users u ON u.id = p.user_id WHERE p.event_id = ?1 ORDER BY p.added_at, p.user_id",
    )?;
    let rows = stmt
        .query_map([event_id], |r| {
            Ok(Participant {
                user_id: r.get(0)?,
                email: r.get(1)?,
                name: r.get(2)?,
                role: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Apply changes; a new start re-arms reminders (their moments before now are not sent)
/// and, like any visible change, bumps the iCalendar sequence.
pub(crate) fn update_event(
    conn: &Connection,
    id: i64,
    changes: &EventChanges,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let current = get_event(conn, id)?;
    let start = changes.starts_at.unwrap_or(current.starts_at);
    let end = changes.ends_at.unwrap_or(current.ends_at);
    let rearm = start != current.starts_at;
    conn.execute(
        "UPDATE events SET title = ?2, starts_at = ?3, ends_at = ?4, video_url = ?5,
                sequence = sequence + 1, updated_at = ?6,
                armed_at = CASE WHEN ?7 THEN ?6 ELSE armed_at END
         WHERE id = ?1",
        params![
            id,
            changes.title.clone().unwrap_or(current.title),
            ts(start),
            ts(end),
            changes.video_url.clone().unwrap_or(current.video_url),
            ts(now),
            rearm,
        ],
    )?;
    Ok(())
}

/// Participants changed: calendars need a new sequence number.
pub(crate) fn bump_sequence(conn: &Connection, id: i64, now: DateTime<Utc>) -> anyhow::Result<()> {
    conn.execute(
        "UPDATE events SET sequence = sequence + 1, updated_at = ?2 WHERE id = ?1",
        params![id, ts(now)],
    )?;
    Ok(())
}

pub(crate) fn cancel_event(conn: &Connection, id: i64, now: DateTime<Utc>) -> anyhow::Result<()> {
    conn.execute(
        "UPDATE events SET status = 'cancelled', sequence = sequence + 1, updated_at = ?2 WHERE id = ?1",
        params![id, ts(now)],
    )?;
    Ok(())
}

pub(crate) fn list_events(conn: &Connection, f: &EventFilter) -> anyhow::Result<Vec<Event>> {
    let mut sql = format!("SELECT {COLUMNS} FROM events e WHERE 1 = 1");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(user) = f.user_id {
        sql.push_str(" AND e.id IN (SELECT event_id FROM participants WHERE user_id = ?)");
        args.push(user.into());
    }
    if let Some(from) = f.from {
        // Events still running at `from` count too.
        sql.push_str(" AND e.ends_at > ?");
        args.push(ts(from).into());
    }
    if let Some(to) = f.to {
        sql.push_str(" AND e.starts_at < ?");
        args.push(ts(to).into());
    }
    if !f.include_cancelled {
        sql.push_str(" AND e.status = 'scheduled'");
    }
    sql.push_str(" ORDER BY e.starts_at, e.id");
    if let Some(limit) = f.limit {
        sql.push_str(" LIMIT ?");
        args.push(i64::from(limit).into());
    }
    let mut stmt = conn.prepare(&sql)?;
    let mut events: Vec<Event> = stmt
        .query_map(rusqlite::params_from_iter(args), from_row)?
        .collect::<Result<_, _>>()?;
    for e in &mut events {
        e.participants = participants(conn, e.id)?;
    }
    Ok(events)
}

impl Store {
    pub fn get_event(&self, id: i64) -> anyhow::Result<Event> {
        get_event(&self.conn, id)
    }

    pub fn list_events(&self, filter: &EventFilter) -> anyhow::Result<Vec<Event>> {
        list_events(&self.conn, filter)
    }
}
