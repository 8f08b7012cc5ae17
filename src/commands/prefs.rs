//! `prefs show --user U` and `prefs set --user U --kind KIND --channel CHANNEL on|off`.

use crate::cli::{OnOff, PrefsCmd};
use crate::service::prefs::PrefsReport;
use crate::Ctx;

pub fn run(ctx: &Ctx, cmd: PrefsCmd) -> anyhow::Result<()> {
    match cmd {
        PrefsCmd::Show { user } => {
            let report = ctx.service()?.prefs(&user)?;
            if ctx.out.json {
                ctx.out.json(&report);
            } else {
                print(ctx, &report);
            }
        }
        PrefsCmd::Set {
            user,
            kind,
            channel,
            value,
        } => {
            let on = matches!(value, OnOff::On);
            let change = ctx.service()?.set_prefs(&user, &kind, &channel, on)?;
            if ctx.out.json {
                ctx.out.json(&change);
                return Ok(());
            }
            print(ctx, &change.report);
            if !change.still_sent.is_empty() {
                ctx.out.line(format!(
                    "note: {} notices are mandatory ([preferences] mandatory): they still go out on every channel {} has",
                    change.still_sent.join(" and "),
                    change.report.user_email
                ));
            }
        }
    }
    Ok(())
}

fn print(ctx: &Ctx, r: &PrefsReport) {
    ctx.out.line(format!("{} (user {})", r.user_email, r.user_id));
    ctx.out.line(format!(
        "quiet hours: {}",
        r.quiet_hours.as_deref().unwrap_or("none")
    ));
    for c in &r.channels {
        ctx.out.line(format!(
            "{:<6} {}",
            c.channel,
            c.why.as_deref().unwrap_or("can reach this user")
        ));
    }
    let kinds: Vec<&str> = {
        let mut k: Vec<&str> = r.preferences.iter().map(|p| p.kind).collect();
        k.dedup();
        k
    };
    let mut listing = ctx.out.listing(&["KIND", "EMAIL", "SMS", "NTFY"]);
    for kind in &kinds {
        let prefs: Vec<_> = r.preferences.iter().filter(|p| p.kind == *kind).collect();
        listing.item(&prefs, || {
            let mut row = vec![kind.to_string()];
            for p in &prefs {
                row.push(match (p.enabled, p.mandatory) {
                    (true, _) => "on".into(),
                    (false, true) => "off (mandatory: sent)".into(),
                    (false, false) => "off".into(),
                });
            }
            row
        });
    }
    listing.finish();
}
