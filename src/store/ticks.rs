//! Tick records: when `check-reminders` ran and what it did, for `status` and monitoring.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::{get_ts, get_ts_opt, ts, Store};

/// The counts a tick reports; the JSON names are part of the contract.
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct TickSummary {
    pub created: i64,
    pub skipped: i64,
    pub sent: i64,
    pub failed: i64,
    pub dead: i64,
    /// Deliveries not sent because the event moved or was cancelled, or it was too late.
    pub dropped: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TickRecord {
    pub id: i64,
    #[serde(with = "crate::model::utc")]
    pub started_at: DateTime<Utc>,
    #[serde(with = "crate::model::utc_opt")]
    pub finished_at: Option<DateTime<Utc>>,
    pub ok: Option<bool>,
    #[serde(flatten)]
    pub summary: TickSummary,
    pub error: Option<String>,
    pub elapsed_ms: Option<i64>,
}

pub(crate) fn start_tick(conn: &Connection, now: DateTime<Utc>) -> anyhow::Result<i64> {
    conn.execute("INSERT INTO ticks (started_at) VALUES (?1)", [ts(now)])?;
    Ok(conn.last_insert_rowid())
}

pub(crate) fn finish_tick(
    conn: &Connection,
    id: i64,
    summary: &TickSummary,
    error: Option<&str>,
    now: DateTime<Utc>,
    elapsed_ms: i64,
) -> anyhow::Result<()> {
    conn.execute(
        "UPDATE ticks SET finished_at = ?2, ok = ?3, created = ?4, skipped = ?5, sent = ?6, failed = ?7,
                dead = ?8, dropped = ?9, error = ?10, elapsed_ms = ?11 WHERE id = ?1",
        params![
            id,
            ts(now),
            error.is_none(),
            summary.created,
            summary.skipped,
            summary.sent,
            summary.failed,
            summary.dead,
            summary.dropped,
            error,
            elapsed_ms
        ],
    )?;
    Ok(())
}

fn record(r: &rusqlite::Row) -> rusqlite::Result<TickRecord> {
    Ok(TickRecord {
        id: r.get(0)?,
        started_at: get_ts(r, 1)?,
        finished_at: get_ts_opt(r, 2)?,
        ok: r.get(3)?,
        summary: TickSummary {
            created: r.get(4)?,
            skipped: r.get(5)?,
            sent: r.get(6)?,
            failed: r.get(7)?,
            dead: r.get(8)?,
            dropped: r.get(9)?,
        },
        error: r.get(10)?,
        elapsed_ms: r.get(11)?,
    })
}

const COLUMNS: &str =
    "id, started_at, finished_at, ok, created, skipped, sent, failed, dead, dropped, error, elapsed_ms";

impl Store {
    /// The most recent tick, finished or not.
    pub fn last_tick(&self) -> anyhow::Result<Option<TickRecord>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM ticks ORDER BY started_at DESC, id DESC LIMIT 1"),
                [],
                record,
            )
            .optional()?)
    }

    /// The most recent tick that finished without error.
    pub fn last_good_tick(&self) -> anyhow::Result<Option<TickRecord>> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM ticks WHERE ok = 1 ORDER BY started_at DESC, id DESC LIMIT 1"
                ),
                [],
                record,
            )
            .optional()?)
    }
}
