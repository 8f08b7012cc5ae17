//! What each recipient gets: turning an event change, a due reminder or a day's agenda
//! into a stored notice (the in-app row, rendered in the recipient's language and zone) and
//! the pending deliveries on the channels it goes out on — the ones configured, for which
//! the recipient has an address, and that their preferences let through. The delivery step
//! renders the outgoing message from the same [`message_context`] and asks [`unusable`] and
//! [`preference`] again just before sending.

use chrono::{DateTime, NaiveDate, Utc};

use std::cell::OnceCell;

use super::report::Reporter;
use super::{user_locale, user_setting_problem, user_tz};
use crate::config::{Config, Transport};
use crate::messages::{AgendaInfo, EventInfo, MessageContext, Templates};
use crate::model::{Channel, Event, Kind, NewNotice, User};
use crate::preferences::{self, Choice};
use crate::recurrence::Occurrence;
use crate::store::{Ops, Preference};

/// What a notice is about.
#[derive(Debug, Clone, Copy)]
pub struct About<'a> {
    pub kind: Kind,
    pub event: Option<&'a Event>,
    /// Reminders: how long before the start.
    pub offset_minutes: Option<i64>,
    /// Rescheduled: the start before the move.
    pub previous_start: Option<DateTime<Utc>>,
    /// Custom notices: (title, body).
    pub custom: Option<(&'a str, &'a str)>,
    /// Agenda notices: the day and its events.
    pub agenda: Option<(NaiveDate, &'a [Event])>,
    /// The times to show instead of the event's: one occurrence of a series, or the next.
    pub times: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// What an event notice says beyond its kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoticeDetail {
    /// Reminders: how long before the start.
    pub offset_minutes: Option<i64>,
    /// Rescheduled: the start before the move.
    pub previous_start: Option<DateTime<Utc>>,
    /// A notice about one occurrence of a series, as it takes place (or took place, for a
    /// cancelled one).
    pub occurrence: Option<Occurrence>,
}

/// The times a notice about `event` shows: the occurrence's; for a series as a whole, its
/// next occurrence from `now` on (else its first); else the event's.
pub fn shown_times(
    event: &Event,
    occurrence: Option<&Occurrence>,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    if let Some(o) = occurrence {
        return (o.start, o.end);
    }
    if let Ok(Some(series)) = event.series() {
        if let Some(next) = series.occurrences_from(now, &event.rule_exceptions()).next() {
            return (next.start, next.end);
        }
    }
    (event.starts_at, event.ends_at)
}

