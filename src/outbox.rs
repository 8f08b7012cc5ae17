//! The outbox loop: claim → re-check → send → record, with exponential backoff.
//!
//! Guarantees, and where each comes from:
//! - a delivery is sent by one tick only: claims are taken in a write transaction and
//!   outcomes are recorded only while the claim is still held (`store::record_outcome`);
//! - nothing is lost: a claim of a tick that died expires and is taken over; a tick that
//!   runs out of time gives back what it did not send;
//! - the only duplicate possible is a crash between the server's acceptance and the
//!   commit right after it, since each outcome is committed on its own;
//! - each delivery is checked against the event as it is now, just before sending.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};

use crate::channels::email::EmailSender;
use crate::channels::webhook::WebhookSender;
use crate::channels::{Outgoing, SendError, Sender};
use crate::model::{Event, EventStatus, User};
use crate::store::{self, ClaimedDelivery, DeliveryOutcome, Store, TickSummary};
use crate::Ctx;

/// Delay before retry number `attempts` (1-based): base, 2×base, 4×base … capped.
pub fn backoff(base: TimeDelta, max: TimeDelta, attempts: u32) -> TimeDelta {
    let factor = 1i64 << attempts.saturating_sub(1).min(30);
    base.checked_mul(factor as i32).map_or(max, |d| d.min(max))
}

/// Why a claimed delivery must not go out any more, if it must not.
pub fn stale(
    d: &ClaimedDelivery,
    user_id: i64,
    event: Option<&Event>,
    now: DateTime<Utc>,
) -> Option<DeliveryOutcome> {
    let drop = |status: &'static str, reason: &str| {
        Some(DeliveryOutcome::Dropped {
            status,
            reason: reason.to_string(),
        })
    };
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

pub struct Outbox<'a> {
    ctx: &'a Ctx,
    tick_key: String,
    email: Option<EmailSender<'a>>,
    webhook: Option<WebhookSender>,
    /// Channels found unreachable this tick: their remaining deliveries wait for the next.
    down: Vec<String>,
}

