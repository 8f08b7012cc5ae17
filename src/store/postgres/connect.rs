//! Connecting to PostgreSQL the way libpq does, with the synchronous `postgres` client, and
//! turning every way that fails into a one-line message.
//!
//! **Why we parse the URL ourselves** ([`PgUrl`]): the `postgres` crate's parser knows only
//! `sslmode=disable|prefer|require`, never reads `PGPASSWORD`, and echoes what it could not
//! parse. Users write URLs for libpq (`psql`, their web app), so the same URL must mean the
//! same thing here, and an error must never show the password.
//!
//! **What each `sslmode` does** (as in libpq; a Unix socket never uses TLS, whatever the mode):
//! - `disable`: plain TCP.
//! - `allow`: plain first; TLS (unverified) only if the server refuses the plain connection.
//! - `prefer` (the default): TLS if the server offers it, else plain; the certificate is not
//!   checked, so this protects only against passive eavesdropping.
//! - `require`: TLS or fail, certificate not checked, unless `sslrootcert` is given: then
//!   the chain is verified as for `verify-ca` (libpq's rule).
//! - `verify-ca`: TLS, the chain must lead to a CA in `sslrootcert` (or the system store);
//!   the host name is not compared.
//! - `verify-full`: as `verify-ca`, and the certificate must name the host in the URL.
//!
//! `sslrootcert=system` (libpq 16) uses the operating system's CA store and implies
//! `verify-full`; without `sslrootcert`, the verifying modes use the system store too
//! (libpq would look for `~/.postgresql/root.crt` and fail without it).
//!
//! **Never a hung cron job.** The `postgres` crate's `connect_timeout` bounds only the TCP
//! connect: a server that accepts the connection and then says nothing (a stuck server, a
//! wrong port, a firewall that swallows packets after the handshake) would block the TLS
//! and startup exchange forever. So the whole attempt runs on a helper thread and we stop
//! waiting for it at the deadline; the abandoned attempt dies with the process. Once
//! connected, session limits (`statement_timeout`, `lock_timeout`,
//! `idle_in_transaction_session_timeout`) make sure notifyctl cannot hold the web app's
//! rows for long, and `TimeZone=UTC` keeps `timestamptz` text stable.

use std::error::Error as StdError;
use std::io;
use std::sync::mpsc;
use std::time::Duration;

use ::postgres::config::SslMode as WireSslMode;
use ::postgres::error::SqlState;
use ::postgres::tls::{MakeTlsConnect, TlsConnect};
use ::postgres::{Client, Socket};
use anyhow::anyhow;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::tls;
use crate::error::user_error;

pub use super::url::{is_postgres_url, mask_password, PgHost, PgUrl, RootCerts, SslMode};

/// What the caller decides about a connection; the URL decides the rest.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// How long to wait for the server, unless the URL has `connect_timeout`.
    pub connect_timeout: Duration,
    /// `lock_timeout`: how long a statement waits for another session's lock (the
    /// `[database] busy_timeout`, as on SQLite). A wait that runs out fails with SQLSTATE
    /// 55P03, which [`is_lock_timeout`] recognises (exit 4).
    pub lock_timeout: Duration,
    /// `statement_timeout`: the longest any one statement may run.
    pub statement_timeout: Duration,
    /// `idle_in_transaction_session_timeout`: the server ends a session that sits in an
    /// open transaction this long (a stopped or crashed tick), releasing its locks.
    pub idle_in_transaction_session_timeout: Duration,
    /// The password when the URL has none: `PGPASSWORD` in [`ConnectOptions::from_env`].
    pub fallback_password: Option<String>,
    /// The user when the URL names none: the operating-system user in
    /// [`ConnectOptions::from_env`], as libpq does. Empty: such a URL is refused.
    pub default_user: String,
}

impl Default for ConnectOptions {
    /// The limits notifyctl uses, and nothing from the environment.
    fn default() -> ConnectOptions {
        ConnectOptions {
            connect_timeout: Duration::from_secs(5),
            lock_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            idle_in_transaction_session_timeout: Duration::from_secs(60),
            fallback_password: None,
            default_user: String::new(),
        }
    }
}

impl ConnectOptions {
    /// The defaults, `lock_timeout` set to the busy timeout, and what libpq takes from the
    /// environment: `PGPASSWORD` and the operating-system user.
    pub fn from_env(busy_timeout: Duration) -> ConnectOptions {
        ConnectOptions {
            lock_timeout: busy_timeout,
            fallback_password: std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty()),
            default_user: whoami::username().unwrap_or_default(),
            ..ConnectOptions::default()
        }
    }
}

