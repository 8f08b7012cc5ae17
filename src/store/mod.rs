//! The only place with SQL: opening the file, pragmas, migrations, and one file per
//! table group. Functions take and return plain domain types; every statement binds its
//! parameters.
//!
//! Concurrency model: WAL mode, so readers never block the tick; a busy timeout, so a
//! second writer waits instead of failing; and every read-decide-write sequence runs in a
//! `BEGIN IMMEDIATE` transaction ([`Store::write`]), so two processes cannot both decide
//! on the same stale read (double booking, duplicate reminders, double claims).

mod deliveries;
mod events;
mod maintenance;
mod notifications;
mod reminders;
mod ticks;
mod users;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

pub use deliveries::{ClaimedDelivery, DeliveryCounts, DeliveryOutcome};
pub use events::{EventChanges, EventFilter, NewEvent};
pub use maintenance::PruneCounts;
pub use notifications::InboxFilter;
pub use reminders::{ReminderCandidate, SkippedCount};
pub use ticks::{TickRecord, TickSummary};
pub use users::UserChanges;

// Transaction-level functions for the domain code that composes them in one `write`.
pub(crate) use deliveries::{claim_due, load_claimed, record_outcome, release_claims, renew_claims};
pub(crate) use events::{
    bump_sequence, cancel_event, delete_participant, find_overlap, get_event, insert_event,
    insert_participant, update_event,
};
pub(crate) use notifications::insert_notice;
pub(crate) use reminders::{link_notification, record_decision};
pub(crate) use ticks::{finish_tick, start_tick};
pub(crate) use users::{find_user, get_user, insert_user};

use crate::error::user_error;

/// The schema this binary writes; `PRAGMA user_version` records what a file has.
pub const SCHEMA_VERSION: i64 = 1;
const SCHEMA: &str = include_str!("../../schema.sql");

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// Whether `open` may create a missing file (only `init` and `demo` do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    Create,
    Existing,
}

impl Store {
    pub fn open(path: &Path, mode: OpenMode, busy_timeout: Duration) -> anyhow::Result<Store> {
        let exists = path.exists();
        if !exists {
            if mode != OpenMode::Create {
                return Err(user_error(format!(
                    "database {} does not exist: run `notifyctl init` first (or pass --db / NOTIFYCTL_DB)",
                    path.display()
                )));
            }
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            if let Some(dir) = dir {
                if !dir.is_dir() {
                    return Err(user_error(format!(
                        "cannot create database {}: directory {} does not exist",
                        path.display(),
                        dir.display()
                    )));
                }
            }
            create_private_file(path).with_context(|| format!("creating database {}", path.display()))?;
            // A path SQLite cannot use (too long, ...) must not leave an empty file behind
            // that later commands would take for a database.
            return Store::connect(path, busy_timeout).map_err(|e| {
                remove_if_untouched(path, &e);
                match e.downcast_ref::<rusqlite::Error>() {
                    Some(sqlite) if sqlite.sqlite_error_code() == Some(rusqlite::ErrorCode::CannotOpen) => {
                        user_error(format!(
                            "cannot create database {}: SQLite cannot open this path{}; nothing was created",
                            path.display(),
                            path_length_hint(path)
                        ))
                    }
                    _ => e,
                }
            });
        }
        Store::connect(path, busy_timeout)
    }