impl<'a> Outbox<'a> {
    pub fn new(ctx: &'a Ctx, tick_key: String) -> Outbox<'a> {
        Outbox {
            ctx,
            tick_key,
            email: None,
            webhook: None,
            down: Vec::new(),
        }
    }

    fn sender(&mut self, channel: &str) -> anyhow::Result<&mut dyn Sender> {
        match channel {
            "email" => {
                if self.email.is_none() {
                    self.email = Some(EmailSender::new(self.ctx)?);
                }
                Ok(self.email.as_mut().expect("just set"))
            }
            "webhook" => {
                if self.webhook.is_none() {
                    self.webhook = Some(WebhookSender::new(&self.ctx.config.webhook)?);
                }
                Ok(self.webhook.as_mut().expect("just set"))
            }
            other => anyhow::bail!("unknown channel '{other}'"),
        }
    }

    /// Deliver due work until none is left or `deadline` passes. Counts go to `summary`.
    pub fn run(
        &mut self,
        store: &mut Store,
        deadline: Instant,
        summary: &mut TickSummary,
    ) -> anyhow::Result<()> {
        let cfg = &self.ctx.config;
        let mut users: HashMap<i64, User> = HashMap::new();
        loop {
            if Instant::now() >= deadline {
                log::warn!("max runtime reached: remaining deliveries wait for the next tick");
                return Ok(());
            }
            let now = self.ctx.now();
            let claim_until = now + cfg.tick.claim_timeout.0;
            let key = self.tick_key.clone();
            let ids = store
                .write(|tx| store::claim_due(tx, &key, now, claim_until, cfg.tick.batch_size, &self.down))?;
            if ids.is_empty() {
                return Ok(());
            }
            let mut events: HashMap<i64, Option<Event>> = HashMap::new();
            let mut renewed = Instant::now();
            for (i, id) in ids.iter().enumerate() {
                // A slow server must not let the claim lapse mid-batch (another tick would
                // take the rest over and send it too): renew at half the claim's life.
                if renewed.elapsed() > cfg.tick.claim_timeout.std() / 2 {
                    let until = self.ctx.now() + cfg.tick.claim_timeout.0;
                    store.write(|tx| store::renew_claims(tx, &key, until))?;
                    renewed = Instant::now();
                }
                if Instant::now() >= deadline {
                    let rest = &ids[i..];
                    store.write(|tx| store::release_claims(tx, &key, rest))?;
                    log::warn!(
                        "max runtime reached: {} claimed deliveries given back",
                        rest.len()
                    );
                    return Ok(());
                }
                if let Err(e) = self.deliver_one(store, *id, &mut users, &mut events, summary) {
                    // Give back what this tick still holds before failing.
                    let rest = &ids[i..];
                    let _ = store.write(|tx| store::release_claims(tx, &key, rest));
                    return Err(e);
                }
            }
        }
    }

    fn deliver_one(
        &mut self,
        store: &mut Store,
        id: i64,
        users: &mut HashMap<i64, User>,
        events: &mut HashMap<i64, Option<Event>>,
        summary: &mut TickSummary,
    ) -> anyhow::Result<()> {
        let cfg = &self.ctx.config;
        let now = self.ctx.now();
        let key = self.tick_key.clone();
        let ctx = self.ctx;
        let record = |store: &mut Store, outcome: &DeliveryOutcome| -> anyhow::Result<()> {
            let t = ctx.now();
            if !store.write(|tx| store::record_outcome(tx, id, &key, outcome, t))? {
                log::warn!("delivery {id}: claim lost to another tick; its outcome was not recorded");
            }
            Ok(())
        };
        // A row an app broke must not stop the others: it is reported and set aside.
        let d = match store::load_claimed(store.conn(), id) {
            Ok(d) => d,
            Err(e) => {
                log::error!("delivery {id}: unreadable row, marked dead: {e:#}");
                summary.dead += 1;
                return record(
                    store,
                    &DeliveryOutcome::Dead {
                        error: format!("unreadable row: {e:#}"),
                    },
                );
            }
        };
        if self.down.contains(&d.channel) {
            return store.write(|tx| store::release_claims(tx, &key, &[id])).map(drop);
        }
        if let Entry::Vacant(slot) = users.entry(d.user_id) {
            slot.insert(store::get_user(store.conn(), d.user_id)?);
        }
        let event = match d.event_id {
            Some(eid) => {
                if let Entry::Vacant(slot) = events.entry(eid) {
                    let e = match store::get_event(store.conn(), eid) {
                        Ok(e) => Some(e),
                        Err(e) if e.is::<crate::error::UserError>() => None,
                        Err(e) => {
                            log::error!("delivery {id}: event {eid} is unreadable, marked dead: {e:#}");
                            summary.dead += 1;
                            return record(
                                store,
                                &DeliveryOutcome::Dead {
                                    error: format!("unreadable event {eid}: {e:#}"),
                                },
                            );
                        }
                    };
                    slot.insert(e);
                }
                events[&eid].as_ref()
            }
            None => None,
        };
        let user = &users[&d.user_id];
        if let Some(outcome) = stale(&d, user.id, event, now) {
            if let DeliveryOutcome::Dropped { status, reason } = &outcome {
                log::info!("delivery {id} {status}: {reason}");
            }
            summary.dropped += 1;
            return record(store, &outcome);
        }
        let item = Outgoing {
            delivery: &d,
            user,
            event,
            now,
        };
        let result = self.sender(&d.channel)?.send(&item);
        let attempts = u32::try_from(d.attempts).unwrap_or(u32::MAX).saturating_add(1);
        let outcome = match result {
            Ok(sent) => {
                summary.sent += 1;
                log::info!(
                    "delivery {id} sent by {} to {}: {}",
                    d.channel,
                    user.email,
                    sent.response
                );
                DeliveryOutcome::Sent {
                    message_id: sent.message_id,
                    response: sent.response,
                }
            }
            Err(SendError::Permanent(error)) => {
                summary.dead += 1;
                log::error!(
                    "delivery {id} to {} is dead (permanent failure): {error}",
                    user.email
                );
                DeliveryOutcome::Dead { error }
            }
            Err(SendError::Temporary(error) | SendError::Unavailable(error))
                if attempts >= cfg.email.max_attempts =>
            {
                summary.dead += 1;
                log::error!(
                    "delivery {id} to {} is dead after {attempts} attempts: {error}",
                    user.email
                );
                DeliveryOutcome::Dead { error }
            }
            Err(e) => {
                let (error, unavailable) = match e {
                    SendError::Unavailable(s) => (s, true),
                    SendError::Temporary(s) | SendError::Permanent(s) => (s, false),
                };
                if unavailable {
                    self.down.push(d.channel.clone());
                }
                summary.failed += 1;
                let wait = backoff(cfg.email.backoff_base.0, cfg.email.backoff_max.0, attempts);
                log::warn!(
                    "delivery {id} to {} failed (attempt {attempts}), retry in {}: {error}",
                    user.email,
                    crate::input::format_duration(wait)
                );
                DeliveryOutcome::Retry {
                    error,
                    next_attempt_at: now + wait,
                }
            }
        };
        record(store, &outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let m = TimeDelta::minutes;
        assert_eq!(backoff(m(1), m(360), 1), m(1));
        assert_eq!(backoff(m(1), m(360), 2), m(2));
        assert_eq!(backoff(m(1), m(360), 4), m(8));
        assert_eq!(backoff(m(1), m(360), 10), m(360));
        assert_eq!(backoff(m(1), m(360), 200), m(360));
    }
}
