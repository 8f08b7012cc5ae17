//! Logs go to stderr, one line per event worth knowing, with a level; as text for people
//! and cron mail, or as JSON lines for a log shipper (`--log-format json`).
//!
//! Default level: warnings, so a cron tick is silent unless something needs a look.
//! `-q` shows errors only, `-v` info, `-vv` debug; `NOTIFYCTL_LOG` (env_logger's
//! `target=level` list: `info`, `notifyctl=debug`, `warn,notifyctl::outbox=trace`)
//! overrides both. Dependencies' chatter stays at warn.
//!
//! Built on `tracing` + `tracing-subscriber` rather than formatted by hand: its JSON
//! formatter writes each event's fields (tick, delivery, event and user ids, channel) as
//! keys of their own. `NOTIFYCTL_LOG` is read by its `Targets` filter, which has exactly
//! env_logger's `target=level` syntax; `EnvFilter` would add span and field-value filters
//! that a cron job has no use for, and a regex engine with them (about 1 MB of binary).
//! Code still using the `log` macros (the crates we use: rustls, ureq, postgres; a few
//! modules) reaches the same output through the `tracing-log` bridge.
//!
//! Under systemd, whose journal reads a `<N>` syslog priority at the start of each line,
//! every line starts with its priority, so `journalctl -p err` finds the errors. That is
//! done only when stderr *is* the journal stream that `JOURNAL_STREAM` names (systemd.exec(5)
//! asks programs to check the device and inode, since the variable is inherited by children
//! whose stderr may go elsewhere).
//!
//! Every line is printable and one line ([`crate::output::one_line`]): messages quote data
//! (names, server answers) that must not reach a terminal or a journal raw. A stderr that
//! cannot be written loses the line, never panics.

use std::fmt;
use std::io::{self, Write};
use std::sync::OnceLock;

use clap::ValueEnum;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::cli::GlobalOpts;

/// The variable that overrides the log level (`target=level,...`, as env_logger).
pub const LOG_ENV: &str = "NOTIFYCTL_LOG";
/// The variable systemd sets to the journal stream's `device:inode` when stderr goes there.
pub const JOURNAL_ENV: &str = "JOURNAL_STREAM";

/// How log lines are written (`--log-format`, `NOTIFYCTL_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `notifyctl: warn: message key=value ...`
    #[default]
    Text,
    /// One JSON object a line: timestamp (RFC 3339, UTC), level, message, target, the
    /// event's fields, and the current span (e.g. `{"name":"tick","tick_id":7}`).
    Json,
}

/// How this run logs, for [`report_failure`] (set once by [`init`]).
static MODE: OnceLock<(LogFormat, bool)> = OnceLock::new();

pub fn init(g: &GlobalOpts) {
    let level = if g.quiet {
        Level::ERROR
    } else {
        match g.verbose {
            0 => Level::WARN,
            1 => Level::INFO,
            _ => Level::DEBUG,
        }
    };
    // Our own messages at the chosen level; dependencies' chatter stays at warn.
    let default = || {
        Targets::new()
            .with_default(Level::WARN)
            .with_target("notifyctl", level)
    };
    let mut bad_spec = None;
    let filter = match std::env::var(LOG_ENV) {
        Ok(spec) if !spec.trim().is_empty() => spec.trim().parse::<Targets>().unwrap_or_else(|e| {
            bad_spec = Some(format!("{LOG_ENV}: {e}; using the default level"));
            default()
        }),
        _ => default(),
    };
    let journal = stderr_is_journal(std::env::var(JOURNAL_ENV).ok().as_deref());
    let _ = MODE.set((g.log_format, journal));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(SafeStderr)
        // A failed write is SafeStderr's to swallow; the layer must not print about it.
        .log_internal_errors(false);
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match g.log_format {
        LogFormat::Text => registry
            .with(layer.event_format(Journald {
                prefix: journal,
                inner: TextLine,
            }))
            .try_init(),
        LogFormat::Json => {
            let json = tracing_subscriber::fmt::format()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false);
            registry
                .with(
                    layer
                        // Span fields must be recorded as JSON too, for the "span" key.
                        .fmt_fields(JsonFields::new())
                        .event_format(Journald {
                            prefix: journal,
                            inner: json,
                        }),
                )
                .try_init()
        }
    };
    if installed.is_ok() {
        if let Some(why) = bad_spec {
            tracing::warn!("{why}");
        }
    }
}

