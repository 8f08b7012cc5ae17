//! The PostgreSQL backend: all of notifyctl's SQL for a server that several hosts share,
//! one module per table group (as `sqlite/`), each implementing its part of the
//! [`Ops`](super::Ops) traits. `connect` (with `url` and `tls`) opens the session.
//!
//! Everything lives in the schema `notifyctl` (`schema.postgres.sql` documents it), and
//! our sessions read it through `search_path = notifyctl, pg_temp`; the web app's own
//! tables are never named.
//!
//! Concurrency model. Transactions run at READ COMMITTED, and every guarantee that
//! SQLite gets from its single writer comes from the database instead, so that any number
//! of hosts can work at once without a lock file or a leader:
//! - exactly once: unique keys, written with `INSERT ... ON CONFLICT DO NOTHING` (a unique
//!   violation caught inside a PostgreSQL transaction would abort it);
//! - one tick per delivery: claims take rows `FOR UPDATE SKIP LOCKED` in a materialised
//!   CTE, and outcomes are fenced by the claim's owner (a tick's unique key);
//! - no double booking: an exclusion constraint over each participant's time slot, which
//!   binds the web app's own inserts too;
//! - serialization failures and deadlocks roll back and run the transaction again, a
//!   bounded number of times ([`Store::transaction`]'s contract allows it).
//!
//! Instants are `timestamptz(0)`: whole seconds, as on SQLite, so keys and JSON agree.

mod agenda;
pub mod connect;
mod deliveries;
mod events;
mod maintenance;
mod migrations;
mod notifications;
mod reminders;
mod ticks;
mod tls;
mod url;
mod users;

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use ::postgres::error::SqlState;
use ::postgres::fallible_iterator::FallibleIterator;
use ::postgres::types::{FromSql, ToSql, Type};
use ::postgres::{Client, Row, Statement};
use chrono::{DateTime, TimeDelta, Utc};

use self::connect::{ConnectOptions, PgUrl};
use super::{BrokenRow, OpenMode, OpenOptions, Ops, PruneCounts, Store};
use crate::clock::Clock;
use crate::error::user_error;

pub use self::migrations::SCHEMA_VERSION;

/// Query parameters as the `postgres` client takes them.
type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// How many times a transaction runs when it keeps meeting serialization failures or
/// deadlocks (each a normal outcome under concurrency, resolved by running it again).
const ATTEMPTS: u32 = 5;

pub struct PgStore {
    client: Client,
    /// The URL, password masked, for messages.
    shown: String,
    /// Prepared statements by their SQL: one round trip per statement afterwards.
    statements: HashMap<String, Statement>,
    clock_offset: TimeDelta,
    created: bool,
    in_transaction: bool,
    /// A statement failed inside the current transaction (PostgreSQL then refuses every
    /// other statement until the rollback): committing must not pretend otherwise.
    failed: bool,
}

impl PgStore {
    /// Connect (see [`connect`]), measure the server's clock, and create or migrate the
    /// schema: only with [`OpenMode::Create`] when there is none yet.
    pub fn open(url: &str, options: OpenOptions) -> anyhow::Result<PgStore> {
        let opts = ConnectOptions::from_env(options.busy_timeout);
        let parsed = PgUrl::parse(url, &opts.default_user)?;
        let client = connect::connect_url(&parsed, &opts)?;
        let mut store = PgStore {
            client,
            shown: parsed.to_string(),
            statements: HashMap::new(),
            clock_offset: TimeDelta::zero(),
            created: false,
            in_transaction: false,
            failed: false,
        };
        store.simple("SET search_path = notifyctl, pg_temp")?;
        store.clock_offset = store.measure_clock()?;
        let version = migrations::current_version(&mut store)?;
        migrations::refuse_newer(version, &store.shown)?;
        if version == 0 && options.mode != OpenMode::Create {
            return Err(user_error(format!(
                "the notifyctl schema in {} does not exist: run `notifyctl init` first (or pass --db / NOTIFYCTL_DB)",
                store.shown
            )));
        }
        if version < SCHEMA_VERSION {
            store.created = migrations::migrate(&mut store)?;
        }
        Ok(store)
    }

    /// The database's clock minus ours, logged when it matters.
    fn measure_clock(&mut self) -> anyhow::Result<TimeDelta> {
        let offset = Clock::offset_of(|| {
            let row = self.query_one("SELECT clock_timestamp()", &[])?;
            Ok(row.try_get::<_, DateTime<Utc>>(0)?)
        })?;
        if offset.abs() > TimeDelta::seconds(30) {
            log::warn!(
                "this host's clock is {}s off the database's: notifyctl uses the database's time",
                -offset.num_seconds()
            );
        } else {
            log::debug!("database clock offset: {} ms", offset.num_milliseconds());
        }
        Ok(offset)
    }

