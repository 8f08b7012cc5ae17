//! Users: who receives notices, in which zone and language.

use chrono::{DateTime, Utc};
use rusqlite::{params, Row};

use super::{broken, ts, Cols, SqliteStore};
use crate::error::user_error;
use crate::model::User;
use crate::store::{BrokenRow, Each, NewUser, Preference, UserChanges, UserOps};

const COLUMNS: &str =
    "id, email, name, timezone, locale, email_enabled, created_at, phone, ntfy_topic, quiet_hours";

fn decode(r: &Row) -> Result<User, BrokenRow> {
    let c = Cols::new(r, "users", 0);
    Ok(User {
        id: c.i64(0)?,
        email: c.text(1)?,
        name: c.text(2)?,
        timezone: c.opt_text(3)?,
        locale: c.opt_text(4)?,
        email_enabled: c.bool(5)?,
        created_at: c.ts(6)?,
        phone: c.opt_text(7)?,
        ntfy_topic: c.opt_text(8)?,
        quiet_hours: c.opt_text(9)?,
    })
}

fn duplicate_email(e: rusqlite::Error, email: &str) -> anyhow::Error {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => user_error(format!(
            "a user with email {email} already exists (an email address belongs to one user)"
        )),
        _ => e.into(),
    }
}

impl SqliteStore {
    fn user_where(&self, clause: &str, key: &dyn rusqlite::ToSql) -> anyhow::Result<Option<User>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE {clause}"))?;
        let mut rows = stmt.query([key])?;
        match rows.next()? {
            Some(r) => Ok(Some(decode(r).map_err(broken)?)),
            None => Ok(None),
        }
    }
}

impl UserOps for SqliteStore {
    fn insert_user(&mut self, u: &NewUser, now: DateTime<Utc>) -> anyhow::Result<i64> {
        self.conn
            .prepare_cached(
                "INSERT INTO users (email, name, timezone, locale, email_enabled, created_at, phone, ntfy_topic, quiet_hours)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                u.email,
                u.name,
                u.timezone,
                u.locale,
                u.email_enabled,
                ts(now),
                u.phone,
                u.ntfy_topic,
                u.quiet_hours
            ])
            .map_err(|e| duplicate_email(e, &u.email))?;
        Ok(self.conn.last_insert_rowid())
    }

    fn find_user(&mut self, key: &str) -> anyhow::Result<User> {
        let key = key.trim();
        let found = match key.parse::<i64>() {
            Ok(id) => self.user_where("id = ?1", &id)?,
            Err(_) => self.user_where("email = ?1", &key)?,
        };
        found.ok_or_else(|| {
            user_error(format!(
                "unknown user '{}': give a user id or email (see `notifyctl user list`)",
                crate::input::printable(key, 80)
            ))
        })
    }

    fn user(&mut self, id: i64) -> anyhow::Result<Option<User>> {
        self.user_where("id = ?1", &id)
    }

    fn list_users(&mut self, each: Each<Result<User, BrokenRow>>) -> anyhow::Result<()> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM users ORDER BY id"))?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            each(decode(r))?;
        }
        Ok(())
    }

    fn update_user(&mut self, id: i64, c: &UserChanges) -> anyhow::Result<()> {
        let email = c.email.clone();
        self.conn
            .execute(
                "UPDATE users SET email = coalesce(?2, email), name = coalesce(?3, name),
                    timezone = CASE WHEN ?4 THEN ?5 ELSE timezone END,
                    locale = CASE WHEN ?6 THEN ?7 ELSE locale END,
                    email_enabled = coalesce(?8, email_enabled),
                    phone = CASE WHEN ?9 THEN ?10 ELSE phone END,
                    ntfy_topic = CASE WHEN ?11 THEN ?12 ELSE ntfy_topic END,
                    quiet_hours = CASE WHEN ?13 THEN ?14 ELSE quiet_hours END
                 WHERE id = ?1",
                params![
                    id,
                    c.email,
                    c.name,
                    c.timezone.is_some(),
                    c.timezone.clone().flatten(),
                    c.locale.is_some(),
                    c.locale.clone().flatten(),
                    c.email_enabled,
                    c.phone.is_some(),
                    c.phone.clone().flatten(),
                    c.ntfy_topic.is_some(),
                    c.ntfy_topic.clone().flatten(),
                    c.quiet_hours.is_some(),
                    c.quiet_hours.clone().flatten(),
                ],
            )
            .map_err(|e| duplicate_email(e, email.as_deref().unwrap_or("")))?;
        Ok(())
    }

    fn delete_user(&mut self, id: i64) -> anyhow::Result<()> {
        self.conn.execute("DELETE FROM users WHERE id = ?1", [id])?;
        Ok(())
    }

    fn preferences(&mut self, user_id: i64) -> anyhow::Result<Vec<Preference>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT kind, channel, enabled FROM preferences WHERE user_id = ?1 ORDER BY kind, channel",
        )?;
        let mut rows = stmt.query([user_id])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let c = Cols::named(r, "preferences", format!("of user {user_id}"));
            out.push(
                (|| -> Result<Preference, BrokenRow> {
                    Ok(Preference {
                        kind: c.text(0)?,
                        channel: c.text(1)?,
                        enabled: c.bool(2)?,
                    })
                })()
                .map_err(broken)?,
            );
        }
        Ok(out)
    }

    fn put_preference(
        &mut self,
        user_id: i64,
        kind: &str,
        channel: &str,
        enabled: bool,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO preferences (user_id, kind, channel, enabled, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (user_id, kind, channel) DO UPDATE SET enabled = excluded.enabled, updated_at = excluded.updated_at",
            )?
            .execute(params![user_id, kind, channel, enabled, ts(now)])?;
        Ok(())
    }

    fn clear_preferences(&mut self, user_id: i64, channel: &str) -> anyhow::Result<usize> {
        Ok(self.conn.execute(
            "DELETE FROM preferences WHERE user_id = ?1 AND channel = ?2",
            params![user_id, channel],
        )?)
    }
}
