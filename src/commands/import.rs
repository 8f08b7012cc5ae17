//! `import users FILE` and `import events FILE`: bulk loading from `.csv` (with a header
//! row) or `.jsonl` (one JSON object per line), all or nothing.
//!
//! Every row is checked, and every bad row is reported with its line and field; if any
//! row is bad nothing is written. The whole import is one transaction.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use crate::cli::ImportCmd;
use crate::commands::event::{self, parse_participant, resolve_end, EventSpec};
use crate::error::user_error;
use crate::input::{parse_time, parse_tz, validate_email};
use crate::messages::Locale;
use crate::notices::user_tz;
use crate::store::{self, NewEvent};
use crate::Ctx;

/// A row that cannot be imported: where and why.
struct BadRow {
    line: usize,
    field: Option<&'static str>,
    message: String,
}

impl BadRow {
    fn new(line: usize, field: &'static str, e: impl std::fmt::Display) -> BadRow {
        BadRow {
            line,
            field: Some(field),
            message: e.to_string(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserRow {
    email: String,
    name: String,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    locale: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventRow<P> {
    title: String,
    start: String,
    #[serde(default)]
    end: Option<String>,
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    video: Option<String>,
    #[serde(default)]
    participants: Option<P>,
}

/// Read every row of a .csv or .jsonl file, with its line number. Rows that do not even
/// parse are reported, not fatal, so the user sees all problems at once.
/// Parsed rows with their line numbers, and the rows that did not parse.
type Rows<T> = (Vec<(usize, T)>, Vec<BadRow>);

fn read_rows<T: DeserializeOwned>(path: &Path) -> anyhow::Result<Rows<T>> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let text = std::fs::read_to_string(path)
        .map_err(|e| user_error(format!("cannot read {}: {e}", path.display())))?;
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    match ext.as_str() {
        "csv" => {
            let mut reader = csv::ReaderBuilder::new()
                .trim(csv::Trim::All)
                .from_reader(text.as_bytes());
            for record in reader.deserialize::<T>() {
                match record {
                    Ok(r) => rows.push((rows.len() + bad.len() + 2, r)),
                    Err(e) => {
                        let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
                        let message = match e.kind() {
                            csv::ErrorKind::Deserialize { err, .. } => err.to_string(),
                            _ => e.to_string(),
                        };
                        bad.push(BadRow {
                            line,
                            field: None,
                            message,
                        });
                    }
                }
            }
        }
        "jsonl" | "ndjson" => {
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<T>(line) {
                    Ok(r) => rows.push((i + 1, r)),
                    Err(e) => bad.push(BadRow {
                        line: i + 1,
                        field: None,
                        message: e.to_string(),
                    }),
                }
            }
        }
        _ => {
            return Err(user_error(format!(
                "cannot import {}: use a .csv file with a header row or a .jsonl file",
                path.display()
            )))
        }
    }
    Ok((rows, bad))
}

fn progress(ctx: &Ctx, len: usize) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    if ctx.out.json || !std::io::stderr().is_terminal() || len < 200 {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    } else {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("importing {bar:40} {pos}/{len} rows") {
            bar.set_style(style);
        }
    }
    bar
}

fn fail(path: &Path, bad: &[BadRow]) -> anyhow::Error {
    for b in bad.iter().take(100) {
        match b.field {
            Some(f) => eprintln!(
                "notifyctl: {}: line {}, field {f}: {}",
                path.display(),
                b.line,
                b.message
            ),
            None => eprintln!("notifyctl: {}: line {}: {}", path.display(), b.line, b.message),
        }
    }
    if bad.len() > 100 {
        eprintln!("notifyctl: ... and {} more bad rows", bad.len() - 100);
    }
    user_error(format!(
        "{} bad row(s) in {} (listed above): nothing was imported",
        bad.len(),
        path.display()
    ))
}

pub fn run(ctx: &Ctx, cmd: ImportCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        ImportCmd::Users { file } => users(ctx, &file),
        ImportCmd::Events {
            file,
            notify,
            allow_overlap,
        } => {
            let ext = file
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("")
                .to_ascii_lowercase();
            // CSV holds participants in one column, `a@x.org:mentor;b@y.org`; JSON as an array.
            let (rows, bad) = if ext == "csv" {
                let (rows, bad) = read_rows::<EventRow<String>>(&file)?;
                let rows = rows
                    .into_iter()
                    .map(|(l, r)| {
                        let parts = r
                            .participants
                            .as_deref()
                            .unwrap_or("")
                            .split(';')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect::<Vec<_>>();
                        (
                            l,
                            EventRow {
                                title: r.title,
                                start: r.start,
                                end: r.end,
                                duration: r.duration,
                                timezone: r.timezone,
                                video: r.video,
                                participants: Some(parts),
                            },
                        )
                    })
                    .collect();
                (rows, bad)
            } else {
                read_rows::<EventRow<Vec<String>>>(&file)?
            };
            events(ctx, &file, rows, bad, notify, allow_overlap)
        }
    }
}

fn users(ctx: &Ctx, path: &Path) -> anyhow::Result<ExitCode> {
    let (rows, mut bad) = read_rows::<UserRow>(path)?;
    let mut seen = HashSet::new();
    let mut valid = Vec::new();
    for (line, r) in rows {
        let email = match validate_email(&r.email) {
            Ok(e) => e,
            Err(e) => {
                bad.push(BadRow::new(line, "email", e));
                continue;
            }
        };
        if !seen.insert(email.to_lowercase()) {
            bad.push(BadRow::new(
                line,
                "email",
                format!("{email} appears twice in the file"),
            ));
            continue;
        }
        if r.name.trim().is_empty() {
            bad.push(BadRow::new(line, "name", "empty"));
            continue;
        }
        let tz = match r
            .timezone
            .as_deref()
            .filter(|z| !z.is_empty())
            .map(parse_tz)
            .transpose()
        {
            Ok(tz) => tz.map(|t| t.name().to_string()),
            Err(e) => {
                bad.push(BadRow::new(line, "timezone", e));
                continue;
            }
        };
        let locale = match r
            .locale
            .as_deref()
            .filter(|l| !l.is_empty())
            .map(|l| l.parse::<Locale>())
            .transpose()
        {
            Ok(l) => l.map(|l| l.as_str().to_string()),
            Err(e) => {
                bad.push(BadRow::new(line, "locale", e));
                continue;
            }
        };
        valid.push((line, email, r.name.trim().to_string(), tz, locale));
    }
    if !bad.is_empty() {
        bad.sort_by_key(|b| b.line);
        return Err(fail(path, &bad));
    }
    let bar = progress(ctx, valid.len());
    let mut store = ctx.store()?;
    let ids = store.write(|tx| {
        let mut ids = Vec::new();
        let mut bad = Vec::new();
        for (line, email, name, tz, locale) in &valid {
            match store::insert_user(tx, email, name, tz.as_deref(), locale.as_deref(), true, ctx.now()) {
                Ok(id) => ids.push(id),
                Err(e) => bad.push(BadRow::new(*line, "email", e)),
            }
            bar.inc(1);
        }
        if bad.is_empty() {
            Ok(ids)
        } else {
            Err(fail(path, &bad))
        }
    })?;
    bar.finish_and_clear();
    report(ctx, "users", &ids)
}

fn events(
    ctx: &Ctx,
    path: &Path,
    rows: Vec<(usize, EventRow<Vec<String>>)>,
    mut bad: Vec<BadRow>,
    notify: bool,
    allow_overlap: bool,
) -> anyhow::Result<ExitCode> {
    let mut store = ctx.store()?;
    // Check what needs no write lock first, so a bad file costs no lock time.
    let mut specs = Vec::new();
    for (line, r) in rows {
        let participants: Vec<(String, String)> = r
            .participants
            .unwrap_or_default()
            .iter()
            .map(|p| parse_participant(p))
            .collect();
        if r.title.trim().is_empty() {
            bad.push(BadRow::new(line, "title", "empty"));
            continue;
        }
        let first = match participants.first().map(|(k, _)| store.find_user(k)).transpose() {
            Ok(u) => u,
            Err(e) => {
                bad.push(BadRow::new(line, "participants", e));
                continue;
            }
        };
        let tz = match r.timezone.as_deref().filter(|z| !z.is_empty()) {
            Some(z) => match parse_tz(z) {
                Ok(t) => t,
                Err(e) => {
                    bad.push(BadRow::new(line, "timezone", e));
                    continue;
                }
            },
            None => first
                .as_ref()
                .map(|u| user_tz(ctx, u))
                .unwrap_or_else(|| ctx.config.default_tz()),
        };
        let starts_at = match parse_time(&r.start, tz) {
            Ok(t) => t,
            Err(e) => {
                bad.push(BadRow::new(line, "start", e));
                continue;
            }
        };
        let field = if r.end.is_some() { "end" } else { "duration" };
        let ends_at = match resolve_end(starts_at, r.end.as_deref(), r.duration.as_deref(), tz) {
            Ok(t) => t,
            Err(e) => {
                bad.push(BadRow::new(line, field, e));
                continue;
            }
        };
        let title = r.title.trim().to_string();
        let video_arg = r.video.unwrap_or_else(|| "auto".into());
        let video_url = match crate::video::resolve(&ctx.config.video, &video_arg, &title, starts_at, ends_at)
        {
            Ok(v) => v,
            Err(e) => {
                bad.push(BadRow::new(line, "video", e));
                continue;
            }
        };
        specs.push((
            line,
            EventSpec {
                new: NewEvent {
                    title,
                    starts_at,
                    ends_at,
                    timezone: Some(tz.name().to_string()),
                    video_url,
                },
                participants,
            },
        ));
    }
    if !bad.is_empty() {
        bad.sort_by_key(|b| b.line);
        return Err(fail(path, &bad));
    }
    let bar = progress(ctx, specs.len());
    let ids = store
        .write(|tx| {
            let mut ids = Vec::new();
            let mut bad = Vec::new();
            for (line, spec) in &specs {
                match event::insert(tx, ctx, spec, allow_overlap, notify) {
                    Ok(e) => ids.push(e.id),
                    Err(e) => bad.push(BadRow::new(*line, "participants", format!("{e:#}"))),
                }
                bar.inc(1);
            }
            if bad.is_empty() {
                Ok(ids)
            } else {
                Err(fail(path, &bad))
            }
        })
        .with_context(|| format!("importing {}", path.display()))?;
    bar.finish_and_clear();
    report(ctx, "events", &ids)
}

fn report(ctx: &Ctx, what: &str, ids: &[i64]) -> anyhow::Result<ExitCode> {
    if ctx.out.json {
        ctx.out.json(&json!({"imported": ids.len(), "ids": ids}));
    } else {
        ctx.out.line(format!("imported {} {what}", ids.len()));
    }
    Ok(ExitCode::SUCCESS)
}
