//! Keeping a database healthy for years: retention (`prune`) and the outbox's manual
//! controls (`deliveries`, `deliveries retry`).

use chrono::{DateTime, TimeDelta, Utc};

use super::Service;
use crate::error::user_error;
use crate::model::Delivery;
use crate::store::{self, BrokenRow, PruneCounts};

pub const DELIVERY_STATUSES: [&str; 8] = [
    "pending",
    "held",
    "sending",
    "failed",
    "dead",
    "sent",
    "superseded",
    "expired",
];

impl Service {
    /// Remove (or count) finished rows older than `age`; returns the cutoff and counts.
    pub fn prune(&mut self, age: TimeDelta, dry_run: bool) -> anyhow::Result<(DateTime<Utc>, PruneCounts)> {
        let cutoff = self.now() - age;
        Ok((cutoff, self.store.prune(cutoff, dry_run)?))
    }

    pub fn deliveries(
        &mut self,
        status: Option<&str>,
        limit: u32,
        each: &mut dyn FnMut(Result<Delivery, BrokenRow>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        if let Some(s) = status {
            if !DELIVERY_STATUSES.contains(&s) {
                return Err(user_error(format!(
                    "unknown status '{s}': use {}",
                    DELIVERY_STATUSES.join(", ")
                )));
            }
        }
        self.store.list_deliveries(status, limit, each)
    }

    /// Re-queue failed or dead deliveries now, with a fresh attempt budget; all or none.
    pub fn retry_deliveries(&mut self, ids: &[i64]) -> anyhow::Result<usize> {
        let now = self.now();
        store::write(&mut *self.store, |ops| {
            for id in ids {
                match ops.delivery_status(*id)?.as_deref() {
                    None => return Err(user_error(format!("unknown delivery {id}: nothing was changed"))),
                    Some("failed" | "dead" | "pending") => {}
                    Some(other) => {
                        return Err(user_error(format!(
                            "delivery {id} is {other}, only pending, failed or dead deliveries can be retried: nothing was changed"
                        )))
                    }
                }
            }
            ops.requeue(ids, now)
        })
    }

    /// After a tick ran with its clock ahead: forget the `late`/`collapsed` decisions
    /// recorded since `since` for events still to come, and the records of ticks "from the
    /// future" (so the clock check is quiet again and the next tick looks back from the
    /// last real one). Returns (decisions reopened, tick records forgotten).
    pub fn reopen_reminders(
        &mut self,
        since: DateTime<Utc>,
        dry_run: bool,
    ) -> anyhow::Result<(usize, usize)> {
        let now = self.now();
        if dry_run {
            let d = self.store.reopen_decisions(since, now, true)?;
            return Ok((d, self.store.forget_ticks_after(now, true)?));
        }
        store::write(&mut *self.store, |ops| {
            Ok((
                ops.reopen_decisions(since, now, false)?,
                ops.forget_ticks_after(now, false)?,
            ))
        })
    }

    pub fn retry_dead(&mut self) -> anyhow::Result<usize> {
        let now = self.now();
        store::write(&mut *self.store, |ops| ops.requeue_dead(now))
    }
}
