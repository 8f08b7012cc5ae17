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
use crate::model::{Event, EventStatus, Participant};
use crate::store::{BrokenRow, Each, EventChanges, EventFilter, EventOps, NewEvent, Overlap};

/// An event with its participants in one row (the participants as parallel arrays, in
/// the order they were added), so that a listing is one streamed query.
const SELECT: &str = "SELECT e.id, e.title, e.starts_at, e.ends_at, e.timezone, e.video_url, e.status,
        e.sequence, e.created_at, e.updated_at, p.user_ids, p.emails, p.names, p.roles
   FROM events e
  CROSS JOIN LATERAL (
        SELECT array_agg(pp.user_id ORDER BY pp.added_at, pp.user_id) AS user_ids,
               array_agg(u.email ORDER BY pp.added_at, pp.user_id) AS emails,
               array_agg(u.name ORDER BY pp.added_at, pp.user_id) AS names,
               array_agg(pp.role ORDER BY pp.added_at, pp.user_id) AS roles
          FROM participants pp JOIN users u ON u.id = pp.user_id
         WHERE pp.event_id = e.id) p";

fn decode(r: &Row) -> Result<Event, BrokenRow> {
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
    })
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
                                 armed_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'scheduled', 0, $6, $6, $6)
             RETURNING id",
            &[
                &e.title,
                &e.starts_at,
                &e.ends_at,
                &e.timezone,
                &e.video_url,
                &now,
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
            s.execute(
                "UPDATE events SET title = coalesce($2, title),
                        armed_at = CASE WHEN $3::timestamptz IS NOT NULL AND $3::timestamptz <> starts_at
                                        THEN $6 ELSE armed_at END,
                        starts_at = coalesce($3::timestamptz, starts_at),
                        ends_at = coalesce($4::timestamptz, ends_at),
                        video_url = CASE WHEN $7 THEN $5 ELSE video_url END,
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
            // Events still running at `from` count too.
            args.push(from);
            sql.push_str(&format!(" AND e.ends_at > ${}", args.len()));
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
