//! The daily agenda: at `[agenda] at` in each user's zone, one notice per user and local
//! date listing that day's events, delivered on the user's channels like any notice.
//!
//! Cheap when nothing is due: a tick reads the zones in use (one index probe per distinct
//! zone), and for each zone whose agenda moment is in its grace window, one row saying
//! whether that zone's pass for the day is done. A pass runs once per zone and day: it
//! pages through the users of that zone with events that day and no agenda yet, and
//! creates theirs. Exactly once per user and date whatever the ticks do: the notice's
//! unique key (user, date) decides, as for reminders.

use std::time::Instant;

use chrono::{NaiveDate, TimeDelta};
use serde::Serialize;

use super::notices::Notifier;
use super::report::contain;
use super::{user_tz, Service};
use crate::config::Config;
use crate::model::{Event, User};
use crate::store::{self, EventFilter, Ops, TickSummary, ZoneKey};

/// Users per write transaction.
const PAGE: u32 = 200;

/// `user`'s scheduled events starting on local `date`, in start order; a series by its
/// occurrences that day (each the event with the occurrence's times).
pub fn day_events(
    ops: &mut dyn Ops,
    config: &Config,
    user: &User,
    date: NaiveDate,
) -> anyhow::Result<Vec<Event>> {
    let (from, to) = crate::agenda::day(user_tz(config, user), date);
    let mut events = Vec::new();
    ops.list_events(
        &EventFilter {
            user_id: Some(user.id),
            from: Some(from),
            to: Some(to),
            include_cancelled: false,
        },
        &mut |e| {
            // A row (or a series' rule) that cannot be read is reported by the listings and
            // the tick that show it; here it is simply not on the agenda.
            let Ok(e) = e else { return Ok(()) };
            match e.series() {
                Ok(None) if e.starts_at >= from => events.push(e),
                Ok(Some(series)) => {
                    for o in series.occurrences(from, to, &e.rule_exceptions()) {
                        if o.start >= from && o.start < to {
                            let mut shown = e.clone();
                            shown.starts_at = o.start;
                            shown.ends_at = o.end;
                            events.push(shown);
                        }
                    }
                }
                _ => {}
            }
            Ok(())
        },
    )?;
    events.sort_by_key(|e| (e.starts_at, e.id));
    Ok(events)
}

/// An agenda the coming ticks will send; the JSON names are part of `plan`'s contract.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedAgenda {
    #[serde(with = "crate::model::utc")]
    pub at: chrono::DateTime<chrono::Utc>,
    pub user_id: i64,
    pub user_email: String,
    /// The recipient's local date it lists, `2030-03-11`.
    pub local_date: String,
}

impl Service {
    /// The zone a zone key stands for (unknown or absent: the default).
    fn zone_of(&self, zone: &ZoneKey) -> chrono_tz::Tz {
        zone.as_deref()
            .and_then(|z| z.parse().ok())
            .unwrap_or_else(|| self.config.default_tz())
    }

    /// Decide the agendas due now. False when `deadline` came first (the next tick goes on).
    pub(super) fn decide_agendas(
        &mut self,
        deadline: Option<Instant>,
        summary: &mut TickSummary,
    ) -> anyhow::Result<bool> {
        let Some(at) = self.config.agenda_at() else {
            return Ok(true);
        };
        let now = self.now();
        let grace = self.config.agenda.grace.0;
        for zone in self.store.agenda_zones()? {
            let tz = self.zone_of(&zone);
            for date in crate::agenda::due_dates(tz, at, grace, now) {
                if self.store.agenda_run_done(&zone, date)? {
                    continue;
                }
                if !self.agenda_pass(&zone, tz, date, deadline, summary)? {
                    return Ok(false);
                }
                store::write(&mut *self.store, |ops| ops.finish_agenda_run(&zone, date, now))?;
            }
        }
        Ok(true)
    }

    /// Create the agendas of `zone`'s users for `date`, a page at a time.
    fn agenda_pass(
        &mut self,
        zone: &ZoneKey,
        tz: chrono_tz::Tz,
        date: NaiveDate,
        deadline: Option<Instant>,
        summary: &mut TickSummary,
    ) -> anyhow::Result<bool> {
        let day = crate::agenda::day(tz, date);
        let notifier = Notifier::new(&self.config, &self.templates, &self.reporter, self.clock.now())?;
        let config = &self.config;
        let reporter = &self.reporter;
        let mut after = 0;
        loop {
            let ids = self.store.agenda_recipients(zone, day, date, after, PAGE)?;
            let Some(&last) = ids.last() else {
                return Ok(true);
            };
            after = last;
            let created = store::write(&mut *self.store, |ops| {
                let mut created = 0;
                for &id in &ids {
                    // A user row that cannot be read costs only its own agenda.
                    let Some(user) = contain(ops.user(id), reporter)?.flatten() else {
                        continue;
                    };
                    let events = day_events(ops, config, &user, date)?;
                    if !events.is_empty() && notifier.agenda(ops, &user, date, &events)?.is_some() {
                        created += 1;
                    }
                }
                Ok(created)
            })?;
            summary.created += created;
            if deadline.is_some_and(|d| Instant::now() >= d) || crate::interrupt::requested().is_some() {
                return Ok(false);
            }
        }
    }

    /// The agendas the coming ticks will send up to `horizon` from now (those due now and
    /// not yet decided included), by time.
    pub fn planned_agendas(&mut self, horizon: TimeDelta) -> anyhow::Result<Vec<PlannedAgenda>> {
        let Some(at) = self.config.agenda_at() else {
            return Ok(Vec::new());
        };
        let now = self.now();
        let grace = self.config.agenda.grace.0;
        let mut out = Vec::new();
        for zone in self.store.agenda_zones()? {
            let tz = self.zone_of(&zone);
            let mut moments: Vec<(chrono::DateTime<chrono::Utc>, NaiveDate)> =
                crate::agenda::moments(tz, at, now - grace, now + horizon)
                    .into_iter()
                    .filter(|(moment, _)| *moment + grace > now)
                    .collect();
            moments.dedup();
            for (moment, date) in moments {
                if self.store.agenda_run_done(&zone, date)? {
                    continue;
                }
                let day = crate::agenda::day(tz, date);
                let mut after = 0;
                loop {
                    let ids = self.store.agenda_recipients(&zone, day, date, after, 2000)?;
                    let Some(&last) = ids.last() else { break };
                    after = last;
                    for id in ids {
                        let Some(user) = self.store.user(id)? else {
                            continue;
                        };
                        // A series may have no occurrence that day: then no agenda.
                        if day_events(self.store.ops(), &self.config, &user, date)?.is_empty() {
                            continue;
                        }
                        out.push(PlannedAgenda {
                            at: moment.max(now),
                            user_id: id,
                            user_email: user.email,
                            local_date: date.to_string(),
                        });
                    }
                }
            }
        }
        out.sort_by_key(|p| (p.at, p.user_id));
        Ok(out)
    }
}
