//! `config check` and `config show`.
//!
//! `check` parses and validates the config, renders every template, and tests what the
//! tick will need (SMTP connection and login, the .eml directory, webhook secret)
//! without sending anything. `show` prints the effective settings; secrets never appear
//! because the file holds only the names of the variables that carry them.

use std::process::ExitCode;
use std::time::Instant;

use serde_json::json;

use crate::channels::email::{create_private_dir, smtp_settings};
use crate::channels::smtp::SmtpSession;
use crate::cli::ConfigCmd;
use crate::config::Transport;
use crate::error::CheckFailed;
use crate::Ctx;

pub fn run(ctx: &Ctx, cmd: ConfigCmd) -> anyhow::Result<ExitCode> {
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

fn show(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let c = &ctx.config;
    let secrets = json!({
        c.email.smtp.password_env.clone(): env_status(&c.email.smtp.password_env),
        c.webhook.secret_env.clone(): env_status(&c.webhook.secret_env),
        c.video.whereby_api_key_env.clone(): env_status(&c.video.whereby_api_key_env),
    });
    if ctx.out.json {
        ctx.out
            .json(&json!({"database": ctx.db_path.display().to_string(), "config": c, "secrets": secrets}));
    } else {
        ctx.out.line(format!(
            "# effective settings (database: {})",
            ctx.db_path.display()
        ));
        for (k, v) in secrets.as_object().into_iter().flatten() {
            ctx.out
                .line(format!("# secret variable {k}: {}", v.as_str().unwrap_or("")));
        }
        ctx.out.raw(&toml::to_string(c)?);
    }
    Ok(ExitCode::SUCCESS)
}

fn check(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let c = &ctx.config;
    let mut results: Vec<(String, Result<String, String>)> = Vec::new();
    results.push(("config".into(), Ok("parsed and valid".into())));
    results.push((
        "templates".into(),
        ctx.templates()
            .and_then(|t| t.check().map(|_| t.overridden().len()))
            .map(|n| format!("all kinds and languages render ({n} overridden)"))
            .map_err(|e| format!("{e:#}")),
    ));
    results.push((
        "database".into(),
        if ctx.db_path.exists() {
            ctx.store()
                .map(|s| {
                    format!(
                        "{} (schema {})",
                        ctx.db_path.display(),
                        s.schema_version().unwrap_or(0)
                    )
                })
                .map_err(|e| format!("{e:#}"))
        } else {
            Err(format!(
                "{} does not exist: run `notifyctl init`",
                ctx.db_path.display()
            ))
        },
    ));
    let email = match c.email.transport {
        Transport::Smtp => smtp_settings(&c.email.smtp)
            .map_err(|e| format!("{e:#}"))
            .and_then(|settings| {
                // Connect, TLS, two EHLOs, AUTH: a few steps, each within the timeout.
                let deadline = Instant::now() + settings.step_timeout * 3;
                SmtpSession::new(settings)
                    .check(deadline)
                    .map_err(|e| e.to_string())
            })
            .map(|_| {
                format!(
                    "connected to {}:{}{}",
                    c.email.smtp.host,
                    c.email.smtp.port,
                    if c.email.smtp.username.is_empty() {
                        ""
                    } else {
                        " and logged in"
                    }
                )
            }),
        Transport::File => {
            let dir = ctx.outbox_dir();
            create_private_dir(&dir)
                .map(|_| format!(".eml files go to {}", dir.display()))
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))
        }
        Transport::Sendmail => Ok(format!(
            "messages are piped to `{} -i -t`",
            c.email.sendmail_command
        )),
        Transport::Stdout => Ok("messages are printed on stdout".into()),
        Transport::None => Ok("no email (in-app only)".into()),
    };
    results.push(("email".into(), email));
    if !c.webhook.url.is_empty() {
        results.push((
            "webhook".into(),
            crate::channels::webhook::WebhookSender::new(&c.webhook)
                .map(|_| format!("POST {} (signed)", c.webhook.url))
                .map_err(|e| format!("{e:#}")),
        ));
    }
    let failed: Vec<&(String, Result<String, String>)> = results.iter().filter(|(_, r)| r.is_err()).collect();
    if ctx.out.json {
        let items: Vec<serde_json::Value> = results
            .iter()
            .map(|(name, r)| match r {
                Ok(m) => json!({"check": name, "ok": true, "detail": m}),
                Err(m) => json!({"check": name, "ok": false, "detail": m}),
            })
            .collect();
        ctx.out.json(&json!({"ok": failed.is_empty(), "checks": items}));
    } else {
        for (name, r) in &results {
            match r {
                Ok(m) => ctx.out.line(format!("ok    {name}: {m}")),
                Err(m) => ctx.out.line(format!("FAIL  {name}: {m}")),
            }
        }
    }
    if let Some((name, Err(m))) = failed.first() {
        return Err(CheckFailed(format!("config check failed: {name}: {m}")).into());
    }
    Ok(ExitCode::SUCCESS)
}
