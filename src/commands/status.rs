//! `status [--max-age DUR]`: the health of the tick, for humans and for Nagios-style
//! checks. Exit 3 when the last successful tick is older than DUR or deliveries are dead.

use std::process::ExitCode;

use chrono::TimeDelta;
use serde_json::json;

use crate::error::EXIT_CHECK;
use crate::input::{format_duration, parse_duration, rfc3339};
use crate::Ctx;

pub fn run(ctx: &Ctx, max_age: Option<&str>) -> anyhow::Result<ExitCode> {
    let max_age = max_age.map(parse_duration).transpose()?;
    let store = ctx.store()?;
    let now = ctx.now();
    let last = store.last_tick()?;
    let last_good = store.last_good_tick()?;
    let counts = store.delivery_counts()?;
    let skipped = store.skipped_since(now - TimeDelta::days(1))?;
    let next_retry = store.next_retry_at()?;
    let age = last_good.as_ref().map(|t| now - t.started_at);

    let mut problems = Vec::new();
    if let Some(max) = max_age {
        match age {
            None => problems.push("no successful tick recorded yet".to_string()),
            Some(a) if a > max => problems.push(format!(
                "last successful tick was {} ago (more than {}): is cron running notifyctl check-reminders?",
                format_duration(a),
                format_duration(max)
            )),
            _ => {}
        }
    }
    if counts.dead > 0 {
        problems.push(format!(
            "{} dead deliveries: see `notifyctl deliveries --status dead`, then `notifyctl deliveries retry --dead`",
            counts.dead
        ));
    }
    if let Some(t) = &last {
        if t.ok == Some(false) {
            problems.push(format!(
                "the last tick failed: {}",
                t.error.as_deref().unwrap_or("unknown error")
            ));
        }
    }

    if ctx.out.json {
        ctx.out.json(&json!({
            "now": rfc3339(now),
            "last_tick": last,
            "last_success_at": last_good.as_ref().map(|t| rfc3339(t.started_at)),
            "last_success_age_seconds": age.map(|a| a.num_seconds()),
            "deliveries": counts,
            "next_retry_at": next_retry.map(rfc3339),
            "skipped_last_24h": skipped,
            "healthy": problems.is_empty(),
            "problems": problems,
        }));
    } else {
        match &last {
            Some(t) => ctx.out.line(format!(
                "last tick:        {} ({}) created {}, skipped {}, sent {}, failed {}, dead {}, dropped {}",
                rfc3339(t.started_at),
                match t.ok {
                    Some(true) => "ok",
                    Some(false) => "failed",
                    None => "running or killed",
                },
                t.summary.created,
                t.summary.skipped,
                t.summary.sent,
                t.summary.failed,
                t.summary.dead,
                t.summary.dropped
            )),
            None => ctx.out.line("last tick:        never"),
        }
        ctx.out.line(format!(
            "last success:     {}",
            match (&last_good, age) {
                (Some(t), Some(a)) => format!("{} ({} ago)", rfc3339(t.started_at), format_duration(a)),
                _ => "never".into(),
            }
        ));
        ctx.out.line(format!(
            "deliveries:       {} pending, {} sending, {} failed (will retry), {} dead",
            counts.pending, counts.sending, counts.failed, counts.dead
        ));
        if let Some(t) = next_retry {
            ctx.out.line(format!("next due:         {}", rfc3339(t)));
        }
        let skipped_text: Vec<String> = skipped
            .iter()
            .map(|s| format!("{} {}", s.count, s.reason))
            .collect();
        ctx.out.line(format!(
            "skipped (24h):    {}",
            if skipped_text.is_empty() {
                "none".into()
            } else {
                skipped_text.join(", ")
            }
        ));
        ctx.out.line(format!(
            "health:           {}",
            if problems.is_empty() { "ok" } else { "PROBLEM" }
        ));
    }
    for p in &problems {
        eprintln!("notifyctl: status: {p}");
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_CHECK)
    })
}
