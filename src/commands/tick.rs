//! `check-reminders [--dry-run] [--max-runtime DUR]`: the cron tick.

use crate::cli::CheckRemindersArgs;
use crate::error::CheckFailed;
use crate::input::{parse_duration, rfc3339};
use crate::reminders::Action;
use crate::service::tick::{Report, TickOptions};
use crate::Ctx;

pub fn run(ctx: &Ctx, args: &CheckRemindersArgs) -> anyhow::Result<()> {
    let max_runtime = args.max_runtime.as_deref().map(parse_duration).transpose()?;
    crate::interrupt::install();
    let mut service = ctx.service()?;
    let report = if args.dry_run {
        let report = service.dry_run()?;
        if !ctx.out.json {
            for d in &report.decisions {
                let what = match d.action {
                    Action::Send => "would send".to_string(),
                    Action::Skip(r) => format!("would skip ({})", r.as_str()),
                };
                ctx.out.line(format!(
                    "{what}: {}-minute reminder, event {} at {}, user {}",
                    d.offset_minutes,
                    d.event_id,
                    rfc3339(d.event_start),
                    d.user_id
                ));
            }
        }
        report
    } else {
        service.tick(TickOptions {
            max_runtime,
            mail_to_stderr: ctx.out.json,
        })?
    };
    print(ctx, &report);
    match report.needs_attention() {
        // The work is done and recorded; the exit code makes cron, systemd and Task
        // Scheduler show the run as failed so that someone looks.
        Some(why) => Err(CheckFailed(format!("tick: {why}")).into()),
        None => Ok(()),
    }
}

pub fn print(ctx: &Ctx, r: &Report) {
    if ctx.out.json {
        ctx.out.json(r);
        return;
    }
    if ctx.out.quiet {
        return;
    }
    let s = &r.summary;
    let verb = if r.dry_run { "dry run" } else { "tick" };
    ctx.out.line(format!(
        "{verb} at {}: {} reminders created, {} skipped; {} sent, {} failed (will retry), {} dead, {} dropped; {} waiting",
        rfc3339(r.now),
        s.created,
        s.skipped,
        s.sent,
        s.failed,
        s.dead,
        s.dropped,
        r.pending
    ));
}
