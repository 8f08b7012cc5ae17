//! `plan`: what the coming ticks will do, computed by the same pure planner the tick
//! uses, so an admin sees beforehand what a moved event or a daylight-saving change does.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::occurrences::{series_page, SeriesWindow};
use super::Service;
use crate::model::User;
use crate::reminders::{self, Action};
use crate::store::CandidateWindow;

/// One thing the coming ticks will do, in time order. Every JSON object has `what`
/// (`reminder`, `agenda` or `held`) and `at`; the rest depends on `what`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "what", rename_all = "lowercase")]
pub enum Planned {
    Reminder(PlannedReminder),
    Agenda(super::agenda::PlannedAgenda),
    /// A delivery waiting for the end of its recipient's quiet hours.
    Held(PlannedHeld),
}

impl Planned {
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Planned::Reminder(r) => r.at,
            Planned::Agenda(a) => a.at,
            Planned::Held(h) => h.at,
        }
    }
}

/// A held delivery and when it goes.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedHeld {
    #[serde(with = "crate::model::utc")]
    pub at: DateTime<Utc>,
    pub delivery_id: i64,
    pub channel: String,
    pub kind: String,
    /// Who it goes to, as `deliveries` shows it (an address, a number, or the user).
    pub to: String,
    pub event_id: Option<i64>,
    pub reason: String,
}

/// One reminder the ticks will send or skip; the JSON names are part of the contract.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedReminder {
    #[serde(with = "crate::model::utc")]
    pub at: DateTime<Utc>,
    pub event_id: i64,
    #[serde(with = "crate::model::utc")]
    pub event_start: DateTime<Utc>,
    pub user_id: i64,
    pub user_email: String,
    pub offset_minutes: i64,
    /// An occurrence of a series: its original start (`event_start` is when it takes place).
    #[serde(with = "crate::model::utc_opt")]
    pub occurrence_start: Option<DateTime<Utc>>,
    pub action: &'static str,
    pub reason: Option<&'static str>,
    /// The event's start in the recipient's zone, e.g. `2030-03-10 10:30 CET`.
    pub local_start: String,
}

/// Planned decisions waiting to be released in time order: the oldest first.
struct Pending(reminders::Decision);

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Reversed: BinaryHeap pops the greatest, we want the earliest.
        other.key().cmp(&self.key())
    }
}
impl Pending {
    fn key(&self) -> (DateTime<Utc>, i64, DateTime<Utc>, i64, i64) {
        let d = &self.0;
        (d.due_at, d.event_id, d.event_start, d.user_id, -d.offset_minutes)
    }
}

impl Service {
    /// The reminders decided between now and `now + horizon`, in the order the ticks will
    /// decide them, handed to `each` one by one. Candidates are read a page at a time in
    /// start order; a reminder is due at most the largest offset before its event, so the
    /// ones due before the next page's first start minus that offset can be released:
    /// memory stays flat whatever the horizon.
    pub fn plan(
        &mut self,
        horizon: TimeDelta,
        each: &mut dyn FnMut(PlannedReminder) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let now = self.now();
        let until = now + horizon;
        let offsets = self.config.offsets_minutes();
        let config_max = offsets.iter().copied().max().unwrap_or(0);
        let own_max = self
            .store
            .largest_own_offset(now - TimeDelta::seconds(1))?
            .unwrap_or(0);
        let max_offset = TimeDelta::minutes(config_max.max(own_max));
        let grace = self.config.reminders.grace.0;
        let mut users: HashMap<i64, Option<User>> = HashMap::new();
        let mut heap = std::collections::BinaryHeap::new();
        // The series' occurrences first, all of them in the horizon (a series is not read
        // in start order): then the single events stream in start order past them.
        let series_window = SeriesWindow {
            after: now - TimeDelta::seconds(1),
            until,
            lead: Some(&offsets),
        };
        let mut series_cursor = None;
        loop {
            let (candidates, next) =
                series_page(self.store.ops(), &self.reporter, &series_window, series_cursor)?;
            for c in &candidates {
                heap.extend(
                    reminders::forecast(c, c.offsets_or(&offsets), grace, now, until)
                        .into_iter()
                        .map(Pending),
                );
            }
            series_cursor = next;
            if series_cursor.is_none() {
                break;
            }
        }
        let window = CandidateWindow {
            after: now - TimeDelta::seconds(1),
            until,
            lead: Some(config_max),
        };
        let mut cursor = None;
        loop {
            // Events that start within the horizon plus their largest offset can have a
            // reminder moment inside the horizon; the started ones are only recorded, as
            // the tick does.
            let page = self.store.reminder_candidates(&window, cursor.as_ref(), PAGE)?;
            for b in &page.broken {
                self.reporter.broken(b);
            }
            let next_start = page.candidates.last().map(|c| c.event_start);
            for c in &page.candidates {
                heap.extend(
                    reminders::forecast(c, c.offsets_or(&offsets), grace, now, until)
                        .into_iter()
                        .map(Pending),
                );
            }
            cursor = page.next;
            // Everything due before this is final: later pages start no earlier.
            let released_before = match (&cursor, next_start) {
                (Some(_), Some(start)) => start - max_offset,
                _ => DateTime::<Utc>::MAX_UTC,
            };
            while heap.peek().is_some_and(|p| p.0.due_at < released_before) {
                let Some(Pending(d)) = heap.pop() else { break };
                if let Entry::Vacant(slot) = users.entry(d.user_id) {
                    slot.insert(self.store.user(d.user_id)?);
                }
                let Some(user) = &users[&d.user_id] else {
                    continue;
                };
                each(planned(&self.config, &d, user))?;
            }
            if cursor.is_none() {
                return Ok(());
            }
        }
    }
}

const PAGE: u32 = 2000;

impl Service {
    /// Deliveries held for quiet hours that go out before `until`, by time.
    pub fn planned_held(&mut self, until: DateTime<Utc>) -> anyhow::Result<Vec<PlannedHeld>> {
        let mut held = Vec::new();
        self.store.list_deliveries(Some("held"), u32::MAX, &mut |d| {
            if let Ok(d) = d {
                if d.next_attempt_at <= until {
                    held.push(PlannedHeld {
                        at: d.next_attempt_at,
                        delivery_id: d.id,
                        channel: d.channel,
                        kind: d.kind,
                        to: d.recipient,
                        event_id: d.event_id,
                        reason: d.hold_reason.unwrap_or_default(),
                    });
                }
            }
            Ok(())
        })?;
        held.sort_by_key(|h| (h.at, h.delivery_id));
        Ok(held)
    }
}

fn planned(config: &crate::config::Config, d: &reminders::Decision, user: &User) -> PlannedReminder {
    let tz = super::user_tz(config, user);
    PlannedReminder {
        at: d.due_at,
        event_id: d.event_id,
        event_start: d.event_start,
        user_id: d.user_id,
        user_email: user.email.clone(),
        offset_minutes: d.offset_minutes,
        occurrence_start: d.occurrence,
        action: match d.action {
            Action::Send => "send",
            Action::Skip(_) => "skip",
        },
        reason: match d.action {
            Action::Send => None,
            Action::Skip(r) => Some(r.as_str()),
        },
        local_start: d
            .event_start
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string(),
    }
}
