//! Turning an event change or a due reminder into a stored notice: the recipient's
//! language and zone, the rendered in-app title and summary, and the channels it goes
//! out on. The outbox uses the same [`message_context`] to render the email at send time.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rusqlite::Connection;

use crate::config::Transport;
use crate::messages::{EventInfo, MessageContext};
use crate::model::{Channel, Event, Kind, Locale, NewNotice, User};
use crate::store;
use crate::Ctx;

pub fn user_tz(ctx: &Ctx, user: &User) -> Tz {
    user.timezone
        .as_deref()
        .and_then(|z| z.parse().ok())
        .unwrap_or_else(|| ctx.config.default_tz())
}

pub fn user_locale(ctx: &Ctx, user: &User) -> Locale {
    user.locale
        .as_deref()
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| ctx.config.default_locale())
}

/// Everything a template needs about one notice for one recipient.
pub fn message_context(
    ctx: &Ctx,
    user: &User,
    kind: Kind,
    event: Option<&Event>,
    offset_minutes: Option<i64>,
    previous_start: Option<DateTime<Utc>>,
    custom: Option<(&str, &str)>,
) -> MessageContext {
    MessageContext {
        kind,
        locale: user_locale(ctx, user),
        tz: user_tz(ctx, user),
        recipient_name: user.name.clone(),
        recipient_email: user.email.clone(),
        event: event.map(|e| EventInfo {
            id: e.id,
            title: e.title.clone(),
            starts_at: e.starts_at,
            ends_at: e.ends_at,
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
        app_name: ctx.config.email.app_name.clone(),
        unsubscribe_url: (!ctx.config.email.unsubscribe_url.is_empty())
            .then(|| ctx.config.email.unsubscribe_url.clone()),
    }
}

/// The channels a notice for `user` goes out on.
pub fn channels(ctx: &Ctx, user: &User, email_wanted: bool) -> Vec<Channel> {
    let mut v = Vec::new();
    if email_wanted && user.email_enabled && ctx.config.email.transport != Transport::None {
        v.push(Channel::Email);
    }
    if !ctx.config.webhook.url.is_empty() {
        v.push(Channel::Webhook);
    }
    v
}

/// Store one event notice (inbox row + pending deliveries) for `user`, in the caller's
/// transaction. Returns the notification id, or None when it existed already.
pub fn emit_event_notice(
    conn: &Connection,
    ctx: &Ctx,
    event: &Event,
    user: &User,
    kind: Kind,
    offset_minutes: Option<i64>,
    previous_start: Option<DateTime<Utc>>,
) -> anyhow::Result<Option<i64>> {
    let mc = message_context(ctx, user, kind, Some(event), offset_minutes, previous_start, None);
    let rendered = ctx.templates()?.render(&mc)?;
    store::insert_notice(
        conn,
        &NewNotice {
            user_id: user.id,
            kind,
            event_id: Some(event.id),
            offset_minutes,
            event_start: Some(event.starts_at),
            event_sequence: (kind != Kind::Reminder).then_some(event.sequence),
            previous_start,
            title: rendered.subject,
            body: rendered.summary,
            channels: channels(ctx, user, true),
        },
        ctx.now(),
    )
}

/// Notify every participant of `event` (as it is now) with `kind`.
pub fn notify_participants(
    conn: &Connection,
    ctx: &Ctx,
    event: &Event,
    kind: Kind,
    previous_start: Option<DateTime<Utc>>,
) -> anyhow::Result<usize> {
    let mut n = 0;
    for p in &event.participants {
        let user = store::get_user(conn, p.user_id)?;
        if emit_event_notice(conn, ctx, event, &user, kind, None, previous_start)?.is_some() {
            n += 1;
        }
    }
    Ok(n)
}
