//! Events, their participants, and the double-booking check.

use chrono::{DateTime, Utc};
use rusqlite::{params, params_from_iter, Row};

use super::{broken, ts, Bulk, Cols, SqliteStore};
use crate::model::{Event, EventStatus, Participant};
use crate::store::{BrokenRow, Each, EventChanges, EventFilter, EventOps, NewEvent, Overlap};

const COLUMNS: &str =
    "e.id, e.title, e.starts_at, e.ends_at, e.timezone, e.video_url, e.status, e.sequence, e.created_at, e.updated_at";

fn decode(r: &Row) -> Result<Event, BrokenRow> {
    let c = Cols::new(r, "events", 0);
    let status = match c.text(6)?.as_str() {
        "scheduled" => EventStatus::Scheduled,
        "cancelled" => EventStatus::Cancelled,
        _ => return Err(c.invalid(6, "not 'scheduled' or 'cancelled'")),
    };
    Ok(Event {
        id: c.i64(0)?,
        title: c.text(1)?,
        starts_at: c.ts(2)?,
        ends_at: c.ts(3)?,
        timezone: c.opt_text(4)?,
        video_url: c.opt_text(5)?,
        status,
        sequence: c.i64(7)?,
        created_at: c.ts(8)?,
        updated_at: c.ts(9)?,
        participants: Vec::new(),
    })
}

/// The busy index's hours (schema step 4): an event occupies [floor(start), ceil(end)).
fn start_hour(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(3600)
}

fn end_hour(t: DateTime<Utc>) -> i64 {
    (t.timestamp() + 3599).div_euclid(3600)
}

/// The tables whose triggers a bulk write suspends.
const BULK_TABLES: &str = "'users', 'events', 'participants'";

impl SqliteStore {
    /// Suspend the triggers on users, events and participants inside the current
    /// transaction (see `EventOps::bulk_writes`); their SQL is kept to restore them.
    fn begin_bulk(&mut self) -> anyhow::Result<()> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ({BULK_TABLES})"
        ))?;
        let triggers: Vec<(String, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        drop(stmt);
        for (name, _) in &triggers {
            self.conn
                .execute_batch(&format!("DROP TRIGGER \"{}\"", name.replace('"', "\"\"")))?;
        }
        self.bulk = Some(Bulk {
            triggers: triggers.into_iter().map(|(_, sql)| sql).collect(),
            last_event: None,
        });
        Ok(())
    }

    /// Restore the suspended triggers (before the commit).
    pub(super) fn end_bulk(&mut self) -> anyhow::Result<()> {
        if let Some(bulk) = self.bulk.take() {
            for sql in &bulk.triggers {
                self.conn.execute_batch(sql)?;
            }
        }
        Ok(())
    }

    fn participants(&self, event_id: i64) -> anyhow::Result<Vec<Participant>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT p.user_id, u.email, u.name, p.role FROM participants p
             JOIN users u ON u.id = p.user_id WHERE p.event_id = ?1 ORDER BY p.added_at, p.user_id",
        )?;
        let mut rows = stmt.query([event_id])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let c = Cols::named(r, "participants", format!("event {event_id}"));
            let p = (|| -> Result<Participant, BrokenRow> {
                Ok(Participant {
                    user_id: c.i64(0)?,
                    email: c.text(1)?,
                    name: c.text(2)?,
                    role: c.text(3)?,
                })
            })()
            .map_err(broken)?;
            out.push(p);
        }
        Ok(out)
    }
}

