//! What each recipient gets: turning an event change or a due reminder into a stored
//! notice (the in-app row, rendered in the recipient's language and zone) and the pending
//! deliveries on the channels it goes out on. The delivery step renders the outgoing
//! message from the same [`message_context`].

use chrono::{DateTime, Utc};

use std::cell::OnceCell;

use super::report::Reporter;
use super::{user_locale, user_setting_problem, user_tz};
use crate::config::{Config, Transport};
use crate::messages::{EventInfo, MessageContext, Templates};
use crate::model::{Channel, Event, Kind, NewNotice, User};
use crate::recurrence::Occurrence;
use crate::store::Ops;

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

/// Everything a template needs about one notice for one recipient.
pub fn message_context(config: &Config, reporter: &Reporter, user: &User, about: &About) -> MessageContext {
    let About {
        kind,
        event,
        offset_minutes,
        previous_start,
        custom,
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
        event: event.map(|e| EventInfo {
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
        }),
        offset_minutes,
        custom_title: custom.map(|c| c.0.to_string()),
        custom_body: custom.map(|c| c.1.to_string()),
        app_name: config.email.app_name.clone(),
        unsubscribe_url: (!config.email.unsubscribe_url.is_empty())
            .then(|| config.email.unsubscribe_url.clone()),
    }
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

    /// The channels a notice for `user` goes out on.
    pub fn channels(&self, user: &User, email_wanted: bool) -> Vec<Channel> {
        let mut v = Vec::new();
        if email_wanted && user.email_enabled && self.config.email.transport != Transport::None {
            v.push(Channel::Email);
        }
        if !self.config.webhook.url.is_empty() {
            v.push(Channel::Webhook);
        }
        v
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
            times: Some(shown_times(event, detail.occurrence.as_ref(), self.now)),
        };
        let mc = message_context(self.config, self.reporter, user, &about);
        let (title, body) = self.templates.render_inbox(&mc)?;
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
                channels: self.channels(user, true),
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
    /// later tick.
    pub fn custom(
        &self,
        ops: &mut dyn Ops,
        user: &User,
        title: &str,
        body: &str,
        email: bool,
    ) -> anyhow::Result<i64> {
        let about = About {
            kind: Kind::Custom,
            event: None,
            offset_minutes: None,
            previous_start: None,
            custom: Some((title, body)),
            times: None,
        };
        let mc = message_context(self.config, self.reporter, user, &about);
        self.templates.render(&mc)?;
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
                channels: self.channels(user, email),
            },
            self.now,
        )?
        .ok_or_else(|| anyhow::anyhow!("the custom notice was not stored"))
    }
}
