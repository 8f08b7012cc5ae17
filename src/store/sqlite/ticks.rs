//! Tick records: when `check-reminders` ran and what it did, for `status` and monitoring.

use chrono::{DateTime, Utc};
use rusqlite::{params, Row};

use super::{broken, ts, Cols, SqliteStore};
use crate::store::{BrokenRow, TickOps, TickRecord, TickSummary};

const COLUMNS: &str =
    "id, started_at, finished_at, ok, created, skipped, sent, failed, dead, dropped, error, elapsed_ms";

fn decode(r: &Row) -> Result<TickRecord, BrokenRow> {
    let c = Cols::new(r, "ticks", 0);
    Ok(TickRecord {
        id: c.i64(0)?,
        started_at: c.ts(1)?,
        finished_at: c.opt_ts(2)?,
        ok: c.opt_bool(3)?,
        summary: TickSummary {
            created: c.i64(4)?,
            skipped: c.i64(5)?,
            sent: c.i64(6)?,
            failed: c.i64(7)?,
            dead: c.i64(8)?,
            dropped: c.i64(9)?,
        },
        error: c.opt_text(10)?,
        elapsed_ms: c.opt_i64(11)?,
    })
}

impl SqliteStore {
    fn one_tick(&self, sql: &str) -> anyhow::Result<Option<TickRecord>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query([])?;
        match rows.next()? {
            Some(r) => Ok(Some(decode(r).map_err(broken)?)),
            None => Ok(None),
        }
    }
}

impl TickOps for SqliteStore {
    fn start_tick(&mut self, now: DateTime<Utc>) -> anyhow::Result<i64> {
        self.conn
            .execute("INSERT INTO ticks (started_at) VALUES (?1)", [ts(now)])?;
        Ok(self.conn.last_insert_rowid())
    }

    fn finish_tick(
        &mut self,
        id: i64,
        summary: &TickSummary,
        error: Option<&str>,
        now: DateTime<Utc>,
        elapsed_ms: i64,
    ) -> anyhow::Result<()> {
        self.conn.execute(
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

    fn last_tick(&mut self) -> anyhow::Result<Option<TickRecord>> {
        self.one_tick(&format!(
            "SELECT {COLUMNS} FROM ticks ORDER BY started_at DESC, id DESC LIMIT 1"
        ))
    }

    fn last_good_tick(&mut self) -> anyhow::Result<Option<TickRecord>> {
        self.one_tick(&format!(
            "SELECT {COLUMNS} FROM ticks WHERE ok = 1 ORDER BY started_at DESC, id DESC LIMIT 1"
        ))
    }
}