/// The program's last word when a command fails (`main.rs`): one line on stderr, never
/// filtered away, as a JSON error event in the JSON format (with its `exit_code`), else as
/// `notifyctl: error: ...` with the journald error priority when stderr is the journal.
pub fn report_failure(message: &str, exit_code: u8) {
    let (format, journal) = MODE.get().copied().unwrap_or_default();
    if format == LogFormat::Json && tracing::enabled!(Level::ERROR) {
        tracing::error!(exit_code, "{message}");
        return;
    }
    let prefix = if journal { "<3>" } else { "" };
    crate::output::stderr_line(&format!("{prefix}notifyctl: error: {message}"));
}

/// The journald priority of a level (sd-daemon(3): `<3>` error ... `<7>` debug).
pub fn journal_priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// True when `journal_stream` (`JOURNAL_STREAM`, `device:inode`) names our stderr.
pub fn stderr_is_journal(journal_stream: Option<&str>) -> bool {
    let Some((dev, ino)) = journal_stream.and_then(|v| v.trim().split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    stderr_identity() == Some((dev, ino))
}

#[cfg(unix)]
fn stderr_identity() -> Option<(u64, u64)> {
    // SAFETY: fstat only writes the struct we hand it; fd 2 may be closed (then it fails).
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    let rc = unsafe { libc::fstat(2, st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: fstat succeeded, so it filled the struct.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    Some((st.st_dev as u64, st.st_ino as u64))
}

#[cfg(not(unix))]
fn stderr_identity() -> Option<(u64, u64)> {
    None
}

/// Puts the journald priority in front of the line another formatter writes.
struct Journald<F> {
    prefix: bool,
    inner: F,
}

impl<S, N, F> FormatEvent<S, N> for Journald<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if self.prefix {
            write!(writer, "<{}>", journal_priority(event.metadata().level()))?;
        }
        self.inner.format_event(ctx, writer, event)
    }
}

/// Today's text line, `notifyctl: warn: ` and then the event's message and fields as
/// tracing-subscriber writes them (`message key=value ...`).
struct TextLine;

impl<S, N> FormatEvent<S, N> for TextLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Records bridged from `log` carry their level in the normalized metadata.
        let level = tracing_log::NormalizeEvent::normalized_metadata(event)
            .map(|m| *m.level())
            .unwrap_or(*event.metadata().level());
        write!(writer, "notifyctl: {}: ", level.as_str().to_ascii_lowercase())?;
        ctx.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// stderr, one printable line per event, whose write failures are dropped: the
/// formatter hands over each whole line in one write.
struct SafeStderr;

impl<'a> MakeWriter<'a> for SafeStderr {
    type Writer = SafeStderr;
    fn make_writer(&'a self) -> SafeStderr {
        SafeStderr
    }
}

impl Write for SafeStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (body, newline) = match text.strip_suffix('\n') {
            Some(body) => (body, true),
            None => (&*text, false),
        };
        let mut line = crate::output::one_line(body);
        if newline {
            line.push('\n');
        }
        let _ = io::stderr().lock().write_all(line.as_bytes());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_follow_syslog() {
        assert_eq!(journal_priority(&Level::ERROR), 3);
        assert_eq!(journal_priority(&Level::WARN), 4);
        assert_eq!(journal_priority(&Level::INFO), 6);
        assert_eq!(journal_priority(&Level::DEBUG), 7);
        assert_eq!(journal_priority(&Level::TRACE), 7);
    }

    #[test]
    fn a_journal_stream_that_is_not_our_stderr_is_ignored() {
        assert!(!stderr_is_journal(None));
        assert!(!stderr_is_journal(Some("")));
        assert!(!stderr_is_journal(Some("garbage")));
        assert!(!stderr_is_journal(Some("1:x")));
        // No real stream has inode 0.
        assert!(!stderr_is_journal(Some("0:0")));
    }
}
