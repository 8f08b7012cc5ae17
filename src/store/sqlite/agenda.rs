//! The daily agenda: which zones users live in, which zone passes are done, and who has
//! events on a given local day without an agenda yet.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::params;
use rusqlite::types::ValueRef;

use super::{ts, SqliteStore};
use crate::store::{AgendaOps, ZoneKey};

/// `agenda_runs.zone` for a zone key: the stored text, `''` for users without a zone.
fn zone_text(zone: &ZoneKey) -> &str {
    zone.as_deref().unwrap_or("")
}

impl AgendaOps for SqliteStore {
    fn agenda_zones(&mut self) -> anyhow::Result<Vec<ZoneKey>> {
        // A loose index scan: each step asks the zone index for the next larger value, so
        // the cost grows with the number of distinct zones, not of users.
        let mut stmt = self.conn.prepare_cached(
            "WITH RECURSIVE z(tz) AS (
                SELECT (SELECT min(timezone) FROM users WHERE timezone IS NOT NULL)
                UNION ALL
                SELECT (SELECT min(timezone) FROM users WHERE timezone > z.tz) FROM z WHERE z.tz IS NOT NULL)
             SELECT tz FROM z WHERE tz IS NOT NULL",
        )?;
        let mut rows = stmt.query([])?;
        let mut zones = Vec::new();
        while let Some(r) = rows.next()? {
            // A zone an app stored as a number or a blob is no zone at all: its users get
            // the default zone's agenda through their own pass, keyed by the text form.
            match r.get_ref(0)? {
                ValueRef::Text(t) => zones.push(Some(String::from_utf8_lossy(t).into_owned())),
                _ => continue,
            }
        }
        let without: bool = self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM users WHERE timezone IS NULL)",
            [],
            |r| r.get(0),
        )?;
        if without {
            zones.push(None);
        }
        Ok(zones)
    }

    fn agenda_run_done(&mut self, zone: &ZoneKey, date: NaiveDate) -> anyhow::Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM agenda_runs WHERE zone = ?1 AND local_date = ?2)")?
            .query_row(params![zone_text(zone), date.to_string()], |r| r.get(0))?)
    }

    fn finish_agenda_run(
        &mut self,
        zone: &ZoneKey,
        date: NaiveDate,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        self.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO agenda_runs (zone, local_date, done_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![zone_text(zone), date.to_string(), ts(now)])?;
        Ok(())
    }

    fn agenda_recipients(
        &mut self,
        zone: &ZoneKey,
        (from, to): (DateTime<Utc>, DateTime<Utc>),
        date: NaiveDate,
        after: i64,
        limit: u32,
    ) -> anyhow::Result<Vec<i64>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT DISTINCT p.user_id FROM events e
               JOIN participants p ON p.event_id = e.id
               JOIN users u ON u.id = p.user_id
              WHERE e.status = 'scheduled' AND e.starts_at < ?2
                AND (e.starts_at >= ?1
                     -- a series that may have an occurrence that day (the service expands it)
                     OR (e.repeat_rule IS NOT NULL AND (e.series_end IS NULL OR e.series_end > ?1)))
                AND (u.timezone = ?3 OR (?3 IS NULL AND u.timezone IS NULL))
                AND p.user_id > ?4
                AND NOT EXISTS (SELECT 1 FROM notifications n
                                 WHERE n.kind = 'agenda' AND n.user_id = p.user_id AND n.agenda_date = ?5)
              ORDER BY p.user_id LIMIT ?6",
        )?;
        let ids = stmt
            .query_map(
                params![ts(from), ts(to), zone, after, date.to_string(), limit],
                |r| r.get(0),
            )?
            .collect::<Result<Vec<i64>, _>>()?;
        Ok(ids)
    }
}
