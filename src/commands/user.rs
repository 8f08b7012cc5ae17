//! `user add|list|show|update|remove`.

use serde_json::json;

use crate::cli::{OnOff, UserCmd, UserFields};
use crate::model::User;
use crate::service::users::{UserInput, UserUpdate};
use crate::Ctx;

pub fn run(ctx: &Ctx, cmd: UserCmd) -> anyhow::Result<()> {
    match cmd {
        UserCmd::Add(f) => add(ctx, f),
        UserCmd::List => {
            let mut listing = ctx
                .out
                .listing(&["ID", "EMAIL", "NAME", "ZONE", "LOCALE", "EMAIL"]);
            ctx.service()?.list_users(&mut |u| {
                match u {
                    Ok(u) => listing.item(&u, || user_row(&u)),
                    Err(b) => super::report_broken(&b),
                }
                Ok(())
            })?;
            listing.finish();
            Ok(())
        }
        UserCmd::Show { user } => {
            let u = ctx.service()?.find_user(&user)?;
            show(ctx, &u);
            Ok(())
        }
        UserCmd::Update { user, fields } => {
            let update = UserUpdate {
                email: fields.email,
                name: fields.name,
                timezone: fields.tz,
                locale: fields.locale,
                email_enabled: fields.email_notices.map(|v| matches!(v, OnOff::On)),
            };
            let u = ctx.service()?.update_user(&user, &update)?;
            show(ctx, &u);
            Ok(())
        }
        UserCmd::Remove { user } => {
            let u = ctx.service()?.remove_user(&user)?;
            super::created(
                ctx,
                json!({"id": u.id, "email": u.email, "removed": true}),
                format!("removed user {} <{}>", u.id, u.email),
            );
            Ok(())
        }
    }
}

fn add(ctx: &Ctx, f: UserFields) -> anyhow::Result<()> {
    let input = UserInput {
        email: f.email,
        name: f.name,
        timezone: f.tz,
        locale: f.locale,
        email_enabled: !f.no_email,
    };
    let id = ctx.service()?.add_user(&input)?;
    super::created(
        ctx,
        json!({"id": id, "email": input.email.trim()}),
        id.to_string(),
    );
    Ok(())
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

fn user_row(u: &User) -> Vec<String> {
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
}
