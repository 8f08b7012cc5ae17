//! A small SMTP client: one connection reused for a whole tick, every exchange bounded
//! by a deadline, and MAIL/RCPT/DATA pipelined (RFC 2920) when the server offers it.
//!
//! Why not lettre's `SmtpConnection` (it still builds the messages, and drives sendmail):
//! - its timeout applies to each socket read, so a server answering one byte every 5 s
//!   held a 40 s tick for 210 s, and one that never greeted held a 5 s tick for 20 s.
//!   Here every read and write waits at most `min(step limit left, deadline - now)`,
//!   recomputed before each system call, so a trickling reply is cut at the step limit
//!   and at the deadline alike, and a deadline already passed means no I/O at all;
//! - it has no pipelining: one round trip per command is half the throughput of a
//!   pipelined client against a fast relay (issue 13);
//! - its errors do not separate what the caller must treat differently: a refused login
//!   (about the server or the config, not the message), a failure before the final dot
//!   (the message surely was not accepted) and a lost answer after it (it may have
//!   been). [`SmtpError`] does.
//!
//! The body and its terminator go out in one write on a TCP_NODELAY socket: two writes
//! with Nagle's algorithm wait for the server's delayed ACK (40 ms on Linux).
//!
//! A caller that already knows its next message's envelope ([`Overlap`]) has it sent
//! right after this message's final dot (RFC 2920 lets DATA end a group): the server
//! answers the dot and the next MAIL/RCPT/DATA in one round trip, while the caller builds
//! that next message. Those replies are read when the next message is sent; if it turns
//! out to need another envelope (or never comes), the connection is closed instead, and
//! the server drops the transaction it was never given content for.
//!
//! TLS is rustls with the ring provider and the webpki roots, the same stack (and the
//! same versions) lettre's `rustls-tls` feature used, so there is one TLS stack in the
//! binary. `tls = "starttls"` never falls back to plain text: a server that does not
//! offer STARTTLS is refused.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use crate::config::TlsMode;

/// A reply longer than this is an error (a hostile server must not grow our memory).
const MAX_REPLY_BYTES: usize = 64 * 1024;
/// RFC 5321 allows 512 bytes per reply line; real servers go a little over.
const MAX_LINE_BYTES: usize = 4096;
/// Server text quoted in errors and receipts is cut to this many characters.
const MAX_SERVER_TEXT: usize = 300;
/// How long `Drop` waits for the answer to QUIT.
const QUIT_GRACE: Duration = Duration::from_secs(2);

/// Everything the client needs, resolved by the caller from the config.
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// Username and password; the password never appears in an error or a log line.
    pub credentials: Option<(String, String)>,
    /// EHLO name; None: this machine's host name, or "localhost".
    pub hello_name: Option<String>,
    /// The longest wait for any one reply (and for any one write or connect).
    pub step_timeout: Duration,
    /// The longest wait for the reply after the final dot (RFC 5321 §4.5.3.2.6: 10 minutes).
    pub final_reply_timeout: Duration,
    /// Root certificates (PEM) trusted besides the built-in web roots: a private CA.
    pub extra_root_pem: Option<Vec<u8>>,
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.credentials.as_ref().map(|(u, _)| u))
            .field("hello_name", &self.hello_name)
            .field("step_timeout", &self.step_timeout)
            .field("final_reply_timeout", &self.final_reply_timeout)
            .field("extra_root_pem", &self.extra_root_pem.is_some())
            .finish()
    }
}

/// Why a message did not go, classified by what the caller must do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmtpError {
    /// A 5xx to MAIL, RCPT, DATA or the final dot, or a message the server cannot take
    /// (size, non-ASCII address without SMTPUTF8): this message will never go.
    Permanent(String),
    /// A 4xx for this message: retry it later.
    Temporary(String),
    /// No usable connection (connect, greeting, TLS, EHLO), or the connection was lost or
    /// timed out before the final dot was sent: the message surely was not accepted.
    Unavailable(String),
    /// The server refused our credentials, or needs authentication we cannot do: about
    /// the server or the config, not the message.
    AuthFailed(String),
    /// The final dot was sent but no reply came (timeout, deadline, connection lost):
    /// the message may have been accepted.
    Unknown(String),
}

impl SmtpError {
    pub fn text(&self) -> &str {
        match self {
            SmtpError::Permanent(t)
            | SmtpError::Temporary(t)
            | SmtpError::Unavailable(t)
            | SmtpError::AuthFailed(t)
            | SmtpError::Unknown(t) => t,
        }
    }
}

impl fmt::Display for SmtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

impl std::error::Error for SmtpError {}

/// One SMTP connection reused for many messages; opened on first use, opened again
/// when the server dropped it.
pub struct SmtpSession {
    settings: SmtpSettings,
    /// "host:port", the prefix of every error.
    label: String,
    hello: String,
    tls_config: Option<Arc<ClientConfig>>,
    conn: Option<Conn>,
    /// The next message's envelope, sent after the last final dot; its replies not read.
    ahead: Option<Ahead>,
    /// Reused buffers: the pipelined commands and the dot-stuffed body.
    commands: Vec<u8>,
    payload: Vec<u8>,
}

/// A message's envelope: the bare sender and recipient addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub from: String,
    pub to: Vec<String>,
}

/// The caller's side of a send: what it does while the server works on the message.
pub trait Overlap {
    /// The envelope of the message the caller sends next on this session, if it knows it
    /// now: it goes out right after this message's content, so the server answers both in
    /// one round trip.
    fn next_envelope(&mut self) -> Option<Envelope> {
        None
    }

    /// Called once the message is written, before its answer is read.
    fn meanwhile(&mut self) {}
}

impl Overlap for () {}

/// An envelope sent ahead of its message: the MAIL command as written, and the recipients.
struct Ahead {
    mail: String,
    to: Vec<String>,
}

/// What to do with the connection after a failed transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// Nothing was sent for this message: the connection is as it was.
    Keep,
    /// The server answered an error: reset the transaction with RSET.
    Reset,
    /// The connection is in an unknown state: close it, the next message reconnects.
    Drop,
}

struct Failure {
    error: SmtpError,
    after: After,
    /// The server closed a reused connection before answering the first command of this
    /// message (an idle timeout, a 421): nothing was accepted, one retry on a new
    /// connection is safe.
    stale: bool,
}

impl Failure {
    fn new(error: SmtpError, after: After) -> Failure {
        Failure {
            error,
            after,
            stale: false,
        }
    }
}

impl SmtpSession {
    /// Settings only; nothing connects until the first message.
    pub fn new(settings: SmtpSettings) -> SmtpSession {
        let host = sanitize(&settings.host);
        let label = if host.contains(':') {
            format!("[{host}]:{}", settings.port)
        } else {
            format!("{host}:{}", settings.port)
        };
        let hello = match &settings.hello_name {
            Some(name) if !name.is_empty() => name.clone(),
            _ => default_hello_name(),
        };
        SmtpSession {
            settings,
            label,
            hello,
            tls_config: None,
            conn: None,
            ahead: None,
            commands: Vec::new(),
            payload: Vec::new(),
        }
    }

    /// Connect, upgrade to TLS as configured, greet, log in, and say goodbye: for
    /// `config check`. Sends no message.
    pub fn check(&mut self, deadline: Instant) -> Result<(), SmtpError> {
        self.drop_connection();
        let conn = self.open(deadline)?;
        self.conn = Some(conn);
        self.quit(deadline);
        Ok(())
    }

    /// Send one message (formatted RFC 5322 bytes) from `from` to `to` (bare addresses),
    /// connecting first if needed; every step, the answer included, before `deadline`.
    /// Returns the server's final reply, e.g. "250 2.0.0 Ok: queued as X".
    pub fn send(
        &mut self,
        from: &str,
        to: &[String],
        message: &[u8],
        deadline: Instant,
    ) -> Result<String, SmtpError> {
        self.send_until(from, to, message, deadline, deadline, &mut ())
    }

    /// As [`send`](Self::send), but the server's answer to the message is awaited until
    /// `answer_by` (at least `deadline`): everything up to and including the final dot
    /// happens before `deadline`, and a message already sent is not abandoned the instant
    /// the tick's time is up (that would invite a duplicate on retry). `overlap` is asked
    /// for the next message's envelope as this one's content goes out, and called once
    /// it is written, before its answer is read (the caller prepares its next message
    /// while the server works on this one).
    pub fn send_until(
        &mut self,
        from: &str,
        to: &[String],
        message: &[u8],
        deadline: Instant,
        answer_by: Instant,
        overlap: &mut dyn Overlap,
    ) -> Result<String, SmtpError> {
        let answer_by = answer_by.max(deadline);
        if to.is_empty() {
            return Err(SmtpError::Permanent(
                self.err("the message has no recipient".into()),
            ));
        }
        for address in std::iter::once(from).chain(to.iter().map(String::as_str)) {
            if let Err(why) = check_address(address) {
                return Err(SmtpError::Permanent(self.err(why)));
            }
        }
        if Instant::now() >= deadline {
            return Err(SmtpError::Unavailable(
                self.err("the deadline had passed before the message could be sent".into()),
            ));
        }
        let reused = self.conn.is_some();
        if !reused {
            self.conn = Some(self.open(deadline)?);
        }
        match self.transaction(from, to, message, deadline, answer_by, overlap) {
            Ok(reply) => Ok(reply),
            Err(failure) if failure.stale && reused => {
                tracing::debug!("{}; sending again on a new connection", failure.error.text());
                self.drop_connection();
                self.conn = Some(self.open(deadline)?);
                let result = self.transaction(from, to, message, deadline, answer_by, overlap);
                result.map_err(|f| self.recover(f, deadline))
            }
            Err(failure) => Err(self.recover(failure, deadline)),
        }
    }

