//! `plan`: what the coming ticks will do, computed by the same pure planner the tick
//! uses, so an admin sees beforehand what a moved event or a daylight-saving change does.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::Service;
use crate::model::User;
use crate::reminders::{self, Action};

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
    pub action: &'static str,
    pub reason: Option<&'static str>,
    /// The event's start in the recipient's zone, e.g. `2030-03-10 10:30 CET`.
    pub local_start: String,
}

impl Service {
    /// The reminders decided between now and `now + horizon`, in the order the ticks
    /// will decide them.
    pub fn plan(&mut self, horizon: TimeDelta) -> anyhow::Result<Vec<PlannedReminder>> {
        let now = self.now();
        let until = now + horizon;
        let offsets = self.config.offsets_minutes();
        let max_offset = offsets.iter().copied().max().unwrap_or(0);
        let grace = self.config.reminders.grace.0;
        // Events that start within the horizon plus the largest offset can have a
        // reminder moment inside the horizon; the started ones are only recorded, as the
        // tick does.
        let (candidates, broken) = self.store.reminder_candidates(
            now - TimeDelta::seconds(1),
            until + TimeDelta::minutes(max_offset),
        )?;
        for b in &broken {
            log::warn!("skipping a broken row: {b}");
        }
        let mut decisions: Vec<reminders::Decision> = candidates
            .iter()
            .flat_map(|c| reminders::forecast(c, &offsets, grace, now, until))
            .collect();
        decisions.sort_by_key(|d| (d.due_at, d.event_id, d.user_id, -d.offset_minutes));
        let mut users: HashMap<i64, Option<User>> = HashMap::new();
        let mut out = Vec::with_capacity(decisions.len());
        for d in decisions {
            if let Entry::Vacant(slot) = users.entry(d.user_id) {
                slot.insert(self.store.user(d.user_id)?);
            }
            let Some(user) = &users[&d.user_id] else {
                continue;
            };
            let tz = self.user_tz(user);
            out.push(PlannedReminder {
                at: d.due_at,
                event_id: d.event_id,
                event_start: d.event_start,
                user_id: d.user_id,
                user_email: user.email.clone(),
                offset_minutes: d.offset_minutes,
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
            });
        }
        Ok(out)
    }
}
