//! Email: building the message (multipart text + HTML, an .ics invitation, a stable
//! Message-ID) and the transports (SMTP, sendmail, a directory of .eml files, stdout).
//!
//! One SMTP connection serves the whole tick (`smtp.rs`), so a batch of thousands of
//! reminders is not thousands of TLS handshakes. Every exchange is bounded by the
//! deadline the outbox gives with each message (the tick's end, and the claim's).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{Message, SendmailTransport, Transport as _};

use super::smtp::{Envelope, Overlap, SmtpError, SmtpSession, SmtpSettings};
use super::{Deadline, NextMessage, Outgoing, SendError, Sender, Sent};
use crate::config::{EmailConfig, SmtpConfig, Transport};
use crate::error::user_error;
use crate::input::parse_mailbox;
use crate::messages::{ics, Kind, Rendered};

/// RFC 5321 §4.5.3.2.6: a client should wait 10 minutes for the reply to the final dot.
/// The deadline of the send (the tick's end, the claim's) comes first in practice.
const FINAL_REPLY_TIMEOUT: Duration = Duration::from_secs(600);

/// The SMTP client's settings from `[email.smtp]`, the password read from the file
/// `password_file` or the variable `password_env` names (`secrets.rs`).
pub fn smtp_settings(cfg: &SmtpConfig) -> anyhow::Result<SmtpSettings> {
    let credentials = if cfg.username.is_empty() {
        None
    } else {
        let password = crate::secrets::smtp_password(cfg).require(&format!(
            "[email.smtp] username '{}' needs it",
            crate::input::printable(&cfg.username, 100)
        ))?;
        Some((cfg.username.clone(), password.expose().to_string()))
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

enum Backend {
    Smtp(Box<SmtpSession>),
    Sendmail(SendmailTransport),
    Dir(PathBuf),
    Stdout,
}

pub struct EmailSender {
    cfg: EmailConfig,
    backend: Backend,
    from: Mailbox,
    domain: String,
    /// The stdout transport writes to stderr instead (stdout carries `--json`).
    stdout_to_stderr: bool,
    /// The message the worker sends next, built while the server answered the last one:
    /// (delivery id, built).
    prebuilt: Option<(i64, anyhow::Result<(Message, String)>)>,
}

impl EmailSender {
    /// `outbox_dir` is where the file transport writes; `stdout_to_stderr` keeps the
    /// stdout transport off a machine-readable stdout.
    pub fn new(cfg: &EmailConfig, outbox_dir: &Path, stdout_to_stderr: bool) -> anyhow::Result<EmailSender> {
        let from = parse_mailbox(&cfg.from).map_err(|e| user_error(format!("email.from: {e}")))?;
        let domain = from.email.domain().to_string();
        let backend = match cfg.transport {
            Transport::Smtp => Backend::Smtp(Box::new(SmtpSession::new(smtp_settings(&cfg.smtp)?))),
            Transport::Sendmail => {
                Backend::Sendmail(SendmailTransport::new_with_command(&cfg.sendmail_command))
            }
            Transport::File => {
                let dir = outbox_dir.to_path_buf();
                crate::files::private_dir(&dir).context("the email directory ([email] dir)")?;
                Backend::Dir(dir)
            }
            Transport::Stdout => Backend::Stdout,
            Transport::None => anyhow::bail!("email transport is none: no email channel"),
        };
        Ok(EmailSender {
            cfg: cfg.clone(),
            backend,
            from,
            domain,
            stdout_to_stderr,
            prebuilt: None,
        })
    }

    /// The email for a delivery: same Message-ID on every retry, so receivers that see a
    /// duplicate (crash after acceptance) can tell.
    pub fn build(&self, item: &Outgoing) -> anyhow::Result<(Message, String)> {
        let kind = item.kind;
        let Rendered {
            subject, text, html, ..
        } = &item.rendered;
        let message_id = format!(
            "<notifyctl.{}.{}@{}>",
            item.notification_id, item.delivery_id, self.domain
        );
        // Values from the database never reach a header unchecked: one line, no control
        // characters, a bounded length (RFC 5322 lines stay far below 998 octets).
        let address = recipient_address(item)?;
        let name = header_text(&item.recipient.name, MAX_DISPLAY_NAME);
        let to = Mailbox::new((!name.is_empty()).then_some(name), address);
        let subject = header_text(subject, MAX_SUBJECT);
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(message_id.clone()))
            .date(SystemTime::from(item.now));
        let cfg = &self.cfg;
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
            .singlepart(SinglePart::html(html.clone()));
        let body = match (kind, &item.event) {
            (Kind::Custom, _) | (_, None) => alternative,
            (_, Some(event)) => {
                // The rest of a series cancelled (`event cancel --from`): the occurrence the
                // notice is about lies past the rule's new end, and calendars follow the
                // series as it now is (a CANCEL for that one occurrence would leave the
                // ones after it in place).
                let rest_cancelled = match (&event.series, event.occurrence) {
                    (Some(s), Some(original)) if kind == Kind::Cancelled => {
                        !s.series.contains(original)
                            && s.series.occurrences_from(original, &[]).next().is_none()
                    }
                    _ => false,
                };
                let method = if kind == Kind::Cancelled && !rest_cancelled {
                    ics::Method::Cancel
                } else {
                    ics::Method::Request
                };
                let input = ics::IcsInput {
                    uid: &format!("event-{}@{}", event.id, self.domain),
                    sequence: event.sequence,
                    title: &event.title,
                    description: text,
                    starts_at: event.starts_at,
                    ends_at: event.ends_at,
                    video_url: event.video_url.as_deref(),
                    organizer_email: self.from.email.as_ref(),
                    attendee_email: &item.recipient.email,
                    attendee_name: &item.recipient.name,
                    stamp: item.now,
                };
                // A series goes as its rule (calendars keep a weekly 09:30 at 09:30), with
                // its exceptions; a change to one occurrence as that occurrence only.
                let calendar = match &event.series {
                    Some(s) => ics::build_series(
                        &input,
                        &ics::SeriesIcs {
                            series: &s.series,
                            exceptions: &s.exceptions,
                            scope: match event.occurrence {
                                Some(original) if !rest_cancelled => ics::Scope::Occurrence(original),
                                _ => ics::Scope::Series,
                            },
                        },
                        method,
                    ),
                    None => ics::build(&input, method),
                };
                let content_type = ContentType::parse(&format!(
                    "text/calendar; charset=utf-8; method={}",
                    method.as_str()
                ))
                .context("calendar content type")?;
                // The invitation twice, as Google Calendar and Outlook send theirs: as the
                // last alternative (`text/calendar; method=...`), which Gmail and Outlook show
                // as an invitation with its answer buttons, and as an `invite.ics` attachment
                // for the clients that only offer to open a file.
                // Encoded once for both.
                let calendar = lettre::message::Body::new(calendar);
                let invitation = SinglePart::builder()
                    .header(content_type.clone())
                    .body(calendar.clone());
                MultiPart::mixed()
                    .multipart(alternative.singlepart(invitation))
                    .singlepart(Attachment::new("invite.ics".to_string()).body(calendar, content_type))
            }
        };
        Ok((builder.multipart(body).context("building the email")?, message_id))
    }
}

/// The recipient's address as the message's To and its envelope carry it. The same rule
/// as `user add`: an address an app wrote that no transport can use (a domain literal, a
/// line break) fails this delivery for good, with the reason.
fn recipient_address(item: &Outgoing) -> anyhow::Result<lettre::Address> {
    crate::input::validate_email(&item.recipient.email)
        .and_then(|a| Ok(a.parse::<lettre::Address>()?))
        .map_err(|e| anyhow::anyhow!("the recipient address cannot be used: {e:#}"))
}

/// While a message goes out: the next one's envelope for the SMTP session, and the next
/// one built while the server answers.
struct Overlapped<'a, 'n> {
    sender: &'a EmailSender,
    next: &'a mut (dyn NextMessage + 'n),
    built: &'a mut Option<(i64, anyhow::Result<(Message, String)>)>,
}

