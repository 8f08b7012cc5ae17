//! Logs go to stderr, one line per event worth knowing, with a level.
//!
//! Default level: warnings, so a cron tick is silent unless something needs a look.
//! `-q` shows errors only, `-v` info, `-vv` debug; `NOTIFYCTL_LOG` (env_logger syntax,
//! e.g. `info` or `notifyctl=debug`) overrides both.
//!
//! A line is made printable (`output::one_line`): log messages quote data (names, server
//! answers) that must not reach a terminal raw. env_logger's stderr writer ignores write
//! failures, so `2>/dev/full` cannot make a log line panic.

use std::io::Write;

use crate::cli::GlobalOpts;

/// The variable that overrides the log level (env_logger filter syntax).
pub const LOG_ENV: &str = "NOTIFYCTL_LOG";

pub fn init(g: &GlobalOpts) {
    let level = if g.quiet {
        log::LevelFilter::Error
    } else {
        match g.verbose {
            0 => log::LevelFilter::Warn,
            1 => log::LevelFilter::Info,
            _ => log::LevelFilter::Debug,
        }
    };
    let mut builder = env_logger::Builder::new();
    builder
        .filter_level(log::LevelFilter::Warn)
        // Our own messages at the chosen level; dependencies' chatter stays at warn.
        .filter_module("notifyctl", level)
        .format(|buf, record| {
            writeln!(
                buf,
                "notifyctl: {}: {}",
                record.level().as_str().to_lowercase(),
                crate::output::one_line(&record.args().to_string())
            )
        })
        .target(env_logger::Target::Stderr);
    if let Ok(spec) = std::env::var(LOG_ENV) {
        builder.parse_filters(&spec);
    }
    let _ = builder.try_init();
}
