//! Delivery channels (email, webhook, SMS, ntfy push). Each is given a rendered, addressed
//! message and its own settings —
//! never the whole program context — and answers with a receipt or a classified failure.
//! The outbox knows them only through [`Sender`].

pub mod email;
pub mod http;
pub mod ntfy;
pub mod sms;
pub mod smtp;
pub mod webhook;

use chrono::{DateTime, Utc};

use crate::messages::{Kind, Rendered};
use crate::model::EventStatus;
use crate::recurrence::{Exception, Series};

/// Who a message goes to.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub user_id: i64,
    pub name: String,
    pub email: String,
    /// E.164, for SMS.
    pub phone: Option<String>,
    /// For push: a secret, never logged.
    pub ntfy_topic: Option<String>,
}

impl Recipient {
    /// Who a message on `channel` goes to, as logs and reports show it (an ntfy topic is a
    /// secret: the user is named instead).
    pub fn shown(&self, channel: &str) -> String {
        match channel {
            "sms" => self.phone.clone().unwrap_or_default(),
            "ntfy" => format!("user {} (push)", self.user_id),
            _ => self.email.clone(),
        }
    }
}

/// The event a message is about, as it is when the message goes out.
#[derive(Debug, Clone)]
pub struct EventRef {
    pub id: i64,
    pub title: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub status: EventStatus,
    /// iCalendar SEQUENCE: calendars keep the version with the highest.
    pub sequence: i64,
    pub video_url: Option<String>,
    /// A recurring series: the invitation carries its rule and exceptions.
    pub series: Option<SeriesRef>,
    /// A change to one occurrence of the series (moved, cancelled): its original start, the
    /// RECURRENCE-ID the invitation is about.
    pub occurrence: Option<DateTime<Utc>>,
}

/// A series as a calendar invitation needs it.
#[derive(Debug, Clone)]
pub struct SeriesRef {
    pub series: Series,
    pub exceptions: Vec<Exception>,
}

/// One delivery, rendered for its recipient, ready for a channel.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub delivery_id: i64,
    pub notification_id: i64,
    pub kind: Kind,
    pub recipient: Recipient,
    /// The in-app title and summary as stored.
    pub title: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub offset_minutes: Option<i64>,
    /// The event the notice is about (kept when the event itself is gone).
    pub event_id: Option<i64>,
    pub event: Option<EventRef>,
    /// Subject, text and HTML in the recipient's language and zone.
    pub rendered: Rendered,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Sent {
    pub message_id: Option<String>,
    /// What the server answered, kept for `deliveries` and audits.
    pub response: String,
}

#[derive(Debug, Clone)]
pub enum SendError {
    /// The server refused this message for good (SMTP 5xx, HTTP 4xx): dead at once.
    Permanent(String),
    /// Worth retrying later (SMTP 4xx, HTTP 5xx, timeout).
    Temporary(String),
    /// Rate limited (HTTP 429): retry, not before the time the server asked for.
    Throttled(String, std::time::Duration),
    /// The server could not be reached at all: retry later, and stop using the channel
    /// for the rest of this tick instead of timing out once per message.
    Unavailable(String),
    /// The message was sent but no answer came: it may have been accepted. Retried later
    /// (a possible duplicate, the one the README names), the channel set aside for the tick.
    Unconfirmed(String),
    /// The server refused our settings (credentials): nothing about this message. The
    /// channel is set aside, the delivery waits without spending an attempt, and the tick
    /// reports the problem.
    Misconfigured(String),
}

/// How long a send may take.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    /// Nothing is started and nothing up to the message itself is sent after this.
    pub exchange: std::time::Instant,
    /// The server's answer to a message already sent is awaited until this (later than
    /// `exchange` by the tick's answer grace, and within the claim).
    pub answer: std::time::Instant,
}

pub trait Sender {
    /// Send one message within `deadline`.
    fn send(&mut self, message: &Outgoing, deadline: Deadline) -> Result<Sent, SendError>;

    /// As [`send`](Self::send), with the worker's next message at hand: a sender may look
    /// at it while this one goes out (SMTP sends its envelope along), and has it rendered
    /// while the server works on this one (once it is on its way, before its answer is
    /// read) where the channel waits for an answer that way, else after sending; neither
    /// may happen when sending fails early.
    fn send_overlapped(
        &mut self,
        message: &Outgoing,
        deadline: Deadline,
        next: &mut dyn NextMessage,
    ) -> Result<Sent, SendError> {
        let result = self.send(message, deadline);
        next.render(&mut |_| {});
        result
    }
}

/// The message a worker sends next, as its sender sees it while sending the current one
/// (see [`Sender::send_overlapped`]).
pub trait NextMessage {
    /// Take the next message queued for the worker, if one is, and show it as it is before
    /// rendering (its recipient and event; not its texts).
    fn take(&mut self) -> Option<&Outgoing>;
    /// Render the message taken (taking one first if none was) and hand it to `build`,
    /// which a sender may use to build it meanwhile.
    fn render(&mut self, build: &mut dyn FnMut(&Outgoing));
}
