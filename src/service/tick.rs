//! The cron tick: decide the due reminders (exactly once, by the database's unique keys),
//! apply the decisions with a re-check inside the write, deliver the outbox, and record the
//! tick for `status` (and, as [`TickFacts`], for the metrics file: `monitor.rs`).

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::delivery::{Senders, TickDeliverer};
use super::notices::{NoticeDetail, Notifier};
use super::occurrences::{series_page, SeriesWindow};
use super::report::contain;
use super::{outbox_dir, templates, Service};
use crate::input::rfc3339;
use crate::model::{Event, EventStatus, Kind, User};
use crate::outbox;
use crate::recurrence::Occurrence;
use crate::reminders::{self, Action, Decision};
use crate::store::{self, CandidateWindow, DecisionRecord, Store, TickEnd, TickSummary};

#[derive(Debug, Serialize)]
pub struct Report {
    pub tick_id: Option<i64>,
    #[serde(with = "crate::model::utc")]
    pub now: DateTime<Utc>,
    pub dry_run: bool,
    #[serde(flatten)]
    pub summary: TickSummary,
    /// Deliveries still waiting (pending or failed, to be retried) after this tick.
    pub pending: i64,
    /// Rows skipped because an app wrote a value that does not parse.
    pub broken_rows: Vec<String>,
    /// What this tick could not do although it finished (a channel it could not use).
    pub problems: Vec<String>,
    /// The deliveries that went dead in this tick, one line each.
    pub dead_deliveries: Vec<String>,
    pub elapsed_ms: i64,
    /// What a dry run would do (empty for a real tick).
    #[serde(skip)]
    pub decisions: Vec<Decision>,
}

impl Report {
    /// Why this tick needs a person's attention although it finished, if it does:
    /// deliveries that went dead (they will not be retried by themselves) or a channel
    /// that could not be used. Retries waiting for a server that was down do not count:
    /// they fix themselves, and `status --max-age` watches for them lasting.
    pub fn needs_attention(&self) -> Option<String> {
        let mut why = Vec::new();
        if self.summary.dead > 0 {
            const SHOWN: usize = 3;
            let mut lines: Vec<&str> = self
                .dead_deliveries
                .iter()
                .take(SHOWN)
                .map(String::as_str)
                .collect();
            let more = self.dead_deliveries.len().saturating_sub(SHOWN);
            let more = (more > 0).then(|| format!("and {more} more"));
            lines.extend(more.as_deref());
            why.push(format!(
                "{} deliveries went dead ({}): see `notifyctl deliveries --status dead`",
                self.summary.dead,
                lines.join("; ")
            ));
        }
        why.extend(self.problems.iter().cloned());
        (!why.is_empty()).then(|| why.join("; "))
    }
}

