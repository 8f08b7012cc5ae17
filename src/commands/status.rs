//! `status [--max-age DUR]`: the health of the tick, for humans and for Nagios-style
//! checks. The rules live in `service::health`; a problem makes the command fail with
//! exit 3 after the report is printed.

use crate::error::CheckFailed;
use crate::input::{format_duration, parse_duration, rfc3339};
use crate::Ctx;

pub fn run(ctx: &Ctx, max_age: Option<&str>) -> anyhow::Result<()> {
    let max_age = max_age.map(parse_duration).transpose()?;
    let h = ctx.service()?.health(max_age)?;
    if ctx.out.json {
        ctx.out.json(&h);
    } else {
        match &h.last_tick {
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
            match (h.last_success_at, h.last_success_age()) {
                (Some(t), Some(a)) => format!("{} ({} ago)", rfc3339(t), format_duration(a)),
                _ => "never".into(),
            }
        ));
        let c = &h.deliveries;
        ctx.out.line(format!(
            "deliveries:       {} pending, {} sending, {} failed (will retry), {} dead, {} sent",
            c.pending, c.sending, c.failed, c.dead, c.sent
        ));
        if let Some(t) = h.next_retry_at {
            ctx.out.line(format!("next due:         {}", rfc3339(t)));
        }
        let skipped: Vec<String> = h
            .skipped_last_24h
            .iter()
            .map(|s| format!("{} {}", s.count, s.reason))
            .collect();
        ctx.out.line(format!(
            "skipped (24h):    {}",
            if skipped.is_empty() {
                "none".into()
            } else {
                skipped.join(", ")
            }
        ));
        ctx.out.line(format!(
            "health:           {}",
            if h.healthy { "ok" } else { "PROBLEM" }
        ));
    }
    if h.healthy {
        Ok(())
    } else {
        Err(CheckFailed(format!("status: {}", h.problems.join("; "))).into())
    }
}
