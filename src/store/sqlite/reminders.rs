//! Reminder decisions: the candidates the planner looks at and the record of each
//! decision, sent or skipped, keyed once per (event, recipient, offset, event start).

use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::{params, OptionalExtension};

use super::events::decode_offsets;
use super::{ts, Cols, SqliteStore};
use crate::model::Candidate;
use crate::store::{
    BrokenRow, CandidateCursor, CandidatePage, CandidateWindow, DecisionRecord, DecisionRow,
    OccurrenceParticipants, ReminderOps, SeriesPage, SkippedCount,
};

impl ReminderOps for SqliteStore {
    fn reminder_candidates(
        &mut self,
        w: &CandidateWindow,
        cursor: Option<&CandidateCursor>,
        limit: u32,
    ) -> anyhow::Result<CandidatePage> {
        // Ordered as the (status, starts_at) index and the participants key already are,
        // so a page is a seek and a short walk, never a sort of the whole window. With a
        // lead, the walk reaches as far as the largest offset of any upcoming event, and
        // each event is kept when its own largest offset (or the lead) reaches `until`:
        // compared with a bound computed once (?9) for an event without offsets of its own,
        // the common case, and through SQL's date arithmetic only for the others (it was
        // a third of an idle tick's walk at 1,000,000 events when done for every row).
        let reach = match w.lead {
            Some(lead) => {
                let own = self.largest_own_offset(w.after)?.unwrap_or(0);
                w.until + TimeDelta::minutes(lead.max(own))
            }
            None => w.until,
        };
        const SELECT: &str = "SELECT e.id, p.user_id, e.starts_at, max(e.armed_at, p.added_at) AS armed_at,
                    (SELECT group_concat(r.offset_minutes) FROM reminders r
                      WHERE r.event_id = e.id AND r.user_id = p.user_id AND r.event_start = e.starts_at),
                    u.id IS NULL AS user_missing, e.remind_offsets
             FROM events e JOIN participants p ON p.event_id = e.id
             LEFT JOIN users u ON u.id = p.user_id
             WHERE e.status = 'scheduled' AND e.repeat_rule IS NULL AND e.starts_at <= ?2
               AND (?8 IS NULL
                    OR (e.remind_offsets IS NULL AND e.starts_at <= ?9)
                    OR (e.remind_offsets IS NOT NULL AND e.starts_at <= strftime('%Y-%m-%dT%H:%M:%SZ', ?7,
                        '+' || coalesce(json_extract(e.remind_offsets, '$[0]'), ?8) || ' minutes')))";
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
        let mut rows = stmt.query(params![
            ts(w.after),
            ts(reach),
            c_start,
            c_event,
            c_user,
            limit,
            ts(w.until),
            w.lead,
            w.lead.map(|lead| ts(w.until + TimeDelta::minutes(lead)))
        ])?;
        let mut page = CandidatePage::default();
        let mut seen = 0u32;
        let mut last = None;
        while let Some(r) = rows.next()? {
            seen += 1;
            let c = Cols::pair(r, "events", ("event", 0), ("participant", 1));
            // Where the next page starts: after the last row of a full one.
            if seen == limit {
                last = Some(CandidateCursor {
                    starts_at: c.text(2).unwrap_or_default(),
                    event_id: c.i64(0).unwrap_or(i64::MAX),
                    user_id: c.i64(1).unwrap_or(i64::MAX),
                });
            }
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
                    offsets: decode_offsets(&c, 6)?,
                    occurrence: None,
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

    fn largest_own_offset(&mut self, after: DateTime<Utc>) -> anyhow::Result<Option<i64>> {
        // The distinct largest offsets, from the top, each found by one seek in
        // events_own_reminders (a loose index scan); the first that an upcoming event has
        // is the answer. Past events with a larger offset cost a seek each, not a scan.
        // INDEXED BY: with the statistics of an ANALYZEd database SQLite preferred the
        // (status, starts_at) index and read every scheduled event (335 ms per idle tick at
        // 1,000,000 events).
        const OWN: &str = "status = 'scheduled' AND repeat_rule IS NULL AND remind_offsets IS NOT NULL";
        let sql = format!(
            "WITH RECURSIVE leads(minutes) AS (
                SELECT max(json_extract(remind_offsets, '$[0]')) FROM events INDEXED BY events_own_reminders WHERE {OWN}
                UNION ALL
                SELECT (SELECT max(json_extract(remind_offsets, '$[0]')) FROM events INDEXED BY events_own_reminders
                         WHERE {OWN} AND json_extract(remind_offsets, '$[0]') < leads.minutes)
                  FROM leads WHERE leads.minutes IS NOT NULL)
             SELECT minutes FROM leads
              WHERE minutes IS NOT NULL AND EXISTS (
                    SELECT 1 FROM events INDEXED BY events_own_reminders WHERE {OWN}
                       AND json_extract(remind_offsets, '$[0]') = leads.minutes AND starts_at > ?1)
              LIMIT 1"
        );
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([ts(after)], |r| r.get::<_, Option<i64>>(0))
            .optional()?
            .flatten())
    }

