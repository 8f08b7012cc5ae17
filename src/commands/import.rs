//! `import users FILE` and `import events FILE [--notify] [--allow-overlap]`.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::ImportCmd;
use crate::error::user_error;
use crate::service::import::{EventImport, ImportRefused};
use crate::Ctx;

/// How many bad rows are listed before the rest are only counted.
const LISTED: usize = 100;

pub fn run(ctx: &Ctx, cmd: ImportCmd) -> anyhow::Result<()> {
    crate::interrupt::install();
    let mut service = ctx.service()?;
    let (what, result) = match cmd {
        ImportCmd::Users { file } => ("users", service.import_users(&file)),
        ImportCmd::Events {
            file,
            notify,
            allow_overlap,
        } => {
            let bar = progress_bar(ctx);
            let options = EventImport {
                notify,
                allow_overlap,
            };
            let result = service.import_events(&file, options, &mut |done, total| {
                if done == 0 {
                    bar.set_length(total as u64);
                }
                bar.set_position(done as u64);
            });
            bar.finish_and_clear();
            ("events", result)
        }
    };
    let ids = result.map_err(refused_rows)?;
    if ctx.out.json {
        // Serialized from the ids themselves: a `json!` value of a million ids held 32 MB.
        #[derive(serde::Serialize)]
        struct Imported<'a> {
            imported: usize,
            ids: &'a [i64],
        }
        ctx.out.json(&Imported {
            imported: ids.len(),
            ids: &ids,
        });
    } else {
        ctx.out.line(format!("imported {} {what}", ids.len()));
    }
    Ok(())
}

/// A bar on a terminal only: cron logs and --json stay clean.
fn progress_bar(ctx: &Ctx) -> ProgressBar {
    let bar = ProgressBar::new(0);
    if ctx.out.json || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    } else {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("importing {bar:40} {pos}/{len} rows") {
            bar.set_style(style);
        }
    }
    bar
}

/// List the bad rows on stderr, one line each, and turn the refusal into a user error.
fn refused_rows(e: anyhow::Error) -> anyhow::Error {
    let Some(refused) = e.downcast_ref::<ImportRefused>() else {
        return e;
    };
    let path = refused.path.display();
    let mut err = std::io::stderr().lock();
    for b in refused.rows.iter().take(LISTED) {
        let _ = match b.field {
            Some(f) => writeln!(
                err,
                "notifyctl: {path}: line {}, field {f}: {}",
                b.line, b.message
            ),
            None => writeln!(err, "notifyctl: {path}: line {}: {}", b.line, b.message),
        };
    }
    if refused.total > LISTED {
        let _ = writeln!(err, "notifyctl: ... and {} more bad rows", refused.total - LISTED);
    }
    user_error(format!(
        "{} bad row(s) in {} (listed above): nothing was imported",
        refused.total, path
    ))
}
