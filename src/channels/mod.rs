//! Delivery channels. The outbox knows them only through [`Sender`]: it hands over a
//! prepared notice and gets back a sent receipt or a classified failure.

pub mod email;
pub mod smtp;
pub mod webhook;

use chrono::{DateTime, Utc};

use crate::model::{Event, User};
use crate::store::ClaimedDelivery;

/// One claimed delivery with the data it is built from, read just before sending.
pub struct Outgoing<'a> {
    pub delivery: &'a ClaimedDelivery,
    pub user: &'a User,
    pub event: Option<&'a Event>,
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
    /// The server could not be reached at all: retry later, and stop using the channel
    /// for the rest of this tick instead of timing out once per message.
    Unavailable(String),
}

pub trait Sender {
    fn send(&mut self, item: &Outgoing) -> Result<Sent, SendError>;
}
