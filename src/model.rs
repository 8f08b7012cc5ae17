//! Plain domain types shared by the store, the planner, the outbox and the output.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

pub use crate::messages::{Kind, Locale};
use crate::recurrence::{Exception, Series};

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub timezone: Option<String>,
    pub locale: Option<String>,
    pub email_enabled: bool,
    #[serde(with = "utc")]
    pub created_at: DateTime<Utc>,
    /// E.164, for SMS.
    pub phone: Option<String>,
    /// Where push notifications go (ntfy).
    pub ntfy_topic: Option<String>,
    /// `HH:MM-HH:MM` in the user's zone.
    pub quiet_hours: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    Scheduled,
    Cancelled,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Scheduled => "scheduled",
            EventStatus::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Participant {
    pub user_id: i64,
    pub email: String,
    pub name: String,
    pub role: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub id: i64,
    pub title: String,
    #[serde(with = "utc")]
    pub starts_at: DateTime<Utc>,
    #[serde(with = "utc")]
    pub ends_at: DateTime<Utc>,
    pub timezone: Option<String>,
    pub video_url: Option<String>,
    pub status: EventStatus,
    pub sequence: i64,
    #[serde(with = "utc")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "utc")]
    pub updated_at: DateTime<Utc>,
    pub participants: Vec<Participant>,
    /// The event's own reminder offsets in minutes, largest first (`[]`: none); `None`:
    /// the config's `[reminders] offsets`.
    pub remind_offsets: Option<Vec<i64>>,
    /// A series: its RFC 5545 rule (normalised), expanded in `timezone` from `starts_at`.
    pub repeat_rule: Option<String>,
    /// A series: when its last occurrence ends; `None` when it has no end.
    #[serde(with = "utc_opt")]
    pub series_end: Option<DateTime<Utc>>,
    /// A series: its cancelled and moved occurrences.
    pub exceptions: Vec<EventException>,
    /// When the current times (or rule) were set: reminders due before are not sent.
    #[serde(skip)]
    pub armed_at: DateTime<Utc>,
}

impl Event {
    pub fn is_series(&self) -> bool {
        self.repeat_rule.is_some()
    }

    /// The series this event is, if it is one; an error (one line) when its stored rule or
    /// zone cannot be used.
    pub fn series(&self) -> Result<Option<Series>, String> {
        let Some(rule) = &self.repeat_rule else {
            return Ok(None);
        };
        let tz: chrono_tz::Tz = self
            .timezone
            .as_deref()
            .ok_or("a series needs a time zone")?
            .parse()
            .map_err(|_| format!("unknown time zone '{}'", self.timezone.as_deref().unwrap_or("")))?;
        Series::new(rule, self.starts_at, self.ends_at - self.starts_at, tz).map(Some)
    }

    /// The exceptions as the recurrence engine reads them.
    pub fn rule_exceptions(&self) -> Vec<Exception> {
        self.exceptions.iter().map(EventException::to_exception).collect()
    }

    /// The reminder offsets that apply (minutes): the event's own, else `default`.
    pub fn offsets_or<'a>(&'a self, default: &'a [i64]) -> &'a [i64] {
        self.remind_offsets.as_deref().unwrap_or(default)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExceptionStatus {
    Cancelled,
    Moved,
}

impl ExceptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExceptionStatus::Cancelled => "cancelled",
            ExceptionStatus::Moved => "moved",
        }
    }
}

/// One occurrence of a series cancelled or moved, keyed by the start the rule gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventException {
    #[serde(with = "utc")]
    pub original_start: DateTime<Utc>,
    pub status: ExceptionStatus,
    /// Moved: the new times.
    #[serde(with = "utc_opt")]
    pub starts_at: Option<DateTime<Utc>>,
    #[serde(with = "utc_opt")]
    pub ends_at: Option<DateTime<Utc>>,
    /// When it was cancelled or moved: its reminders due before are not sent.
    #[serde(with = "utc")]
    pub armed_at: DateTime<Utc>,
}

impl EventException {
    pub fn to_exception(&self) -> Exception {
        match (self.status, self.starts_at, self.ends_at) {
            (ExceptionStatus::Moved, Some(start), Some(end)) => Exception::Moved {
                original_start: self.original_start,
                start,
                end,
            },
            // A moved row without times is refused by the schema; read as cancelled.
            _ => Exception::Cancelled {
                original_start: self.original_start,
            },
        }
    }
}

