//! One file per command family: read the arguments, call the service, hand results to
//! `output`. Thin on purpose: no SQL and no business rule here.

pub mod config;
pub mod deliveries;
pub mod demo;
pub mod docs;
pub mod event;
pub mod explain;
pub mod import;
pub mod inbox;
pub mod init;
pub mod plan;
pub mod prefs;
pub mod prune;
pub mod reminders;
pub mod status;
pub mod tick;
pub mod user;

use crate::cli::Command;
use crate::Ctx;

pub fn dispatch(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Init => init::run(ctx),
        Command::User(cmd) => user::run(ctx, cmd),
        Command::Event(cmd) => event::run(ctx, cmd),
        Command::CheckReminders(args) => tick::run(ctx, &args),
        Command::Plan { next } => plan::run(ctx, &next),
        Command::Prefs(cmd) => prefs::run(ctx, cmd),
        Command::Explain { event, user } => explain::run(ctx, event, &user),
        Command::Reminders(cmd) => reminders::run(ctx, cmd),
        Command::Send {
            user,
            title,
            body,
            no_email,
        } => inbox::send(ctx, &user, &title, &body, no_email),
        Command::List {
            user,
            unread,
            kind,
            limit,
        } => inbox::list(ctx, &user, unread, kind, limit),
        Command::Show { id } => inbox::show(ctx, id),
        Command::MarkRead { ids, all, user } => inbox::mark_read(ctx, &ids, all, user.as_deref()),
        Command::MarkUnread { ids } => inbox::mark_unread(ctx, &ids),
        Command::UnreadCount { user } => inbox::unread_count(ctx, &user),
        Command::Delete { ids } => inbox::delete(ctx, &ids),
        Command::ClearRead { user } => inbox::clear_read(ctx, &user),
        Command::Deliveries(args) => deliveries::run(ctx, args),
        Command::Status { max_age } => status::run(ctx, max_age.as_deref()),
        Command::Import(cmd) => import::run(ctx, cmd),
        Command::Prune { older_than, dry_run } => prune::run(ctx, &older_than, dry_run),
        Command::Config(cmd) => config::run(ctx, cmd),
        Command::Demo { keep } => demo::run(ctx, keep),
        Command::Completions { shell } => docs::completions(shell, &ctx.out),
        Command::Man { dir } => docs::man(dir.as_deref(), &ctx.out),
    }
}

/// `{"id": N, ...}` for --json, else the human line.
pub(crate) fn created(ctx: &Ctx, value: serde_json::Value, human: impl AsRef<str>) {
    if ctx.out.json {
        ctx.out.json(&value);
    } else {
        ctx.out.line(human);
    }
}

/// Report a row that could not be read (the rest of the listing goes on).
pub(crate) fn report_broken(b: &crate::service::BrokenRow) {
    tracing::error!("skipping a broken row: {b}");
}
