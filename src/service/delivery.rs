//! The service's side of the outbox loop: re-checking a claimed delivery against the data
//! as it is now (a reminder for a moved or cancelled event is dropped, one that can no
//! longer arrive in time expires), rendering it for its recipient, and building the
//! channels' senders from the settings.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::notices::{message_context, About};
use super::report::Reporter;
use crate::channels::email::EmailSender;
use crate::channels::webhook::WebhookSender;
use crate::channels::{EventRef, Outgoing, Recipient, Sender};
use crate::config::{Config, Transport};
use crate::messages::{Kind, Templates};
use crate::messages::{MessageContext, Rendered};
use crate::model::{Event, EventStatus, User};
use crate::outbox::{Deliverer, Draft, Prepared};
use crate::store::{ClaimedDelivery, Ops};

/// Why a claimed delivery must not go out any more, if it must not: (status, reason).
pub fn stale(
    d: &ClaimedDelivery,
    user_id: i64,
    event: Option<&Event>,
    now: DateTime<Utc>,
) -> Option<(&'static str, String)> {
    let drop = |status: &'static str, reason: &str| Some((status, reason.to_string()));
    let is_event_notice = matches!(d.kind.as_str(), "reminder" | "assigned" | "rescheduled");
    if !is_event_notice {
        return None;
    }
    let Some(event) = event else {
        return drop("superseded", "the event was deleted");
    };
    if event.status == EventStatus::Cancelled {
        return drop("superseded", "the event was cancelled");
    }
    if !event.participants.iter().any(|p| p.user_id == user_id) {
        return drop("superseded", "the recipient is no longer a participant");
    }
    if d.kind == "reminder" {
        if d.notice_event_start != Some(event.starts_at) {
            return drop("superseded", "the event was moved");
        }
        if now >= event.starts_at {
            return drop("expired", "the event started before the reminder could go out");
        }
    }
    None
}

/// Why a channel no longer carries this recipient's messages, if it does not: switched
/// off in the settings since the notice was created, or turned off by the recipient.
pub fn switched_off(config: &Config, channel: &str, user: &User) -> Option<String> {
    match channel {
        "email" if config.email.transport == Transport::None => {
            Some("the email channel is switched off ([email] transport = \"none\")".into())
        }
        "email" if !user.email_enabled => Some("the recipient turned email off".into()),
        "webhook" if config.webhook.url.is_empty() => {
            Some("the webhook channel is switched off ([webhook] url is empty)".into())
        }
        _ => None,
    }
}

/// Re-checks claimed deliveries for the tick (on the tick's thread).
pub struct TickDeliverer<'a> {
    config: &'a Config,
    reporter: &'a Reporter,
    users: HashMap<i64, Option<User>>,
    events: HashMap<i64, Option<Event>>,
}

impl<'a> TickDeliverer<'a> {
    pub fn new(config: &'a Config, reporter: &'a Reporter) -> TickDeliverer<'a> {
        TickDeliverer {
            config,
            reporter,
            users: HashMap::new(),
            events: HashMap::new(),
        }
    }
}

impl Deliverer for TickDeliverer<'_> {
    fn new_batch(&mut self) {
        self.events.clear();
    }

    fn prepare(
        &mut self,
        ops: &mut dyn Ops,
        d: &ClaimedDelivery,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Prepared> {
        let kind: Kind = match d.kind.parse() {
            Ok(k) => k,
            Err(e) => return Ok(Prepared::Dead(format!("notification {}: {e}", d.notification_id))),
        };
        let user = match self.users.entry(d.user_id) {
            Entry::Occupied(slot) => slot.into_mut(),
            Entry::Vacant(slot) => slot.insert(match ops.user(d.user_id) {
                Ok(u) => u,
                Err(e) => return Ok(Prepared::Dead(format!("user {}: {e:#}", d.user_id))),
            }),
        };
        let Some(user) = user.clone() else {
            return Ok(Prepared::Dead(format!(
                "the recipient (user {}) no longer exists",
                d.user_id
            )));
        };
        let event = match d.event_id {
            Some(eid) => match self.events.entry(eid) {
                Entry::Occupied(slot) => slot.into_mut().clone(),
                Entry::Vacant(slot) => match ops.event(eid) {
                    Ok(e) => slot.insert(e).clone(),
                    Err(e) => return Ok(Prepared::Dead(format!("unreadable event {eid}: {e:#}"))),
                },
            },
            None => None,
        };
        if let Some((status, reason)) = stale(d, user.id, event.as_ref(), now) {
            return Ok(Prepared::Drop { status, reason });
        }
        if let Some(reason) = switched_off(self.config, &d.channel, &user) {
            return Ok(Prepared::Drop {
                status: "superseded",
                reason,
            });
        }
        let about = About {
            kind,
            event: event.as_ref(),
            offset_minutes: d.offset_minutes,
            previous_start: d.previous_start,
            custom: (kind == Kind::Custom).then_some((d.title.as_str(), d.body.as_str())),
        };
        let context = message_context(self.config, self.reporter, &user, &about);
        let message = Outgoing {
            delivery_id: d.id,
            notification_id: d.notification_id,
            kind,
            recipient: Recipient {
                user_id: user.id,
                name: user.name.clone(),
                email: user.email.clone(),
            },
            title: d.title.clone(),
            body: d.body.clone(),
            created_at: d.created_at,
            offset_minutes: d.offset_minutes,
            event_id: d.event_id,
            event: event.as_ref().map(|e| EventRef {
                id: e.id,
                title: e.title.clone(),
                starts_at: e.starts_at,
                ends_at: e.ends_at,
                status: e.status,
                sequence: e.sequence,
                video_url: e.video_url.clone(),
            }),
            // Rendered by the worker that sends it.
            rendered: Rendered::default(),
            now,
        };
        Ok(Prepared::Send(Box::new(Draft { message, context })))
    }
}

/// What the workers need to build and send messages: shared, read-only.
pub struct Senders<'a> {
    pub config: &'a Config,
    pub templates: &'a Templates,
    pub outbox_dir: PathBuf,
    pub stdout_to_stderr: bool,
}

impl Senders<'_> {
    /// A sender for `channel`: one per worker, so one connection each.
    pub fn sender(&self, channel: &str) -> anyhow::Result<Box<dyn Sender + Send>> {
        match channel {
            "email" => Ok(Box::new(EmailSender::new(
                &self.config.email,
                &self.outbox_dir,
                self.stdout_to_stderr,
            )?)),
            "webhook" => Ok(Box::new(WebhookSender::new(&self.config.webhook)?)),
            other => anyhow::bail!("unknown channel '{other}'"),
        }
    }

    /// How many workers (connections) a channel gets.
    pub fn connections(&self, channel: &str) -> usize {
        match (channel, self.config.email.transport) {
            ("email", Transport::Smtp) => self.config.email.smtp.connections as usize,
            _ => 1,
        }
    }

    pub fn render(&self, context: &MessageContext) -> anyhow::Result<Rendered> {
        self.templates.render(context)
    }
}