/// What a message says about one event, for `user`; `times` replaces the event's own (one
/// occurrence of a series, or its next).
fn event_info(
    e: &Event,
    user: &User,
    previous_start: Option<DateTime<Utc>>,
    times: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> EventInfo {
    EventInfo {
        id: e.id,
        title: e.title.clone(),
        starts_at: times.map_or(e.starts_at, |t| t.0),
        ends_at: times.map_or(e.ends_at, |t| t.1),
        previous_starts_at: previous_start,
        video_url: e.video_url.clone(),
        role: e
            .participants
            .iter()
            .find(|p| p.user_id == user.id)
            .map(|p| p.role.clone()),
        participants: e
            .participants
            .iter()
            .filter(|p| p.user_id != user.id)
            .map(|p| p.name.clone())
            .collect(),
    }
}

/// Everything a template needs about one notice for one recipient.
pub fn message_context(config: &Config, reporter: &Reporter, user: &User, about: &About) -> MessageContext {
    let About {
        kind,
        event,
        offset_minutes,
        previous_start,
        custom,
        agenda,
        times,
    } = *about;
    if let Some(problem) = user_setting_problem(user) {
        reporter.note(problem);
    }
    MessageContext {
        kind,
        locale: user_locale(config, user),
        tz: user_tz(config, user),
        recipient_name: user.name.clone(),
        recipient_email: user.email.clone(),
        event: event.map(|e| event_info(e, user, previous_start, times)),
        offset_minutes,
        custom_title: custom.map(|c| c.0.to_string()),
        custom_body: custom.map(|c| c.1.to_string()),
        app_name: config.email.app_name.clone(),
        unsubscribe_url: (!config.email.unsubscribe_url.is_empty())
            .then(|| config.email.unsubscribe_url.clone()),
        agenda: agenda.map(|(date, events)| AgendaInfo {
            date,
            events: events.iter().map(|e| event_info(e, user, None, None)).collect(),
        }),
    }
}

/// Why `channel` cannot carry messages to `user` at all, if it cannot: not configured, or
/// the user has no address for it. The same words at creation and just before sending.
pub fn unusable(config: &Config, channel: Channel, user: &User) -> Option<String> {
    match channel {
        Channel::Email if config.email.transport == Transport::None => {
            Some("the email channel is switched off ([email] transport = \"none\")".into())
        }
        Channel::Webhook if config.webhook.url.is_empty() => {
            Some("the webhook channel is switched off ([webhook] url is empty)".into())
        }
        Channel::Sms if config.sms.url.is_empty() => {
            Some("the SMS channel is switched off ([sms] url is empty)".into())
        }
        Channel::Sms => match user.phone.as_deref().map(crate::input::parse_phone) {
            None => Some("the recipient has no phone number".into()),
            Some(Err(_)) => Some(format!(
                "users id {}, column phone: not an E.164 number (value '{}')",
                user.id,
                crate::input::printable(user.phone.as_deref().unwrap_or_default(), 40)
            )),
            Some(Ok(_)) => None,
        },
        Channel::Ntfy if config.ntfy.url.is_empty() => {
            Some("the push channel is switched off ([ntfy] url is empty)".into())
        }
        Channel::Ntfy => match user.ntfy_topic.as_deref().map(crate::input::parse_ntfy_topic) {
            None => Some("the recipient has no ntfy topic".into()),
            Some(Err(_)) => Some(format!(
                "users id {}, column ntfy_topic: not an ntfy topic (value '{}')",
                user.id,
                crate::input::printable(user.ntfy_topic.as_deref().unwrap_or_default(), 70)
            )),
            Some(Ok(_)) => None,
        },
        _ => None,
    }
}

/// A user's stored preferences; rows that cannot be read are reported, and the user is
/// then treated as having switched every personal channel off (mandatory kinds still go):
/// a broken setting must not send what someone asked not to receive.
pub fn user_preferences(
    ops: &mut dyn Ops,
    user: &User,
    reporter: &Reporter,
) -> anyhow::Result<Vec<Preference>> {
    match ops.preferences(user.id) {
        Ok(rows) => Ok(rows),
        Err(e) => match e.downcast::<crate::store::BrokenRow>() {
            Ok(b) => {
                reporter.broken(&b);
                Ok(Channel::PERSONAL
                    .iter()
                    .flat_map(|c| {
                        Kind::ALL.iter().map(move |k| Preference {
                            kind: k.as_str().into(),
                            channel: c.as_str().into(),
                            enabled: false,
                        })
                    })
                    .collect())
            }
            Err(other) => Err(other),
        },
    }
}

/// Whether the recipient's preferences let `kind` through on a personal `channel`.
pub fn preference(
    config: &Config,
    prefs: &[Preference],
    user: &User,
    kind: Kind,
    channel: Channel,
) -> Choice {
    preferences::choice(
        prefs,
        user.email_enabled,
        kind,
        channel,
        &config.preferences.mandatory,
    )
}

/// Creates notices inside the caller's transaction.
pub struct Notifier<'a> {
    pub config: &'a Config,
    pub templates: &'a Templates,
    pub reporter: &'a Reporter,
    pub now: DateTime<Utc>,
}

