//! `postgres://` URLs parsed the way libpq reads them, into a plain value ([`PgUrl`]).
//!
//! Pure: no environment, no network, so every rule is a unit test. What it accepts is
//! libpq's URI form with one host: `postgres[ql]://[USER[:PASSWORD]@][HOST][:PORT][/DBNAME][?K=V&...]`.
//! Names and values are percent-decoded; HOST may be `[::1]`, or a Unix-socket directory
//! (a percent-encoded path such as `%2Fvar%2Frun%2Fpostgresql`, or `?host=/var/run/postgresql`).
//! A URL that breaks these rules is a one-line user error that echoes the URL with its
//! password masked as `***`, and never quotes a piece of the part that may hold the password.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::user_error;

/// Where libpq looks for the server's Unix socket when a URL names no host (Debian's build).
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";
pub const DEFAULT_PORT: u16 = 5432;
pub const DEFAULT_APPLICATION_NAME: &str = "notifyctl";

/// The query parameters a URL may carry; anything else is refused by name.
const KNOWN_PARAMETERS: &[&str] = &[
    "host",
    "port",
    "dbname",
    "user",
    "password",
    "sslmode",
    "sslrootcert",
    "connect_timeout",
    "application_name",
];

/// libpq's `sslmode`, all six values. [`crate::store::postgres::connect`] explains each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn parse(value: &str) -> Option<SslMode> {
        Some(match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgHost {
    /// A host name or an IP address (IPv6 without its brackets).
    Tcp(String),
    /// The directory holding the server's socket `.s.PGSQL.PORT`.
    Unix(PathBuf),
}

/// Which certificates a verifying `sslmode` trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCerts {
    /// The operating system's store (no `sslrootcert`, or libpq 16's `sslrootcert=system`).
    System,
    /// A PEM file of CA certificates (`sslrootcert=FILE`).
    File(PathBuf),
}

/// A parsed `postgres://` URL. Its `Debug` and `Display` never show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct PgUrl {
    pub user: String,
    password: Option<String>,
    pub host: PgHost,
    pub port: u16,
    pub dbname: String,
    pub sslmode: SslMode,
    /// `Some` only when the URL has `sslrootcert`.
    pub sslrootcert: Option<RootCerts>,
    /// `connect_timeout` from the URL; `None` means the caller's default.
    pub connect_timeout: Option<Duration>,
    pub application_name: String,
    /// The URL as given, password masked: what error messages echo.
    masked: String,
}

/// True when `location` names a PostgreSQL server rather than a SQLite file.
pub fn is_postgres_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

impl PgUrl {
    /// Parse a `postgres://` or `postgresql://` URL. `user` is the user to assume when the
    /// URL names none (libpq uses the operating-system user).
    pub fn parse(url: &str, default_user: &str) -> anyhow::Result<PgUrl> {
        let masked = mask_password(url);
        parse(url, default_user)
            .map(|parts| PgUrl {
                masked: masked.clone(),
                ..parts
            })
            .map_err(|reason| user_error(format!("invalid PostgreSQL URL {masked}: {reason}")))
    }

    /// The password given in the URL, if any (the caller falls back to `PGPASSWORD`).
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// `HOST:PORT` (`[::1]:PORT` for IPv6, the socket path for a Unix socket), for messages.
    pub fn endpoint(&self) -> String {
        match &self.host {
            PgHost::Tcp(host) if host.contains(':') => format!("[{host}]:{}", self.port),
            PgHost::Tcp(host) => format!("{host}:{}", self.port),
            PgHost::Unix(dir) => format!("{}/.s.PGSQL.{}", dir.display(), self.port),
        }
    }
}

impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked)
    }
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgUrl")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("dbname", &self.dbname)
            .field("sslmode", &self.sslmode)
            .field("sslrootcert", &self.sslrootcert)
            .field("connect_timeout", &self.connect_timeout)
            .field("application_name", &self.application_name)
            .finish()
    }
}

