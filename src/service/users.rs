//! Users: adding, changing and removing the people who receive notices.

use super::{FieldError, Service};
use crate::error::user_error;
use crate::input::{check_text, limits, parse_ntfy_topic, parse_phone, parse_tz, validate_email};
use crate::messages::Locale;
use crate::model::{Channel, User};
use crate::quiet_hours::QuietHours;
use crate::store::{self, BrokenRow, NewUser, UserChanges};

/// The fields of a user as typed by an admin or read from an import file.
#[derive(Debug, Clone, Default)]
pub struct UserInput {
    pub email: String,
    pub name: String,
    pub timezone: Option<String>,
    pub locale: Option<String>,
    pub email_enabled: bool,
    /// E.164, for SMS.
    pub phone: Option<String>,
    /// An ntfy topic, or `auto` for an unguessable one.
    pub ntfy_topic: Option<String>,
    /// `HH:MM-HH:MM` in the user's zone.
    pub quiet_hours: Option<String>,
}

/// A fresh, unguessable ntfy topic: a topic is all it takes to read someone's push
/// notifications on a public server.
pub fn random_topic() -> anyhow::Result<String> {
    let mut bytes = [0u8; 12];
    getrandom::getrandom(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for an ntfy topic: {e}"))?;
    Ok(format!("notifyctl-{}", hex::encode(bytes)))
}

fn topic(t: &str) -> anyhow::Result<String> {
    match t.trim() {
        "auto" => random_topic(),
        other => parse_ntfy_topic(other),
    }
}

/// `none` removes an optional setting; anything else is parsed.
fn optional<T>(v: &str, parse: impl FnOnce(&str) -> anyhow::Result<T>) -> anyhow::Result<Option<T>> {
    match v.trim() {
        "none" => Ok(None),
        other => parse(other).map(Some),
    }
}

/// Check and normalise a user's fields; the one place their rules live.
pub fn validate(input: &UserInput) -> Result<NewUser, FieldError> {
    let email = validate_email(&input.email).map_err(|e| FieldError::new("email", e))?;
    let name = validate_name(&input.name).map_err(|e| FieldError::new("name", e))?;
    let timezone = input
        .timezone
        .as_deref()
        .filter(|z| !z.trim().is_empty())
        .map(|z| parse_tz(z).map(|t| t.name().to_string()))
        .transpose()
        .map_err(|e| FieldError::new("timezone", e))?;
    let locale = input
        .locale
        .as_deref()
        .filter(|l| !l.trim().is_empty())
        .map(parse_locale)
        .transpose()
        .map_err(|e| FieldError::new("locale", e))?;
    let phone = input
        .phone
        .as_deref()
        .filter(|p| !p.trim().is_empty())
        .map(parse_phone)
        .transpose()
        .map_err(|e| FieldError::new("phone", e))?;
    let ntfy_topic = input
        .ntfy_topic
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .map(topic)
        .transpose()
        .map_err(|e| FieldError::new("ntfy_topic", e))?;
    let quiet_hours = input
        .quiet_hours
        .as_deref()
        .filter(|q| !q.trim().is_empty())
        .map(|q| QuietHours::parse(q).map(|q| q.to_string()))
        .transpose()
        .map_err(|e| FieldError::new("quiet_hours", e))?;
    Ok(NewUser {
        email,
        name,
        timezone,
        locale,
        email_enabled: input.email_enabled,
        phone,
        ntfy_topic,
        quiet_hours,
    })
}

pub fn validate_name(name: &str) -> anyhow::Result<String> {
    if name.trim().is_empty() {
        return Err(user_error("a user needs a name (--name)"));
    }
    check_text("the name", name, limits::NAME)
}

fn parse_locale(l: &str) -> anyhow::Result<String> {
    l.parse::<Locale>()
        .map(|l| l.as_str().to_string())
        .map_err(|e| user_error(e.to_string()))
}

/// A change to a user as typed: `Some("default")` resets zone or locale.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub email: Option<String>,
    pub name: Option<String>,
    pub timezone: Option<String>,
    pub locale: Option<String>,
    pub email_enabled: Option<bool>,
    /// A number, or `none`.
    pub phone: Option<String>,
    /// A topic, `auto` or `none`.
    pub ntfy_topic: Option<String>,
    /// `HH:MM-HH:MM` or `none`.
    pub quiet_hours: Option<String>,
}

impl Service {
    pub fn add_user(&mut self, input: &UserInput) -> anyhow::Result<i64> {
        let user = validate(input).map_err(|f| f.error)?;
        let now = self.now();
        store::write(&mut *self.store, |ops| ops.insert_user(&user, now))
    }

    pub fn find_user(&mut self, key: &str) -> anyhow::Result<User> {
        self.store.find_user(key)
    }

    pub fn list_users(
        &mut self,
        each: &mut dyn FnMut(Result<User, BrokenRow>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.store.list_users(each)
    }

    pub fn update_user(&mut self, key: &str, u: &UserUpdate) -> anyhow::Result<User> {
        let changes = UserChanges {
            email: u.email.as_deref().map(validate_email).transpose()?,
            name: u.name.as_deref().map(validate_name).transpose()?,
            timezone: u
                .timezone
                .as_deref()
                .map(|z| match z {
                    "default" => Ok(None),
                    z => parse_tz(z).map(|t| Some(t.name().to_string())),
                })
                .transpose()?,
            locale: u
                .locale
                .as_deref()
                .map(|l| match l {
                    "default" => Ok(None),
                    l => parse_locale(l).map(Some),
                })
                .transpose()?,
            email_enabled: u.email_enabled,
            phone: u.phone.as_deref().map(|p| optional(p, parse_phone)).transpose()?,
            ntfy_topic: u.ntfy_topic.as_deref().map(|t| optional(t, topic)).transpose()?,
            quiet_hours: u
                .quiet_hours
                .as_deref()
                .map(|q| optional(q, |q| QuietHours::parse(q).map(|q| q.to_string())))
                .transpose()?,
        };
        let now = self.now();
        store::write(&mut *self.store, |ops| {
            let user = ops.find_user(key)?;
            ops.update_user(user.id, &changes)?;
            if changes.email_enabled.is_some() {
                // `--email-notices on|off` is email for every kind: it replaces the
                // per-kind email choices (see `prefs set --kind all`).
                ops.clear_preferences(user.id, Channel::Email.as_str())?;
            }
            let updated = ops
                .user(user.id)?
                .ok_or_else(|| anyhow::anyhow!("user {} vanished during the update", user.id))?;
            // Held messages wait for the end of the quiet hours as they were: new hours (or
            // a new zone) are decided again by the next tick.
            if updated.quiet_hours != user.quiet_hours || updated.timezone != user.timezone {
                ops.release_held(user.id, now)?;
            }
            Ok(updated)
        })
    }

    /// Remove a user with their participations, notifications and pending deliveries.
    pub fn remove_user(&mut self, key: &str) -> anyhow::Result<User> {
        store::write(&mut *self.store, |ops| {
            let user = ops.find_user(key)?;
            ops.delete_user(user.id)?;
            Ok(user)
        })
    }
}
