//! The outbox loop: claim → prepare → send → record, with exponential backoff.
//!
//! Guarantees, and where each comes from:
//! - a delivery is sent by one tick only: claims are taken in a write transaction and
//!   outcomes are recorded only while the claim is still held (`record_outcome` is fenced
//!   by the claim's owner);
//! - nothing is lost: a claim of a tick that died expires and is taken over; a tick that
//!   runs out of time gives back what it did not send;
//! - the only duplicate possible is a crash between the server's acceptance and the
//!   commit right after it, since each outcome is committed on its own;
//! - each delivery is checked against the data as it is now, just before sending (the
//!   caller's [`Deliverer::prepare`]).
//!
//! The loop knows channels only through [`Sender`], and gets its senders from its caller.
//!
//! Its log events carry the tick, delivery, user and event ids and the channel as fields
//! of their own (`tracing`), so a JSON log line can be filtered by any of them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};

use crate::channels::{Deadline, Outgoing, SendError, Sender};
use crate::clock::Clock;
use crate::store::{self, ClaimRequest, ClaimedDelivery, DeliveryOutcome, Ops, Store, TickSummary};

/// Delay before retry number `attempts` (1-based): base, 2×base, 4×base … capped.
pub fn backoff(base: TimeDelta, max: TimeDelta, attempts: u32) -> TimeDelta {
    let factor = 1i64 << attempts.saturating_sub(1).min(30);
    base.checked_mul(factor as i32).map_or(max, |d| d.min(max))
}

/// How the loop claims and retries.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The tick this run belongs to, for the logs.
    pub tick_id: i64,
    /// This tick's claim key.
    pub owner: String,
    pub batch_size: u32,
    pub claim_timeout: TimeDelta,
    pub max_attempts: u32,
    pub backoff_base: TimeDelta,
    pub backoff_max: TimeDelta,
    /// How long past the tick's end the answer to a message already sent is awaited.
    pub answer_grace: Duration,
}

/// What to do with a claimed delivery, decided just before sending.
pub enum Prepared {
    Send(Box<Outgoing>),
    /// Not sent and never will be (`superseded`, `expired`).
    Drop {
        status: &'static str,
        reason: String,
    },
    /// It cannot be sent at all (a row that cannot be read): dead, with the reason.
    Dead(String),
}

/// The caller's side of the loop: checking and building messages, and the senders.
pub trait Deliverer {
    /// A new batch was claimed: forget cached event state, it may have changed.
    fn new_batch(&mut self) {}
    /// Re-check a claimed delivery against the data as it is now and build its message.
    fn prepare(
        &mut self,
        ops: &mut dyn Ops,
        delivery: &ClaimedDelivery,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Prepared>;
    /// The sender of `channel`, built on first use; an error when it cannot be built.
    fn sender(&mut self, channel: &str) -> anyhow::Result<&mut dyn Sender>;
}

/// What needs a person after a run, beyond the counts.
#[derive(Debug, Default)]
pub struct Attention {
    /// Channels that could not be used at all, each with why (their deliveries wait,
    /// untouched, for a later tick).
    pub unusable: Vec<String>,
    /// Deliveries that went dead, one line each (`delivery N to X: why`).
    pub dead: Vec<String>,
    /// Outcomes by (channel, outcome): `sent`, `failed` (to be retried), `dead`, `dropped`,
    /// the same counts as the summary's, split by channel (for the metrics file).
    pub outcomes: BTreeMap<(String, &'static str), i64>,
}

/// Deliver due work until none is left or `deadline` passes. Counts go to `summary`.
pub fn run(
    store: &mut dyn Store,
    clock: &Clock,
    settings: &Settings,
    deliverer: &mut dyn Deliverer,
    deadline: Instant,
    summary: &mut TickSummary,
) -> anyhow::Result<Attention> {
    let mut outbox = Outbox {
        store,
        clock,
        settings,
        deliverer,
        down: Vec::new(),
        attention: Attention::default(),
        deadline,
        lease_deadline: deadline,
    };
    outbox.run(summary)?;
    Ok(outbox.attention)
}

struct Outbox<'a> {
    store: &'a mut dyn Store,
    clock: &'a Clock,
    settings: &'a Settings,
    deliverer: &'a mut dyn Deliverer,
    /// Channels found unreachable or unusable this tick: their remaining deliveries wait
    /// for the next.
    down: Vec<String>,
    attention: Attention,
    /// The tick's end: no exchange with a server goes on past it.
    deadline: Instant,
    /// When this tick's claims lapse, less a margin: no exchange goes on past it either,
    /// so no other tick can take a delivery over while this one may still send it.
    lease_deadline: Instant,
}

/// The channel label of a delivery whose row could not be read.
const UNKNOWN_CHANNEL: &str = "unknown";

/// How long before its claim lapses a tick stops using it (at most a quarter of the claim).
const LEASE_MARGIN: Duration = Duration::from_secs(10);

impl Outbox<'_> {
    fn lease_margin(&self) -> Duration {
        LEASE_MARGIN.min(self.settings.claim_timeout.to_std().unwrap_or_default() / 4)
    }