    fn connect(path: &Path, busy_timeout: Duration) -> anyhow::Result<Store> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .map_err(|e| match crate::fsperm::explain_open_failure(path) {
                Some(why) => anyhow::anyhow!("{why}; nothing was changed"),
                None => e.into(),
            })
            .with_context(|| format!("opening database {}", path.display()))?;
        conn.busy_timeout(busy_timeout)?;
        let store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store
            .configure()
            .map_err(|e| match e.downcast::<rusqlite::Error>() {
                Ok(sqlite) => busy_hint(sqlite, path),
                Err(other) => other,
            })
            .with_context(|| format!("opening database {}", path.display()))?;
        Ok(store)
    }

    fn configure(&self) -> anyhow::Result<()> {
        // A file that is not SQLite fails here, with SQLite's "file is not a database".
        let version: i64 = self.conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(user_error(format!(
                "database {} has schema version {version}, newer than this notifyctl ({SCHEMA_VERSION}): upgrade notifyctl",
                self.path.display()
            )));
        }
        self.conn.execute_batch("PRAGMA foreign_keys = ON;")?;
        // WAL lets the web app read the inbox while a tick writes; NORMAL sync is durable
        // across process crashes (the failure the outbox guards against) and much faster.
        self.conn
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
        if version < SCHEMA_VERSION {
            self.migrate()?;
        }
        Ok(())
    }

    /// Bring an older file forward under the write lock, so two processes that start
    /// on an old file at once migrate it once. Each step is one transaction.
    fn migrate(&self) -> anyhow::Result<()> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| busy_hint(e, &self.path))?;
        let steps = || -> anyhow::Result<()> {
            let current: i64 = self.conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if current < 1 {
                self.conn.execute_batch(SCHEMA).context("applying schema.sql")?;
            }
            // Later versions add `if current < N { ... }` steps here.
            self.conn
                .execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
            Ok(())
        };
        match steps() {
            Ok(()) => {
                self.conn.execute_batch("COMMIT")?;
                Ok(())
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    pub fn schema_version(&self) -> anyhow::Result<i64> {
        Ok(self.conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Run `f` in a `BEGIN IMMEDIATE` transaction: the write lock is taken before the
    /// first read, so a decision and its write see the same state. Commits on `Ok`.
    pub fn write<T>(&mut self, f: impl FnOnce(&Transaction) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| busy_hint(e, &self.path))?;
        let value = f(&tx)?;
        tx.commit().map_err(|e| busy_hint(e, &self.path))?;
        Ok(value)
    }
}

/// Explain a busy database in words an admin can act on.
fn busy_hint(e: rusqlite::Error, path: &Path) -> anyhow::Error {
    if crate::error::is_busy(&e) {
        anyhow::Error::new(e).context(format!(
            "database {} is locked by another process for longer than the busy timeout ([database] busy_timeout); nothing was changed, try again",
            path.display()
        ))
    } else if matches!(
        e.sqlite_error_code(),
        Some(
            rusqlite::ErrorCode::ReadOnly
                | rusqlite::ErrorCode::CannotOpen
                | rusqlite::ErrorCode::PermissionDenied
        )
    ) {
        // SQLite needs to write the file and, for its -wal/-shm files, the directory: name
        // the one this user cannot write (often a -shm file the web app created).
        match crate::fsperm::explain_open_failure(path) {
            Some(why) => {
                log::debug!("SQLite: {e}");
                anyhow::anyhow!("{why}; nothing was changed")
            }
            None => anyhow::Error::new(e).context(format!(
                "database {} is read-only for this user: check the permissions of the file and its directory; nothing was changed",
                path.display()
            )),
        }
    } else {
        anyhow::Error::new(e)
    }
}

/// Create the database file readable by its owner only, or also by the directory's group
/// when the directory is setgid (shared on purpose, see `fsperm`); SQLite gives the -wal
/// and -shm files the same permissions.
#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mode = crate::fsperm::db_file_mode(path.parent().unwrap_or(Path::new("")));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    // Exactly this mode, whatever the umask (cron's 022 would drop the group's write).
    file.set_permissions(std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map(drop)
}

/// Remove the file `open` just created when opening it failed and nothing else has used
/// it since: not when another process holds it (busy) or has started a WAL on it.
fn remove_if_untouched(path: &Path, err: &anyhow::Error) {
    let busy = err.chain().any(|c| {
        c.downcast_ref::<rusqlite::Error>()
            .is_some_and(crate::error::is_busy)
    });
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let empty = std::fs::metadata(path).is_ok_and(|m| m.len() == 0);
    if !busy && empty && !Path::new(&wal).exists() {
        let _ = std::fs::remove_file(path);
    }
}

/// SQLite's Unix VFS refuses absolute paths that, with a `-journal` suffix, reach its
/// 512-byte limit.
fn path_length_hint(path: &Path) -> String {
    let len = std::path::absolute(path).map_or(0, |p| p.as_os_str().len());
    if len >= 504 {
        format!(" (the path is {len} bytes long; SQLite accepts at most 503)")
    } else {
        String::new()
    }
}

// Instants are stored as RFC 3339 UTC text with second precision.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    crate::input::rfc3339(t)
}

pub(crate) fn parse_ts(s: &str) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Text,
                format!("invalid instant '{s}': {e}").into(),
            )
        })
}

pub(crate) fn get_ts(row: &rusqlite::Row, idx: usize) -> rusqlite::Result<DateTime<Utc>> {
    parse_ts(&row.get::<_, String>(idx)?)
}

pub(crate) fn get_ts_opt(row: &rusqlite::Row, idx: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    row.get::<_, Option<String>>(idx)?
        .map(|s| parse_ts(&s))
        .transpose()
}

/// `?, ?, ?` for an `IN (...)` list of `n` bound parameters.
pub(crate) fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}
