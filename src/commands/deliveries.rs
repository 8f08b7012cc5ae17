//! `deliveries [--status S]` and `deliveries retry ID... | --dead`: the email outbox.

use std::process::ExitCode;

use serde_json::json;

use crate::cli::{DeliveriesArgs, DeliveriesCmd};
use crate::error::user_error;
use crate::input::rfc3339;
use crate::Ctx;

const STATUSES: [&str; 7] = [
    "pending",
    "sending",
    "failed",
    "dead",
    "sent",
    "superseded",
    "expired",
];

pub fn run(ctx: &Ctx, args: DeliveriesArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        Some(DeliveriesCmd::Retry { ids, dead }) => {
            let mut store = ctx.store()?;
            let n = if dead {
                store.retry_dead(ctx.now())?
            } else {
                store.retry_deliveries(&ids, ctx.now())?
            };
            if ctx.out.json {
                ctx.out.json(&json!({"requeued": n}));
            } else {
                ctx.out
                    .line(format!("{n} deliveries re-queued; the next tick sends them"));
            }
            Ok(ExitCode::SUCCESS)
        }
        None => {
            if let Some(s) = &args.status {
                if !STATUSES.contains(&s.as_str()) {
                    return Err(user_error(format!(
                        "unknown status '{s}': use {}",
                        STATUSES.join(", ")
                    )));
                }
            }
            let list = ctx.store()?.list_deliveries(args.status.as_deref(), args.limit)?;
            if ctx.out.json {
                ctx.out.json(&list);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|d| {
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
                })
                .collect();
            ctx.out.table(
                &[
                    "ID",
                    "STATUS",
                    "CHANNEL",
                    "TO",
                    "KIND",
                    "TRIES",
                    "WHEN (UTC)",
                    "LAST ANSWER",
                ],
                &rows,
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
