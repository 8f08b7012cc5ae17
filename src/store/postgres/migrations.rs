//! Schema migrations for PostgreSQL: an append-only list of steps, each bringing the
//! schema `notifyctl` to a version, recorded as a row of `notifyctl.schema_migrations`.
//! A released step is never edited; a change is a new step at the end.
//!
//! Versions name the data contract, not the backend: version N here offers the tables
//! and meanings of SQLite's version N (`sqlite/migrations.rs`), so `init --json` says the
//! same `schema_version` on both, and a change to the contract is a step in both lists.
//! No PostgreSQL database was ever at versions 1 or 2: the first step goes to 3.
//!
//! Steps run in one transaction under a transaction-scoped advisory lock, so several
//! hosts running `init` (or opening an older schema) at once migrate it once: the others
//! wait for the lock, then find the work done.

use anyhow::Context;

use super::PgStore;
use crate::error::user_error;

/// (version, SQL) in order; `schema.postgres.sql` documents the result as a whole (a test
/// checks that both give the same catalog).
const STEPS: &[(i64, &str)] = &[
    (3, include_str!("migrations/003_initial.sql")),
    (4, include_str!("migrations/004_busy_index.sql")),
    (5, include_str!("migrations/005_rules.sql")),
    (6, include_str!("migrations/006_people.sql")),
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = STEPS[STEPS.len() - 1].0;

/// `pg_advisory_xact_lock` key of notifyctl's migrations ("notifyct" in ASCII).
const LOCK_KEY: i64 = 0x6e6f_7469_6679_6374;

/// The tables of the schema (a schema `notifyctl` that has one without our version
/// table is someone else's).
const TABLES: [&str; 10] = [
    "schema_migrations",
    "users",
    "events",
    "participants",
    "notifications",
    "deliveries",
    "reminders",
    "ticks",
    "preferences",
    "agenda_runs",
];

/// The version the database is at; 0 when it has no notifyctl schema.
pub(super) fn current_version(store: &mut PgStore) -> anyhow::Result<i64> {
    // Read from pg_class (an MVCC read: what is committed now), not with to_regclass: that
    // goes through the session's catalog cache, which can still say "no such table" right
    // after another process's migration committed while this one waited for the lock (the
    // wait on an advisory lock does not refresh the cache) — and `init` then took the new
    // schema for someone else's.
    let row = store.query_one(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                         WHERE n.nspname = 'notifyctl' AND c.relname = 'schema_migrations')",
        &[],
    )?;
    if !row.try_get::<_, bool>(0)? {
        return Ok(0);
    }
    let row = store.query_one(
        "SELECT coalesce(max(version), 0) FROM notifyctl.schema_migrations",
        &[],
    )?;
    Ok(row.try_get(0)?)
}

pub(super) fn refuse_newer(version: i64, shown: &str) -> anyhow::Result<()> {
    if version > SCHEMA_VERSION {
        return Err(user_error(format!(
            "database {shown} has schema version {version}, newer than this notifyctl ({SCHEMA_VERSION}): upgrade notifyctl"
        )));
    }
    Ok(())
}

/// Bring the schema to [`SCHEMA_VERSION`] under the migration lock; true when it was
/// created (there was no schema when the lock was ours).
pub(super) fn migrate(store: &mut PgStore) -> anyhow::Result<bool> {
    store.with_transaction(|s| {
        s.simple(&format!("SELECT pg_advisory_xact_lock({LOCK_KEY})"))?;
        let current = current_version(s)?;
        refuse_newer(current, &s.shown)?;
        if current == SCHEMA_VERSION {
            return Ok(false);
        }
        if current == 0 {
            refuse_foreign(s)?;
            require_btree_gist(s)?;
        }
        for (version, sql) in STEPS.iter().filter(|(v, _)| *v > current) {
            let shown = s.shown.clone();
            s.simple(sql).with_context(|| {
                format!("creating notifyctl's schema in {shown} (step to version {version})")
            })?;
            s.execute(
                "INSERT INTO notifyctl.schema_migrations (version) VALUES ($1)",
                &[version],
            )?;
        }
        Ok(current == 0)
    })
}

/// A schema named `notifyctl` without our version table but with a table of ours is not
/// ours: refuse before writing anything to it.
fn refuse_foreign(store: &mut PgStore) -> anyhow::Result<()> {
    let names: Vec<String> = TABLES.iter().map(|t| t.to_string()).collect();
    let rows = store.query(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'notifyctl' AND c.relname = ANY($1) ORDER BY c.relname",
        &[&names],
    )?;
    if let Some(row) = rows.first() {
        let table: String = row.try_get(0)?;
        return Err(user_error(format!(
            "the schema notifyctl in {} already has a table named {table} that notifyctl did not create: \
             notifyctl needs that schema for itself (use another database, or rename that schema)",
            store.shown
        )));
    }
    Ok(())
}

/// The exclusion constraint needs the `btree_gist` extension: say so plainly when the
/// server does not have it at all (it is part of PostgreSQL's contrib).
fn require_btree_gist(store: &mut PgStore) -> anyhow::Result<()> {
    let row = store.query_one(
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'btree_gist')",
        &[],
    )?;
    if !row.try_get::<_, bool>(0)? {
        return Err(user_error(format!(
            "the PostgreSQL server of {} has no btree_gist extension, which notifyctl's double-booking constraint needs: \
             install PostgreSQL's contrib extensions on the server (Debian: postgresql, RHEL: postgresql-contrib), then run `notifyctl init` again",
            store.shown
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_append_only_in_version_order() {
        assert!(STEPS.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(SCHEMA_VERSION, 6);
    }

    /// Without a server at hand, a cheap cross-check (the end-to-end suite compares the
    /// catalogs both give on a real server): every index a step creates is documented.
    #[test]
    fn every_index_the_steps_create_is_documented() {
        let documented = include_str!("../../../schema.postgres.sql");
        for (version, sql) in STEPS {
            for line in sql
                .lines()
                .filter(|l| l.starts_with("CREATE INDEX") || l.starts_with("CREATE UNIQUE INDEX"))
            {
                assert!(documented.contains(line), "step {version}: {line}");
            }
        }
    }
}
