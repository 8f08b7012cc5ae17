//! The outbox: claiming due deliveries, recording outcomes, listing and re-queueing.
//!
//! A claim is an `UPDATE ... RETURNING` in a write transaction, so two overlapping ticks
//! can never claim the same row; it carries an expiry so that the work of a tick that
//! died is taken over later. Every outcome is recorded only if the claim is still ours.

use chrono::{DateTime, Utc};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::{get_ts, get_ts_opt, placeholders, ts, Store};
use crate::error::user_error;
use crate::model::Delivery;

/// A claimed delivery with what the sender needs to re-check and build it.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub channel: String,
    pub attempts: i64,
    pub notification_id: i64,
    pub user_id: i64,
    pub kind: String,
    pub event_id: Option<i64>,
    pub offset_minutes: Option<i64>,
    pub notice_event_start: Option<DateTime<Utc>>,
    pub previous_start: Option<DateTime<Utc>>,
    pub title: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub enum DeliveryOutcome {
    Sent {
        message_id: Option<String>,
        response: String,
    },
    Retry {
        error: String,
        next_attempt_at: DateTime<Utc>,
    },
    Dead {
        error: String,
    },
    /// Not sent and never will be: `superseded` (event moved or cancelled) or `expired`.
    Dropped {
        status: &'static str,
        reason: String,
    },
}

#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct DeliveryCounts {
    pub pending: i64,
    pub sending: i64,
    pub failed: i64,
    pub dead: i64,
    pub sent: i64,
}

const LIST_COLUMNS: &str = "d.id, d.notification_id, d.channel, d.status, d.attempts, u.email,
    n.kind, n.event_id, d.next_attempt_at, d.last_error, d.message_id, d.response, d.created_at, d.sent_at";

fn list_row(r: &Row) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: r.get(0)?,
        notification_id: r.get(1)?,
        channel: r.get(2)?,
        status: r.get(3)?,
        attempts: r.get(4)?,
        recipient: r.get(5)?,
        kind: r.get(6)?,
        event_id: r.get(7)?,
        next_attempt_at: get_ts(r, 8)?,
        last_error: r.get(9)?,
        message_id: r.get(10)?,
        response: r.get(11)?,
        created_at: get_ts(r, 12)?,
        sent_at: get_ts_opt(r, 13)?,
    })
}

/// Claim up to `limit` due deliveries for `tick`: pending or failed ones whose time has
/// come, and ones whose claim expired because their tick died. Channels in `skip` (found
/// unreachable by this tick) are left for the next tick.
pub(crate) fn claim_due(
    conn: &Connection,
    tick: &str,
    now: DateTime<Utc>,
    claim_until: DateTime<Utc>,
    limit: u32,
    skip: &[String],
) -> anyhow::Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(
        "UPDATE deliveries SET status = 'sending', claimed_by = ?1, claim_expires_at = ?2, updated_at = ?3
         WHERE id IN (
            SELECT id FROM (
                SELECT id, channel FROM deliveries WHERE status IN ('pending', 'failed') AND next_attempt_at <= ?3
                UNION ALL
                SELECT id, channel FROM deliveries WHERE status = 'sending' AND claim_expires_at <= ?3
            ) WHERE instr(?5, ',' || channel || ',') = 0 LIMIT ?4)
         RETURNING id",
    )?;
    let skip = format!(",{},", skip.join(","));
    let mut ids: Vec<i64> = stmt
        .query_map(params![tick, ts(claim_until), ts(now), limit, skip], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    ids.sort_unstable();
    Ok(ids)
}

/// Load a claimed delivery. A row an app broke (bad instant) is an error for this
/// delivery alone.
pub(crate) fn load_claimed(conn: &Connection, id: i64) -> anyhow::Result<ClaimedDelivery> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.id, d.channel, d.attempts, n.id, n.user_id, n.kind, n.event_id, n.offset_minutes,
                n.event_start, n.title, n.body, n.created_at, n.previous_start
         FROM deliveries d JOIN notifications n ON n.id = d.notification_id WHERE d.id = ?1",
    )?;
    Ok(stmt.query_row([id], |r| {
        Ok(ClaimedDelivery {
            id: r.get(0)?,
            channel: r.get(1)?,
            attempts: r.get(2)?,
            notification_id: r.get(3)?,
            user_id: r.get(4)?,
            kind: r.get(5)?,
            event_id: r.get(6)?,
            offset_minutes: r.get(7)?,
            notice_event_start: get_ts_opt(r, 8)?,
            title: r.get(9)?,
            body: r.get(10)?,
            created_at: get_ts(r, 11)?,
            previous_start: get_ts_opt(r, 12)?,
        })
    })?)
}

type OutcomeColumns<'a> = (
    &'a str,
    i64,
    Option<String>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
);

