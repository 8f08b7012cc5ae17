//! Shell completions and the man pages, generated from the CLI definition so they never
//! drift from it.
//!
//! `man` prints notifyctl(1); `man --dir DIR` writes it and one page per subcommand
//! (notifyctl-init(1), notifyctl-user-add(1), ...), the pages notifyctl(1) refers to. The
//! ENVIRONMENT section is built from the options' `env` names and the config's default
//! secret variables, EXIT STATUS from `error::EXIT_CODES`: neither can go stale.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::CommandFactory;
use clap_mangen::roff::{bold, roman, Roff};

use crate::cli::Cli;
use crate::config::Config;
use crate::output::Output;

pub fn completions(shell: clap_complete::Shell, out: &Output) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "notifyctl", &mut buf);
    out.raw(&String::from_utf8_lossy(&buf));
    Ok(())
}

pub fn man(dir: Option<&Path>, out: &Output) -> anyhow::Result<()> {
    let root = man_command();
    let Some(dir) = dir else {
        out.raw(&render_page(&root, true)?);
        return Ok(());
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    write_pages(&root, true, dir, &mut written)?;
    if out.json {
        out.json(&written);
    } else {
        for path in &written {
            out.line(path.display().to_string());
        }
    }
    Ok(())
}

/// The CLI as the pages describe it: built (so subcommands carry their full names, e.g.
/// `notifyctl-user-add`), without clap's `help` subcommands, which get no page.
fn man_command() -> clap::Command {
    fn no_help(cmd: clap::Command) -> clap::Command {
        cmd.disable_help_subcommand(true).mut_subcommands(no_help)
    }
    let mut cmd = no_help(Cli::command());
    cmd.build();
    cmd
}

fn write_pages(
    cmd: &clap::Command,
    is_root: bool,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    let name = cmd.get_display_name().unwrap_or_else(|| cmd.get_name());
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, render_page(cmd, is_root)?)
        .with_context(|| format!("writing {}", path.display()))?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, false, dir, written)?;
    }
    Ok(())
}

/// One page: clap_mangen's sections, then EXIT STATUS, and on notifyctl(1) ENVIRONMENT;
/// subcommand pages point back to notifyctl(1).
fn render_page(cmd: &clap::Command, is_root: bool) -> anyhow::Result<String> {
    let mut buf = Vec::new();
    let source = format!("notifyctl {}", env!("CARGO_PKG_VERSION"));
    clap_mangen::Man::new(cmd.clone())
        .source(source)
        .render(&mut buf)?;
    let mut roff = Roff::new();
    roff.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in crate::error::EXIT_CODES {
        roff.control("TP", [])
            .text([bold(code.to_string())])
            .text([roman(*meaning)]);
    }
    if is_root {
        roff.control("SH", ["ENVIRONMENT"]);
        for (name, meaning) in environment(cmd) {
            roff.control("TP", []).text([bold(name)]).text([roman(meaning)]);
        }
    } else {
        roff.control("SH", ["SEE ALSO"]);
        roff.text([
            bold("notifyctl"),
            roman("(1), for the environment variables and the guide"),
        ]);
    }
    let mut page = String::from_utf8(buf).context("man page is UTF-8")?;
    page.push_str(&roff.to_roff());
    Ok(page)
}

/// Every variable notifyctl reads, with what it means.
fn environment(cmd: &clap::Command) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = cmd
        .get_arguments()
        .filter_map(|arg| {
            let env = arg.get_env()?.to_string_lossy().into_owned();
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            let flag = arg
                .get_long()
                .map(|l| format!("Same as --{l}: "))
                .unwrap_or_default();
            Some((env, format!("{flag}{help}.")))
        })
        .collect();
    vars.push((
        crate::logging::LOG_ENV.to_string(),
        "Log filter, a list of target=level as for env_logger (e.g. info, notifyctl=debug, warn,notifyctl::outbox=trace); overrides -q and -v. Logs go to stderr."
            .to_string(),
    ));
    vars.push((
        crate::logging::JOURNAL_ENV.to_string(),
        "Set by systemd when stderr goes to the journal: each log line then starts with its syslog priority (<3> error, <4> warning, <6> info, <7> debug), so journalctl -p err finds the errors.".to_string(),
    ));
    vars.push((
        "CREDENTIALS_DIRECTORY".to_string(),
        "Set by systemd for a unit with LoadCredential=; a *_file setting may name ${CREDENTIALS_DIRECTORY}/NAME (any ${VAR} is replaced in those paths).".to_string(),
    ));
    let defaults = Config::default();
    vars.push((
        defaults.email.smtp.password_env,
        "The SMTP password, when [email.smtp] username is set and password_file is not. The config names the variable (password_env); this is the default name.".into(),
    ));
    vars.push((
        defaults.webhook.secret_env,
        "The webhook signing secret, when [webhook] url is set (secret_env; default name).".into(),
    ));
    vars.push((
        defaults.video.whereby_api_key_env,
        "The Whereby API key, when [video] provider = \"whereby\" (whereby_api_key_env; default name)."
            .into(),
    ));
    vars
}
