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
        let mut s = serde_json::to_string_pretty(value).expect("output types serialize");
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

    /// A table with a header row; columns sized to the display width of their content.
    /// Every cell is made one printable line (see [`cell`]); callers shorten long ones.
    pub fn table(&self, headers: &[&str], rows: &[Vec<String>]) {
        if self.json {
            return;
        }
        if rows.is_empty() {
            self.line("(none)");
            return;
        }
        self.write(&render_table(headers, rows));
    }
}

/// The text of a table: columns padded to their widest cell in terminal columns.
fn render_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let headers: Vec<String> = headers.iter().map(|h| one_line(h)).collect();
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| one_line(c)).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.width()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.width());
            } else {
                widths.push(cell.width());
            }
        }
    }
    let fmt_row = |cells: &[String]| {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < cells.len() {
                let pad = widths[i].saturating_sub(cell.width()) + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        line.truncate(line.trim_end().len());
        line
    };
    let mut text = fmt_row(&headers);
    text.push('\n');
    for row in &rows {
        text.push_str(&fmt_row(row));
        text.push('\n');
    }
    text
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
        let text = render_table(&["ID", "NAME", "LAST"], &rows);
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
