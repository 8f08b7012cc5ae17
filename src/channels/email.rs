//! Email: building the message (multipart text + HTML, an .ics invitation, a stable
//! Message-ID) and the transports (SMTP, sendmail, a directory of .eml files, stdout).
//!
//! One SMTP connection serves the whole tick (`smtp.rs`), so a batch of thousands of
//! reminders is not thousands of TLS handshakes. Every SMTP exchange is bounded by a
//! deadline: half the claim's life (the outbox renews claims at half-life, so a send
//! never outlives its claim), and the tick's own deadline when the outbox gives it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{Message, SendmailTransport, Transport as _};

use super::smtp::{SmtpError, SmtpSession, SmtpSettings};
use super::{Outgoing, SendError, Sender, Sent};
use crate::config::{EmailConfig, SmtpConfig, Transport};
use crate::error::user_error;
use crate::messages::{ics, Kind, Rendered};
use crate::Ctx;

pub fn parse_mailbox(s: &str) -> Result<Mailbox, String> {
    s.parse::<Mailbox>()
        .map_err(|e| format!("'{s}' is not a valid address ({e})"))
}

enum Backend {
    Smtp(Box<SmtpSession>),
    Sendmail(SendmailTransport),
    Dir(PathBuf),
    Stdout,
}

pub struct EmailSender<'a> {
    ctx: &'a Ctx,
    backend: Backend,
    from: Mailbox,
    domain: String,
    /// The tick's deadline, when the outbox gave it (`set_deadline`).
    deadline: Option<Instant>,
}

/// RFC 5321 §4.5.3.2.6: a client should wait 10 minutes for the reply to the final dot.
/// In practice the per-send deadline (half the claim's life) comes first.
const FINAL_REPLY_TIMEOUT: Duration = Duration::from_secs(600);

/// The SMTP client's settings from `[email.smtp]`, the password read from the variable
/// `password_env` names.
pub fn smtp_settings(cfg: &SmtpConfig) -> anyhow::Result<SmtpSettings> {
    let credentials = if cfg.username.is_empty() {
        None
    } else {
        let password = std::env::var(&cfg.password_env).map_err(|_| {
            user_error(format!(
                "environment variable {} is not set: it must hold the SMTP password for user '{}' ([email.smtp] password_env)",
                cfg.password_env, cfg.username
            ))
        })?;
        Some((cfg.username.clone(), password))
    };
    Ok(SmtpSettings {
        host: cfg.host.trim().to_string(),
        port: cfg.port,
        tls: cfg.tls,
        credentials,
        hello_name: (!cfg.hello_name.is_empty()).then(|| cfg.hello_name.clone()),
        step_timeout: cfg.timeout.std(),
        final_reply_timeout: FINAL_REPLY_TIMEOUT,
        extra_root_pem: None,
    })
}

impl<'a> EmailSender<'a> {
    pub fn new(ctx: &'a Ctx) -> anyhow::Result<EmailSender<'a>> {
        let cfg: &EmailConfig = &ctx.config.email;
        let from = parse_mailbox(&cfg.from).map_err(|e| user_error(format!("email.from: {e}")))?;
        let domain = from.email.domain().to_string();
        let backend = match cfg.transport {
            Transport::Smtp => Backend::Smtp(Box::new(SmtpSession::new(smtp_settings(&cfg.smtp)?))),
            Transport::Sendmail => {
                Backend::Sendmail(SendmailTransport::new_with_command(&cfg.sendmail_command))
            }
            Transport::File => {
                let dir = ctx.outbox_dir();
                create_private_dir(&dir)
                    .with_context(|| format!("creating the email directory {}", dir.display()))?;
                Backend::Dir(dir)
            }
            Transport::Stdout => Backend::Stdout,
            Transport::None => anyhow::bail!("email transport is none: no email channel"),
        };
        Ok(EmailSender {
            ctx,
            backend,
            from,
            domain,
            deadline: None,
        })
    }

    /// No SMTP exchange goes on past `deadline` (the tick's `--max-runtime`).
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = Some(deadline);
    }

    /// The deadline of one send: half the claim's life from now, or the tick's if sooner.
    fn send_deadline(&self) -> Instant {
        let by_claim = Instant::now() + self.ctx.config.tick.claim_timeout.std() / 2;
        self.deadline.map_or(by_claim, |d| d.min(by_claim))
    }

