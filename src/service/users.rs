//! Users: adding, changing and removing the people who receive notices.

use super::{FieldError, Service};
use crate::error::user_error;
use crate::input::{check_text, limits, parse_tz, validate_email};
use crate::messages::Locale;
use crate::model::User;
use crate::store::{self, BrokenRow, NewUser, UserChanges};

/// The fields of a user as typed by an admin or read from an import file.
#[derive(Debug, Clone, Default)]
pub struct UserInput {
    pub email: String,
    pub name: String,
    pub timezone: Option<String>,
    pub locale: Option<String>,
    pub email_enabled: bool,
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
    Ok(NewUser {
        email,
        name,
        timezone,
        locale,
        email_enabled: input.email_enabled,
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
        };
        store::write(&mut *self.store, |ops| {
            let user = ops.find_user(key)?;
            ops.update_user(user.id, &changes)?;
            ops.user(user.id)?
                .ok_or_else(|| anyhow::anyhow!("user {} vanished during the update", user.id))
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