    /// Claims taken or renewed now last until `now + claim_timeout`.
    fn leased_now(&mut self) {
        let life = self.settings.claim_timeout.to_std().unwrap_or_default();
        self.lease_deadline = Instant::now() + life.saturating_sub(self.lease_margin());
    }

    /// The deadline of one send: nothing new past the tick's end (or the claim's); the
    /// answer to a message already sent awaited a little longer, never past the claim.
    fn send_deadline(&self) -> Deadline {
        Deadline {
            exchange: self.deadline.min(self.lease_deadline),
            answer: (self.deadline + self.settings.answer_grace).min(self.lease_deadline),
        }
    }

    fn run(&mut self, summary: &mut TickSummary) -> anyhow::Result<()> {
        let s = self.settings;
        let deadline = self.deadline;
        loop {
            if Instant::now() >= deadline {
                tracing::warn!(
                    tick_id = s.tick_id,
                    "max runtime reached: remaining deliveries wait for the next tick"
                );
                return Ok(());
            }
            let now = self.clock.now();
            let request = ClaimRequest {
                owner: &s.owner,
                now,
                until: now + s.claim_timeout,
                limit: s.batch_size,
                skip_channels: &self.down,
            };
            let ids = store::write(&mut *self.store, |ops| ops.claim_due(&request))?;
            self.leased_now();
            if ids.is_empty() {
                return Ok(());
            }
            self.deliverer.new_batch();
            let claim_life = s.claim_timeout.to_std().unwrap_or_default();
            for (i, id) in ids.iter().enumerate() {
                // A slow batch must not let the claims lapse (another tick would take the
                // rest over and send it too): renew when less than half the life is left.
                if self.lease_deadline.saturating_duration_since(Instant::now()) < claim_life / 2 {
                    let until = self.clock.now() + s.claim_timeout;
                    store::write(&mut *self.store, |ops| ops.renew_claims(&s.owner, until))?;
                    self.leased_now();
                }
                if Instant::now() >= deadline {
                    let rest = &ids[i..];
                    store::write(&mut *self.store, |ops| ops.release_claims(&s.owner, rest))?;
                    tracing::warn!(
                        tick_id = s.tick_id,
                        "max runtime reached: {} claimed deliveries given back",
                        rest.len()
                    );
                    return Ok(());
                }
                // One delivery's bad data must cost only that delivery, even through a bug
                // that panics: it is set aside and the batch goes on.
                let outcome =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.deliver_one(*id, summary)))
                        .unwrap_or_else(|panic| self.after_panic(*id, panic.as_ref(), summary));
                if let Err(e) = outcome {
                    // Give back what this tick still holds before failing.
                    let rest = &ids[i..];
                    let _ = store::write(&mut *self.store, |ops| ops.release_claims(&s.owner, rest));
                    return Err(e);
                }
            }
        }
    }

    /// Record an outcome of a delivery on `channel` (`unknown` when its row is unreadable).
    fn record(&mut self, id: i64, channel: &str, outcome: &DeliveryOutcome) -> anyhow::Result<()> {
        let label = match outcome {
            DeliveryOutcome::Sent { .. } => "sent",
            DeliveryOutcome::Retry { .. } => "failed",
            DeliveryOutcome::Dead { .. } => "dead",
            DeliveryOutcome::Dropped { .. } => "dropped",
        };
        *self
            .attention
            .outcomes
            .entry((channel.to_string(), label))
            .or_default() += 1;
        let now = self.clock.now();
        let owner = &self.settings.owner;
        if !store::write(&mut *self.store, |ops| {
            ops.record_outcome(id, owner, outcome, now)
        })? {
            tracing::warn!(
                tick_id = self.settings.tick_id,
                delivery_id = id,
                channel,
                "delivery {id}: claim lost to another tick; its outcome was not recorded"
            );
        }
        Ok(())
    }

    fn deliver_one(&mut self, id: i64, summary: &mut TickSummary) -> anyhow::Result<()> {
        let s = self.settings;
        let now = self.clock.now();
        // A row an app broke must not stop the others: it is reported and set aside.
        let d = match self.store.claimed_delivery(id) {
            Ok(d) => d,
            Err(e) => {
                let error = format!("unreadable row: {e:#}");
                self.went_dead(id, None, "?", &error, summary);
                return self.record(id, UNKNOWN_CHANNEL, &DeliveryOutcome::Dead { error });
            }
        };
        if self.down.contains(&d.channel) {
            let owner = &s.owner;
            return store::write(&mut *self.store, |ops| ops.release_claims(owner, &[id])).map(drop);
        }
        let message = match self.deliverer.prepare(self.store.ops(), &d, now)? {
            Prepared::Send(message) => message,
            Prepared::Drop { status, reason } => {
                tracing::info!(
                    tick_id = s.tick_id,
                    delivery_id = id,
                    user_id = d.user_id,
                    event_id = d.event_id,
                    channel = d.channel.as_str(),
                    "delivery {id} {status}: {reason}"
                );
                summary.dropped += 1;
                return self.record(id, &d.channel, &DeliveryOutcome::Dropped { status, reason });
            }
            Prepared::Dead(error) => {
                self.went_dead(id, Some(&d), &format!("user {}", d.user_id), &error, summary);
                return self.record(id, &d.channel, &DeliveryOutcome::Dead { error });
            }
        };
        let send_deadline = self.send_deadline();
        let sender = match self.deliverer.sender(&d.channel) {
            Ok(sender) => sender,
            Err(e) => {
                // A channel that cannot even be set up (a missing secret, a bad setting) is
                // a problem of the channel, not of this message: its deliveries wait,
                // without spending an attempt, and the others go on.
                let problem = format!("the {} channel cannot be used: {e:#}", d.channel);
                tracing::error!(
                    tick_id = s.tick_id,
                    delivery_id = id,
                    channel = d.channel.as_str(),
                    "{problem}; its deliveries wait for the next tick"
                );
                self.attention.unusable.push(problem);
                self.down.push(d.channel.clone());
                let owner = &s.owner;
                return store::write(&mut *self.store, |ops| ops.release_claims(owner, &[id])).map(drop);
            }
        };
        let result = sender.send(&message, send_deadline);
        let to = &message.recipient.email;
        let attempts = u32::try_from(d.attempts).unwrap_or(u32::MAX).saturating_add(1);
        let outcome = match result {
            Ok(sent) => {
                summary.sent += 1;
                tracing::info!(
                    tick_id = s.tick_id,
                    delivery_id = id,
                    user_id = d.user_id,
                    event_id = d.event_id,
                    channel = d.channel.as_str(),
                    "delivery {id} sent by {} to {to}: {}",
                    d.channel,
                    sent.response
                );
                DeliveryOutcome::Sent {
                    message_id: sent.message_id,
                    response: sent.response,
                }
            }
            Err(SendError::Permanent(error)) => {
                self.went_dead(id, Some(&d), to, &format!("refused for good: {error}"), summary);
                DeliveryOutcome::Dead { error }
            }
            Err(SendError::Misconfigured(error)) => {
                // The server refused our settings (a wrong password): not this message's
                // fault. Set the channel aside, keep the delivery without spending an attempt.
                let problem = format!("the {} channel was refused: {error}", d.channel);
                tracing::error!(
                    tick_id = s.tick_id,
                    delivery_id = id,
                    channel = d.channel.as_str(),
                    "{problem}; its deliveries wait for the next tick"
                );
                self.attention.unusable.push(problem);
                self.down.push(d.channel.clone());
                let owner = &s.owner;
                return store::write(&mut *self.store, |ops| ops.release_claims(owner, &[id])).map(drop);
            }
            Err(SendError::Unconfirmed(error)) if attempts >= s.max_attempts => {
                self.went_dead(
                    id,
                    Some(&d),
                    to,
                    &format!("failed {attempts} times: {error}"),
                    summary,
                );
                DeliveryOutcome::Dead { error }
            }
            Err(SendError::Unconfirmed(error)) => {
                self.down.push(d.channel.clone());
                let error = format!(
                    "no answer after the message was sent, so it may have arrived; the retry may duplicate it: {error}"
                );
                self.retry(id, &d, to, error, attempts, now, summary)
            }
            Err(
                SendError::Temporary(error) | SendError::Unavailable(error) | SendError::Throttled(error, _),
            ) if attempts >= s.max_attempts => {
                self.went_dead(
                    id,
                    Some(&d),
                    to,
                    &format!("failed {attempts} times: {error}"),
                    summary,
                );
                DeliveryOutcome::Dead { error }
            }
            Err(SendError::Temporary(error)) => self.retry(id, &d, to, error, attempts, now, summary),
            Err(SendError::Throttled(error, wait)) => {
                // Honour the server's Retry-After (at most a day), never sooner than backoff.
                let asked = TimeDelta::from_std(wait)
                    .unwrap_or(TimeDelta::days(1))
                    .min(TimeDelta::days(1));
                let mut outcome = self.retry(id, &d, to, error, attempts, now, summary);
                if let DeliveryOutcome::Retry { next_attempt_at, .. } = &mut outcome {
                    *next_attempt_at = (*next_attempt_at).max(now + asked);
                }
                outcome
            }
            Err(SendError::Unavailable(error)) => {
                self.down.push(d.channel.clone());
                self.retry(id, &d, to, error, attempts, now, summary)
            }
        };
        self.record(id, &d.channel, &outcome)
    }

    /// A delivery whose preparation or sending panicked: dead, with the panic's message,
    /// so it is not retried in a loop and the others go on.
    fn after_panic(
        &mut self,
        id: i64,
        panic: &(dyn std::any::Any + Send),
        summary: &mut TickSummary,
    ) -> anyhow::Result<()> {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let error = format!("internal error while sending (please report it): {what}");
        self.went_dead(id, None, "?", &error, summary);
        self.record(id, UNKNOWN_CHANNEL, &DeliveryOutcome::Dead { error })
    }

    /// Count and describe a delivery that will not be retried by itself. Logged as a
    /// warning: the tick's own error line (exit 3) is the one a quiet cron run mails.
    fn went_dead(
        &mut self,
        id: i64,
        d: Option<&ClaimedDelivery>,
        to: &str,
        why: &str,
        summary: &mut TickSummary,
    ) {
        summary.dead += 1;
        let line = format!("delivery {id} to {to}: {why}");
        tracing::warn!(
            tick_id = self.settings.tick_id,
            delivery_id = id,
            user_id = d.map(|d| d.user_id),
            event_id = d.and_then(|d| d.event_id),
            channel = d.map(|d| d.channel.as_str()),
            "{line}; marked dead"
        );
        self.attention.dead.push(line);
    }

    #[allow(clippy::too_many_arguments)]
    fn retry(
        &self,
        id: i64,
        d: &ClaimedDelivery,
        to: &str,
        error: String,
        attempts: u32,
        now: DateTime<Utc>,
        summary: &mut TickSummary,
    ) -> DeliveryOutcome {
        summary.failed += 1;
        let s = self.settings;
        let wait = backoff(s.backoff_base, s.backoff_max, attempts);
        tracing::warn!(
            tick_id = s.tick_id,
            delivery_id = id,
            user_id = d.user_id,
            event_id = d.event_id,
            channel = d.channel.as_str(),
            "delivery {id} to {to} failed (attempt {attempts}), retry in {}: {error}",
            crate::input::format_duration(wait)
        );
        DeliveryOutcome::Retry {
            error,
            next_attempt_at: now + wait,
        }
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
