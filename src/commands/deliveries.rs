//! `deliveries [--status S]` and `deliveries retry ID... | --dead`: the outbox.

use serde_json::json;

use crate::cli::{DeliveriesArgs, DeliveriesCmd};
use crate::input::rfc3339;
use crate::Ctx;

pub fn run(ctx: &Ctx, args: DeliveriesArgs) -> anyhow::Result<()> {
    match args.action {
        Some(DeliveriesCmd::Retry { ids, dead }) => {
            let mut service = ctx.service()?;
            let n = if dead {
                service.retry_dead()?
            } else {
                service.retry_deliveries(&ids)?
            };
            if ctx.out.json {
                ctx.out.json(&json!({"requeued": n}));
            } else {
                ctx.out
                    .line(format!("{n} deliveries re-queued; the next tick sends them"));
            }
            Ok(())
        }
        None => {
            // Streamed: memory stays flat whatever the outbox holds.
            let mut listing = ctx.out.listing(&[
                "ID",
                "STATUS",
                "CHANNEL",
                "TO",
                "KIND",
                "TRIES",
                "WHEN (UTC)",
                "LAST ANSWER",
            ]);
            ctx.service()?
                .deliveries(args.status.as_deref(), args.limit, &mut |d| {
                    match d {
                        Ok(d) => listing.item(&d, || {
                            vec![
                                d.id.to_string(),
                                d.status.clone(),
                                d.channel.clone(),
                                d.recipient.clone(),
                                d.kind.clone(),
                                d.attempts.to_string(),
                                match d.status.as_str() {
                                    "sent" => d.sent_at.map(rfc3339).unwrap_or_default(),
                                    "pending" | "failed" => rfc3339(d.next_attempt_at),
                                    _ => "-".into(),
                                },
                                crate::output::cell(
                                    d.last_error.as_deref().or(d.response.as_deref()).unwrap_or(""),
                                    60,
                                ),
                            ]
                        }),
                        Err(b) => super::report_broken(&b),
                    }
                    Ok(())
                })?;
            listing.finish();
            Ok(())
        }
    }
}
