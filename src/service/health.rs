//! Health: the rules behind `status` (is the tick running, is anything dead or failing)
//! and `config check` (will the next tick be able to do its work).

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::Service;
use std::time::Instant;

use crate::channels::email::smtp_settings;
use crate::channels::smtp::SmtpSession;
use crate::channels::webhook::WebhookSender;
use crate::clock::Clock;
use crate::config::{Config, Transport};
use crate::input::format_duration;
use crate::store::{DeliveryCounts, Location, OpenMode, SkippedCount, TickRecord};

/// What `status` reports; the JSON names are part of the contract.
#[derive(Debug, Serialize)]
pub struct Health {
    #[serde(with = "crate::model::utc")]
    pub now: DateTime<Utc>,
    pub last_tick: Option<TickRecord>,
    #[serde(with = "crate::model::utc_opt")]
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_success_age_seconds: Option<i64>,
    pub deliveries: DeliveryCounts,
    #[serde(with = "crate::model::utc_opt")]
    pub next_retry_at: Option<DateTime<Utc>>,
    pub skipped_last_24h: Vec<SkippedCount>,
    pub healthy: bool,
    pub problems: Vec<String>,
}

impl Health {
    pub fn last_success_age(&self) -> Option<TimeDelta> {
        self.last_success_age_seconds.map(TimeDelta::seconds)
    }
}

impl Service {
    /// The tick's health. With `max_age`, a last successful tick older than that is a
    /// problem; dead deliveries and a failed last tick always are.
    pub fn health(&mut self, max_age: Option<TimeDelta>) -> anyhow::Result<Health> {
        let now = self.now();
        let last = self.store.last_tick()?;
        let last_good = self.store.last_good_tick()?;
        let deliveries = self.store.delivery_counts()?;
        let skipped = self.store.skipped_since(now - TimeDelta::days(1))?;
        let next_retry_at = self.store.next_retry_at()?;
        let age = last_good.as_ref().map(|t| now - t.started_at);
        let unreadable = self.store.unreadable_events(5)?;

        let mut problems = Vec::new();
        if let Some(max) = max_age {
            match age {
                None => problems.push("no successful tick recorded yet".to_string()),
                Some(a) if a > max => problems.push(format!(
                    "last successful tick was {} ago (more than {}): is cron running notifyctl check-reminders?",
                    format_duration(a),
                    format_duration(max)
                )),
                _ => {}
            }
        }
        if deliveries.dead > 0 {
            problems.push(format!(
                "{} dead deliveries: see `notifyctl deliveries --status dead`, then `notifyctl deliveries retry --dead`",
                deliveries.dead
            ));
        }
        if let Some(t) = &last {
            if t.ok == Some(false) {
                problems.push(format!(
                    "the last tick failed: {}",
                    t.error.as_deref().unwrap_or("unknown error")
                ));
            }
            problems.extend(t.problems.iter().map(|p| format!("the last tick: {p}")));
        }
        problems.extend(
            unreadable
                .iter()
                .map(|b| format!("{b}: fix the row (see schema.sql for the form)")),
        );
        Ok(Health {
            now,
            last_tick: last,
            last_success_at: last_good.as_ref().map(|t| t.started_at),
            last_success_age_seconds: age.map(|a| a.num_seconds()),
            deliveries,
            next_retry_at,
            skipped_last_24h: skipped,
            healthy: problems.is_empty(),
            problems,
        })
    }
}

/// One line of `config check`.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub check: String,
    pub ok: bool,
    pub detail: String,
}

fn check(name: &str, result: Result<String, String>) -> Check {
    match result {
        Ok(detail) => Check {
            check: name.into(),
            ok: true,
            detail,
        },
        Err(detail) => Check {
            check: name.into(),
            ok: false,
            detail,
        },
    }
}