    /// A statement without parameters or results, by the simple protocol.
    fn simple(&mut self, sql: &str) -> anyhow::Result<()> {
        let result = self.client.batch_execute(sql);
        result.map_err(|e| self.fail(e))
    }

    fn prepared(&mut self, sql: &str) -> anyhow::Result<Statement> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let result = self.client.prepare(sql);
        let statement = result.map_err(|e| self.fail(e))?;
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    fn query(&mut self, sql: &str, params: Params) -> anyhow::Result<Vec<Row>> {
        let statement = self.prepared(sql)?;
        let result = self.client.query(&statement, params);
        result.map_err(|e| self.fail(e))
    }

    fn query_opt(&mut self, sql: &str, params: Params) -> anyhow::Result<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    fn query_one(&mut self, sql: &str, params: Params) -> anyhow::Result<Row> {
        self.query_opt(sql, params)?
            .ok_or_else(|| anyhow::anyhow!("no row from PostgreSQL for: {}", first_line(sql)))
    }

    fn execute(&mut self, sql: &str, params: Params) -> anyhow::Result<u64> {
        let statement = self.prepared(sql)?;
        let result = self.client.execute(&statement, params);
        result.map_err(|e| self.fail(e))
    }

    /// Run a query and hand its rows to `each` as they arrive (memory stays flat).
    fn stream(
        &mut self,
        sql: &str,
        params: Params,
        mut each: impl FnMut(&Row) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let statement = self.prepared(sql)?;
        let mut failure = None;
        let mut stopped = None;
        match self.client.query_raw(&statement, params.iter().copied()) {
            Ok(mut rows) => loop {
                match rows.next() {
                    Ok(Some(row)) => {
                        if let Err(e) = each(&row) {
                            stopped = Some(e);
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            },
            Err(e) => failure = Some(e),
        }
        if let Some(e) = failure {
            return Err(self.fail(e));
        }
        stopped.map_or(Ok(()), Err)
    }

    /// Run `f` in a transaction, committed on `Ok`; again (up to [`ATTEMPTS`] times) after a
    /// serialization failure or a deadlock.
    fn with_transaction<T>(
        &mut self,
        mut f: impl FnMut(&mut Self) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let mut attempt = 1;
        loop {
            match self.transaction_once(&mut f) {
                Err(e) if attempt < ATTEMPTS && connect::is_retryable(&e) => {
                    log::debug!("transaction attempt {attempt} met a conflict, running it again: {e:#}");
                    std::thread::sleep(retry_pause(attempt));
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    fn transaction_once<T>(
        &mut self,
        f: &mut impl FnMut(&mut Self) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        if self.in_transaction {
            // Nested use (a backend helper inside a transaction): part of the outer one.
            return f(self);
        }
        self.simple("BEGIN ISOLATION LEVEL READ COMMITTED")?;
        self.in_transaction = true;
        self.failed = false;
        // A panic inside `f` must not leave the session inside a transaction.
        let result = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self))) {
            Ok(result) => result,
            Err(panic) => {
                self.end_transaction("ROLLBACK");
                std::panic::resume_unwind(panic);
            }
        };
        let result = match result {
            Ok(_) if self.failed => Err(anyhow::anyhow!(
                "a statement failed inside the transaction and its error was not passed on: nothing was changed"
            )),
            other => other,
        };
        match result {
            Ok(value) => {
                self.in_transaction = false;
                self.simple("COMMIT")?;
                Ok(value)
            }
            Err(e) => {
                self.end_transaction("ROLLBACK");
                Err(e)
            }
        }
    }

    fn end_transaction(&mut self, how: &str) {
        self.in_transaction = false;
        self.failed = false;
        // The session may be gone; the error that brought us here is the one to report.
        let _ = self.client.batch_execute(how);
    }

    /// Run `f` so that a failure of its statements undoes only them (a savepoint), and
    /// the transaction goes on; outside a transaction, just `f`.
    fn undo_on_error<T>(&mut self, f: impl FnOnce(&mut Self) -> anyhow::Result<T>) -> anyhow::Result<T> {
        if !self.in_transaction {
            return f(self);
        }
        self.simple("SAVEPOINT notifyctl_step")?;
        match f(self) {
            Ok(value) => {
                self.simple("RELEASE SAVEPOINT notifyctl_step")?;
                Ok(value)
            }
            Err(e) => {
                self.simple("ROLLBACK TO SAVEPOINT notifyctl_step")?;
                self.simple("RELEASE SAVEPOINT notifyctl_step")?;
                self.failed = false;
                Err(e)
            }
        }
    }

    /// A failed statement as an error: one line (the server's message and detail), with
    /// what it means for the user on top, and the SQLSTATE kept for the exit code.
    fn fail(&mut self, e: ::postgres::Error) -> anyhow::Error {
        if self.in_transaction {
            self.failed = true;
        }
        let code = e.code().cloned();
        let closed = e.is_closed() || (e.as_db_error().is_none() && is_io(&e));
        let failure = anyhow::Error::new(DbFailure::new(e));
        let shown = &self.shown;
        match code {
            Some(SqlState::LOCK_NOT_AVAILABLE) => failure.context(format!(
                "database {shown} is locked by another process for longer than the lock timeout ([database] busy_timeout); nothing was changed, try again"
            )),
            Some(SqlState::QUERY_CANCELED) => failure.context(format!(
                "a statement on {shown} ran longer than notifyctl's statement timeout and was stopped; nothing was changed"
            )),
            Some(SqlState::INSUFFICIENT_PRIVILEGE) => user_error(format!(
                "PostgreSQL refused notifyctl's role a privilege on {shown}: {}: grant the privileges the README lists (PostgreSQL section)",
                one_line_of(&failure)
            )),
            Some(SqlState::UNDEFINED_TABLE | SqlState::INVALID_SCHEMA_NAME | SqlState::UNDEFINED_FUNCTION) => {
                user_error(format!(
                    "notifyctl's tables in {shown} are missing or incomplete ({}): run `notifyctl init`",
                    one_line_of(&failure)
                ))
            }
            Some(code) if code.code().starts_with("08") || code.code().starts_with("57P") => {
                failure.context(format!("lost the connection to PostgreSQL at {shown}"))
            }
            _ if closed => failure.context(format!("lost the connection to PostgreSQL at {shown}")),
            _ => failure,
        }
    }
}

fn first_line(sql: &str) -> &str {
    sql.trim().lines().next().unwrap_or("")
}

fn is_io(e: &::postgres::Error) -> bool {
    std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}

fn one_line_of(e: &anyhow::Error) -> String {
    e.to_string()
}

/// A short pause before running a transaction again, longer each time and jittered so
/// that hosts that collided once do not collide again.
fn retry_pause(attempt: u32) -> Duration {
    let mut byte = [0u8; 1];
    let jitter = getrandom::getrandom(&mut byte).map_or(0, |_| u64::from(byte[0]) % 20);
    Duration::from_millis(10 * u64::from(attempt) + jitter)
}

/// A statement PostgreSQL refused, as one printable line (the client's own error spreads
/// the server's DETAIL and HINT over several lines). The SQLSTATE decides the exit code
/// (`error::classify`) and whether a transaction may run again.
#[derive(Debug)]
pub struct DbFailure {
    code: Option<SqlState>,
    message: String,
}

impl DbFailure {
    fn new(e: ::postgres::Error) -> DbFailure {
        let message = match e.as_db_error() {
            Some(db) => {
                let mut m = format!("{}: {}", db.severity(), db.message());
                if let Some(detail) = db.detail() {
                    m.push_str(&format!(" ({detail})"));
                }
                m
            }
            None => match std::error::Error::source(&e) {
                Some(source) => format!("{e}: {source}"),
                None => e.to_string(),
            },
        };
        DbFailure {
            code: e.code().cloned(),
            message: crate::input::printable(&message, 400),
        }
    }

    pub fn code(&self) -> Option<&SqlState> {
        self.code.as_ref()
    }
}

impl fmt::Display for DbFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DbFailure {}

impl Store for PgStore {
    fn ops(&mut self) -> &mut dyn Ops {
        self
    }

    fn transaction(&mut self, f: &mut dyn FnMut(&mut dyn Ops) -> anyhow::Result<()>) -> anyhow::Result<()> {
        self.with_transaction(|store| f(store))
    }

    fn schema_version(&mut self) -> anyhow::Result<i64> {
        migrations::current_version(self)
    }

    fn prune(&mut self, cutoff: DateTime<Utc>, dry_run: bool) -> anyhow::Result<PruneCounts> {
        maintenance::prune(self, cutoff, dry_run)
    }

    fn clock_offset(&self) -> Option<TimeDelta> {
        Some(self.clock_offset)
    }

    fn created_schema(&self) -> bool {
        self.created
    }
}

/// Any value, captured as the server sent it, to show in a report.
struct Shown(String);

impl<'a> FromSql<'a> for Shown {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Shown, Box<dyn std::error::Error + Sync + Send>> {
        let shown = match *ty {
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                crate::input::printable(&String::from_utf8_lossy(raw), 80)
            }
            Type::INT8 => i64::from_sql(ty, raw)?.to_string(),
            Type::INT4 => i32::from_sql(ty, raw)?.to_string(),
            Type::INT2 => i16::from_sql(ty, raw)?.to_string(),
            Type::BOOL => bool::from_sql(ty, raw)?.to_string(),
            Type::TIMESTAMPTZ => match DateTime::<Utc>::from_sql(ty, raw) {
                Ok(t) => crate::input::rfc3339(t),
                Err(_) => "<a time out of range>".to_string(),
            },
            _ => format!("<{} value>", ty.name()),
        };
        Ok(Shown(shown))
    }

    fn from_sql_null(_: &Type) -> Result<Shown, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Shown("NULL".into()))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Decodes one row column by column; a value that cannot be read as what it should be
/// becomes a [`BrokenRow`] naming the table, the row, the column and the value. With
/// typed columns, constraints and checks, few can be (a NULL the app wrote where a join
/// expects a value, text that is not UTF-8 in a `SQL_ASCII` database, an instant beyond
/// what this program can represent), but none of them may panic or stop the others.
pub(crate) struct Cols<'r> {
    row: &'r Row,
    table: &'static str,
    id: String,
}

impl<'r> Cols<'r> {
    /// `id_col` is the index of the row's key (used to name it in reports).
    pub fn new(row: &'r Row, table: &'static str, id_col: usize) -> Cols<'r> {
        let id = match row.try_get::<_, Shown>(id_col) {
            Ok(Shown(v)) => format!("id {v}"),
            Err(_) => "(unknown id)".to_string(),
        };
        Cols { row, table, id }
    }

    /// Name the row by a composite key, e.g. "event 4 participant 7".
    pub fn named(row: &'r Row, table: &'static str, id: String) -> Cols<'r> {
        Cols { row, table, id }
    }