/// Record what happened to a claimed delivery; false if the claim was lost meanwhile
/// (another tick took it over), in which case nothing is written.
pub(crate) fn record_outcome(
    conn: &Connection,
    id: i64,
    tick: &str,
    outcome: &DeliveryOutcome,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let mut stmt = conn.prepare_cached(
        "UPDATE deliveries SET status = ?3,
            attempts = attempts + ?4,
            next_attempt_at = coalesce(?5, next_attempt_at),
            last_error = coalesce(?6, last_error),
            message_id = coalesce(?7, message_id),
            response = coalesce(?8, response),
            sent_at = CASE WHEN ?3 = 'sent' THEN ?9 ELSE sent_at END,
            claimed_by = NULL, claim_expires_at = NULL, updated_at = ?9
         WHERE id = ?1 AND status = 'sending' AND claimed_by = ?2",
    )?;
    // (status, attempts added, next attempt, error, message id, server answer)
    let (status, attempted, next, error, message_id, response): OutcomeColumns = match outcome {
        DeliveryOutcome::Sent { message_id, response } => (
            "sent",
            1,
            None,
            None,
            message_id.as_deref(),
            Some(response.as_str()),
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
        ),
        DeliveryOutcome::Dead { error } => ("dead", 1, None, Some(error.as_str()), None, None),
        DeliveryOutcome::Dropped { status, reason } => (status, 0, None, Some(reason.as_str()), None, None),
    };
    let n = stmt.execute(params![
        id,
        tick,
        status,
        attempted,
        next,
        error,
        message_id,
        response,
        ts(now)
    ])?;
    Ok(n == 1)
}

/// Give back claims a tick holds but did not get to (it ran out of time).
pub(crate) fn release_claims(conn: &Connection, tick: &str, ids: &[i64]) -> anyhow::Result<usize> {
    if ids.is_empty() {
        return Ok(0);
    }
    let mut args: Vec<rusqlite::types::Value> = vec![tick.to_string().into()];
    args.extend(ids.iter().map(|i| (*i).into()));
    Ok(conn.execute(
        &format!(
            "UPDATE deliveries SET status = CASE WHEN attempts = 0 THEN 'pending' ELSE 'failed' END,
                claimed_by = NULL, claim_expires_at = NULL
             WHERE claimed_by = ? AND status = 'sending' AND id IN ({})",
            placeholders(ids.len())
        ),
        params_from_iter(args),
    )?)
}

/// Extend this tick's claims while it is still working through a slow batch.
pub(crate) fn renew_claims(conn: &Connection, tick: &str, until: DateTime<Utc>) -> anyhow::Result<usize> {
    Ok(conn.execute(
        "UPDATE deliveries SET claim_expires_at = ?2 WHERE claimed_by = ?1 AND status = 'sending'",
        params![tick, ts(until)],
    )?)
}

pub(crate) fn counts(conn: &Connection) -> anyhow::Result<DeliveryCounts> {
    let mut c = DeliveryCounts::default();
    let mut stmt = conn.prepare_cached(
        "SELECT status, count(*) FROM deliveries
         WHERE status IN ('pending', 'sending', 'failed', 'dead') GROUP BY status",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let n: i64 = r.get(1)?;
        match r.get::<_, String>(0)?.as_str() {
            "pending" => c.pending = n,
            "sending" => c.sending = n,
            "failed" => c.failed = n,
            "dead" => c.dead = n,
            _ => {}
        }
    }
    Ok(c)
}

impl Store {
    pub fn delivery_counts(&self) -> anyhow::Result<DeliveryCounts> {
        counts(&self.conn)
    }

    /// The earliest moment a waiting delivery becomes due, for `status` and `plan`.
    pub fn next_retry_at(&self) -> anyhow::Result<Option<DateTime<Utc>>> {
        let s: Option<String> = self
            .conn
            .query_row(
                "SELECT min(next_attempt_at) FROM deliveries WHERE status IN ('pending', 'failed')",
                [],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        s.map(|s| super::parse_ts(&s).map_err(Into::into)).transpose()
    }

    pub fn list_deliveries(&self, status: Option<&str>, limit: u32) -> anyhow::Result<Vec<Delivery>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {LIST_COLUMNS} FROM deliveries d
             JOIN notifications n ON n.id = d.notification_id JOIN users u ON u.id = n.user_id
             WHERE ?1 IS NULL OR d.status = ?1 ORDER BY d.id DESC LIMIT ?2"
        ))?;
        let rows = stmt
            .query_map(params![status, limit], list_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Re-queue failed or dead deliveries now, with a fresh attempt budget.
    pub fn retry_deliveries(&mut self, ids: &[i64], now: DateTime<Utc>) -> anyhow::Result<usize> {
        self.write(|tx| {
            let mut check = tx.prepare("SELECT status FROM deliveries WHERE id = ?1")?;
            for id in ids {
                let status: Option<String> = check.query_row([id], |r| r.get(0)).optional()?;
                match status.as_deref() {
                    None => return Err(user_error(format!("unknown delivery {id}: nothing was changed"))),
                    Some("failed" | "dead" | "pending") => {}
                    Some(other) => {
                        return Err(user_error(format!(
                            "delivery {id} is {other}, only pending, failed or dead deliveries can be retried: nothing was changed"
                        )))
                    }
                }
            }
            let mut args: Vec<rusqlite::types::Value> = vec![ts(now).into()];
            args.extend(ids.iter().map(|i| (*i).into()));
            Ok(tx.execute(
                &format!(
                    "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, updated_at = ?1
                     WHERE id IN ({})",
                    placeholders(ids.len())
                ),
                params_from_iter(args),
            )?)
        })
    }

    pub fn retry_dead(&mut self, now: DateTime<Utc>) -> anyhow::Result<usize> {
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?1, updated_at = ?1
                 WHERE status = 'dead'",
                [ts(now)],
            )?)
        })
    }
}
