//! `check-reminders`: the cron tick. Decide due reminders (exactly once, by the database's
//! unique keys), then deliver the outbox, then record the tick for `status`.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::cli::CheckRemindersArgs;
use crate::input::{parse_duration, rfc3339};
use crate::model::{Event, Kind, User};
use crate::notices;
use crate::outbox::Outbox;
use crate::reminders::{self, Action, Decision};
use crate::store::{self, Store, TickSummary};
use crate::Ctx;

#[derive(Debug, Serialize)]
pub struct Report {
    pub tick_id: Option<i64>,
    #[serde(with = "crate::model::utc")]
    now: chrono::DateTime<chrono::Utc>,
    pub dry_run: bool,
    #[serde(flatten)]
    pub summary: TickSummary,
    /// Deliveries still waiting (pending or failed, to be retried) after this tick.
    pub pending: i64,
    /// Rows skipped because an app wrote a value that does not parse.
    broken_rows: Vec<String>,
    elapsed_ms: i64,
}

/// How far back to look for events that started since the last tick, whose undecided
/// reminders must be recorded as skipped. Bounded so a long-idle file stays cheap.
const MAX_LOOKBACK: TimeDelta = TimeDelta::days(7);

/// The decisions due now, read without the write lock: an idle tick never writes
/// anything but its own record. `previous_tick` is when the tick before this one
/// started: events that started since then get their undecided reminders recorded.
pub fn due_decisions(
    ctx: &Ctx,
    store: &Store,
    previous_tick: Option<DateTime<Utc>>,
) -> anyhow::Result<(Vec<Decision>, Vec<String>)> {
    let now = ctx.now();
    let offsets = ctx.config.offsets_minutes();
    let max_offset = offsets.iter().copied().max().unwrap_or(0);
    let lookback = match previous_tick {
        Some(t) => (now - t).clamp(TimeDelta::minutes(1), MAX_LOOKBACK),
        None => TimeDelta::days(1),
    };
    let (candidates, broken) =
        store.reminder_candidates(now - lookback, now + TimeDelta::minutes(max_offset))?;
    let grace = ctx.config.reminders.grace.0;
    let decisions = candidates
        .iter()
        .flat_map(|c| reminders::decide(c, &offsets, grace, now))
        .collect();
    Ok((decisions, broken))
}

/// Record the decisions and create the reminder notices, in one transaction.
fn apply(
    ctx: &Ctx,
    store: &mut Store,
    decisions: &[Decision],
    summary: &mut TickSummary,
) -> anyhow::Result<()> {
    let now = ctx.now();
    let (created, skipped) = store.write(|tx| {
        let (mut created, mut skipped) = (0, 0);
        let mut events: HashMap<i64, Event> = HashMap::new();
        let mut users: HashMap<i64, User> = HashMap::new();
        for d in decisions {
            let reason = match d.action {
                Action::Send => None,
                Action::Skip(r) => Some(r.as_str()),
            };
            // The decision was read without the lock: if the event moved, was cancelled or
            // lost this participant since, decide nothing now (the next tick decides anew).
            if let Entry::Vacant(slot) = events.entry(d.event_id) {
                slot.insert(store::get_event(tx, d.event_id)?);
            }
            let event = &events[&d.event_id];
            if event.status != crate::model::EventStatus::Scheduled
                || event.starts_at != d.event_start
                || !event.participants.iter().any(|p| p.user_id == d.user_id)
            {
                continue;
            }
            // The primary key decides: a second tick that got here first wins.
            if !store::record_decision(
                tx,
                d.event_id,
                d.user_id,
                d.offset_minutes,
                d.event_start,
                reason,
                now,
            )? {
                continue;
            }
            if reason.is_some() {
                skipped += 1;
                continue;
            }
            if let Entry::Vacant(slot) = users.entry(d.user_id) {
                slot.insert(store::get_user(tx, d.user_id)?);
            }
            let (event, user) = (&events[&d.event_id], &users[&d.user_id]);
            if let Some(id) = notices::emit_event_notice(
                tx,
                ctx,
                event,
                user,
                Kind::Reminder,
                Some(d.offset_minutes),
                None,
            )? {
                store::link_notification(tx, d.event_id, d.user_id, d.offset_minutes, d.event_start, id)?;
                created += 1;
            }
        }
        Ok((created, skipped))
    })?;
    summary.created += created;
    summary.skipped += skipped;
    Ok(())
}

pub fn run(ctx: &Ctx, args: &CheckRemindersArgs) -> anyhow::Result<ExitCode> {
    let max_runtime = args.max_runtime.as_deref().map(parse_duration).transpose()?;
    let report = if args.dry_run {
        let store = ctx.store()?;
        dry_run(ctx, &store, Instant::now())?
    } else {
        tick(ctx, max_runtime)?
    };
    print(ctx, &report);
    Ok(ExitCode::SUCCESS)
}