/// Parse `url` and connect. Every failure a user can fix (a malformed URL, no server, a
/// database that does not exist, bad credentials, TLS) is a one-line
/// [`crate::error::UserError`] naming the server; none shows the password.
pub fn connect(url: &str, opts: &ConnectOptions) -> anyhow::Result<Client> {
    connect_url(&PgUrl::parse(url, &opts.default_user)?, opts)
}

/// [`connect`] with an already parsed URL.
pub fn connect_url(url: &PgUrl, opts: &ConnectOptions) -> anyhow::Result<Client> {
    let timeout = url.connect_timeout.unwrap_or(opts.connect_timeout);
    let password = match url.password() {
        Some(p) => Some((p.to_string(), PasswordSource::Url)),
        None => opts
            .fallback_password
            .clone()
            .map(|p| (p, PasswordSource::PgPassword)),
    };
    let attempt = |wire: WireSslMode| -> anyhow::Result<Result<Client, Failure>> {
        let mut config = ::postgres::Config::new();
        config
            .user(&url.user)
            .dbname(&url.dbname)
            .port(url.port)
            .application_name(&url.application_name)
            .ssl_mode(wire)
            .connect_timeout(timeout);
        if let Some((password, _)) = &password {
            config.password(password);
        }
        log::debug!(
            "connecting to PostgreSQL at {} ({url}, TLS {wire:?})",
            url.endpoint()
        );
        Ok(match &url.host {
            PgHost::Tcp(host) if matches!(wire, WireSslMode::Disable) => {
                config.host(host);
                connect_within(config, ::postgres::NoTls, timeout)
            }
            PgHost::Tcp(host) => {
                config.host(host);
                let tls = tls::client_config(url.sslmode, url.sslrootcert.as_ref())?;
                connect_within(config, MakeRustlsConnect::new(tls), timeout)
            }
            // No TLS on a Unix socket (libpq neither); and the rustls connector refuses to be
            // made without a host name, even when it would not be used.
            #[cfg(unix)]
            PgHost::Unix(dir) => {
                config.host_path(dir);
                connect_within(config, ::postgres::NoTls, timeout)
            }
            #[cfg(not(unix))]
            PgHost::Unix(dir) => {
                return Err(user_error(format!(
                    "{url}: the host {} is a Unix-socket directory, which this system does not have: give a host name",
                    dir.display()
                )))
            }
        })
    };

    let unix = matches!(url.host, PgHost::Unix(_));
    let result = match url.sslmode {
        _ if unix => attempt(WireSslMode::Disable)?,
        SslMode::Disable => attempt(WireSslMode::Disable)?,
        SslMode::Allow => match attempt(WireSslMode::Disable)? {
            Err(Failure::Postgres(e)) if refused_by_server(&e) => attempt(WireSslMode::Require)?,
            other => other,
        },
        SslMode::Prefer => match attempt(WireSslMode::Prefer)? {
            Err(Failure::Postgres(e)) if is_tls_failure(&e) || refused_by_server(&e) => {
                attempt(WireSslMode::Disable)?
            }
            other => other,
        },
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => attempt(WireSslMode::Require)?,
    };
    let mut client =
        result.map_err(|failure| describe(url, timeout, password.as_ref().map(|p| p.1), failure))?;

    client
        .batch_execute(&format!(
            "SET statement_timeout = '{}ms'; SET lock_timeout = '{}ms'; \
             SET idle_in_transaction_session_timeout = '{}ms'; SET TimeZone = 'UTC'; \
             SELECT set_config('plan_cache_mode', 'force_custom_plan', false) \
              WHERE current_setting('server_version_num')::int >= 120000",
            server_millis(opts.statement_timeout),
            server_millis(opts.lock_timeout),
            server_millis(opts.idle_in_transaction_session_timeout),
        ))
        .map_err(|e| {
            anyhow::Error::new(e).context(format!(
                "setting session limits on PostgreSQL at {}",
                url.endpoint()
            ))
        })?;
    Ok(client)
}