    /// Say goodbye and close, waiting for the server's answer until `deadline` at most.
    /// Best effort: errors are ignored.
    pub fn quit(&mut self, deadline: Instant) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        // The server waits for the content of an envelope sent ahead: QUIT would be read
        // as that content. Closing drops the transaction.
        if self.ahead.take().is_some() {
            return;
        }
        let step = self.step("QUIT", deadline);
        if step.until <= Instant::now() {
            return;
        }
        if conn.write(b"QUIT\r\n", step.until).is_ok() {
            let _ = conn.read_reply(step.until);
        }
    }

    /// Close the connection (and forget an envelope sent ahead on it).
    fn drop_connection(&mut self) {
        self.conn = None;
        self.ahead = None;
    }

    /// After a failed transaction: reset it, or drop the connection.
    fn recover(&mut self, failure: Failure, deadline: Instant) -> SmtpError {
        match failure.after {
            After::Keep => {}
            After::Drop => self.drop_connection(),
            // An RSET now would be read as the content of the envelope sent ahead.
            After::Reset if self.ahead.is_some() => self.drop_connection(),
            After::Reset => {
                let step = self.step("RSET", deadline);
                let ok = match self.conn.as_mut() {
                    Some(conn) if step.until > Instant::now() => {
                        conn.write(b"RSET\r\n", step.until).is_ok()
                            && matches!(conn.read_reply(step.until), Ok(r) if r.class() == 2)
                    }
                    _ => false,
                };
                if !ok {
                    self.conn = None;
                }
            }
        }
        failure.error
    }

    fn step(&self, what: &'static str, deadline: Instant) -> Step {
        Step::new(what, self.settings.step_timeout, deadline, Limit::Step)
    }

    fn err(&self, what: String) -> String {
        format!("SMTP {}: {what}", self.label)
    }

    /// An I/O failure before the final dot, as an `Unavailable` error.
    fn unavailable(&self, fail: Fail, step: &Step, sending: bool) -> SmtpError {
        SmtpError::Unavailable(self.err(fail.describe(step, sending)))
    }

    // -------------------------------------------------------------------------------
    // Opening a connection

    /// Connect, TLS, greeting, EHLO, STARTTLS, AUTH: a connection ready for MAIL.
    fn open(&mut self, deadline: Instant) -> Result<Conn, SmtpError> {
        if Instant::now() >= deadline {
            return Err(SmtpError::Unavailable(
                self.err("the deadline had passed before connecting".into()),
            ));
        }
        if !valid_hello_name(&self.hello) {
            return Err(SmtpError::Unavailable(self.err(format!(
                "'{}' is not a valid EHLO name ([email.smtp] hello_name)",
                sanitize(&self.hello)
            ))));
        }
        let tcp = self.connect_tcp(deadline)?;
        let mut conn = Conn::new(tcp);
        if self.settings.tls == TlsMode::Tls {
            self.start_tls(&mut conn, deadline)?;
        }
        let step = self.step("the greeting", deadline);
        let greeting = conn
            .read_reply(step.until)
            .map_err(|f| self.unavailable(f, &step, false))?;
        if greeting.code != 220 {
            return Err(SmtpError::Unavailable(
                self.err(format!("the server refused the connection: {}", greeting.text())),
            ));
        }
        self.ehlo(&mut conn, deadline)?;
        if self.settings.tls == TlsMode::Starttls {
            if !conn.ext.starttls {
                // Never go on in plain text: that is exactly what a downgrade attack does.
                return Err(SmtpError::Unavailable(self.err(format!(
                    "the server does not offer STARTTLS, and tls = \"starttls\" {}",
                    "forbids plain text (tls = \"none\" is for a trusted local relay only)"
                ))));
            }
            let step = self.step("STARTTLS", deadline);
            let reply = conn
                .command(b"STARTTLS\r\n", step.until)
                .map_err(|(f, sending)| self.unavailable(f, &step, sending))?;
            if reply.code != 220 {
                return Err(SmtpError::Unavailable(
                    self.err(format!("the server refused STARTTLS: {}", reply.text())),
                ));
            }
            if conn.has_buffered() {
                // Plain text sent after the 220 would be read as if it came over TLS
                // (CVE-2011-0411 and kin).
                return Err(SmtpError::Unavailable(self.err(
                    "the server sent data after its answer to STARTTLS; refusing the connection".into(),
                )));
            }
            self.start_tls(&mut conn, deadline)?;
            self.ehlo(&mut conn, deadline)?;
        }
        if self.settings.credentials.is_some() {
            self.auth(&mut conn, deadline)?;
        }
        tracing::debug!(
            "SMTP {}: connected ({}; pipelining {})",
            self.label,
            match (&conn.tls, self.settings.tls) {
                (Some(_), TlsMode::Tls) => "implicit TLS",
                (Some(_), _) => "STARTTLS",
                (None, _) => "no TLS",
            },
            if conn.ext.pipelining { "on" } else { "off" }
        );
        Ok(conn)
    }

    /// A TCP connection to the first address that answers, each address tried for at
    /// most the step timeout, all within the deadline.
    fn connect_tcp(&self, deadline: Instant) -> Result<TcpStream, SmtpError> {
        let addrs = self.resolve(&self.step("resolving the host name", deadline))?;
        let mut last_error = None;
        for addr in &addrs {
            let step = self.step("connecting", deadline);
            let Some(left) = remaining(step.until) else {
                break;
            };
            match TcpStream::connect_timeout(addr, left) {
                Ok(tcp) => {
                    // The body and its terminator are one write; Nagle would still hold
                    // small command writes back for the server's delayed ACK.
                    tcp.set_nodelay(true)
                        .map_err(|e| SmtpError::Unavailable(self.err(format!("setting TCP_NODELAY: {e}"))))?;
                    return Ok(tcp);
                }
                Err(e) if is_timeout(&e) => {
                    last_error = Some(format!("no answer from {addr} within {}", step.limit_text()))
                }
                Err(e) => last_error = Some(format!("{addr}: {e}")),
            }
        }
        Err(SmtpError::Unavailable(self.err(format!(
            "cannot connect: {}",
            last_error.unwrap_or_else(|| "the deadline passed before connecting".into())
        ))))
    }

    /// The host's addresses; the system resolver has no timeout, so it runs in a thread
    /// that is abandoned when the step's time is up.
    fn resolve(&self, step: &Step) -> Result<Vec<SocketAddr>, SmtpError> {
        let host = self.settings.host.trim().to_string();
        let port = self.settings.port;
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let (tx, rx) = mpsc::channel();
        let name = host.clone();
        std::thread::Builder::new()
            .name("smtp-resolve".into())
            .spawn(move || {
                let _ = tx.send((name.as_str(), port).to_socket_addrs().map(Iterator::collect));
            })
            .map_err(|e| SmtpError::Unavailable(self.err(format!("resolving the host: {e}"))))?;
        let wait = remaining(step.until).unwrap_or(Duration::ZERO);
        match rx.recv_timeout(wait) {
            Ok(Ok(addrs)) => {
                let addrs: Vec<SocketAddr> = addrs;
                if addrs.is_empty() {
                    Err(SmtpError::Unavailable(self.err(format!(
                        "the host name '{}' has no address",
                        sanitize(&host)
                    ))))
                } else {
                    Ok(addrs)
                }
            }
            Ok(Err(e)) => Err(SmtpError::Unavailable(
                self.err(format!("cannot resolve the host name '{}': {e}", sanitize(&host))),
            )),
            Err(_) => Err(SmtpError::Unavailable(self.err(format!(
                "the host name '{}' did not resolve within {}",
                sanitize(&host),
                step.limit_text()
            )))),
        }
    }

    fn tls_config(&mut self) -> Result<Arc<ClientConfig>, SmtpError> {
        if let Some(config) = &self.tls_config {
            return Ok(config.clone());
        }
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(pem) = &self.settings.extra_root_pem {
            let mut added = 0;
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| {
                    SmtpError::Unavailable(self.err(format!("reading the extra root certificates: {e}")))
                })?;
                roots.add(cert).map_err(|e| {
                    SmtpError::Unavailable(self.err(format!("an extra root certificate is unusable: {e}")))
                })?;
                added += 1;
            }
            if added == 0 {
                return Err(SmtpError::Unavailable(
                    self.err("the extra root certificates hold no PEM certificate".into()),
                ));
            }
        }
        let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| SmtpError::Unavailable(self.err(format!("TLS settings: {e}"))))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let config = Arc::new(config);
        self.tls_config = Some(config.clone());
        Ok(config)
    }

    /// The TLS handshake, certificates verified for the configured host name.
    fn start_tls(&mut self, conn: &mut Conn, deadline: Instant) -> Result<(), SmtpError> {
        let config = self.tls_config()?;
        let host = self.settings.host.trim().to_string();
        let name = ServerName::try_from(host.clone()).map_err(|_| {
            SmtpError::Unavailable(self.err(format!(
                "'{}' is not a host name a TLS certificate can be checked against",
                sanitize(&host)
            )))
        })?;
        let mut tls = ClientConnection::new(config, name)
            .map_err(|e| SmtpError::Unavailable(self.err(format!("TLS: {e}"))))?;
        let step = self.step("the TLS handshake", deadline);
        while tls.is_handshaking() {
            let mut io = Timed {
                tcp: &conn.tcp,
                until: step.until,
            };
            match tls.complete_io(&mut io) {
                Ok((0, 0)) if tls.is_handshaking() => {
                    return Err(self.unavailable(Fail::Closed, &step, false));
                }
                Ok(_) => {}
                Err(e) => return Err(self.unavailable(Fail::from_io(e), &step, false)),
            }
        }
        conn.tls = Some(Box::new(tls));
        Ok(())
    }

    /// EHLO, or HELO when the server does not know EHLO; reads the extensions.
    fn ehlo(&self, conn: &mut Conn, deadline: Instant) -> Result<(), SmtpError> {
        let step = self.step("EHLO", deadline);
        let command = format!("EHLO {}\r\n", self.hello);
        let reply = conn
            .command(command.as_bytes(), step.until)
            .map_err(|(f, sending)| self.unavailable(f, &step, sending))?;
        if reply.class() == 2 {
            conn.ext = Extensions::parse(&reply);
            return Ok(());
        }
        if reply.class() != 5 {
            return Err(SmtpError::Unavailable(
                self.err(format!("the server refused EHLO: {}", reply.text())),
            ));
        }
        let step = self.step("HELO", deadline);
        let command = format!("HELO {}\r\n", self.hello);
        let reply = conn
            .command(command.as_bytes(), step.until)
            .map_err(|(f, sending)| self.unavailable(f, &step, sending))?;
        if reply.class() != 2 {
            return Err(SmtpError::Unavailable(
                self.err(format!("the server refused EHLO and HELO: {}", reply.text())),
            ));
        }
        conn.ext = Extensions::default();
        Ok(())
    }

    /// AUTH PLAIN if offered, else AUTH LOGIN.
    fn auth(&self, conn: &mut Conn, deadline: Instant) -> Result<(), SmtpError> {
        let Some((user, password)) = &self.settings.credentials else {
            return Ok(());
        };
        let offered = &conn.ext.auth;
        if offered.is_empty() {
            let hint = if conn.tls.is_none() {
                " (servers often offer it only over TLS: set tls = \"starttls\" or \"tls\")"
            } else {
                ""
            };
            return Err(SmtpError::AuthFailed(self.err(format!(
                "a username is configured but the server offers no authentication{hint}"
            ))));
        }
        let step = self.step("AUTH", deadline);
        let io_error = |(f, sending): (Fail, bool)| self.unavailable(f, &step, sending);
        let refused = |reply: &Reply| -> SmtpError {
            let text = format!("login as '{}' refused: {}", sanitize(user), reply.text());
            match reply.class() {
                5 => SmtpError::AuthFailed(self.err(text)),
                _ => SmtpError::Unavailable(self.err(text)),
            }
        };
        let reply = if offered.iter().any(|m| m == "PLAIN") {
            let token = base64(format!("\0{user}\0{password}").as_bytes());
            let reply = conn
                .command(format!("AUTH PLAIN {token}\r\n").as_bytes(), step.until)
                .map_err(io_error)?;
            if reply.code == 334 {
                // A server that wants the response on its own line after all: cancel.
                let _ = conn.command(b"*\r\n", step.until);
                return Err(SmtpError::AuthFailed(self.err(
                    "the server did not take AUTH PLAIN with an initial response".into(),
                )));
            }
            reply
        } else if offered.iter().any(|m| m == "LOGIN") {
            let mut reply = conn.command(b"AUTH LOGIN\r\n", step.until).map_err(io_error)?;
            for secret in [user.as_str(), password.as_str()] {
                if reply.code != 334 {
                    break;
                }
                let line = format!("{}\r\n", base64(secret.as_bytes()));
                reply = conn.command(line.as_bytes(), step.until).map_err(io_error)?;
            }
            reply
        } else {
            return Err(SmtpError::AuthFailed(self.err(format!(
                "the server offers AUTH {}, notifyctl can do PLAIN and LOGIN",
                sanitize(&offered.join(" "))
            ))));
        };
        if reply.class() == 2 {
            Ok(())
        } else {
            Err(refused(&reply))
        }
    }

    // -------------------------------------------------------------------------------
    // One message

    fn transaction(
        &mut self,
        from: &str,
        to: &[String],
        message: &[u8],
        deadline: Instant,
        answer_by: Instant,
        overlap: &mut dyn Overlap,
    ) -> Result<String, Failure> {
        let Some(mut conn) = self.conn.take() else {
            return Err(Failure::new(
                SmtpError::Unavailable(self.err("not connected".into())),
                After::Drop,
            ));
        };
        let result = self.transaction_on(&mut conn, from, to, message, deadline, answer_by, overlap);
        self.conn = Some(conn);
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn transaction_on(
        &mut self,
        conn: &mut Conn,
        from: &str,
        to: &[String],
        message: &[u8],
        deadline: Instant,
        answer_by: Instant,
        overlap: &mut dyn Overlap,
    ) -> Result<String, Failure> {
        let refused = self.cannot_carry(conn, from, to, message);
        let mail = mail_command(from, to, message.is_ascii(), &conn.ext);
        match self.ahead.take() {
            // Its envelope went out after the last message: read the replies.
            Some(ahead) if refused.is_none() && ahead.mail == mail && ahead.to == to => {
                self.envelope_replies(conn, to, deadline)?;
            }
            // The server waits for the content of another envelope: only closing the
            // connection drops that transaction. Nothing of this message was sent.
            Some(_) => {
                return Err(Failure {
                    error: SmtpError::Unavailable(
                        self.err("the envelope sent ahead was for another message".into()),
                    ),
                    after: After::Drop,
                    stale: true,
                });
            }
            None => {
                if let Some(error) = refused {
                    return Err(Failure::new(error, After::Keep));
                }
                if conn.ext.pipelining {
                    self.envelope_pipelined(conn, &mail, to, deadline)?;
                } else {
                    self.envelope_one_by_one(conn, &mail, to, deadline)?;
                }
            }
        }
        self.content(conn, message, deadline, answer_by, overlap)
    }

    /// Why the server cannot take this message at all (before anything is sent).
    fn cannot_carry(&self, conn: &Conn, from: &str, to: &[String], message: &[u8]) -> Option<SmtpError> {
        let utf8_address = !from.is_ascii() || to.iter().any(|a| !a.is_ascii());
        if utf8_address && !conn.ext.smtp_utf8 {
            return Some(SmtpError::Permanent(self.err(
                "an address is not ASCII and the server does not offer SMTPUTF8".into(),
            )));
        }
        match conn.ext.size {
            Some(limit) if message.len() as u64 > limit => Some(SmtpError::Permanent(self.err(format!(
                "the message ({} bytes) is larger than the server's limit ({limit} bytes)",
                message.len()
            )))),
            _ => None,
        }
    }

    /// MAIL, every RCPT and DATA in one write, then their replies in order (RFC 2920).
    fn envelope_pipelined(
        &mut self,
        conn: &mut Conn,
        mail: &str,
        to: &[String],
        deadline: Instant,
    ) -> Result<(), Failure> {
        let mut commands = std::mem::take(&mut self.commands);
        commands.clear();
        envelope_commands(mail, to, &mut commands);
        let step = self.step("MAIL FROM", deadline);
        let written = conn.write(&commands, step.until);
        self.commands = commands;
        if let Err(fail) = written {
            let stale = fail.is_lost();
            return Err(Failure {
                error: self.unavailable(fail, &step, true),
                after: After::Drop,
                stale,
            });
        }
        self.envelope_replies(conn, to, deadline)
    }

    /// The replies to a pipelined MAIL, its RCPTs and DATA, in order.
    fn envelope_replies(&mut self, conn: &mut Conn, to: &[String], deadline: Instant) -> Result<(), Failure> {
        let mail_reply = self.reply_to(conn, "MAIL FROM", deadline, true)?;
        let mut rcpt_replies = Vec::with_capacity(to.len());
        for _ in to {
            rcpt_replies.push(self.reply_to(conn, "RCPT TO", deadline, false)?);
        }
        let data_reply = self.reply_to(conn, "DATA", deadline, false)?;
        let refused = if mail_reply.class() != 2 {
            Some(self.refusal("MAIL FROM", &mail_reply))
        } else {
            self.rcpt_refusal(to, &rcpt_replies)
        };
        match (refused, data_reply.code) {
            (None, 354) => Ok(()),
            (None, _) => Err(Failure::new(self.refusal("DATA", &data_reply), After::Reset)),
            // The server is waiting for the message it should not get: only closing the
            // connection abandons the transaction without delivering anything.
            (Some(error), 354) => Err(Failure::new(error, After::Drop)),
            // The usual case: DATA was answered 503/554 because MAIL or RCPT failed.
            (Some(error), _) => Err(Failure::new(error, After::Reset)),
        }
    }

    /// MAIL, each RCPT, DATA, each waiting for its reply.
    fn envelope_one_by_one(
        &mut self,
        conn: &mut Conn,
        mail: &str,
        to: &[String],
        deadline: Instant,
    ) -> Result<(), Failure> {
        self.command_ok(conn, "MAIL FROM", mail.as_bytes(), deadline, true)?;
        for rcpt in to {
            let line = format!("RCPT TO:<{rcpt}>\r\n");
            let step = self.step("RCPT TO", deadline);
            let reply = conn
                .command(line.as_bytes(), step.until)
                .map_err(|(f, sending)| Failure::new(self.unavailable(f, &step, sending), After::Drop))?;
            if reply.code == 421 {
                return Err(Failure::new(self.closing("RCPT TO", &reply), After::Drop));
            }
            if reply.class() != 2 {
                let error = self
                    .rcpt_refusal(std::slice::from_ref(rcpt), std::slice::from_ref(&reply))
                    .unwrap_or_else(|| self.refusal("RCPT TO", &reply));
                return Err(Failure::new(error, After::Reset));
            }
        }
        let step = self.step("DATA", deadline);
        let reply = conn
            .command(b"DATA\r\n", step.until)
            .map_err(|(f, sending)| Failure::new(self.unavailable(f, &step, sending), After::Drop))?;
        match reply.code {
            354 => Ok(()),
            421 => Err(Failure::new(self.closing("DATA", &reply), After::Drop)),
            _ => Err(Failure::new(self.refusal("DATA", &reply), After::Reset)),
        }
    }

    /// Send one command and expect 2xx.
    fn command_ok(
        &mut self,
        conn: &mut Conn,
        what: &'static str,
        line: &[u8],
        deadline: Instant,
        first: bool,
    ) -> Result<Reply, Failure> {
        let step = self.step(what, deadline);
        if let Err(fail) = conn.write(line, step.until) {
            let stale = first && fail.is_lost();
            return Err(Failure {
                error: self.unavailable(fail, &step, true),
                after: After::Drop,
                stale,
            });
        }
        let reply = self.reply_to(conn, what, deadline, first)?;
        if reply.class() == 2 {
            Ok(reply)
        } else {
            Err(Failure::new(self.refusal(what, &reply), After::Reset))
        }
    }

    /// Read the reply to `what`; a lost connection or a 421 (the server is closing) is a
    /// failure that drops the connection, stale when it is the first reply of a message.
    fn reply_to(
        &self,
        conn: &mut Conn,
        what: &'static str,
        deadline: Instant,
        first: bool,
    ) -> Result<Reply, Failure> {
        let step = self.step(what, deadline);
        match conn.read_reply(step.until) {
            Ok(reply) if reply.code == 421 => Err(Failure {
                error: self.closing(what, &reply),
                after: After::Drop,
                stale: first,
            }),
            Ok(reply) => Ok(reply),
            Err(fail) => {
                let stale = first && fail.is_lost();
                Err(Failure {
                    error: self.unavailable(fail, &step, false),
                    after: After::Drop,
                    stale,
                })
            }
        }
    }

    /// The body and its terminator in one write, then the final reply.
    fn content(
        &mut self,
        conn: &mut Conn,
        message: &[u8],
        deadline: Instant,
        answer_by: Instant,
        overlap: &mut dyn Overlap,
    ) -> Result<String, Failure> {
        let mut payload = std::mem::take(&mut self.payload);
        dot_stuff(message, &mut payload);
        let end_of_message = payload.len();
        // The next message's envelope in the same write: the server reads both at once and
        // answers them together (two writes got two answers, the second held back by the
        // server's Nagle until our ACK).
        let ahead = match overlap.next_envelope() {
            Some(next) if conn.ext.pipelining => self.envelope_ahead(conn, &next, &mut payload),
            _ => None,
        };
        let step = self.step("the message", deadline);
        let written = conn.write_counted(&payload, step.until);
        self.payload = payload;
        if let Err((fail, handed)) = written {
            // The terminator is the last byte of the message: unless it was handed to the
            // system (or we cannot tell), the server never had it, so nothing was accepted.
            let maybe_sent = ahead.is_some() && handed.is_none_or(|n| n >= end_of_message);
            let error = if maybe_sent {
                SmtpError::Unknown(self.err(format!(
                    "{}; the server may have accepted the message",
                    fail.describe(&step, true)
                )))
            } else {
                SmtpError::Unavailable(self.err(format!(
                    "{}; the message was not accepted",
                    fail.describe(&step, true)
                )))
            };
            return Err(Failure::new(error, After::Drop));
        }
        self.ahead = ahead;
        overlap.meanwhile();
        let step = Step::new(
            "the end of the message",
            self.settings.final_reply_timeout,
            answer_by,
            Limit::FinalReply,
        );
        let reply = match conn.read_reply(step.until) {
            Ok(reply) => reply,
            Err(fail) => {
                return Err(Failure::new(
                    SmtpError::Unknown(self.err(format!(
                        "{}; the server may have accepted the message",
                        fail.describe(&step, false)
                    ))),
                    After::Drop,
                ));
            }
        };
        // The reply to the dot ends the transaction: no RSET is needed after a refusal (and
        // one would be read as the content of an envelope sent ahead).
        match reply.class() {
            2 => Ok(reply.text()),
            // A reply, even "closing", means the message was not taken.
            _ if reply.code == 421 => Err(Failure::new(
                self.closing("the end of the message", &reply),
                After::Drop,
            )),
            4 | 5 if self.ahead.is_some() => {
                Err(Failure::new(self.refusal("the message", &reply), After::Keep))
            }
            4 | 5 => Err(Failure::new(self.refusal("the message", &reply), After::Reset)),
            _ => Err(Failure::new(
                SmtpError::Unknown(self.err(format!(
                    "unexpected reply to the end of the message: {}; the server may have \
                     accepted it",
                    reply.text()
                ))),
                After::Drop,
            )),
        }
    }

    /// The next message's MAIL, RCPT and DATA, appended to `payload` after this message's
    /// final dot; their replies are read when that message is sent. None for an envelope
    /// this connection could not take as it is: it then goes the usual way.
    fn envelope_ahead(&mut self, conn: &Conn, next: &Envelope, payload: &mut Vec<u8>) -> Option<Ahead> {
        let utf8_address = !next.from.is_ascii() || next.to.iter().any(|a| !a.is_ascii());
        if next.to.is_empty()
            || (utf8_address && !conn.ext.smtp_utf8)
            || std::iter::once(&next.from)
                .chain(&next.to)
                .any(|a| check_address(a).is_err())
        {
            return None;
        }
        // As for a message in ASCII, which is what the email channel builds: one that is
        // not gets its own envelope (the mismatch closes this connection first).
        let mail = mail_command(&next.from, &next.to, true, &conn.ext);
        let mut commands = std::mem::take(&mut self.commands);
        envelope_commands(&mail, &next.to, &mut commands);
        payload.extend_from_slice(&commands);
        self.commands = commands;
        Some(Ahead {
            mail,
            to: next.to.clone(),
        })
    }

    /// A 4xx or 5xx to a command of the transaction.
    fn refusal(&self, what: &str, reply: &Reply) -> SmtpError {
        match reply.class() {
            4 => SmtpError::Temporary(self.err(format!("{what} refused for now: {}", reply.text()))),
            5 => SmtpError::Permanent(self.err(format!("{what} refused: {}", reply.text()))),
            _ => SmtpError::Unavailable(self.err(format!("unexpected reply to {what}: {}", reply.text()))),
        }
    }

    /// The first refused recipient, as the message's error: a message goes to all of its
    /// recipients or to none, so that a retry never duplicates it for some. Any 5xx makes
    /// the whole message permanent (it can never reach everyone).
    fn rcpt_refusal(&self, to: &[String], replies: &[Reply]) -> Option<SmtpError> {
        let refused: Vec<(&String, &Reply)> =
            to.iter().zip(replies).filter(|(_, r)| r.class() != 2).collect();
        let (address, reply) = refused
            .iter()
            .find(|(_, r)| r.class() == 5)
            .or_else(|| refused.first())?;
        let what = format!("RCPT TO:<{}>", sanitize(address));
        Some(self.refusal(&what, reply))
    }

    fn closing(&self, what: &str, reply: &Reply) -> SmtpError {
        SmtpError::Unavailable(self.err(format!(
            "the server is closing the connection (reply to {what}): {}",
            reply.text()
        )))
    }
}