/// What a finished tick did, also when it failed half way: the summary, split by reason
/// and channel, for the metrics file.
#[derive(Debug, Clone, Default)]
pub struct TickFacts {
    pub tick_id: i64,
    pub summary: TickSummary,
    /// Reminders recorded as skipped, by reason (`late`, `collapsed`, `armed_late`).
    pub skipped_by_reason: BTreeMap<String, i64>,
    /// Delivery outcomes by (channel, outcome): `sent`, `failed`, `dead`, `dropped`, `held`.
    pub deliveries: BTreeMap<(String, &'static str), i64>,
    pub elapsed_ms: i64,
    /// False when the tick ended with an error.
    pub completed: bool,
}

/// What a tick has done so far, kept even when it fails half way (for its record).
#[derive(Debug, Default)]
struct Progress {
    summary: TickSummary,
    skipped_by_reason: BTreeMap<String, i64>,
    deliveries: BTreeMap<(String, &'static str), i64>,
    problems: Vec<String>,
    dead: Vec<String>,
    /// The tick ran out of time before deciding everything: it is recorded as not good,
    /// so the next tick looks back as far as this one did.
    incomplete: Option<String>,
}

/// A tick whose clock is behind the latest recorded tick: the clock went backwards, or an
/// earlier tick ran with a clock far ahead (an NTP glitch, `--now` against production).
/// Such a tick recorded reminders of events that are still to come as `late`.
fn clock_behind(latest: Option<&crate::store::TickRecord>, now: DateTime<Utc>) -> Option<String> {
    let latest = latest?;
    (latest.started_at > now + TimeDelta::minutes(1)).then(|| {
        format!(
            "the clock ({}) is behind the latest tick, recorded at {}: if that tick ran with a clock ahead, reminders it recorded as late for events still to come can be decided again with `notifyctl reminders reopen --since {}`",
            rfc3339(now),
            rfc3339(latest.started_at),
            rfc3339(now)
        )
    })
}

/// Candidates read and decided per page: memory stays flat whatever is due.
const PAGE: u32 = 2000;

/// Whether decision `d` is still about a start of `event` as it is now: for a single event,
/// its start; for a series, an occurrence taking place at `d.event_start` (the same one
/// the decision was read for). `Some(occurrence)` for a series, `Some(None)` for a single
/// event, `None` when the event moved, the occurrence was cancelled or moved, or the rule
/// changed since the candidates were read.
fn still_due(event: &Event, d: &Decision) -> Option<Option<Occurrence>> {
    match event.series() {
        Ok(None) => (event.starts_at == d.event_start && d.occurrence.is_none()).then_some(None),
        Ok(Some(series)) => {
            let o = series.occurrence_at(d.event_start, &event.rule_exceptions())?;
            (Some(o.original_start) == d.occurrence).then_some(Some(o))
        }
        Err(_) => None,
    }
}

/// Where the tick's work is bounded.
#[derive(Debug, Clone, Copy)]
pub struct TickOptions {
    /// Stop claiming new work after this long (default `[tick] max_runtime`).
    pub max_runtime: Option<TimeDelta>,
    /// The stdout email transport writes to stderr (stdout carries `--json`).
    pub mail_to_stderr: bool,
}

impl Service {
    /// The windows of event starts the tick looks at: the upcoming one (reminders that
    /// may be due) and the history since the last good tick (events that started while no
    /// tick ran, whose undecided reminders are recorded as skipped). The first tick ever
    /// looks one day back.
    /// Events starting after the first tick or in the time the reminders reach ahead
    /// (each event's largest offset, the config's for those without their own, `lead`);
    /// the history since the last good tick (events that started while no tick ran, whose
    /// undecided reminders are recorded as skipped). The first tick ever looks one day back.
    fn windows(&self, previous_tick: Option<DateTime<Utc>>) -> [CandidateWindow; 2] {
        let now = self.now();
        let max_offset = self.config.offsets_minutes().into_iter().max().unwrap_or(0);
        let since = match previous_tick {
            Some(t) => t.min(now - TimeDelta::minutes(1)),
            None => now - TimeDelta::days(1),
        };
        [
            CandidateWindow {
                after: now,
                until: now,
                lead: Some(max_offset),
            },
            CandidateWindow {
                after: since,
                until: now,
                lead: None,
            },
        ]
    }

    /// Decide the reminders of the window's events and series' occurrences, a page at a
    /// time, read without the write lock (an idle tick writes nothing but its own record).
    /// Each page's decisions are applied at once (`apply`), or, for a dry run, collected.
    /// False when `deadline` came first (the rest waits for the next tick).
    fn decide_window(
        &mut self,
        window: CandidateWindow,
        deadline: Option<Instant>,
        summary: &mut TickSummary,
        skipped_by_reason: &mut BTreeMap<String, i64>,
        mut collect: Option<&mut Vec<Decision>>,
    ) -> anyhow::Result<bool> {
        let now = self.now();
        let offsets = self.config.offsets_minutes();
        let grace = self.config.reminders.grace.0;
        let out_of_time =
            || deadline.is_some_and(|d| Instant::now() >= d) || crate::interrupt::requested().is_some();
        let mut cursor = None;
        loop {
            let page = self.store.reminder_candidates(&window, cursor.as_ref(), PAGE)?;
            for b in &page.broken {
                self.reporter.broken(b);
            }
            let decisions: Vec<Decision> = page
                .candidates
                .iter()
                .flat_map(|c| reminders::decide(c, c.offsets_or(&offsets), grace, now))
                .collect();
            match collect.as_deref_mut() {
                Some(all) => all.extend(decisions),
                None if !decisions.is_empty() => self.apply(&decisions, summary, skipped_by_reason)?,
                None => {}
            }
            cursor = page.next;
            if cursor.is_none() {
                break;
            }
            if out_of_time() {
                return Ok(false);
            }
        }
        // The series: each live one expanded over the window.
        let series_window = SeriesWindow {
            after: window.after,
            until: window.until,
            lead: window.lead.map(|_| offsets.as_slice()),
        };
        let mut cursor = None;
        loop {
            let (candidates, next) = series_page(self.store.ops(), &self.reporter, &series_window, cursor)?;
            let decisions: Vec<Decision> = candidates
                .iter()
                .flat_map(|c| reminders::decide(c, c.offsets_or(&offsets), grace, now))
                .collect();
            match collect.as_deref_mut() {
                Some(all) => all.extend(decisions),
                None if !decisions.is_empty() => self.apply(&decisions, summary, skipped_by_reason)?,
                None => {}
            }
            cursor = next;
            if cursor.is_none() {
                return Ok(true);
            }
            if out_of_time() {
                return Ok(false);
            }
        }
    }

