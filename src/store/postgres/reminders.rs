//! Reminder decisions: the candidates the planner looks at and the record of each
//! decision, sent or skipped, keyed once per (event, recipient, offset, event start).
//! Ticks on several hosts read the same candidates; each decision is recorded by one of
//! them (a row lock skipped by the others, and the primary key with `ON CONFLICT DO
//! NOTHING`), and only that one creates the notice.

use chrono::{DateTime, Utc};

use super::{Cols, PgStore};
use crate::input::rfc3339;
use crate::model::Candidate;
use crate::store::{BrokenRow, CandidateCursor, CandidatePage, DecisionRecord, ReminderOps, SkippedCount};

/// Participants of scheduled events starting in ($1, $2], in (start, event, participant)
/// order (the events_scheduled_by_start index, then the participants key).
const SELECT: &str = "SELECT e.id, p.user_id, e.starts_at, greatest(e.armed_at, p.added_at),
        (SELECT array_agg(r.offset_minutes) FROM reminders r
          WHERE r.event_id = e.id AND r.user_id = p.user_id AND r.event_start = e.starts_at),
        u.id IS NULL AS user_missing
   FROM events e JOIN participants p ON p.event_id = e.id
   LEFT JOIN users u ON u.id = p.user_id
  WHERE e.status = 'scheduled' AND e.starts_at > $1 AND e.starts_at <= $2";

impl ReminderOps for PgStore {
    fn reminder_candidates(
        &mut self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        cursor: Option<&CandidateCursor>,
        limit: u32,
    ) -> anyhow::Result<CandidatePage> {
        let limit_rows = i64::from(limit);
        let rows = match cursor {
            None => self.query(
                &format!("{SELECT} ORDER BY e.starts_at, e.id, p.user_id LIMIT $3"),
                &[&after, &until, &limit_rows],
            )?,
            Some(c) => {
                // The cursor keeps the start as text (RFC 3339 UTC, written below).
                let start = DateTime::parse_from_rfc3339(&c.starts_at)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| anyhow::anyhow!("bad candidate cursor '{}': {e}", c.starts_at))?;
                self.query(
                    &format!(
                        "{SELECT} AND e.starts_at >= $3 AND (e.starts_at, e.id, p.user_id) > ($3, $4, $5)
                         ORDER BY e.starts_at, e.id, p.user_id LIMIT $6"
                    ),
                    &[&after, &until, &start, &c.event_id, &c.user_id, &limit_rows],
                )?
            }
        };
        let mut page = CandidatePage::default();
        let mut last = None;
        for r in &rows {
            let id = match (r.try_get::<_, i64>(0), r.try_get::<_, i64>(1)) {
                (Ok(e), Ok(u)) => format!("event {e} participant {u}"),
                _ => "(unknown)".into(),
            };
            let c = Cols::named(r, "events", id);
            last = Some(CandidateCursor {
                starts_at: c.ts(2).map(rfc3339).unwrap_or_default(),
                event_id: c.i64(0).unwrap_or(i64::MAX),
                user_id: c.i64(1).unwrap_or(i64::MAX),
            });
            let parsed = (|| -> Result<Candidate, BrokenRow> {
                // The foreign key makes this impossible unless someone turned triggers
                // off (session_replication_role); reported, not trusted.
                if c.bool(5)? {
                    let mut b = c.invalid(1, "refers to a user that does not exist");
                    b.table = "participants";
                    return Err(b);
                }
                Ok(Candidate {
                    event_id: c.i64(0)?,
                    user_id: c.i64(1)?,
                    event_start: c.ts(2)?,
                    armed_at: c.ts(3)?,
                    decided: c.vec::<i64>(4)?,
                })
            })();
            match parsed {
                Ok(c) => page.candidates.push(c),
                Err(b) => page.broken.push(b),
            }
        }
        if rows.len() == limit as usize {
            page.next = last;
        }
        Ok(page)
    }

    fn record_decision(&mut self, d: &DecisionRecord, now: DateTime<Utc>) -> anyhow::Result<bool> {
        // The participant's row is locked while its decision is made, and a row another
        // tick holds is skipped: ticks started together on several hosts each decide
        // different candidates and never wait for one another (a plain insert would wait
        // for the other tick's uncommitted row, up to lock_timeout). False, then, means
        // "another tick recorded it or is recording it now"; should that tick fail, the
        // decision is still open for the next one.
        let n = self.execute(
            "WITH deciding AS (
                SELECT 1 FROM participants WHERE event_id = $1 AND user_id = $2
                   FOR NO KEY UPDATE SKIP LOCKED)
             INSERT INTO reminders (event_id, user_id, offset_minutes, event_start, outcome, reason, decided_at)
             SELECT $1, $2, $3, $4, CASE WHEN $5::text IS NULL THEN 'sent' ELSE 'skipped' END, $5::text, $6
               FROM deciding
             ON CONFLICT DO NOTHING",
            &[
                &d.event_id,
                &d.user_id,
                &d.offset_minutes,
                &d.event_start,
                &d.skipped_reason,
                &now,
            ],
        )?;
        Ok(n == 1)
    }

    fn link_notification(&mut self, d: &DecisionRecord, notification_id: i64) -> anyhow::Result<()> {
        self.execute(
            "UPDATE reminders SET notification_id = $5
              WHERE event_id = $1 AND user_id = $2 AND offset_minutes = $3 AND event_start = $4",
            &[
                &d.event_id,
                &d.user_id,
                &d.offset_minutes,
                &d.event_start,
                &notification_id,
            ],
        )?;
        Ok(())
    }

    fn skipped_since(&mut self, since: DateTime<Utc>) -> anyhow::Result<Vec<SkippedCount>> {
        let rows = self.query(
            "SELECT coalesce(reason, '?'), count(*) FROM reminders
              WHERE outcome = 'skipped' AND decided_at >= $1
              GROUP BY reason ORDER BY reason",
            &[&since],
        )?;
        rows.iter()
            .map(|r| {
                Ok(SkippedCount {
                    reason: r.try_get(0)?,
                    count: r.try_get(1)?,
                })
            })
            .collect()
    }

    fn reopen_decisions(
        &mut self,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> anyhow::Result<usize> {
        const WHERE: &str = "outcome = 'skipped' AND reason IN ('late', 'collapsed')
                             AND decided_at >= $1 AND event_start > $2 AND notification_id IS NULL";
        if dry_run {
            let row = self.query_one(
                &format!("SELECT count(*) FROM reminders WHERE {WHERE}"),
                &[&since, &now],
            )?;
            return Ok(row.try_get::<_, i64>(0)? as usize);
        }
        Ok(self.execute(&format!("DELETE FROM reminders WHERE {WHERE}"), &[&since, &now])? as usize)
    }
}
