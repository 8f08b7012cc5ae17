//! Tick records: when `check-reminders` ran and what it did, for `status` and monitoring.

use chrono::{DateTime, Utc};
use rusqlite::{params, Row};

use super::{broken, ts, Cols, SqliteStore};
use crate::store::{BrokenRow, TickEnd, TickOps, TickRecord, TickSummary};

const COLUMNS: &str =
    "id, started_at, finished_at, ok, created, skipped, sent, failed, dead, dropped, error, elapsed_ms, problems, held";

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
            held: c.i64(13)?,
        },
        error: c.opt_text(10)?,
        elapsed_ms: c.opt_i64(11)?,
        problems: match c.opt_text(12)? {
            None => Vec::new(),
            Some(text) => {
                serde_json::from_str(&text).map_err(|_| c.invalid(12, "not a JSON array of strings"))?
            }
        },
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

    fn finish_tick(&mut self, id: i64, end: &TickEnd) -> anyhow::Result<()> {
        let s = end.summary;
        let problems = (!end.problems.is_empty()).then(|| serde_json::json!(end.problems).to_string());
        self.conn.execute(
            "UPDATE ticks SET finished_at = ?2, ok = ?3, created = ?4, skipped = ?5, sent = ?6, failed = ?7,
                    dead = ?8, dropped = ?9, error = ?10, elapsed_ms = ?11, problems = ?12, held = ?13 WHERE id = ?1",
            params![
                id,
                ts(end.now),
                end.error.is_none(),
                s.created,
                s.skipped,
                s.sent,
                s.failed,
                s.dead,
                s.dropped,
                end.error,
                end.elapsed_ms,
                problems,
                s.held
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

    fn forget_ticks_after(&mut self, now: DateTime<Utc>, dry_run: bool) -> anyhow::Result<usize> {
        if dry_run {
            let n: i64 = self.conn.query_row(
                "SELECT count(*) FROM ticks WHERE started_at > ?1",
                [ts(now)],
                |r| r.get(0),
            )?;
            return Ok(n as usize);
        }
        Ok(self
            .conn
            .execute("DELETE FROM ticks WHERE started_at > ?1", [ts(now)])?)
    }
}