    /// The value at `idx` has the right type but a meaning it cannot have.
    pub fn invalid(&self, idx: usize, problem: &str) -> BrokenRow {
        let column = self
            .row
            .columns()
            .get(idx)
            .map(|c| c.name().to_string())
            .unwrap_or_else(|| format!("#{idx}"));
        let value = self.row.try_get::<_, Shown>(idx).map(|s| s.0).unwrap_or_default();
        BrokenRow {
            table: self.table,
            id: self.id.clone(),
            column,
            problem: problem.to_string(),
            value,
        }
    }

    fn get<'a, T: FromSql<'a>>(&'a self, idx: usize, problem: &str) -> Result<T, BrokenRow> {
        self.row.try_get::<_, T>(idx).map_err(|_| {
            let null = matches!(self.row.try_get::<_, Shown>(idx), Ok(Shown(ref v)) if v == "NULL");
            self.invalid(idx, if null { "missing (NULL)" } else { problem })
        })
    }

    pub fn i64(&self, idx: usize) -> Result<i64, BrokenRow> {
        self.get(idx, "not an integer")
    }

    pub fn opt_i64(&self, idx: usize) -> Result<Option<i64>, BrokenRow> {
        self.get(idx, "not an integer")
    }

    pub fn bool(&self, idx: usize) -> Result<bool, BrokenRow> {
        self.get(idx, "not true or false")
    }