impl Drop for SmtpSession {
    fn drop(&mut self) {
        let grace = self.settings.step_timeout.min(QUIT_GRACE);
        self.quit(Instant::now() + grace);
    }
}

// -----------------------------------------------------------------------------------
// Time limits

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    /// `step_timeout`
    Step,
    /// `final_reply_timeout`
    FinalReply,
    /// The caller's deadline came first.
    Deadline,
}

/// One wait: what for, since when, until when, and which limit set it.
struct Step {
    what: &'static str,
    started: Instant,
    until: Instant,
    duration: Duration,
    limit: Limit,
}

impl Step {
    fn new(what: &'static str, duration: Duration, deadline: Instant, limit: Limit) -> Step {
        let started = Instant::now();
        let by_limit = started.checked_add(duration).unwrap_or(deadline);
        let (until, limit) = if by_limit <= deadline {
            (by_limit, limit)
        } else {
            (deadline, Limit::Deadline)
        };
        Step {
            what,
            started,
            until,
            duration,
            limit,
        }
    }

    /// "20s", or "1.0s (the deadline)", or "10m (final_reply_timeout)".
    fn limit_text(&self) -> String {
        match self.limit {
            Limit::Step => fmt_duration(self.duration),
            Limit::FinalReply => format!("{} (final_reply_timeout)", fmt_duration(self.duration)),
            Limit::Deadline => {
                // To the tenth of a second: the deadline was set a moment before this step.
                let ms = self.until.saturating_duration_since(self.started).as_millis();
                let rounded = Duration::from_millis(((ms + 50) / 100 * 100) as u64);
                format!("{} (the deadline)", fmt_duration(rounded))
            }
        }
    }
}