    /// Record the decisions and create the reminder notices, in one transaction.
    fn apply(
        &mut self,
        decisions: &[Decision],
        summary: &mut TickSummary,
        skipped_by_reason: &mut BTreeMap<String, i64>,
    ) -> anyhow::Result<()> {
        let notifier = Notifier::new(&self.config, &self.templates, &self.reporter, self.clock.now())?;
        let reporter = &self.reporter;
        let default_offsets = self.config.offsets_minutes();
        let (created, skipped) = store::write(&mut *self.store, |ops| {
            // Counted inside: a transaction that is retried starts its counts again.
            let (mut created, mut skipped) = (0, BTreeMap::<String, i64>::new());
            let mut events: HashMap<i64, Option<Event>> = HashMap::new();
            let mut users: HashMap<i64, Option<User>> = HashMap::new();
            for d in decisions {
                // The decision was read without the lock: if the event moved, was cancelled or
                // lost this participant since, decide nothing now (the next tick decides anew).
                // A row that cannot be read costs only its own decisions (reported once).
                if let Entry::Vacant(slot) = events.entry(d.event_id) {
                    slot.insert(contain(ops.event(d.event_id), reporter)?.flatten());
                }
                let Some(event) = &events[&d.event_id] else {
                    continue;
                };
                // Still an occurrence start of this event (for a single event: its start),
                // the same occurrence, and still one of its offsets.
                let Some(occurrence) = still_due(event, d) else {
                    continue;
                };
                if event.status != EventStatus::Scheduled
                    || !event.offsets_or(&default_offsets).contains(&d.offset_minutes)
                    || !event.participants.iter().any(|p| p.user_id == d.user_id)
                {
                    continue;
                }
                if let Entry::Vacant(slot) = users.entry(d.user_id) {
                    slot.insert(contain(ops.user(d.user_id), reporter)?.flatten());
                }
                let Some(user) = &users[&d.user_id] else {
                    continue;
                };
                let record = DecisionRecord {
                    event_id: d.event_id,
                    user_id: d.user_id,
                    offset_minutes: d.offset_minutes,
                    event_start: d.event_start,
                    skipped_reason: match d.action {
                        Action::Send => None,
                        Action::Skip(r) => Some(r.as_str()),
                    },
                };
                // The primary key decides: a second tick that got here first wins.
                if !ops.record_decision(&record, notifier.now)? {
                    continue;
                }
                if let Some(reason) = record.skipped_reason {
                    *skipped.entry(reason.to_string()).or_default() += 1;
                    continue;
                }
                let detail = NoticeDetail {
                    offset_minutes: Some(d.offset_minutes),
                    previous_start: None,
                    occurrence,
                };
                if let Some(id) = notifier.event_notice_with(ops, event, user, Kind::Reminder, &detail)? {
                    ops.link_notification(&record, id)?;
                    created += 1;
                }
            }
            Ok((created, skipped))
        })?;
        summary.created += created;
        for (reason, n) in skipped {
            summary.skipped += n;
            *skipped_by_reason.entry(reason).or_default() += n;
        }
        Ok(())
    }