/// Everything the next tick will need, tested without sending: the templates render,
/// the database opens, the email transport connects (and logs in), the webhook has its
/// secret.
pub fn config_checks(config: &Config, location: &Location) -> Vec<Check> {
    let mut results = vec![check("config", Ok("parsed and valid".into()))];
    let templates = std::cell::OnceCell::new();
    results.push(check(
        "templates",
        super::templates(&templates, config)
            .and_then(|t| t.check().map(|_| t.overridden().len()))
            .map(|n| format!("all kinds and languages render ({n} overridden)"))
            .map_err(|e| format!("{e:#}")),
    ));
    let database = match location {
        Location::Sqlite(path) if !path.exists() => {
            Err(format!("{} does not exist: run `notifyctl init`", path.display()))
        }
        _ => Service::open(
            config.clone(),
            Clock::system(),
            location.clone(),
            OpenMode::Existing,
        )
        .and_then(|mut s| s.schema_version())
        .map(|v| format!("{location} (schema {v})"))
        .map_err(|e| format!("{e:#}")),
    };
    results.push(check("database", database));
    let c = &config.email;
    let email = match c.transport {
        Transport::Smtp => smtp_settings(&c.smtp)
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
                    c.smtp.host,
                    c.smtp.port,
                    if c.smtp.username.is_empty() {
                        ""
                    } else {
                        " and logged in"
                    }
                )
            }),
        Transport::File => {
            let dir = super::outbox_dir(config, location);
            crate::files::private_dir(&dir)
                .map(|_| format!(".eml files go to {}", dir.display()))
                .map_err(|e| format!("{e:#}"))
        }
        Transport::Sendmail => Ok(format!("messages are piped to `{} -i -t`", c.sendmail_command)),
        Transport::Stdout => Ok("messages are printed on stdout".into()),
        Transport::None => Ok("no email (in-app only)".into()),
    };
    results.push(check("email", email));
    results.extend(secret_checks(config));
    if !config.metrics.textfile.is_empty() {
        let path = std::path::Path::new(&config.metrics.textfile);
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let usable = if dir.is_dir() {
            crate::files::private_dir(dir).map_err(|e| format!("{e:#}"))
        } else {
            Err(format!(
                "the directory {} does not exist (it should be node_exporter's --collector.textfile.directory)",
                dir.display()
            ))
        };
        results.push(check(
            "metrics",
            usable.map(|_| format!("written after each tick to {}", path.display())),
        ));
    }
    if !config.webhook.url.is_empty() {
        results.push(check(
            "webhook",
            WebhookSender::new(&config.webhook)
                .map(|_| format!("POST {} (signed)", config.webhook.url))
                .map_err(|e| format!("{e:#}")),
        ));
    }
    results
}

/// One line per secret setting: where it comes from (never its value), and a failure
/// when a file is set but unusable, or when a secret the settings need is missing.
fn secret_checks(config: &Config) -> Vec<Check> {
    use crate::config::VideoProvider;
    let needed_by = [
        (config.email.transport == Transport::Smtp && !config.email.smtp.username.is_empty())
            .then_some("[email.smtp] username is set"),
        (!config.webhook.url.is_empty()).then_some("[webhook] url is set"),
        (config.video.provider == VideoProvider::Whereby)
            .then_some("[video] provider = \"whereby\" (without it, events get Jitsi rooms)"),
    ];
    crate::secrets::settings(config)
        .iter()
        .zip(needed_by)
        .map(|(setting, needed)| {
            let name = format!("secret {}", setting.key);
            let result = match (setting.read(), needed) {
                (Err(e), _) => Err(format!("{e:#}")),
                (Ok(None), Some(why)) => Err(format!(
                    "not set, and needed: {why} ({}_file or {}_env)",
                    setting.key, setting.key
                )),
                (Ok(None), None) => Ok("not set (not needed)".to_string()),
                (Ok(Some(_)), _) => setting.describe(),
            };
            check(&name, result)
        })
        .collect()
}
