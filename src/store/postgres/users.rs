//! Users: who receives notices, in which zone and language.

use ::postgres::error::SqlState;
use ::postgres::Row;
use chrono::{DateTime, Utc};

use super::{broken, connect, Cols, PgStore};
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

fn duplicate_email(email: &str) -> anyhow::Error {
    user_error(format!(
        "a user with email {email} already exists (an email address belongs to one user)"
    ))
}

impl PgStore {
    fn user_where(
        &mut self,
        clause: &str,
        key: &(dyn postgres::types::ToSql + Sync),
    ) -> anyhow::Result<Option<User>> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE {clause}");
        match self.query_opt(&sql, &[key])? {
            Some(r) => Ok(Some(decode(&r).map_err(broken)?)),
            None => Ok(None),
        }
    }

    fn email_taken(&mut self, email: &str, except: i64) -> anyhow::Result<bool> {
        Ok(self
            .query_opt(
                "SELECT 1 FROM users WHERE lower(email) = lower($1) AND id <> $2",
                &[&email, &except],
            )?
            .is_some())
    }
}

impl UserOps for PgStore {
    fn insert_user(&mut self, u: &NewUser, now: DateTime<Utc>) -> anyhow::Result<i64> {
        // ON CONFLICT: a taken address must not abort the transaction (an import goes on
        // to report every row); NOT EXISTS: nor use up an id from the identity sequence.
        let row = self.query_opt(
            "INSERT INTO users (email, name, timezone, locale, email_enabled, created_at, phone, ntfy_topic, quiet_hours)
             SELECT $1::text, $2::text, $3::text, $4::text, $5::boolean, $6::timestamptz, $7::text, $8::text, $9::text
              WHERE NOT EXISTS (SELECT 1 FROM users WHERE lower(email) = lower($1::text))
             ON CONFLICT DO NOTHING
             RETURNING id",
            &[
                &u.email,
                &u.name,
                &u.timezone,
                &u.locale,
                &u.email_enabled,
                &now,
                &u.phone,
                &u.ntfy_topic,
                &u.quiet_hours,
            ],
        )?;
        match row {
            Some(r) => Ok(r.try_get(0)?),
            None => Err(duplicate_email(&u.email)),
        }
    }

    fn find_user(&mut self, key: &str) -> anyhow::Result<User> {
        let key = key.trim();
        let found = match key.parse::<i64>() {
            Ok(id) => self.user_where("id = $1", &id)?,
            Err(_) => self.user_where("lower(email) = lower($1)", &key)?,
        };
        found.ok_or_else(|| {
            user_error(format!(
                "unknown user '{}': give a user id or email (see `notifyctl user list`)",
                crate::input::printable(key, 80)
            ))
        })
    }

    fn user(&mut self, id: i64) -> anyhow::Result<Option<User>> {
        self.user_where("id = $1", &id)
    }

    fn list_users(&mut self, each: Each<Result<User, BrokenRow>>) -> anyhow::Result<()> {
        self.stream(&format!("SELECT {COLUMNS} FROM users ORDER BY id"), &[], |r| {
            each(decode(r))
        })
    }

    fn update_user(&mut self, id: i64, c: &UserChanges) -> anyhow::Result<()> {
        if let Some(email) = &c.email {
            if self.email_taken(email, id)? {
                return Err(duplicate_email(email));
            }
        }
        let result = self.execute(
            "UPDATE users SET email = coalesce($2::text, email), name = coalesce($3::text, name),
                    timezone = CASE WHEN $4::boolean THEN $5::text ELSE timezone END,
                    locale = CASE WHEN $6::boolean THEN $7::text ELSE locale END,
                    email_enabled = coalesce($8::boolean, email_enabled),
                    phone = CASE WHEN $9::boolean THEN $10::text ELSE phone END,
                    ntfy_topic = CASE WHEN $11::boolean THEN $12::text ELSE ntfy_topic END,
                    quiet_hours = CASE WHEN $13::boolean THEN $14::text ELSE quiet_hours END
              WHERE id = $1",
            &[
                &id,
                &c.email,
                &c.name,
                &c.timezone.is_some(),
                &c.timezone.clone().flatten(),
                &c.locale.is_some(),
                &c.locale.clone().flatten(),
                &c.email_enabled,
                &c.phone.is_some(),
                &c.phone.clone().flatten(),
                &c.ntfy_topic.is_some(),
                &c.ntfy_topic.clone().flatten(),
                &c.quiet_hours.is_some(),
                &c.quiet_hours.clone().flatten(),
            ],
        );
        match result {
            // Another host took the address between the check and the write.
            Err(e) if connect::sql_state(&e) == Some(SqlState::UNIQUE_VIOLATION) => {
                Err(duplicate_email(c.email.as_deref().unwrap_or("")))
            }
            other => other.map(drop),
        }
    }

    fn delete_user(&mut self, id: i64) -> anyhow::Result<()> {
        self.execute("DELETE FROM users WHERE id = $1", &[&id])?;
        Ok(())
    }

    fn preferences(&mut self, user_id: i64) -> anyhow::Result<Vec<Preference>> {
        let rows = self.query(
            "SELECT kind, channel, enabled FROM preferences WHERE user_id = $1 ORDER BY kind, channel",
            &[&user_id],
        )?;
        let mut out = Vec::new();
        for r in &rows {
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
        self.execute(
            "INSERT INTO preferences (user_id, kind, channel, enabled, updated_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (user_id, kind, channel) DO UPDATE SET enabled = EXCLUDED.enabled, updated_at = EXCLUDED.updated_at",
            &[&user_id, &kind, &channel, &enabled, &now],
        )?;
        Ok(())
    }

    fn clear_preferences(&mut self, user_id: i64, channel: &str) -> anyhow::Result<usize> {
        Ok(self.execute(
            "DELETE FROM preferences WHERE user_id = $1 AND channel = $2",
            &[&user_id, &channel],
        )? as usize)
    }
}
