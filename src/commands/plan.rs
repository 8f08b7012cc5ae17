//! `plan [--next DUR]`: what the coming ticks will do, computed by the same pure planner
//! the tick uses, so an admin sees beforehand what a moved event or a daylight-saving
//! change does.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::process::ExitCode;

use chrono::TimeDelta;
use serde_json::json;

use crate::input::{parse_duration, rfc3339};
use crate::model::User;
use crate::notices::user_tz;
use crate::reminders::{self, Action};
use crate::Ctx;

pub fn run(ctx: &Ctx, next: &str) -> anyhow::Result<ExitCode> {
    let horizon = parse_duration(next)?;
    let store = ctx.store()?;
    let now = ctx.now();
    let until = now + horizon;
    let offsets = ctx.config.offsets_minutes();
    let max_offset = offsets.iter().copied().max().unwrap_or(0);
    let grace = ctx.config.reminders.grace.0;
    // Events that start within the horizon plus the largest offset can have a reminder
    // moment inside the horizon; the started ones are only recorded, as the tick does.
    let (candidates, broken) = store.reminder_candidates(
        now - TimeDelta::seconds(1),
        until + TimeDelta::minutes(max_offset),
    )?;
    let mut decisions: Vec<reminders::Decision> = candidates
        .iter()
        .flat_map(|c| reminders::forecast(c, &offsets, grace, now, until))
        .collect();
    decisions.sort_by_key(|d| (d.due_at, d.event_id, d.user_id, -d.offset_minutes));
    let mut users: HashMap<i64, User> = HashMap::new();
    for d in &decisions {
        if let Entry::Vacant(slot) = users.entry(d.user_id) {
            slot.insert(store.find_user(&d.user_id.to_string())?);
        }
    }
    let rows: Vec<serde_json::Value> = decisions
        .iter()
        .map(|d| {
            let user = &users[&d.user_id];
            let tz = user_tz(ctx, user);
            json!({
                "at": rfc3339(d.due_at),
                "event_id": d.event_id,
                "event_start": rfc3339(d.event_start),
                "user_id": d.user_id,
                "user_email": user.email,
                "offset_minutes": d.offset_minutes,
                "action": match d.action { Action::Send => "send", Action::Skip(_) => "skip" },
                "reason": match d.action { Action::Send => None, Action::Skip(r) => Some(r.as_str()) },
                "local_start": d.event_start.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string(),
            })
        })
        .collect();
    for b in &broken {
        log::warn!("skipping a broken row: {b}");
    }
    if ctx.out.json {
        ctx.out.json(&rows);
        return Ok(ExitCode::SUCCESS);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let s = |k: &str| {
                r[k].as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| r[k].to_string())
            };
            let action = match r["reason"].as_str() {
                Some(reason) => format!("skip ({reason})"),
                None => "send".into(),
            };
            vec![
                s("at"),
                action,
                format!("{}m", s("offset_minutes")),
                s("event_id"),
                s("local_start"),
                s("user_email"),
            ]
        })
        .collect();
    ctx.out
        .line(format!("reminders from {} to {}:", rfc3339(now), rfc3339(until)));
    ctx.out.table(
        &[
            "WHEN (UTC)",
            "ACTION",
            "OFFSET",
            "EVENT",
            "EVENT START (RECIPIENT'S ZONE)",
            "TO",
        ],
        &table,
    );
    Ok(ExitCode::SUCCESS)
}
