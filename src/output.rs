//! The only writer to stdout: human tables and lines, or `--json`.
//!
//! A closed pipe (`notifyctl list | head -1`) is not an error: output stops quietly.

use std::io::{self, Write};

use serde::Serialize;

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
    /// `-q`: reports that only say "all went well" (the tick's summary) are not printed,
    /// so cron mails only when something failed.
    pub quiet: bool,
}

impl Output {
    pub fn new(json: bool) -> Output {
        Output { json, quiet: false }
    }

    pub fn quiet(mut self, quiet: bool) -> Output {
        self.quiet = quiet;
        self
    }

    fn write(&self, text: &str) {
        let mut out = io::stdout().lock();
        if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
            if e.kind() == io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            log::error!("writing to stdout: {e}");
        }
    }

    pub fn json<T: Serialize + ?Sized>(&self, value: &T) {
        let mut s = serde_json::to_string_pretty(value).expect("output types serialize");
        s.push('\n');
        self.write(&s);
    }

    /// Human output only (ignored with --json).
    pub fn line(&self, text: impl AsRef<str>) {
        if !self.json {
            self.write(&format!("{}\n", text.as_ref()));
        }
    }

    /// Raw text, whatever the mode (man page, completions, the stdout transport).
    pub fn raw(&self, text: &str) {
        self.write(text);
    }

    /// A table with a header row; columns sized to their content.
    pub fn table(&self, headers: &[&str], rows: &[Vec<String>]) {
        if self.json {
            return;
        }
        if rows.is_empty() {
            self.line("(none)");
            return;
        }
        let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
        for row in rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let fmt_row = |cells: Vec<&str>| {
            let mut line = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i + 1 == cells.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
                }
            }
            line.trim_end().to_string()
        };
        let mut text = fmt_row(headers.to_vec());
        text.push('\n');
        for row in rows {
            text.push_str(&fmt_row(row.iter().map(String::as_str).collect()));
            text.push('\n');
        }
        self.write(&text);
    }
}

/// Shorten a cell for a table: one line, at most `max` characters.
pub fn cell(s: &str, max: usize) -> String {
    let one_line = s.replace(['\n', '\r'], " ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let mut t: String = one_line.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}
