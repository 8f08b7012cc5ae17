//! Schema migrations for SQLite, as an append-only list of steps keyed by
//! `PRAGMA user_version`: step N brings a file from version N-1 to N. A released step is
//! never edited; a change is a new step at the end.

use std::path::Path;

use anyhow::Context;
use rusqlite::Connection;

use crate::error::user_error;

/// Each step's SQL; index 0 is version 1. `schema.sql` at the repository root documents
/// the result as a whole (a test checks that both give the same schema).
const STEPS: &[&str] = &[
    include_str!("migrations/001_initial.sql"),
    include_str!("migrations/002_tick_problems.sql"),
    include_str!("migrations/003_instant_guards.sql"),
    include_str!("migrations/004_busy_index.sql"),
    include_str!("migrations/005_rules.sql"),
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = STEPS.len() as i64;

/// The tables every notifyctl database has.
const TABLES: [&str; 7] = [
    "users",
    "events",
    "participants",
    "notifications",
    "deliveries",
    "reminders",
    "ticks",
];

/// Refuse a file that is not notifyctl's before writing anything to it: one that claims
/// a schema version but lacks our tables, or one whose own tables would clash with ours.
pub(super) fn refuse_foreign(conn: &Connection, version: i64, path: &Path) -> anyhow::Result<()> {
    let mut stmt = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?;
    let present: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    let ours: Vec<&str> = TABLES
        .iter()
        .copied()
        .filter(|t| present.iter().any(|p| p == t))
        .collect();
    if version >= 1 && ours.len() < TABLES.len() {
        let missing: Vec<&str> = TABLES.iter().copied().filter(|t| !ours.contains(t)).collect();
        return Err(user_error(format!(
            "{} is not a notifyctl database: it says schema version {version} but has no table {}; check --db / NOTIFYCTL_DB",
            path.display(),
            missing.join(", ")
        )));
    }
    if version == 0 && !ours.is_empty() {
        return Err(user_error(format!(
            "{} is not a notifyctl database: it already has a table named {} of its own; give notifyctl its own file (--db)",
            path.display(),
            ours.join(", ")
        )));
    }
    Ok(())
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Tables, columns (name, type, not null, default, key), indexes and triggers.
    fn shape(conn: &Connection) -> Vec<String> {
        let mut out = Vec::new();
        let mut objects = conn
            .prepare("SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name")
            .unwrap();
        let rows: Vec<(String, String, String)> = objects
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (kind, name, table) in rows {
            out.push(format!("{kind} {name} on {table}"));
            if kind == "table" {
                let mut cols = conn.prepare(&format!("PRAGMA table_info({name})")).unwrap();
                let cols: Vec<String> = cols
                    .query_map([], |r| {
                        Ok(format!(
                            "  {} {} notnull={} default={:?} pk={}",
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, Option<String>>(4)?,
                            r.get::<_, i64>(5)?
                        ))
                    })
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                out.extend(cols);
            }
            if kind == "index" {
                let mut cols = conn.prepare(&format!("PRAGMA index_xinfo({name})")).unwrap();
                let cols: Vec<String> = cols
                    .query_map([], |r| Ok(format!("  {:?}", r.get::<_, Option<String>>(2)?)))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                out.extend(cols);
            }
        }
        out
    }

    #[test]
    fn the_steps_give_the_schema_that_schema_sql_documents() {
        let migrated = Connection::open_in_memory().unwrap();
        migrate(&migrated, Path::new(":memory:")).unwrap();
        let documented = Connection::open_in_memory().unwrap();
        documented
            .execute_batch(include_str!("../../../schema.sql"))
            .unwrap();
        assert_eq!(shape(&migrated), shape(&documented));
        let version: i64 = migrated
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn migrating_twice_changes_nothing() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn, Path::new(":memory:")).unwrap();
        let once = shape(&conn);
        migrate(&conn, Path::new(":memory:")).unwrap();
        assert_eq!(shape(&conn), once);
    }

    #[test]
    fn a_version_1_file_is_brought_forward() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(STEPS[0]).unwrap();
        conn.execute_batch("PRAGMA user_version = 1").unwrap();
        migrate(&conn, Path::new(":memory:")).unwrap();
        let fresh = Connection::open_in_memory().unwrap();
        migrate(&fresh, Path::new(":memory:")).unwrap();
        assert_eq!(shape(&conn), shape(&fresh));
    }
}