fn remaining(until: Instant) -> Option<Duration> {
    let now = Instant::now();
    (until > now).then(|| until - now)
}

fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms >= 60_000 && ms % 60_000 == 0 {
        format!("{}m", ms / 60_000)
    } else if ms >= 1000 && ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else if ms >= 1000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{ms}ms")
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock)
}

/// The socket seen through a time limit: every read or write waits at most until
/// `until`, recomputed before each system call.
struct Timed<'a> {
    tcp: &'a TcpStream,
    until: Instant,
}

fn time_left(until: Instant) -> io::Result<Duration> {
    remaining(until).ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "time is up"))
}

impl Read for Timed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tcp.set_read_timeout(Some(time_left(self.until)?))?;
        (&*self.tcp).read(buf).map_err(timed_out)
    }
}

impl Write for Timed<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.set_write_timeout(Some(time_left(self.until)?))?;
        (&*self.tcp).write(buf).map_err(timed_out)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A socket timeout shows as EAGAIN ("Resource temporarily unavailable") on Unix; name
/// it for what it is (rustls also reads WouldBlock as "try again later").
fn timed_out(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::WouldBlock {
        io::Error::new(io::ErrorKind::TimedOut, "timed out")
    } else {
        e
    }
}

// -----------------------------------------------------------------------------------
// The connection

/// Why a read or a write did not complete.
#[derive(Debug)]
enum Fail {
    Timeout { partial: bool },
    Closed,
    Io(String),
    Tls(String),
    Malformed(String),
}

impl Fail {
    fn from_io(e: io::Error) -> Fail {
        match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Fail::Timeout { partial: false },
            io::ErrorKind::UnexpectedEof => Fail::Closed,
            io::ErrorKind::InvalidData => Fail::Tls(e.to_string()),
            _ => Fail::Io(e.to_string()),
        }
    }

    /// The server went away (closed, reset): as opposed to a timeout or a bad reply.
    fn is_lost(&self) -> bool {
        matches!(self, Fail::Closed | Fail::Io(_))
    }

    fn describe(&self, step: &Step, sending: bool) -> String {
        let what = step.what;
        let elapsed = fmt_duration(step.started.elapsed());
        match self {
            Fail::Timeout { .. } if sending => format!(
                "could not send {what} within {}: the server is not reading",
                step.limit_text()
            ),
            Fail::Timeout { partial: false } => {
                format!("no reply to {what} within {}", step.limit_text())
            }
            Fail::Timeout { partial: true } => format!(
                "the reply to {what} was still incomplete after {}",
                step.limit_text()
            ),
            Fail::Closed if sending => {
                format!("the server closed the connection while we sent {what} (after {elapsed})")
            }
            Fail::Closed => {
                format!("the server closed the connection instead of answering {what} (after {elapsed})")
            }
            Fail::Io(e) if sending => format!("connection lost while sending {what}: {e}"),
            Fail::Io(e) => format!("connection lost while waiting for the reply to {what}: {e}"),
            Fail::Tls(e) => format!("TLS error during {what}: {e}"),
            Fail::Malformed(m) => format!("malformed reply to {what}: {m}"),
        }
    }
}

struct Conn {
    tcp: TcpStream,
    tls: Option<Box<ClientConnection>>,
    /// Bytes received and not yet parsed (pipelined replies arrive together).
    received: Vec<u8>,
    ext: Extensions,
}

impl Conn {
    fn new(tcp: TcpStream) -> Conn {
        Conn {
            tcp,
            tls: None,
            received: Vec::with_capacity(1024),
            ext: Extensions::default(),
        }
    }

    /// Bytes received but not yet parsed as a reply.
    fn has_buffered(&self) -> bool {
        !self.received.is_empty()
    }

    fn write(&mut self, data: &[u8], until: Instant) -> Result<(), Fail> {
        let mut io = Timed {
            tcp: &self.tcp,
            until,
        };
        let result = match &mut self.tls {
            None => io.write_all(data),
            Some(tls) => {
                let mut stream = rustls::Stream::new(tls.as_mut(), &mut io);
                stream.write_all(data).and_then(|_| stream.flush())
            }
        };
        result.map_err(|e| match e.kind() {
            io::ErrorKind::WriteZero => Fail::Closed,
            _ => Fail::from_io(e),
        })
    }

    /// As [`write`](Self::write); a failure says how many bytes had been handed to the
    /// system before it (None over TLS, where records are written whole and that count is
    /// not known).
    fn write_counted(&mut self, data: &[u8], until: Instant) -> Result<(), (Fail, Option<usize>)> {
        if self.tls.is_some() {
            return self.write(data, until).map_err(|f| (f, None));
        }
        let mut io = Timed {
            tcp: &self.tcp,
            until,
        };
        let mut handed = 0;
        while handed < data.len() {
            match io.write(&data[handed..]) {
                Ok(0) => return Err((Fail::Closed, Some(handed))),
                Ok(n) => handed += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err((Fail::from_io(e), Some(handed))),
            }
        }
        Ok(())
    }

    /// Read more bytes into `received`.
    fn fill(&mut self, until: Instant) -> Result<(), Fail> {
        let mut chunk = [0u8; 8192];
        loop {
            let mut io = Timed {
                tcp: &self.tcp,
                until,
            };
            let read = match &mut self.tls {
                None => io.read(&mut chunk),
                Some(tls) => rustls::Stream::new(tls.as_mut(), &mut io).read(&mut chunk),
            };
            match read {
                Ok(0) => return Err(Fail::Closed),
                Ok(n) => {
                    self.received.extend_from_slice(&chunk[..n]);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // rustls: a record with no application data yet; the next read waits.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && self.tls.is_some() => {
                    if remaining(until).is_none() {
                        return Err(Fail::Timeout { partial: false });
                    }
                }
                Err(e) => return Err(Fail::from_io(e)),
            }
        }
    }

    /// One reply, single- or multi-line, size-capped.
    fn read_reply(&mut self, until: Instant) -> Result<Reply, Fail> {
        let mut parser = ReplyParser::default();
        loop {
            match parser.feed(&self.received) {
                Ok(Some((reply, used))) => {
                    self.received.drain(..used);
                    return Ok(reply);
                }
                Ok(None) => {}
                Err(m) => return Err(Fail::Malformed(m)),
            }
            match self.fill(until) {
                Ok(()) => {}
                Err(Fail::Timeout { .. }) => {
                    return Err(Fail::Timeout {
                        partial: !self.received.is_empty(),
                    })
                }
                Err(f) => return Err(f),
            }
        }
    }

    /// Write a command and read its reply; the flag says whether the failure was while
    /// sending.
    fn command(&mut self, line: &[u8], until: Instant) -> Result<Reply, (Fail, bool)> {
        self.write(line, until).map_err(|f| (f, true))?;
        self.read_reply(until).map_err(|f| (f, false))
    }
}

// -----------------------------------------------------------------------------------
// Replies

#[derive(Debug, Clone, PartialEq, Eq)]
struct Reply {
    code: u16,
    /// The text of each line, after the code and its separator.
    lines: Vec<String>,
}

impl Reply {
    fn class(&self) -> u16 {
        self.code / 100
    }

    /// "250 2.0.0 Ok: queued as X": the code and the lines' text, sanitized and capped.
    fn text(&self) -> String {
        let joined = self.lines.join(" ");
        let joined = joined.trim();
        if joined.is_empty() {
            self.code.to_string()
        } else {
            sanitize(&format!("{} {joined}", self.code))
        }
    }
}

/// Parses one reply from the start of a buffer, line by line, remembering how far it got
/// so that a reply arriving a byte at a time is not parsed again from the start.
#[derive(Default)]
struct ReplyParser {
    /// Bytes of complete lines already parsed.
    parsed: usize,
    code: Option<u16>,
    lines: Vec<String>,
}

impl ReplyParser {
    /// `Ok(Some((reply, bytes used)))` when complete, `Ok(None)` when more is needed.
    fn feed(&mut self, buf: &[u8]) -> Result<Option<(Reply, usize)>, String> {
        loop {
            let rest = buf.get(self.parsed..).unwrap_or_default();
            let Some(end) = rest.iter().position(|&b| b == b'\n') else {
                if rest.len() > MAX_LINE_BYTES {
                    return Err(format!("a line longer than {MAX_LINE_BYTES} bytes"));
                }
                if self.parsed + rest.len() > MAX_REPLY_BYTES {
                    return Err(format!("longer than {} KB", MAX_REPLY_BYTES / 1024));
                }
                return Ok(None);
            };
            if end > MAX_LINE_BYTES {
                return Err(format!("a line longer than {MAX_LINE_BYTES} bytes"));
            }
            self.parsed += end + 1;
            if self.parsed > MAX_REPLY_BYTES {
                return Err(format!("longer than {} KB", MAX_REPLY_BYTES / 1024));
            }
            let line = rest[..end].strip_suffix(b"\r").unwrap_or(&rest[..end]);
            let (code, last, text) = parse_line(line)?;
            if self.code.is_some_and(|c| c != code) {
                return Err(format!(
                    "lines with different codes ({} then {code})",
                    self.code.unwrap_or_default()
                ));
            }
            self.code = Some(code);
            self.lines.push(String::from_utf8_lossy(text).into_owned());
            if last {
                let reply = Reply {
                    code,
                    lines: std::mem::take(&mut self.lines),
                };
                return Ok(Some((reply, self.parsed)));
            }
        }
    }
}

/// "250-text", "250 text" or "250": the code, whether it is the last line, the text.
fn parse_line(line: &[u8]) -> Result<(u16, bool, &[u8]), String> {
    let bad = || {
        format!(
            "'{}' is not an SMTP reply line",
            sanitize(&String::from_utf8_lossy(line))
        )
    };
    let digits = line.get(..3).ok_or_else(bad)?;
    if !digits.iter().all(u8::is_ascii_digit) || !(b'2'..=b'5').contains(&digits[0]) {
        return Err(bad());
    }
    let code = digits.iter().fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    match line.get(3) {
        None => Ok((code, true, &[])),
        Some(b' ') => Ok((code, true, &line[4..])),
        Some(b'-') => Ok((code, false, &line[4..])),
        Some(_) => Err(bad()),
    }
}

/// What the server announced in its EHLO reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Extensions {
    pipelining: bool,
    eight_bit_mime: bool,
    smtp_utf8: bool,
    starttls: bool,
    /// Mechanisms, upper case.
    auth: Vec<String>,
    /// The largest message accepted, when the server says.
    size: Option<u64>,
}

