//! Events, their participants, and double booking: the check the service makes first
//! (`find_overlap`) and the exclusion constraint `participants_no_double_booking`, which
//! catches what the check cannot see (another host's booking committing meanwhile, or
//! the web app's own insert) and is answered with the same refusal.

use ::postgres::error::SqlState;
use ::postgres::types::ToSql;
use ::postgres::Row;
use chrono::{DateTime, Utc};

use super::{broken, connect, Cols, PgStore};
use crate::error::user_error;
use crate::model::{Event, EventException, EventStatus, ExceptionStatus, Participant};
use crate::store::{BrokenRow, Each, EventChanges, EventFilter, EventOps, NewEvent, Overlap};

/// An event with its participants in one row (the participants as parallel arrays, in
/// the order they were added), so that a listing is one streamed query.
pub(super) const SELECT: &str =
    "SELECT e.id, e.title, e.starts_at, e.ends_at, e.timezone, e.video_url, e.status,
        e.sequence, e.created_at, e.updated_at, p.user_ids, p.emails, p.names, p.roles,
        e.remind_offsets, e.repeat_rule, e.series_end,
        x.originals, x.statuses, x.starts, x.ends, x.armed, e.armed_at
   FROM events e
  CROSS JOIN LATERAL (
        SELECT array_agg(pp.user_id ORDER BY pp.added_at, pp.user_id) AS user_ids,
               array_agg(u.email ORDER BY pp.added_at, pp.user_id) AS emails,
               array_agg(u.name ORDER BY pp.added_at, pp.user_id) AS names,
               array_agg(pp.role ORDER BY pp.added_at, pp.user_id) AS roles
          FROM participants pp JOIN users u ON u.id = pp.user_id
         WHERE pp.event_id = e.id) p
  CROSS JOIN LATERAL (
        SELECT array_agg(xx.original_start ORDER BY xx.original_start) AS originals,
               array_agg(xx.status ORDER BY xx.original_start) AS statuses,
               array_agg(xx.starts_at ORDER BY xx.original_start) AS starts,
               array_agg(xx.ends_at ORDER BY xx.original_start) AS ends,
               array_agg(xx.armed_at ORDER BY xx.original_start) AS armed
          FROM event_exceptions xx
         WHERE xx.event_id = e.id AND e.repeat_rule IS NOT NULL) x";

/// A series without its participants (the tick's and the booking check's reads): the same
/// columns as [`SELECT`], the participants' arrays empty.
pub(super) const SELECT_SERIES: &str =
    "SELECT e.id, e.title, e.starts_at, e.ends_at, e.timezone, e.video_url, e.status,
        e.sequence, e.created_at, e.updated_at, NULL::bigint[], NULL::text[], NULL::text[], NULL::text[],
        e.remind_offsets, e.repeat_rule, e.series_end,
        x.originals, x.statuses, x.starts, x.ends, x.armed, e.armed_at
   FROM events e
  CROSS JOIN LATERAL (
        SELECT array_agg(xx.original_start ORDER BY xx.original_start) AS originals,
               array_agg(xx.status ORDER BY xx.original_start) AS statuses,
               array_agg(xx.starts_at ORDER BY xx.original_start) AS starts,
               array_agg(xx.ends_at ORDER BY xx.original_start) AS ends,
               array_agg(xx.armed_at ORDER BY xx.original_start) AS armed
          FROM event_exceptions xx
         WHERE xx.event_id = e.id) x";

pub(super) fn decode(r: &Row) -> Result<Event, BrokenRow> {
    let c = Cols::new(r, "events", 0);
    let status = match c.text(6)?.as_str() {
        "scheduled" => EventStatus::Scheduled,
        "cancelled" => EventStatus::Cancelled,
        _ => return Err(c.invalid(6, "not 'scheduled' or 'cancelled'")),
    };
    let id = c.i64(0)?;
    let p = Cols::named(r, "participants", format!("event {id}"));
    let (user_ids, emails, names, roles) = (
        p.vec::<i64>(10)?,
        p.vec::<String>(11)?,
        p.vec::<String>(12)?,
        p.vec::<String>(13)?,
    );
    let participants = user_ids
        .into_iter()
        .zip(emails)
        .zip(names)
        .zip(roles)
        .map(|(((user_id, email), name), role)| Participant {
            user_id,
            email,
            name,
            role,
        })
        .collect();
    Ok(Event {
        id,
        title: c.text(1)?,
        starts_at: c.ts(2)?,
        ends_at: c.ts(3)?,
        timezone: c.opt_text(4)?,
        video_url: c.opt_text(5)?,
        status,
        sequence: c.i64(7)?,
        created_at: c.ts(8)?,
        updated_at: c.ts(9)?,
        participants,
        remind_offsets: c.opt_vec::<i64>(14)?,
        repeat_rule: c.opt_text(15)?,
        series_end: c.opt_ts(16)?,
        exceptions: decode_exceptions(r, id)?,
        armed_at: c.ts(22)?,
    })
}

