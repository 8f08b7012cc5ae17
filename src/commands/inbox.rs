//! The in-app inbox: `send`, `list`, `show`, `mark-read`, `mark-unread`, `unread-count`,
//! `delete`, `clear-read`.

use std::process::ExitCode;

use serde_json::json;

use crate::error::user_error;
use crate::input::rfc3339;
use crate::model::{Kind, NewNotice, Notification};
use crate::notices;
use crate::store::{self, InboxFilter};
use crate::Ctx;

pub fn send(ctx: &Ctx, user: &str, title: &str, body: &str, no_email: bool) -> anyhow::Result<ExitCode> {
    if title.trim().is_empty() {
        return Err(user_error("a notice needs a title (--title)"));
    }
    let mut store = ctx.store()?;
    let id = store.write(|tx| {
        let u = store::find_user(tx, user)?;
        let mc = notices::message_context(ctx, &u, Kind::Custom, None, None, None, Some((title, body)));
        // Render now so a broken template fails the command, not a later tick.
        ctx.templates()?.render(&mc)?;
        let notice = NewNotice {
            user_id: u.id,
            kind: Kind::Custom,
            event_id: None,
            offset_minutes: None,
            event_start: None,
            event_sequence: None,
            previous_start: None,
            title: title.trim().to_string(),
            body: body.to_string(),
            channels: notices::channels(ctx, &u, !no_email),
        };
        store::insert_notice(tx, &notice, ctx.now())?
            .ok_or_else(|| anyhow::anyhow!("custom notice was not stored"))
    })?;
    super::created(ctx, json!({"id": id}), id.to_string());
    Ok(ExitCode::SUCCESS)
}

pub fn list(
    ctx: &Ctx,
    user: &str,
    unread: bool,
    kind: Option<String>,
    limit: Option<u32>,
) -> anyhow::Result<ExitCode> {
    if let Some(k) = &kind {
        k.parse::<Kind>().map_err(|e| user_error(e.to_string()))?;
    }
    let store = ctx.store()?;
    let u = store.find_user(user)?;
    let items = store.inbox(
        u.id,
        &InboxFilter {
            unread_only: unread,
            kind,
            limit,
        },
    )?;
    if ctx.out.json {
        ctx.out.json(&items);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|n| {
            vec![
                n.id.to_string(),
                if n.read_at.is_some() {
                    " ".into()
                } else {
                    "*".into()
                },
                n.kind.clone(),
                rfc3339(n.created_at),
                crate::output::cell(&n.title, 60),
            ]
        })
        .collect();
    ctx.out
        .table(&["ID", "NEW", "KIND", "CREATED (UTC)", "TITLE"], &rows);
    Ok(ExitCode::SUCCESS)
}

pub fn show(ctx: &Ctx, id: i64) -> anyhow::Result<ExitCode> {
    let n = ctx.store()?.notification(id)?;
    print_one(ctx, &n);
    Ok(ExitCode::SUCCESS)
}

fn print_one(ctx: &Ctx, n: &Notification) {
    if ctx.out.json {
        ctx.out.json(n);
        return;
    }
    ctx.out.line(format!("id:       {}", n.id));
    ctx.out
        .line(format!("to:       {} (user {})", n.user_email, n.user_id));
    ctx.out.line(format!("kind:     {}", n.kind));
    if let Some(e) = n.event_id {
        ctx.out.line(format!("event:    {e}"));
    }
    if let Some(o) = n.offset_minutes {
        ctx.out.line(format!("offset:   {o} minutes"));
    }
    ctx.out.line(format!("created:  {}", rfc3339(n.created_at)));
    ctx.out.line(format!(
        "read:     {}",
        n.read_at.map(rfc3339).unwrap_or_else(|| "no".into())
    ));
    ctx.out.line(format!("title:    {}", n.title));
    ctx.out.line("");
    ctx.out.line(&n.body);
}

fn changed(ctx: &Ctx, what: &str, n: usize) {
    if ctx.out.json {
        ctx.out.json(&json!({ "changed": n }));
    } else {
        ctx.out.line(format!("{n} notification(s) {what}"));
    }
}

pub fn mark_read(ctx: &Ctx, ids: &[i64], all: bool, user: Option<&str>) -> anyhow::Result<ExitCode> {
    let mut store = ctx.store()?;
    let n = if all {
        let user = user.ok_or_else(|| user_error("--all needs --user"))?;
        let u = store.find_user(user)?;
        store.mark_all_read(u.id, ctx.now())?
    } else {
        store.mark_read(ids, ctx.now())?
    };
    changed(ctx, "marked read", n);
    Ok(ExitCode::SUCCESS)
}

pub fn mark_unread(ctx: &Ctx, ids: &[i64]) -> anyhow::Result<ExitCode> {
    let n = ctx.store()?.mark_unread(ids)?;
    changed(ctx, "marked unread", n);
    Ok(ExitCode::SUCCESS)
}

pub fn unread_count(ctx: &Ctx, user: &str) -> anyhow::Result<ExitCode> {
    let store = ctx.store()?;
    let u = store.find_user(user)?;
    let n = store.unread_count(u.id)?;
    if ctx.out.json {
        ctx.out.json(&json!({"user_id": u.id, "unread": n}));
    } else {
        ctx.out.line(n.to_string());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn delete(ctx: &Ctx, ids: &[i64]) -> anyhow::Result<ExitCode> {
    let n = ctx.store()?.delete_notifications(ids)?;
    changed(ctx, "deleted", n);
    Ok(ExitCode::SUCCESS)
}

pub fn clear_read(ctx: &Ctx, user: &str) -> anyhow::Result<ExitCode> {
    let mut store = ctx.store()?;
    let u = store.find_user(user)?;
    let n = store.clear_read(u.id)?;
    changed(ctx, "deleted", n);
    Ok(ExitCode::SUCCESS)
}
