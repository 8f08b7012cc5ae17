//! `check-reminders [--dry-run] [--max-runtime DUR]`: the cron tick, watched by the
//! heartbeat and the metrics file (a dry run is not a tick: neither sees it).

use crate::cli::CheckRemindersArgs;
use crate::error::CheckFailed;
use crate::input::{parse_duration, rfc3339};
use crate::reminders::Action;
use crate::service::monitor::TickMonitor;
use crate::service::tick::{Report, TickOptions};
use crate::service::Service;
use crate::Ctx;

pub fn run(ctx: &Ctx, args: &CheckRemindersArgs) -> anyhow::Result<()> {
    let max_runtime = || args.max_runtime.as_deref().map(parse_duration).transpose();
    crate::interrupt::install();
    if args.dry_run {
        max_runtime()?;
        let mut service = ctx.service()?;
        return finish(ctx, dry_run(ctx, &mut service)?);
    }
    // From here on, monitoring sees the tick: `/start` now, and `/fail` or success with the
    // metrics file whatever happens next (`service::monitor`), a bad --max-runtime included.
    let monitor = TickMonitor::start(&ctx.config, ctx.now());
    let mut service = None;
    let result = max_runtime().and_then(|max_runtime| {
        service
            .insert(ctx.service()?)
            .tick(TickOptions {
                max_runtime,
                mail_to_stderr: ctx.out.json,
            })
            .and_then(|report| {
                print(ctx, &report);
                finish_tick(&report)
            })
    });
    let failure = result
        .as_ref()
        .err()
        .map(|e| format!("exit status {}: {e:#}", crate::error::classify(e)));
    monitor.finish(&ctx.config, service.as_mut(), failure.as_deref());
    result
}

/// The tick's exit: 0, or 3 when it needs a person although it finished.
fn finish_tick(report: &Report) -> anyhow::Result<()> {
    match report.needs_attention() {
        // The work is done and recorded; the exit code makes cron, systemd and Task
        // Scheduler show the run as failed so that someone looks.
        Some(why) => Err(CheckFailed(format!("tick: {why}")).into()),
        None => Ok(()),
    }
}

fn finish(ctx: &Ctx, report: Report) -> anyhow::Result<()> {
    print(ctx, &report);
    finish_tick(&report)
}

fn dry_run(ctx: &Ctx, service: &mut Service) -> anyhow::Result<Report> {
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
    Ok(report)
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