impl EventOps for SqliteStore {
    fn insert_event(&mut self, e: &NewEvent, now: DateTime<Utc>) -> anyhow::Result<i64> {
        self.conn
            .prepare_cached(
                "INSERT INTO events (title, starts_at, ends_at, timezone, video_url, status, sequence,
                                     armed_at, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'scheduled', 0, ?6, ?6, ?6)",
            )?
            .execute(params![
                e.title,
                ts(e.starts_at),
                ts(e.ends_at),
                e.timezone,
                e.video_url,
                ts(now)
            ])?;
        let id = self.conn.last_insert_rowid();
        if let Some(bulk) = self.bulk.as_mut() {
            bulk.last_event = Some((id, start_hour(e.starts_at), end_hour(e.ends_at)));
        }
        Ok(id)
    }

    fn add_participant(
        &mut self,
        event_id: i64,
        user_id: i64,
        role: &str,
        // SQLite has no constraint to exempt the row from: `find_overlap` is the rule.
        _allow_overlap: bool,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let n = self
            .conn
            .prepare_cached(
                "INSERT OR IGNORE INTO participants (event_id, user_id, role, added_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![event_id, user_id, role, ts(now)])?;
        // In a bulk write the busy-index trigger is suspended: keep the index directly.
        if n == 1 {
            if let Some((_, from, to)) = self
                .bulk
                .as_ref()
                .and_then(|b| b.last_event)
                .filter(|(id, _, _)| *id == event_id)
            {
                self.conn
                    .prepare_cached("INSERT INTO busy_slots (event_id, user_id) VALUES (?1, ?2)")?
                    .execute(params![event_id, user_id])?;
                let slot = self.conn.last_insert_rowid();
                self.conn
                    .prepare_cached("INSERT INTO busy_index VALUES (?1, ?2, ?2, ?3, ?4)")?
                    .execute(params![slot, user_id, from, to])?;
            } else if self.bulk.is_some() {
                anyhow::bail!("bulk write: participant added to an event other than the last one inserted");
            }
        }
        Ok(n == 1)
    }

    fn remove_participant(&mut self, event_id: i64, user_id: i64) -> anyhow::Result<bool> {
        let n = self.conn.execute(
            "DELETE FROM participants WHERE event_id = ?1 AND user_id = ?2",
            params![event_id, user_id],
        )?;
        Ok(n == 1)
    }

    fn find_overlap(
        &mut self,
        user_id: i64,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        except: Option<i64>,
    ) -> anyhow::Result<Option<Overlap>> {
        // The busy index (schema step 4) returns the user's scheduled events in the hours
        // around [start, end): O(log n) whatever the user's history. The exact half-open
        // comparison (back-to-back events do not overlap) is then made on those few, on
        // sortable UTC text. CROSS JOIN fixes the order: the index leads (left alone, the
        // planner would walk every scheduled event before `end` to honour the ORDER BY).
        let mut stmt = self.conn.prepare_cached(
            "SELECT u.email, e.id, e.title, e.starts_at, e.ends_at
             FROM busy_index b
             CROSS JOIN busy_slots s ON s.id = b.id
             CROSS JOIN events e ON e.id = s.event_id
             JOIN users u ON u.id = s.user_id
             WHERE b.user_lo <= ?1 AND b.user_hi >= ?1 AND b.hour_lo < ?6 AND b.hour_hi > ?5
               AND e.status = 'scheduled' AND e.starts_at < ?3 AND e.ends_at > ?2 AND e.id IS NOT ?4
             ORDER BY e.starts_at LIMIT 1",
        )?;
        let mut rows = stmt.query(params![
            user_id,
            ts(start),
            ts(end),
            except,
            start_hour(start),
            end_hour(end)
        ])?;
        let Some(r) = rows.next()? else {
            return Ok(None);
        };
        let c = Cols::new(r, "events", 1);
        let overlap = (|| -> Result<Overlap, BrokenRow> {
            Ok(Overlap {
                user_email: c.text(0)?,
                event_id: c.i64(1)?,
                title: c.text(2)?,
                starts_at: c.ts(3)?,
                ends_at: c.ts(4)?,
            })
        })()
        .map_err(broken)?;
        Ok(Some(overlap))
    }

    fn event(&mut self, id: i64) -> anyhow::Result<Option<Event>> {
        let event = {
            let mut stmt = self
                .conn
                .prepare_cached(&format!("SELECT {COLUMNS} FROM events e WHERE e.id = ?1"))?;
            let mut rows = stmt.query([id])?;
            match rows.next()? {
                Some(r) => decode(r).map_err(broken)?,
                None => return Ok(None),
            }
        };
        let mut event = event;
        event.participants = self.participants(id)?;
        Ok(Some(event))
    }

    fn update_event(&mut self, id: i64, c: &EventChanges, now: DateTime<Utc>) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE events SET title = coalesce(?2, title),
                    armed_at = CASE WHEN ?3 IS NOT NULL AND ?3 <> starts_at THEN ?6 ELSE armed_at END,
                    starts_at = coalesce(?3, starts_at), ends_at = coalesce(?4, ends_at),
                    video_url = CASE WHEN ?7 THEN ?5 ELSE video_url END,
                    sequence = sequence + 1, updated_at = ?6
             WHERE id = ?1",
            params![
                id,
                c.title,
                c.starts_at.map(ts),
                c.ends_at.map(ts),
                c.video_url.clone().flatten(),
                ts(now),
                c.video_url.is_some(),
            ],
        )?;
        Ok(())
    }

    fn bump_sequence(&mut self, id: i64, now: DateTime<Utc>) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE events SET sequence = sequence + 1, updated_at = ?2 WHERE id = ?1",
            params![id, ts(now)],
        )?;
        Ok(())
    }

    fn cancel_event(&mut self, id: i64, now: DateTime<Utc>) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE events SET status = 'cancelled', sequence = sequence + 1, updated_at = ?2 WHERE id = ?1",
            params![id, ts(now)],
        )?;
        Ok(())
    }

    fn list_events(&mut self, f: &EventFilter, each: Each<Result<Event, BrokenRow>>) -> anyhow::Result<()> {
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
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query(params_from_iter(args))?;
        while let Some(r) = rows.next()? {
            let event = match decode(r) {
                Ok(mut e) => match self.participants(e.id) {
                    Ok(p) => {
                        e.participants = p;
                        Ok(e)
                    }
                    Err(err) => match err.downcast::<BrokenRow>() {
                        Ok(b) => Err(b),
                        Err(other) => return Err(other),
                    },
                },
                Err(b) => Err(b),
            };
            each(event)?;
        }
        Ok(())
    }

    fn bulk_writes(&mut self, on: bool) -> anyhow::Result<()> {
        match (on, self.bulk.is_some()) {
            (true, false) => self.begin_bulk(),
            (false, true) => self.end_bulk(),
            _ => Ok(()),
        }
    }

    fn unreadable_events(&mut self, limit: u32) -> anyhow::Result<Vec<BrokenRow>> {
        // The triggers of schema step 3 refuse such values; rows written before remain.
        const INSTANT: &str =
            "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z'";
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT id, starts_at, ends_at FROM events
             WHERE status = 'scheduled' AND (typeof(starts_at) <> 'text' OR starts_at NOT GLOB {INSTANT}
                                             OR typeof(ends_at) <> 'text' OR ends_at NOT GLOB {INSTANT})
             ORDER BY id LIMIT ?1"
        ))?;
        let mut rows = stmt.query([limit])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let c = Cols::new(r, "events", 0);
            let bad = if c.ts(1).is_err() { 1 } else { 2 };
            out.push(c.invalid(
                bad,
                "not a time like 2030-03-10T08:30:00Z: this event gets no reminders",
            ));
        }
        Ok(out)
    }
}
