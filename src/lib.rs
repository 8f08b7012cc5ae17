//! notifyctl as a library: `run` turns a parsed command line into work.
//!
//! A command flows one way: CLI → command → service → store / channels → messages →
//! output. This file builds the [`Ctx`] every command receives (settings, clock, output,
//! where the database is) and dispatches; the use cases live in `service/`, the pure
//! decisions in `reminders.rs`, the delivery loop in `outbox.rs`, the SQL in `store/`.

// Writing goes through output.rs (stdout) and output::stderr_line (stderr): the print
// macros panic when the write fails.
#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr))]

pub mod channels;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod error;
pub mod files;
pub mod fsperm;
pub mod heartbeat;
pub mod input;
pub mod interrupt;
pub mod logging;
pub mod messages;
pub mod metrics;
pub mod model;
pub mod outbox;
pub mod output;
pub mod recurrence;
pub mod reminders;
pub mod secrets;
pub mod service;
pub mod store;
pub mod video;

use chrono::{DateTime, Utc};

use crate::cli::{Cli, Command};
use crate::clock::Clock;
use crate::config::Config;
use crate::error::user_error;
use crate::output::Output;
use crate::service::Service;
use crate::store::{Location, OpenMode};

/// What every command gets: settings, the clock, the output, and where the data lives.
pub struct Ctx {
    pub config: Config,
    pub location: Location,
    pub clock: Clock,
    pub out: Output,
}

impl Ctx {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The use cases over the existing database (every command but `init` and `demo`).
    pub fn service(&self) -> anyhow::Result<Service> {
        Service::open(
            self.config.clone(),
            self.clock,
            self.location.clone(),
            OpenMode::Existing,
        )
    }

    /// The use cases over a database created or migrated first.
    pub fn service_creating(&self) -> anyhow::Result<Service> {
        Service::open(
            self.config.clone(),
            self.clock,
            self.location.clone(),
            OpenMode::Create,
        )
    }
}

/// Run a parsed command line. Errors carry their exit code (`error::exit_code`).
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let g = &cli.global;
    let out = Output::new(g.json).quiet(g.quiet);
    // Commands that need neither config nor database.
    match &cli.command {
        Command::Completions { shell } => {
            let result = commands::docs::completions(*shell, &out);
            return out.finish(result);
        }
        Command::Man { dir } => {
            let result = commands::docs::man(dir.as_deref(), &out);
            return out.finish(result);
        }
        _ => {}
    }
    let clock = match &g.now {
        Some(s) => Clock::frozen(parse_now(s)?),
        None => Clock::system(),
    };
    let config = Config::load(g.config.as_deref())?;
    let location = match &g.db {
        Some(db) => Location::parse(db),
        None if !config.database.url.is_empty() => Location::Postgres(config.database.url.clone()),
        None => Location::Sqlite(config.database.path.clone()),
    };
    let ctx = Ctx {
        config,
        location,
        clock,
        out,
    };
    let result = commands::dispatch(&ctx, cli.command);
    // Output lost to a failed stdout write is a failure too (a closed pipe is not).
    ctx.out.finish(result)
}

fn parse_now(s: &str) -> anyhow::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            user_error(format!(
                "invalid --now / NOTIFYCTL_NOW '{}': use RFC 3339 with an offset, like 2030-03-10T09:00:00Z",
                input::printable(s, 60)
            ))
        })
}
