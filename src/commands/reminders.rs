//! `reminders reopen --since TIME [--dry-run]`: after a tick ran with its clock ahead (an
//! NTP glitch, `--now` against production), the reminders it recorded as late for events
//! that are still to come are decided again by the next tick.

use serde_json::json;

use crate::cli::RemindersCmd;
use crate::input::{parse_time, rfc3339};
use crate::Ctx;

pub fn run(ctx: &Ctx, cmd: RemindersCmd) -> anyhow::Result<()> {
    match cmd {
        RemindersCmd::Reopen { since, dry_run } => {
            let since = parse_time(&since, ctx.config.default_tz())?;
            let (n, ticks) = ctx.service()?.reopen_reminders(since, dry_run)?;
            if ctx.out.json {
                ctx.out.json(&json!({
                    "reopened": n,
                    "future_ticks_forgotten": ticks,
                    "dry_run": dry_run,
                    "since": rfc3339(since),
                }));
            } else if dry_run {
                ctx.out.line(format!(
                    "would reopen {n} reminder decisions and forget {ticks} tick records from the future"
                ));
            } else {
                ctx.out.line(format!(
                    "reopened {n} reminder decisions (the next tick decides them again); forgot {ticks} tick records from the future"
                ));
            }
            Ok(())
        }
    }
}