    fn series_in_window(
        &mut self,
        after: DateTime<Utc>,
        cursor: Option<i64>,
        limit: u32,
    ) -> anyhow::Result<SeriesPage> {
        let mut page = SeriesPage::default();
        let mut seen = 0u32;
        let mut last = None;
        {
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT {} FROM events e INDEXED BY events_series
                 WHERE e.status = 'scheduled' AND e.repeat_rule IS NOT NULL
                   AND coalesce(e.series_end, '9999-12-31T23:59:59Z') > ?1 AND e.id > ?2
                 ORDER BY e.id LIMIT ?3",
                super::events::COLUMNS
            ))?;
            let mut rows = stmt.query(params![ts(after), cursor.unwrap_or(i64::MIN), limit])?;
            while let Some(r) = rows.next()? {
                seen += 1;
                last = r.get::<_, i64>(0).ok().or(last);
                match super::events::decode(r) {
                    Ok(e) => page.series.push(e),
                    Err(b) => page.broken.push(b),
                }
            }
        }
        if seen == limit {
            page.next = last;
        }
        if page.series.is_empty() {
            return Ok(page);
        }
        // The page's exceptions in one query.
        let ids: Vec<i64> = page.series.iter().map(|e| e.id).collect();
        let mut stmt = self.conn.prepare_cached(
            "SELECT original_start, status, starts_at, ends_at, armed_at, event_id FROM event_exceptions
             WHERE event_id IN (SELECT value FROM json_each(?1)) ORDER BY event_id, original_start",
        )?;
        let mut rows = stmt.query([serde_json::Value::from(ids).to_string()])?;
        let mut broken_series = Vec::new();
        while let Some(r) = rows.next()? {
            let event_id: i64 = r.get(5)?;
            let Some(event) = page.series.iter_mut().find(|e| e.id == event_id) else {
                continue;
            };
            match super::events::decode_exception(r, event_id) {
                Ok(x) => event.exceptions.push(x),
                Err(b) => {
                    broken_series.push(event_id);
                    page.broken.push(b);
                }
            }
        }
        // A series whose exceptions cannot all be read would remind cancelled occurrences.
        page.series.retain(|e| !broken_series.contains(&e.id));
        Ok(page)
    }

    fn occurrence_candidates(
        &mut self,
        event_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> anyhow::Result<OccurrenceParticipants> {
        let mut out = OccurrenceParticipants::default();
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT p.user_id, p.added_at, u.id IS NULL FROM participants p
                 LEFT JOIN users u ON u.id = p.user_id WHERE p.event_id = ?1 ORDER BY p.user_id",
            )?;
            let mut rows = stmt.query([event_id])?;
            while let Some(r) = rows.next()? {
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
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT user_id, event_start, offset_minutes FROM reminders
             WHERE event_id = ?1 AND event_start >= ?2 AND event_start <= ?3",
        )?;
        let mut rows = stmt.query(params![event_id, ts(from), ts(to)])?;
        while let Some(r) = rows.next()? {
            let c = Cols::named(r, "reminders", format!("event {event_id}"));
            if let (Ok(user), Ok(start), Ok(offset)) = (c.i64(0), c.ts(1), c.i64(2)) {
                out.decided.push((user, start, offset));
            }
        }
        Ok(out)
    }

    fn decisions_for(&mut self, event_id: i64, user_id: i64) -> anyhow::Result<Vec<DecisionRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT offset_minutes, event_start, outcome, reason, notification_id, decided_at FROM reminders
             WHERE event_id = ?1 AND user_id = ?2 ORDER BY event_start, offset_minutes DESC",
        )?;
        let mut rows = stmt.query(params![event_id, user_id])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let c = Cols::named(r, "reminders", format!("event {event_id} user {user_id}"));
            let row = (|| -> Result<DecisionRow, BrokenRow> {
                Ok(DecisionRow {
                    offset_minutes: c.i64(0)?,
                    event_start: c.ts(1)?,
                    outcome: c.text(2)?,
                    reason: c.opt_text(3)?,
                    notification_id: c.opt_i64(4)?,
                    decided_at: c.ts(5)?,
                })
            })();
            // The primary key's own columns are typed by notifyctl's writes: a row that
            // cannot be read is left out of the explanation rather than failing it.
            if let Ok(row) = row {
                out.push(row);
            }
        }
        Ok(out)
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
