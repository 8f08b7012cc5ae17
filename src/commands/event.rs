//! `event add|assign|unassign|update|cancel|list|show`.

use serde_json::json;

use crate::cli::{EventAdd, EventCmd, EventUpdate};
use crate::input::{parse_time, parse_tz, rfc3339};
use crate::model::Event;
use crate::service::booking::{self, EventDraft};
use crate::service::EventFilter;
use crate::Ctx;

pub fn run(ctx: &Ctx, cmd: EventCmd) -> anyhow::Result<()> {
    match cmd {
        EventCmd::Add(a) => add(ctx, a),
        EventCmd::Assign {
            event,
            user,
            role,
            allow_overlap,
        } => {
            let (e, u) = ctx.service()?.assign(event, &user, &role, allow_overlap)?;
            super::created(
                ctx,
                json!({"id": e.id, "user_id": u.id, "assigned": true}),
                format!("assigned {} to event {}", u.email, e.id),
            );
            Ok(())
        }
        EventCmd::Unassign { event, user } => {
            let (e, u) = ctx.service()?.unassign(event, &user)?;
            super::created(
                ctx,
                json!({"id": e.id, "user_id": u.id, "assigned": false}),
                format!("removed {} from event {}", u.email, e.id),
            );
            Ok(())
        }
        EventCmd::Update(u) => update(ctx, u),
        EventCmd::Cancel { event } => {
            let (e, n) = ctx.service()?.cancel_event(event)?;
            super::created(
                ctx,
                json!({"id": e.id, "status": "cancelled", "notified": n}),
                format!("cancelled event {} ({n} participants notified)", e.id),
            );
            Ok(())
        }
        EventCmd::List {
            user,
            from,
            to,
            all,
            tz,
        } => list(ctx, user, from, to, all, tz),
        EventCmd::Show { event } => {
            let e = ctx.service()?.event(event)?;
            show(ctx, &e);
            Ok(())
        }
    }
}

fn add(ctx: &Ctx, a: EventAdd) -> anyhow::Result<()> {
    let draft = EventDraft {
        title: a.title,
        start: a.start,
        end: a.end,
        duration: a.duration,
        timezone: a.tz,
        video: a.video,
        participants: a.participants,
    };
    let event = ctx.service()?.add_event(&draft, a.allow_overlap)?;
    super::created(
        ctx,
        json!({"id": event.id, "starts_at": rfc3339(event.starts_at), "ends_at": rfc3339(event.ends_at), "video_url": event.video_url}),
        event.id.to_string(),
    );
    Ok(())
}

fn update(ctx: &Ctx, u: EventUpdate) -> anyhow::Result<()> {
    let changes = booking::EventUpdate {
        title: u.title,
        start: u.start,
        end: u.end,
        duration: u.duration,
        timezone: u.tz,
        video: u.video,
        allow_overlap: u.allow_overlap,
    };
    let booked = ctx.service()?.update_event(u.event, &changes)?;
    let event = &booked.event;
    super::created(
        ctx,
        json!({"id": event.id, "starts_at": rfc3339(event.starts_at), "ends_at": rfc3339(event.ends_at), "rescheduled": booked.moved}),
        if booked.moved {
            format!(
                "event {} moved to {} (participants notified)",
                event.id,
                rfc3339(event.starts_at)
            )
        } else {
            format!("event {} updated", event.id)
        },
    );
    Ok(())
}

fn list(
    ctx: &Ctx,
    user: Option<String>,
    from: Option<String>,
    to: Option<String>,
    all: bool,
    tz: Option<String>,
) -> anyhow::Result<()> {
    let mut service = ctx.service()?;
    let zone = match &tz {
        Some(z) => parse_tz(z)?,
        None => ctx.config.default_tz(),
    };
    let filter = EventFilter {
        user_id: user.map(|u| service.find_user(&u).map(|u| u.id)).transpose()?,
        from: from.map(|f| parse_time(&f, zone)).transpose()?,
        to: to.map(|t| parse_time(&t, zone)).transpose()?,
        include_cancelled: all,
    };
    // Streamed: memory stays flat whatever the window.
    let mut listing = ctx.out.listing(&[
        "ID",
        "START (UTC)",
        "END (UTC)",
        "STATUS",
        "TITLE",
        "PARTICIPANTS",
    ]);
    service.list_events(&filter, &mut |e| {
        match e {
            Ok(e) => listing.item(&e, || {
                vec![
                    e.id.to_string(),
                    rfc3339(e.starts_at),
                    rfc3339(e.ends_at),
                    e.status.as_str().to_string(),
                    crate::output::cell(&e.title, 40),
                    crate::output::cell(
                        &e.participants
                            .iter()
                            .map(|p| p.email.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        80,
                    ),
                ]
            }),
            Err(b) => super::report_broken(&b),
        }
        Ok(())
    })?;
    listing.finish();
    Ok(())
}

fn show(ctx: &Ctx, e: &Event) {
    if ctx.out.json {
        ctx.out.json(e);
        return;
    }
    ctx.out.line(format!("id:        {}", e.id));
    ctx.out.line(format!("title:     {}", e.title));
    ctx.out.line(format!("status:    {}", e.status.as_str()));
    ctx.out.line(format!("start:     {}", rfc3339(e.starts_at)));
    ctx.out.line(format!("end:       {}", rfc3339(e.ends_at)));
    ctx.out
        .line(format!("zone:      {}", e.timezone.as_deref().unwrap_or("-")));
    ctx.out
        .line(format!("video:     {}", e.video_url.as_deref().unwrap_or("-")));
    ctx.out.line(format!("sequence:  {}", e.sequence));
    for p in &e.participants {
        ctx.out
            .line(format!("participant: {} <{}> ({})", p.name, p.email, p.role));
    }
}