fn decode_exceptions(r: &Row, id: i64) -> Result<Vec<EventException>, BrokenRow> {
    let x = Cols::named(r, "event_exceptions", format!("event {id}"));
    let originals = x.vec::<DateTime<Utc>>(17)?;
    let statuses = x.vec::<String>(18)?;
    let starts = x.vec::<Option<DateTime<Utc>>>(19)?;
    let ends = x.vec::<Option<DateTime<Utc>>>(20)?;
    let armed = x.vec::<DateTime<Utc>>(21)?;
    let mut out = Vec::with_capacity(originals.len());
    for (i, original_start) in originals.into_iter().enumerate() {
        let status = match statuses.get(i).map(String::as_str) {
            Some("cancelled") => ExceptionStatus::Cancelled,
            Some("moved") => ExceptionStatus::Moved,
            _ => return Err(x.invalid(18, "not 'cancelled' or 'moved'")),
        };
        out.push(EventException {
            original_start,
            status,
            starts_at: starts.get(i).copied().flatten(),
            ends_at: ends.get(i).copied().flatten(),
            armed_at: armed.get(i).copied().unwrap_or(original_start),
        });
    }
    Ok(out)
}

impl PgStore {
    /// The new times of a move hit the exclusion constraint: name the booking in the way,
    /// as the service's own check would have.
    fn move_refusal(&mut self, id: i64, c: &EventChanges) -> anyhow::Result<anyhow::Error> {
        let row = self.query_one("SELECT starts_at, ends_at FROM events WHERE id = $1", &[&id])?;
        let start = c.starts_at.unwrap_or(row.try_get(0)?);
        let end = c.ends_at.unwrap_or(row.try_get(1)?);
        let users: Vec<i64> = self
            .query(
                "SELECT user_id FROM participants WHERE event_id = $1 ORDER BY user_id",
                &[&id],
            )?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        for user in users {
            if let Some(o) = self.find_overlap(user, start, end, Some(id))? {
                return Ok(o.refusal());
            }
        }
        Ok(user_error(format!(
            "event {id} cannot move there: a participant is already booked then (pick another time or pass --allow-overlap)"
        )))
    }
}

