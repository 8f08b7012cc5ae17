//! Shell completions and the man page, generated from the CLI definition so they never
//! drift from it.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::output::Output;

pub fn completions(shell: clap_complete::Shell, out: &Output) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "notifyctl", &mut buf);
    out.raw(&String::from_utf8_lossy(&buf));
    Ok(())
}

pub fn man(out: &Output) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut buf)?;
    out.raw(&String::from_utf8_lossy(&buf));
    Ok(())
}
