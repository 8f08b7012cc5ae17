//! `plan [--next DUR]`: what the coming ticks will do, and when — the reminders they will
//! send or skip, the daily agendas, and the messages held for quiet hours.

use crate::input::{parse_duration, rfc3339};
use crate::service::plan::Planned;
use crate::Ctx;

pub fn run(ctx: &Ctx, next: &str) -> anyhow::Result<()> {
    let horizon = parse_duration(next)?;
    let mut service = ctx.service()?;
    let now = service.now();
    let mut planned = Vec::new();
    service.plan(horizon, &mut |p| {
        planned.push(Planned::Reminder(p));
        Ok(())
    })?;
    let agendas = service.planned_agendas(horizon)?;
    let held = service.planned_held(now + horizon)?;
    if ctx.out.json {
        planned.extend(agendas.into_iter().map(Planned::Agenda));
        planned.extend(held.into_iter().map(Planned::Held));
        // Stable: reminders keep the order the ticks decide them in.
        planned.sort_by_key(|p| p.at());
        ctx.out.json(&planned);
        return Ok(());
    }
    let table: Vec<Vec<String>> = planned
        .iter()
        .filter_map(|p| match p {
            Planned::Reminder(p) => Some(p),
            _ => None,
        })
        .map(|p| {
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
        })
        .collect();
    ctx.out.line(format!(
        "reminders from {} to {}:",
        rfc3339(now),
        rfc3339(now + horizon)
    ));
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
    if !agendas.is_empty() {
        ctx.out.line("daily agendas:");
        let rows: Vec<Vec<String>> = agendas
            .iter()
            .map(|a| vec![rfc3339(a.at), a.local_date.clone(), a.user_email.clone()])
            .collect();
        ctx.out.table(&["WHEN (UTC)", "LOCAL DATE", "TO"], &rows);
    }
    if !held.is_empty() {
        ctx.out.line("held for quiet hours:");
        let rows: Vec<Vec<String>> = held
            .iter()
            .map(|h| {
                vec![
                    rfc3339(h.at),
                    h.delivery_id.to_string(),
                    h.channel.clone(),
                    h.kind.clone(),
                    h.user_email.clone(),
                    crate::output::cell(&h.reason, 60),
                ]
            })
            .collect();
        ctx.out.table(
            &["GOES AT (UTC)", "DELIVERY", "CHANNEL", "KIND", "TO", "WHY"],
            &rows,
        );
    }
    Ok(())
}
