//! The SQLite backend: all of notifyctl's SQL for a single file, one module per table
//! group, each implementing its part of the [`Ops`](super::Ops) traits.
//!
//! Concurrency model: WAL mode, so readers never block the tick; a busy timeout, so a
//! second writer waits instead of failing; and every read-decide-write sequence runs in a
//! `BEGIN IMMEDIATE` transaction ([`Store::transaction`]), so two processes cannot both
//! decide on the same stale read (double booking, duplicate reminders, double claims).
//!
//! Instants are stored as RFC 3339 UTC text with second precision, which sorts as time.

mod agenda;
mod deliveries;
mod events;
mod maintenance;
mod migrations;
mod notifications;
mod reminders;
mod ticks;
mod users;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, Row};

use super::{BrokenRow, OpenMode, OpenOptions, Ops, PruneCounts, Store};
use crate::error::user_error;

pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// During a bulk write: the triggers suspended (their SQL, to restore them) and the
    /// last event inserted (its id and busy hours), for the index kept directly meanwhile.
    bulk: Option<Bulk>,
    /// While a tick sends: the thread that checkpoints meanwhile.
    checkpointer: Option<Checkpointer>,
}

/// Pages of write-ahead log after which a commit copies the log into the database (an
/// automatic checkpoint), unless a [`Checkpointer`] does it aside.
const AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// How often the checkpointing thread copies what the log holds.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

/// Pages of log after which the checkpointing thread also starts it again from its
/// beginning (about 16 MiB).
const RESTART_AT_PAGES: i64 = 4_000;

/// One turn of the checkpointing thread: copy what the log holds into the database without
/// waiting for anyone (a passive checkpoint: the fsyncs happen here, not in a commit). A
/// log that writers never leave fully copied (a commit lands during every copy) is not
/// started again by itself: past [`RESTART_AT_PAGES`], a restarting checkpoint takes the
/// write lock if it is free at once (never waiting for it), copies the few pages committed
/// since, and starts the log again. Best effort: what fails now is done at a later turn (or
/// by the automatic checkpoints, once the thread has stopped).
fn checkpoint(conn: &Connection) {
    let log = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1));
    if log.is_ok_and(|pages| pages >= RESTART_AT_PAGES) {
        let _ = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()));
    }
}

/// A thread with a connection of its own that copies the write-ahead log into the database
/// every [`CHECKPOINT_EVERY`] (passive checkpoints: they wait for no reader or writer),
/// while the store's own connection commits without checkpointing. A busy tick's commits
/// waited about 100 ms for each automatic checkpoint's fsync of the log (0.35 s of a 2.7 s
/// tick of 10,000 messages), and the workers waited with them for their outcomes to be
/// committed. A log fully copied is started again from its beginning by the next commit,
/// as with automatic checkpoints.
struct Checkpointer {
    /// Set to stop the thread, which waits on the condition variable in between.
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path) -> anyhow::Result<Checkpointer> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        // Never wait for the store's own connection (nor anyone else).
        conn.busy_timeout(Duration::ZERO)?;
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("checkpoints".into())
            .spawn(move || {
                let (lock, wake) = &*stopped;
                let Ok(mut stop) = lock.lock() else { return };
                while !*stop {
                    stop = match wake.wait_timeout(stop, CHECKPOINT_EVERY) {
                        Ok((stop, _)) => stop,
                        Err(_) => return,
                    };
                    // Best effort: a checkpoint that cannot run now runs at the next turn
                    // (or at the next automatic one, once this thread has stopped).
                    checkpoint(&conn);
                }
            })?;
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (lock, wake) = &*self.stop;
        if let Ok(mut stop) = lock.lock() {
            *stop = true;
        }
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Up to this much write-ahead log is left for the next process instead of being copied into
/// the database when the last connection closes (see `Drop`). The next process reads it back
/// frame by frame (about 1 ms per 512 KiB here), so it stays short: an idle tick adds about
/// 10 KiB, and one close in some twenty-five copies it.
const KEEP_WAL_BYTES: u64 = 256 << 10;

