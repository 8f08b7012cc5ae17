//! The use cases: what each command means, and the rules behind each guarantee, in one
//! place. Commands parse arguments, call one method here and print what it returns; the
//! service decides (with the pure planner in `reminders.rs`), and the store and channels
//! do the I/O.
//!
//! One file per use-case family: `users`, `booking` (add, assign, move, cancel, import
//! rows), `notices` (what each recipient gets, on which channels), `inbox`, `tick` (decide
//! and apply reminders, deliver the outbox, heartbeat), `delivery` (re-check and render a
//! claimed delivery, the channels' senders), `health` (`status` and `config check`),
//! `plan`, `import` (files into booking), `maintenance` (prune, re-queue), `monitor` (what
//! monitoring sees of a tick: heartbeat pings and the metrics file), `occurrences` (the
//! reminder candidates of recurring series), `explain` (every decision about one event and
//! recipient).

pub mod agenda;
pub mod booking;
pub mod delivery;
pub mod explain;
pub mod health;
pub mod import;
pub mod inbox;
pub mod maintenance;
pub mod monitor;
pub mod notices;
pub mod occurrences;
pub mod plan;
pub mod prefs;
pub mod report;
pub mod tick;
pub mod users;

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::clock::Clock;
use crate::config::Config;
use crate::messages::Templates;
use crate::model::{Locale, User};
use crate::store::{self, Location, OpenMode, OpenOptions, Store};

pub use crate::store::{
    BrokenRow, DeliveryCounts, EventFilter, InboxFilter, PruneCounts, SkippedCount, TickRecord, TickSummary,
};

/// The use cases over one opened database, with the settings and the clock.
pub struct Service {
    config: Config,
    clock: Clock,
    location: Location,
    store: Box<dyn Store>,
    templates: OnceCell<Templates>,
    /// Broken values met by the current command, reported once each.
    reporter: report::Reporter,
    /// What the last tick did, for the metrics file (`monitor.rs`).
    last_tick: Option<tick::TickFacts>,
}

impl Service {
    /// Open the database at `location`; with [`OpenMode::Create`] create or migrate it.
    /// A database with a clock of its own (PostgreSQL) sets the time: the system clock is
    /// shifted to it, so every host's tick reads the same time (`--now` still wins).
    pub fn open(config: Config, clock: Clock, location: Location, mode: OpenMode) -> anyhow::Result<Service> {
        let store = store::open(
            &location,
            OpenOptions {
                mode,
                busy_timeout: config.database.busy_timeout.std(),
            },
        )?;
        let clock = match store.clock_offset() {
            Some(offset) if !clock.is_frozen() => clock.shifted(offset),
            _ => clock,
        };
        Ok(Service {
            config,
            clock,
            location,
            store,
            templates: OnceCell::new(),
            reporter: report::Reporter::default(),
            last_tick: None,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    pub fn schema_version(&mut self) -> anyhow::Result<i64> {
        self.store.schema_version()
    }

    /// True when opening created notifyctl's schema in a PostgreSQL database.
    pub fn created_schema(&self) -> bool {
        self.store.created_schema()
    }

    /// The templates, compiled on first use: the idle tick never pays for them.
    pub fn templates(&self) -> anyhow::Result<&Templates> {
        templates(&self.templates, &self.config)
    }

    /// The `.eml` directory of the file transport: relative paths sit beside the SQLite
    /// file, or, on PostgreSQL, beside the config file (else in the current directory).
    pub fn outbox_dir(&self) -> PathBuf {
        outbox_dir(&self.config, &self.location)
    }
}

fn templates<'a>(cell: &'a OnceCell<Templates>, config: &Config) -> anyhow::Result<&'a Templates> {
    if let Some(t) = cell.get() {
        return Ok(t);
    }
    let dir = &config.templates.dir;
    // A broken override directory is a setting to fix (exit 2), not an internal failure.
    let t = Templates::new((!dir.is_empty()).then(|| Path::new(dir)))
        .map_err(|e| crate::error::user_error(format!("[templates] dir: {e:#}")))?;
    Ok(cell.get_or_init(|| t))
}

pub fn outbox_dir(config: &Config, location: &Location) -> PathBuf {
    let dir = &config.email.dir;
    if dir.is_absolute() {
        return dir.clone();
    }
    match (location, &config.source_dir) {
        (Location::Postgres(_), Some(config_dir)) => config_dir.join(dir),
        _ => location.base_dir().join(dir),
    }
}

/// The user's zone, else the default. A zone the database holds but this build does not
/// know falls back to the default; `zone_problem` says so for the report.
pub fn user_tz(config: &Config, user: &User) -> Tz {
    user.timezone
        .as_deref()
        .and_then(|z| z.parse().ok())
        .unwrap_or_else(|| config.default_tz())
}

/// A stored zone or locale this build cannot use, as a line for the report.
pub fn user_setting_problem(user: &User) -> Option<String> {
    let shown = |v: &str| crate::input::printable(v, 60);
    if let Some(z) = user.timezone.as_deref() {
        if z.parse::<Tz>().is_err() {
            return Some(format!(
                "users id {}, column timezone: unknown time zone, the default is used (value '{}')",
                user.id,
                shown(z)
            ));
        }
    }
    if let Some(l) = user.locale.as_deref() {
        if l.parse::<Locale>().is_err() {
            return Some(format!(
                "users id {}, column locale: unknown language, the default is used (value '{}')",
                user.id,
                shown(l)
            ));
        }
    }
    None
}

pub fn user_locale(config: &Config, user: &User) -> Locale {
    user.locale
        .as_deref()
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| config.default_locale())
}

/// An input field that cannot be used: which one, and why (import files report both).
#[derive(Debug)]
pub struct FieldError {
    pub field: &'static str,
    pub error: anyhow::Error,
}

impl FieldError {
    pub fn new(field: &'static str, error: anyhow::Error) -> FieldError {
        FieldError { field, error }
    }
}
