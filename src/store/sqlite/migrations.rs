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
    include_str!("migrations/006_people.sql"),
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
///
/// Foreign keys are off while the steps run (SQLite ignores the pragma inside a
/// transaction, so it is set around it): a step that rebuilds a table to change a CHECK
/// constraint drops the old table, which with foreign keys on would delete or null the rows
/// that refer to it. `foreign_key_check` then proves the steps left every reference whole
/// before anything is committed.
pub(super) fn migrate(conn: &Connection, path: &Path) -> anyhow::Result<()> {
    conn.execute_batch("PRAGMA foreign_keys = OFF")?;
    let result = migrate_steps(conn, path);
    conn.execute_batch("PRAGMA foreign_keys = ON")?;
    result
}

fn migrate_steps(conn: &Connection, path: &Path) -> anyhow::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| super::busy_hint(e, path))?;
    let steps = || -> anyhow::Result<()> {
        let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        refuse_newer(current, path)?;
        // An app writing without foreign keys may have left some already: only new ones
        // are the steps' doing.
        let dangling_before = dangling(conn)?;
        for (i, sql) in STEPS.iter().enumerate() {
            let version = i as i64 + 1;
            if current < version {
                conn.execute_batch(sql)
                    .with_context(|| format!("applying schema step {version}"))?;
            }
        }
        if dangling(conn)? > dangling_before {
            anyhow::bail!("the schema steps left references that point nowhere; nothing was changed");
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

/// References that point nowhere (`PRAGMA foreign_key_check`), counted.
fn dangling(conn: &Connection) -> anyhow::Result<usize> {
    let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
    let mut rows = stmt.query([])?;
    let mut n = 0;
    while rows.next()?.is_some() {
        n += 1;
    }
    Ok(n)
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

    /// Step 6 rebuilds notifications and deliveries (SQLite cannot change a CHECK): the
    /// rows, their ids and the references between them survive, and the cascades still work.
    #[test]
    fn step_6_keeps_every_notice_and_delivery() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        for step in &STEPS[..4] {
            conn.execute_batch(step).unwrap();
        }
        conn.execute_batch("PRAGMA user_version = 4").unwrap();
        let t = "2030-03-10T09:00:00Z";
        conn.execute_batch(&format!(
            "INSERT INTO users (id, email, name, created_at) VALUES (7, 'ana@example.org', 'Ana', '{t}');
             INSERT INTO events (id, title, starts_at, ends_at, armed_at, created_at, updated_at)
                  VALUES (3, 'Mentoring', '{t}', '2030-03-10T10:00:00Z', '{t}', '{t}', '{t}');
             INSERT INTO participants (event_id, user_id, added_at) VALUES (3, 7, '{t}');
             INSERT INTO notifications (id, user_id, kind, event_id, event_sequence, title, body, created_at, read_at)
                  VALUES (40, 7, 'assigned', 3, 0, 'New', 'Body', '{t}', '{t}');
             INSERT INTO deliveries (id, notification_id, channel, status, attempts, next_attempt_at, last_error,
                                     created_at, updated_at)
                  VALUES (90, 40, 'email', 'failed', 2, '{t}', 'SMTP 451', '{t}', '{t}');"
        ))
        .unwrap();
        migrate(&conn, Path::new(":memory:")).unwrap();
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let row: (i64, String, String, Option<String>) = conn
            .query_row(
                "SELECT d.id, d.status, n.title, n.read_at FROM deliveries d
                   JOIN notifications n ON n.id = d.notification_id WHERE n.user_id = 7",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(row, (90, "failed".into(), "New".into(), Some(t.into())));
        let foreign_keys: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
        assert_eq!(foreign_keys, 1, "back on after the steps");
        conn.execute_batch("DELETE FROM users WHERE id = 7").unwrap();
        let left: i64 = conn
            .query_row(
                "SELECT (SELECT count(*) FROM notifications) + (SELECT count(*) FROM deliveries)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0, "the cascades reach the rebuilt tables");
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