    /// One tick: decide reminders, deliver the outbox, record the tick. Failed deliveries
    /// that will be retried are not an error; an unusable transport or database is.
    pub fn tick(&mut self, options: TickOptions) -> anyhow::Result<Report> {
        let started = Instant::now();
        let max_runtime = options.max_runtime.unwrap_or(self.config.tick.max_runtime.0);
        let deadline = started + max_runtime.to_std().unwrap_or(Duration::ZERO);
        let now = self.now();
        // Read before this tick's own record exists, which would otherwise be "the last
        // tick". A failed tick may not have recorded anything: look back from the last good one.
        let previous_tick = self.store.last_good_tick()?.map(|t| t.started_at);
        let latest = self.store.last_tick()?;
        let tick_id = store::write(&mut *self.store, |ops| ops.start_tick(now))?;
        // Every log line of the tick (JSON: its "span") names it.
        let _span = tracing::error_span!("tick", tick_id).entered();
        let mut progress = Progress::default();
        if let Some(problem) = clock_behind(latest.as_ref(), now) {
            tracing::error!(tick_id, "{problem}");
            progress.problems.push(problem);
        }
        let result = self.tick_work(tick_id, previous_tick, deadline, options, &mut progress);
        let Progress {
            summary,
            skipped_by_reason,
            deliveries,
            mut problems,
            dead,
            incomplete,
        } = progress;
        let elapsed_ms = started.elapsed().as_millis() as i64;
        let interrupted = crate::interrupt::requested().map(crate::interrupt::Interrupted);
        let error = match (&result, &interrupted, &incomplete) {
            (Err(e), _, _) => Some(format!("{e:#}")),
            // Not a good tick: the next one looks back as far as this one did.
            (Ok(_), Some(i), _) => Some(i.to_string()),
            (Ok(_), None, Some(why)) => Some(why.clone()),
            (Ok(_), None, None) => None,
        };
        problems.extend(incomplete);
        // Record the tick even when it failed, so `status` shows the failure.
        let end = TickEnd {
            summary: &summary,
            error: error.as_deref(),
            problems: &problems,
            now: self.now(),
            elapsed_ms,
        };
        self.last_tick = Some(TickFacts {
            tick_id,
            summary,
            skipped_by_reason,
            deliveries,
            elapsed_ms,
            completed: result.is_ok(),
        });
        store::write(&mut *self.store, |ops| ops.finish_tick(tick_id, &end))?;
        let broken = result?;
        if let Some(i) = interrupted {
            return Err(i.into());
        }
        let counts = self.store.delivery_counts()?;
        Ok(Report {
            tick_id: Some(tick_id),
            now,
            dry_run: false,
            summary,
            pending: counts.pending + counts.failed + counts.sending,
            broken_rows: broken,
            problems,
            dead_deliveries: dead,
            elapsed_ms,
            decisions: Vec::new(),
        })
    }

    fn tick_work(
        &mut self,
        tick_id: i64,
        previous_tick: Option<DateTime<Utc>>,
        deadline: Instant,
        options: TickOptions,
        progress: &mut Progress,
    ) -> anyhow::Result<Vec<String>> {
        // What may be due now first, then the history since the last good tick.
        for window in self.windows(previous_tick) {
            let (summary, skipped) = (&mut progress.summary, &mut progress.skipped_by_reason);
            if !self.decide_window(window, Some(deadline), summary, skipped, None)? {
                progress.incomplete = Some(format!(
                    "ran out of time (--max-runtime) deciding the reminders of events starting after {}: the next tick goes on from there",
                    rfc3339(window.after)
                ));
                break;
            }
        }
        // Then the daily agendas due now (one row read per zone when they are decided).
        if progress.incomplete.is_none() && !self.decide_agendas(Some(deadline), &mut progress.summary)? {
            progress.incomplete = Some(
                "ran out of time (--max-runtime) deciding the daily agendas: the next tick goes on from there"
                    .into(),
            );
        }
        let summary = &mut progress.summary;
        let settings = outbox::Settings {
            tick_id,
            owner: format!("tick-{tick_id}-{}", std::process::id()),
            batch_size: self.config.tick.batch_size,
            claim_timeout: self.config.tick.claim_timeout.0,
            max_attempts: self.config.email.max_attempts,
            backoff_base: self.config.email.backoff_base.0,
            backoff_max: self.config.email.backoff_max.0,
            answer_grace: self.config.tick.answer_grace.std(),
        };
        let mut deliverer = TickDeliverer::new(&self.config, &self.reporter);
        let senders = Senders {
            config: &self.config,
            templates: templates(&self.templates, &self.config)?,
            outbox_dir: outbox_dir(&self.config, &self.location),
            stdout_to_stderr: options.mail_to_stderr,
        };
        let workers = outbox::Workers {
            render: &|channel, context| senders.render(channel, context),
            sender: &|channel| senders.sender(channel),
            connections: &|channel| senders.connections(channel),
        };
        let store: &mut dyn Store = &mut *self.store;
        let attention = outbox::run(
            store,
            &self.clock,
            &settings,
            &mut deliverer,
            &workers,
            deadline,
            summary,
        )?;
        progress.problems.extend(attention.unusable);
        progress.dead.extend(attention.dead);
        progress.deliveries = attention.outcomes;
        Ok(self.reporter.take())
    }

    /// What a tick would do now, writing and sending nothing.
    pub fn dry_run(&mut self) -> anyhow::Result<Report> {
        let started = Instant::now();
        let previous = self.store.last_good_tick()?.map(|t| t.started_at);
        let mut decisions = Vec::new();
        let mut summary = TickSummary::default();
        for window in self.windows(previous) {
            self.decide_window(
                window,
                None,
                &mut summary,
                &mut BTreeMap::new(),
                Some(&mut decisions),
            )?;
        }
        for d in &decisions {
            match d.action {
                Action::Send => summary.created += 1,
                Action::Skip(_) => summary.skipped += 1,
            }
        }
        let counts = self.store.delivery_counts()?;
        Ok(Report {
            tick_id: None,
            now: self.now(),
            dry_run: true,
            summary,
            pending: counts.pending + counts.failed + counts.sending,
            broken_rows: self.reporter.take(),
            problems: Vec::new(),
            dead_deliveries: Vec::new(),
            elapsed_ms: started.elapsed().as_millis() as i64,
            decisions,
        })
    }