impl EventOps for PgStore {
    fn insert_event(&mut self, e: &NewEvent, now: DateTime<Utc>) -> anyhow::Result<i64> {
        let row = self.query_one(
            "INSERT INTO events (title, starts_at, ends_at, timezone, video_url, status, sequence,
                                 armed_at, created_at, updated_at, remind_offsets, repeat_rule, series_end)
             VALUES ($1, $2, $3, $4, $5, 'scheduled', 0, $6, $6, $6, $7, $8, $9)
             RETURNING id",
            &[
                &e.title,
                &e.starts_at,
                &e.ends_at,
                &e.timezone,
                &e.video_url,
                &now,
                &e.remind_offsets,
                &e.repeat_rule,
                &e.series_end,
            ],
        )?;
        Ok(row.try_get(0)?)
    }

    fn add_participant(
        &mut self,
        event_id: i64,
        user_id: i64,
        role: &str,
        allow_overlap: bool,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        // DO NOTHING (no target) covers the primary key and the exclusion constraint: a
        // conflict with a booking another session is committing waits for it, and neither
        // aborts the transaction (an import goes on to report every row). Which one it was
        // is read afterwards.
        for _ in 0..3 {
            let inserted = self.execute(
                "INSERT INTO participants (event_id, user_id, role, added_at, allow_overlap)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT DO NOTHING",
                &[&event_id, &user_id, &role, &now, &allow_overlap],
            )?;
            if inserted == 1 {
                return Ok(true);
            }
            if self
                .query_opt(
                    "SELECT 1 FROM participants WHERE event_id = $1 AND user_id = $2",
                    &[&event_id, &user_id],
                )?
                .is_some()
            {
                return Ok(false);
            }
            let Some(row) = self.query_opt(
                "SELECT starts_at, ends_at FROM events WHERE id = $1",
                &[&event_id],
            )?
            else {
                anyhow::bail!("event {event_id} vanished while adding a participant");
            };
            let (start, end) = (row.try_get(0)?, row.try_get(1)?);
            if let Some(o) = self.find_overlap(user_id, start, end, Some(event_id))? {
                return Err(o.refusal());
            }
            // The booking in the way was cancelled or moved meanwhile: try again.
        }
        anyhow::bail!("user {user_id} could not be added to event {event_id}: the slot kept changing")
    }

    fn remove_participant(&mut self, event_id: i64, user_id: i64) -> anyhow::Result<bool> {
        let n = self.execute(
            "DELETE FROM participants WHERE event_id = $1 AND user_id = $2",
            &[&event_id, &user_id],
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
        // Half-open intervals: back-to-back events do not overlap. Every scheduled event
        // counts, those booked with --allow-overlap too (as on SQLite). The participants'
        // slots find the candidates through participants_busy; the event's own columns
        // decide.
        let Some(r) = self.query_opt(
            "SELECT u.email, e.id, e.title, e.starts_at, e.ends_at
               FROM participants p
               JOIN events e ON e.id = p.event_id
               JOIN users u ON u.id = p.user_id
              WHERE p.user_id = $1 AND p.slot && tstzrange($2, $3, '[)') AND e.status = 'scheduled'
                AND e.repeat_rule IS NULL
                AND e.starts_at < $3 AND e.ends_at > $2 AND e.id IS DISTINCT FROM $4::bigint
              ORDER BY e.starts_at, e.id LIMIT 1",
            &[&user_id, &start, &end, &except],
        )?
        else {
            return Ok(None);
        };
        let c = Cols::new(&r, "events", 1);
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
        match self.query_opt(&format!("{SELECT} WHERE e.id = $1"), &[&id])? {
            Some(r) => Ok(Some(decode(&r).map_err(broken)?)),
            None => Ok(None),
        }
    }

    fn update_event(&mut self, id: i64, c: &EventChanges, now: DateTime<Utc>) -> anyhow::Result<()> {
        let moving = c.starts_at.is_some() || c.ends_at.is_some();
        // The participants' slots move with the event (a trigger), checked by the
        // exclusion constraint; whether they stay under it is this booking's choice. The
        // order makes each row checked once, at its new slot and with its new flag: out
        // of the rule before the move, or back under it after.
        let set_flag = |s: &mut PgStore| {
            s.execute(
                "UPDATE participants SET allow_overlap = $2 WHERE event_id = $1 AND allow_overlap <> $2",
                &[&id, &c.allow_overlap],
            )
        };
        let result = self.undo_on_error(|s| {
            if moving && c.allow_overlap {
                set_flag(s)?;
            }
            let (rule, rule_end) = match &c.repeat {
                Some((rule, end)) => (Some(rule.clone()), Some(*end)),
                None => (None, None),
            };
            let series_end = rule_end.or(c.series_end);
            s.execute(
                "UPDATE events SET title = coalesce($2, title),
                        armed_at = CASE WHEN ($3::timestamptz IS NOT NULL AND $3::timestamptz <> starts_at)
                                             OR $8::text IS NOT NULL
                                        THEN $6 ELSE armed_at END,
                        starts_at = coalesce($3::timestamptz, starts_at),
                        ends_at = coalesce($4::timestamptz, ends_at),
                        video_url = CASE WHEN $7 THEN $5 ELSE video_url END,
                        repeat_rule = coalesce($8::text, repeat_rule),
                        series_end = CASE WHEN $9 THEN $10::timestamptz ELSE series_end END,
                        sequence = sequence + 1, updated_at = $6
                  WHERE id = $1",
                &[
                    &id,
                    &c.title,
                    &c.starts_at,
                    &c.ends_at,
                    &c.video_url.clone().flatten(),
                    &now,
                    &c.video_url.is_some(),
                    &rule,
                    &series_end.is_some(),
                    &series_end.flatten(),
                ],
            )?;
            if moving && !c.allow_overlap {
                set_flag(s)?;
            }
            Ok(())
        });
        match result {
            Ok(_) => Ok(()),
            Err(e) if connect::sql_state(&e) == Some(SqlState::EXCLUSION_VIOLATION) && self.in_transaction => {
                Err(self.move_refusal(id, c)?)
            }
            Err(e) if connect::sql_state(&e) == Some(SqlState::EXCLUSION_VIOLATION) => Err(user_error(format!(
                "event {id} cannot move there: a participant is already booked then (pick another time or pass --allow-overlap)"
            ))),
            Err(e) => Err(e),
        }
    }

    fn bump_sequence(&mut self, id: i64, now: DateTime<Utc>) -> anyhow::Result<()> {
        self.execute(
            "UPDATE events SET sequence = sequence + 1, updated_at = $2 WHERE id = $1",
            &[&id, &now],
        )?;
        Ok(())
    }

    fn cancel_event(&mut self, id: i64, now: DateTime<Utc>) -> anyhow::Result<()> {
        self.execute(
            "UPDATE events SET status = 'cancelled', sequence = sequence + 1, updated_at = $2 WHERE id = $1",
            &[&id, &now],
        )?;
        Ok(())
    }

    fn set_remind_offsets(
        &mut self,
        id: i64,
        offsets: Option<&[i64]>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let offsets: Option<Vec<i64>> = offsets.map(<[i64]>::to_vec);
        self.execute(
            "UPDATE events SET remind_offsets = $2, updated_at = $3 WHERE id = $1",
            &[&id, &offsets, &now],
        )?;
        Ok(())
    }

    fn set_exception(&mut self, id: i64, x: &EventException, now: DateTime<Utc>) -> anyhow::Result<()> {
        self.execute(
            "INSERT INTO event_exceptions (event_id, original_start, status, starts_at, ends_at, armed_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (event_id, original_start) DO UPDATE
                SET status = excluded.status, starts_at = excluded.starts_at, ends_at = excluded.ends_at,
                    armed_at = excluded.armed_at",
            &[
                &id,
                &x.original_start,
                &x.status.as_str(),
                &x.starts_at,
                &x.ends_at,
                &x.armed_at,
                &now,
            ],
        )?;
        self.execute(
            "UPDATE events SET sequence = sequence + 1, updated_at = $2,
                    series_end = CASE WHEN series_end IS NOT NULL AND $3::timestamptz > series_end
                                      THEN $3::timestamptz ELSE series_end END
              WHERE id = $1",
            &[&id, &now, &x.ends_at],
        )?;
        Ok(())
    }

    fn user_series(
        &mut self,
        user_id: i64,
        after: DateTime<Utc>,
        except: Option<i64>,
    ) -> anyhow::Result<Vec<Result<Event, BrokenRow>>> {
        let rows = self.query(
            &format!(
                "{SELECT_SERIES}
                  WHERE e.id IN (SELECT event_id FROM participants WHERE user_id = $1)
                    AND e.repeat_rule IS NOT NULL AND e.status = 'scheduled'
                    AND (e.series_end IS NULL OR e.series_end > $2) AND e.id IS DISTINCT FROM $3::bigint
                  ORDER BY e.id"
            ),
            &[&user_id, &after, &except],
        )?;
        Ok(rows.iter().map(decode).collect())
    }

    fn guard_bookings(&mut self, series: bool) -> anyhow::Result<()> {
        // The exclusion constraint binds single events only; a series is checked by the
        // service. A booking with a series takes SHARE ROW EXCLUSIVE on participants (it
        // conflicts with itself and with ROW EXCLUSIVE), every other booking by notifyctl
        // ROW EXCLUSIVE (which they share, as inserts do): so a series is checked while no
        // other booking is in flight, and no booking is checked while a series is. The
        // tick's row locks (ROW SHARE) are not affected.
        let mode = if series {
            "SHARE ROW EXCLUSIVE"
        } else {
            "ROW EXCLUSIVE"
        };
        self.simple(&format!("LOCK TABLE participants IN {mode} MODE"))
    }

    fn list_events(&mut self, f: &EventFilter, each: Each<Result<Event, BrokenRow>>) -> anyhow::Result<()> {
        let mut sql = format!("{SELECT} WHERE true");
        let mut args: Vec<&(dyn ToSql + Sync)> = Vec::new();
        if let Some(user) = &f.user_id {
            args.push(user);
            sql.push_str(&format!(
                " AND e.id IN (SELECT event_id FROM participants WHERE user_id = ${})",
                args.len()
            ));
        }
        if let Some(from) = &f.from {
            // Events still running at `from` count too; a series while it has occurrences.
            args.push(from);
            sql.push_str(&format!(
                " AND (CASE WHEN e.repeat_rule IS NULL THEN e.ends_at > ${n}
                            ELSE e.series_end IS NULL OR e.series_end > ${n} END)",
                n = args.len()
            ));
        }
        if let Some(to) = &f.to {
            args.push(to);
            sql.push_str(&format!(" AND e.starts_at < ${}", args.len()));
        }
        if !f.include_cancelled {
            sql.push_str(" AND e.status = 'scheduled'");
        }
        sql.push_str(" ORDER BY e.starts_at, e.id");
        self.stream(&sql, &args, |r| each(decode(r)))
    }

    fn unreadable_events(&mut self, _limit: u32) -> anyhow::Result<Vec<BrokenRow>> {
        // Typed, finite, checked columns: every stored start and end can be read.
        Ok(Vec::new())
    }
}
