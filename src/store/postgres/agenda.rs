//! The daily agenda: which zones users live in, which zone passes are done, and who has
//! events on a given local day without an agenda yet.

use chrono::{DateTime, NaiveDate, Utc};

use super::PgStore;
use crate::store::{AgendaOps, ZoneKey};

/// `agenda_runs.zone` for a zone key: the stored text, `''` for users without a zone.
fn zone_text(zone: &ZoneKey) -> &str {
    zone.as_deref().unwrap_or("")
}

impl AgendaOps for PgStore {
    fn agenda_zones(&mut self) -> anyhow::Result<Vec<ZoneKey>> {
        // A loose index scan over users_by_timezone: one index probe per distinct zone.
        let rows = self.query(
            "WITH RECURSIVE z(tz) AS (
                SELECT (SELECT min(timezone) FROM users WHERE timezone IS NOT NULL)
                UNION ALL
                SELECT (SELECT min(timezone) FROM users WHERE timezone > z.tz) FROM z WHERE z.tz IS NOT NULL)
             SELECT tz FROM z WHERE tz IS NOT NULL
             UNION ALL
             SELECT NULL WHERE EXISTS (SELECT 1 FROM users WHERE timezone IS NULL)",
            &[],
        )?;
        let mut zones = Vec::with_capacity(rows.len());
        for r in &rows {
            zones.push(r.try_get::<_, Option<String>>(0)?);
        }
        Ok(zones)
    }

    fn agenda_run_done(&mut self, zone: &ZoneKey, date: NaiveDate) -> anyhow::Result<bool> {
        let row = self.query_one(
            "SELECT EXISTS (SELECT 1 FROM agenda_runs WHERE zone = $1 AND local_date = $2)",
            &[&zone_text(zone), &date],
        )?;
        Ok(row.try_get(0)?)
    }

    fn finish_agenda_run(
        &mut self,
        zone: &ZoneKey,
        date: NaiveDate,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        self.execute(
            "INSERT INTO agenda_runs (zone, local_date, done_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&zone_text(zone), &date, &now],
        )?;
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
        let limit = i64::from(limit);
        let rows = self.query(
            "SELECT DISTINCT p.user_id FROM events e
               JOIN participants p ON p.event_id = e.id
               JOIN users u ON u.id = p.user_id
              WHERE e.status = 'scheduled' AND e.starts_at < $2
                AND (e.starts_at >= $1
                     -- a series that may have an occurrence that day (the service expands it)
                     OR (e.repeat_rule IS NOT NULL AND (e.series_end IS NULL OR e.series_end > $1)))
                AND u.timezone IS NOT DISTINCT FROM $3::text
                AND p.user_id > $4
                AND NOT EXISTS (SELECT 1 FROM notifications n
                                 WHERE n.kind = 'agenda' AND n.user_id = p.user_id AND n.agenda_date = $5)
              ORDER BY p.user_id LIMIT $6",
            &[&from, &to, zone, &after, &date, &limit],
        )?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }
}
