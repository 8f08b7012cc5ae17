//! `import users FILE` and `import events FILE [--notify] [--allow-overlap]`.

use std::io::Write;

use serde_json::json;

use crate::cli::ImportCmd;
use crate::error::user_error;
use crate::service::import::ImportRefused;
use crate::Ctx;

/// How many bad rows are listed before the rest are only counted.
const LISTED: usize = 100;

pub fn run(ctx: &Ctx, cmd: ImportCmd) -> anyhow::Result<()> {
    let mut service = ctx.service()?;
    let (what, result) = match cmd {
        ImportCmd::Users { file } => ("users", service.import_users(&file)),
        ImportCmd::Events {
            file,
            notify,
            allow_overlap,
        } => ("events", service.import_events(&file, notify, allow_overlap)),
    };
    let ids = result.map_err(refused_rows)?;
    if ctx.out.json {
        ctx.out.json(&json!({"imported": ids.len(), "ids": ids}));
    } else {
        ctx.out.line(format!("imported {} {what}", ids.len()));
    }
    Ok(())
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
    if refused.rows.len() > LISTED {
        let _ = writeln!(
            err,
            "notifyctl: ... and {} more bad rows",
            refused.rows.len() - LISTED
        );
    }
    user_error(format!(
        "{} bad row(s) in {} (listed above): nothing was imported",
        refused.rows.len(),
        path
    ))
}
