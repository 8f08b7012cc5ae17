//! `init`: create or migrate the database. Safe to run any number of times.

use std::process::ExitCode;

use serde_json::json;

use crate::store::{OpenMode, SCHEMA_VERSION};
use crate::Ctx;

pub fn run(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let existed = ctx.db_path.exists();
    let store = ctx.open_store(OpenMode::Create)?;
    let version = store.schema_version()?;
    let path = ctx.db_path.display().to_string();
    if ctx.out.json {
        ctx.out
            .json(&json!({"database": path, "schema_version": version, "created": !existed}));
    } else if existed {
        ctx.out.line(format!(
            "database {path} is ready (schema version {SCHEMA_VERSION})"
        ));
    } else {
        ctx.out.line(format!(
            "created database {path} (schema version {SCHEMA_VERSION})"
        ));
    }
    Ok(ExitCode::SUCCESS)
}
