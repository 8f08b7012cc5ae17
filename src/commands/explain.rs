//! `explain EVENT --user U`: every decision about one event for one recipient, and why.

use crate::service::explain;
use crate::Ctx;

pub fn run(ctx: &Ctx, event: i64, user: &str) -> anyhow::Result<()> {
    let explanation = ctx.service()?.explain(event, user)?;
    if ctx.out.json {
        ctx.out.json(&explanation);
        return Ok(());
    }
    for line in explain::render(&explanation, ctx.config.email.max_attempts) {
        ctx.out.line(line);
    }
    Ok(())
}
