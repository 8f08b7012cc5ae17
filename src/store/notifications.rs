//! The in-app inbox, and the insert that makes each notice exist once with its deliveries.

use chrono::{DateTime, Utc};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use super::{get_ts, get_ts_opt, placeholders, ts, Store};
use crate::error::user_error;
use crate::model::{NewNotice, Notification};

const COLUMNS: &str = "n.id, n.user_id, u.email, n.kind, n.title, n.body, n.event_id,
                       n.offset_minutes, n.created_at, n.read_at";

fn from_row(r: &Row) -> rusqlite::Result<Notification> {
    Ok(Notification {
        id: r.get(0)?,
        user_id: r.get(1)?,
        user_email: r.get(2)?,
        kind: r.get(3)?,
        title: r.get(4)?,
        body: r.get(5)?,
        event_id: r.get(6)?,
        offset_minutes: r.get(7)?,
        created_at: get_ts(r, 8)?,
        read_at: get_ts_opt(r, 9)?,
    })
}

#[derive(Debug, Default, Clone)]
pub struct InboxFilter {
    pub unread_only: bool,
    pub kind: Option<String>,
    pub limit: Option<u32>,
}

/// Insert a notice and one pending delivery per channel, or nothing when the same notice
/// exists already (the unique indexes decide, not a prior read). Returns the new id.
pub(crate) fn insert_notice(
    conn: &Connection,
    n: &NewNotice,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<i64>> {
    let inserted = conn.execute(
        "INSERT OR IGNORE INTO notifications
            (user_id, kind, event_id, offset_minutes, event_start, event_sequence, previous_start, title, body, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            n.user_id,
            n.kind.as_str(),
            n.event_id,
            n.offset_minutes,
            n.event_start.map(ts),
            n.event_sequence,
            n.previous_start.map(ts),
            n.title,
            n.body,
            ts(now)
        ],
    )?;
    if inserted == 0 {
        return Ok(None);
    }
    let id = conn.last_insert_rowid();
    let mut stmt = conn.prepare_cached(
        "INSERT INTO deliveries (notification_id, channel, status, next_attempt_at, created_at, updated_at)
         VALUES (?1, ?2, 'pending', ?3, ?3, ?3)",
    )?;
    for channel in &n.channels {
        stmt.execute(params![id, channel.as_str(), ts(now)])?;
    }
    Ok(Some(id))
}

fn get(conn: &Connection, id: i64) -> anyhow::Result<Notification> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM notifications n JOIN users u ON u.id = n.user_id WHERE n.id = ?1"),
        [id],
        from_row,
    )
    .optional()?
    .ok_or_else(|| user_error(format!("unknown notification {id}")))
}

/// Refuse the whole command when any id is unknown, so nothing is half-applied.
fn require_all(conn: &Connection, ids: &[i64]) -> anyhow::Result<()> {
    let found: i64 = conn.query_row(
        &format!(
            "SELECT count(*) FROM notifications WHERE id IN ({})",
            placeholders(ids.len())
        ),
        params_from_iter(ids),
        |r| r.get(0),
    )?;
    if found as usize != ids.len() {
        let mut stmt = conn.prepare("SELECT 1 FROM notifications WHERE id = ?1")?;
        for id in ids {
            if !stmt.exists([id])? {
                return Err(user_error(format!(
                    "unknown notification {id}: nothing was changed"
                )));
            }
        }
    }
    Ok(())
}

impl Store {
    pub fn notification(&self, id: i64) -> anyhow::Result<Notification> {
        get(&self.conn, id)
    }

    pub fn inbox(&self, user_id: i64, f: &InboxFilter) -> anyhow::Result<Vec<Notification>> {
        let mut sql = format!(
            "SELECT {COLUMNS} FROM notifications n JOIN users u ON u.id = n.user_id WHERE n.user_id = ?"
        );
        let mut args: Vec<rusqlite::types::Value> = vec![user_id.into()];
        if f.unread_only {
            sql.push_str(" AND n.read_at IS NULL");
        }
        if let Some(kind) = &f.kind {
            sql.push_str(" AND n.kind = ?");
            args.push(kind.clone().into());
        }
        // Newest first; the id breaks ties between notices of the same second.
        sql.push_str(" ORDER BY n.id DESC");
        if let Some(limit) = f.limit {
            sql.push_str(" LIMIT ?");
            args.push(i64::from(limit).into());
        }
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt
            .query_map(params_from_iter(args), from_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    pub fn unread_count(&self, user_id: i64) -> anyhow::Result<i64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM notifications WHERE user_id = ?1 AND read_at IS NULL",
            [user_id],
            |r| r.get(0),
        )?)
    }

    /// Mark read; a notice already read keeps its first read time. Returns rows changed.
    pub fn mark_read(&mut self, ids: &[i64], now: DateTime<Utc>) -> anyhow::Result<usize> {
        self.write(|tx| {
            require_all(tx, ids)?;
            let mut args: Vec<rusqlite::types::Value> = vec![ts(now).into()];
            args.extend(ids.iter().map(|i| (*i).into()));
            Ok(tx.execute(
                &format!(
                    "UPDATE notifications SET read_at = ? WHERE read_at IS NULL AND id IN ({})",
                    placeholders(ids.len())
                ),
                params_from_iter(args),
            )?)
        })
    }

    pub fn mark_all_read(&mut self, user_id: i64, now: DateTime<Utc>) -> anyhow::Result<usize> {
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE notifications SET read_at = ?2 WHERE user_id = ?1 AND read_at IS NULL",
                params![user_id, ts(now)],
            )?)
        })
    }

    pub fn mark_unread(&mut self, ids: &[i64]) -> anyhow::Result<usize> {
        self.write(|tx| {
            require_all(tx, ids)?;
            Ok(tx.execute(
                &format!(
                    "UPDATE notifications SET read_at = NULL WHERE read_at IS NOT NULL AND id IN ({})",
                    placeholders(ids.len())
                ),
                params_from_iter(ids),
            )?)
        })
    }

    /// Delete notices (their pending deliveries go with them: the user dismissed them).
    pub fn delete_notifications(&mut self, ids: &[i64]) -> anyhow::Result<usize> {
        self.write(|tx| {
            require_all(tx, ids)?;
            Ok(tx.execute(
                &format!(
                    "DELETE FROM notifications WHERE id IN ({})",
                    placeholders(ids.len())
                ),
                params_from_iter(ids),
            )?)
        })
    }

    /// Delete a user's read notices whose deliveries are all finished.
    pub fn clear_read(&mut self, user_id: i64) -> anyhow::Result<usize> {
        self.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM notifications WHERE user_id = ?1 AND read_at IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = notifications.id
                                   AND d.status IN ('pending', 'sending', 'failed'))",
                [user_id],
            )?)
        })
    }
}
