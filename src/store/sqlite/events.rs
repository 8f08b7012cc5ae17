//! Events, their participants, and the double-booking check.

use chrono::{DateTime, Utc};
use rusqlite::{params, params_from_iter, Row};

use super::{broken, ts, Bulk, Cols, SqliteStore};
use crate::model::{Event, EventException, EventStatus, ExceptionStatus, Participant};
use crate::store::{BrokenRow, Each, EventChanges, EventFilter, EventOps, NewEvent, Overlap};

pub(super) const COLUMNS: &str = "e.id, e.title, e.starts_at, e.ends_at, e.timezone, e.video_url, e.status, e.sequence, e.created_at, e.updated_at,
     e.remind_offsets, e.repeat_rule, e.series_end, e.armed_at";

/// `remind_offsets` as stored: a JSON array of minutes (the schema's triggers keep it so).
pub(super) fn offsets_text(offsets: Option<&[i64]>) -> Option<String> {
    offsets.map(|o| {
        let mut v = o.to_vec();
        v.sort_unstable_by(|a, b| b.cmp(a));
        v.dedup();
        serde_json::Value::from(v).to_string()
    })
}

/// Read `remind_offsets` back: `None` for NULL, the minutes largest first.
pub(super) fn decode_offsets(c: &Cols, idx: usize) -> Result<Option<Vec<i64>>, BrokenRow> {
    let Some(text) = c.opt_text(idx)? else {
        return Ok(None);
    };
    match serde_json::from_str::<Vec<i64>>(&text) {
        Ok(mut v) if v.iter().all(|m| (1..=525_600).contains(m)) => {
            v.sort_unstable_by(|a, b| b.cmp(a));
            v.dedup();
            Ok(Some(v))
        }
        _ => Err(c.invalid(idx, "not a JSON array of whole minutes like [1440,10]")),
    }
}

pub(super) fn decode(r: &Row) -> Result<Event, BrokenRow> {
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
        remind_offsets: decode_offsets(&c, 10)?,
        repeat_rule: c.opt_text(11)?,
        series_end: c.opt_ts(12)?,
        exceptions: Vec::new(),
        armed_at: c.ts(13)?,
    })
}

pub(super) fn decode_exception(r: &Row, event_id: i64) -> Result<EventException, BrokenRow> {
    let c = Cols::named(r, "event_exceptions", format!("event {event_id}"));
    let status = match c.text(1)?.as_str() {
        "cancelled" => ExceptionStatus::Cancelled,
        "moved" => ExceptionStatus::Moved,
        _ => return Err(c.invalid(1, "not 'cancelled' or 'moved'")),
    };
    Ok(EventException {
        original_start: c.ts(0)?,
        status,
        starts_at: c.opt_ts(2)?,
        ends_at: c.opt_ts(3)?,
        armed_at: c.ts(4)?,
    })
}

/// The busy index's hours (schema step 4): an event occupies [floor(start), ceil(end)),
/// from Unix seconds.
fn start_hour(secs: i64) -> i64 {
    secs.div_euclid(3600)
}

fn end_hour(secs: i64) -> i64 {
    (secs + 3599).div_euclid(3600)
}

/// R*Tree entries written by one statement when the deferred busy slots are written.
const INDEX_ROWS_PER_INSERT: usize = 64;

/// A participant of a single event written in a bulk write whose busy slot is deferred:
/// what the slot and the double-booking sweep need (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Booking {
    user_id: i64,
    start: i64,
    end: i64,
    event_id: i64,
}