// Why `force_custom_plan`: the connection keeps its prepared statements, and after five
// runs PostgreSQL may switch one to a generic plan costed once, with the table sizes of
// that moment. A tick that starts on nearly empty tables (a new install, the first big
// import) then looks up each new row by key with a sequential scan for the rest of its
// session: quadratic, 10,000 reminders took 49 s. Custom plans see the table as it is now
// (planning a key lookup costs a few microseconds); `plan_cache_mode` exists since 12.

/// PostgreSQL reads 0 as "no limit"; a zero busy timeout means "do not wait" instead.
fn server_millis(d: Duration) -> u128 {
    d.as_millis().max(1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PasswordSource {
    Url,
    PgPassword,
}

enum Failure {
    Postgres(::postgres::Error),
    TimedOut,
    ClientFailed,
}

/// `config.connect(tls)` on a helper thread, given up after `timeout` (see the module doc).
fn connect_within<T>(config: ::postgres::Config, tls: T, timeout: Duration) -> Result<Client, Failure>
where
    T: MakeTlsConnect<Socket> + Send + 'static,
    T::TlsConnect: Send,
    T::Stream: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let (sender, receiver) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("postgres-connect".into())
        .spawn(move || {
            // The receiver is gone when we gave up waiting; the client then just closes.
            let _ = sender.send(config.connect(tls));
        });
    if spawned.is_err() {
        return Err(Failure::ClientFailed);
    }
    match receiver.recv_timeout(timeout) {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(Failure::Postgres(e)),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(Failure::TimedOut),
        // The thread died without an answer: the client panicked (its runtime could not start).
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(Failure::ClientFailed),
    }
}

/// The server answered the startup with "not like this" (pg_hba.conf has no line for this
/// user, database and encryption): libpq's cue to retry with the other encryption.
fn refused_by_server(e: &::postgres::Error) -> bool {
    e.code() == Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
}

/// The TLS negotiation or handshake failed (the crate's error kind is private; its text is
/// the kind).
fn is_tls_failure(e: &::postgres::Error) -> bool {
    e.to_string().starts_with("error performing TLS handshake")
}

/// Turn a failed connection attempt into the message a user can act on.
fn describe(
    url: &PgUrl,
    timeout: Duration,
    password: Option<PasswordSource>,
    failure: Failure,
) -> anyhow::Error {
    let endpoint = url.endpoint();
    let secs = timeout.as_secs();
    let e = match failure {
        Failure::TimedOut => {
            return user_error(format!(
                "cannot connect to PostgreSQL at {endpoint} within {secs}s: is the server running (and is it PostgreSQL)?"
            ))
        }
        Failure::ClientFailed => return anyhow!("connecting to PostgreSQL at {endpoint}: the client failed to start"),
        Failure::Postgres(e) => e,
    };
    let user = &url.user;
    if let Some(db) = e.as_db_error() {
        let message = one_line(db.message());
        let code = db.code();
        return if *code == SqlState::INVALID_CATALOG_NAME {
            let name = &url.dbname;
            user_error(format!(
                "database {name} does not exist on {endpoint}: create it (createdb {name}) or fix --db"
            ))
        } else if *code == SqlState::INVALID_PASSWORD {
            let source = match password {
                Some(PasswordSource::PgPassword) => "the password from PGPASSWORD",
                Some(PasswordSource::Url) => "the password in the URL",
                None => "the password",
            };
            user_error(format!(
                "PostgreSQL at {endpoint} refused {source} for user {user}: fix the password (or the user)"
            ))
        } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
            user_error(format!(
                "PostgreSQL at {endpoint} refused user {user} for database {}: {message}",
                url.dbname
            ))
        } else {
            anyhow::Error::new(e).context(format!("PostgreSQL at {endpoint} refused the connection"))
        };
    }
    if let Some(rustls_error) = find_cause::<rustls::Error>(&e) {
        return user_error(tls_message(url, rustls_error));
    }
    let text = e.to_string();
    let cause = e.source().map(|c| one_line(&c.to_string())).unwrap_or_default();
    if is_tls_failure(&e) {
        if cause == "server does not support TLS" {
            return user_error(format!(
                "PostgreSQL at {endpoint} does not offer TLS, which sslmode={} requires: \
                 turn on ssl in the server, or use sslmode=prefer or disable",
                url.sslmode
            ));
        }
        return user_error(format!("TLS with PostgreSQL at {endpoint} failed: {cause}"));
    }
    // The server asked for a password and we have none (the crate's text, kind "config").
    if password.is_none() && cause == "password missing" {
        return user_error(format!(
            "PostgreSQL at {endpoint} asks for a password for user {user}: put it in the URL or in PGPASSWORD"
        ));
    }
    if text.starts_with("authentication error") {
        return user_error(format!(
            "cannot log in to PostgreSQL at {endpoint} as {user}: {cause}"
        ));
    }
    if let Some(io_error) = find_cause::<io::Error>(&e) {
        let reason = match io_error.kind() {
            io::ErrorKind::TimedOut => format!("within {secs}s"),
            io::ErrorKind::ConnectionRefused => "(connection refused)".into(),
            io::ErrorKind::NotFound if matches!(url.host, PgHost::Unix(_)) => "(no such socket)".into(),
            _ => format!("({})", one_line(&io_error.to_string())),
        };
        return user_error(format!(
            "cannot connect to PostgreSQL at {endpoint} {reason}: is the server running?"
        ));
    }
    user_error(format!(
        "cannot connect to PostgreSQL at {endpoint}: {text}: {cause}"
    ))
}

