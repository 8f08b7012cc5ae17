//! The `notifyctl` executable: parse, run, report. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = notifyctl::cli::Cli::parse();
    notifyctl::logging::init(&cli.global);
    match notifyctl::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line: the user-facing message, then its causes, so a cron mail says it all.
            let causes: Vec<String> = err.chain().map(|c| c.to_string()).collect();
            eprintln!("notifyctl: error: {}", causes.join(": "));
            notifyctl::error::exit_code(&err)
        }
    }
}
