//! The outbox: claiming due deliveries, recording outcomes, listing and re-queueing.
//!
//! A claim is an `UPDATE ... RETURNING` in a write transaction, so two overlapping ticks
//! can never claim the same row; it carries an expiry so that the work of a tick that
//! died is taken over later. Every outcome is recorded only if the claim is still ours.

use chrono::{DateTime, Utc};
use rusqlite::{params, params_from_iter, OptionalExtension, Row};

use super::{broken, parse_ts, placeholders, ts, Cols, SqliteStore};
use crate::model::Delivery;
use crate::store::{
    Attempt, BrokenRow, ClaimRequest, ClaimedDelivery, DeliveryCounts, DeliveryHistory, DeliveryOps,
    DeliveryOutcome, Each,
};

const LIST_COLUMNS: &str = "d.id, d.notification_id, d.channel, d.status, d.attempts,
    CASE WHEN d.channel = 'sms' AND u.phone IS NOT NULL THEN u.phone
         WHEN d.channel = 'ntfy' AND u.id IS NOT NULL THEN 'user ' || u.id || ' (push)'
         ELSE coalesce(u.email, '(deleted user ' || n.user_id || ')') END,
    n.kind, n.event_id, d.next_attempt_at, d.last_error, d.message_id, d.response, d.created_at, d.sent_at,
    d.hold_reason";

fn decode_listed(r: &Row) -> Result<Delivery, BrokenRow> {
    let c = Cols::new(r, "deliveries", 0);
    Ok(Delivery {
        id: c.i64(0)?,
        notification_id: c.i64(1)?,
        channel: c.text(2)?,
        status: c.text(3)?,
        attempts: c.i64(4)?,
        recipient: c.text(5)?,
        kind: c.text(6)?,
        event_id: c.opt_i64(7)?,
        next_attempt_at: c.ts(8)?,
        last_error: c.opt_text(9)?,
        message_id: c.opt_text(10)?,
        response: c.opt_text(11)?,
        created_at: c.ts(12)?,
        sent_at: c.opt_ts(13)?,
        hold_reason: c.opt_text(14)?,
        held_until: None,
    }
    .with_held_until())
}

/// (status, attempts added, next attempt, error, message id, server answer, hold reason)
type OutcomeColumns<'a> = (
    &'a str,
    i64,
    Option<String>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
);

fn outcome_columns(outcome: &DeliveryOutcome) -> OutcomeColumns<'_> {
    match outcome {
        DeliveryOutcome::Sent { message_id, response } => (
            "sent",
            1,
            None,
            None,
            message_id.as_deref(),
            Some(response.as_str()),
            None,
        ),
        DeliveryOutcome::Retry {
            error,
            next_attempt_at,
        } => (
            "failed",
            1,
            Some(ts(*next_attempt_at)),
            Some(error.as_str()),
            None,
            None,
            None,
        ),
        DeliveryOutcome::Dead { error } => ("dead", 1, None, Some(error.as_str()), None, None, None),
        DeliveryOutcome::Dropped { status, reason } => {
            (status, 0, None, Some(reason.as_str()), None, None, None)
        }
        DeliveryOutcome::Held { until, reason } => (
            "pending",
            0,
            Some(ts(*until)),
            None,
            None,
            None,
            Some(reason.as_str()),
        ),
    }
}

impl DeliveryOps for SqliteStore {
    fn claim_due(&mut self, q: &ClaimRequest) -> anyhow::Result<Vec<i64>> {
        let mut stmt = self.conn.prepare_cached(
            "UPDATE deliveries SET status = 'sending', claimed_by = ?1, claim_expires_at = ?2, updated_at = ?3, hold_reason = NULL
             WHERE id IN (
                SELECT id FROM (
                    SELECT id, channel FROM deliveries WHERE status IN ('pending', 'failed') AND next_attempt_at <= ?3
                    UNION ALL
                    SELECT id, channel FROM deliveries WHERE status = 'sending' AND claim_expires_at <= ?3
                ) WHERE instr(?5, ',' || channel || ',') = 0 LIMIT ?4)
             RETURNING id",
        )?;
        let skip = format!(",{},", q.skip_channels.join(","));
        let mut ids: Vec<i64> = stmt
            .query_map(params![q.owner, ts(q.until), ts(q.now), q.limit, skip], |r| {
                r.get(0)
            })?
            .collect::<Result<_, _>>()?;
        ids.sort_unstable();
        Ok(ids)
    }

