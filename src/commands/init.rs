//! `init`: create or migrate the database. Safe to run any number of times.

use serde_json::json;

use crate::store::Location;
use crate::Ctx;

pub fn run(ctx: &Ctx) -> anyhow::Result<()> {
    // SQLite: the file; PostgreSQL: the schema, which the store knows whether it created
    // (under its migration lock, so of several hosts running `init` at once, one says so).
    let file_existed = match &ctx.location {
        Location::Sqlite(path) => Some(path.exists()),
        Location::Postgres(_) => None,
    };
    let mut service = ctx.service_creating()?;
    let existed = file_existed.unwrap_or(!service.created_schema());
    let version = service.schema_version()?;
    let location = ctx.location.to_string();
    if ctx.out.json {
        ctx.out
            .json(&json!({"database": location, "schema_version": version, "created": !existed}));
    } else if ctx.out.quiet {
        // `init -q` before every tick (the systemd unit's ExecStartPre) says nothing.
    } else if existed {
        ctx.out
            .line(format!("database {location} is ready (schema version {version})"));
    } else if file_existed.is_none() {
        ctx.out.line(format!(
            "created the notifyctl schema in {location} (schema version {version})"
        ));
    } else {
        ctx.out
            .line(format!("created database {location} (schema version {version})"));
    }
    Ok(())
}
