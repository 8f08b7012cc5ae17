//! `event add|assign|unassign|update|cancel|list|show`.

use serde_json::json;

use crate::cli::{EventAdd, EventCmd, EventUpdate};
use crate::input::{parse_time, parse_tz, rfc3339};
use crate::model::ExceptionStatus;
use crate::service::booking::{self, EventDraft, EventView};
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
        EventCmd::Cancel {
            event,
            occurrence: None,
            from: Some(from),
        } => {
            let rest = ctx.service()?.cancel_from(event, &from)?;
            let e = &rest.event;
            let human = if rest.whole_series {
                format!(
                    "cancelled series {} ({} participants notified)",
                    e.id, rest.notified
                )
            } else {
                format!(
                    "cancelled the occurrences of event {} from {} on; the series now ends at {} ({} participants notified)",
                    e.id,
                    rfc3339(rest.from.start),
                    e.series_end.map_or("-".to_string(), rfc3339),
                    rest.notified
                )
            };
            super::created(
                ctx,
                json!({"id": e.id, "status": e.status, "repeat_rule": e.repeat_rule,
                       "series_end": e.series_end.map(rfc3339),
                       "from": {"original_start": rfc3339(rest.from.original_start),
                                "starts_at": rfc3339(rest.from.start)},
                       "notified": rest.notified}),
                human,
            );
            Ok(())
        }
        EventCmd::Cancel {
            event,
            occurrence: None,
            from: None,
        } => {
            let (e, n) = ctx.service()?.cancel_event(event)?;
            let what = if e.is_series() { "series" } else { "event" };
            super::created(
                ctx,
                json!({"id": e.id, "status": "cancelled", "notified": n}),
                format!("cancelled {what} {} ({n} participants notified)", e.id),
            );
            Ok(())
        }
        EventCmd::Cancel {
            event,
            occurrence: Some(occurrence),
            ..
        } => {
            let (e, o, n) = ctx.service()?.cancel_occurrence(event, &occurrence)?;
            super::created(
                ctx,
                json!({"id": e.id, "status": e.status, "occurrence": {
                    "original_start": rfc3339(o.original_start), "starts_at": rfc3339(o.start),
                    "status": "cancelled"}, "notified": n}),
                format!(
                    "cancelled the occurrence of event {} at {} ({n} participants notified)",
                    e.id,
                    rfc3339(o.start)
                ),
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
            let view = ctx.service()?.event_view(event)?;
            show(ctx, &view);
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
        remind: a.remind,
        repeat: a.repeat,
    };
    let event = ctx.service()?.add_event(&draft, a.allow_overlap)?;
    super::created(
        ctx,
        json!({"id": event.id, "starts_at": rfc3339(event.starts_at), "ends_at": rfc3339(event.ends_at),
               "video_url": event.video_url, "remind_offsets": event.remind_offsets,
               "repeat_rule": event.repeat_rule, "series_end": event.series_end.map(rfc3339)}),
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
        remind: u.remind,
        repeat: u.repeat,
        occurrence: u.occurrence,
    };
    let booked = ctx.service()?.update_event(u.event, &changes)?;
    let event = &booked.event;
    let occurrence = booked.occurrence.map(|o| {
        json!({"original_start": rfc3339(o.original_start), "starts_at": rfc3339(o.start), "ends_at": rfc3339(o.end)})
    });
    let human = match (&booked.occurrence, booked.moved) {
        (Some(o), true) => format!(
            "the occurrence of event {} at {} moved to {} (participants notified)",
            event.id,
            rfc3339(o.original_start),
            rfc3339(o.start)
        ),
        (None, true) => format!(
            "event {} moved to {} (participants notified)",
            event.id,
            rfc3339(event.starts_at)
        ),
        (_, false) => format!("event {} updated", event.id),
    };
    super::created(
        ctx,
        json!({"id": event.id, "starts_at": rfc3339(event.starts_at), "ends_at": rfc3339(event.ends_at),
               "rescheduled": booked.moved, "remind_offsets": event.remind_offsets,
               "repeat_rule": event.repeat_rule, "occurrence": occurrence}),
        human,
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
        "REPEAT",
        "TITLE",
        "PARTICIPANTS",
    ]);
    service.list_events(&filter, &mut |listed| {
        match listed {
            Ok(listed) => listing.item(&listed, || {
                let e = &listed.event;
                let repeat = match &listed.occurrence {
                    Some(o) if o.moved => {
                        format!("series (moved from {})", rfc3339(o.original_start))
                    }
                    Some(_) => "series".to_string(),
                    None => "-".to_string(),
                };
                vec![
                    e.id.to_string(),
                    rfc3339(e.starts_at),
                    rfc3339(e.ends_at),
                    e.status.as_str().to_string(),
                    repeat,
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

fn show(ctx: &Ctx, view: &EventView) {
    if ctx.out.json {
        ctx.out.json(view);
        return;
    }
    let e = &view.event;
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
    let source = if view.own_offsets { "" } else { " (default)" };
    ctx.out.line(format!(
        "reminders: {}{source}",
        booking::offsets_text(&view.offsets)
    ));
    if let Some(rule) = &e.repeat_rule {
        ctx.out.line(format!("repeat:    {rule}"));
        ctx.out.line(format!(
            "ends:      {}",
            e.series_end.map_or("never".to_string(), rfc3339)
        ));
        for x in &e.exceptions {
            let what = match (x.starts_at, x.ends_at) {
                (Some(s), Some(end)) if x.status == ExceptionStatus::Moved => {
                    format!("moved to {} - {}", rfc3339(s), rfc3339(end))
                }
                _ => "cancelled".to_string(),
            };
            ctx.out
                .line(format!("occurrence {}: {what}", rfc3339(x.original_start)));
        }
        for o in &view.next {
            ctx.out.line(format!(
                "next:      {} - {}{}",
                rfc3339(o.starts_at),
                rfc3339(o.ends_at),
                if o.moved { " (moved)" } else { "" }
            ));
        }
    }
    for p in &e.participants {
        ctx.out
            .line(format!("participant: {} <{}> ({})", p.name, p.email, p.role));
    }
}
