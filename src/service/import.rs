//! `import users FILE` and `import events FILE`: bulk loading from `.csv` (with a header
//! row) or `.jsonl` (one JSON object per line), all or nothing.
//!
//! Each row goes through the same checks as `user add` / `event add` (`users::validate`,
//! `Service::resolve_event`) and the same write (`booking::insert`). Events are read in two
//! streaming passes, so memory stays flat whatever the file's size:
//! 1. every row is checked without the write lock (fields, times, zones, participants);
//! 2. in one write transaction the rows are written in order, each with the double-booking
//!    check (against the database and the rows before it), and every row that cannot be
//!    written is noted; any bad row in either pass means nothing is committed.
//!
//! Pass 2 first runs with the backend's double-booking index deferred where it can
//! (`EventOps::defer_overlap_index`, SQLite): rows are checked against the bookings made
//! before the import as they are written, against one another in one sorted sweep at the
//! end, and the index is filled by participant. When that run would refuse a row it is
//! rolled back and the file written again row by row, as described above, so a refused
//! file reports the same rows and the same conflicting events either way.
//!
//! Rows are checked in pass 2 even when pass 1 found problems, so one run reports every
//! bad row, double bookings included. Video meetings (Whereby) are created only when
//! nothing was wrong, before the write lock and several at a time, and deleted again if the
//! write is refused after all.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::booking::{insert, EventDraft, ResolvedEvent, UserCache};
use super::notices::Notifier;
use super::users::{validate, UserInput};
use super::Service;
use crate::config::VideoProvider;
use crate::error::{user_error, UserError};
use crate::input::printable;
use crate::store::{self, NewUser};
use crate::video::{self, Link, VideoRequest};

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
            message: one_line(&e.to_string()),
        }
    }

    fn row(line: usize, e: impl fmt::Display) -> BadRow {
        BadRow {
            line,
            field: None,
            message: one_line(&e.to_string()),
        }
    }
}

fn one_line(s: &str) -> String {
    printable(&s.replace(['\n', '\r'], " "), 300)
}

/// An import refused because of bad rows; nothing was written.
#[derive(Debug)]
pub struct ImportRefused {
    pub path: PathBuf,
    /// The first bad rows, by line.
    pub rows: Vec<BadRow>,
    /// How many rows were bad in all.
    pub total: usize,
}

impl fmt::Display for ImportRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bad row(s) in {}: nothing was imported",
            self.total,
            self.path.display()
        )
    }
}

impl std::error::Error for ImportRefused {}

/// The bad rows found so far: the first few kept for the report, all counted.
#[derive(Debug, Default)]
struct Problems {
    rows: Vec<BadRow>,
    total: usize,
    lines: HashSet<usize>,
}

/// Bad rows kept for the report (the command lists the first hundred).
const KEPT: usize = 1000;

impl Problems {
    fn push(&mut self, b: BadRow) {
        self.total += 1;
        self.lines.insert(b.line);
        if self.rows.len() < KEPT {
            self.rows.push(b);
        }
    }

    fn into_error(mut self, path: &Path) -> anyhow::Error {
        self.rows.sort_by_key(|b| b.line);
        anyhow::Error::new(ImportRefused {
            path: path.to_path_buf(),
            rows: self.rows,
            total: self.total,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Reading rows

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

/// A field's value as the file gives it.
#[derive(Debug, Clone)]
enum Value {
    Text(String),
    List(Vec<String>),
}

/// One row: its first line in the file and its fields by name.
#[derive(Debug)]
struct Row {
    line: usize,
    fields: HashMap<String, Value>,
}

/// What a kind of file may hold.
struct Columns {
    known: &'static [&'static str],
    required: &'static [&'static str],
    /// Held as lists: a JSON array, or in CSV one cell separated by `;`.
    lists: &'static [&'static str],
}

const USER_COLUMNS: Columns = Columns {
    known: &["email", "name", "timezone", "locale"],
    required: &["email", "name"],
    lists: &[],
};

const EVENT_COLUMNS: Columns = Columns {
    known: &[
        "title",
        "start",
        "end",
        "duration",
        "timezone",
        "video",
        "participants",
        "remind",
    ],
    required: &["title", "start"],
    lists: &["participants", "remind"],
};

impl Row {
    fn text(&self, name: &'static str) -> Result<Option<String>, BadRow> {
        match self.fields.get(name) {
            None => Ok(None),
            Some(Value::Text(t)) if t.trim().is_empty() => Ok(None),
            Some(Value::Text(t)) => Ok(Some(t.clone())),
            Some(Value::List(_)) => Err(BadRow::new(self.line, name, "a list where text was expected")),
        }
    }

