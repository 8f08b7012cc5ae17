//! The in-app inbox: `send`, `list`, `show`, `mark-read`, `mark-unread`, `unread-count`,
//! `delete`, `clear-read`.

use serde_json::json;

use crate::error::user_error;
use crate::input::rfc3339;
use crate::model::Notification;
use crate::service::InboxFilter;
use crate::Ctx;

pub fn send(ctx: &Ctx, user: &str, title: &str, body: &str, no_email: bool) -> anyhow::Result<()> {
    let id = ctx.service()?.send_custom(user, title, body, !no_email)?;
    super::created(ctx, json!({"id": id}), id.to_string());
    Ok(())
}

pub fn list(
    ctx: &Ctx,
    user: &str,
    unread: bool,
    kind: Option<String>,
    limit: Option<u32>,
) -> anyhow::Result<()> {
    let filter = InboxFilter {
        unread_only: unread,
        kind,
        limit,
    };
    // Streamed: memory stays flat whatever the inbox holds.
    let mut listing = ctx.out.listing(&["ID", "NEW", "KIND", "CREATED (UTC)", "TITLE"]);
    ctx.service()?.inbox(user, &filter, &mut |n| {
        match n {
            Ok(n) => listing.item(&n, || {
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
            }),
            Err(b) => super::report_broken(&b),
        }
        Ok(())
    })?;
    listing.finish();
    Ok(())
}

pub fn show(ctx: &Ctx, id: i64) -> anyhow::Result<()> {
    let n = ctx.service()?.notification(id)?;
    print_one(ctx, &n);
    Ok(())
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

pub fn mark_read(ctx: &Ctx, ids: &[i64], all: bool, user: Option<&str>) -> anyhow::Result<()> {
    let mut service = ctx.service()?;
    let n = if all {
        let user = user.ok_or_else(|| user_error("--all needs --user"))?;
        service.mark_all_read(user)?
    } else {
        service.mark_read(ids)?
    };
    changed(ctx, "marked read", n);
    Ok(())
}

pub fn mark_unread(ctx: &Ctx, ids: &[i64]) -> anyhow::Result<()> {
    let n = ctx.service()?.mark_unread(ids)?;
    changed(ctx, "marked unread", n);
    Ok(())
}

pub fn unread_count(ctx: &Ctx, user: &str) -> anyhow::Result<()> {
    let (user_id, n) = ctx.service()?.unread_count(user)?;
    if ctx.out.json {
        ctx.out.json(&json!({"user_id": user_id, "unread": n}));
    } else {
        ctx.out.line(n.to_string());
    }
    Ok(())
}

pub fn delete(ctx: &Ctx, ids: &[i64]) -> anyhow::Result<()> {
    let n = ctx.service()?.delete_notifications(ids)?;
    changed(ctx, "deleted", n);
    Ok(())
}

pub fn clear_read(ctx: &Ctx, user: &str) -> anyhow::Result<()> {
    let n = ctx.service()?.clear_read(user)?;
    changed(ctx, "deleted", n);
    Ok(())
}