impl Drop for SqliteStore {
    /// The last connection to close copies the write-ahead log into the database, with two
    /// fsyncs, and deletes the `-wal` and `-shm` files, which the next process creates again:
    /// about 2 ms of every idle tick and booking on a virtual disk, more than the work itself.
    /// A short log (an idle tick adds a few pages) is left in place instead; the next process
    /// to open the file reads it back (SQLite's recovery), and the close after the log has
    /// grown past 256 KiB (or an automatic checkpoint) copies it. The
    /// commits themselves are as durable as before (WAL with `synchronous = NORMAL`: a
    /// process crash loses nothing; a power cut, the last seconds).
    ///
    /// Only when the files left behind are as usable by the database's other users as the
    /// database itself: a shared database in a directory without setgid would otherwise
    /// keep a `-shm` of this user's own group, and the web app could not open the file.
    fn drop(&mut self) {
        self.checkpoints_aside(false);
        if self.leaves_usable_short_log() {
            let _ = self
                .conn
                .set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true);
        }
    }
}

impl SqliteStore {
    fn leaves_usable_short_log(&self) -> bool {
        let sidecar = |suffix: &str| {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            std::fs::metadata(p)
        };
        let (Ok(wal), Ok(shm)) = (sidecar("-wal"), sidecar("-shm")) else {
            return false;
        };
        if wal.len() > KEEP_WAL_BYTES {
            return false;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let Ok(db) = std::fs::metadata(&self.path) else {
                return false;
            };
            // A private database (one user) needs nothing more; a group-shared one needs
            // sidecars of its group that the group can write.
            let shared = db.mode() & 0o077 != 0;
            let usable = |m: &std::fs::Metadata| m.gid() == db.gid() && m.mode() & 0o060 == 0o060;
            if shared && !(usable(&wal) && usable(&shm)) {
                return false;
            }
        }
        #[cfg(not(unix))]
        let _ = shm;
        true
    }
}

/// What a bulk write suspended and keeps track of (see `EventOps::bulk_writes`).
#[derive(Debug, Default)]
pub(crate) struct Bulk {
    triggers: Vec<String>,
    /// The last single event inserted: its id, start and end (Unix seconds).
    last_event: Option<(i64, i64, i64)>,
    /// After `defer_overlap_index`: the busy slots still to write, one per participant of
    /// a single event, written sorted by participant when the bulk write ends.
    deferred: Option<Vec<events::Booking>>,
    /// The busy index was empty when it was deferred (so it still is, for `find_overlap`).
    index_was_empty: bool,
}

/// The page cache (SQLite's negative `cache_size`: KiB), and while an import writes.
pub(super) const CACHE_KIB: i64 = -8192;
pub(super) const BULK_CACHE_KIB: i64 = -65536;