    fn required(&self, name: &'static str) -> Result<String, BadRow> {
        self.text(name)?
            .ok_or_else(|| BadRow::new(self.line, name, "missing or empty"))
    }

    fn list(&self, name: &'static str) -> Vec<String> {
        match self.fields.get(name) {
            Some(Value::List(v)) => v.clone(),
            Some(Value::Text(t)) => split_list(t),
            None => Vec::new(),
        }
    }
}

fn split_list(cell: &str) -> Vec<String> {
    cell.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// The rows of a file, one at a time: a row that cannot be read is an error for it alone.
type RowIter = Box<dyn Iterator<Item = Result<Row, BadRow>>>;

/// Open a file for reading rows. A CSV header that is wrong is refused here, once.
fn rows(path: &Path, columns: &'static Columns) -> anyhow::Result<RowIter> {
    let format = format_of(path)?;
    let file = File::open(path).map_err(|e| user_error(format!("cannot read {}: {e}", path.display())))?;
    match format {
        Format::Csv => csv_rows(path, file, columns),
        Format::Jsonl => Ok(jsonl_rows(file, columns)),
    }
}

fn csv_rows(path: &Path, file: File, columns: &'static Columns) -> anyhow::Result<RowIter> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(BufReader::new(file));
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| user_error(format!("{}: the header row cannot be read: {e}", path.display())))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_ascii_lowercase())
        .collect();
    // Spreadsheets export trailing empty columns; a name that is not ours is a mistake,
    // reported once for the file rather than once per row.
    let unknown: Vec<&String> = header
        .iter()
        .filter(|h| !h.is_empty() && !columns.known.contains(&h.as_str()))
        .collect();
    let missing: Vec<&&str> = columns
        .required
        .iter()
        .filter(|r| !header.iter().any(|h| h == *r))
        .collect();
    if !unknown.is_empty() || !missing.is_empty() {
        let mut why = Vec::new();
        if !unknown.is_empty() {
            why.push(format!(
                "unknown column(s) {}",
                unknown
                    .iter()
                    .map(|u| format!("'{}'", printable(u, 40)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !missing.is_empty() {
            why.push(format!(
                "missing column(s) {}",
                missing
                    .iter()
                    .map(|m| m.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        return Err(user_error(format!(
            "{}: line 1 (the header): {}; the columns are {}",
            path.display(),
            why.join("; "),
            columns.known.join(", ")
        )));
    }
    let lists = columns.lists;
    Ok(Box::new(reader.into_records().filter_map(move |record| {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
                return Some(Err(BadRow::row(line, format!("cannot be read: {e}"))));
            }
        };
        // The line the record starts on, even when quoted cells span several lines.
        let line = record.position().map(|p| p.line() as usize).unwrap_or(0);
        // A row of bare separators from a spreadsheet is no row.
        if record.iter().all(|c| c.trim().is_empty()) {
            return None;
        }
        let mut fields = HashMap::new();
        for (i, cell) in record.iter().enumerate() {
            match header.get(i).map(String::as_str) {
                Some("") | None if cell.trim().is_empty() => {}
                Some("") | None => {
                    return Some(Err(BadRow::row(
                        line,
                        format!("a value in column {} which has no name in the header", i + 1),
                    )))
                }
                Some(name) if lists.contains(&name) => {
                    fields.insert(name.to_string(), Value::List(split_list(cell)));
                }
                Some(name) => {
                    fields.insert(name.to_string(), Value::Text(cell.to_string()));
                }
            }
        }
        Some(Ok(Row { line, fields }))
    })))
}

fn jsonl_rows(file: File, columns: &'static Columns) -> RowIter {
    let lines = BufReader::new(file).lines().enumerate();
    Box::new(lines.filter_map(move |(i, line)| {
        let line_no = i + 1;
        let text = match line {
            Ok(t) => t,
            Err(e) => return Some(Err(BadRow::row(line_no, format!("cannot be read: {e}")))),
        };
        let text = if i == 0 {
            text.trim_start_matches('\u{feff}').to_string()
        } else {
            text
        };
        if text.trim().is_empty() {
            return None;
        }
        Some(json_row(line_no, &text, columns))
    }))
}

fn json_row(line: usize, text: &str, columns: &Columns) -> Result<Row, BadRow> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| BadRow::row(line, format!("not valid JSON ({e})")))?;
    let serde_json::Value::Object(map) = value else {
        return Err(BadRow::row(line, "not a JSON object"));
    };
    let mut fields = HashMap::new();
    for (k, v) in map {
        let Some(name) = columns.known.iter().find(|c| **c == k) else {
            return Err(BadRow::row(
                line,
                format!(
                    "unknown field '{}' (the fields are {})",
                    printable(&k, 40),
                    columns.known.join(", ")
                ),
            ));
        };
        let value = match v {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => Value::Text(s),
            serde_json::Value::Array(items) if columns.lists.contains(name) => Value::List(
                items
                    .into_iter()
                    .map(|i| match i {
                        serde_json::Value::String(s) => Ok(s),
                        _ => Err(BadRow::new(line, name, "a list of texts is expected")),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            _ => return Err(BadRow::new(line, name, "a text is expected")),
        };
        fields.insert(k, value);
    }
    Ok(Row { line, fields })
}

// ---------------------------------------------------------------------------------------
// Users

fn user_input(row: &Row) -> Result<UserInput, BadRow> {
    Ok(UserInput {
        email: row.required("email")?,
        name: row.required("name")?,
        timezone: row.text("timezone")?,
        locale: row.text("locale")?,
        email_enabled: true,
        ..UserInput::default()
    })
}

// ---------------------------------------------------------------------------------------
// Events

fn event_draft(row: &Row) -> Result<EventDraft, BadRow> {
    Ok(EventDraft {
        title: row.required("title")?,
        start: row.required("start")?,
        end: row.text("end")?,
        duration: row.text("duration")?,
        timezone: row.text("timezone")?,
        video: row.text("video")?.unwrap_or_else(|| "auto".into()),
        participants: row.list("participants"),
        // `none`, or offsets: in CSV one cell separated by `;`, in JSON an array.
        remind: row.list("remind"),
        repeat: None,
    })
}

/// How a refused write of one row is named in the report.
fn insert_field(e: &anyhow::Error) -> &'static str {
    if e.to_string().contains("already booked") {
        "start"
    } else {
        "participants"
    }
}

/// `import events` options.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventImport {
    /// Send `assigned` notices to the participants.
    pub notify: bool,
    pub allow_overlap: bool,
}

impl Service {
    /// Import users; returns their ids.
    pub fn import_users(&mut self, path: &Path) -> anyhow::Result<Vec<i64>> {
        let mut problems = Problems::default();
        let mut seen = HashSet::new();
        let mut valid: Vec<(usize, NewUser)> = Vec::new();
        for row in rows(path, &USER_COLUMNS)? {
            let row = match row {
                Ok(r) => r,
                Err(b) => {
                    problems.push(b);
                    continue;
                }
            };
            let user = match user_input(&row)
                .and_then(|i| validate(&i).map_err(|f| BadRow::new(row.line, f.field, f.error)))
            {
                Ok(u) => u,
                Err(b) => {
                    problems.push(b);
                    continue;
                }
            };
            if !seen.insert(user.email.to_lowercase()) {
                problems.push(BadRow::new(
                    row.line,
                    "email",
                    format!("{} appears twice in the file", user.email),
                ));
                continue;
            }
            valid.push((row.line, user));
        }
        let now = self.now();
        let result = store::write(&mut *self.store, |ops| {
            let mut ids = Vec::with_capacity(valid.len());
            let mut refused = Vec::new();
            for (line, user) in &valid {
                match ops.insert_user(user, now) {
                    Ok(id) => ids.push(id),
                    Err(e) if e.is::<UserError>() => refused.push(BadRow::new(*line, "email", e)),
                    Err(e) => return Err(e),
                }
            }
            if refused.is_empty() && problems.total == 0 {
                Ok(ids)
            } else {
                Err(anyhow::Error::new(Refused(refused)))
            }
        });
        result.map_err(|e| match e.downcast::<Refused>() {
            Ok(Refused(rows)) => {
                for b in rows {
                    problems.push(b);
                }
                std::mem::take(&mut problems).into_error(path)
            }
            Err(other) => other,
        })
    }

    /// Import events (and, with `notify`, send `assigned` notices); returns their ids.
    /// `progress(done, total)` is called as rows are written.
    pub fn import_events(
        &mut self,
        path: &Path,
        options: EventImport,
        progress: &mut dyn FnMut(usize, usize),
    ) -> anyhow::Result<Vec<i64>> {
        // Pass 1: check every row, without the write lock.
        let mut problems = Problems::default();
        let mut zones: HashMap<String, chrono_tz::Tz> = HashMap::new();
        let whereby = self.config.video.provider == VideoProvider::Whereby;
        let mut meetings: Vec<(
            VideoRequest,
            String,
            chrono::DateTime<chrono::Utc>,
            chrono::DateTime<chrono::Utc>,
        )> = Vec::new();
        let mut count = 0;
        for row in rows(path, &EVENT_COLUMNS)? {
            stop_if_asked()?;
            count += 1;
            let spec = row.and_then(|row| {
                let draft = event_draft(&row)?;
                self.resolve_event_cached(&draft, &mut zones)
                    .map_err(|f| BadRow::new(row.line, f.field, f.error))
            });
            match spec {
                Ok(spec) if whereby && spec.video == VideoRequest::Auto => meetings.push((
                    spec.video.clone(),
                    spec.new.title.clone(),
                    spec.new.starts_at,
                    spec.new.ends_at,
                )),
                Ok(_) => {}
                Err(b) => problems.push(b),
            }
        }
        // Meetings only for a file that may be written, before the write lock.
        let links: Vec<Link> = if problems.total == 0 && !meetings.is_empty() {
            let requests: Vec<(VideoRequest, video::Slot)> = meetings
                .iter()
                .map(|(r, title, s, e)| {
                    (
                        r.clone(),
                        video::Slot {
                            title,
                            starts_at: *s,
                            ends_at: *e,
                        },
                    )
                })
                .collect();
            video::create_many(&self.config.video, &requests)?
                .into_iter()
                .flatten()
                .collect()
        } else {
            Vec::new()
        };
        drop(meetings);
        // Pass 2: write, in one transaction, noting every row that cannot be written. First
        // with the backend's double-booking index deferred (`defer_overlap_index`): each row is
        // checked against the bookings made before the import, and the rows against one
        // another at the end, in one sorted sweep. That gives the row-by-row result only when
        // nothing was refused; otherwise the transaction is rolled back and the file written
        // again row by row, each row checked against the rows before it, so the report names
        // the same rows and events as always (a refused file costs two writes).
        let notifier = Notifier::new(&self.config, &self.templates, &self.reporter, self.clock.now())?;
        let config = &self.config;
        let mut row_by_row = false;
        let written = loop {
            let attempt = store::write(&mut *self.store, |ops| {
                let mut refused = Problems::default();
                let mut ids = Vec::new();
                let mut cache = UserCache::new();
                // The double-booking checks below and the writes are one step for other
                // bookings (PostgreSQL: their table lock; SQLite: the write lock already).
                ops.guard_bookings(false)?;
                // Our rows are already checked and canonical: let the backend skip the
                // per-row work it does for rows others write.
                ops.bulk_writes(true)?;
                let deferred = !row_by_row && ops.defer_overlap_index()?;
                let mut links = links.iter();
                let mut zones = zones.clone();
                for (done, row) in rows(path, &EVENT_COLUMNS)?.enumerate() {
                    stop_if_asked()?;
                    progress(done, count);
                    let Ok(row) = row else { continue };
                    if problems.lines.contains(&row.line) {
                        continue;
                    }
                    let Ok(draft) = event_draft(&row) else { continue };
                    let Ok(mut spec) = resolve_with(config, ops, &draft, &mut zones) else {
                        continue;
                    };
                    let link = match (&spec.video, whereby) {
                        (VideoRequest::Auto, true) if problems.total == 0 => links.next().cloned(),
                        // The file will not be written: no meeting for it.
                        (VideoRequest::Auto, true) => None,
                        (request, _) => video::create(&config.video, request, &spec.slot())?,
                    };
                    spec.new.video_url = link.map(|l| l.url);
                    match insert(
                        ops,
                        &notifier,
                        &spec,
                        options.allow_overlap,
                        options.notify,
                        &mut cache,
                    ) {
                        Ok(id) => ids.push(id),
                        Err(e) if e.is::<UserError>() => {
                            if deferred {
                                return Err(anyhow::Error::new(WriteRowByRow));
                            }
                            refused.push(BadRow::new(row.line, insert_field(&e), format!("{e:#}")))
                        }
                        Err(e) => return Err(e),
                    }
                }
                if deferred && !options.allow_overlap && ops.deferred_overlap()? {
                    return Err(anyhow::Error::new(WriteRowByRow));
                }
                if refused.total == 0 && problems.total == 0 {
                    ops.bulk_writes(false)?;
                    Ok(ids)
                } else {
                    Err(anyhow::Error::new(Refused(refused.rows)))
                }
            });
            match attempt {
                Err(e) if !row_by_row && e.is::<WriteRowByRow>() => row_by_row = true,
                other => break other,
            }
        };
        match written {
            Ok(ids) => Ok(ids),
            Err(e) => {
                video::discard(&self.config.video, &links);
                match e.downcast::<Refused>() {
                    Ok(Refused(rows)) => {
                        for b in rows {
                            problems.push(b);
                        }
                        Err(problems.into_error(path))
                    }
                    Err(other) => Err(other),
                }
            }
        }
    }

    /// `resolve_event` with the zones of participants looked up once per import.
    fn resolve_event_cached(
        &mut self,
        draft: &EventDraft,
        zones: &mut HashMap<String, chrono_tz::Tz>,
    ) -> Result<ResolvedEvent, super::FieldError> {
        resolve_with(&self.config, self.store.ops(), draft, zones)
    }
}

/// Resolve a draft with the given operations, remembering each first participant's zone.
fn resolve_with(
    config: &crate::config::Config,
    ops: &mut dyn crate::store::Ops,
    draft: &EventDraft,
    zones: &mut HashMap<String, chrono_tz::Tz>,
) -> Result<ResolvedEvent, super::FieldError> {
    super::booking::resolve(config, ops, draft, zones)
}

/// A termination signal stops an import between rows; nothing is written.
fn stop_if_asked() -> anyhow::Result<()> {
    match crate::interrupt::requested() {
        Some(signal) => Err(crate::interrupt::Interrupted(signal).into()),
        None => Ok(()),
    }
}

/// Rows refused inside the write transaction (which is then rolled back).
#[derive(Debug)]
struct Refused(Vec<BadRow>);

/// A write with the double-booking index deferred found a row it must refuse, or rows
/// double-booking someone among themselves: it is rolled back and the file written again
/// row by row, to report exactly which rows and against which events.
#[derive(Debug)]
struct WriteRowByRow;

impl fmt::Display for WriteRowByRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("rows to refuse: written again row by row")
    }
}

impl std::error::Error for WriteRowByRow {}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} row(s) refused", self.0.len())
    }
}

impl std::error::Error for Refused {}
