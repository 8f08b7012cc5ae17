//! `user add|list|show|update|remove`.

use std::process::ExitCode;

use serde_json::json;

use crate::cli::{OnOff, UserCmd, UserFields};
use crate::error::user_error;
use crate::input::{parse_tz, validate_email};
use crate::messages::Locale;
use crate::model::User;
use crate::store::UserChanges;
use crate::Ctx;

/// Validated user fields, shared by `user add` and `import users`.
pub struct ValidUser {
    pub email: String,
    pub name: String,
    pub timezone: Option<String>,
    pub locale: Option<String>,
}

pub fn validate(
    email: &str,
    name: &str,
    tz: Option<&str>,
    locale: Option<&str>,
) -> anyhow::Result<ValidUser> {
    let email = validate_email(email)?;
    let name = name.trim();
    if name.is_empty() {
        return Err(user_error("a user needs a name (--name)"));
    }
    let timezone = tz
        .filter(|z| !z.trim().is_empty())
        .map(|z| parse_tz(z).map(|t| t.name().to_string()))
        .transpose()?;
    let locale = locale
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.parse::<Locale>()
                .map(|l| l.as_str().to_string())
                .map_err(|e| user_error(e.to_string()))
        })
        .transpose()?;
    Ok(ValidUser {
        email,
        name: name.to_string(),
        timezone,
        locale,
    })
}

pub fn run(ctx: &Ctx, cmd: UserCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        UserCmd::Add(f) => add(ctx, f),
        UserCmd::List => {
            let users = ctx.store()?.list_users()?;
            if ctx.out.json {
                ctx.out.json(&users);
            } else {
                print_table(ctx, &users);
            }
            Ok(ExitCode::SUCCESS)
        }
        UserCmd::Show { user } => {
            let u = ctx.store()?.find_user(&user)?;
            show(ctx, &u);
            Ok(ExitCode::SUCCESS)
        }
        UserCmd::Update { user, fields } => {
            let mut changes = UserChanges::default();
            if let Some(e) = &fields.email {
                changes.email = Some(validate_email(e)?);
            }
            if let Some(n) = &fields.name {
                if n.trim().is_empty() {
                    return Err(user_error("--name cannot be empty"));
                }
                changes.name = Some(n.trim().to_string());
            }
            if let Some(z) = &fields.tz {
                changes.timezone = Some(if z == "default" {
                    None
                } else {
                    Some(parse_tz(z)?.name().to_string())
                });
            }
            if let Some(l) = &fields.locale {
                changes.locale = Some(if l == "default" {
                    None
                } else {
                    Some(
                        l.parse::<Locale>()
                            .map_err(|e| user_error(e.to_string()))?
                            .as_str()
                            .to_string(),
                    )
                });
            }
            changes.email_enabled = fields.email_notices.map(|v| matches!(v, OnOff::On));
            let u = ctx.store()?.update_user(&user, &changes)?;
            show(ctx, &u);
            Ok(ExitCode::SUCCESS)
        }
        UserCmd::Remove { user } => {
            let u = ctx.store()?.remove_user(&user)?;
            super::created(
                ctx,
                json!({"id": u.id, "email": u.email, "removed": true}),
                format!("removed user {} <{}>", u.id, u.email),
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn add(ctx: &Ctx, f: UserFields) -> anyhow::Result<ExitCode> {
    let v = validate(&f.email, &f.name, f.tz.as_deref(), f.locale.as_deref())?;
    let mut store = ctx.store()?;
    let id = store.add_user(
        &v.email,
        &v.name,
        v.timezone.as_deref(),
        v.locale.as_deref(),
        !f.no_email,
        ctx.now(),
    )?;
    super::created(ctx, json!({"id": id, "email": v.email}), id.to_string());
    Ok(ExitCode::SUCCESS)
}

fn show(ctx: &Ctx, u: &User) {
    if ctx.out.json {
        ctx.out.json(u);
        return;
    }
    ctx.out.line(format!("id:        {}", u.id));
    ctx.out.line(format!("email:     {}", u.email));
    ctx.out.line(format!("name:      {}", u.name));
    ctx.out.line(format!(
        "timezone:  {}",
        u.timezone.as_deref().unwrap_or("(default)")
    ));
    ctx.out.line(format!(
        "locale:    {}",
        u.locale.as_deref().unwrap_or("(default)")
    ));
    ctx.out.line(format!(
        "notices:   {}",
        if u.email_enabled {
            "email and in-app"
        } else {
            "in-app only"
        }
    ));
}

fn print_table(ctx: &Ctx, users: &[User]) {
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|u| {
            vec![
                u.id.to_string(),
                u.email.clone(),
                crate::output::cell(&u.name, 30),
                u.timezone.clone().unwrap_or_else(|| "-".into()),
                u.locale.clone().unwrap_or_else(|| "-".into()),
                if u.email_enabled {
                    "on".into()
                } else {
                    "off".into()
                },
            ]
        })
        .collect();
    ctx.out
        .table(&["ID", "EMAIL", "NAME", "ZONE", "LOCALE", "EMAIL"], &rows);
}