    /// What the last tick of this service did (also one that failed half way), once it
    /// was recorded; `None` before any tick, or when it failed before it began.
    pub fn last_tick(&self) -> Option<&TickFacts> {
        self.last_tick.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::config::Config;
    use crate::service::booking::{EventDraft, EventUpdate};
    use crate::service::users::UserInput;
    use crate::store::{Location, OpenMode};

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn service(dir: &std::path::Path, now: &str) -> Service {
        Service::open(
            Config::default(),
            Clock::frozen(t(now)),
            Location::Sqlite(dir.join("t.db")),
            OpenMode::Create,
        )
        .unwrap()
    }

    /// An event at 10:00 with one participant; the decisions a tick reads at 09:30.
    fn decided_then(change: impl FnOnce(&mut Service)) -> (tempfile::TempDir, Service, TickSummary) {
        let dir = tempfile::tempdir().unwrap();
        let mut admin = service(dir.path(), "2030-03-10T09:00:00Z");
        admin
            .add_user(&UserInput {
                email: "ana@example.org".into(),
                name: "Ana".into(),
                email_enabled: true,
                ..Default::default()
            })
            .unwrap();
        admin
            .add_event(
                &EventDraft {
                    title: "Call".into(),
                    start: "2030-03-10T10:00:00Z".into(),
                    video: "none".into(),
                    participants: vec!["1".into()],
                    ..Default::default()
                },
                false,
            )
            .unwrap();
        let mut tick = service(dir.path(), "2030-03-10T09:30:00Z");
        let decisions = due(&mut tick);
        assert_eq!(decisions.len(), 1, "the 30-minute reminder is due");
        // Between the tick's unlocked read and its write, an admin changes the event.
        change(&mut admin);
        let mut summary = TickSummary::default();
        tick.apply(&decisions, &mut summary, &mut BTreeMap::new())
            .unwrap();
        (dir, tick, summary)
    }

    /// What a tick would decide now (a dry run's decisions).
    fn due(s: &mut Service) -> Vec<Decision> {
        let mut all = Vec::new();
        let mut summary = TickSummary::default();
        for w in s.windows(None) {
            s.decide_window(w, None, &mut summary, &mut BTreeMap::new(), Some(&mut all))
                .unwrap();
        }
        all
    }

    fn reminders_created(s: &mut Service) -> usize {
        let mut n = 0;
        s.inbox("1", &Default::default(), &mut |r| {
            if r?.kind == "reminder" {
                n += 1;
            }
            Ok(())
        })
        .unwrap();
        n
    }

    #[test]
    fn nothing_changed_the_decision_is_applied() {
        let (_dir, mut tick, summary) = decided_then(|_| {});
        assert_eq!(summary.created, 1);
        assert_eq!(reminders_created(&mut tick), 1);
    }

    #[test]
    fn an_event_moved_after_the_read_gets_no_reminder_for_its_old_start() {
        let (_dir, mut tick, summary) = decided_then(|admin| {
            admin
                .update_event(
                    1,
                    &EventUpdate {
                        start: Some("2030-03-10T12:00:00Z".into()),
                        ..Default::default()
                    },
                )
                .unwrap();
        });
        assert_eq!((summary.created, summary.skipped), (0, 0));
        assert_eq!(reminders_created(&mut tick), 0);
        // Nothing was recorded for the old start: the next tick decides anew.
        let decisions = due(&mut tick);
        assert!(decisions.is_empty(), "12:00 is not due at 09:30: {decisions:?}");
    }

    #[test]
    fn an_event_cancelled_after_the_read_gets_no_reminder() {
        let (_dir, mut tick, summary) = decided_then(|admin| {
            admin.cancel_event(1).unwrap();
        });
        assert_eq!(summary.created, 0);
        assert_eq!(reminders_created(&mut tick), 0);
    }

    #[test]
    fn a_participant_removed_after_the_read_gets_no_reminder() {
        let (_dir, mut tick, summary) = decided_then(|admin| {
            admin.unassign(1, "ana@example.org").unwrap();
        });
        assert_eq!(summary.created, 0);
        assert_eq!(reminders_created(&mut tick), 0);
    }
}
