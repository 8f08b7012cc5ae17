//! `plan [--next DUR]`: the reminders the coming ticks will send or skip, and when.
//! Streamed in time order: memory stays flat whatever the horizon.

use crate::input::{parse_duration, rfc3339};
use crate::Ctx;

pub fn run(ctx: &Ctx, next: &str) -> anyhow::Result<()> {
    let horizon = parse_duration(next)?;
    let mut service = ctx.service()?;
    let now = service.now();
    ctx.out.line(format!(
        "reminders from {} to {}:",
        rfc3339(now),
        rfc3339(now + horizon)
    ));
    let mut listing = ctx.out.listing(&[
        "WHEN (UTC)",
        "ACTION",
        "OFFSET",
        "EVENT",
        "EVENT START (RECIPIENT'S ZONE)",
        "TO",
    ]);
    service.plan(horizon, &mut |p| {
        listing.item(&p, || {
            let action = match p.reason {
                Some(reason) => format!("skip ({reason})"),
                None => "send".into(),
            };
            vec![
                rfc3339(p.at),
                action,
                format!("{}m", p.offset_minutes),
                p.event_id.to_string(),
                p.local_start.clone(),
                p.user_email.clone(),
            ]
        });
        Ok(())
    })?;
    listing.finish();
    Ok(())
}