impl Overlap for Overlapped<'_, '_> {
    fn next_envelope(&mut self) -> Option<Envelope> {
        let item = self.next.take()?;
        let to = recipient_address(item).ok()?;
        Some(Envelope {
            from: self.sender.from.email.to_string(),
            to: vec![to.to_string()],
        })
    }

    fn meanwhile(&mut self) {
        let (sender, built) = (self.sender, &mut *self.built);
        self.next
            .render(&mut |n| *built = Some((n.delivery_id, sender.build(n))));
    }
}

impl Sender for EmailSender {
    fn send(&mut self, item: &Outgoing, deadline: Deadline) -> Result<Sent, SendError> {
        let built = self
            .build(item)
            .map_err(|e| SendError::Permanent(format!("{e:#}")))?;
        let mut backend = std::mem::replace(&mut self.backend, Backend::Stdout);
        let response = self.transmit(&mut backend, item, &built.0, deadline, &mut ());
        self.backend = backend;
        Ok(Sent {
            message_id: Some(built.1),
            response: response?,
        })
    }

    /// The next message's envelope goes out with this one (SMTP), and the next message is
    /// built while the server answers (and used when its turn comes, if it is still that
    /// delivery).
    fn send_overlapped(
        &mut self,
        item: &Outgoing,
        deadline: Deadline,
        next: &mut dyn NextMessage,
    ) -> Result<Sent, SendError> {
        let built = match self.prebuilt.take() {
            Some((id, built)) if id == item.delivery_id => built,
            _ => self.build(item),
        };
        // A message that cannot be built from its row will not build better next time.
        let (message, message_id) = built.map_err(|e| SendError::Permanent(format!("{e:#}")))?;
        // The transport is taken out while it is used, so the next message can be built
        // meanwhile (a panic leaves a placeholder: the worker then drops this sender).
        let mut backend = std::mem::replace(&mut self.backend, Backend::Stdout);
        let mut built = None;
        let response = {
            let mut overlap = Overlapped {
                sender: self,
                next,
                built: &mut built,
            };
            self.transmit(&mut backend, item, &message, deadline, &mut overlap)
        };
        self.backend = backend;
        self.prebuilt = built;
        Ok(Sent {
            message_id: Some(message_id),
            response: response?,
        })
    }
}

