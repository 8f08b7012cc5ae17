//! Broken values met while working: each is logged once (table, row, column, value) and
//! kept for the run's summary, and the work goes on without that row.

use std::cell::RefCell;
use std::collections::BTreeSet;

use crate::store::BrokenRow;

#[derive(Debug, Default)]
pub struct Reporter {
    seen: RefCell<BTreeSet<String>>,
    lines: RefCell<Vec<String>>,
}

impl Reporter {
    /// Report a row that cannot be used; the same row is reported once.
    pub fn broken(&self, row: &BrokenRow) {
        let line = row.to_string();
        if self.first(&line) {
            tracing::error!(
                table = row.table,
                row_id = row.id.as_str(),
                column = row.column.as_str(),
                "skipping a broken row: {line}"
            );
        }
    }

    /// Report a value that was replaced by a default (an unknown zone, say).
    pub fn note(&self, line: String) {
        if self.first(&line) {
            tracing::error!("{line}");
        }
    }

    fn first(&self, line: &str) -> bool {
        let new = self.seen.borrow_mut().insert(line.to_string());
        if new {
            self.lines.borrow_mut().push(line.to_string());
        }
        new
    }

    /// What was reported so far, in order.
    pub fn take(&self) -> Vec<String> {
        self.seen.borrow_mut().clear();
        std::mem::take(&mut *self.lines.borrow_mut())
    }
}

/// Split a result into "this row is broken" (reported, the caller skips it) and a real
/// failure (propagated).
pub fn contain<T>(result: anyhow::Result<T>, reporter: &Reporter) -> anyhow::Result<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) => match e.downcast_ref::<BrokenRow>() {
            Some(row) => {
                reporter.broken(row);
                Ok(None)
            }
            None => Err(e),
        },
    }
}
