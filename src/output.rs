//! The only writer to stdout: human tables and lines, or `--json`; and the one safe way to
//! write a line to stderr.
//!
//! A closed pipe (`notifyctl list | head -1`) is not an error: output stops quietly. Any
//! other failed write (`> /dev/full`) is recorded, later output is skipped, and
//! [`Output::finish`] turns it into an error after the command, so the exit code says the
//! output was lost (error.rs decides the code). Nothing here panics on a failed write:
//! `println!`/`eprintln!` would (exit 101).
//!
//! Human output is for a terminal: text from the database (names, titles, bodies the web app
//! wrote) passes through [`printable`] so control characters and bidi overrides cannot move
//! the cursor, recolour or hide text; table columns are sized by display width, so CJK,
//! emoji and combining accents line up. `--json` carries the exact text.

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::OnceLock;

use serde::Serialize;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::error::OutputFailed;

/// What stands in for a character that must not reach a terminal.
pub const PLACEHOLDER: char = '\u{FFFD}';

#[derive(Debug)]
pub struct Output {
    pub json: bool,
    /// `-q`: reports that only say "all went well" (the tick's summary) are not printed,
    /// so cron mails only when something failed.
    pub quiet: bool,
    /// The first failed write to stdout; once set, later writes are skipped.
    write_error: OnceLock<io::Error>,
}

impl Output {
    pub fn new(json: bool) -> Output {
        Output {
            json,
            quiet: false,
            write_error: OnceLock::new(),
        }
    }

    pub fn quiet(mut self, quiet: bool) -> Output {
        self.quiet = quiet;
        self
    }

    fn write(&self, text: &str) {
        if self.write_error.get().is_some() {
            return;
        }
        let mut out = io::stdout().lock();
        if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
            let _ = self.write_error.set(e);
        }
    }

    /// The command's result, unless its output was lost: a failed write to stdout (other
    /// than a closed pipe) becomes the error, so the run does not look successful.
    pub fn finish<T>(&self, result: anyhow::Result<T>) -> anyhow::Result<T> {
        let code = result?;
        match self.write_error.get() {
            Some(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                Err(OutputFailed(io::Error::new(e.kind(), e.to_string())).into())
            }
            _ => Ok(code),
        }
    }

    pub fn json<T: Serialize + ?Sized>(&self, value: &T) {
        let mut s = serde_json::to_string_pretty(value)
            .unwrap_or_else(|e| format!("{{\"error\": \"output could not be encoded: {e}\"}}"));
        s.push('\n');
        self.write(&s);
    }

    /// Human output only (ignored with --json). Line breaks and tabs in `text` are kept,
    /// every other control character is replaced (see [`printable`]).
    pub fn line(&self, text: impl AsRef<str>) {
        if !self.json {
            let mut s = printable(text.as_ref()).into_owned();
            s.push('\n');
            self.write(&s);
        }
    }

    /// Raw text, whatever the mode (man page, completions, the stdout transport).
    pub fn raw(&self, text: &str) {
        self.write(text);
    }
}

/// A listing written as it is produced, so memory stays flat whatever its length: with
/// `--json` an array, item by item (the same text as [`Output::json`] of the whole list);
/// otherwise a table whose columns are sized from its first rows, later rows cut to fit.
pub struct Listing<'a> {
    out: &'a Output,
    headers: Vec<String>,
    /// The first rows, held until the columns are sized.
    first: Vec<Vec<String>>,
    widths: Option<Vec<usize>>,
    items: usize,
    buf: String,
}

/// Rows used to size a streamed table's columns.
const SIZING_ROWS: usize = 200;
/// Written to stdout in pieces of about this size.
const CHUNK: usize = 64 * 1024;

impl Output {
    /// Start a listing with these table headers (unused with `--json`).
    pub fn listing(&self, headers: &[&str]) -> Listing<'_> {
        Listing {
            out: self,
            headers: headers.iter().map(|h| one_line(h)).collect(),
            first: Vec::new(),
            widths: None,
            items: 0,
            buf: String::new(),
        }
    }
}

impl Listing<'_> {
    /// One item: its JSON with `--json`, else its table cells.
    pub fn item<T: Serialize>(&mut self, value: &T, cells: impl FnOnce() -> Vec<String>) {
        if self.out.json {
            let text =
                serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("\"(unprintable: {e})\""));
            self.buf.push_str(if self.items == 0 { "[\n" } else { ",\n" });
            for (i, line) in text.lines().enumerate() {
                if i > 0 {
                    self.buf.push('\n');
                }
                self.buf.push_str("  ");
                self.buf.push_str(line);
            }
        } else {
            let row: Vec<String> = cells().iter().map(|c| one_line(c)).collect();
            match &self.widths {
                None => {
                    self.first.push(row);
                    if self.first.len() >= SIZING_ROWS {
                        self.size_columns();
                    }
                }
                Some(widths) => {
                    let row: Vec<String> = row.iter().zip(widths).map(|(c, w)| cell(c, *w)).collect();
                    self.buf.push_str(&format_row(widths, &row));
                }
            }
        }
        self.items += 1;
        if self.buf.len() >= CHUNK {
            self.out.write(&self.buf);
            self.buf.clear();
        }
    }

    /// Size the columns from the rows seen so far and write them with the header.
    fn size_columns(&mut self) {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.width()).collect();
        for row in &self.first {
            for (i, c) in row.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(c.width());
                } else {
                    widths.push(c.width());
                }
            }
        }
        self.buf.push_str(&format_row(&widths, &self.headers));
        for row in std::mem::take(&mut self.first) {
            self.buf.push_str(&format_row(&widths, &row));
        }
        self.widths = Some(widths);
    }

    /// End the listing: `[]` or `(none)` when it was empty.
    pub fn finish(mut self) {
        if self.out.json {
            self.buf.push_str(if self.items == 0 { "[]\n" } else { "\n]\n" });
        } else if self.items == 0 {
            self.buf.push_str("(none)\n");
        } else if self.widths.is_none() {
            self.size_columns();
        }
        self.out.write(&self.buf);
    }
}

