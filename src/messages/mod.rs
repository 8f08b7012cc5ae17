//! Everything a notification says: the subject, the one-line in-app summary, and the plain-text
//! and HTML email bodies for each kind of event notice, in French or English, rendered from
//! minijinja templates that ship inside the binary and can be overridden from a directory.
//! Also the `.ics` calendar attachment and the date formatting both share. This module only
//! turns plain data into text: it never reads the database or the clock, so the caller decides
//! who gets what and when.

pub mod ics;
pub mod request;
pub mod sms;
mod templates;
pub mod time;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use templates::{sample_context, Templates};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Assigned,
    Reminder,
    Rescheduled,
    Cancelled,
    Custom,
    /// The daily agenda: one message a day listing the recipient's events.
    Agenda,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Assigned,
        Kind::Reminder,
        Kind::Rescheduled,
        Kind::Cancelled,
        Kind::Custom,
        Kind::Agenda,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Assigned => "assigned",
            Kind::Reminder => "reminder",
            Kind::Rescheduled => "rescheduled",
            Kind::Cancelled => "cancelled",
            Kind::Custom => "custom",
            Kind::Agenda => "agenda",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = ParseNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| {
                ParseNameError(format!(
                    "unknown kind '{s}': use assigned, reminder, rescheduled, cancelled, custom or agenda"
                ))
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Locale {
    Fr,
    En,
}

impl Locale {
    pub const ALL: [Locale; 2] = [Locale::Fr, Locale::En];

    pub fn as_str(self) -> &'static str {
        match self {
            Locale::Fr => "fr",
            Locale::En => "en",
        }
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Locale {
    type Err = ParseNameError;

    /// Accepts a region-qualified tag (`fr-FR`, `en_GB`) too, because that is what user
    /// profiles and `LANG` tend to hold; only the language decides the texts.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let language = s.trim().split(['-', '_']).next().unwrap_or_default();
        Locale::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(language))
            .ok_or_else(|| ParseNameError(format!("unknown locale '{s}': use fr or en")))
    }
}

/// A `Kind` or `Locale` name that matched nothing; the message lists the accepted names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseNameError(String);

impl fmt::Display for ParseNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseNameError {}

/// Everything a message needs, in plain data. The caller fills it from the database.
#[derive(Debug, Clone)]
pub struct MessageContext {
    pub kind: Kind,
    pub locale: Locale,
    /// The recipient's zone: every time in the message is shown in it.
    pub tz: chrono_tz::Tz,
    pub recipient_name: String,
    pub recipient_email: String,
    /// `None` only for `Kind::Custom`.
    pub event: Option<EventInfo>,
    /// Reminders only: how long before the start this reminder is meant to go out.
    pub offset_minutes: Option<i64>,
    /// Custom only; required for it.
    pub custom_title: Option<String>,
    /// Custom only; blank lines separate paragraphs.
    pub custom_body: Option<String>,
    /// Shown in the footer, e.g. "notifyctl".
    pub app_name: String,
    pub unsubscribe_url: Option<String>,
    /// Agenda only; required for it.
    pub agenda: Option<AgendaInfo>,
}

/// The daily agenda: the recipient's events of one local day, in start order.
#[derive(Debug, Clone)]
pub struct AgendaInfo {
    pub date: chrono::NaiveDate,
    pub events: Vec<EventInfo>,
}

#[derive(Debug, Clone)]
pub struct EventInfo {
    pub id: i64,
    pub title: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// Rescheduled: the start before the change.
    pub previous_starts_at: Option<DateTime<Utc>>,
    pub video_url: Option<String>,
    /// The recipient's role in the event, e.g. "mentor".
    pub role: Option<String>,
    /// Display names of the other participants.
    pub participants: Vec<String>,
}

/// One message in every form it is delivered in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    /// Email subject and in-app title; always a single line.
    pub subject: String,
    /// In-app notification body; always a single line.
    pub summary: String,
    /// Plain-text email body, ending with a newline.
    pub text: String,
    /// HTML email body.
    pub html: String,
    /// The SMS text: one segment when it can be (titles shortened, links kept whole).
    pub sms: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip() {
        for kind in Kind::ALL {
            assert_eq!(kind.as_str().parse::<Kind>().unwrap(), kind);
            assert_eq!(kind.to_string(), kind.as_str());
        }
        assert_eq!(" Reminder ".parse::<Kind>().unwrap(), Kind::Reminder);
        let err = "remind".parse::<Kind>().unwrap_err().to_string();
        assert!(err.starts_with("unknown kind 'remind'"), "{err}");
    }

    #[test]
    fn locale_names_round_trip() {
        for locale in Locale::ALL {
            assert_eq!(locale.as_str().parse::<Locale>().unwrap(), locale);
        }
        assert_eq!("FR".parse::<Locale>().unwrap(), Locale::Fr);
        assert_eq!("fr-FR".parse::<Locale>().unwrap(), Locale::Fr);
        assert_eq!("en_GB".parse::<Locale>().unwrap(), Locale::En);
        assert_eq!(
            "de".parse::<Locale>().unwrap_err().to_string(),
            "unknown locale 'de': use fr or en"
        );
        assert!("".parse::<Locale>().is_err());
    }
}