/// Whether two bookings of one participant intersect, half-open: sorted by participant
/// and start, a booking overlaps an earlier one exactly when it starts before the latest
/// end so far.
fn any_overlap(sorted: &[Booking]) -> bool {
    let mut latest: Option<(i64, i64)> = None;
    for b in sorted {
        match latest {
            Some((user, end)) if user == b.user_id => {
                if b.start < end {
                    return true;
                }
                latest = Some((user, end.max(b.end)));
            }
            _ => latest = Some((b.user_id, b.end)),
        }
    }
    false
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
            deferred: None,
            index_was_empty: false,
        });
        self.conn
            .execute_batch(&format!("PRAGMA cache_size = {};", super::BULK_CACHE_KIB))?;
        Ok(())
    }

    /// Write the deferred busy slots and restore the suspended triggers (before the commit).
    pub(super) fn end_bulk(&mut self) -> anyhow::Result<()> {
        if let Some(bulk) = self.bulk.take() {
            if let Some(deferred) = bulk.deferred {
                self.write_busy_slots(deferred)?;
            }
            for sql in &bulk.triggers {
                self.conn.execute_batch(sql)?;
            }
            self.conn
                .execute_batch(&format!("PRAGMA cache_size = {};", super::CACHE_KIB))?;
        }
        Ok(())
    }

    /// Write busy slots (the deferred ones of a bulk write, or one participant's while the
    /// triggers are suspended): the rows in the order of their events (appended to
    /// `busy_slots` and its unique index), then the R*Tree entries by participant, each
    /// participant's latest first. In an import file's order (by time, participants taking
    /// turns) every entry meant a walk to a different part of the tree; by participant,
    /// entries land beside the previous one, and latest first they mostly fall inside the
    /// boxes already there, so the nodes above the leaf are seldom rewritten.
    fn write_busy_slots(&mut self, mut bookings: Vec<Booking>) -> anyhow::Result<()> {
        bookings.sort_unstable_by_key(|b| (b.event_id, b.user_id));
        {
            let mut slot = self
                .conn
                .prepare_cached("INSERT INTO busy_slots (event_id, user_id) VALUES (?1, ?2)")?;
            for b in bookings.iter_mut() {
                slot.execute(params![b.event_id, b.user_id])?;
                // From here on the slot's id: all the index needs besides the times.
                b.event_id = self.conn.last_insert_rowid();
            }
        }
        bookings.sort_unstable_by_key(|b| (b.user_id, std::cmp::Reverse((b.start, b.end))));
        let mut one = self
            .conn
            .prepare_cached("INSERT INTO busy_index VALUES (?1, ?2, ?2, ?3, ?4)")?;
        let entry = |b: &Booking| {
            [
                b.event_id,
                b.user_id,
                b.user_id,
                start_hour(b.start),
                end_hour(b.end),
            ]
        };
        let chunks = bookings.chunks_exact(INDEX_ROWS_PER_INSERT);
        let rest = chunks.remainder();
        if chunks.len() > 0 {
            // Many entries per statement: the per-statement work (binding, stepping,
            // resetting) was a tenth of the fill. Rows of a VALUES list go in their order.
            let mut many = self.conn.prepare_cached(&format!(
                "INSERT INTO busy_index VALUES {}",
                vec!["(?, ?, ?, ?, ?)"; INDEX_ROWS_PER_INSERT].join(", ")
            ))?;
            let mut values: Vec<i64> = Vec::with_capacity(5 * INDEX_ROWS_PER_INSERT);
            for chunk in chunks {
                values.clear();
                values.extend(chunk.iter().flat_map(entry));
                many.execute(params_from_iter(values.iter()))?;
            }
        }
        for b in rest {
            let [slot, user, _, from, to] = entry(b);
            one.execute(params![slot, user, from, to])?;
        }
        Ok(())
    }

    /// A series' cancelled and moved occurrences, by original start.
    pub(super) fn exceptions(&self, event_id: i64) -> anyhow::Result<Vec<EventException>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT original_start, status, starts_at, ends_at, armed_at FROM event_exceptions
             WHERE event_id = ?1 ORDER BY original_start",
        )?;
        let mut rows = stmt.query([event_id])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(decode_exception(r, event_id).map_err(broken)?);
        }
        Ok(out)
    }

    /// An event row with what belongs to it: participants, and a series' exceptions.
    fn complete(&self, mut event: Event, participants: bool) -> anyhow::Result<Event> {
        if participants {
            event.participants = self.participants(event.id)?;
        }
        if event.is_series() {
            event.exceptions = self.exceptions(event.id)?;
        }
        Ok(event)
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
                                     armed_at, created_at, updated_at, remind_offsets, repeat_rule, series_end)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'scheduled', 0, ?6, ?6, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                e.title,
                ts(e.starts_at),
                ts(e.ends_at),
                e.timezone,
                e.video_url,
                ts(now),
                offsets_text(e.remind_offsets.as_deref()),
                e.repeat_rule,
                e.series_end.map(ts),
            ])?;
        let id = self.conn.last_insert_rowid();
        if let Some(bulk) = self.bulk.as_mut() {
            // The busy index holds single events only (a series' occurrences are checked by
            // the service).
            bulk.last_event = Some((id, e.starts_at.timestamp(), e.ends_at.timestamp()))
                .filter(|_| e.repeat_rule.is_none());
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
        // In a bulk write the busy-index trigger is suspended: keep the index directly, or
        // note the slot for the end of the bulk write.
        if n == 1 {
            if let Some((_, start, end)) = self
                .bulk
                .as_ref()
                .and_then(|b| b.last_event)
                .filter(|(id, _, _)| *id == event_id)
            {
                let booking = Booking {
                    user_id,
                    start,
                    end,
                    event_id,
                };
                match self.bulk.as_mut().and_then(|b| b.deferred.as_mut()) {
                    Some(deferred) => deferred.push(booking),
                    None => self.write_busy_slots(vec![booking])?,
                }
            } else if self.bulk.as_ref().is_some_and(|b| b.last_event.is_some()) {
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
        if self
            .bulk
            .as_ref()
            .is_some_and(|b| b.deferred.is_some() && b.index_was_empty)
        {
            return Ok(None);
        }
        // The busy index (schema step 4) returns the user's scheduled events in the hours
        // around [start, end): O(log n) whatever the user's history. The exact half-open
        // comparison (back-to-back events do not overlap) is then made on those few, on
        // sortable UTC text. CROSS JOIN fixes the order: the index leads. The earliest of
        // the few is picked here rather than by ORDER BY, which made SQLite open and close a
        // temporary B-tree at every call (a tenth of an import's overlap checks).
        let mut stmt = self.conn.prepare_cached(
            "SELECT u.email, e.id, e.title, e.starts_at, e.ends_at
             FROM busy_index b
             CROSS JOIN busy_slots s ON s.id = b.id
             CROSS JOIN events e ON e.id = s.event_id
             JOIN users u ON u.id = s.user_id
             WHERE b.user_lo <= ?1 AND b.user_hi >= ?1 AND b.hour_lo < ?6 AND b.hour_hi > ?5
               AND e.status = 'scheduled' AND e.repeat_rule IS NULL AND e.starts_at < ?3 AND e.ends_at > ?2 AND e.id IS NOT ?4",
        )?;
        let mut rows = stmt.query(params![
            user_id,
            ts(start),
            ts(end),
            except,
            start_hour(start.timestamp()),
            end_hour(end.timestamp())
        ])?;
        // (start as stored, the row): the first by start as ORDER BY would give it, and
        // only that one is decoded (a broken row elsewhere is not this booking's concern).
        let mut earliest: Option<(Vec<u8>, Result<Overlap, BrokenRow>)> = None;
        while let Some(r) = rows.next()? {
            let key = match r.get_ref(3)? {
                rusqlite::types::ValueRef::Text(t) => t,
                _ => &[],
            };
            if earliest.as_ref().is_some_and(|(k, _)| k.as_slice() <= key) {
                continue;
            }
            let c = Cols::new(r, "events", 1);
            let overlap = (|| -> Result<Overlap, BrokenRow> {
                Ok(Overlap {
                    user_email: c.text(0)?,
                    event_id: c.i64(1)?,
                    title: c.text(2)?,
                    starts_at: c.ts(3)?,
                    ends_at: c.ts(4)?,
                })
            })();
            earliest = Some((key.to_vec(), overlap));
        }
        earliest.map(|(_, o)| o.map_err(broken)).transpose()
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
        Ok(Some(self.complete(event, true)?))
    }

    fn update_event(&mut self, id: i64, c: &EventChanges, now: DateTime<Utc>) -> anyhow::Result<()> {
        let (rule, rule_end) = match &c.repeat {
            Some((rule, end)) => (Some(rule.as_str()), Some(*end)),
            None => (None, None),
        };
        let series_end = rule_end.or(c.series_end);
        self.conn.execute(
            "UPDATE events SET title = coalesce(?2, title),
                    armed_at = CASE WHEN (?3 IS NOT NULL AND ?3 <> starts_at) OR ?8 IS NOT NULL THEN ?6 ELSE armed_at END,
                    starts_at = coalesce(?3, starts_at), ends_at = coalesce(?4, ends_at),
                    video_url = CASE WHEN ?7 THEN ?5 ELSE video_url END,
                    repeat_rule = coalesce(?8, repeat_rule),
                    series_end = CASE WHEN ?9 THEN ?10 ELSE series_end END,
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
                rule,
                series_end.is_some(),
                series_end.flatten().map(ts),
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

    fn set_remind_offsets(
        &mut self,
        id: i64,
        offsets: Option<&[i64]>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE events SET remind_offsets = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, offsets_text(offsets), ts(now)],
        )?;
        Ok(())
    }

    fn set_exception(&mut self, id: i64, x: &EventException, now: DateTime<Utc>) -> anyhow::Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO event_exceptions (event_id, original_start, status, starts_at, ends_at, armed_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (event_id, original_start) DO UPDATE
                    SET status = excluded.status, starts_at = excluded.starts_at, ends_at = excluded.ends_at,
                        armed_at = excluded.armed_at",
            )?
            .execute(params![
                id,
                ts(x.original_start),
                x.status.as_str(),
                x.starts_at.map(ts),
                x.ends_at.map(ts),
                ts(x.armed_at),
                ts(now)
            ])?;
        self.conn.execute(
            "UPDATE events SET sequence = sequence + 1, updated_at = ?2,
                    series_end = CASE WHEN series_end IS NOT NULL AND ?3 > series_end THEN ?3 ELSE series_end END
             WHERE id = ?1",
            params![id, ts(now), x.ends_at.map(ts)],
        )?;
        Ok(())
    }

    fn user_series(
        &mut self,
        user_id: i64,
        after: DateTime<Utc>,
        except: Option<i64>,
    ) -> anyhow::Result<Vec<Result<Event, BrokenRow>>> {
        let rows: Vec<Result<Event, BrokenRow>> = {
            // From the live series (events_series), each checked for this participant by
            // key: a booking costs the number of live series, not the participant's history
            // (walking a mentor's 100,000 past events took 80 ms per booking).
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM events e INDEXED BY events_series
                 WHERE e.status = 'scheduled' AND e.repeat_rule IS NOT NULL
                   AND coalesce(e.series_end, '9999-12-31T23:59:59Z') > ?2 AND e.id IS NOT ?3
                   AND EXISTS (SELECT 1 FROM participants p WHERE p.event_id = e.id AND p.user_id = ?1)
                 ORDER BY e.id"
            ))?;
            let mut rows = stmt.query(params![user_id, ts(after), except])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(decode(r));
            }
            out
        };
        rows.into_iter()
            .map(|row| match row {
                Ok(e) => match self.complete(e, false) {
                    Ok(e) => Ok(Ok(e)),
                    Err(err) => err.downcast::<BrokenRow>().map(Err),
                },
                Err(b) => Ok(Err(b)),
            })
            .collect()
    }

    fn list_events(&mut self, f: &EventFilter, each: Each<Result<Event, BrokenRow>>) -> anyhow::Result<()> {
        let mut sql = format!("SELECT {COLUMNS} FROM events e WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        let mut arg = |v: rusqlite::types::Value| {
            args.push(v);
            format!("?{}", args.len())
        };
        if let Some(user) = f.user_id {
            let user = arg(user.into());
            sql.push_str(&format!(
                " AND e.id IN (SELECT event_id FROM participants WHERE user_id = {user})"
            ));
        }
        if let Some(from) = f.from {
            // Events still running at `from` count too; a series while it has occurrences.
            let from = arg(ts(from).into());
            sql.push_str(&format!(
                " AND (CASE WHEN e.repeat_rule IS NULL THEN e.ends_at > {from}
                            ELSE e.series_end IS NULL OR e.series_end > {from} END)"
            ));
        }
        if let Some(to) = f.to {
            let to = arg(ts(to).into());
            sql.push_str(&format!(" AND e.starts_at < {to}"));
        }
        if !f.include_cancelled {
            sql.push_str(" AND e.status = 'scheduled'");
        }
        sql.push_str(" ORDER BY e.starts_at, e.id");
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query(params_from_iter(args))?;
        while let Some(r) = rows.next()? {
            let event = match decode(r) {
                Ok(e) => match self.complete(e, true) {
                    Ok(e) => Ok(e),
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

    fn defer_overlap_index(&mut self) -> anyhow::Result<bool> {
        if self.bulk.is_none() {
            return Ok(false);
        }
        // A first import into a new database: no booking to check the rows against.
        let empty: bool = self
            .conn
            .query_row("SELECT NOT EXISTS (SELECT 1 FROM busy_slots)", [], |r| r.get(0))?;
        if let Some(bulk) = self.bulk.as_mut() {
            if bulk.deferred.is_none() {
                bulk.deferred = Some(Vec::new());
                bulk.index_was_empty = empty;
            }
        }
        Ok(true)
    }

    fn deferred_overlap(&mut self) -> anyhow::Result<bool> {
        Ok(match self.bulk.as_mut().and_then(|b| b.deferred.as_mut()) {
            Some(deferred) => {
                deferred.sort_unstable();
                any_overlap(deferred)
            }
            None => false,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(bookings: &[(i64, i64, i64)]) -> Vec<Booking> {
        let mut v: Vec<Booking> = bookings
            .iter()
            .enumerate()
            .map(|(i, &(user_id, start, end))| Booking {
                user_id,
                start,
                end,
                event_id: i as i64 + 1,
            })
            .collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn the_import_sweep_finds_what_find_overlap_would() {
        // Back to back, and the same times for different participants: no overlap.
        assert!(!any_overlap(&sorted(&[
            (1, 10, 20),
            (1, 20, 30),
            (2, 10, 20),
            (2, 0, 10)
        ])));
        // Identical, nested, and partly overlapping.
        assert!(any_overlap(&sorted(&[(1, 10, 20), (1, 10, 20)])));
        assert!(any_overlap(&sorted(&[(1, 10, 40), (1, 20, 30)])));
        assert!(any_overlap(&sorted(&[(1, 10, 20), (1, 15, 25)])));
        // With an earlier, longer one than the previous: 10-40 still runs at 35.
        assert!(any_overlap(&sorted(&[(1, 10, 40), (1, 20, 30), (1, 35, 50)])));
        // One participant's end does not carry over to the next.
        assert!(!any_overlap(&sorted(&[(1, 10, 40), (2, 20, 30), (3, 35, 50)])));
        assert!(!any_overlap(&[]));
    }
}
