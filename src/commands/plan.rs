//! `plan [--next DUR]`: what the coming ticks will do, and when — the reminders they will
//! send or skip, the daily agendas, and the messages held for quiet hours.
//! Reminders are streamed in time order: memory stays flat whatever the horizon. With `--json`
//! one array: the reminders, then the agendas, then the held messages, each tagged by `what`.

use crate::input::{parse_duration, rfc3339};
use crate::service::plan::Planned;
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
        let p = Planned::Reminder(p);
        listing.item(&p, || {
            let Planned::Reminder(p) = &p else {
                return Vec::new();
            };
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
    let agendas = service.planned_agendas(horizon)?;
    let held = service.planned_held(now + horizon)?;
    if ctx.out.json {
        for a in agendas {
            listing.item(&Planned::Agenda(a), Vec::new);
        }
        for h in held {
            listing.item(&Planned::Held(h), Vec::new);
        }
        listing.finish();
        return Ok(());
    }
    listing.finish();
    if !agendas.is_empty() {
        ctx.out.line("daily agendas:");
        let mut listing = ctx.out.listing(&["WHEN (UTC)", "LOCAL DATE", "TO"]);
        for a in &agendas {
            listing.item(a, || {
                vec![rfc3339(a.at), a.local_date.clone(), a.user_email.clone()]
            });
        }
        listing.finish();
    }
    if !held.is_empty() {
        ctx.out.line("held for quiet hours:");
        let mut listing = ctx
            .out
            .listing(&["GOES AT (UTC)", "DELIVERY", "CHANNEL", "KIND", "TO", "WHY"]);
        for h in &held {
            listing.item(h, || {
                vec![
                    rfc3339(h.at),
                    h.delivery_id.to_string(),
                    h.channel.clone(),
                    h.kind.clone(),
                    h.to.clone(),
                    crate::output::cell(&h.reason, 60),
                ]
            });
        }
        listing.finish();
    }
    Ok(())
}
