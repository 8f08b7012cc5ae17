//! The `notifyctl` executable: parse, run, report. Everything else lives in the library.
//! Nothing here may panic on a failed write: stderr goes through `output::stderr_line`
//! (by way of `logging::report_failure`).

use std::io::ErrorKind;
use std::process::ExitCode;

use clap::Parser;
use notifyctl::error::{clap_exit_code, classify, exit_code, OutputFailed};

fn main() -> ExitCode {
    let cli = match notifyctl::cli::Cli::try_parse() {
        Ok(cli) => cli,
        // --help, --version (stdout, exit 0) and usage errors (stderr, exit 2), printed by
        // clap; help lost to a failed stdout is a failure like any other lost output.
        Err(e) => {
            return match e.print() {
                Err(io) if !e.use_stderr() && io.kind() != ErrorKind::BrokenPipe => {
                    report(OutputFailed(io).into())
                }
                _ => clap_exit_code(&e),
            };
        }
    };
    notifyctl::logging::init(&cli.global);
    match notifyctl::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report(err),
    }
}

/// One line: the user-facing message, then its causes, so a cron mail says it all (in the
/// log format, with the journal's error priority under systemd: `logging.rs`).
fn report(err: anyhow::Error) -> ExitCode {
    let causes: Vec<String> = err.chain().map(|c| c.to_string()).collect();
    notifyctl::logging::report_failure(&causes.join(": "), classify(&err));
    exit_code(&err)
}
