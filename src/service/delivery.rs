//! The service's side of the outbox loop: re-checking a claimed delivery against the data
//! as it is now (a reminder for a moved or cancelled event, or for an occurrence of a series
//! that no longer takes place at its start, is dropped; one that can no longer arrive in
//! time expires; a channel the recipient turned off since is superseded; a message that is
//! not urgent waits for the end of the recipient's quiet hours), rendering it for its
//! recipient, and building the channels' senders from the settings.
//!
//! Quiet hours are decided here, when a message is about to go, not when its notice is
//! created: the hours then in force decide (a user may change them meanwhile, and
//! `user update` makes their held messages due again), and a held message is never
//! expired for having waited. The hold is recorded on the delivery (pending until the
//! end, with the reason), so `deliveries` and `plan` show it.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::notices::{message_context, preference, shown_times, unusable, user_preferences, About};
use super::report::Reporter;
use super::user_tz;
use crate::channels::email::EmailSender;
use crate::channels::ntfy::NtfySender;
use crate::channels::sms::SmsSender;
use crate::channels::webhook::WebhookSender;
use crate::channels::{EventRef, Outgoing, Recipient, Sender, SeriesRef};
use crate::config::{Config, Transport};
use crate::messages::{Kind, Templates};
use crate::messages::{MessageContext, Rendered};
use crate::model::{Channel, Event, EventStatus, User};
use crate::outbox::{Deliverer, Draft, Prepared};
use crate::quiet_hours::{self, QuietHours};
use crate::store::{ClaimedDelivery, Ops, Preference};

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

/// Why a channel no longer carries this recipient's message, if it does not: switched
/// off in the settings or left without the recipient's address since the notice was
/// created, or turned off by the recipient for this kind (mandatory kinds excepted).
pub fn switched_off(
    config: &Config,
    channel: Channel,
    user: &User,
    prefs: &[Preference],
    kind: Kind,
) -> Option<String> {
    if let Some(why) = unusable(config, channel, user) {
        return Some(why);
    }
    if channel.is_personal() && !preference(config, prefs, user, kind, channel).wanted() {
        return Some(match channel {
            Channel::Email if !user.email_enabled => "the recipient turned email off".into(),
            _ => format!(
                "the recipient turned {} off for {kind} notices",
                channel_name(channel)
            ),
        });
    }
    None
}

fn channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "email",
        Channel::Webhook => "the webhook",
        Channel::Sms => "SMS",
        Channel::Ntfy => "push (ntfy)",
    }
}

/// Until when a message to `user` waits for the end of their quiet hours, and why; `None`
/// when it goes now (no quiet hours, outside them, or a kind that never waits).
/// `event_start` is the start the message is about: for a series, the occurrence it names
/// (a moved one's new start) or the next one, not the series' first start.
pub fn quiet_until(
    config: &Config,
    reporter: &Reporter,
    user: &User,
    kind: Kind,
    event_start: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<(DateTime<Utc>, String)> {
    let text = user.quiet_hours.as_deref()?;
    let window = match QuietHours::parse(text) {
        Ok(w) => w,
        Err(_) => {
            reporter.note(format!(
                "users id {}, column quiet_hours: not HH:MM-HH:MM, ignored (value '{}')",
                user.id,
                crate::input::printable(text, 30)
            ));
            return None;
        }
    };
    let tz = user_tz(config, user);
    let until = window.until(now, tz)?;
    quiet_hours::may_wait(kind, event_start, now, until).then(|| {
        (
            until,
            format!("quiet hours of the recipient ({window} {})", tz.name()),
        )
    })
}

/// A user with their preferences, as the tick read them.
#[derive(Clone)]
struct Addressee {
    user: User,
    prefs: Vec<Preference>,
}

/// Re-checks claimed deliveries for the tick (on the tick's thread).
pub struct TickDeliverer<'a> {
    config: &'a Config,
    reporter: &'a Reporter,
    users: HashMap<i64, Option<Addressee>>,
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
        // Per batch, not per tick: a tick of 100,000 reminders to 100,000 people would
        // otherwise keep every recipient in memory to the end.
        self.events.clear();
        self.users.clear();
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
        let Some(channel) = Channel::parse(&d.channel) else {
            return Ok(Prepared::Dead(format!(
                "delivery {}: unknown channel '{}'",
                d.id,
                crate::input::printable(&d.channel, 20)
            )));
        };
        let recipient = match self.users.entry(d.user_id) {
            Entry::Occupied(slot) => slot.into_mut(),
            Entry::Vacant(slot) => {
                let user = match ops.user(d.user_id) {
                    Ok(u) => u,
                    Err(e) => return Ok(Prepared::Dead(format!("user {}: {e:#}", d.user_id))),
                };
                let read = match user {
                    Some(user) => Some(Addressee {
                        prefs: user_preferences(ops, &user, self.reporter)?,
                        user,
                    }),
                    None => None,
                };
                slot.insert(read)
            }
        };
        let Some(Addressee { user, prefs }) = recipient.clone() else {
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
        if let Some(reason) = switched_off(self.config, channel, &user, &prefs, kind) {
            return Ok(Prepared::Drop {
                status: "superseded",
                reason,
            });
        }
        // The agenda lists the day as it is now: events cancelled or moved away since it
        // was decided are left out, and one with nothing left is not sent.
        let day_events = match (kind, d.agenda_date) {
            (Kind::Agenda, Some(date)) => {
                let events = super::agenda::day_events(ops, self.config, &user, date)?;
                if events.is_empty() {
                    return Ok(Prepared::Drop {
                        status: "superseded",
                        reason: "no event is left on that day's agenda".into(),
                    });
                }
                Some((date, events))
            }
            (Kind::Agenda, None) => {
                return Ok(Prepared::Dead(format!(
                    "notification {}: an agenda without its date",
                    d.notification_id
                )))
            }
            _ => None,
        };
        if channel.is_personal() {
            // The start the message is about: a moved occurrence's, or a series' next.
            let start = event.as_ref().map(|e| message_times(d, e, now).0);
            if let Some((until, reason)) = quiet_until(self.config, self.reporter, &user, kind, start, now) {
                return Ok(Prepared::Hold { until, reason });
            }
        }
        let about = About {
            kind,
            event: event.as_ref(),
            offset_minutes: d.offset_minutes,
            previous_start: d.previous_start,
            custom: (kind == Kind::Custom).then_some((d.title.as_str(), d.body.as_str())),
            agenda: day_events
                .as_ref()
                .map(|(date, events)| (*date, events.as_slice())),
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
                phone: user.phone.clone(),
                ntfy_topic: user.ntfy_topic.clone(),
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
            "sms" => Ok(Box::new(SmsSender::new(&self.config.sms)?)),
            "ntfy" => Ok(Box::new(NtfySender::new(&self.config.ntfy)?)),
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

    /// The texts `channel` sends: the whole email, the SMS text, or a push's title and text.
    pub fn render(&self, channel: &str, context: &MessageContext) -> anyhow::Result<Rendered> {
        match channel {
            "sms" => self.templates.render_sms(context),
            "ntfy" => self.templates.render_push(context),
            _ => self.templates.render(context),
        }
    }
}