impl SqliteStore {
    pub fn open(path: &Path, options: OpenOptions) -> anyhow::Result<SqliteStore> {
        if !path.exists() {
            if options.mode != OpenMode::Create {
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
            return SqliteStore::connect(path, options).map_err(|e| {
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
        SqliteStore::connect(path, options)
    }

    fn connect(path: &Path, options: OpenOptions) -> anyhow::Result<SqliteStore> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .map_err(|e| match crate::fsperm::explain_open_failure(path) {
                Some(why) => anyhow::anyhow!("{why}; nothing was changed"),
                None => e.into(),
            })
            .with_context(|| format!("opening database {}", path.display()))?;
        conn.busy_timeout(options.busy_timeout)?;
        let mut store = SqliteStore {
            conn,
            path: path.to_path_buf(),
            bulk: None,
            checkpointer: None,
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

    fn configure(&mut self) -> anyhow::Result<()> {
        const _: () = assert!(CACHE_KIB < 0 && BULK_CACHE_KIB < 0);
        // A file that is not SQLite fails here, with SQLite's "file is not a database".
        let version: i64 = self.conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        migrations::refuse_newer(version, &self.path)?;
        migrations::refuse_foreign(&self.conn, version, &self.path)?;
        self.conn.execute_batch("PRAGMA foreign_keys = ON;")?;
        // WAL lets the web app read the inbox while a tick writes; NORMAL sync is durable
        // across process crashes (the failure the outbox guards against) and much faster.
        self.conn
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
        // A page cache of up to 8 MiB, allocated only as pages are read (the idle tick pays
        // nothing for it, and a listing that streams 200,000 events stays small); an import
        // raises it to 64 MiB while it writes (`bulk_writes`), so it no longer spills
        // modified pages to the WAL again and again (a third of an import's time went to
        // those writes). Statement journals (every INSERT that fires the schema's triggers
        // may have to roll back alone) in memory, not in a temporary file: 31 writes per
        // imported event otherwise.
        self.conn.execute_batch(&format!(
            "PRAGMA cache_size = {CACHE_KIB}; PRAGMA temp_store = MEMORY;"
        ))?;
        // Checkpoints every 10,000 WAL pages (about 40 MiB) instead of 1,000: each one costs
        // two fsyncs, and a busy tick that commits once per message (about eight pages
        // each) spent more time in those fsyncs than in SQL. Pages written again and again
        // (the outbox's indexes) are copied to the database once per checkpoint. The WAL
        // file is cut back to 16 MiB after a checkpoint resets it.
        self.conn.execute_batch(&format!(
            "PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_PAGES}; PRAGMA journal_size_limit = 16777216;"
        ))?;
        if version < migrations::SCHEMA_VERSION {
            migrations::migrate(&self.conn, &self.path)?;
        }
        Ok(())
    }

    /// Run `f` in a `BEGIN IMMEDIATE` transaction: the write lock is taken before the
    /// first read, so a decision and its write see the same state. Commits on `Ok`.
    fn with_write<T>(&mut self, f: impl FnOnce(&mut Self) -> anyhow::Result<T>) -> anyhow::Result<T> {
        // Cached statements: BEGIN and COMMIT run once per message in a busy tick.
        self.conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut s| s.execute([]))
            .map_err(|e| busy_hint(e, &self.path))?;
        // A panic inside `f` must not leave the connection inside a transaction.
        let result = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self))) {
            Ok(result) => result,
            Err(panic) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                self.bulk = None;
                std::panic::resume_unwind(panic);
            }
        };
        // Suspended triggers come back before the commit (a rollback restores them anyway).
        let result = match (result, self.bulk.is_some()) {
            (Ok(value), true) => self.end_bulk().map(|_| value),
            (other, _) => other,
        };
        self.bulk = None;
        match result {
            Ok(value) => match self.conn.prepare_cached("COMMIT").and_then(|mut s| s.execute([])) {
                Ok(_) => Ok(value),
                Err(e) => {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    Err(busy_hint(e, &self.path))
                }
            },
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }
}

impl Store for SqliteStore {
    fn ops(&mut self) -> &mut dyn Ops {
        self
    }

    /// Checkpoints on a [`Checkpointer`] thread, the automatic ones off meanwhile. When the
    /// thread cannot be started, commits go on checkpointing as usual.
    fn checkpoints_aside(&mut self, on: bool) {
        let pages = match (on, self.checkpointer.is_some()) {
            (true, false) => match Checkpointer::start(&self.path) {
                Ok(checkpointer) => {
                    self.checkpointer = Some(checkpointer);
                    0
                }
                Err(e) => {
                    tracing::debug!("checkpoints stay with the commits: {e:#}");
                    return;
                }
            },
            (false, true) => {
                self.checkpointer = None;
                AUTOCHECKPOINT_PAGES
            }
            _ => return,
        };
        if let Err(e) = self.conn.pragma_update(None, "wal_autocheckpoint", pages) {
            tracing::debug!("setting wal_autocheckpoint: {e:#}");
        }
    }

    fn transaction(&mut self, f: &mut dyn FnMut(&mut dyn Ops) -> anyhow::Result<()>) -> anyhow::Result<()> {
        self.with_write(|store| f(store))
    }

