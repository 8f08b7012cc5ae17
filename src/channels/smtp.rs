//! SMTP sessions: one connection reused for a whole tick, over lettre's `SmtpConnection`
//! (its protocol, TLS, STARTTLS and AUTH), reconnecting when the server drops it.
//!
//! Why not `lettre::SmtpTransport`: lettre 0.11 writes a message body and its final
//! `CRLF.CRLF` in two writes on a socket without TCP_NODELAY, so Nagle's algorithm holds
//! the terminator until the server's delayed ACK (40 ms on Linux): about 23 messages a
//! second whatever the server's speed (measured by `bench/bench.py`; fixed upstream in
//! lettre PR #1159, not yet released). Here the body and the terminator go out in one
//! write, and every other step is a single command and its answer.

use std::fmt;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{SmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Quit, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use lettre::transport::smtp::Error;

use crate::config::{SmtpConfig, TlsMode};
use crate::error::user_error;

pub struct SmtpSession {
    host: String,
    port: u16,
    mode: TlsMode,
    timeout: std::time::Duration,
    hello: ClientId,
    tls: Option<TlsParameters>,
    credentials: Option<Credentials>,
    conn: Option<SmtpConnection>,
}

/// The message content after DATA: dot-stuffed (RFC 5321 §4.5.2) and terminated, so it
/// is written in one piece.
struct Payload(String);

impl fmt::Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn payload(message: &[u8]) -> Payload {
    let text = String::from_utf8_lossy(message);
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.split_inclusive('\n') {
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
    }
    if !out.ends_with("\r\n") {
        out.push_str("\r\n");
    }
    out.push_str(".\r\n");
    Payload(out)
}

impl SmtpSession {
    /// Settings only; nothing connects until the first message.
    pub fn new(cfg: &SmtpConfig) -> anyhow::Result<SmtpSession> {
        let host = cfg.host.trim().to_string();
        let tls = match cfg.tls {
            TlsMode::None => None,
            TlsMode::Starttls | TlsMode::Tls => Some(
                TlsParameters::new(host.clone())
                    .map_err(|e| user_error(format!("TLS settings for {host}: {e}")))?,
            ),
        };
        let credentials = if cfg.username.is_empty() {
            None
        } else {
            let password = std::env::var(&cfg.password_env).map_err(|_| {
                user_error(format!(
                    "environment variable {} is not set: it must hold the SMTP password for user '{}' ([email.smtp] password_env)",
                    cfg.password_env, cfg.username
                ))
            })?;
            Some(Credentials::new(cfg.username.clone(), password))
        };
        let hello = if cfg.hello_name.is_empty() {
            ClientId::default()
        } else {
            ClientId::Domain(cfg.hello_name.clone())
        };
        Ok(SmtpSession {
            host,
            port: cfg.port,
            mode: cfg.tls,
            timeout: cfg.timeout.std(),
            hello,
            tls,
            credentials,
            conn: None,
        })
    }

    /// Connect, upgrade to TLS as configured, and log in.
    pub fn connect(&self) -> Result<SmtpConnection, Error> {
        let wrapper = if self.mode == TlsMode::Tls {
            self.tls.as_ref()
        } else {
            None
        };
        let mut conn = SmtpConnection::connect(
            (self.host.as_str(), self.port),
            Some(self.timeout),
            &self.hello,
            wrapper,
            None,
        )?;
        if self.mode == TlsMode::Starttls {
            let params = self.tls.as_ref().expect("TLS parameters exist for STARTTLS");
            conn.starttls(params, &self.hello)?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)?;
        }
        Ok(conn)
    }

    /// Connect and log in, then say goodbye: for `config check`.
    pub fn check(&self) -> Result<(), Error> {
        let mut conn = self.connect()?;
        let _ = conn.quit();
        Ok(())
    }

    /// Send one message on the session's connection, opening it when needed.
    pub fn send(&mut self, envelope: &Envelope, message: &[u8]) -> Result<Response, Error> {
        if self.conn.as_ref().is_none_or(|c| c.has_broken()) {
            self.conn = Some(self.connect()?);
        }
        let conn = self.conn.as_mut().expect("connected above");
        let mut params = Vec::new();
        if !message.is_ascii() && conn.server_info().supports_feature(Extension::EightBitMime) {
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        let result = (|| {
            conn.command(Mail::new(envelope.from().cloned(), params))?;
            for to in envelope.to() {
                conn.command(Rcpt::new(to.clone(), vec![]))?;
            }
            conn.command(Data)?;
            conn.command(payload(message))
        })();
        if let Err(e) = &result {
            if e.is_transient() || e.is_permanent() {
                // The server answered: the connection is fine, reset the transaction.
                if conn.command(Rset).is_err() {
                    self.conn = None;
                }
            } else {
                // No answer (network, timeout): start afresh next time.
                self.conn = None;
            }
        }
        result
    }
}

impl Drop for SmtpSession {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.as_mut() {
            let _ = conn.command(Quit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_dot_stuffed_and_terminated_once() {
        let p = payload(b"Subject: x\r\n\r\n.hidden\r\nline\r\n..two\r\n").0;
        assert_eq!(p, "Subject: x\r\n\r\n..hidden\r\nline\r\n...two\r\n.\r\n");
        assert_eq!(payload(b"no newline").0, "no newline\r\n.\r\n");
    }
}
