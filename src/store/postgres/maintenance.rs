//! Retention: removing what is finished and old, a batch per transaction, so that a
//! prune never holds row locks long enough to delay a tick on any host.

use chrono::{DateTime, Utc};

use super::PgStore;
use crate::store::PruneCounts;

const BATCH: i64 = 5000;

// Each entry: what it counts, and the batch-limited delete. All rows are finished work:
// read notices with no unfinished delivery, deliveries that are over, past ticks but the
// latest, reminder decisions for event starts that are long past, and old lines of the
// delivery attempts log.
const RULES: [(&str, &str); 5] = [
    (
        "SELECT count(*) FROM notifications n WHERE n.read_at IS NOT NULL AND n.read_at < $1
           AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = n.id
                           AND d.status IN ('pending', 'sending', 'failed', 'dead'))",
        "DELETE FROM notifications WHERE id IN (
           SELECT n.id FROM notifications n WHERE n.read_at IS NOT NULL AND n.read_at < $1
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = n.id
                             AND d.status IN ('pending', 'sending', 'failed', 'dead'))
           LIMIT $2)",
    ),
    (
        "SELECT count(*) FROM deliveries WHERE status IN ('sent', 'superseded', 'expired') AND updated_at < $1",
        "DELETE FROM deliveries WHERE id IN (
           SELECT id FROM deliveries WHERE status IN ('sent', 'superseded', 'expired') AND updated_at < $1 LIMIT $2)",
    ),
    (
        "SELECT count(*) FROM ticks WHERE started_at < $1 AND id <> (SELECT max(id) FROM ticks)",
        "DELETE FROM ticks WHERE id IN (
           SELECT id FROM ticks WHERE started_at < $1 AND id <> (SELECT max(id) FROM ticks) LIMIT $2)",
    ),
    (
        "SELECT count(*) FROM reminders WHERE event_start < $1",
        "DELETE FROM reminders WHERE (event_id, user_id, offset_minutes, event_start) IN (
           SELECT event_id, user_id, offset_minutes, event_start FROM reminders WHERE event_start < $1 LIMIT $2)",
    ),
    (
        "SELECT count(*) FROM delivery_attempts WHERE at < $1",
        "DELETE FROM delivery_attempts WHERE id IN (SELECT id FROM delivery_attempts WHERE at < $1 LIMIT $2)",
    ),
];

/// Count (dry run) or delete finished rows older than `cutoff`, a batch per transaction.
pub(super) fn prune(
    store: &mut PgStore,
    cutoff: DateTime<Utc>,
    dry_run: bool,
) -> anyhow::Result<PruneCounts> {
    let mut n = [0i64; 5];
    for (i, (count_sql, delete_sql)) in RULES.iter().enumerate() {
        if dry_run {
            n[i] = store.query_one(count_sql, &[&cutoff])?.try_get(0)?;
            continue;
        }
        loop {
            let deleted =
                store.with_transaction(|s| Ok(s.execute(delete_sql, &[&cutoff, &BATCH])? as i64))?;
            n[i] += deleted;
            if deleted < BATCH {
                break;
            }
        }
    }
    Ok(PruneCounts {
        notifications: n[0],
        deliveries: n[1],
        ticks: n[2],
        reminders: n[3],
        attempts: n[4],
    })
}
