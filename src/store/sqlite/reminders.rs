//! Reminder decisions: the candidates the planner looks at and the record of each
//! decision, sent or skipped, keyed once per (event, recipient, offset, event start).

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{ts, Cols, SqliteStore};
use crate::model::Candidate;
use crate::store::{BrokenRow, DecisionRecord, ReminderOps, SkippedCount};

impl ReminderOps for SqliteStore {
    fn reminder_candidates(
        &mut self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> anyhow::Result<(Vec<Candidate>, Vec<BrokenRow>)> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT e.id, p.user_id, e.starts_at, max(e.armed_at, p.added_at) AS armed_at,
                    (SELECT group_concat(r.offset_minutes) FROM reminders r
                      WHERE r.event_id = e.id AND r.user_id = p.user_id AND r.event_start = e.starts_at),
                    u.id IS NULL AS user_missing
             FROM events e JOIN participants p ON p.event_id = e.id
             LEFT JOIN users u ON u.id = p.user_id
             WHERE e.status = 'scheduled' AND e.starts_at > ?1 AND e.starts_at <= ?2",
        )?;
        let mut rows = stmt.query(params![ts(after), ts(until)])?;
        let mut good = Vec::new();
        let mut broken = Vec::new();
        while let Some(r) = rows.next()? {
            let id = match (r.get_ref(0), r.get_ref(1)) {
                (Ok(e), Ok(u)) => format!(
                    "event {} participant {}",
                    super::printable(e),
                    super::printable(u)
                ),
                _ => "(unknown)".into(),
            };
            let c = Cols::named(r, "events", id);
            let parsed = (|| -> Result<Candidate, BrokenRow> {
                // A participant left behind by an app that deleted the user with foreign
                // keys off.
                if c.bool(5)? {
                    let mut b = c.invalid(1, "refers to a user that does not exist");
                    b.table = "participants";
                    return Err(b);
                }
                let decided = c.opt_text(4)?.unwrap_or_default();
                Ok(Candidate {
                    event_id: c.i64(0)?,
                    user_id: c.i64(1)?,
                    event_start: c.ts(2)?,
                    armed_at: c.ts(3)?,
                    decided: decided.split(',').filter_map(|s| s.parse().ok()).collect(),
                })
            })();
            match parsed {
                Ok(c) => good.push(c),
                Err(b) => broken.push(b),
            }
        }
        Ok((good, broken))
    }

    fn record_decision(&mut self, d: &DecisionRecord, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let n = self
            .conn
            .prepare_cached(
                "INSERT OR IGNORE INTO reminders (event_id, user_id, offset_minutes, event_start, outcome, reason, decided_at)
                 VALUES (?1, ?2, ?3, ?4, CASE WHEN ?5 IS NULL THEN 'sent' ELSE 'skipped' END, ?5, ?6)",
            )?
            .execute(params![
                d.event_id,
                d.user_id,
                d.offset_minutes,
                ts(d.event_start),
                d.skipped_reason,
                ts(now)
            ])?;
        Ok(n == 1)
    }

    fn link_notification(&mut self, d: &DecisionRecord, notification_id: i64) -> anyhow::Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE reminders SET notification_id = ?5
                 WHERE event_id = ?1 AND user_id = ?2 AND offset_minutes = ?3 AND event_start = ?4",
            )?
            .execute(params![
                d.event_id,
                d.user_id,
                d.offset_minutes,
                ts(d.event_start),
                notification_id
            ])?;
        Ok(())
    }

    fn skipped_since(&mut self, since: DateTime<Utc>) -> anyhow::Result<Vec<SkippedCount>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT coalesce(reason, '?'), count(*) FROM reminders WHERE outcome = 'skipped' AND decided_at >= ?1
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
