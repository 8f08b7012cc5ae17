//! `init`: create or migrate the database. Safe to run any number of times.

use serde_json::json;

use crate::store::Location;
use crate::Ctx;

pub fn run(ctx: &Ctx) -> anyhow::Result<()> {
    let existed = match &ctx.location {
        Location::Sqlite(path) => path.exists(),
    };
    let version = ctx.service_creating()?.schema_version()?;
    let location = ctx.location.to_string();
    if ctx.out.json {
        ctx.out
            .json(&json!({"database": location, "schema_version": version, "created": !existed}));
    } else if ctx.out.quiet {
        // `init -q` before every tick (the systemd unit's ExecStartPre) says nothing.
    } else if existed {
        ctx.out
            .line(format!("database {location} is ready (schema version {version})"));
    } else {
        ctx.out
            .line(format!("created database {location} (schema version {version})"));
    }
    Ok(())
}
