//! Schema migrations for SQLite, as an append-only list of steps keyed by
//! `PRAGMA user_version`: step N brings a file from version N-1 to N. A released step is
//! never edited; a change is a new step at the end.

use std::path::Path;

use anyhow::Context;
use rusqlite::Connection;

use crate::error::user_error;

/// Each step's SQL; index 0 is version 1. `schema.sql` at the repository root documents
/// the result as a whole (a test checks that both give the same schema).
const STEPS: &[&str] = &[include_str!("migrations/001_initial.sql")];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = STEPS.len() as i64;

pub(super) fn refuse_newer(version: i64, path: &Path) -> anyhow::Result<()> {
    if version > SCHEMA_VERSION {
        return Err(user_error(format!(
            "database {} has schema version {version}, newer than this notifyctl ({SCHEMA_VERSION}): upgrade notifyctl",
            path.display()
        )));
    }
    Ok(())
}

/// Bring an older file forward under the write lock, so two processes that start on an
/// old file at once migrate it once; all pending steps commit together.
pub(super) fn migrate(conn: &Connection, path: &Path) -> anyhow::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| super::busy_hint(e, path))?;
    let steps = || -> anyhow::Result<()> {
        let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        refuse_newer(current, path)?;
        for (i, sql) in STEPS.iter().enumerate() {
            let version = i as i64 + 1;
            if current < version {
                conn.execute_batch(sql)
                    .with_context(|| format!("applying schema step {version}"))?;
            }
        }
        conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
        Ok(())
    };
    match steps() {
        Ok(()) => {
            conn.execute_batch("COMMIT")?;
            Ok(())
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}