impl Extensions {
    fn parse(reply: &Reply) -> Extensions {
        let mut ext = Extensions::default();
        // The first line is the server's greeting text, not an extension.
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            let keyword = keyword.to_ascii_uppercase();
            match keyword.as_str() {
                "PIPELINING" => ext.pipelining = true,
                "8BITMIME" => ext.eight_bit_mime = true,
                "SMTPUTF8" => ext.smtp_utf8 = true,
                "STARTTLS" => ext.starttls = true,
                "SIZE" => {
                    ext.size = words
                        .next()
                        .and_then(|n| n.parse::<u64>().ok())
                        .filter(|&n| n > 0);
                }
                _ => {
                    // "AUTH PLAIN LOGIN", and the pre-standard "AUTH=PLAIN LOGIN".
                    let first = if keyword == "AUTH" {
                        None
                    } else if let Some(first) = keyword.strip_prefix("AUTH=") {
                        Some(first.to_string())
                    } else {
                        continue;
                    };
                    for mechanism in first
                        .into_iter()
                        .chain(words.map(str::to_ascii_uppercase))
                        .filter(|m| !m.is_empty())
                    {
                        if !ext.auth.contains(&mechanism) {
                            ext.auth.push(mechanism);
                        }
                    }
                }
            }
        }
        ext
    }
}

// -----------------------------------------------------------------------------------
// Small helpers

/// Server text for an error or a receipt: control characters removed, length capped.
fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_SERVER_TEXT + 3));
    for (count, c) in text.chars().filter(|c| !c.is_control()).enumerate() {
        if count == MAX_SERVER_TEXT {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out
}

/// An address that can go between `<` and `>` on a command line.
fn check_address(address: &str) -> Result<(), String> {
    if address.len() > 512 {
        return Err("an address is longer than 512 bytes".into());
    }
    if address
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '<' || c == '>')
    {
        return Err(format!(
            "'{}' cannot be used as an SMTP address (spaces, control characters or angle brackets)",
            sanitize(address)
        ));
    }
    Ok(())
}

fn valid_hello_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_[]:".contains(&b))
}

fn default_hello_name() -> String {
    hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| valid_hello_name(h))
        .unwrap_or_else(|| "localhost".to_string())
}

