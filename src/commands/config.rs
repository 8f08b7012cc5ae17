//! `config check` and `config show`.
//!
//! `check` runs the checks of `service::health::config_checks` (templates, database,
//! email transport and login, webhook secret) without sending anything. `show` prints the
//! effective settings; secrets never appear because the file holds only the names of the
//! variables that carry them.

use serde_json::json;

use crate::cli::ConfigCmd;
use crate::error::CheckFailed;
use crate::service::health::config_checks;
use crate::Ctx;

pub fn run(ctx: &Ctx, cmd: ConfigCmd) -> anyhow::Result<()> {
    match cmd {
        ConfigCmd::Show => show(ctx),
        ConfigCmd::Check => check(ctx),
    }
}

fn env_status(name: &str) -> &'static str {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => "set",
        _ => "not set",
    }
}

fn show(ctx: &Ctx) -> anyhow::Result<()> {
    let c = &ctx.config;
    let secrets = json!({
        c.email.smtp.password_env.clone(): env_status(&c.email.smtp.password_env),
        c.webhook.secret_env.clone(): env_status(&c.webhook.secret_env),
        c.video.whereby_api_key_env.clone(): env_status(&c.video.whereby_api_key_env),
    });
    if ctx.out.json {
        ctx.out
            .json(&json!({"database": ctx.location.to_string(), "config": c, "secrets": secrets}));
    } else {
        ctx.out
            .line(format!("# effective settings (database: {})", ctx.location));
        for (k, v) in secrets.as_object().into_iter().flatten() {
            ctx.out
                .line(format!("# secret variable {k}: {}", v.as_str().unwrap_or("")));
        }
        ctx.out.raw(&toml::to_string(c)?);
    }
    Ok(())
}

fn check(ctx: &Ctx) -> anyhow::Result<()> {
    let results = config_checks(&ctx.config, &ctx.location);
    let ok = results.iter().all(|r| r.ok);
    if ctx.out.json {
        ctx.out.json(&json!({"ok": ok, "checks": results}));
    } else {
        for r in &results {
            let mark = if r.ok { "ok  " } else { "FAIL" };
            ctx.out.line(format!("{mark}  {}: {}", r.check, r.detail));
        }
    }
    match results.iter().find(|r| !r.ok) {
        Some(r) => Err(CheckFailed(format!("config check failed: {}: {}", r.check, r.detail)).into()),
        None => Ok(()),
    }
}
