//! The in-app inbox, and the insert that makes each notice exist once with its deliveries.

use chrono::{DateTime, Utc};
use rusqlite::{params, params_from_iter, Row};

use super::{broken, placeholders, ts, Cols, SqliteStore};
use crate::model::{NewNotice, Notification};
use crate::store::{BrokenRow, Each, InboxFilter, NoticeOps, NoticeRecord};

const COLUMNS: &str = "n.id, n.user_id, u.email, n.kind, n.title, n.body, n.event_id,
                       n.offset_minutes, n.created_at, n.read_at";

fn decode(r: &Row) -> Result<Notification, BrokenRow> {
    let c = Cols::new(r, "notifications", 0);
    Ok(Notification {
        id: c.i64(0)?,
        user_id: c.i64(1)?,
        user_email: c.text(2)?,
        kind: c.text(3)?,
        title: c.text(4)?,
        body: c.text(5)?,
        event_id: c.opt_i64(6)?,
        offset_minutes: c.opt_i64(7)?,
        created_at: c.ts(8)?,
        read_at: c.opt_ts(9)?,
    })
}

impl SqliteStore {
    fn update_ids(
        &self,
        sql_head: &str,
        first: Option<rusqlite::types::Value>,
        ids: &[i64],
    ) -> anyhow::Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut args: Vec<rusqlite::types::Value> = first.into_iter().collect();
        args.extend(ids.iter().map(|i| (*i).into()));
        Ok(self.conn.execute(
            &format!("{sql_head} ({})", placeholders(ids.len())),
            params_from_iter(args),
        )?)
    }
}

impl NoticeOps for SqliteStore {
    fn insert_notice(&mut self, n: &NewNotice, now: DateTime<Utc>) -> anyhow::Result<Option<i64>> {
        let inserted = self
            .conn
            .prepare_cached(
                "INSERT OR IGNORE INTO notifications
                    (user_id, kind, event_id, offset_minutes, event_start, event_sequence, previous_start, title, body,
                     created_at, occurrence_start, agenda_date)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?
            .execute(params![
                n.user_id,
                n.kind.as_str(),
                n.event_id,
                n.offset_minutes,
                n.event_start.map(ts),
                n.event_sequence,
                n.previous_start.map(ts),
                n.title,
                n.body,
                ts(now),
                n.occurrence_start.map(ts),
                n.agenda_date.map(|d| d.to_string()),
            ])?;
        if inserted == 0 {
            return Ok(None);
        }
        let id = self.conn.last_insert_rowid();
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO deliveries (notification_id, channel, status, next_attempt_at, created_at, updated_at)
             VALUES (?1, ?2, 'pending', ?3, ?3, ?3)",
        )?;
        for channel in &n.channels {
            stmt.execute(params![id, channel.as_str(), ts(now)])?;
        }
        Ok(Some(id))
    }

    fn notification(&mut self, id: i64) -> anyhow::Result<Option<Notification>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM notifications n JOIN users u ON u.id = n.user_id WHERE n.id = ?1"
        ))?;
        let mut rows = stmt.query([id])?;
        match rows.next()? {
            Some(r) => Ok(Some(decode(r).map_err(broken)?)),
            None => Ok(None),
        }
    }

    fn inbox(
        &mut self,
        user_id: i64,
        f: &InboxFilter,
        each: Each<Result<Notification, BrokenRow>>,
    ) -> anyhow::Result<()> {
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
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params_from_iter(args))?;
        while let Some(r) = rows.next()? {
            each(decode(r))?;
        }
        Ok(())
    }

    fn unread_count(&mut self, user_id: i64) -> anyhow::Result<i64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM notifications WHERE user_id = ?1 AND read_at IS NULL",
            [user_id],
            |r| r.get(0),
        )?)
    }

    fn first_missing_notification(&mut self, ids: &[i64]) -> anyhow::Result<Option<i64>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM notifications WHERE id = ?1")?;
        for id in ids {
            if !stmt.exists([id])? {
                return Ok(Some(*id));
            }
        }
        Ok(None)
    }

    fn mark_read(&mut self, ids: &[i64], now: DateTime<Utc>) -> anyhow::Result<usize> {
        self.update_ids(
            "UPDATE notifications SET read_at = ? WHERE read_at IS NULL AND id IN",
            Some(ts(now).into()),
            ids,
        )
    }

    fn mark_all_read(&mut self, user_id: i64, now: DateTime<Utc>) -> anyhow::Result<usize> {
        Ok(self.conn.execute(
            "UPDATE notifications SET read_at = ?2 WHERE user_id = ?1 AND read_at IS NULL",
            params![user_id, ts(now)],
        )?)
    }

    fn mark_unread(&mut self, ids: &[i64]) -> anyhow::Result<usize> {
        self.update_ids(
            "UPDATE notifications SET read_at = NULL WHERE read_at IS NOT NULL AND id IN",
            None,
            ids,
        )
    }

    fn delete_notifications(&mut self, ids: &[i64]) -> anyhow::Result<usize> {
        self.update_ids("DELETE FROM notifications WHERE id IN", None, ids)
    }

    fn clear_read(&mut self, user_id: i64) -> anyhow::Result<usize> {
        Ok(self.conn.execute(
            "DELETE FROM notifications WHERE user_id = ?1 AND read_at IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = notifications.id
                               AND d.status IN ('pending', 'sending', 'failed'))",
            [user_id],
        )?)
    }

    fn event_notices(
        &mut self,
        event_id: i64,
        user_id: i64,
    ) -> anyhow::Result<Vec<Result<NoticeRecord, BrokenRow>>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, kind, title, offset_minutes, event_start, occurrence_start, previous_start, event_sequence,
                    created_at, read_at
             FROM notifications WHERE event_id = ?1 AND user_id = ?2 ORDER BY id",
        )?;
        let mut rows = stmt.query(params![event_id, user_id])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let c = Cols::new(r, "notifications", 0);
            out.push((|| {
                Ok(NoticeRecord {
                    id: c.i64(0)?,
                    kind: c.text(1)?,
                    title: c.text(2)?,
                    offset_minutes: c.opt_i64(3)?,
                    event_start: c.opt_ts(4)?,
                    occurrence_start: c.opt_ts(5)?,
                    previous_start: c.opt_ts(6)?,
                    event_sequence: c.opt_i64(7)?,
                    created_at: c.ts(8)?,
                    read_at: c.opt_ts(9)?,
                })
            })());
        }
        Ok(out)
    }
}