    fn schema_version(&mut self) -> anyhow::Result<i64> {
        Ok(self.conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    fn prune(&mut self, cutoff: DateTime<Utc>, dry_run: bool) -> anyhow::Result<PruneCounts> {
        maintenance::prune(self, cutoff, dry_run)
    }
}

/// Explain a busy or unwritable database in words an admin can act on.
pub(crate) fn busy_hint(e: rusqlite::Error, path: &Path) -> anyhow::Error {
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

pub(crate) fn ts(t: DateTime<Utc>) -> String {
    crate::input::rfc3339(t)
}

/// Read a stored instant: RFC 3339 (any offset, converted to UTC), or SQLite's own
/// `CURRENT_TIMESTAMP` form `2030-03-10 08:30:00` (with or without a `T`, optional
/// fractional seconds), which SQLite defines as UTC.
pub(crate) fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(s, f).ok())
        .map(|n| n.and_utc())
}

/// `?, ?, ?` for an `IN (...)` list of `n` bound parameters.
pub(crate) fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// Decodes one row column by column; a value of the wrong type or form becomes a
/// [`BrokenRow`] naming the table, the row, the column and the value.
pub(crate) struct Cols<'r, 's> {
    row: &'r Row<'s>,
    table: &'static str,
    id: RowName,
}

/// How a broken row is named in its report: written only when one is (a listing or a
/// tick decodes thousands of good rows, each naming itself for nothing otherwise).
enum RowName {
    /// "id N", from the key column.
    Key(usize),
    /// "event N participant M", from two columns.
    Pair(&'static str, usize, &'static str, usize),
    Text(String),
}

impl<'r, 's> Cols<'r, 's> {
    /// `id_col` is the index of the row's key (used to name it in reports).
    pub fn new(row: &'r Row<'s>, table: &'static str, id_col: usize) -> Cols<'r, 's> {
        Cols {
            row,
            table,
            id: RowName::Key(id_col),
        }
    }

    /// Name the row by a composite key, e.g. "event 4 participant 7".
    pub fn named(row: &'r Row<'s>, table: &'static str, id: String) -> Cols<'r, 's> {
        Cols {
            row,
            table,
            id: RowName::Text(id),
        }
    }

