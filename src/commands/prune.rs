//! `prune --older-than DUR [--dry-run]`: retention for files used for years.

use serde_json::json;

use crate::input::{parse_duration, rfc3339};
use crate::Ctx;

pub fn run(ctx: &Ctx, older_than: &str, dry_run: bool) -> anyhow::Result<()> {
    let age = parse_duration(older_than)?;
    let (cutoff, counts) = ctx.service()?.prune(age, dry_run)?;
    if ctx.out.json {
        ctx.out
            .json(&json!({"dry_run": dry_run, "cutoff": rfc3339(cutoff), "removed": counts}));
    } else {
        let verb = if dry_run { "would remove" } else { "removed" };
        ctx.out.line(format!(
            "{verb} {} read notifications, {} finished deliveries, {} tick records, {} reminder records older than {}",
            counts.notifications,
            counts.deliveries,
            counts.ticks,
            counts.reminders,
            rfc3339(cutoff)
        ));
    }
    Ok(())
}
