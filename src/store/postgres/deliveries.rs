//! The outbox: claiming due deliveries, recording outcomes, listing and re-queueing.
//!
//! A claim selects due rows `FOR UPDATE SKIP LOCKED` in a `MATERIALIZED` CTE and updates
//! exactly those (`IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)` may run its subquery
//! more than once and claim more than n rows): ticks on any number of hosts each take
//! different rows, without waiting for one another. A claim carries an expiry, after which
//! another tick takes the work of one that died; and every outcome is recorded only where
//! `claimed_by` is still the recording tick — `tick-<ticks.id>-<pid>`, unique for ever
//! since identity values are never reused — so a tick whose claim was taken over records
//! nothing over the new owner's work.

use ::postgres::Row;
use chrono::{DateTime, Utc};

use super::{broken, Cols, PgStore};
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
    Option<DateTime<Utc>>,
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
            Some(*next_attempt_at),
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
            Some(*until),
            None,
            None,
            None,
            Some(reason.as_str()),
        ),
    }
}

impl DeliveryOps for PgStore {
    fn claim_due(&mut self, q: &ClaimRequest) -> anyhow::Result<Vec<i64>> {
        let limit = i64::from(q.limit);
        let rows = self.query(
            "WITH due AS MATERIALIZED (
                SELECT id FROM deliveries
                 WHERE ((status IN ('pending', 'failed') AND next_attempt_at <= $3)
                        OR (status = 'sending' AND claim_expires_at <= $3))
                   AND channel <> ALL ($5::text[])
                 LIMIT $4
                   FOR UPDATE SKIP LOCKED)
             UPDATE deliveries d
                SET status = 'sending', claimed_by = $1, claim_expires_at = $2, updated_at = $3, hold_reason = NULL
               FROM due
              WHERE d.id = due.id
             RETURNING d.id",
            &[&q.owner, &q.until, &q.now, &limit, &q.skip_channels],
        )?;
        let mut ids: Vec<i64> = rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
        ids.sort_unstable();
        Ok(ids)
    }

    fn claimed_delivery(&mut self, id: i64) -> anyhow::Result<ClaimedDelivery> {
        let Some(r) = self.query_opt(
            "SELECT d.id, d.channel, d.attempts, n.id, n.user_id, n.kind, n.event_id, n.offset_minutes,
                    n.event_start, n.title, n.body, n.created_at, n.previous_start, n.agenda_date,
                    n.occurrence_start
               FROM deliveries d JOIN notifications n ON n.id = d.notification_id WHERE d.id = $1",
            &[&id],
        )?
        else {
            anyhow::bail!("delivery {id} has no notification");
        };
        let c = Cols::named(&r, "notifications", format!("of delivery {id}"));
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
                agenda_date: c.opt_date(13)?,
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
        // The outcome and its line in the attempts log, in one statement (so in the
        // caller's transaction whatever it is). A message held for quiet hours was not
        // attempted: it goes back to pending without a line.
        let n = self.execute(
            "WITH recorded AS (
             UPDATE deliveries SET status = $3::text,
                    attempts = attempts + $4,
                    next_attempt_at = coalesce($5, next_attempt_at),
                    last_error = coalesce($6, last_error),
                    message_id = coalesce($7, message_id),
                    response = coalesce($8, response),
                    sent_at = CASE WHEN $3::text = 'sent' THEN $9 ELSE sent_at END,
                    hold_reason = $10::text,
                    claimed_by = NULL, claim_expires_at = NULL, updated_at = $9
              WHERE id = $1 AND status = 'sending' AND claimed_by = $2
             RETURNING id, attempts, status)
             INSERT INTO delivery_attempts (delivery_id, attempt, at, outcome, answer)
             SELECT id, attempts, $9, status, coalesce($8::text, $6::text) FROM recorded
              WHERE status <> 'pending'",
            &[
                &id,
                &owner,
                &status,
                &attempted,
                &next,
                &error,
                &message_id,
                &response,
                &now,
                &hold,
            ],
        )?;
        Ok(n == 1)
    }

    fn release_claims(&mut self, owner: &str, ids: &[i64]) -> anyhow::Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        let n = self.execute(
            "UPDATE deliveries SET status = CASE WHEN attempts = 0 THEN 'pending' ELSE 'failed' END,
                    claimed_by = NULL, claim_expires_at = NULL
              WHERE claimed_by = $1 AND status = 'sending' AND id = ANY($2)",
            &[&owner, &ids],
        )?;
        Ok(n as usize)
    }

    fn renew_claims(&mut self, owner: &str, until: DateTime<Utc>) -> anyhow::Result<usize> {
        let n = self.execute(
            "UPDATE deliveries SET claim_expires_at = $2 WHERE claimed_by = $1 AND status = 'sending'",
            &[&owner, &until],
        )?;
        Ok(n as usize)
    }

    fn delivery_counts(&mut self) -> anyhow::Result<DeliveryCounts> {
        let mut c = DeliveryCounts::default();
        for r in self.query("SELECT status, count(*) FROM deliveries GROUP BY status", &[])? {
            let n: i64 = r.try_get(1)?;
            match r.try_get::<_, &str>(0)? {
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
        let row = self.query_one(
            "SELECT min(created_at) FROM deliveries WHERE status IN ('pending', 'failed', 'sending')",
            &[],
        )?;
        Ok(row.try_get(0)?)
    }

    fn next_retry_at(&mut self) -> anyhow::Result<Option<DateTime<Utc>>> {
        let row = self.query_one(
            "SELECT min(next_attempt_at) FROM deliveries WHERE status IN ('pending', 'failed')",
            &[],
        )?;
        Ok(row.try_get(0)?)
    }

    fn list_deliveries(
        &mut self,
        status: Option<&str>,
        limit: u32,
        each: Each<Result<Delivery, BrokenRow>>,
    ) -> anyhow::Result<()> {
        let limit = i64::from(limit);
        self.stream(
            &format!(
                "SELECT {LIST_COLUMNS} FROM deliveries d
                   JOIN notifications n ON n.id = d.notification_id LEFT JOIN users u ON u.id = n.user_id
                  WHERE $1::text IS NULL OR d.status = $1::text
                     OR ($1::text = 'held' AND d.status = 'pending' AND d.hold_reason IS NOT NULL)
                  ORDER BY d.id DESC LIMIT $2"
            ),
            &[&status, &limit],
            |r| each(decode_listed(r)),
        )
    }

    fn delivery_status(&mut self, id: i64) -> anyhow::Result<Option<String>> {
        match self.query_opt("SELECT status FROM deliveries WHERE id = $1", &[&id])? {
            Some(r) => Ok(Some(r.try_get(0)?)),
            None => Ok(None),
        }
    }

    fn requeue(&mut self, ids: &[i64], now: DateTime<Utc>) -> anyhow::Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        let n = self.execute(
            "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1, updated_at = $1
              WHERE id = ANY($2)",
            &[&now, &ids],
        )?;
        Ok(n as usize)
    }

    fn release_held(&mut self, user_id: i64, now: DateTime<Utc>) -> anyhow::Result<usize> {
        let n = self.execute(
            "UPDATE deliveries SET next_attempt_at = $2, hold_reason = NULL, updated_at = $2
              WHERE status = 'pending' AND hold_reason IS NOT NULL
                AND notification_id IN (SELECT id FROM notifications WHERE user_id = $1)",
            &[&user_id, &now],
        )?;
        Ok(n as usize)
    }

    fn add_channel_to_pending(
        &mut self,
        user_id: i64,
        channel: &str,
        kinds: &[&str],
        now: DateTime<Utc>,
    ) -> anyhow::Result<usize> {
        let n = self.execute(
            "INSERT INTO deliveries (notification_id, channel, status, next_attempt_at, created_at, updated_at)
             SELECT n.id, $2::text, 'pending', $4, $4, $4 FROM notifications n
              WHERE n.user_id = $1 AND n.kind = ANY($3::text[])
                AND EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = n.id
                               AND d.status IN ('pending', 'failed', 'sending'))
                AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = n.id AND d.channel = $2::text)
             ON CONFLICT DO NOTHING",
            &[&user_id, &channel, &kinds, &now],
        )?;
        Ok(n as usize)
    }

    fn requeue_dead(&mut self, now: DateTime<Utc>) -> anyhow::Result<usize> {
        let n = self.execute(
            "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1, updated_at = $1
              WHERE status = 'dead'",
            &[&now],
        )?;
        Ok(n as usize)
    }

    fn delivery_history(
        &mut self,
        notification_id: i64,
    ) -> anyhow::Result<Vec<Result<DeliveryHistory, BrokenRow>>> {
        let rows = self.query(
            &format!(
                "SELECT {LIST_COLUMNS} FROM deliveries d
                   JOIN notifications n ON n.id = d.notification_id LEFT JOIN users u ON u.id = n.user_id
                  WHERE d.notification_id = $1 ORDER BY d.id"
            ),
            &[&notification_id],
        )?;
        let listed: Vec<Result<Delivery, BrokenRow>> = rows.iter().map(decode_listed).collect();
        let mut out = Vec::new();
        for d in listed {
            let delivery = match d {
                Ok(d) => d,
                Err(b) => {
                    out.push(Err(b));
                    continue;
                }
            };
            let attempts = self
                .query(
                    "SELECT attempt, at, outcome, answer FROM delivery_attempts WHERE delivery_id = $1 ORDER BY id",
                    &[&delivery.id],
                )?
                .iter()
                .map(|r| {
                    Ok(Attempt {
                        attempt: r.try_get(0)?,
                        at: r.try_get(1)?,
                        outcome: r.try_get(2)?,
                        answer: r.try_get(3)?,
                    })
                })
                .collect::<anyhow::Result<Vec<Attempt>>>()?;
            out.push(Ok(DeliveryHistory {
                delivery,
                attempts_log: attempts,
            }));
        }
        Ok(out)
    }
}