/// The URL with anything that may be a password replaced by `***`: the text between the
/// first `:` after `scheme://` and the *last* `@` (so an unencoded `@` or `/` in a password
/// is hidden too), and the value of a `password=` query parameter. Errs towards hiding.
pub fn mask_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let (head, rest) = url.split_at(scheme_end);
    let mut masked = String::from(head);
    let after_userinfo = match rest.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            match userinfo.find(':') {
                Some(colon) => masked.push_str(&userinfo[..colon + 1]),
                None => masked.push_str(userinfo),
            }
            if userinfo.contains(':') {
                masked.push_str("***");
            }
            &rest[at..]
        }
        None => rest,
    };
    match after_userinfo.find('?') {
        Some(q) => {
            masked.push_str(&after_userinfo[..q + 1]);
            let params: Vec<String> = after_userinfo[q + 1..]
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key == "password" => format!("{key}=***"),
                    _ => pair.to_string(),
                })
                .collect();
            masked.push_str(&params.join("&"));
        }
        None => masked.push_str(after_userinfo),
    }
    masked
}

/// The parse proper; its error is the reason only (the caller adds the masked URL).
fn parse(url: &str, default_user: &str) -> Result<PgUrl, String> {
    let rest = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
        .ok_or("it must start with postgres:// or postgresql://")?;

    // libpq's rule: credentials end at an `@` before the first `/`. We take the last such
    // `@`, so an unencoded `@` in a password still works; any `@` left after it means a
    // password with an unencoded `/`, which we refuse without quoting it.
    let first_slash = rest.find('/').unwrap_or(rest.len());
    let (userinfo, rest) = match rest[..first_slash].rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    if rest.contains('@') {
        return Err("unexpected '@': percent-encode it (%40), and in a password '/' too (%2F)".into());
    }

    let (mut user, mut password) = (None, None);
    if let Some(userinfo) = userinfo {
        let (u, p) = match userinfo.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (userinfo, None),
        };
        user = Some(decode(u).map_err(|e| format!("user name: {e}"))?).filter(|u| !u.is_empty());
        if let Some(p) = p {
            password = Some(decode(p).map_err(|_| "the password is not validly percent-encoded")?);
        }
    }

    let hostspec_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (hostspec, rest) = rest.split_at(hostspec_end);
    let (mut host, mut port) = parse_hostspec(hostspec)?;

    let (path, query) = match rest.find('?') {
        Some(q) => (&rest[..q], Some(&rest[q + 1..])),
        None => (rest, None),
    };
    let mut dbname = match path.strip_prefix('/') {
        Some(name) => Some(decode(name).map_err(|e| format!("database name: {e}"))?),
        None => None,
    }
    .filter(|name| !name.is_empty());

    let mut sslmode = None;
    let mut sslrootcert = None;
    let mut connect_timeout = None;
    let mut application_name = None;
    for pair in query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty())
    {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(format!(
                "query parameter {pair:?} has no value (write {pair}=VALUE)"
            ));
        };
        let key = decode(key).map_err(|e| format!("query parameter name: {e}"))?;
        if key == "password" {
            // Never quote the password, not even its broken escape.
            password = Some(decode(value).map_err(|_| "the password is not validly percent-encoded")?);
            continue;
        }
        let value = decode(value).map_err(|e| format!("{key}: {e}"))?;
        match key.as_str() {
            "host" => host = Some(parse_host(&value)?),
            "port" => port = Some(parse_port(&value)?),
            "dbname" => dbname = Some(value).filter(|v| !v.is_empty()),
            "user" => user = Some(value).filter(|v| !v.is_empty()),
            "sslmode" => {
                sslmode = Some(SslMode::parse(&value).ok_or_else(|| {
                    format!(
                        "unknown sslmode {value:?} (expected disable, allow, prefer, require, verify-ca or verify-full)"
                    )
                })?)
            }
            "sslrootcert" if value.is_empty() => return Err("sslrootcert is empty".into()),
            "sslrootcert" if value == "system" => sslrootcert = Some(RootCerts::System),
            "sslrootcert" => sslrootcert = Some(RootCerts::File(PathBuf::from(value))),
            "connect_timeout" => connect_timeout = Some(parse_connect_timeout(&value)?),
            "application_name" => application_name = Some(value),
            _ => {
                return Err(format!(
                    "unknown query parameter {key:?} (known: {})",
                    KNOWN_PARAMETERS.join(", ")
                ))
            }
        }
    }

    // libpq 16: `sslrootcert=system` defaults to, and only allows, verify-full, since the
    // public CAs would otherwise vouch for any host.
    let sslmode = match (sslmode, &sslrootcert) {
        (None, Some(RootCerts::System)) => SslMode::VerifyFull,
        (Some(mode), Some(RootCerts::System)) if mode != SslMode::VerifyFull => {
            return Err(format!(
                "sslrootcert=system requires sslmode=verify-full (got sslmode={mode})"
            ));
        }
        (mode, _) => mode.unwrap_or(SslMode::Prefer),
    };

    let user = user.unwrap_or_else(|| default_user.to_string());
    if user.is_empty() {
        return Err("it names no user (write postgres://USER@HOST/DBNAME)".into());
    }
    Ok(PgUrl {
        dbname: dbname.unwrap_or_else(|| user.clone()),
        user,
        password,
        host: host.unwrap_or_else(|| PgHost::Unix(PathBuf::from(DEFAULT_SOCKET_DIR))),
        port: port.unwrap_or(DEFAULT_PORT),
        sslmode,
        sslrootcert,
        connect_timeout,
        application_name: application_name.unwrap_or_else(|| DEFAULT_APPLICATION_NAME.to_string()),
        masked: String::new(),
    })
}