/// One table line: cells padded to `widths`, the last one not padded.
fn format_row(widths: &[usize], cells: &[String]) -> String {
    let mut line = String::new();
    for (i, c) in cells.iter().enumerate() {
        line.push_str(c);
        if i + 1 < cells.len() {
            let pad = widths.get(i).copied().unwrap_or(0).saturating_sub(c.width()) + 2;
            line.extend(std::iter::repeat_n(' ', pad));
        }
    }
    line.truncate(line.trim_end().len());
    line.push('\n');
    line
}

/// Shorten a cell for a table: one printable line, at most `max` terminal columns wide
/// (an ellipsis marks a cut).
pub fn cell(s: &str, max: usize) -> String {
    let one_line = one_line(s);
    if one_line.width() <= max {
        return one_line;
    }
    let budget = max.saturating_sub(1);
    let mut t = String::new();
    let mut used = 0;
    for c in one_line.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > budget {
            break;
        }
        used += w;
        t.push(c);
    }
    t.push('…');
    t
}

/// Characters that must not reach a terminal from data: C0/C1 controls and DEL (escape
/// sequences, carriage returns that overwrite a line, bells) and the invisible bidi
/// controls that reorder what a line appears to say.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// `s` for a terminal: line breaks and tabs kept, every other unsafe character replaced by
/// [`PLACEHOLDER`].
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| is_unsafe(c) && c != '\n' && c != '\t') {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| {
                if is_unsafe(c) && c != '\n' && c != '\t' {
                    PLACEHOLDER
                } else {
                    c
                }
            })
            .collect(),
    )
}

/// `s` as one printable line: line breaks and tabs become spaces, other unsafe characters
/// [`PLACEHOLDER`].
pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c if is_unsafe(c) => PLACEHOLDER,
            c => c,
        })
        .collect()
}

/// Write one line to stderr (made printable, on one line). Never panics: a stderr that
/// cannot be written (`2>/dev/full`, a closed pipe) loses the line, not the run.
pub fn stderr_line(text: &str) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "{}", one_line(text));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns_of(line: &str, needle: &str) -> usize {
        line[..line.find(needle).expect("needle in line")].width()
    }

    #[test]
    fn table_pads_by_display_width() {
        let rows = vec![
            vec!["1".into(), "Zoë".into(), "x".into()],
            vec!["2".into(), "山田太郎".into(), "x".into()],
            vec!["3".into(), "Zoe\u{301} 🎉".into(), "x".into()],
            vec!["4".into(), "Bob".into(), "x".into()],
        ];
        let out = Output::new(false);
        let mut listing = out.listing(&["ID", "NAME", "LAST"]);
        for row in &rows {
            listing.item(&(), || row.clone());
        }
        listing.size_columns();
        let text = listing.buf.clone();
        let lines: Vec<&str> = text.lines().collect();
        let col = columns_of(lines[0], "LAST");
        for l in &lines[1..] {
            assert_eq!(l.rfind('x').map(|i| l[..i].width()), Some(col), "{text}");
        }
    }

    #[test]
    fn cell_truncates_by_width_and_strips_controls() {
        assert_eq!(cell("山田太郎", 5), "山田…");
        assert_eq!(cell("abc", 3), "abc");
        assert_eq!(cell("a\u{1b}[31mb\nc", 20), "a\u{FFFD}[31mb c");
        assert!(cell("🎉🎉🎉🎉", 6).width() <= 6);
        // A combining accent stays with its letter.
        assert_eq!(cell("e\u{301}e\u{301}e\u{301}", 3), "e\u{301}e\u{301}e\u{301}");
    }

    #[test]
    fn printable_keeps_lines_and_replaces_escapes() {
        assert_eq!(printable("a\nb\tc"), "a\nb\tc");
        assert_eq!(
            printable("a\u{1b}]0;t\u{7}\r\u{202E}"),
            "a\u{FFFD}]0;t\u{FFFD}\u{FFFD}\u{FFFD}"
        );
        assert!(matches!(printable("plain"), Cow::Borrowed(_)));
    }
}

#[cfg(test)]
mod listing_tests {
    use super::*;

    #[test]
    fn a_streamed_json_array_is_the_same_text_as_the_whole_array() {
        #[derive(Serialize)]
        struct Item {
            id: i64,
            name: &'static str,
            tags: Vec<&'static str>,
        }
        let items = vec![
            Item {
                id: 1,
                name: "a",
                tags: vec!["x", "y"],
            },
            Item {
                id: 2,
                name: "b",
                tags: vec![],
            },
        ];
        let out = Output::new(true);
        let mut l = out.listing(&[]);
        let mut streamed = String::new();
        for i in &items {
            l.item(i, Vec::new);
        }
        streamed.push_str(&l.buf);
        l.buf.clear();
        l.items = 2;
        streamed.push_str("\n]\n");
        assert_eq!(
            streamed,
            format!("{}\n", serde_json::to_string_pretty(&items).unwrap())
        );
        let empty: Vec<Item> = Vec::new();
        assert_eq!(serde_json::to_string_pretty(&empty).unwrap(), "[]");
    }
}
