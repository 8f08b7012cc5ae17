//! What monitoring sees of a tick: the heartbeat pings (`heartbeat.rs`) and the metrics
//! file (`metrics.rs`), for every real tick once the config was read, whether it succeeded,
//! failed half way, or could not even open the database.
//!
//! One verdict for all of them, the exit code's: a tick is `ok` when it exits 0, `failed`
//! otherwise, including a tick that did its work but exits 3 because deliveries went dead
//! or a channel could not be used (someone has to look). So `/fail`, the `failed` counter,
//! a stale `notifyctl_last_success_timestamp_seconds` and systemd's "failed" unit agree.
//! Neither the pings nor the metrics file can fail the tick: their failures are logged.

use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::tick::TickFacts;
use super::Service;
use crate::config::{Config, Transport};
use crate::heartbeat::{End, Heartbeat};
use crate::metrics::{self, Family, MetricType, Previous};
use crate::reminders::SkipReason;

/// Watches one tick from before the database is opened until its exit code is known.
pub struct TickMonitor {
    heartbeat: Option<Heartbeat>,
    started: Instant,
    now: DateTime<Utc>,
}

/// The database's side of the metrics, read after the tick.
#[derive(Debug, Clone, Copy, Default)]
pub struct Backlog {
    pub pending: i64,
    pub failed: i64,
    pub sending: i64,
    pub dead: i64,
    pub oldest_waiting: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
}

impl Service {
    /// The outbox's backlog and the last good tick, for the metrics file.
    pub fn backlog(&mut self) -> anyhow::Result<Backlog> {
        let counts = self.store.delivery_counts()?;
        Ok(Backlog {
            pending: counts.pending,
            failed: counts.failed,
            sending: counts.sending,
            dead: counts.dead,
            oldest_waiting: self.store.oldest_waiting_delivery()?,
            last_success: self.store.last_good_tick()?.map(|t| t.started_at),
        })
    }
}

impl TickMonitor {
    /// The tick starts now: `URL/start` goes out in the background.
    pub fn start(config: &Config, now: DateTime<Utc>) -> TickMonitor {
        TickMonitor {
            heartbeat: Heartbeat::start(&config.tick),
            started: Instant::now(),
            now,
        }
    }

    /// The tick is over. `service` is `None` when the database could not be opened;
    /// `failure` is the one-line reason when the tick exits non-zero.
    pub fn finish(self, config: &Config, service: Option<&mut Service>, failure: Option<&str>) {
        if !config.metrics.textfile.is_empty() {
            let facts = service.as_ref().and_then(|s| s.last_tick()).cloned();
            let backlog = service.and_then(|s| match s.backlog() {
                Ok(b) => Some(b),
                Err(e) => {
                    tracing::warn!("metrics: cannot read the backlog: {e:#}");
                    None
                }
            });
            let tick = Observed {
                ok: failure.is_none(),
                now: self.now,
                elapsed_seconds: self.started.elapsed().as_secs_f64(),
                facts: facts.as_ref(),
                backlog: backlog.as_ref(),
            };
            let path = Path::new(&config.metrics.textfile);
            match metrics::update_textfile(path, |previous| {
                metrics::render(&families(config, &tick, previous))
            }) {
                Ok(path) => tracing::debug!("metrics written to {}", path.display()),
                Err(e) => tracing::error!("metrics: {e:#}"),
            }
        }
        if let Some(heartbeat) = self.heartbeat {
            heartbeat.finish(match failure {
                None => End::Success,
                Some(why) => End::Fail(why),
            });
        }
    }
}

/// One tick as the metrics see it.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// Exit code 0.
    pub ok: bool,
    pub now: DateTime<Utc>,
    pub elapsed_seconds: f64,
    /// What the tick did (`None` when it failed before its record existed).
    pub facts: Option<&'a TickFacts>,
    /// The database after the tick (`None` when it could not be read).
    pub backlog: Option<&'a Backlog>,
}

