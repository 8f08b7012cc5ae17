//! `config check` and `config show`.
//!
//! `check` runs the checks of `service::health::config_checks` (templates, database,
//! email transport and login, each secret, webhook, metrics file) without sending
//! anything. `show` prints the effective settings and where each secret comes from (a
//! file, a variable, or nowhere); the secrets themselves never appear: the config holds
//! only the names of the files and variables that carry them.

use serde_json::json;

use crate::cli::ConfigCmd;
use crate::error::CheckFailed;
use crate::secrets;
use crate::service::health::config_checks;
use crate::Ctx;

pub fn run(ctx: &Ctx, cmd: ConfigCmd) -> anyhow::Result<()> {
    match cmd {
        ConfigCmd::Show => show(ctx),
        ConfigCmd::Check => check(ctx),
    }
}

fn show(ctx: &Ctx) -> anyhow::Result<()> {
    let c = &ctx.config;
    let secrets: Vec<(String, String)> = secrets::settings(c)
        .iter()
        .map(|s| {
            let state = s.describe().unwrap_or_else(|e| format!("unusable: {e}"));
            (s.key.to_string(), state)
        })
        .collect();
    if ctx.out.json {
        let map: serde_json::Map<String, serde_json::Value> =
            secrets.into_iter().map(|(k, v)| (k, json!(v))).collect();
        ctx.out
            .json(&json!({"database": ctx.location.to_string(), "config": c, "secrets": map}));
    } else {
        ctx.out
            .line(format!("# effective settings (database: {})", ctx.location));
        for (key, state) in &secrets {
            ctx.out.line(format!("# secret {key}: {state}"));
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