/// A participant of a scheduled event whose reminders may be due: what the planner
/// (`reminders.rs`) decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub event_id: i64,
    pub user_id: i64,
    pub event_start: DateTime<Utc>,
    /// Reminders due before this moment (participant added, event moved) are not sent.
    pub armed_at: DateTime<Utc>,
    /// Offsets (minutes) already decided for this event start.
    pub decided: Vec<i64>,
    /// The event's own offsets (minutes); `None`: the config's.
    pub offsets: Option<Vec<i64>>,
    /// An occurrence of a series: its original start (`event_start` is when it takes place).
    pub occurrence: Option<DateTime<Utc>>,
}

impl Candidate {
    /// The offsets that apply: the event's own, else `default`.
    pub fn offsets_or<'a>(&'a self, default: &'a [i64]) -> &'a [i64] {
        self.offsets.as_deref().unwrap_or(default)
    }
}

/// An in-app notification as the inbox shows it; the JSON shape is part of the contract.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    pub id: i64,
    pub user_id: i64,
    pub user_email: String,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub event_id: Option<i64>,
    pub offset_minutes: Option<i64>,
    #[serde(with = "utc")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "utc_opt")]
    pub read_at: Option<DateTime<Utc>>,
}

/// A notice to store: the inbox row and the channels it goes out on, written together.
#[derive(Debug, Clone)]
pub struct NewNotice {
    pub user_id: i64,
    pub kind: Kind,
    pub event_id: Option<i64>,
    pub offset_minutes: Option<i64>,
    pub event_start: Option<DateTime<Utc>>,
    pub event_sequence: Option<i64>,
    pub previous_start: Option<DateTime<Utc>>,
    /// A notice about one occurrence of a series: its original start.
    pub occurrence_start: Option<DateTime<Utc>>,
    pub title: String,
    pub body: String,
    pub channels: Vec<Channel>,
    /// Agenda notices: the recipient's local date they list (one per user and date).
    pub agenda_date: Option<NaiveDate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Webhook,
    Sms,
    Ntfy,
}

impl Channel {
    pub const ALL: [Channel; 4] = [Channel::Email, Channel::Webhook, Channel::Sms, Channel::Ntfy];
    /// The channels that reach a person, which preferences and quiet hours apply to (the
    /// webhook is the app's own feed of every notice).
    pub const PERSONAL: [Channel; 3] = [Channel::Email, Channel::Sms, Channel::Ntfy];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
            Channel::Sms => "sms",
            Channel::Ntfy => "ntfy",
        }
    }

    pub fn is_personal(self) -> bool {
        self != Channel::Webhook
    }

    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub id: i64,
    pub notification_id: i64,
    pub channel: String,
    pub status: String,
    pub attempts: i64,
    pub recipient: String,
    pub kind: String,
    pub event_id: Option<i64>,
    #[serde(with = "utc")]
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub message_id: Option<String>,
    pub response: Option<String>,
    #[serde(with = "utc")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "utc_opt")]
    pub sent_at: Option<DateTime<Utc>>,
    /// Why it waits (pending until `next_attempt_at`): the recipient's quiet hours.
    pub hold_reason: Option<String>,
    /// When a message held for quiet hours goes (`next_attempt_at` of a held delivery);
    /// absent for any other. For `deliveries`, `plan` and `explain`.
    #[serde(with = "utc_opt")]
    pub held_until: Option<DateTime<Utc>>,
}

impl Delivery {
    /// Fill `held_until` from the status, the reason and the next attempt.
    pub fn with_held_until(mut self) -> Delivery {
        self.held_until =
            (self.status == "pending" && self.hold_reason.is_some()).then_some(self.next_attempt_at);
        self
    }
}

/// RFC 3339 UTC with a `Z`, second precision: the JSON and storage form of every instant.
pub mod utc {
    use chrono::{DateTime, Utc};
    pub fn serialize<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::input::rfc3339(*t))
    }
}

pub mod utc_opt {
    use chrono::{DateTime, Utc};
    pub fn serialize<S: serde::Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&crate::input::rfc3339(*t)),
            None => s.serialize_none(),
        }
    }
}