/// `HOST[:PORT]`, `[IPV6][:PORT]` or empty. No value from here is quoted in an error: when
/// the credentials were not recognised (a password with an unencoded `/`), this is where
/// the password would land.
fn parse_hostspec(spec: &str) -> Result<(Option<PgHost>, Option<u16>), String> {
    if spec.is_empty() {
        return Ok((None, None));
    }
    if spec.contains(',') {
        return Err("several hosts are not supported: give one host".into());
    }
    let (host, port) = if let Some(bracketed) = spec.strip_prefix('[') {
        let end = bracketed
            .find(']')
            .ok_or("an IPv6 address must end with ']' (write [::1]:5432)")?;
        let after = &bracketed[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return Err("unexpected text after the IPv6 address".into()),
        };
        let address = &bracketed[..end];
        if address.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("the text in [brackets] is not an IPv6 address".into());
        }
        (Some(address.to_string()), port)
    } else {
        match spec.rsplit_once(':') {
            Some((host, port)) => (Some(host.to_string()), Some(port)),
            None => (Some(spec.to_string()), None),
        }
    };
    let host = match host.filter(|h| !h.is_empty()) {
        Some(h) => Some(parse_host(
            &decode(&h).map_err(|_| "the host is not validly percent-encoded")?,
        )?),
        None => None,
    };
    let port = match port {
        Some(p) => Some(parse_port(p).map_err(|_| "the port must be a number from 1 to 65535".to_string())?),
        None => None,
    };
    Ok((host, port))
}

fn parse_host(host: &str) -> Result<PgHost, String> {
    if host.starts_with('/') {
        return Ok(PgHost::Unix(PathBuf::from(host)));
    }
    if host.is_empty() || host.contains(['/', ' ', ',']) {
        return Err("the host is not a host name, an IP address or an absolute socket directory".into());
    }
    Ok(PgHost::Tcp(host.to_string()))
}

fn parse_port(port: &str) -> Result<u16, String> {
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("port {port:?} is not a number from 1 to 65535")),
    }
}

/// Whole seconds, 1 to 3600. libpq reads 0 as "wait forever", which a cron job must not do.
fn parse_connect_timeout(value: &str) -> Result<Duration, String> {
    match value.parse::<u64>() {
        Ok(secs) if (1..=3600).contains(&secs) => Ok(Duration::from_secs(secs)),
        _ => Err(format!(
            "connect_timeout {value:?} must be whole seconds from 1 to 3600 (notifyctl never waits forever)"
        )),
    }
}