impl<'a> Notifier<'a> {
    /// Compiles the templates on first use.
    pub fn new(
        config: &'a Config,
        templates: &'a OnceCell<Templates>,
        reporter: &'a Reporter,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Notifier<'a>> {
        Ok(Notifier {
            config,
            templates: super::templates(templates, config)?,
            reporter,
            now,
        })
    }

    /// The channels a notice of `kind` for `user` goes out on: each personal channel that
    /// is configured, for which the user has an address, and that their preferences (or
    /// the mandatory kinds) let through; and the webhook, the app's feed, when there is
    /// one. `personal: false` (`send --no-email`): in-app and webhook only.
    pub fn channels(
        &self,
        ops: &mut dyn Ops,
        user: &User,
        kind: Kind,
        personal: bool,
    ) -> anyhow::Result<Vec<Channel>> {
        let mut v = Vec::new();
        if personal {
            let prefs = user_preferences(ops, user, self.reporter)?;
            for channel in Channel::PERSONAL {
                if unusable(self.config, channel, user).is_none()
                    && preference(self.config, &prefs, user, kind, channel).wanted()
                {
                    v.push(channel);
                }
            }
        }
        if unusable(self.config, Channel::Webhook, user).is_none() {
            v.push(Channel::Webhook);
        }
        Ok(v)
    }

    /// Store `user`'s agenda for local `date` listing `events` (inbox row + pending
    /// deliveries); None when it existed already (the unique key decides).
    pub fn agenda(
        &self,
        ops: &mut dyn Ops,
        user: &User,
        date: NaiveDate,
        events: &[Event],
    ) -> anyhow::Result<Option<i64>> {
        let about = About {
            kind: Kind::Agenda,
            event: None,
            offset_minutes: None,
            previous_start: None,
            custom: None,
            agenda: Some((date, events)),
            times: None,
        };
        let mc = message_context(self.config, self.reporter, user, &about);
        let (title, body) = self.templates.render_inbox(&mc)?;
        let channels = self.channels(ops, user, Kind::Agenda, true)?;
        ops.insert_notice(
            &NewNotice {
                user_id: user.id,
                kind: Kind::Agenda,
                event_id: None,
                offset_minutes: None,
                event_start: None,
                event_sequence: None,
                previous_start: None,
                title,
                body,
                channels,
                agenda_date: Some(date),
                occurrence_start: None,
            },
            self.now,
        )
    }

    /// Store one event notice (inbox row + pending deliveries) for `user`. Returns the
    /// notification id, or None when it existed already.
    pub fn event_notice(
        &self,
        ops: &mut dyn Ops,
        event: &Event,
        user: &User,
        kind: Kind,
        offset_minutes: Option<i64>,
        previous_start: Option<DateTime<Utc>>,
    ) -> anyhow::Result<Option<i64>> {
        let detail = NoticeDetail {
            offset_minutes,
            previous_start,
            occurrence: None,
        };
        self.event_notice_with(ops, event, user, kind, &detail)
    }

    /// [`Notifier::event_notice`], for one occurrence of a series when `detail` says so:
    /// the notice is keyed and shown by the occurrence's start.
    pub fn event_notice_with(
        &self,
        ops: &mut dyn Ops,
        event: &Event,
        user: &User,
        kind: Kind,
        detail: &NoticeDetail,
    ) -> anyhow::Result<Option<i64>> {
        let about = About {
            kind,
            event: Some(event),
            offset_minutes: detail.offset_minutes,
            previous_start: detail.previous_start,
            custom: None,
            agenda: None,
            times: Some(shown_times(event, detail.occurrence.as_ref(), self.now)),
        };
        let mc = message_context(self.config, self.reporter, user, &about);
        let (title, body) = self.templates.render_inbox(&mc)?;
        let channels = self.channels(ops, user, kind, true)?;
        ops.insert_notice(
            &NewNotice {
                user_id: user.id,
                kind,
                event_id: Some(event.id),
                offset_minutes: detail.offset_minutes,
                event_start: Some(detail.occurrence.map_or(event.starts_at, |o| o.start)),
                event_sequence: (kind != Kind::Reminder).then_some(event.sequence),
                previous_start: detail.previous_start,
                occurrence_start: detail.occurrence.map(|o| o.original_start),
                title,
                body,
                channels,
                agenda_date: None,
            },
            self.now,
        )
    }

    /// Notify every participant of `event` (as it is now) with `kind`; how many got one.
    pub fn notify_participants(
        &self,
        ops: &mut dyn Ops,
        event: &Event,
        kind: Kind,
        previous_start: Option<DateTime<Utc>>,
    ) -> anyhow::Result<usize> {
        let detail = NoticeDetail {
            previous_start,
            ..NoticeDetail::default()
        };
        self.notify_participants_with(ops, event, kind, &detail)
    }

    /// [`Notifier::notify_participants`] with the details of [`Notifier::event_notice_with`].
    pub fn notify_participants_with(
        &self,
        ops: &mut dyn Ops,
        event: &Event,
        kind: Kind,
        detail: &NoticeDetail,
    ) -> anyhow::Result<usize> {
        let mut n = 0;
        for p in &event.participants {
            let Some(user) = ops.user(p.user_id)? else {
                continue;
            };
            if self.event_notice_with(ops, event, &user, kind, detail)?.is_some() {
                n += 1;
            }
        }
        Ok(n)
    }

    /// An ad-hoc notice; rendered now so that a broken template fails the command, not a
    /// later tick. `personal: false` (`send --no-email`): in-app (and webhook) only.
    pub fn custom(
        &self,
        ops: &mut dyn Ops,
        user: &User,
        title: &str,
        body: &str,
        personal: bool,
    ) -> anyhow::Result<i64> {
        let about = About {
            kind: Kind::Custom,
            event: None,
            offset_minutes: None,
            previous_start: None,
            custom: Some((title, body)),
            agenda: None,
            times: None,
        };
        let mc = message_context(self.config, self.reporter, user, &about);
        self.templates.render(&mc)?;
        let channels = self.channels(ops, user, Kind::Custom, personal)?;
        ops.insert_notice(
            &NewNotice {
                user_id: user.id,
                kind: Kind::Custom,
                event_id: None,
                offset_minutes: None,
                event_start: None,
                event_sequence: None,
                previous_start: None,
                occurrence_start: None,
                title: title.to_string(),
                body: body.to_string(),
                channels,
                agenda_date: None,
            },
            self.now,
        )?
        .ok_or_else(|| anyhow::anyhow!("the custom notice was not stored"))
    }
}
