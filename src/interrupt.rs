//! Stopping cleanly: the only place that handles termination signals (SIGTERM from
//! `systemctl stop` or a shutdown, SIGINT from Ctrl-C, SIGHUP; on Windows Ctrl-C and the
//! console closing).
//!
//! The first signal asks the work to stop at the next safe point: the tick finishes the
//! message in flight, gives back the deliveries it claimed, records itself as interrupted
//! and exits with the conventional code (128 + the signal number); an import rolls back.
//! A second signal stops at once (what is claimed then waits for its lease to lapse).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// The signals listened for, each with its flag; their number gives the exit code.
static FLAGS: OnceLock<Vec<(i32, Arc<AtomicBool>)>> = OnceLock::new();

/// Start listening for termination signals (idempotent). A failure to install is logged,
/// never fatal: the run then simply cannot stop cleanly.
pub fn install() {
    FLAGS.get_or_init(|| {
        let mut flags = Vec::new();
        for signal in SIGNALS {
            let flag = Arc::new(AtomicBool::new(false));
            match listen(signal, &flag) {
                Ok(()) => flags.push((signal, flag)),
                Err(e) => log::warn!("cannot listen for signal {signal} ({e}): a stop will not be clean"),
            }
        }
        flags
    });
}

#[cfg(unix)]
const SIGNALS: [i32; 3] = [
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGINT,
    signal_hook::consts::SIGHUP,
];

#[cfg(unix)]
fn listen(signal: i32, flag: &Arc<AtomicBool>) -> std::io::Result<()> {
    // Order matters: the conditional exit is checked first, so a second signal (the flag
    // already set) exits at once with 128 + n; the first only sets the flag.
    signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, Arc::clone(flag))?;
    signal_hook::flag::register(signal, Arc::clone(flag))?;
    Ok(())
}

/// Windows has no signals: Ctrl-C, Ctrl-Break and closing the console are one event,
/// reported like SIGINT.
#[cfg(not(unix))]
const SIGNALS: [i32; 1] = [2];

#[cfg(not(unix))]
fn listen(signal: i32, flag: &Arc<AtomicBool>) -> std::io::Result<()> {
    let flag = Arc::clone(flag);
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(128 + signal);
        }
    })
    .map_err(std::io::Error::other)
}

/// The signal that asked the work to stop, if one did.
pub fn requested() -> Option<i32> {
    FLAGS
        .get()?
        .iter()
        .find(|(_, flag)| flag.load(Ordering::SeqCst))
        .map(|(signal, _)| *signal)
}

/// The work stopped at a safe point because a signal asked it to.
#[derive(Debug)]
pub struct Interrupted(pub i32);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stopped by signal {}: the message in flight was finished and the rest given back for the next run",
            self.0
        )
    }
}

impl std::error::Error for Interrupted {}