    fn claimed_delivery(&mut self, id: i64) -> anyhow::Result<ClaimedDelivery> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT d.id, d.channel, d.attempts, n.id, n.user_id, n.kind, n.event_id, n.offset_minutes,
                    n.event_start, n.title, n.body, n.created_at, n.previous_start, n.agenda_date,
                    n.occurrence_start
             FROM deliveries d JOIN notifications n ON n.id = d.notification_id WHERE d.id = ?1",
        )?;
        let mut rows = stmt.query([id])?;
        let Some(r) = rows.next()? else {
            anyhow::bail!("delivery {id} has no notification");
        };
        let c = Cols::named(r, "notifications", format!("of delivery {id}"));
        let d = (|| -> Result<ClaimedDelivery, BrokenRow> {
            Ok(ClaimedDelivery {
                id: c.i64(0)?,
                channel: c.text(1)?,
                attempts: c.i64(2)?,
                notification_id: c.i64(3)?,
                user_id: c.i64(4)?,
                kind: c.text(5)?,
                event_id: c.opt_i64(6)?,
                offset_minutes: c.opt_i64(7)?,
                notice_event_start: c.opt_ts(8)?,
                title: c.text(9)?,
                body: c.text(10)?,
                created_at: c.ts(11)?,
                previous_start: c.opt_ts(12)?,
                agenda_date: match c.opt_text(13)? {
                    None => None,
                    Some(d) => Some(
                        d.parse()
                            .map_err(|_| c.invalid(13, "not a date like 2030-03-10"))?,
                    ),
                },
                occurrence_start: c.opt_ts(14)?,
            })
        })()
        .map_err(broken)?;
        Ok(d)
    }

    fn record_outcome(
        &mut self,
        id: i64,
        owner: &str,
        outcome: &DeliveryOutcome,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let (status, attempted, next, error, message_id, response, hold) = outcome_columns(outcome);
        let n = self
            .conn
            .prepare_cached(
                "UPDATE deliveries SET status = ?3,
                    attempts = attempts + ?4,
                    next_attempt_at = coalesce(?5, next_attempt_at),
                    last_error = coalesce(?6, last_error),
                    message_id = coalesce(?7, message_id),
                    response = coalesce(?8, response),
                    sent_at = CASE WHEN ?3 = 'sent' THEN ?9 ELSE sent_at END,
                    hold_reason = ?10,
                    claimed_by = NULL, claim_expires_at = NULL, updated_at = ?9
                 WHERE id = ?1 AND status = 'sending' AND claimed_by = ?2",
            )?
            .execute(params![
                id,
                owner,
                status,
                attempted,
                next,
                error,
                message_id,
                response,
                ts(now),
                hold
            ])?;
        if n == 1 && hold.is_none() {
            // The log line, in the same transaction: what the server answered (or the
            // error, or why it was dropped). A message held for quiet hours was not
            // attempted: no line.
            self.conn
                .prepare_cached(
                    "INSERT INTO delivery_attempts (delivery_id, attempt, at, outcome, answer)
                     SELECT id, attempts, ?2, status, ?3 FROM deliveries WHERE id = ?1",
                )?
                .execute(params![id, ts(now), response.or(error)])?;
        }
        Ok(n == 1)
    }

    fn release_claims(&mut self, owner: &str, ids: &[i64]) -> anyhow::Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut args: Vec<rusqlite::types::Value> = vec![owner.to_string().into()];
        args.extend(ids.iter().map(|i| (*i).into()));
        Ok(self.conn.execute(
            &format!(
                "UPDATE deliveries SET status = CASE WHEN attempts = 0 THEN 'pending' ELSE 'failed' END,
                    claimed_by = NULL, claim_expires_at = NULL
                 WHERE claimed_by = ? AND status = 'sending' AND id IN ({})",
                placeholders(ids.len())
            ),
            params_from_iter(args),
        )?)
    }

    fn renew_claims(&mut self, owner: &str, until: DateTime<Utc>) -> anyhow::Result<usize> {
        Ok(self.conn.execute(
            "UPDATE deliveries SET claim_expires_at = ?2 WHERE claimed_by = ?1 AND status = 'sending'",
            params![owner, ts(until)],
        )?)
    }

    fn delivery_counts(&mut self) -> anyhow::Result<DeliveryCounts> {
        let mut c = DeliveryCounts::default();
        let mut stmt = self
            .conn
            .prepare_cached("SELECT status, count(*) FROM deliveries GROUP BY status")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let n: i64 = r.get(1)?;
            match r.get::<_, String>(0)?.as_str() {
                "pending" => c.pending = n,
                "sending" => c.sending = n,
                "failed" => c.failed = n,
                "dead" => c.dead = n,
                "sent" => c.sent = n,
                _ => {}
            }
        }
        Ok(c)
    }

    fn oldest_waiting_delivery(&mut self) -> anyhow::Result<Option<DateTime<Utc>>> {
        // Instants are stored in one RFC 3339 form, so the smallest text is the earliest.
        let s: Option<String> = self
            .conn
            .query_row(
                "SELECT min(created_at) FROM deliveries WHERE status IN ('pending', 'failed', 'sending')",
                [],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        Ok(s.and_then(|s| parse_ts(&s)))
    }

    fn next_retry_at(&mut self) -> anyhow::Result<Option<DateTime<Utc>>> {
        let s: Option<String> = self
            .conn
            .query_row(
                "SELECT min(next_attempt_at) FROM deliveries WHERE status IN ('pending', 'failed')",
                [],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        Ok(s.and_then(|s| parse_ts(&s)))
    }

    fn list_deliveries(
        &mut self,
        status: Option<&str>,
        limit: u32,
        each: Each<Result<Delivery, BrokenRow>>,
    ) -> anyhow::Result<()> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {LIST_COLUMNS} FROM deliveries d
             JOIN notifications n ON n.id = d.notification_id LEFT JOIN users u ON u.id = n.user_id
             WHERE ?1 IS NULL OR d.status = ?1
                OR (?1 = 'held' AND d.status = 'pending' AND d.hold_reason IS NOT NULL)
             ORDER BY d.id DESC LIMIT ?2"
        ))?;
        let mut rows = stmt.query(params![status, limit])?;
        while let Some(r) = rows.next()? {
            each(decode_listed(r))?;
        }
        Ok(())
    }

    fn delivery_status(&mut self, id: i64) -> anyhow::Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT status FROM deliveries WHERE id = ?1", [id], |r| r.get(0))
            .optional()?)
    }

    fn requeue(&mut self, ids: &[i64], now: DateTime<Utc>) -> anyhow::Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut args: Vec<rusqlite::types::Value> = vec![ts(now).into()];
        args.extend(ids.iter().map(|i| (*i).into()));
        Ok(self.conn.execute(
            &format!(
                "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?1, updated_at = ?1
                 WHERE id IN ({})",
                placeholders(ids.len())
            ),
            params_from_iter(args),
        )?)
    }

    fn release_held(&mut self, user_id: i64, now: DateTime<Utc>) -> anyhow::Result<usize> {
        Ok(self.conn.execute(
            "UPDATE deliveries SET next_attempt_at = ?2, hold_reason = NULL, updated_at = ?2
              WHERE status = 'pending' AND hold_reason IS NOT NULL
                AND notification_id IN (SELECT id FROM notifications WHERE user_id = ?1)",
            params![user_id, ts(now)],
        )?)
    }

    fn add_channel_to_pending(
        &mut self,
        user_id: i64,
        channel: &str,
        kinds: &[&str],
        now: DateTime<Utc>,
    ) -> anyhow::Result<usize> {
        let kinds = serde_json::to_string(kinds)?;
        Ok(self.conn.execute(
            "INSERT INTO deliveries (notification_id, channel, status, next_attempt_at, created_at, updated_at)
             SELECT n.id, ?2, 'pending', ?4, ?4, ?4 FROM notifications n
              WHERE n.user_id = ?1 AND n.kind IN (SELECT value FROM json_each(?3))
                AND EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = n.id
                               AND d.status IN ('pending', 'failed', 'sending'))
                AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = n.id AND d.channel = ?2)",
            params![user_id, channel, kinds, ts(now)],
        )?)
    }

    fn requeue_dead(&mut self, now: DateTime<Utc>) -> anyhow::Result<usize> {
        Ok(self.conn.execute(
            "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?1, updated_at = ?1
             WHERE status = 'dead'",
            [ts(now)],
        )?)
    }

    fn delivery_history(
        &mut self,
        notification_id: i64,
    ) -> anyhow::Result<Vec<Result<DeliveryHistory, BrokenRow>>> {
        let listed: Vec<Result<Delivery, BrokenRow>> = {
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT {LIST_COLUMNS} FROM deliveries d
                 JOIN notifications n ON n.id = d.notification_id LEFT JOIN users u ON u.id = n.user_id
                 WHERE d.notification_id = ?1 ORDER BY d.id"
            ))?;
            let mut rows = stmt.query([notification_id])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(decode_listed(r));
            }
            out
        };
        let mut out = Vec::new();
        for d in listed {
            let delivery = match d {
                Ok(d) => d,
                Err(b) => {
                    out.push(Err(b));
                    continue;
                }
            };
            let mut stmt = self.conn.prepare_cached(
                "SELECT attempt, at, outcome, answer FROM delivery_attempts WHERE delivery_id = ?1 ORDER BY id",
            )?;
            let mut rows = stmt.query([delivery.id])?;
            let mut attempts = Vec::new();
            let mut bad = None;
            while let Some(r) = rows.next()? {
                let c = Cols::named(r, "delivery_attempts", format!("of delivery {}", delivery.id));
                match (|| {
                    Ok(Attempt {
                        attempt: c.i64(0)?,
                        at: c.ts(1)?,
                        outcome: c.text(2)?,
                        answer: c.opt_text(3)?,
                    })
                })() {
                    Ok(a) => attempts.push(a),
                    Err(b) => bad = Some(b),
                }
            }
            out.push(match bad {
                Some(b) => Err(b),
                None => Ok(DeliveryHistory {
                    delivery,
                    attempts_log: attempts,
                }),
            });
        }
        Ok(out)
    }
}
