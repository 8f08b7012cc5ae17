//! Reminder decisions: the candidates the planner looks at and the record of each
//! decision, sent or skipped, keyed once per (event, recipient, offset, event start).

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
use serde::Serialize;

use super::{ts, Store};

/// A participant of a scheduled event starting in the window, with the offsets already
/// decided for the event's current start.
#[derive(Debug, Clone)]
pub struct ReminderCandidate {
    pub event_id: i64,
    pub user_id: i64,
    pub event_start: DateTime<Utc>,
    /// Reminders due before this moment (participant added, event moved) are not sent.
    pub armed_at: DateTime<Utc>,
    pub decided: Vec<i64>,
}

/// Candidates for events starting in (after, until]. Rows an app wrote with a value that
/// does not parse are returned separately, so one bad row never stops the tick.
pub(crate) fn candidates(
    conn: &Connection,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
) -> anyhow::Result<(Vec<ReminderCandidate>, Vec<String>)> {
    let mut stmt = conn.prepare_cached(
        "SELECT e.id, p.user_id, e.starts_at, max(e.armed_at, p.added_at),
                (SELECT group_concat(r.offset_minutes) FROM reminders r
                  WHERE r.event_id = e.id AND r.user_id = p.user_id AND r.event_start = e.starts_at)
         FROM events e JOIN participants p ON p.event_id = e.id
         WHERE e.status = 'scheduled' AND e.starts_at > ?1 AND e.starts_at <= ?2",
    )?;
    let mut rows = stmt.query(params![ts(after), ts(until)])?;
    let mut good = Vec::new();
    let mut broken = Vec::new();
    while let Some(r) = rows.next()? {
        let event_id: i64 = r.get(0)?;
        let user_id: i64 = r.get(1)?;
        let parsed = (|| -> rusqlite::Result<ReminderCandidate> {
            let decided: Option<String> = r.get(4)?;
            Ok(ReminderCandidate {
                event_id,
                user_id,
                event_start: super::parse_ts(&r.get::<_, String>(2)?)?,
                armed_at: super::parse_ts(&r.get::<_, String>(3)?)?,
                decided: decided
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|s| s.parse().ok())
                    .collect(),
            })
        })();
        match parsed {
            Ok(c) => good.push(c),
            Err(e) => broken.push(format!("event {event_id} participant {user_id}: {e}")),
        }
    }
    Ok((good, broken))
}

/// Record a decision; false when another tick recorded it first.
pub(crate) fn record_decision(
    conn: &Connection,
    event_id: i64,
    user_id: i64,
    offset_minutes: i64,
    event_start: DateTime<Utc>,
    skipped_reason: Option<&str>,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO reminders (event_id, user_id, offset_minutes, event_start, outcome, reason, decided_at)
         VALUES (?1, ?2, ?3, ?4, CASE WHEN ?5 IS NULL THEN 'sent' ELSE 'skipped' END, ?5, ?6)",
    )?;
    let n = stmt.execute(params![
        event_id,
        user_id,
        offset_minutes,
        ts(event_start),
        skipped_reason,
        ts(now)
    ])?;
    Ok(n == 1)
}

pub(crate) fn link_notification(
    conn: &Connection,
    event_id: i64,
    user_id: i64,
    offset_minutes: i64,
    event_start: DateTime<Utc>,
    notification_id: i64,
) -> anyhow::Result<()> {
    conn.prepare_cached(
        "UPDATE reminders SET notification_id = ?5
         WHERE event_id = ?1 AND user_id = ?2 AND offset_minutes = ?3 AND event_start = ?4",
    )?
    .execute(params![
        event_id,
        user_id,
        offset_minutes,
        ts(event_start),
        notification_id
    ])?;
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct SkippedCount {
    pub reason: String,
    pub count: i64,
}

impl Store {
    pub fn reminder_candidates(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> anyhow::Result<(Vec<ReminderCandidate>, Vec<String>)> {
        candidates(&self.conn, after, until)
    }

    /// Skipped reminders decided since `since`, by reason.
    pub fn skipped_since(&self, since: DateTime<Utc>) -> anyhow::Result<Vec<SkippedCount>> {
        let mut stmt = self.conn.prepare(
            "SELECT reason, count(*) FROM reminders WHERE outcome = 'skipped' AND decided_at >= ?1
             GROUP BY reason ORDER BY reason",
        )?;
        let rows = stmt
            .query_map([ts(since)], |r| {
                Ok(SkippedCount {
                    reason: r.get(0)?,
                    count: r.get(1)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }
}