    /// The email for a delivery: same Message-ID on every retry, so receivers that see a
    /// duplicate (crash after acceptance) can tell.
    pub fn build(&self, item: &Outgoing) -> anyhow::Result<(Message, String)> {
        let d = item.delivery;
        let kind: Kind = d.kind.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
        let mc = crate::notices::message_context(
            self.ctx,
            item.user,
            kind,
            item.event,
            d.offset_minutes,
            d.previous_start,
            (kind == Kind::Custom).then_some((d.title.as_str(), d.body.as_str())),
        );
        let Rendered {
            subject, text, html, ..
        } = self.ctx.templates()?.render(&mc)?;
        let message_id = format!("<notifyctl.{}.{}@{}>", d.notification_id, d.id, self.domain);
        let to = Mailbox::new(
            Some(item.user.name.clone()),
            item.user.email.parse().context("recipient address")?,
        );
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(message_id.clone()))
            .date(SystemTime::from(item.now));
        let cfg = &self.ctx.config.email;
        if !cfg.reply_to.is_empty() {
            builder = builder
                .reply_to(parse_mailbox(&cfg.reply_to).map_err(|e| anyhow::anyhow!("email.reply_to: {e}"))?);
        }
        let mut unsubscribe = Vec::new();
        if !cfg.unsubscribe_url.is_empty() {
            unsubscribe.push(format!("<{}>", cfg.unsubscribe_url));
        }
        if !cfg.unsubscribe_mailto.is_empty() {
            unsubscribe.push(format!(
                "<mailto:{}>",
                cfg.unsubscribe_mailto.trim_start_matches("mailto:")
            ));
        }
        if !unsubscribe.is_empty() {
            builder = builder.raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                unsubscribe.join(", "),
            ));
            // One-click unsubscribe (RFC 8058) only works with an https URL.
            if cfg.unsubscribe_url.starts_with("https://") {
                builder = builder.raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                    "List-Unsubscribe=One-Click".to_string(),
                ));
            }
        }
        let alternative = MultiPart::alternative()
            .singlepart(SinglePart::plain(text.clone()))
            .singlepart(SinglePart::html(html));
        let body = match (kind, item.event) {
            (Kind::Custom, _) | (_, None) => alternative,
            (_, Some(event)) => {
                let method = if kind == Kind::Cancelled {
                    ics::Method::Cancel
                } else {
                    ics::Method::Request
                };
                let calendar = ics::build(
                    &ics::IcsInput {
                        uid: &format!("event-{}@{}", event.id, self.domain),
                        sequence: event.sequence,
                        title: &event.title,
                        description: &text,
                        starts_at: event.starts_at,
                        ends_at: event.ends_at,
                        video_url: event.video_url.as_deref(),
                        organizer_email: self.from.email.as_ref(),
                        attendee_email: &item.user.email,
                        attendee_name: &item.user.name,
                        stamp: item.now,
                    },
                    method,
                );
                let content_type = ContentType::parse(&format!(
                    "text/calendar; charset=utf-8; method={}",
                    method.as_str()
                ))
                .context("calendar content type")?;
                MultiPart::mixed()
                    .multipart(alternative)
                    .singlepart(Attachment::new("invite.ics".to_string()).body(calendar, content_type))
            }
        };
        Ok((builder.multipart(body).context("building the email")?, message_id))
    }
}

impl Sender for EmailSender<'_> {
    fn send(&mut self, item: &Outgoing) -> Result<Sent, SendError> {
        let (message, message_id) = self
            .build(item)
            .map_err(|e| SendError::Temporary(format!("{e:#}")))?;
        let deadline = self.send_deadline();
        let response = match &mut self.backend {
            Backend::Smtp(session) => {
                let envelope = message.envelope();
                let from = envelope.from().map(|a| a.to_string()).unwrap_or_default();
                let to: Vec<String> = envelope.to().iter().map(|a| a.to_string()).collect();
                session
                    .send(&from, &to, &message.formatted(), deadline)
                    .map_err(classify_smtp)?
            }
            Backend::Sendmail(t) => {
                t.send(&message)
                    .map_err(|e| SendError::Temporary(format!("sendmail: {e}")))?;
                "accepted by sendmail".to_string()
            }
            Backend::Dir(dir) => {
                let path = write_eml(dir, item.delivery.id, &message.formatted()).map_err(|e| {
                    SendError::Unavailable(format!("writing .eml file in {}: {e}", dir.display()))
                })?;
                format!("written to {}", path.display())
            }
            Backend::Stdout => {
                // With --json, stdout carries the machine-readable summary: mail goes to stderr.
                let mut out: Box<dyn Write> = if self.ctx.out.json {
                    Box::new(std::io::stderr().lock())
                } else {
                    Box::new(std::io::stdout().lock())
                };
                out.write_all(&message.formatted())
                    .and_then(|_| out.write_all(b"\n"))
                    .map_err(|e| SendError::Unavailable(format!("stdout: {e}")))?;
                "written to stdout".to_string()
            }
        };
        Ok(Sent {
            message_id: Some(message_id),
            response,
        })
    }
}

/// 5xx is permanent and 4xx temporary. A server that cannot be reached or refuses our
/// login stops the channel for this tick, the deliveries kept for later. So does a lost
/// answer after the final dot, which may be a duplicate when retried: the outbox does
/// not tell that case apart yet.
fn classify_smtp(e: SmtpError) -> SendError {
    match e {
        SmtpError::Permanent(text) => SendError::Permanent(text),
        SmtpError::Temporary(text) => SendError::Temporary(text),
        SmtpError::Unavailable(text) | SmtpError::AuthFailed(text) | SmtpError::Unknown(text) => {
            SendError::Unavailable(text)
        }
    }
}

/// Write `notifyctl-<delivery>.eml` atomically: a reader never sees half a message,
/// and a re-send after a crash replaces the file instead of adding a second one.
fn write_eml(dir: &Path, delivery_id: i64, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let path = dir.join(format!("notifyctl-{delivery_id}.eml"));
    let tmp = dir.join(format!(".notifyctl-{delivery_id}.eml.tmp"));
    {
        let mut f = private_file(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}
