//! Reminder decisions: the candidates the planner looks at and the record of each
//! decision, sent or skipped, keyed once per (event, recipient, offset, event start).

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{ts, Cols, SqliteStore};
use crate::model::Candidate;
use crate::store::{BrokenRow, CandidateCursor, CandidatePage, DecisionRecord, ReminderOps, SkippedCount};

impl ReminderOps for SqliteStore {
    fn reminder_candidates(
        &mut self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        cursor: Option<&CandidateCursor>,
        limit: u32,
    ) -> anyhow::Result<CandidatePage> {
        // Ordered as the (status, starts_at) index and the participants key already are,
        // so a page is a seek and a short walk, never a sort of the whole window.
        const SELECT: &str = "SELECT e.id, p.user_id, e.starts_at, max(e.armed_at, p.added_at) AS armed_at,
                    (SELECT group_concat(r.offset_minutes) FROM reminders r
                      WHERE r.event_id = e.id AND r.user_id = p.user_id AND r.event_start = e.starts_at),
                    u.id IS NULL AS user_missing
             FROM events e JOIN participants p ON p.event_id = e.id
             LEFT JOIN users u ON u.id = p.user_id
             WHERE e.status = 'scheduled' AND e.starts_at <= ?2";
        let sql = match cursor {
            None => format!("{SELECT} AND e.starts_at > ?1 ORDER BY e.starts_at, e.id, p.user_id LIMIT ?6"),
            Some(_) => format!(
                "{SELECT} AND e.starts_at > ?1 AND e.starts_at >= ?3 AND (e.starts_at, e.id, p.user_id) > (?3, ?4, ?5)
                 ORDER BY e.starts_at, e.id, p.user_id LIMIT ?6"
            ),
        };
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let (c_start, c_event, c_user) = match cursor {
            Some(c) => (c.starts_at.clone(), c.event_id, c.user_id),
            None => (String::new(), i64::MIN, i64::MIN),
        };
        let mut rows = stmt.query(params![ts(after), ts(until), c_start, c_event, c_user, limit])?;
        let mut page = CandidatePage::default();
        let mut seen = 0u32;
        let mut last = None;
        while let Some(r) = rows.next()? {
            seen += 1;
            let id = match (r.get_ref(0), r.get_ref(1)) {
                (Ok(e), Ok(u)) => format!(
                    "event {} participant {}",
                    super::printable(e),
                    super::printable(u)
                ),
                _ => "(unknown)".into(),
            };
            let c = Cols::named(r, "events", id);
            last = Some(CandidateCursor {
                starts_at: c.text(2).unwrap_or_default(),
                event_id: c.i64(0).unwrap_or(i64::MAX),
                user_id: c.i64(1).unwrap_or(i64::MAX),
            });
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
                Ok(c) => page.candidates.push(c),
                Err(b) => page.broken.push(b),
            }
        }
        if seen == limit {
            page.next = last;
        }
        Ok(page)
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

    fn reopen_decisions(
        &mut self,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> anyhow::Result<usize> {
        const WHERE: &str = "outcome = 'skipped' AND reason IN ('late', 'collapsed')
                             AND decided_at >= ?1 AND event_start > ?2 AND notification_id IS NULL";
        if dry_run {
            let n: i64 = self.conn.query_row(
                &format!("SELECT count(*) FROM reminders WHERE {WHERE}"),
                params![ts(since), ts(now)],
                |r| r.get(0),
            )?;
            return Ok(n as usize);
        }
        Ok(self.conn.execute(
            &format!("DELETE FROM reminders WHERE {WHERE}"),
            params![ts(since), ts(now)],
        )?)
    }
}
