//! Users: who receives notices, in which zone and language.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Row};

use super::{get_ts, ts, Store};
use crate::error::user_error;
use crate::model::User;

const COLUMNS: &str = "id, email, name, timezone, locale, email_enabled, created_at";

fn from_row(r: &Row) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        email: r.get(1)?,
        name: r.get(2)?,
        timezone: r.get(3)?,
        locale: r.get(4)?,
        email_enabled: r.get(5)?,
        created_at: get_ts(r, 6)?,
    })
}

#[derive(Debug, Default, Clone)]
pub struct UserChanges {
    pub email: Option<String>,
    pub name: Option<String>,
    /// `Some(None)` clears the zone back to the default.
    pub timezone: Option<Option<String>>,
    pub locale: Option<Option<String>>,
    pub email_enabled: Option<bool>,
}

fn duplicate_email(e: rusqlite::Error, email: &str) -> anyhow::Error {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => user_error(format!(
            "a user with email {email} already exists (an email address belongs to one user)"
        )),
        _ => e.into(),
    }
}

pub(crate) fn insert_user(
    conn: &rusqlite::Connection,
    email: &str,
    name: &str,
    timezone: Option<&str>,
    locale: Option<&str>,
    email_enabled: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<i64> {
    conn.execute(
        "INSERT INTO users (email, name, timezone, locale, email_enabled, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![email, name, timezone, locale, email_enabled, ts(now)],
    )
    .map_err(|e| duplicate_email(e, email))?;
    Ok(conn.last_insert_rowid())
}

/// Find a user by numeric id or by email, as every `--user` argument allows.
pub(crate) fn find_user(conn: &rusqlite::Connection, key: &str) -> anyhow::Result<User> {
    let key = key.trim();
    let found = if let Ok(id) = key.parse::<i64>() {
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM users WHERE id = ?1"),
            [id],
            from_row,
        )
        .optional()?
    } else {
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM users WHERE email = ?1"),
            [key],
            from_row,
        )
        .optional()?
    };
    found.ok_or_else(|| {
        user_error(format!(
            "unknown user '{key}': give a user id or email (see `notifyctl user list`)"
        ))
    })
}

pub(crate) fn get_user(conn: &rusqlite::Connection, id: i64) -> anyhow::Result<User> {
    Ok(conn.query_row(
        &format!("SELECT {COLUMNS} FROM users WHERE id = ?1"),
        [id],
        from_row,
    )?)
}

impl Store {
    pub fn add_user(
        &mut self,
        email: &str,
        name: &str,
        timezone: Option<&str>,
        locale: Option<&str>,
        email_enabled: bool,
        now: DateTime<Utc>,
    ) -> anyhow::Result<i64> {
        self.write(|tx| insert_user(tx, email, name, timezone, locale, email_enabled, now))
    }

    pub fn find_user(&self, key: &str) -> anyhow::Result<User> {
        find_user(&self.conn, key)
    }

    pub fn list_users(&self) -> anyhow::Result<Vec<User>> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {COLUMNS} FROM users ORDER BY id"))?;
        let rows = stmt.query_map([], from_row)?.collect::<Result<_, _>>()?;
        Ok(rows)
    }

    pub fn update_user(&mut self, key: &str, changes: &UserChanges) -> anyhow::Result<User> {
        self.write(|tx| {
            let user = find_user(tx, key)?;
            let email = changes.email.clone().unwrap_or(user.email.clone());
            tx.execute(
                "UPDATE users SET email = ?2, name = ?3, timezone = ?4, locale = ?5, email_enabled = ?6
                 WHERE id = ?1",
                params![
                    user.id,
                    email,
                    changes.name.clone().unwrap_or(user.name.clone()),
                    changes.timezone.clone().unwrap_or(user.timezone.clone()),
                    changes.locale.clone().unwrap_or(user.locale.clone()),
                    changes.email_enabled.unwrap_or(user.email_enabled),
                ],
            )
            .map_err(|e| duplicate_email(e, &email))?;
            get_user(tx, user.id)
        })
    }

    /// Remove a user with their participations, notifications and pending deliveries.
    pub fn remove_user(&mut self, key: &str) -> anyhow::Result<User> {
        self.write(|tx| {
            let user = find_user(tx, key)?;
            tx.execute("DELETE FROM users WHERE id = ?1", [user.id])?;
            Ok(user)
        })
    }
}
