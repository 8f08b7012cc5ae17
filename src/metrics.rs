//! A metrics file in the Prometheus text exposition format (version 0.0.4), the format
//! node_exporter's textfile collector reads: `# HELP` and `# TYPE` lines, then one
//! `name{label="value",...} number` line per series.
//!
//! Written here rather than by a metrics crate: `prometheus-client` writes OpenMetrics
//! (`# EOF`, `_total` samples under a family named without it), which is not the format
//! the textfile collector documents, and the `prometheus` crate is a live registry for a
//! server that is scraped, while a tick writes one file and exits. The format is small and
//! exactly specified; escaping is done here, and the tests read every file back with an
//! independent parser (`prometheus-parse`).
//!
//! Counters must not restart at each run, and a tick keeps nothing between runs but the
//! database and this file. They are kept in the file: each tick reads the previous values,
//! adds its own counts and writes the sum. (Counting the `ticks` and `deliveries` rows
//! instead would go backwards at every `prune`, which Prometheus takes for a reset, and on
//! PostgreSQL would count every host's work in each host's file.) A file that was removed
//! starts again from zero, which `rate()` and `increase()` handle as the reset it is.
//!
//! The file is replaced atomically (a temporary file renamed over it, `files.rs`), so the
//! collector never reads half of it, and the read-add-write is done under an advisory lock
//! on the directory (`flock`), so two overlapping ticks do not lose each other's counts.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

/// A series' labels, in the order they are written.
pub type Labels = Vec<(String, String)>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
}

impl MetricType {
    fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
        }
    }
}

/// One metric: its name, help, type and series.
#[derive(Debug, Clone)]
pub struct Family {
    pub name: String,
    pub help: String,
    pub kind: MetricType,
    pub series: BTreeMap<Labels, f64>,
}

impl Family {
    pub fn new(name: &str, kind: MetricType, help: &str) -> Family {
        Family {
            name: name.to_string(),
            help: help.to_string(),
            kind,
            series: BTreeMap::new(),
        }
    }

    fn key(labels: &[(&str, &str)]) -> Labels {
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Set a series to `value`.
    pub fn set(&mut self, labels: &[(&str, &str)], value: f64) {
        self.series.insert(Self::key(labels), value);
    }

    /// Add `value` to a series (created at 0).
    pub fn add(&mut self, labels: &[(&str, &str)], value: f64) {
        *self.series.entry(Self::key(labels)).or_insert(0.0) += value;
    }

    /// Carry over this family's series from an earlier file (counters go on from there).
    pub fn carry(&mut self, earlier: &Previous) {
        for ((name, labels), value) in &earlier.0 {
            if *name == self.name {
                *self.series.entry(labels.clone()).or_insert(0.0) += value;
            }
        }
    }
}

/// Render families in the text format, each with `# HELP` and `# TYPE`.
pub fn render(families: &[Family]) -> String {
    let mut out = String::new();
    for f in families {
        let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(&f.help));
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.as_str());
        for (labels, value) in &f.series {
            out.push_str(&f.name);
            if !labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{k}=\"{}\"", escape_label(v));
                }
                out.push('}');
            }
            let _ = writeln!(out, " {}", number(*value));
        }
    }
    out
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// The samples of an earlier file, by (metric name, labels).
#[derive(Debug, Default, Clone)]
pub struct Previous(pub HashMap<(String, Labels), f64>);

impl Previous {
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.0.get(&(name.to_string(), Family::key(labels))).copied()
    }

    /// Read an earlier file's samples. Lines that are not a well-formed sample with a
    /// finite, non-negative value are ignored: a damaged file costs its counts, no more.
    pub fn parse(text: &str) -> Previous {
        let mut samples = HashMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some((name, labels, value)) = parse_sample(line) {
                if value.is_finite() && value >= 0.0 {
                    samples.insert((name, labels), value);
                }
            }
        }
        Previous(samples)
    }
}

/// `name{k="v",...} value` (as `render` writes it).
fn parse_sample(line: &str) -> Option<(String, Labels, f64)> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        let mut key = String::new();
        loop {
            let (i, c) = chars.next()?;
            match c {
                '}' if key.is_empty() => {
                    rest = &inner[i + 1..];
                    break;
                }
                ',' if key.is_empty() => {}
                '=' => {
                    if chars.next()?.1 != '"' {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '"' => break,
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                other => value.push(other),
                            },
                            other => value.push(other),
                        }
                    }
                    labels.push((std::mem::take(&mut key), value));
                }
                c if c.is_ascii_alphanumeric() || c == '_' => key.push(c),
                _ => return None,
            }
        }
    }
    let mut fields = rest.split_whitespace();
    let value: f64 = fields.next()?.parse().ok()?;
    Some((name.to_string(), labels, value))
}

