//! notifyctl as a library: `run` turns a parsed command line into work.
//!
//! A command flows one way: parse → load config → open store → run command → print.
//! This file builds the [`Ctx`] every command receives and dispatches; the work lives in
//! `commands/`, the decisions in `reminders.rs` and `outbox.rs`, the SQL in `store/`.

pub mod channels;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod error;
pub mod fsperm;
pub mod input;
pub mod logging;
pub mod messages;
pub mod model;
pub mod notices;
pub mod outbox;
pub mod output;
pub mod reminders;
pub mod store;
pub mod video;

use std::cell::OnceCell;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use crate::cli::{Cli, Command};
use crate::clock::Clock;
use crate::config::Config;
use crate::error::user_error;
use crate::messages::Templates;
use crate::output::Output;
use crate::store::{OpenMode, Store};

/// What every command gets: settings, the clock, the output, and the database location.
pub struct Ctx {
    pub config: Config,
    pub db_path: PathBuf,
    pub clock: Clock,
    pub out: Output,
    templates: OnceCell<Templates>,
}

impl Ctx {
    pub fn new(config: Config, db_path: PathBuf, clock: Clock, out: Output) -> Ctx {
        Ctx {
            config,
            db_path,
            clock,
            out,
            templates: OnceCell::new(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Open the existing database (every command but `init` and `demo`).
    pub fn store(&self) -> anyhow::Result<Store> {
        Store::open(
            &self.db_path,
            OpenMode::Existing,
            self.config.database.busy_timeout.std(),
        )
    }

    pub fn open_store(&self, mode: OpenMode) -> anyhow::Result<Store> {
        Store::open(&self.db_path, mode, self.config.database.busy_timeout.std())
    }

    /// The templates, built on first use: the idle tick never pays for them.
    pub fn templates(&self) -> anyhow::Result<&Templates> {
        if let Some(t) = self.templates.get() {
            return Ok(t);
        }
        let dir = &self.config.templates.dir;
        let t = Templates::new((!dir.is_empty()).then(|| Path::new(dir)))?;
        Ok(self.templates.get_or_init(|| t))
    }

    /// The `.eml` directory of the file transport: relative paths sit beside the database.
    pub fn outbox_dir(&self) -> PathBuf {
        let dir = &self.config.email.dir;
        if dir.is_absolute() {
            dir.clone()
        } else {
            self.db_path.parent().unwrap_or(Path::new("")).join(dir)
        }
    }
}

/// Run a parsed command line; the exit code for success paths (health checks may fail).
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
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
    let db_path = g.db.clone().unwrap_or_else(|| config.database.path.clone());
    let ctx = Ctx::new(config, db_path, clock, out);
    let result = commands::dispatch(&ctx, cli.command);
    // Output lost to a failed stdout write is a failure too (a closed pipe is not).
    ctx.out.finish(result)
}

fn parse_now(s: &str) -> anyhow::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            user_error(format!(
                "invalid --now / NOTIFYCTL_NOW '{s}': use RFC 3339 with an offset, like 2030-03-10T09:00:00Z"
            ))
        })
}