    pub fn opt_bool(&self, idx: usize) -> Result<Option<bool>, BrokenRow> {
        self.get(idx, "not true or false")
    }

    pub fn text(&self, idx: usize) -> Result<String, BrokenRow> {
        self.get(idx, "not valid UTF-8 text")
    }

    pub fn opt_text(&self, idx: usize) -> Result<Option<String>, BrokenRow> {
        self.get(idx, "not valid UTF-8 text")
    }

    pub fn ts(&self, idx: usize) -> Result<DateTime<Utc>, BrokenRow> {
        self.get(idx, "not a time this program can represent")
    }

    pub fn opt_ts(&self, idx: usize) -> Result<Option<DateTime<Utc>>, BrokenRow> {
        self.get(idx, "not a time this program can represent")
    }

    pub fn opt_date(&self, idx: usize) -> Result<Option<chrono::NaiveDate>, BrokenRow> {
        self.get(idx, "not a date this program can represent")
    }

    /// An array column that may be NULL.
    pub fn opt_vec<'a, T: FromSql<'a>>(&'a self, idx: usize) -> Result<Option<Vec<T>>, BrokenRow> {
        self.get::<Option<Vec<T>>>(idx, "not an array of the expected values")
    }

    /// An array column (NULL: empty).
    pub fn vec<'a, T: FromSql<'a>>(&'a self, idx: usize) -> Result<Vec<T>, BrokenRow> {
        self.get::<Option<Vec<T>>>(idx, "not an array of the expected values")
            .map(Option::unwrap_or_default)
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
    fn retry_pauses_grow_and_stay_short() {
        assert!(retry_pause(1) < Duration::from_millis(40));
        assert!(retry_pause(4) >= Duration::from_millis(40));
        assert!(retry_pause(4) < Duration::from_millis(70));
    }
}