/// Replace the metrics file at `path` with what `build` makes of the previous one.
/// `path`'s directory must exist (it is node_exporter's) and not be writable by every user.
pub fn update_textfile(path: &Path, build: impl FnOnce(&Previous) -> String) -> anyhow::Result<PathBuf> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        anyhow::bail!("{} is not a file name", path.display());
    };
    if !dir.is_dir() {
        anyhow::bail!(
            "the directory {} does not exist (it should be node_exporter's --collector.textfile.directory)",
            dir.display()
        );
    }
    crate::files::private_dir(&dir)?;
    let _lock = DirLock::take(&dir, Duration::from_secs(2));
    let previous = match std::fs::read_to_string(path) {
        Ok(text) => Previous::parse(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Previous::default(),
        Err(e) => {
            tracing::warn!(
                "metrics: cannot read the previous {} ({e}): counters start again from zero",
                path.display()
            );
            Previous::default()
        }
    };
    let text = build(&previous);
    crate::files::write_atomic_readable(&dir, name, text.as_bytes())
        .with_context(|| format!("writing the metrics file {}", path.display()))
}

/// An advisory lock on a directory, released when dropped (closing the descriptor).
struct DirLock(#[allow(dead_code)] Option<std::fs::File>);

impl DirLock {
    /// Wait at most `patience` for the lock; without it, go on unlocked (a count may be
    /// lost to an overlapping tick, which is better than a tick held back).
    #[cfg(unix)]
    fn take(dir: &Path, patience: Duration) -> DirLock {
        use std::os::unix::io::AsRawFd;
        let Ok(file) = std::fs::File::open(dir) else {
            return DirLock(None);
        };
        let give_up = std::time::Instant::now() + patience;
        loop {
            // SAFETY: flock on a descriptor we own; it only takes or refuses the lock.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return DirLock(Some(file));
            }
            if std::time::Instant::now() >= give_up {
                tracing::warn!(
                    "metrics: {} stayed locked by another tick for {patience:?}; writing without the lock",
                    dir.display()
                );
                return DirLock(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Windows: Task Scheduler never starts a second tick while one runs.
    #[cfg(not(unix))]
    fn take(_dir: &Path, _patience: Duration) -> DirLock {
        DirLock(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_help_type_and_escaped_labels() {
        let mut f = Family::new("x_total", MetricType::Counter, "What \\ it\ncounts");
        f.add(&[("channel", "a\"b\\c\nd")], 2.0);
        f.set(&[], 1.5);
        let text = render(&[f]);
        assert_eq!(
            text,
            "# HELP x_total What \\\\ it\\ncounts\n# TYPE x_total counter\nx_total 1.5\nx_total{channel=\"a\\\"b\\\\c\\nd\"} 2\n"
        );
    }

    #[test]
    fn previous_values_read_back_what_was_written() {
        let mut f = Family::new("x_total", MetricType::Counter, "h");
        f.set(&[("a", "1"), ("b", "we\"ird\\ {}, =\nx")], 41.0);
        f.set(&[], 7.0);
        let text = render(&[f]);
        let prev = Previous::parse(&text);
        assert_eq!(
            prev.get("x_total", &[("a", "1"), ("b", "we\"ird\\ {}, =\nx")]),
            Some(41.0)
        );
        assert_eq!(prev.get("x_total", &[]), Some(7.0));
        let mut g = Family::new("x_total", MetricType::Counter, "h");
        g.carry(&prev);
        g.add(&[], 1.0);
        assert_eq!(g.series[&Vec::new()], 8.0);
    }

    #[test]
    fn a_damaged_file_costs_only_its_broken_lines() {
        let prev = Previous::parse("garbage\nx{a=\"1\" 3\ny -1\nz NaN\nok{a=\"1\"} 3\n{} 4\n");
        assert_eq!(prev.0.len(), 1, "{prev:?}");
        assert_eq!(prev.get("ok", &[("a", "1")]), Some(3.0));
    }
}
