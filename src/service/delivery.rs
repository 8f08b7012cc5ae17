//! The service's side of the outbox loop: re-checking a claimed delivery against the data
//! as it is now (a reminder for a moved or cancelled event, or for an occurrence of a series
//! that no longer takes place at its start, is dropped; one that can no longer arrive in
//! time expires), rendering it for its recipient, and building the
//! channels' senders from the settings.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::notices::{message_context, shown_times, About};
use super::report::Reporter;
use crate::channels::email::EmailSender;
use crate::channels::webhook::WebhookSender;
use crate::channels::{EventRef, Outgoing, Recipient, Sender, SeriesRef};
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
    let series = match event.series() {
        Ok(series) => series,
        Err(_) => return drop("superseded", "the series' repeat rule cannot be read"),
    };
    let exceptions = event.rule_exceptions();
    // What happened to the occurrence a notice is about, if it no longer takes place.
    let occurrence_gone = |original: DateTime<Utc>| match &series {
        Some(s) if s.occurrence_of(original, &exceptions).is_none() => {
            drop("superseded", "the occurrence was cancelled")
        }
        _ => drop("superseded", "the occurrence was moved"),
    };
    if d.kind == "reminder" {
        // Still a start of this event as it is now: its start, or an occurrence taking
        // place then (the same one).
        let Some(start) = d.notice_event_start else {
            return drop("superseded", "the event was moved");
        };
        match &series {
            None if start != event.starts_at => return drop("superseded", "the event was moved"),
            None => {}
            Some(s) => match (s.occurrence_at(start, &exceptions), d.occurrence_start) {
                (Some(o), Some(original)) if o.original_start == original => {}
                (_, Some(original)) => return occurrence_gone(original),
                (_, None) => return drop("superseded", "the event became a series"),
            },
        }
        if now >= start {
            return drop("expired", "the event started before the reminder could go out");
        }
    }
    if let (Some(s), Some(original)) = (&series, d.occurrence_start) {
        if d.kind == "rescheduled" && s.occurrence_of(original, &exceptions).is_none() {
            return drop("superseded", "the occurrence was cancelled");
        }
    }
    None
}

/// The times a message about `event` shows: a notice about one occurrence shows that
/// occurrence (at the start the notice was about); a series' other notices its next
/// occurrence; a single event its own times.
fn message_times(d: &ClaimedDelivery, event: &Event, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    match (d.occurrence_start, d.notice_event_start, event.series()) {
        (Some(original), Some(start), Ok(Some(series))) => {
            let length = series
                .occurrence_of(original, &event.rule_exceptions())
                .map_or(series.duration(), |o| o.end - o.start);
            (start, start + length)
        }
        _ => shown_times(event, None, now),
    }
}

/// The event as a channel needs it: for a series, its rule and exceptions, and the
/// occurrence a change is about (a moved or cancelled one).
fn event_ref(event: &Event, d: &ClaimedDelivery, kind: Kind, now: DateTime<Utc>) -> EventRef {
    let (starts_at, ends_at) = message_times(d, event, now);
    EventRef {
        id: event.id,
        title: event.title.clone(),
        starts_at,
        ends_at,
        status: event.status,
        sequence: event.sequence,
        video_url: event.video_url.clone(),
        series: event.series().ok().flatten().map(|series| SeriesRef {
            series,
            exceptions: event.rule_exceptions(),
        }),
        occurrence: d
            .occurrence_start
            .filter(|_| matches!(kind, Kind::Rescheduled | Kind::Cancelled)),
    }
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
            times: event.as_ref().map(|e| message_times(d, e, now)),
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
            event: event.as_ref().map(|e| event_ref(e, d, kind, now)),
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
