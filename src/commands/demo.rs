//! `demo`: the whole product in a few seconds on a throwaway database, with no server.
//!
//! Two users (one in Paris reading French, one in New York reading English), one event
//! 45 minutes ahead, then the clock walks through the tick minutes: the assignment
//! notices, the 30-minute and 5-minute reminders as .eml files and inbox rows, a tick
//! that runs twice and sends nothing twice, and the final status. Every step goes
//! through the service, as the real commands do.

use std::path::PathBuf;

use chrono::{DurationRound, TimeDelta};
use serde_json::json;

use crate::clock::Clock;
use crate::config::{Config, Transport, VideoProvider};
use crate::input::rfc3339;
use crate::service::booking::EventDraft;
use crate::service::tick::TickOptions;
use crate::service::users::UserInput;
use crate::service::{InboxFilter, Service};
use crate::store::{Location, OpenMode};
use crate::Ctx;

pub fn run(ctx: &Ctx, keep: Option<PathBuf>) -> anyhow::Result<()> {
    let dir = match keep {
        Some(d) => d,
        None => {
            let mut bytes = [0u8; 6];
            getrandom::getrandom(&mut bytes).map_err(|e| anyhow::anyhow!("randomness: {e}"))?;
            std::env::temp_dir().join(format!("notifyctl-demo-{}", hex::encode(bytes)))
        }
    };
    crate::files::private_dir(&dir)?;
    let db = dir.join("demo.db");
    if db.exists() {
        anyhow::bail!(
            "{} already holds a demo database: pick an empty directory",
            dir.display()
        );
    }
    let mut config = Config::default();
    config.email.transport = Transport::File;
    config.video.provider = VideoProvider::Jitsi;
    let location = Location::Sqlite(db.clone());
    let start_clock = ctx.now().duration_trunc(TimeDelta::minutes(1))?;
    let at = |minutes: i64, mode: OpenMode| {
        Service::open(
            config.clone(),
            Clock::frozen(start_clock + TimeDelta::minutes(minutes)),
            location.clone(),
            mode,
        )
    };
    let say = |s: String| ctx.out.line(s);

    let mut s0 = at(0, OpenMode::Create)?;
    let mut users = Vec::new();
    for (email, name, tz, locale) in [
        ("ana@example.org", "Ana Martin", "Europe/Paris", "fr"),
        ("bob@example.com", "Bob Smith", "America/New_York", "en"),
    ] {
        users.push(s0.add_user(&UserInput {
            email: email.into(),
            name: name.into(),
            timezone: Some(tz.into()),
            locale: Some(locale.into()),
            email_enabled: true,
            ..UserInput::default()
        })?);
    }
    let starts_at = start_clock + TimeDelta::minutes(45);
    let ev = s0.add_event(
        &EventDraft {
            title: "Mentoring session".into(),
            start: rfc3339(starts_at),
            duration: Some("1h".into()),
            timezone: Some("Europe/Paris".into()),
            video: "auto".into(),
            participants: vec!["ana@example.org:mentor".into(), "bob@example.com:mentee".into()],
            ..Default::default()
        },
        false,
    )?;
    drop(s0);
    say(format!("demo database: {}", db.display()));
    say(format!(
        "{}: event {} '{}' created for {} (Ana, mentor; Bob, mentee), video {}",
        rfc3339(start_clock),
        ev.id,
        ev.title,
        rfc3339(starts_at),
        ev.video_url.as_deref().unwrap_or("-")
    ));

    let mut ticks = Vec::new();
    for (minute, note) in [
        (0, "assignment notices go out"),
        (14, "nothing due yet"),
        (15, "30 minutes before: the first reminder"),
        (
            15,
            "the same minute again (an overlapping cron run): nothing twice",
        ),
        (40, "5 minutes before: the second reminder"),
        (46, "the event has started: nothing more"),
    ] {
        let mut s = at(minute, OpenMode::Existing)?;
        let r = s.tick(TickOptions {
            max_runtime: None,
            mail_to_stderr: false,
        })?;
        say(format!(
            "{} tick ({note}): {} reminders created, {} emails sent",
            rfc3339(s.now()),
            r.summary.created,
            r.summary.sent
        ));
        ticks.push(json!({"at": rfc3339(s.now()), "created": r.summary.created, "sent": r.summary.sent}));
    }

    let mut last = at(46, OpenMode::Existing)?;
    let mut inboxes = Vec::new();
    for (id, who) in [(users[0], "Ana"), (users[1], "Bob")] {
        let mut items = Vec::new();
        last.inbox(&id.to_string(), &InboxFilter::default(), &mut |n| {
            items.push(n?);
            Ok(())
        })?;
        let (_, unread) = last.unread_count(&id.to_string())?;
        say(format!("{who}'s inbox ({unread} unread):"));
        for n in &items {
            say(format!("  [{}] {}", n.kind, n.title));
        }
        inboxes.push(json!({"user_id": id, "notifications": items}));
    }
    let outbox = last.outbox_dir();
    let mut files: Vec<String> = std::fs::read_dir(&outbox)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".eml"))
        .collect();
    files.sort();
    say(format!(
        "{} emails written to {} (open them in any mail client)",
        files.len(),
        outbox.display()
    ));
    if ctx.out.json {
        ctx.out.json(&json!({
            "database": db.display().to_string(),
            "outbox": outbox.display().to_string(),
            "event_id": ev.id,
            "ticks": ticks,
            "inboxes": inboxes,
            "emails": files,
        }));
    } else {
        say(format!(
            "try: notifyctl --db {} list --user ana@example.org",
            db.display()
        ));
    }
    Ok(())
}
