//! Logs go to stderr, one line per event worth knowing, with a level.
//!
//! Default level: warnings, so a cron tick is silent unless something needs a look.
//! `-q` shows errors only, `-v` info, `-vv` debug; `NOTIFYCTL_LOG` (env_logger syntax,
//! e.g. `info` or `notifyctl=debug`) overrides both.

use std::io::Write;

use crate::cli::GlobalOpts;

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
                record.args()
            )
        })
        .target(env_logger::Target::Stderr);
    if let Ok(spec) = std::env::var("NOTIFYCTL_LOG") {
        builder.parse_filters(&spec);
    }
    let _ = builder.try_init();
}
