//! The in-app inbox, and the insert that makes each notice exist once with its deliveries.

use ::postgres::types::ToSql;
use ::postgres::Row;
use chrono::{DateTime, Utc};

use super::{broken, Cols, PgStore};
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

impl NoticeOps for PgStore {
    fn insert_notice(&mut self, n: &NewNotice, now: DateTime<Utc>) -> anyhow::Result<Option<i64>> {
        // One round trip: the notice, unless its unique key exists (NOT EXISTS, so no id
        // is used up; ON CONFLICT for another host inserting it at the same moment, which
        // waits for that host's commit instead of failing), then one pending delivery per
        // channel.
        let channels: Vec<&str> = n.channels.iter().map(|c| c.as_str()).collect();
        let row = self.query_opt(
            "WITH notice AS (
                INSERT INTO notifications
                    (user_id, kind, event_id, offset_minutes, event_start, event_sequence, previous_start,
                     title, body, created_at, agenda_date, occurrence_start)
                SELECT $1::bigint, $2::text, $3::bigint, $4::bigint, $5::timestamptz, $6::bigint,
                       $7::timestamptz, $8::text, $9::text, $10::timestamptz, $12::date, $13::timestamptz
                 WHERE NOT EXISTS (SELECT 1 FROM notifications x
                                    WHERE $2::text = 'reminder' AND x.kind = 'reminder'
                                      AND x.event_id = $3::bigint AND x.user_id = $1::bigint
                                      AND x.offset_minutes = $4::bigint AND x.event_start = $5::timestamptz)
                   AND NOT EXISTS (SELECT 1 FROM notifications x
                                    WHERE x.kind IN ('assigned', 'rescheduled', 'cancelled') AND x.kind = $2::text
                                      AND x.event_id = $3::bigint AND x.user_id = $1::bigint
                                      AND x.event_sequence = $6::bigint)
                   AND NOT EXISTS (SELECT 1 FROM notifications x
                                    WHERE $2::text = 'agenda' AND x.kind = 'agenda'
                                      AND x.user_id = $1::bigint AND x.agenda_date = $12::date)
                ON CONFLICT DO NOTHING
                RETURNING id),
             channels AS (
                INSERT INTO deliveries (notification_id, channel, status, next_attempt_at, created_at, updated_at)
                SELECT notice.id, channel, 'pending', $10::timestamptz, $10::timestamptz, $10::timestamptz
                  FROM notice CROSS JOIN unnest($11::text[]) AS channel)
             SELECT id FROM notice",
            &[
                &n.user_id,
                &n.kind.as_str(),
                &n.event_id,
                &n.offset_minutes,
                &n.event_start,
                &n.event_sequence,
                &n.previous_start,
                &n.title,
                &n.body,
                &now,
                &channels,
                &n.agenda_date,
                &n.occurrence_start,
            ],
        )?;
        Ok(match row {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }

    fn notification(&mut self, id: i64) -> anyhow::Result<Option<Notification>> {
        let sql =
            format!("SELECT {COLUMNS} FROM notifications n JOIN users u ON u.id = n.user_id WHERE n.id = $1");
        match self.query_opt(&sql, &[&id])? {
            Some(r) => Ok(Some(decode(&r).map_err(broken)?)),
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
            "SELECT {COLUMNS} FROM notifications n JOIN users u ON u.id = n.user_id WHERE n.user_id = $1"
        );
        let limit = f.limit.map(i64::from);
        let mut args: Vec<&(dyn ToSql + Sync)> = vec![&user_id];
        if f.unread_only {
            sql.push_str(" AND n.read_at IS NULL");
        }
        if let Some(kind) = &f.kind {
            args.push(kind);
            sql.push_str(&format!(" AND n.kind = ${}", args.len()));
        }
        // Newest first; the id breaks ties between notices of the same second.
        sql.push_str(" ORDER BY n.id DESC");
        if let Some(limit) = &limit {
            args.push(limit);
            sql.push_str(&format!(" LIMIT ${}", args.len()));
        }
        self.stream(&sql, &args, |r| each(decode(r)))
    }

    fn unread_count(&mut self, user_id: i64) -> anyhow::Result<i64> {
        let row = self.query_one(
            "SELECT count(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL",
            &[&user_id],
        )?;
        Ok(row.try_get(0)?)
    }

    fn first_missing_notification(&mut self, ids: &[i64]) -> anyhow::Result<Option<i64>> {
        let row = self.query_opt(
            "SELECT t.id FROM unnest($1::bigint[]) WITH ORDINALITY AS t(id, position)
              WHERE NOT EXISTS (SELECT 1 FROM notifications n WHERE n.id = t.id)
              ORDER BY t.position LIMIT 1",
            &[&ids],
        )?;
        Ok(match row {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }

    fn mark_read(&mut self, ids: &[i64], now: DateTime<Utc>) -> anyhow::Result<usize> {
        let n = self.execute(
            "UPDATE notifications SET read_at = $1 WHERE read_at IS NULL AND id = ANY($2)",
            &[&now, &ids],
        )?;
        Ok(n as usize)
    }

    fn mark_all_read(&mut self, user_id: i64, now: DateTime<Utc>) -> anyhow::Result<usize> {
        let n = self.execute(
            "UPDATE notifications SET read_at = $2 WHERE user_id = $1 AND read_at IS NULL",
            &[&user_id, &now],
        )?;
        Ok(n as usize)
    }

    fn mark_unread(&mut self, ids: &[i64]) -> anyhow::Result<usize> {
        let n = self.execute(
            "UPDATE notifications SET read_at = NULL WHERE read_at IS NOT NULL AND id = ANY($1)",
            &[&ids],
        )?;
        Ok(n as usize)
    }

    fn delete_notifications(&mut self, ids: &[i64]) -> anyhow::Result<usize> {
        let n = self.execute("DELETE FROM notifications WHERE id = ANY($1)", &[&ids])?;
        Ok(n as usize)
    }

    fn clear_read(&mut self, user_id: i64) -> anyhow::Result<usize> {
        let n = self.execute(
            "DELETE FROM notifications n WHERE n.user_id = $1 AND n.read_at IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = n.id
                               AND d.status IN ('pending', 'sending', 'failed'))",
            &[&user_id],
        )?;
        Ok(n as usize)
    }

    fn event_notices(
        &mut self,
        event_id: i64,
        user_id: i64,
    ) -> anyhow::Result<Vec<Result<NoticeRecord, BrokenRow>>> {
        let rows = self.query(
            "SELECT id, kind, title, offset_minutes, event_start, occurrence_start, previous_start, event_sequence,
                    created_at, read_at
               FROM notifications WHERE event_id = $1 AND user_id = $2 ORDER BY id",
            &[&event_id, &user_id],
        )?;
        Ok(rows
            .iter()
            .map(|r| {
                let c = Cols::new(r, "notifications", 0);
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
            })
            .collect())
    }
}