/// The message as it goes after DATA: bare LF made CRLF, lines starting with a dot
/// doubled (RFC 5321 §4.5.2), ending in CRLF, then the terminating ".\r\n".
fn dot_stuff(message: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(message.len() + message.len() / 32 + 5);
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        match line.strip_suffix(b"\n") {
            Some(body) if !body.ends_with(b"\r") => {
                out.extend_from_slice(body);
                out.extend_from_slice(b"\r\n");
            }
            _ => out.extend_from_slice(line),
        }
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

/// The MAIL command for a message from `from` to `to`, with the parameters it needs.
fn mail_command(from: &str, to: &[String], ascii: bool, ext: &Extensions) -> String {
    let mut mail = format!("MAIL FROM:<{from}>");
    if !ascii && ext.eight_bit_mime {
        mail.push_str(" BODY=8BITMIME");
    }
    if !from.is_ascii() || to.iter().any(|a| !a.is_ascii()) {
        mail.push_str(" SMTPUTF8");
    }
    mail.push_str("\r\n");
    mail
}

/// MAIL, a RCPT per recipient and DATA, as one pipelined group.
fn envelope_commands(mail: &str, to: &[String], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(mail.as_bytes());
    for rcpt in to {
        out.extend_from_slice(b"RCPT TO:<");
        out.extend_from_slice(rcpt.as_bytes());
        out.extend_from_slice(b">\r\n");
    }
    out.extend_from_slice(b"DATA\r\n");
}

/// Standard base64 with padding (RFC 4648), for AUTH.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    //! Against scripted servers on 127.0.0.1: each test's server plays one conversation
    //! (or misbehaviour) and records what it received, line by line.

    use super::*;
    use std::io::{BufRead, BufReader};
    use std::net::{Shutdown, TcpListener};
    use std::sync::Mutex;
    use std::thread;

    use rustls::pki_types::PrivateKeyDer;
    use rustls::{ServerConfig, ServerConnection, StreamOwned};

    /// A throwaway CA and a certificate for 127.0.0.1 and localhost it signed (valid until
    /// 2126), made with openssl for these tests only.
    const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIB2DCCAX2gAwIBAgIUEAmt7/wOxBypnXxCxvvzcktg74swCgYIKoZIzj0EAwIw
ODE2MDQGA1UEAwwtbm90aWZ5Y3RsIHRlc3QgQ0EgKG5ldmVyIHRydXN0IG91dHNp
ZGUgdGVzdHMpMCAXDTI2MTEyMzEwNDMwM1oYDzIxMjYxMDMwMTA0MzAzWjA4MTYw
NAYDVQQDDC1ub3RpZnljdGwgdGVzdCBDQSAobmV2ZXIgdHJ1c3Qgb3V0c2lkZSB0
ZXN0cykwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQ1n+58BBIxK6oGOYfASl7q
9sBQ1lwfZuBXk7L75VJ0NvIfRiDdXQgoGj3Wo85llAvJkmWyi/eqNtSDhv/sf7qk
o2MwYTAdBgNVHQ4EFgQUtUf5N60/ogkYtvX1PGXxNkHB0KwwHwYDVR0jBBgwFoAU
tUf5N60/ogkYtvX1PGXxNkHB0KwwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8E
BAMCAQYwCgYIKoZIzj0EAwIDSQAwRgIhAMH6D+VVms/JUM4RBBXP1vXGOpJapdWl
p/8WLt2blt+QAiEAy3+QLQvRn0i0/FORITQi66avHrCOYWEvztlxLs9ACzM=
-----END CERTIFICATE-----
";
    const TEST_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIB4jCCAYmgAwIBAgIUJQELwMFgGOoj/vqfNVpt0sLzXuQwCgYIKoZIzj0EAwIw
ODE2MDQGA1UEAwwtbm90aWZ5Y3RsIHRlc3QgQ0EgKG5ldmVyIHRydXN0IG91dHNp
ZGUgdGVzdHMpMCAXDTI2MTEyMzEwNDMwM1oYDzIxMjYxMDMwMTA0MzAzWjAUMRIw
EAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATA8m1g
X9bYO+efbF57w9EKoOkS+WM3tsrUQk59npBzKLhUyhn5eiLErl6xcWq5bsfBsq18
7/pGXU0Iff/KAQcWo4GSMIGPMAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQDAgWg
MBMGA1UdJQQMMAoGCCsGAQUFBwMBMBoGA1UdEQQTMBGHBH8AAAGCCWxvY2FsaG9z
dDAdBgNVHQ4EFgQU39XMoTtOZh2w2ArhcrcJk73JjN4wHwYDVR0jBBgwFoAUtUf5
N60/ogkYtvX1PGXxNkHB0KwwCgYIKoZIzj0EAwIDRwAwRAIgd8FMf7YgcIRwZwal
kYHflyNpeCjCS9z41OqbqAodLc4CIHcXu3ihsDzB30M7sPofMYbu1+zGSAJ8jnKw
RoDvxAnS
-----END CERTIFICATE-----
";
    const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgIGlp6BEAcYR395SN
eEfHNWsn0nzdkZUZKVNb9sbdM+ShRANCAATA8m1gX9bYO+efbF57w9EKoOkS+WM3
tsrUQk59npBzKLhUyhn5eiLErl6xcWq5bsfBsq187/pGXU0Iff/KAQcW
-----END PRIVATE KEY-----
";

    trait Io: Read + Write + Send {}
    impl<T: Read + Write + Send> Io for T {}

    /// The server's side of one connection.
    struct Peer {
        tcp: TcpStream,
        io: BufReader<Box<dyn Io>>,
        log: Arc<Mutex<Vec<String>>>,
        /// 0 for the first connection of the test, 1 for the next...
        index: usize,
    }

    impl Peer {
        fn say(&mut self, text: &str) {
            let out = self.io.get_mut();
            let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
        }

        /// One line, without its CRLF, recorded; None at the end of the connection.
        fn line(&mut self) -> Option<String> {
            let mut raw = Vec::new();
            match self.io.read_until(b'\n', &mut raw) {
                Ok(0) | Err(_) => None,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&raw)
                        .trim_end_matches(['\r', '\n'])
                        .to_string();
                    self.log.lock().unwrap().push(line.clone());
                    Some(line)
                }
            }
        }

        /// The message after DATA up to the final dot, as sent (still dot-stuffed);
        /// recorded as one entry.
        fn data(&mut self) -> Option<String> {
            let mut body = String::new();
            loop {
                let mut raw = Vec::new();
                match self.io.read_until(b'\n', &mut raw) {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
                if raw == b".\r\n" {
                    break;
                }
                body.push_str(&String::from_utf8_lossy(&raw));
            }
            self.log.lock().unwrap().push(format!("<message>{body}"));
            Some(body)
        }

        /// What arrived without waiting for a reply: the bytes buffered after a pause.
        fn pending_after(&mut self, pause: Duration) -> String {
            thread::sleep(pause);
            String::from_utf8_lossy(self.io.fill_buf().unwrap_or_default()).into_owned()
        }

        /// Stop reading and writing; returns when the client has closed its side.
        fn hang(&mut self) {
            while self.line().is_some() {}
        }

        fn starttls(&mut self) {
            let tls = ServerConnection::new(server_tls()).unwrap();
            let tcp = self.tcp.try_clone().unwrap();
            self.io = BufReader::new(Box::new(StreamOwned::new(tls, tcp)));
        }
    }

    fn server_tls() -> Arc<ServerConfig> {
        let cert = CertificateDer::from_pem_slice(TEST_CERT.as_bytes()).unwrap();
        let key = PrivateKeyDer::from_pem_slice(TEST_KEY.as_bytes()).unwrap();
        let config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        Arc::new(config)
    }

    struct Server {
        port: u16,
        log: Arc<Mutex<Vec<String>>>,
        connections: Arc<Mutex<usize>>,
    }

    impl Server {
        /// Serve connections one after the other with `script`, in plain TCP or, with
        /// `implicit_tls`, TLS from the first byte.
        fn start(implicit_tls: bool, script: impl FnMut(&mut Peer) + Send + 'static) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let log = Arc::new(Mutex::new(Vec::new()));
            let connections = Arc::new(Mutex::new(0));
            let (log2, count) = (log.clone(), connections.clone());
            let mut script = script;
            thread::spawn(move || {
                for (index, tcp) in listener.incoming().flatten().enumerate() {
                    *count.lock().unwrap() += 1;
                    tcp.set_nodelay(true).unwrap();
                    let io: Box<dyn Io> = if implicit_tls {
                        let tls = ServerConnection::new(server_tls()).unwrap();
                        Box::new(StreamOwned::new(tls, tcp.try_clone().unwrap()))
                    } else {
                        Box::new(tcp.try_clone().unwrap())
                    };
                    let mut peer = Peer {
                        tcp,
                        io: BufReader::new(io),
                        log: log2.clone(),
                        index,
                    };
                    script(&mut peer);
                    let _ = peer.tcp.shutdown(Shutdown::Both);
                }
            });
            Server {
                port,
                log,
                connections,
            }
        }

        fn log(&self) -> Vec<String> {
            self.log.lock().unwrap().clone()
        }

        fn connections(&self) -> usize {
            *self.connections.lock().unwrap()
        }

        /// The log once the client has said QUIT (or given up).
        fn log_after_quit(&self) -> Vec<String> {
            for _ in 0..100 {
                let log = self.log();
                if log.last().is_some_and(|l| l == "QUIT") {
                    return log;
                }
                thread::sleep(Duration::from_millis(10));
            }
            self.log()
        }
    }

    /// Greeting and EHLO, announcing `extensions`.
    fn greet(peer: &mut Peer, extensions: &[&str]) -> bool {
        peer.say("220 test.local ESMTP ready\r\n");
        let Some(ehlo) = peer.line() else {
            return false;
        };
        assert!(ehlo.starts_with("EHLO "), "{ehlo}");
        // "250-test.local\r\n250-EXT1\r\n250 EXT2\r\n", or "250 test.local\r\n".
        let mut lines = vec!["test.local".to_string()];
        lines.extend(extensions.iter().map(|e| e.to_string()));
        let mut text = String::new();
        for (i, line) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            text.push_str(&format!("250{sep}{line}\r\n"));
        }
        peer.say(&text);
        true
    }

    /// Answer commands until QUIT or the end of the connection. `answer` may replace the
    /// default reply to a command ("." stands for the end of a message): `Some("<close>")`
    /// closes the connection, `Some("<hang>")` stops answering, a 421 is said and closes.
    fn converse(peer: &mut Peer, mut answer: impl FnMut(&str) -> Option<String>) {
        while let Some(line) = peer.line() {
            let upper = line.to_ascii_uppercase();
            let default = if upper == "DATA" {
                "354 go ahead"
            } else if upper == "QUIT" {
                "221 bye"
            } else {
                "250 OK"
            };
            let reply = answer(&line).unwrap_or_else(|| default.to_string());
            match reply.as_str() {
                "<close>" => return,
                "<hang>" => return peer.hang(),
                _ => peer.say(&format!("{reply}\r\n")),
            }
            if upper == "QUIT" || reply.starts_with("421") {
                return;
            }
            if upper == "DATA" && reply.starts_with("354") {
                if peer.data().is_none() {
                    return;
                }
                let reply = answer(".").unwrap_or_else(|| "250 2.0.0 Ok: queued as T1".into());
                match reply.as_str() {
                    "<close>" => return,
                    "<hang>" => return peer.hang(),
                    _ => peer.say(&format!("{reply}\r\n")),
                }
            }
        }
    }

    /// A plain server announcing `extensions`, answering with `answer`.
    fn plain_server(
        extensions: &'static [&'static str],
        answer: impl FnMut(&str) -> Option<String> + Send + Clone + 'static,
    ) -> Server {
        Server::start(false, move |peer| {
            if greet(peer, extensions) {
                converse(peer, answer.clone());
            }
        })
    }

    fn settings(port: u16) -> SmtpSettings {
        SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            tls: TlsMode::None,
            credentials: None,
            hello_name: Some("client.test".into()),
            step_timeout: Duration::from_secs(5),
            final_reply_timeout: Duration::from_secs(5),
            extra_root_pem: None,
        }
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    fn to(address: &str) -> Vec<String> {
        vec![address.to_string()]
    }

    const MESSAGE: &[u8] = b"Subject: hi\r\n\r\nHello\r\n.leading dot\r\n..two\r\nbare LF\nend";

    fn none_answer(_: &str) -> Option<String> {
        None
    }

    // ---------------------------------------------------------------------------------
    // Happy paths

    #[test]
    fn pipelining_sends_mail_rcpt_and_data_in_one_go() {
        let pending = Arc::new(Mutex::new(String::new()));
        let seen = pending.clone();
        let server = Server::start(false, move |peer| {
            if !greet(peer, &["PIPELINING", "8BITMIME", "SIZE 100000"]) {
                return;
            }
            if peer.index == 0 {
                *seen.lock().unwrap() = peer.pending_after(Duration::from_millis(300));
            }
            converse(peer, none_answer);
        });
        let mut session = SmtpSession::new(settings(server.port));
        let reply = session
            .send("from@example.org", &to("to@example.net"), MESSAGE, soon())
            .unwrap();
        assert_eq!(reply, "250 2.0.0 Ok: queued as T1");
        let accented = "Subject: caf\u{e9}\r\n\r\nd\u{e9}j\u{e0}\r\n".as_bytes();
        session
            .send("from@example.org", &to("other@example.net"), accented, soon())
            .unwrap();
        session.quit(soon());
        assert_eq!(
            *pending.lock().unwrap(),
            "MAIL FROM:<from@example.org>\r\nRCPT TO:<to@example.net>\r\nDATA\r\n",
            "MAIL, RCPT and DATA arrived before any reply"
        );
        assert_eq!(
            server.log_after_quit(),
            vec![
                "EHLO client.test".to_string(),
                "MAIL FROM:<from@example.org>".into(),
                "RCPT TO:<to@example.net>".into(),
                "DATA".into(),
                "<message>Subject: hi\r\n\r\nHello\r\n..leading dot\r\n...two\r\nbare LF\r\nend\r\n".into(),
                "MAIL FROM:<from@example.org> BODY=8BITMIME".into(),
                "RCPT TO:<other@example.net>".into(),
                "DATA".into(),
                format!("<message>{}", String::from_utf8_lossy(accented)),
                "QUIT".into(),
            ]
        );
        assert_eq!(server.connections(), 1, "one connection for both messages");
    }

    /// The caller's side in these tests: the next message's envelope, once; how many times
    /// it was asked for it and called while the server answered.
    #[derive(Default)]
    struct Next {
        envelope: Option<Envelope>,
        asked: usize,
        meanwhile: usize,
    }

    impl Next {
        fn to(address: &str) -> Next {
            Next {
                envelope: Some(Envelope {
                    from: "from@example.org".into(),
                    to: to(address),
                }),
                ..Default::default()
            }
        }
    }

    impl Overlap for Next {
        fn next_envelope(&mut self) -> Option<Envelope> {
            self.asked += 1;
            self.envelope.take()
        }

        fn meanwhile(&mut self) {
            self.meanwhile += 1;
        }
    }

    fn send_with(
        session: &mut SmtpSession,
        address: &str,
        message: &[u8],
        next: &mut Next,
    ) -> Result<String, SmtpError> {
        session.send_until("from@example.org", &to(address), message, soon(), soon(), next)
    }

    #[test]
    fn the_next_envelope_goes_out_with_the_final_dot_and_is_answered_with_it() {
        let pending = Arc::new(Mutex::new(String::new()));
        let seen = pending.clone();
        let server = Server::start(false, move |peer| {
            if !greet(peer, &["PIPELINING"]) {
                return;
            }
            for _ in 0..3 {
                peer.line();
            }
            peer.say("250 OK\r\n250 OK\r\n354 go ahead\r\n");
            peer.data();
            // Before the dot is answered, the next envelope is already here.
            *seen.lock().unwrap() = peer.pending_after(Duration::from_millis(300));
            peer.say("250 2.0.0 Ok: queued as T1\r\n");
            converse(peer, none_answer);
        });
        let mut session = SmtpSession::new(settings(server.port));
        let mut next = Next::to("second@example.net");
        assert_eq!(
            send_with(&mut session, "first@example.net", b"one", &mut next).unwrap(),
            "250 2.0.0 Ok: queued as T1"
        );
        assert_eq!((next.asked, next.meanwhile), (1, 1));
        assert_eq!(
            *pending.lock().unwrap(),
            "MAIL FROM:<from@example.org>\r\nRCPT TO:<second@example.net>\r\nDATA\r\n"
        );
        // The second message uses the envelope sent ahead: no second MAIL.
        send_with(&mut session, "second@example.net", b"two", &mut Next::default()).unwrap();
        session.quit(soon());
        assert_eq!(
            server.log_after_quit(),
            vec![
                "EHLO client.test".to_string(),
                "MAIL FROM:<from@example.org>".into(),
                "RCPT TO:<first@example.net>".into(),
                "DATA".into(),
                "<message>one\r\n".into(),
                "MAIL FROM:<from@example.org>".into(),
                "RCPT TO:<second@example.net>".into(),
                "DATA".into(),
                "<message>two\r\n".into(),
                "QUIT".into(),
            ]
        );
        assert_eq!(server.connections(), 1);
    }

    #[test]
    fn an_envelope_sent_ahead_for_another_message_is_dropped_with_its_connection() {
        // The next message turns out to go elsewhere, to need 8BITMIME, or never to come:
        // the server never gets content for the envelope sent ahead, and no QUIT or RSET
        // that it would read as that content.
        let server = plain_server(&["PIPELINING", "8BITMIME"], none_answer);
        let mut session = SmtpSession::new(settings(server.port));
        send_with(
            &mut session,
            "a@example.net",
            b"one",
            &mut Next::to("b@example.net"),
        )
        .unwrap();
        send_with(
            &mut session,
            "c@example.net",
            b"two",
            &mut Next::to("d@example.net"),
        )
        .unwrap();
        send_with(
            &mut session,
            "d@example.net",
            "caf\u{e9}".as_bytes(),
            &mut Next::to("e@example.net"),
        )
        .unwrap();
        drop(session);
        thread::sleep(Duration::from_millis(200));
        let log = server.log();
        let messages: Vec<&String> = log.iter().filter(|l| l.starts_with("<message>")).collect();
        assert_eq!(
            messages,
            ["<message>one\r\n", "<message>two\r\n", "<message>caf\u{e9}\r\n"]
        );
        assert!(!log.iter().any(|l| l == "QUIT" || l == "RSET"), "{log:?}");
        assert_eq!(server.connections(), 3, "{log:?}");
        let mails: Vec<&String> = log.iter().filter(|l| l.starts_with("MAIL")).collect();
        assert_eq!(mails.len(), 6, "{log:?}");
        assert_eq!(
            mails[5], "MAIL FROM:<from@example.org>",
            "the last envelope was sent ahead"
        );
        assert_eq!(mails[4], "MAIL FROM:<from@example.org> BODY=8BITMIME");
    }

    #[test]
    fn refusals_around_an_envelope_sent_ahead_cost_only_their_own_message() {
        // The first message is refused after its dot; the second's recipient is.
        let (mut dots, mut no_recipient) = (0, false);
        let server = plain_server(&["PIPELINING"], move |line| match line {
            "." => {
                dots += 1;
                (dots == 1).then(|| "554 5.7.1 spam".into())
            }
            "RCPT TO:<refused@example.net>" => {
                no_recipient = true;
                Some("550 5.1.1 no such user".into())
            }
            "DATA" if std::mem::take(&mut no_recipient) => Some("554 5.5.1 no valid recipients".into()),
            _ => None,
        });
        let mut session = SmtpSession::new(settings(server.port));
        let first = send_with(
            &mut session,
            "a@example.net",
            b"one",
            &mut Next::to("refused@example.net"),
        );
        assert!(
            matches!(&first, Err(SmtpError::Permanent(t)) if t.contains("554 5.7.1 spam")),
            "{first:?}"
        );
        let second = send_with(
            &mut session,
            "refused@example.net",
            b"two",
            &mut Next::to("c@example.net"),
        );
        assert!(
            matches!(&second, Err(SmtpError::Permanent(t)) if t.contains("RCPT TO:<refused@example.net> refused: 550 5.1.1")),
            "{second:?}"
        );
        send_with(&mut session, "c@example.net", b"three", &mut Next::default()).unwrap();
        session.quit(soon());
        let log = server.log_after_quit();
        assert_eq!(
            log.iter().filter(|l| l.starts_with("<message>")).count(),
            2,
            "{log:?}"
        );
        // No RSET after the refused dot (it would have been read as the next message's
        // content); one after the refused recipient.
        assert_eq!(log.iter().filter(|l| *l == "RSET").count(), 1, "{log:?}");
        assert_eq!(server.connections(), 1, "{log:?}");
    }

    #[test]
    fn without_pipelining_each_command_waits_for_its_reply() {
        let pending = Arc::new(Mutex::new(String::new()));
        let seen = pending.clone();
        let server = Server::start(false, move |peer| {
            if !greet(peer, &[]) {
                return;
            }
            *seen.lock().unwrap() = peer.pending_after(Duration::from_millis(300));
            converse(peer, none_answer);
        });
        let mut session = SmtpSession::new(settings(server.port));
        let recipients = vec!["a@example.net".to_string(), "b@example.net".to_string()];
        // Not 8-bit clean: no BODY parameter even for a non-ASCII body.
        session
            .send("from@example.org", &recipients, "caf\u{e9}".as_bytes(), soon())
            .unwrap();
        session.quit(soon());
        assert_eq!(*pending.lock().unwrap(), "MAIL FROM:<from@example.org>\r\n");
        assert_eq!(
            server.log_after_quit(),
            vec![
                "EHLO client.test".to_string(),
                "MAIL FROM:<from@example.org>".into(),
                "RCPT TO:<a@example.net>".into(),
                "RCPT TO:<b@example.net>".into(),
                "DATA".into(),
                "<message>caf\u{e9}\r\n".into(),
                "QUIT".into(),
            ]
        );
    }

    #[test]
    fn a_server_without_ehlo_gets_helo() {
        let server = Server::start(false, |peer| {
            peer.say("220 old.local\r\n");
            if peer.line().is_some() {
                peer.say("502 what?\r\n");
                converse(peer, none_answer);
            }
        });
        let mut session = SmtpSession::new(settings(server.port));
        session
            .send("a@example.org", &to("b@example.org"), b"x\r\n", soon())
            .unwrap();
        session.quit(soon());
        let log = server.log_after_quit();
        assert_eq!(
            log[..3],
            [
                "EHLO client.test",
                "HELO client.test",
                "MAIL FROM:<a@example.org>"
            ]
        );
    }

    #[test]
    fn login_uses_plain_when_offered_else_login() {
        let cases: [(&'static [&'static str], Vec<&str>); 2] = [
            (&["AUTH LOGIN PLAIN"], vec!["AUTH PLAIN AHVzZXIAc2VjcmV0"]),
            (&["AUTH=LOGIN"], vec!["AUTH LOGIN", "dXNlcg==", "c2VjcmV0"]),
        ];
        for (offer, expected) in cases {
            let server = plain_server(offer, |line| {
                Some(match line {
                    "AUTH LOGIN" | "dXNlcg==" => "334 go on".into(),
                    l if l.starts_with("AUTH PLAIN") || l == "c2VjcmV0" => "235 welcome".into(),
                    _ => return None,
                })
            });
            let mut s = settings(server.port);
            s.credentials = Some(("user".into(), "secret".into()));
            SmtpSession::new(s).check(soon()).unwrap();
            let log = server.log_after_quit();
            assert_eq!(log[1..log.len() - 1], expected, "{offer:?}");
        }
    }

    // ---------------------------------------------------------------------------------
    // Answers that refuse

    #[test]
    fn a_refused_login_is_an_auth_failure_and_never_shows_the_password() {
        let server = plain_server(&["AUTH PLAIN"], |line| {
            line.starts_with("AUTH")
                .then(|| "535 5.7.8 Authentication credentials invalid".into())
        });
        let mut s = settings(server.port);
        s.credentials = Some(("apikey".into(), "hunter2".into()));
        let mut session = SmtpSession::new(s);
        let err = session
            .send("a@example.org", &to("b@example.org"), b"x", soon())
            .unwrap_err();
        let SmtpError::AuthFailed(text) = &err else {
            panic!("{err:?}")
        };
        assert!(text.contains("535 5.7.8") && text.contains("apikey"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            !server.log().iter().any(|l| l.starts_with("MAIL")),
            "no message after a refused login"
        );
    }

    #[test]
    fn credentials_without_auth_on_offer_are_refused_clearly() {
        let server = plain_server(&["PIPELINING"], none_answer);
        let mut s = settings(server.port);
        s.credentials = Some(("apikey".into(), "hunter2".into()));
        let err = SmtpSession::new(s).check(soon()).unwrap_err();
        assert!(
            matches!(&err, SmtpError::AuthFailed(t) if t.contains("offers no authentication") && t.contains("starttls")),
            "{err:?}"
        );
    }

    #[test]
    fn refusals_are_classified_and_followed_by_rset_on_the_same_connection() {
        for pipelining in [true, false] {
            let extensions: &'static [&'static str] = if pipelining { &["PIPELINING"] } else { &[] };
            let mut messages = 0;
            let server = plain_server(extensions, move |line| {
                if line.starts_with("MAIL") {
                    messages += 1;
                }
                match (messages, line) {
                    (1, l) if l.starts_with("RCPT") => Some("451 4.3.0 try later".into()),
                    (1, "DATA") => Some("554 5.5.1 no valid recipients".into()),
                    (2, l) if l.starts_with("MAIL") => Some("550 5.7.1 sender refused".into()),
                    (2, "DATA") => Some("503 5.5.1 sender first".into()),
                    (3, ".") => Some("550 5.6.0 content refused".into()),
                    (4, ".") => Some("452 4.3.1 insufficient storage".into()),
                    _ => None,
                }
            });
            let mut session = SmtpSession::new(settings(server.port));
            let mut send = || session.send("a@example.org", &to("b@example.org"), b"x", soon());
            let first = send().unwrap_err();
            assert!(
                matches!(&first, SmtpError::Temporary(t) if t.contains("RCPT TO:<b@example.org> refused for now: 451 4.3.0 try later")),
                "{first:?}"
            );
            let second = send().unwrap_err();
            assert!(
                matches!(&second, SmtpError::Permanent(t) if t.contains("MAIL FROM refused: 550 5.7.1")),
                "{second:?}"
            );
            let third = send().unwrap_err();
            assert!(
                matches!(&third, SmtpError::Permanent(t) if t.contains("550 5.6.0 content refused")),
                "{third:?}"
            );
            let fourth = send().unwrap_err();
            assert!(
                matches!(&fourth, SmtpError::Temporary(t) if t.contains("452 4.3.1")),
                "{fourth:?}"
            );
            assert_eq!(send().unwrap(), "250 2.0.0 Ok: queued as T1");
            drop(session);
            let log = server.log_after_quit();
            assert_eq!(
                log.iter().filter(|l| *l == "RSET").count(),
                4,
                "{pipelining}: {log:?}"
            );
            assert_eq!(server.connections(), 1, "{pipelining}: the connection was reused");
            if !pipelining {
                let after_refused_rcpt: Vec<&String> = log.iter().skip(2).take(2).collect();
                assert_eq!(
                    after_refused_rcpt,
                    ["RCPT TO:<b@example.org>", "RSET"],
                    "no DATA after a refused RCPT"
                );
            }
        }
    }

    #[test]
    fn a_non_ascii_address_needs_smtputf8() {
        let server = plain_server(&["PIPELINING"], none_answer);
        let mut session = SmtpSession::new(settings(server.port));
        let err = session
            .send("a@example.org", &to("zo\u{eb}@example.org"), b"x", soon())
            .unwrap_err();
        assert!(
            matches!(&err, SmtpError::Permanent(t) if t.contains("SMTPUTF8")),
            "{err:?}"
        );
        let server = plain_server(&["PIPELINING", "SMTPUTF8", "8BITMIME"], none_answer);
        let mut session = SmtpSession::new(settings(server.port));
        session
            .send("a@example.org", &to("zo\u{eb}@example.org"), b"x", soon())
            .unwrap();
        assert_eq!(server.log()[1], "MAIL FROM:<a@example.org> SMTPUTF8");
    }

    #[test]
    fn addresses_that_would_inject_commands_are_refused_before_any_io() {
        let mut session = SmtpSession::new(settings(dead_port()));
        for bad in ["a@b.org>\r\nRSET", "a b@c.org", "<a@b.org>"] {
            let err = session.send("a@example.org", &to(bad), b"x", soon()).unwrap_err();
            assert!(matches!(err, SmtpError::Permanent(_)), "{bad:?}: {err:?}");
        }
    }

    #[test]
    fn a_server_closing_an_idle_connection_is_reconnected_transparently() {
        let server = Server::start(false, |peer| {
            if !greet(peer, &["PIPELINING"]) {
                return;
            }
            let first_connection = peer.index == 0;
            let mut messages = 0;
            converse(peer, move |line| {
                if line.starts_with("MAIL") {
                    messages += 1;
                    if first_connection && messages == 2 {
                        return Some("421 4.4.2 idle too long, closing".into());
                    }
                }
                None
            });
        });
        let mut session = SmtpSession::new(settings(server.port));
        for _ in 0..3 {
            session
                .send("a@example.org", &to("b@example.org"), b"x", soon())
                .unwrap();
        }
        assert_eq!(server.connections(), 2);
    }

    #[test]
    fn a_server_that_drops_an_envelope_sent_ahead_gets_the_message_on_a_new_connection() {
        // The first connection answers the first message, then refuses the envelope sent
        // ahead with 421 (closing); the second closes without a word after the first dot.
        let server = Server::start(false, |peer| {
            if !greet(peer, &["PIPELINING"]) {
                return;
            }
            let index = peer.index;
            let mut mails = 0;
            converse(peer, move |line| match line {
                l if l.starts_with("MAIL") => {
                    mails += 1;
                    (index == 0 && mails == 2).then(|| "421 4.3.2 shutting down".into())
                }
                "." if index == 1 => Some("<close>".into()),
                _ => None,
            });
        });
        let mut session = SmtpSession::new(settings(server.port));
        let one = send_with(
            &mut session,
            "one@example.net",
            b"one",
            &mut Next::to("two@example.net"),
        );
        assert_eq!(one.unwrap(), "250 2.0.0 Ok: queued as T1");
        let two = send_with(
            &mut session,
            "two@example.net",
            b"two",
            &mut Next::to("three@example.net"),
        );
        // Sent on a second connection, whose answer never came: it may have arrived.
        assert!(matches!(&two, Err(SmtpError::Unknown(_))), "{two:?}");
        send_with(&mut session, "three@example.net", b"three", &mut Next::default()).unwrap();
        session.quit(soon());
        let log = server.log_after_quit();
        let messages: Vec<&String> = log.iter().filter(|l| l.starts_with("<message>")).collect();
        assert_eq!(
            messages,
            ["<message>one\r\n", "<message>two\r\n", "<message>three\r\n"],
            "{log:?}"
        );
        assert_eq!(server.connections(), 3, "{log:?}");
    }

    // ---------------------------------------------------------------------------------
    // Slow, silent and broken servers

    fn assert_within(started: Instant, low: Duration, high: Duration) {
        let elapsed = started.elapsed();
        assert!(
            elapsed >= low && elapsed <= high,
            "took {elapsed:?}, expected {low:?}..{high:?}"
        );
    }

    #[test]
    fn a_server_that_never_greets_is_given_up_at_the_deadline() {
        let server = Server::start(false, |peer| peer.hang());
        let mut s = settings(server.port);
        s.step_timeout = Duration::from_secs(20);
        let mut session = SmtpSession::new(s);
        let started = Instant::now();
        let err = session
            .send(
                "a@example.org",
                &to("b@example.org"),
                b"x",
                started + Duration::from_millis(1500),
            )
            .unwrap_err();
        assert_within(started, Duration::from_millis(1400), Duration::from_millis(2500));
        let SmtpError::Unavailable(text) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(
            text,
            &format!(
                "SMTP 127.0.0.1:{}: no reply to the greeting within 1.5s (the deadline)",
                server.port
            )
        );
    }

    /// The greeting one byte every 500 ms: 11 bytes would take 5.5 s.
    fn trickling_server() -> Server {
        Server::start(false, |peer| {
            for byte in "220 slow\r\n".bytes() {
                peer.say(&(byte as char).to_string());
                thread::sleep(Duration::from_millis(500));
            }
            peer.hang();
        })
    }

    #[test]
    fn a_reply_trickling_in_is_cut_at_the_step_timeout() {
        let server = trickling_server();
        let mut s = settings(server.port);
        s.step_timeout = Duration::from_secs(2);
        let started = Instant::now();
        let err = SmtpSession::new(s)
            .check(started + Duration::from_secs(30))
            .unwrap_err();
        assert_within(started, Duration::from_millis(1900), Duration::from_millis(3000));
        assert!(
            matches!(&err, SmtpError::Unavailable(t) if t.ends_with("the reply to the greeting was still incomplete after 2s")),
            "{err:?}"
        );
    }

    #[test]
    fn a_reply_trickling_in_is_cut_at_the_deadline() {
        let server = trickling_server();
        let mut s = settings(server.port);
        s.step_timeout = Duration::from_secs(20);
        let started = Instant::now();
        let err = SmtpSession::new(s)
            .check(started + Duration::from_secs(1))
            .unwrap_err();
        assert_within(started, Duration::from_millis(900), Duration::from_millis(2000));
        assert!(
            matches!(&err, SmtpError::Unavailable(t) if t.contains("still incomplete after 1s (the deadline)")),
            "{err:?}"
        );
    }

    #[test]
    fn a_host_name_is_resolved_and_a_refused_connection_says_where() {
        let server = plain_server(&[], none_answer);
        let mut s = settings(server.port);
        s.host = "localhost".into();
        // localhost may resolve to ::1 first, where nothing listens: the next address is tried.
        SmtpSession::new(s).check(soon()).unwrap();
        let port = dead_port();
        let err = SmtpSession::new(settings(port)).check(soon()).unwrap_err();
        assert!(
            matches!(&err, SmtpError::Unavailable(t) if t.starts_with(&format!("SMTP 127.0.0.1:{port}: cannot connect: 127.0.0.1:{port}: "))),
            "{err:?}"
        );
    }

    #[test]
    fn a_deadline_already_passed_means_no_connection_at_all() {
        let server = plain_server(&[], none_answer);
        let mut session = SmtpSession::new(settings(server.port));
        let err = session
            .send("a@example.org", &to("b@example.org"), b"x", Instant::now())
            .unwrap_err();
        assert!(matches!(err, SmtpError::Unavailable(_)), "{err:?}");
        thread::sleep(Duration::from_millis(100));
        assert_eq!(server.connections(), 0);
    }

    #[test]
    fn no_reply_after_the_final_dot_is_unknown_bounded_by_final_reply_timeout_and_deadline() {
        for (final_wait, deadline, limit) in
            [(1, 30, "1s (final_reply_timeout)"), (30, 1, "1s (the deadline)")]
        {
            let server = plain_server(&["PIPELINING"], |line| (line == ".").then(|| "<hang>".into()));
            let mut s = settings(server.port);
            s.final_reply_timeout = Duration::from_secs(final_wait);
            s.step_timeout = Duration::from_secs(30);
            let mut session = SmtpSession::new(s);
            let started = Instant::now();
            let err = session
                .send(
                    "a@example.org",
                    &to("b@example.org"),
                    b"x",
                    started + Duration::from_secs(deadline),
                )
                .unwrap_err();
            assert_within(started, Duration::from_millis(900), Duration::from_millis(2000));
            assert!(
                matches!(&err, SmtpError::Unknown(t) if t.contains(&format!("no reply to the end of the message within {limit}")) && t.contains("may have accepted")),
                "{err:?}"
            );
        }
    }

    #[test]
    fn a_connection_lost_before_the_dot_is_unavailable_after_it_unknown() {
        let server = plain_server(&[], |line| (line == "DATA").then(|| "<close>".into()));
        let mut session = SmtpSession::new(settings(server.port));
        let err = session
            .send("a@example.org", &to("b@example.org"), b"x", soon())
            .unwrap_err();
        assert!(
            matches!(&err, SmtpError::Unavailable(t) if t.contains("closed the connection instead of answering DATA")),
            "{err:?}"
        );
        let server = plain_server(&["PIPELINING"], |line| (line == ".").then(|| "<close>".into()));
        let mut session = SmtpSession::new(settings(server.port));
        let err = session
            .send("a@example.org", &to("b@example.org"), b"x", soon())
            .unwrap_err();
        assert!(
            matches!(&err, SmtpError::Unknown(t) if t.contains("closed the connection instead of answering the end of the message")),
            "{err:?}"
        );
        // The next message opens a new connection.
        assert_eq!(server.connections(), 1);
        let _ = session.send("a@example.org", &to("b@example.org"), b"x", soon());
        assert_eq!(server.connections(), 2);
    }

    #[test]
    fn malformed_and_oversized_replies_are_errors_not_panics() {
        for (greeting, why) in [
            ("hello there\r\n".to_string(), "is not an SMTP reply line"),
            ("2\r\n".into(), "is not an SMTP reply line"),
            ("999 what\r\n".into(), "is not an SMTP reply line"),
            ("220x\r\n".into(), "is not an SMTP reply line"),
            ("250-a\r\n220 b\r\n".into(), "lines with different codes"),
            (
                format!("220 {}\r\n", "x".repeat(5000)),
                "a line longer than 4096 bytes",
            ),
            ("220-x\r\n".repeat(20_000), "longer than 64 KB"),
        ] {
            let greeting = Arc::new(greeting);
            let server = Server::start(false, move |peer| {
                peer.say(&greeting);
                peer.hang();
            });
            let err = SmtpSession::new(settings(server.port)).check(soon()).unwrap_err();
            assert!(
                matches!(&err, SmtpError::Unavailable(t) if t.contains("malformed reply to the greeting") && t.contains(why)),
                "{why}: {err:?}"
            );
            assert!(err.text().len() < 600, "{err:?}");
        }
    }

    #[test]
    fn control_characters_in_server_text_never_reach_an_error() {
        let server = Server::start(false, |peer| {
            peer.say("554 \u{1b}[31mgo away\u{7}\u{0}\r\n");
            peer.hang();
        });
        let err = SmtpSession::new(settings(server.port)).check(soon()).unwrap_err();
        assert_eq!(
            err.text(),
            format!(
                "SMTP 127.0.0.1:{}: the server refused the connection: 554 [31mgo away",
                server.port
            )
        );
    }

    // ---------------------------------------------------------------------------------
    // TLS

    fn tls_settings(port: u16, tls: TlsMode) -> SmtpSettings {
        SmtpSettings {
            tls,
            extra_root_pem: Some(TEST_CA.as_bytes().to_vec()),
            ..settings(port)
        }
    }

    #[test]
    fn starttls_required_but_not_offered_sends_nothing_in_clear() {
        let server = plain_server(&["PIPELINING", "AUTH PLAIN"], none_answer);
        let mut s = tls_settings(server.port, TlsMode::Starttls);
        s.credentials = Some(("user".into(), "secret".into()));
        let mut session = SmtpSession::new(s);
        let err = session
            .send("a@example.org", &to("b@example.org"), b"x", soon())
            .unwrap_err();
        assert!(
            matches!(&err, SmtpError::Unavailable(t) if t.contains("does not offer STARTTLS")),
            "{err:?}"
        );
        drop(session);
        thread::sleep(Duration::from_millis(100));
        assert_eq!(server.log(), ["EHLO client.test"], "nothing after EHLO");
    }

    fn starttls_server(injected: &'static str) -> Server {
        Server::start(false, move |peer| {
            if !greet(peer, &["PIPELINING", "STARTTLS"]) {
                return;
            }
            match peer.line().as_deref() {
                Some("STARTTLS") => peer.say(&format!("220 go ahead\r\n{injected}")),
                _ => return,
            }
            peer.starttls();
            if greet_again(peer, &["PIPELINING", "AUTH PLAIN LOGIN"]) {
                converse(peer, |line| line.starts_with("AUTH").then(|| "235 ok".into()));
            }
        })
    }

    /// EHLO after STARTTLS (no new greeting).
    fn greet_again(peer: &mut Peer, extensions: &[&str]) -> bool {
        let Some(ehlo) = peer.line() else {
            return false;
        };
        assert!(ehlo.starts_with("EHLO"), "{ehlo}");
        let mut text = String::from("250-test.local\r\n");
        for (i, ext) in extensions.iter().enumerate() {
            let sep = if i + 1 == extensions.len() { ' ' } else { '-' };
            text.push_str(&format!("250{sep}{ext}\r\n"));
        }
        peer.say(&text);
        true
    }

    #[test]
    fn starttls_upgrades_then_logs_in_and_sends() {
        let server = starttls_server("");
        let mut s = tls_settings(server.port, TlsMode::Starttls);
        s.credentials = Some(("user".into(), "secret".into()));
        let mut session = SmtpSession::new(s);
        session
            .send("a@example.org", &to("b@example.org"), MESSAGE, soon())
            .unwrap();
        session.quit(soon());
        let log = server.log_after_quit();
        assert_eq!(
            log[..5],
            [
                "EHLO client.test",
                "STARTTLS",
                "EHLO client.test",
                "AUTH PLAIN AHVzZXIAc2VjcmV0",
                "MAIL FROM:<a@example.org>"
            ]
        );
    }

    #[test]
    fn plain_text_injected_after_the_starttls_reply_is_refused() {
        let server = starttls_server("250 injected\r\n");
        let err = SmtpSession::new(tls_settings(server.port, TlsMode::Starttls))
            .check(soon())
            .unwrap_err();
        assert!(
            matches!(&err, SmtpError::Unavailable(t) if t.contains("after its answer to STARTTLS")),
            "{err:?}"
        );
    }

    #[test]
    fn implicit_tls_verifies_the_certificate() {
        let server = Server::start(true, |peer| {
            if greet(peer, &["PIPELINING"]) {
                converse(peer, none_answer);
            }
        });
        let mut session = SmtpSession::new(tls_settings(server.port, TlsMode::Tls));
        session
            .send("a@example.org", &to("b@example.org"), MESSAGE, soon())
            .unwrap();
        session.quit(soon());
        assert_eq!(server.log_after_quit().len(), 6);
        // Without the test CA the certificate is not trusted.
        let mut s = settings(server.port);
        s.tls = TlsMode::Tls;
        let err = SmtpSession::new(s).check(soon()).unwrap_err();
        assert!(
            matches!(&err, SmtpError::Unavailable(t) if t.contains("TLS error during the TLS handshake") && t.contains("UnknownIssuer")),
            "{err:?}"
        );
    }

    /// The client's own ceiling, for profiling (not run by default): messages per second
    /// on one connection to the server at `NOTIFYCTL_SMTP_BENCH` (e.g. smtp-sink), with the
    /// message in `NOTIFYCTL_SMTP_BENCH_MESSAGE` (an .eml file) or a 4.6 KB stand-in.
    /// `NOTIFYCTL_SMTP_BENCH=127.0.0.1:2525 cargo test --release --lib smtp_throughput -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn smtp_throughput() {
        let Ok(address) = std::env::var("NOTIFYCTL_SMTP_BENCH") else {
            return;
        };
        let (host, port) = address.rsplit_once(':').expect("host:port");
        let message = match std::env::var("NOTIFYCTL_SMTP_BENCH_MESSAGE") {
            Ok(path) => std::fs::read(path).unwrap(),
            Err(_) => format!(
                "Subject: bench\r\n\r\n{}",
                "0123456789 abcdefghij\r\n".repeat(200)
            )
            .into_bytes(),
        };
        let mut s = settings(port.parse().unwrap());
        s.host = host.into();
        let mut session = SmtpSession::new(s);
        let n = 20_000;
        let started = Instant::now();
        for _ in 0..n {
            session
                .send("bench@example.org", &to("sink@example.org"), &message, soon())
                .unwrap();
        }
        let elapsed = started.elapsed();
        println!(
            "{n} messages of {} bytes in {elapsed:?}: {:.0} messages/s",
            message.len(),
            n as f64 / elapsed.as_secs_f64()
        );
    }

    // ---------------------------------------------------------------------------------
    // Pure parts

    #[test]
    fn dot_stuffing_normalises_line_ends_and_terminates_once() {
        let mut out = Vec::new();
        dot_stuff(b"Subject: x\r\n\r\n.hidden\r\nline\n..two\r\n", &mut out);
        assert_eq!(out, b"Subject: x\r\n\r\n..hidden\r\nline\r\n...two\r\n.\r\n");
        dot_stuff(b"no newline", &mut out);
        assert_eq!(out, b"no newline\r\n.\r\n");
        dot_stuff(b".", &mut out);
        assert_eq!(out, b"..\r\n.\r\n");
        dot_stuff(b"", &mut out);
        assert_eq!(out, b".\r\n");
    }

    #[test]
    fn base64_matches_rfc_4648() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(base64(b"\0user\0secret"), "AHVzZXIAc2VjcmV0");
    }

    #[test]
    fn replies_parse_line_by_line() {
        let mut parser = ReplyParser::default();
        assert_eq!(parser.feed(b"250-first\r\n250-PIPE"), Ok(None));
        let (reply, used) = parser
            .feed(b"250-first\r\n250-PIPELINING\r\n250 SIZE 1000\r\n354 next")
            .unwrap()
            .unwrap();
        assert_eq!(used, 42);
        assert_eq!(reply.code, 250);
        let ext = Extensions::parse(&reply);
        assert!(ext.pipelining && ext.size == Some(1000) && !ext.starttls);
        let (reply, _) = ReplyParser::default().feed(b"220\n").unwrap().unwrap();
        assert_eq!(reply.text(), "220");
        assert!(ReplyParser::default().feed(b"25\r\n").is_err());
        assert!(ReplyParser::default().feed(b"250x\r\n").is_err());
        assert!(ReplyParser::default().feed(b"150 x\r\n").is_err());
    }

    #[test]
    fn server_text_is_sanitized_and_capped() {
        assert_eq!(sanitize("a\r\nb\u{1b}[0m\tc"), "ab[0mc");
        assert_eq!(sanitize(&"x".repeat(1000)).chars().count(), MAX_SERVER_TEXT + 1);
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(fmt_duration(Duration::from_secs(20)), "20s");
        assert_eq!(fmt_duration(Duration::from_secs(600)), "10m");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(fmt_duration(Duration::from_millis(250)), "250ms");
    }

    fn dead_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }
}
