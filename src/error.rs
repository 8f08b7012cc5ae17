//! Errors a user can fix versus internal failures, and the exit code of each.
//!
//! Exit codes are decided here only: 0 success, 1 an internal or I/O failure, 2 bad input
//! (usage, unknown user, malformed time, broken config), 3 a failed health check
//! (`status`), 4 the database is busy or locked by another writer (SQLite's busy timeout,
//! PostgreSQL's `lock_timeout`).

use std::process::ExitCode;

/// A failure the user can fix by changing their input. Its message names what is wrong
/// and, where it helps, what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UserError(pub String);

/// Build a [`UserError`] wrapped in `anyhow::Error`.
pub fn user_error(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UserError(msg.into()))
}

/// `return Err(user_error(...))` shorthand.
#[macro_export]
macro_rules! bail_user {
    ($($arg:tt)*) => {
        return Err($crate::error::user_error(format!($($arg)*)))
    };
}

/// A health check that did not pass; its message is printed, the exit code is 3.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CheckFailed(pub String);

/// Writing the command's output to stdout failed (not a closed pipe, which is fine): the
/// user did not get what they asked for, so the run is not a success.
#[derive(Debug, thiserror::Error)]
#[error("writing to standard output: {0}")]
pub struct OutputFailed(pub std::io::Error);

pub const EXIT_OK: u8 = 0;
pub const EXIT_INTERNAL: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_CHECK: u8 = 3;
pub const EXIT_BUSY: u8 = 4;

/// Every exit code and its meaning, as the man page's EXIT STATUS section shows them.
pub const EXIT_CODES: &[(u8, &str)] = &[
    (
        EXIT_OK,
        "Success. A tick whose failed deliveries will be retried also exits 0 and says so in its summary.",
    ),
    (
        EXIT_INTERNAL,
        "An internal or I/O failure, including output that could not be written to stdout.",
    ),
    (
        EXIT_USAGE,
        "Bad input: usage, unknown user, malformed time, broken config, missing database or secret.",
    ),
    (
        EXIT_CHECK,
        "A failed check (status, config check), or a tick that finished but needs a person: deliveries went dead, a channel could not be used, the clock is behind the last tick, or history was left for the next tick.",
    ),
    (
        EXIT_BUSY,
        "The database stayed locked by another writer past [database] busy_timeout; nothing was changed.",
    ),
    (
        130,
        "Stopped by Ctrl-C (SIGINT) at a safe point: the message in flight was finished, the rest given back.",
    ),
    (
        143,
        "Stopped by SIGTERM (systemctl stop, shutdown) at a safe point, likewise. A second signal stops at once.",
    ),
];

/// The exit code of a command line clap refused (usage) or answered itself (--help, --version).
pub fn clap_exit_code(err: &clap::Error) -> ExitCode {
    ExitCode::from(if err.use_stderr() { EXIT_USAGE } else { EXIT_OK })
}

pub fn exit_code(err: &anyhow::Error) -> ExitCode {
    if let Some(i) = err
        .chain()
        .find_map(|c| c.downcast_ref::<crate::interrupt::Interrupted>())
    {
        // The shell convention for a run stopped by a signal: 128 + its number.
        return ExitCode::from(u8::try_from(128 + i.0).unwrap_or(EXIT_INTERNAL));
    }
    ExitCode::from(classify(err))
}

/// The exit code for an error: the first cause in the chain that decides one.
pub fn classify(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.is::<UserError>() {
            return EXIT_USAGE;
        }
        if cause.is::<CheckFailed>() {
            return EXIT_CHECK;
        }
        if cause.is::<OutputFailed>() {
            return EXIT_INTERNAL;
        }
        if let Some(e) = cause.downcast_ref::<rusqlite::Error>() {
            if is_busy(e) {
                return EXIT_BUSY;
            }
        }
        // PostgreSQL's lock_timeout ran out (SQLSTATE 55P03): busy, as SQLite's busy timeout.
        if let Some(e) = cause.downcast_ref::<postgres::Error>() {
            if e.code() == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE) {
                return EXIT_BUSY;
            }
        }
        if let Some(e) = cause.downcast_ref::<crate::store::postgres::DbFailure>() {
            if e.code() == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE) {
                return EXIT_BUSY;
            }
        }
    }
    EXIT_INTERNAL
}

/// True when SQLite gave up waiting for another connection's lock.
pub fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked)
    )
}