/// Percent-decode into UTF-8. `+` stays `+`, as in libpq.
fn decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("a '%' must be followed by two hex digits (write %25 for '%')")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "percent-encoded bytes are not UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(url: &str) -> PgUrl {
        PgUrl::parse(url, "osuser").unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    fn parse_err(url: &str) -> String {
        match PgUrl::parse(url, "osuser") {
            Ok(u) => panic!("{url} should not parse: {u:?}"),
            Err(e) => {
                assert!(
                    e.downcast_ref::<crate::error::UserError>().is_some(),
                    "a URL problem is a user error"
                );
                e.to_string()
            }
        }
    }

    #[test]
    fn full_url() {
        let u = parse_ok(
            "postgres://ana:s%40cr%2Ft@db.example.org:6543/app?sslmode=verify-full&sslrootcert=/etc/ca.pem&connect_timeout=7&application_name=tick%201",
        );
        assert_eq!(u.user, "ana");
        assert_eq!(u.password(), Some("s@cr/t"));
        assert_eq!(u.host, PgHost::Tcp("db.example.org".into()));
        assert_eq!(u.port, 6543);
        assert_eq!(u.dbname, "app");
        assert_eq!(u.sslmode, SslMode::VerifyFull);
        assert_eq!(u.sslrootcert, Some(RootCerts::File("/etc/ca.pem".into())));
        assert_eq!(u.connect_timeout, Some(Duration::from_secs(7)));
        assert_eq!(u.application_name, "tick 1");
        assert_eq!(u.endpoint(), "db.example.org:6543");
    }

    #[test]
    fn defaults_follow_libpq() {
        let u = parse_ok("postgresql://ana@db");
        assert_eq!(u.port, 5432);
        assert_eq!(u.dbname, "ana", "dbname defaults to the user name");
        assert_eq!(u.sslmode, SslMode::Prefer);
        assert_eq!(u.password(), None);
        assert_eq!(u.connect_timeout, None);
        assert_eq!(u.application_name, "notifyctl");
        let u = parse_ok("postgres:///app");
        assert_eq!(u.user, "osuser");
        assert_eq!(u.host, PgHost::Unix(DEFAULT_SOCKET_DIR.into()));
        assert_eq!(u.dbname, "app");
        assert_eq!(parse_ok("postgres://").dbname, "osuser");
        assert_eq!(parse_ok("postgres://db/").dbname, "osuser");
    }

    #[test]
    fn ipv6_and_unix_socket_hosts() {
        let u = parse_ok("postgres://ana@[::1]:5433/app");
        assert_eq!(u.host, PgHost::Tcp("::1".into()));
        assert_eq!(u.port, 5433);
        assert_eq!(u.endpoint(), "[::1]:5433");
        assert_eq!(parse_ok("postgres://[fe80::1]/x").port, 5432);
        let u = parse_ok("postgres://ana@%2Fvar%2Frun%2Fpostgresql:5433/app");
        assert_eq!(u.host, PgHost::Unix("/var/run/postgresql".into()));
        assert_eq!(u.endpoint(), "/var/run/postgresql/.s.PGSQL.5433");
        let u = parse_ok("postgres://ana@/app?host=/tmp/pg&port=6000");
        assert_eq!(u.host, PgHost::Unix("/tmp/pg".into()));
        assert_eq!(u.port, 6000);
        let u = parse_ok("postgres:///app?host=%2Ftmp%2Fpg");
        assert_eq!(u.host, PgHost::Unix("/tmp/pg".into()));
    }

    #[test]
    fn query_parameters_override_the_authority() {
        let u = parse_ok("postgres://ana@h/app?user=bob&dbname=other&password=pw");
        assert_eq!(u.user, "bob");
        assert_eq!(u.dbname, "other");
        assert_eq!(u.password(), Some("pw"));
    }

    #[test]
    fn an_unencoded_at_sign_in_the_password_still_parses() {
        let u = parse_ok("postgres://ana:p@ss?w@rd@h/app");
        assert_eq!(u.password(), Some("p@ss?w@rd"));
        assert_eq!(u.host, PgHost::Tcp("h".into()));
        assert_eq!(u.dbname, "app");
    }

    #[test]
    fn sslmodes() {
        for (text, mode) in [
            ("disable", SslMode::Disable),
            ("allow", SslMode::Allow),
            ("prefer", SslMode::Prefer),
            ("require", SslMode::Require),
            ("verify-ca", SslMode::VerifyCa),
            ("verify-full", SslMode::VerifyFull),
        ] {
            assert_eq!(parse_ok(&format!("postgres://h/d?sslmode={text}")).sslmode, mode);
            assert_eq!(mode.to_string(), text);
        }
        let e = parse_err("postgres://h/d?sslmode=verify");
        assert!(e.contains("unknown sslmode \"verify\""), "{e}");
        let u = parse_ok("postgres://h/d?sslrootcert=system");
        assert_eq!(u.sslmode, SslMode::VerifyFull);
        assert_eq!(u.sslrootcert, Some(RootCerts::System));
        let e = parse_err("postgres://h/d?sslrootcert=system&sslmode=require");
        assert!(e.contains("requires sslmode=verify-full"), "{e}");
    }

    #[test]
    fn malformed_urls_are_one_line_user_errors() {
        for (url, expected) in [
            ("mysql://h/d", "must start with postgres://"),
            ("postgres://h:99999/d", "port must be a number"),
            ("postgres://h:0/d", "port must be a number"),
            ("postgres://h:/d", "port must be a number"),
            ("postgres://h1,h2/d", "several hosts"),
            ("postgres://[::1/d", "must end with ']'"),
            ("postgres://[nope]/d", "not an IPv6 address"),
            ("postgres://h/d?sslmode", "\"sslmode\" has no value"),
            (
                "postgres://h/d?options=-c%20x",
                "unknown query parameter \"options\"",
            ),
            ("postgres://h/d?connect_timeout=0", "connect_timeout \"0\""),
            ("postgres://h/d?connect_timeout=1.5", "connect_timeout \"1.5\""),
            ("postgres://h/d%zz", "database name: a '%' must be followed"),
            ("postgres://h/d%ff", "not UTF-8"),
            ("postgres://h/d?port=x", "port \"x\""),
            ("postgres://h/d?sslrootcert=", "sslrootcert is empty"),
        ] {
            let e = parse_err(url);
            assert!(e.contains(expected), "{url}: {e}");
            assert!(!e.contains('\n'), "{url}: {e}");
            assert!(e.starts_with("invalid PostgreSQL URL "), "{url}: {e}");
        }
    }

    #[test]
    fn the_password_is_never_echoed() {
        for url in [
            "postgres://ana:Secr3t@h:99999/d",
            "postgres://ana:Secr3t@h/d?bogus=1",
            "postgres://ana:Se/cr3t@h/d",
            "postgres://ana:Se/cr3t@h:1/d?x",
            "postgres://ana:12/Secr3t?x@h/d",
            "postgres://ana:Secr3t%zz@h/d",
            "postgres://ana@h/d?password=Secr3t&sslmode=nope",
            "postgres://ana@h/d?password=Secr3t%zz",
            "postgres://ana:Secr3t@[::1/d",
        ] {
            let e = parse_err(url);
            assert!(!e.contains("Secr3t") && !e.contains("cr3t"), "{url} leaked: {e}");
        }
        let u = parse_ok("postgres://ana:Secr3t@h/d?password=Secr3t");
        assert!(!format!("{u} {u:?}").contains("Secr3t"));
        assert_eq!(u.to_string(), "postgres://ana:***@h/d?password=***");
    }

    #[test]
    fn masking() {
        assert_eq!(mask_password("postgres://ana:pw@h/d"), "postgres://ana:***@h/d");
        assert_eq!(mask_password("postgres://ana@h/d"), "postgres://ana@h/d");
        assert_eq!(mask_password("postgres://h:5432/d"), "postgres://h:5432/d");
        assert_eq!(
            mask_password("postgres://ana:p@w/x@h/d"),
            "postgres://ana:***@h/d"
        );
        assert_eq!(
            mask_password("postgres://h/d?sslmode=require&password=x&a=b"),
            "postgres://h/d?sslmode=require&password=***&a=b"
        );
    }

    #[test]
    fn is_postgres_url_chooses_the_backend() {
        assert!(is_postgres_url("postgres://h/d"));
        assert!(is_postgres_url("postgresql://h/d"));
        assert!(!is_postgres_url("notify.db"));
        assert!(!is_postgres_url("/var/lib/notifyctl/postgres.db"));
    }
}