/// One tick: decide reminders, deliver the outbox, record the tick. Failed deliveries
/// that will be retried are not an error; an unusable transport or database is.
pub fn tick(ctx: &Ctx, max_runtime: Option<TimeDelta>) -> anyhow::Result<Report> {
    let started = Instant::now();
    let max_runtime = max_runtime.unwrap_or(ctx.config.tick.max_runtime.0);
    let deadline = started + max_runtime.to_std().unwrap_or(Duration::ZERO);
    let mut store = ctx.store()?;
    let now = ctx.now();
    // Read before this tick's own record exists, which would otherwise be "the last tick".
    // A failed tick may not have recorded anything: look back from the last good one.
    let previous_tick = store.last_good_tick()?.map(|t| t.started_at);
    let tick_id = store.write(|tx| store::start_tick(tx, now))?;
    let mut summary = TickSummary::default();
    let result = (|| -> anyhow::Result<Vec<String>> {
        let (decisions, broken) = due_decisions(ctx, &store, previous_tick)?;
        for b in &broken {
            log::error!("skipping a broken row: {b}");
        }
        if !decisions.is_empty() {
            apply(ctx, &mut store, &decisions, &mut summary)?;
        }
        Outbox::new(ctx, format!("tick-{tick_id}-{}", std::process::id())).run(
            &mut store,
            deadline,
            &mut summary,
        )?;
        Ok(broken)
    })();
    let elapsed_ms = started.elapsed().as_millis() as i64;
    let error = result.as_ref().err().map(|e| format!("{e:#}"));
    // Record the tick even when it failed, so `status` shows the failure.
    store.write(|tx| store::finish_tick(tx, tick_id, &summary, error.as_deref(), ctx.now(), elapsed_ms))?;
    let broken = result?;
    let pending = {
        let c = store.delivery_counts()?;
        c.pending + c.failed + c.sending
    };
    heartbeat(ctx);
    Ok(Report {
        tick_id: Some(tick_id),
        now,
        dry_run: false,
        summary,
        pending,
        broken_rows: broken,
        elapsed_ms,
    })
}

fn dry_run(ctx: &Ctx, store: &Store, started: Instant) -> anyhow::Result<Report> {
    let (decisions, broken) = due_decisions(ctx, store, store.last_good_tick()?.map(|t| t.started_at))?;
    let mut summary = TickSummary::default();
    for d in &decisions {
        match d.action {
            Action::Send => summary.created += 1,
            Action::Skip(_) => summary.skipped += 1,
        }
    }
    let counts = store.delivery_counts()?;
    if !ctx.out.json {
        for d in &decisions {
            let what = match d.action {
                Action::Send => "would send".to_string(),
                Action::Skip(r) => format!("would skip ({})", r.as_str()),
            };
            ctx.out.line(format!(
                "{what}: {}-minute reminder, event {} at {}, user {}",
                d.offset_minutes,
                d.event_id,
                rfc3339(d.event_start),
                d.user_id
            ));
        }
    }
    let report = Report {
        tick_id: None,
        now: ctx.now(),
        dry_run: true,
        summary,
        pending: counts.pending + counts.failed + counts.sending,
        broken_rows: broken,
        elapsed_ms: started.elapsed().as_millis() as i64,
    };
    Ok(report)
}

pub fn print(ctx: &Ctx, r: &Report) {
    if ctx.out.json {
        ctx.out.json(r);
        return;
    }
    if ctx.out.quiet {
        return;
    }
    let s = &r.summary;
    let verb = if r.dry_run { "dry run" } else { "tick" };
    ctx.out.line(format!(
        "{verb} at {}: {} reminders created, {} skipped; {} sent, {} failed (will retry), {} dead, {} dropped; {} waiting",
        rfc3339(r.now),
        s.created,
        s.skipped,
        s.sent,
        s.failed,
        s.dead,
        s.dropped,
        r.pending
    ));
}

/// Ping the heartbeat URL after a successful tick. Its timeout is short and its failure
/// only logged: monitoring must never hold the tick back.
fn heartbeat(ctx: &Ctx) {
    let url = &ctx.config.tick.heartbeat_url;
    if url.is_empty() {
        return;
    }
    let agent = ureq::AgentBuilder::new()
        .timeout(ctx.config.tick.heartbeat_timeout.std())
        .build();
    if let Err(e) = agent.get(url).call() {
        log::warn!("heartbeat {url} failed: {e}");
    }
}