    /// Name the row by two of its columns: `first` the value at `a`, `second` the value at
    /// `b` ("event 4 participant 7").
    pub fn pair(
        row: &'r Row<'s>,
        table: &'static str,
        (first, a): (&'static str, usize),
        (second, b): (&'static str, usize),
    ) -> Cols<'r, 's> {
        Cols {
            row,
            table,
            id: RowName::Pair(first, a, second, b),
        }
    }

    fn row_name(&self) -> String {
        match &self.id {
            RowName::Key(i) => match self.row.get_ref(*i) {
                Ok(v) => format!("id {}", printable(v)),
                Err(_) => "(unknown id)".to_string(),
            },
            RowName::Pair(first, a, second, b) => match (self.row.get_ref(*a), self.row.get_ref(*b)) {
                (Ok(x), Ok(y)) => format!("{first} {} {second} {}", printable(x), printable(y)),
                _ => "(unknown)".to_string(),
            },
            RowName::Text(s) => s.clone(),
        }
    }

    /// The value at `idx` has the right type but a meaning it cannot have.
    pub fn invalid(&self, idx: usize, problem: &str) -> BrokenRow {
        self.broken(idx, problem)
    }

    fn broken(&self, idx: usize, problem: &str) -> BrokenRow {
        let column = self
            .row
            .as_ref()
            .column_name(idx)
            .map(str::to_string)
            .unwrap_or_else(|_| format!("#{idx}"));
        let value = self.row.get_ref(idx).map(printable).unwrap_or_default();
        BrokenRow {
            table: self.table,
            id: self.row_name(),
            column,
            problem: problem.to_string(),
            value,
        }
    }

    pub fn i64(&self, idx: usize) -> Result<i64, BrokenRow> {
        match self.row.get_ref(idx) {
            Ok(ValueRef::Integer(i)) => Ok(i),
            _ => Err(self.broken(idx, "not an integer")),
        }
    }

    pub fn opt_i64(&self, idx: usize) -> Result<Option<i64>, BrokenRow> {
        match self.row.get_ref(idx) {
            Ok(ValueRef::Null) => Ok(None),
            Ok(ValueRef::Integer(i)) => Ok(Some(i)),
            _ => Err(self.broken(idx, "not an integer")),
        }
    }

    pub fn bool(&self, idx: usize) -> Result<bool, BrokenRow> {
        match self.row.get_ref(idx) {
            Ok(ValueRef::Integer(0)) => Ok(false),
            Ok(ValueRef::Integer(1)) => Ok(true),
            _ => Err(self.broken(idx, "not 0 or 1")),
        }
    }

    pub fn opt_bool(&self, idx: usize) -> Result<Option<bool>, BrokenRow> {
        match self.row.get_ref(idx) {
            Ok(ValueRef::Null) => Ok(None),
            _ => self.bool(idx).map(Some),
        }
    }

    pub fn text(&self, idx: usize) -> Result<String, BrokenRow> {
        match self.row.get_ref(idx) {
            // A BLOB that holds UTF-8 is text an app wrote through the wrong binding.
            Ok(ValueRef::Text(t) | ValueRef::Blob(t)) => std::str::from_utf8(t)
                .map(str::to_string)
                .map_err(|_| self.broken(idx, "not valid UTF-8 text")),
            Ok(ValueRef::Null) => Err(self.broken(idx, "missing (NULL)")),
            _ => Err(self.broken(idx, "not text")),
        }
    }

    pub fn opt_text(&self, idx: usize) -> Result<Option<String>, BrokenRow> {
        match self.row.get_ref(idx) {
            Ok(ValueRef::Null) => Ok(None),
            _ => self.text(idx).map(Some),
        }
    }

    pub fn ts(&self, idx: usize) -> Result<DateTime<Utc>, BrokenRow> {
        let s = self.text(idx)?;
        parse_ts(&s).ok_or_else(|| self.broken(idx, "not a time like 2030-03-10T08:30:00Z"))
    }

    pub fn opt_ts(&self, idx: usize) -> Result<Option<DateTime<Utc>>, BrokenRow> {
        match self.row.get_ref(idx) {
            Ok(ValueRef::Null) => Ok(None),
            _ => self.ts(idx).map(Some),
        }
    }
}

/// A stored value as a short, printable string for a report.
pub(crate) fn printable(v: ValueRef) -> String {
    match v {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Text(t) => crate::input::printable(&String::from_utf8_lossy(t), 80),
        ValueRef::Blob(b) => format!("<{} byte blob>", b.len()),
    }
}

/// A `BrokenRow` as an `anyhow` error (for single-row reads where the caller needs the row).
pub(crate) fn broken(e: BrokenRow) -> anyhow::Error {
    anyhow::Error::new(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_row_is_named_by_its_key_columns() {
        let conn = Connection::open_in_memory().unwrap();
        let mut stmt = conn.prepare("SELECT 4, 7, 'soon', 'line\nbreak'").unwrap();
        let mut rows = stmt.query([]).unwrap();
        let r = rows.next().unwrap().unwrap();
        let b = Cols::pair(r, "events", ("event", 0), ("participant", 1))
            .ts(2)
            .unwrap_err();
        assert_eq!((b.table, b.id.as_str()), ("events", "event 4 participant 7"));
        assert_eq!(b.value, "soon");
        let b = Cols::new(r, "users", 0).ts(2).unwrap_err();
        assert_eq!(b.to_string().split(',').next(), Some("users id 4"));
        // A key that is itself hostile is shown printable, on one line.
        let b = Cols::new(r, "users", 3).ts(2).unwrap_err();
        assert!(!b.id.contains('\n'), "{}", b.id);
        let b = Cols::named(r, "reminders", "event 4".into()).ts(2).unwrap_err();
        assert_eq!(b.id, "event 4");
    }

    #[test]
    fn checkpoints_taken_aside_keep_the_log_short_and_commits_free_of_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let options = OpenOptions {
            mode: OpenMode::Create,
            busy_timeout: Duration::from_secs(5),
        };
        let mut store = SqliteStore::open(&path, options).unwrap();
        store.conn.execute_batch("CREATE TABLE t (x BLOB)").unwrap();
        let autocheckpoint = |s: &SqliteStore| -> i64 {
            s.conn
                .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
                .unwrap()
        };
        let wal_pages = || std::fs::metadata(dir.path().join("t.db-wal")).unwrap().len() / 4096;
        store.checkpoints_aside(true);
        assert_eq!(autocheckpoint(&store), 0, "the commits do not checkpoint");
        // 300 commits of 8 new pages each: 2,400 pages of log, written over about a second.
        // 400 commits of 32 new pages each: 12,800 pages of log (50 MiB), written over
        // about two seconds; with commits checkpointing, the log grows to 10,000 pages.
        for _ in 0..400 {
            store
                .conn
                .execute_batch(
                    "BEGIN IMMEDIATE;
                     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 32)
                     INSERT INTO t SELECT randomblob(3000) FROM n;
                     COMMIT;",
                )
                .unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        store.checkpoints_aside(false);
        assert_eq!(autocheckpoint(&store), i64::from(AUTOCHECKPOINT_PAGES));
        // The thread copied the log as it grew and started it again from its beginning.
        assert!(wal_pages() < 8_000, "{} pages of log", wal_pages());
        let rows: i64 = store
            .conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 400 * 32);
    }
}