/// The metrics file's families: counters carried over from `previous` plus this tick,
/// gauges as they are now.
pub fn families(config: &Config, tick: &Observed, previous: &Previous) -> Vec<Family> {
    let mut out = Vec::new();
    let summary = tick.facts.map(|f| f.summary).unwrap_or_default();

    let mut ticks = Family::new(
        "notifyctl_ticks_total",
        MetricType::Counter,
        "check-reminders runs on this host by outcome: ok (exit 0) or failed (any other exit code), counted in this file.",
    );
    ticks.carry(previous);
    ticks.add(&[("outcome", "ok")], 0.0);
    ticks.add(&[("outcome", "failed")], 0.0);
    ticks.add(&[("outcome", if tick.ok { "ok" } else { "failed" })], 1.0);
    out.push(ticks);

    let mut created = Family::new(
        "notifyctl_reminders_created_total",
        MetricType::Counter,
        "Reminder notices created by ticks.",
    );
    created.carry(previous);
    created.add(&[], summary.created as f64);
    out.push(created);

    let mut skipped = Family::new(
        "notifyctl_reminders_skipped_total",
        MetricType::Counter,
        "Reminders recorded as skipped by ticks, by reason (late: missed by more than the grace; collapsed: a later offset was due too; armed_late: the event was moved too close).",
    );
    skipped.carry(previous);
    for reason in [SkipReason::Late, SkipReason::Collapsed, SkipReason::ArmedLate] {
        skipped.add(&[("reason", reason.as_str())], 0.0);
    }
    for (reason, n) in tick.facts.map(|f| &f.skipped_by_reason).into_iter().flatten() {
        skipped.add(&[("reason", reason)], *n as f64);
    }
    out.push(skipped);

    let mut deliveries = Family::new(
        "notifyctl_deliveries_total",
        MetricType::Counter,
        "Delivery attempts by channel and outcome: sent, failed (will be retried), dead (given up), dropped (the event moved, was cancelled or started).",
    );
    deliveries.carry(previous);
    let mut channels = Vec::new();
    if config.email.transport != Transport::None {
        channels.push("email");
    }
    if !config.webhook.url.is_empty() {
        channels.push("webhook");
    }
    for channel in channels {
        for outcome in ["sent", "failed", "dead", "dropped"] {
            deliveries.add(&[("channel", channel), ("outcome", outcome)], 0.0);
        }
    }
    for ((channel, outcome), n) in tick.facts.map(|f| &f.deliveries).into_iter().flatten() {
        deliveries.add(&[("channel", channel), ("outcome", outcome)], *n as f64);
    }
    out.push(deliveries);

    if let Some(b) = tick.backlog {
        let mut waiting = Family::new(
            "notifyctl_deliveries_waiting",
            MetricType::Gauge,
            "Deliveries waiting after the last tick, by status: pending (due or not yet), failed (waiting for a retry), sending (claimed by a tick).",
        );
        waiting.set(&[("status", "pending")], b.pending as f64);
        waiting.set(&[("status", "failed")], b.failed as f64);
        waiting.set(&[("status", "sending")], b.sending as f64);
        out.push(waiting);
        let mut dead = Family::new(
            "notifyctl_deliveries_dead",
            MetricType::Gauge,
            "Dead deliveries (not retried by themselves: see `notifyctl deliveries --status dead`).",
        );
        dead.set(&[], b.dead as f64);
        out.push(dead);
        let mut age = Family::new(
            "notifyctl_oldest_waiting_delivery_age_seconds",
            MetricType::Gauge,
            "Age of the oldest delivery still pending, failed or sending (0 when none waits).",
        );
        let oldest = b
            .oldest_waiting
            .map(|t| (tick.now - t).num_seconds().max(0))
            .unwrap_or(0);
        age.set(&[], oldest as f64);
        out.push(age);
    }

    let mut duration = Family::new(
        "notifyctl_tick_duration_seconds",
        MetricType::Gauge,
        "How long the last tick took.",
    );
    duration.set(&[], (tick.elapsed_seconds * 1000.0).round() / 1000.0);
    out.push(duration);

    let mut last = Family::new(
        "notifyctl_last_tick_timestamp_seconds",
        MetricType::Gauge,
        "When the last tick started (Unix time).",
    );
    last.set(&[], tick.now.timestamp() as f64);
    out.push(last);

    const LAST_SUCCESS: &str = "notifyctl_last_success_timestamp_seconds";
    let last_success = if tick.ok {
        Some(tick.now.timestamp() as f64)
    } else {
        previous.get(LAST_SUCCESS, &[]).or_else(|| {
            tick.backlog
                .and_then(|b| b.last_success)
                .map(|t| t.timestamp() as f64)
        })
    };
    if let Some(t) = last_success {
        let mut success = Family::new(
            LAST_SUCCESS,
            MetricType::Gauge,
            "When the last tick that exited 0 started (Unix time): alert on time() minus this.",
        );
        success.set(&[], t);
        out.push(success);
    }
    out
}