fn tls_message(url: &PgUrl, e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    let endpoint = url.endpoint();
    let mode = url.sslmode;
    let trusted = match &url.sslrootcert {
        Some(RootCerts::File(path)) => format!("a CA in sslrootcert {}", path.display()),
        _ => "a CA in the system store".to_string(),
    };
    match e {
        rustls::Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            let host = match &url.host {
                PgHost::Tcp(host) => host.as_str(),
                PgHost::Unix(_) => "",
            };
            format!(
                "the TLS certificate of PostgreSQL at {endpoint} is not valid for the name {host}: \
                 connect by a name the certificate has, or use sslmode=verify-ca (sslmode={mode} checks the name)"
            )
        }
        rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
            format!(
                "the TLS certificate of PostgreSQL at {endpoint} is not signed by {trusted} (sslmode={mode})"
            )
        }
        other => format!("TLS with PostgreSQL at {endpoint} failed (sslmode={mode}): {other}"),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first `T` in `e`'s causes, looking inside `io::Error`s too (whose `source()` skips
/// the error they wrap, which is where TLS failures hide).
fn find_cause<'a, T: StdError + 'static>(e: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut next = Some(e);
    while let Some(current) = next {
        if let Some(found) = current.downcast_ref::<T>() {
            return Some(found);
        }
        next = match current.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => current.source(),
        };
    }
    None
}

/// The SQLSTATE of the first PostgreSQL error in `err`'s chain, if any.
pub fn sql_state(err: &anyhow::Error) -> Option<SqlState> {
    err.chain().find_map(|cause| {
        let client_error = cause.downcast_ref::<::postgres::Error>().and_then(|e| e.code());
        let store_error = cause.downcast_ref::<super::DbFailure>().and_then(|e| e.code());
        client_error.or(store_error).cloned()
    })
}

/// A statement gave up waiting for another session's lock (`lock_timeout`, SQLSTATE 55P03):
/// the database is busy, exit 4, as SQLite's busy timeout.
pub fn is_lock_timeout(err: &anyhow::Error) -> bool {
    sql_state(err) == Some(SqlState::LOCK_NOT_AVAILABLE)
}

/// A serialization failure (40001) or deadlock (40P01): the transaction may simply be run
/// again.
pub fn is_retryable(err: &anyhow::Error) -> bool {
    matches!(
        sql_state(err),
        Some(SqlState::T_R_SERIALIZATION_FAILURE | SqlState::T_R_DEADLOCK_DETECTED)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_limits_never_mean_no_limit() {
        assert_eq!(server_millis(Duration::ZERO), 1);
        assert_eq!(server_millis(Duration::from_secs(5)), 5000);
    }

    #[test]
    fn find_cause_looks_inside_io_errors() {
        let io = io::Error::new(io::ErrorKind::InvalidData, rustls::Error::DecryptError);
        let top = anyhow::Error::new(io).context("handshake");
        let found = top.chain().find_map(|c| find_cause::<rustls::Error>(c));
        assert_eq!(found, Some(&rustls::Error::DecryptError));
    }

    #[test]
    fn defaults_read_nothing_from_the_environment() {
        let opts = ConnectOptions::default();
        assert_eq!(opts.fallback_password, None);
        assert_eq!(opts.default_user, "");
        assert_eq!(opts.connect_timeout, Duration::from_secs(5));
    }
}