impl EmailSender {
    /// Hand a built message to the transport; `overlap` while it is on its way (the other
    /// transports: after it).
    fn transmit(
        &self,
        backend: &mut Backend,
        item: &Outgoing,
        message: &Message,
        deadline: Deadline,
        overlap: &mut dyn Overlap,
    ) -> Result<String, SendError> {
        let response = match backend {
            Backend::Smtp(session) => {
                let envelope = message.envelope();
                let from = envelope.from().map(|a| a.to_string()).unwrap_or_default();
                let to: Vec<String> = envelope.to().iter().map(|a| a.to_string()).collect();
                return session
                    .send_until(
                        &from,
                        &to,
                        &message.formatted(),
                        deadline.exchange,
                        deadline.answer,
                        overlap,
                    )
                    .map_err(classify_smtp);
            }
            Backend::Sendmail(t) => {
                t.send(message)
                    .map_err(|e| SendError::Temporary(format!("sendmail: {e}")))?;
                "accepted by sendmail".to_string()
            }
            Backend::Dir(dir) => {
                // One file per delivery: a re-send after a crash replaces it, never adds one.
                let name = format!("notifyctl-{}.eml", item.delivery_id);
                let path = crate::files::write_atomic(dir, &name, &message.formatted()).map_err(|e| {
                    SendError::Unavailable(format!("writing .eml file in {}: {e}", dir.display()))
                })?;
                format!("written to {}", path.display())
            }
            Backend::Stdout => {
                // With --json, stdout carries the machine-readable summary: mail goes to stderr.
                let mut out: Box<dyn Write> = if self.stdout_to_stderr {
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
        overlap.meanwhile();
        Ok(response)
    }
}

/// Longest display name and subject put in a header, in characters.
const MAX_DISPLAY_NAME: usize = 100;
const MAX_SUBJECT: usize = 200;

/// Text fit for a header: control characters dropped, whitespace runs made one space,
/// cut to `max` characters with an ellipsis.
pub fn header_text(s: &str, max: usize) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .filter(|c| !c.is_control())
        .collect();
    let one_line = clean
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let mut cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// What each SMTP failure means for the outbox: 5xx permanent, 4xx temporary; a server
/// that cannot be reached stops the channel for this tick; refused credentials are a
/// setting to fix (the deliveries wait, no attempt spent); no answer after the final dot
/// may mean the message arrived, so its retry may duplicate it.
fn classify_smtp(e: SmtpError) -> SendError {
    match e {
        SmtpError::Permanent(text) => SendError::Permanent(text),
        SmtpError::Temporary(text) => SendError::Temporary(text),
        SmtpError::Unavailable(text) => SendError::Unavailable(text),
        SmtpError::AuthFailed(text) => SendError::Misconfigured(text),
        SmtpError::Unknown(text) => SendError::Unconfirmed(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_text_is_one_line_without_controls_and_bounded() {
        assert_eq!(
            header_text("Ana\r\nBcc: evil@example.org", 100),
            "Ana Bcc: evil@example.org"
        );
        assert_eq!(header_text("a\u{7}b\u{1b}[31mc", 100), "ab[31mc");
        let long = header_text(&"é".repeat(1_000_000), 200);
        assert_eq!(long.chars().count(), 200);
        assert!(long.ends_with('…'));
    }
}
