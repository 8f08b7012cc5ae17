//! Reminder decisions: the candidates the planner looks at and the record of each
//! decision, sent or skipped, keyed once per (event, recipient, offset, event start).
//! Ticks on several hosts read the same candidates; each decision is recorded by one of
//! them (a row lock skipped by the others, and the primary key with `ON CONFLICT DO
//! NOTHING`), and only that one creates the notice.

use chrono::{DateTime, TimeDelta, Utc};

use super::events::{decode, SELECT_SERIES};
use super::{Cols, PgStore};
use crate::input::rfc3339;
use crate::model::Candidate;
use crate::store::{
    BrokenRow, CandidateCursor, CandidatePage, CandidateWindow, DecisionRecord, DecisionRow,
    OccurrenceParticipants, ReminderOps, SeriesPage, SkippedCount,
};

/// Participants of scheduled single events starting in ($1, $2], in (start, event,
/// participant) order (the events_scheduled_by_start index, then the participants key);
/// with a lead ($4), each event kept when it starts by $3 plus its largest offset.
const SELECT: &str = "SELECT e.id, p.user_id, e.starts_at, greatest(e.armed_at, p.added_at),
        (SELECT array_agg(r.offset_minutes) FROM reminders r
          WHERE r.event_id = e.id AND r.user_id = p.user_id AND r.event_start = e.starts_at),
        u.id IS NULL AS user_missing, e.remind_offsets
   FROM events e JOIN participants p ON p.event_id = e.id
   LEFT JOIN users u ON u.id = p.user_id
  WHERE e.status = 'scheduled' AND e.repeat_rule IS NULL AND e.starts_at > $1 AND e.starts_at <= $2
    AND ($4::bigint IS NULL
         OR e.starts_at <= $3::timestamptz + make_interval(mins => coalesce(e.remind_offsets[1], $4::bigint)::int))";

/// The scheduled single events with their own offsets.
const OWN: &str = "status = 'scheduled' AND repeat_rule IS NULL AND remind_offsets IS NOT NULL";

impl ReminderOps for PgStore {
    fn reminder_candidates(
        &mut self,
        w: &CandidateWindow,
        cursor: Option<&CandidateCursor>,
        limit: u32,
    ) -> anyhow::Result<CandidatePage> {
        let limit_rows = i64::from(limit);
        let reach = match w.lead {
            Some(lead) => {
                let own = self.largest_own_offset(w.after)?.unwrap_or(0);
                w.until + TimeDelta::minutes(lead.max(own))
            }
            None => w.until,
        };
        let rows = match cursor {
            None => self.query(
                &format!("{SELECT} ORDER BY e.starts_at, e.id, p.user_id LIMIT $5"),
                &[&w.after, &reach, &w.until, &w.lead, &limit_rows],
            )?,
            Some(c) => {
                // The cursor keeps the start as text (RFC 3339 UTC, written below).
                let start = DateTime::parse_from_rfc3339(&c.starts_at)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| anyhow::anyhow!("bad candidate cursor '{}': {e}", c.starts_at))?;
                self.query(
                    &format!(
                        "{SELECT} AND e.starts_at >= $6 AND (e.starts_at, e.id, p.user_id) > ($6, $7, $8)
                         ORDER BY e.starts_at, e.id, p.user_id LIMIT $5"
                    ),
                    &[
                        &w.after,
                        &reach,
                        &w.until,
                        &w.lead,
                        &limit_rows,
                        &start,
                        &c.event_id,
                        &c.user_id,
                    ],
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
                    offsets: c.opt_vec::<i64>(6)?,
                    occurrence: None,
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

    fn largest_own_offset(&mut self, after: DateTime<Utc>) -> anyhow::Result<Option<i64>> {
        // The distinct largest offsets, from the top, each found by one seek in
        // events_own_reminders (a loose index scan); the first that an upcoming event has
        // is the answer. Past events with a larger offset cost a seek each, not a scan.
        let row = self.query_opt(
            &format!(
                "WITH RECURSIVE leads(minutes) AS (
                    SELECT max(remind_offsets[1]) FROM events WHERE {OWN}
                    UNION ALL
                    SELECT (SELECT max(remind_offsets[1]) FROM events
                             WHERE {OWN} AND remind_offsets[1] < leads.minutes)
                      FROM leads WHERE leads.minutes IS NOT NULL)
                 SELECT minutes FROM leads
                  WHERE minutes IS NOT NULL AND EXISTS (
                        SELECT 1 FROM events WHERE {OWN} AND remind_offsets[1] = leads.minutes AND starts_at > $1)
                  LIMIT 1"
            ),
            &[&after],
        )?;
        Ok(match row {
            Some(r) => r.try_get::<_, Option<i64>>(0)?,
            None => None,
        })
    }

    fn series_in_window(
        &mut self,
        after: DateTime<Utc>,
        cursor: Option<i64>,
        limit: u32,
    ) -> anyhow::Result<SeriesPage> {
        let rows = self.query(
            &format!(
                "{SELECT_SERIES}
                  WHERE e.status = 'scheduled' AND e.repeat_rule IS NOT NULL
                    AND (e.series_end IS NULL OR e.series_end > $1) AND e.id > $2
                  ORDER BY e.id LIMIT $3"
            ),
            &[&after, &cursor.unwrap_or(i64::MIN), &i64::from(limit)],
        )?;
        let mut page = SeriesPage::default();
        for r in &rows {
            match decode(r) {
                Ok(e) => page.series.push(e),
                Err(b) => page.broken.push(b),
            }
        }
        if rows.len() == limit as usize {
            page.next = rows.last().and_then(|r| r.try_get::<_, i64>(0).ok());
        }
        Ok(page)
    }

    fn occurrence_candidates(
        &mut self,
        event_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> anyhow::Result<OccurrenceParticipants> {
        let mut out = OccurrenceParticipants::default();
        for r in &self.query(
            "SELECT p.user_id, p.added_at, u.id IS NULL FROM participants p
               LEFT JOIN users u ON u.id = p.user_id WHERE p.event_id = $1 ORDER BY p.user_id",
            &[&event_id],
        )? {
            let c = Cols::named(r, "participants", format!("event {event_id}"));
            let parsed = (|| -> Result<(i64, DateTime<Utc>), BrokenRow> {
                if c.bool(2)? {
                    return Err(c.invalid(0, "refers to a user that does not exist"));
                }
                Ok((c.i64(0)?, c.ts(1)?))
            })();
            match parsed {
                Ok(p) => out.participants.push(p),
                Err(b) => out.broken.push(b),
            }
        }
        for r in &self.query(
            "SELECT user_id, event_start, offset_minutes FROM reminders
              WHERE event_id = $1 AND event_start >= $2 AND event_start <= $3",
            &[&event_id, &from, &to],
        )? {
            out.decided.push((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?));
        }
        Ok(out)
    }

    fn decisions_for(&mut self, event_id: i64, user_id: i64) -> anyhow::Result<Vec<DecisionRow>> {
        let rows = self.query(
            "SELECT offset_minutes, event_start, outcome, reason, notification_id, decided_at FROM reminders
              WHERE event_id = $1 AND user_id = $2 ORDER BY event_start, offset_minutes DESC",
            &[&event_id, &user_id],
        )?;
        rows.iter()
            .map(|r| {
                Ok(DecisionRow {
                    offset_minutes: r.try_get(0)?,
                    event_start: r.try_get(1)?,
                    outcome: r.try_get(2)?,
                    reason: r.try_get(3)?,
                    notification_id: r.try_get(4)?,
                    decided_at: r.try_get(5)?,
                })
            })
            .collect()
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
