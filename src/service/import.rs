//! `import users FILE` and `import events FILE`: bulk loading from `.csv` (with a header
//! row) or `.jsonl` (one JSON object per line), all or nothing.
//!
//! Each row goes through the same validation as `user add` / `event add`
//! (`users::validate`, `Service::resolve_event`) and the same write path
//! (`Service::add_events`). Every bad row is reported with its line and field; if any row
//! is bad nothing is written. The whole import is one transaction.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::booking::{EventDraft, RejectedRows};
use super::users::{validate, UserInput};
use super::Service;
use crate::error::user_error;
use crate::store::{self, NewUser};

/// A row that cannot be imported: where and why.
#[derive(Debug)]
pub struct BadRow {
    pub line: usize,
    pub field: Option<&'static str>,
    pub message: String,
}

impl BadRow {
    fn new(line: usize, field: &'static str, e: impl fmt::Display) -> BadRow {
        BadRow {
            line,
            field: Some(field),
            message: e.to_string(),
        }
    }
}

/// An import refused because of bad rows; nothing was written.
#[derive(Debug)]
pub struct ImportRefused {
    pub path: PathBuf,
    /// Sorted by line.
    pub rows: Vec<BadRow>,
}

impl fmt::Display for ImportRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bad row(s) in {}: nothing was imported",
            self.rows.len(),
            self.path.display()
        )
    }
}

impl std::error::Error for ImportRefused {}

fn refused(path: &Path, mut rows: Vec<BadRow>) -> anyhow::Error {
    rows.sort_by_key(|b| b.line);
    // A user can fix it: exit 2, like any bad input.
    anyhow::Error::new(ImportRefused {
        path: path.to_path_buf(),
        rows,
    })
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

/// Parsed rows with their line numbers, and the rows that did not parse.
type Rows<T> = (Vec<(usize, T)>, Vec<BadRow>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Jsonl,
}

fn format_of(path: &Path) -> anyhow::Result<Format> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "csv" => Ok(Format::Csv),
        "jsonl" | "ndjson" => Ok(Format::Jsonl),
        _ => Err(user_error(format!(
            "cannot import {}: use a .csv file with a header row or a .jsonl file",
            path.display()
        ))),
    }
}

/// Read every row of a .csv or .jsonl file, with its line number. Rows that do not even
/// parse are reported, not fatal, so the user sees all problems at once.
fn read_rows<T: DeserializeOwned>(path: &Path, format: Format) -> anyhow::Result<Rows<T>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| user_error(format!("cannot read {}: {e}", path.display())))?;
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    match format {
        Format::Csv => {
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
        Format::Jsonl => {
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
    }
    Ok((rows, bad))
}

impl Service {
    /// Import users; returns their ids.
    pub fn import_users(&mut self, path: &Path) -> anyhow::Result<Vec<i64>> {
        let (rows, mut bad) = read_rows::<UserRow>(path, format_of(path)?)?;
        let mut seen = HashSet::new();
        let mut valid: Vec<(usize, NewUser)> = Vec::new();
        for (line, r) in rows {
            let input = UserInput {
                email: r.email,
                name: r.name,
                timezone: r.timezone,
                locale: r.locale,
                email_enabled: true,
            };
            let user = match validate(&input) {
                Ok(u) => u,
                Err(f) => {
                    bad.push(BadRow::new(line, f.field, f.error));
                    continue;
                }
            };
            if !seen.insert(user.email.to_lowercase()) {
                bad.push(BadRow::new(
                    line,
                    "email",
                    format!("{} appears twice in the file", user.email),
                ));
                continue;
            }
            valid.push((line, user));
        }
        if !bad.is_empty() {
            return Err(refused(path, bad));
        }
        let now = self.now();
        let result = store::write(&mut *self.store, |ops| {
            let mut ids = Vec::with_capacity(valid.len());
            let mut rejected = Vec::new();
            for (i, (_, user)) in valid.iter().enumerate() {
                match ops.insert_user(user, now) {
                    Ok(id) => ids.push(id),
                    Err(e) if e.is::<crate::error::UserError>() => rejected.push((i, e)),
                    Err(e) => return Err(e),
                }
            }
            if rejected.is_empty() {
                Ok(ids)
            } else {
                Err(anyhow::Error::new(RejectedRows(rejected)))
            }
        });
        result.map_err(|e| match e.downcast::<RejectedRows>() {
            Ok(rows) => refused(
                path,
                rows.0
                    .into_iter()
                    .map(|(i, e)| BadRow::new(valid[i].0, "email", e))
                    .collect(),
            ),
            Err(other) => other,
        })
    }

    /// Import events (and, with `notify`, send `assigned` notices); returns their ids.
    pub fn import_events(
        &mut self,
        path: &Path,
        notify: bool,
        allow_overlap: bool,
    ) -> anyhow::Result<Vec<i64>> {
        let format = format_of(path)?;
        // CSV holds participants in one column, `a@x.org:mentor;b@y.org`; JSON as an array.
        let (rows, mut bad): Rows<EventRow<Vec<String>>> = match format {
            Format::Csv => {
                let (rows, bad) = read_rows::<EventRow<String>>(path, format)?;
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
            }
            Format::Jsonl => read_rows::<EventRow<Vec<String>>>(path, format)?,
        };
        // Check what needs no write lock first, so a bad file costs no lock time.
        let mut specs = Vec::new();
        let mut lines = Vec::new();
        for (line, r) in rows {
            let draft = EventDraft {
                title: r.title,
                start: r.start,
                end: r.end,
                duration: r.duration,
                timezone: r.timezone,
                video: r.video.unwrap_or_else(|| "auto".into()),
                participants: r.participants.unwrap_or_default(),
            };
            match self.resolve_event(&draft) {
                Ok(spec) => {
                    specs.push(spec);
                    lines.push(line);
                }
                Err(f) => bad.push(BadRow::new(line, f.field, f.error)),
            }
        }
        if !bad.is_empty() {
            return Err(refused(path, bad));
        }
        match self.add_events(&specs, allow_overlap, notify) {
            Ok(events) => Ok(events.into_iter().map(|e| e.id).collect()),
            Err(e) => match e.downcast::<RejectedRows>() {
                Ok(rows) => Err(refused(
                    path,
                    rows.0
                        .into_iter()
                        .map(|(i, e)| BadRow::new(lines[i], "participants", format!("{e:#}")))
                        .collect(),
                )),
                Err(other) => Err(other),
            },
        }
    }
}
