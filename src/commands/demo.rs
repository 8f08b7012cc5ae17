//! `demo`: the whole product in a few seconds on a throwaway database, with no server.
//!
//! Two users (one in Paris reading French, one in New York reading English), one event
//! 45 minutes ahead, then the clock walks through the tick minutes: the assignment
//! notices, the 30-minute and 5-minute reminders as .eml files and inbox rows, a tick
//! that runs twice and sends nothing twice, and the final status.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DurationRound, TimeDelta};
use serde_json::json;

use crate::channels::email::create_private_dir;
use crate::clock::Clock;
use crate::commands::event::{self, EventSpec};
use crate::commands::tick;
use crate::config::{Config, Transport, VideoProvider};
use crate::input::rfc3339;
use crate::output::Output;
use crate::store::{InboxFilter, NewEvent, OpenMode};
use crate::Ctx;

pub fn run(ctx: &Ctx, keep: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let dir = match keep {
        Some(d) => d,
        None => {
            let mut bytes = [0u8; 6];
            getrandom::getrandom(&mut bytes).map_err(|e| anyhow::anyhow!("randomness: {e}"))?;
            std::env::temp_dir().join(format!("notifyctl-demo-{}", hex::encode(bytes)))
        }
    };
    create_private_dir(&dir)?;
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
    let start_clock = ctx.now().duration_trunc(TimeDelta::minutes(1))?;
    let at = |minutes: i64| {
        let quiet = Output::new(true);
        Ctx::new(
            config.clone(),
            db.clone(),
            Clock::frozen(start_clock + TimeDelta::minutes(minutes)),
            quiet,
        )
    };
    let say = |s: String| ctx.out.line(s);

    let c0 = at(0);
    let mut store = c0.open_store(OpenMode::Create)?;
    let ana = store.add_user(
        "ana@example.org",
        "Ana Martin",
        Some("Europe/Paris"),
        Some("fr"),
        true,
        c0.now(),
    )?;
    let bob = store.add_user(
        "bob@example.com",
        "Bob Smith",
        Some("America/New_York"),
        Some("en"),
        true,
        c0.now(),
    )?;
    let starts_at = start_clock + TimeDelta::minutes(45);
    let spec = EventSpec {
        new: NewEvent {
            title: "Mentoring session".into(),
            starts_at,
            ends_at: starts_at + TimeDelta::hours(1),
            timezone: Some("Europe/Paris".into()),
            video_url: crate::video::resolve(
                &config.video,
                "auto",
                "Mentoring session",
                starts_at,
                starts_at + TimeDelta::hours(1),
            )?,
        },
        participants: vec![
            ("ana@example.org".into(), "mentor".into()),
            ("bob@example.com".into(), "mentee".into()),
        ],
    };
    let ev = store.write(|tx| event::insert(tx, &c0, &spec, false, true))?;
    drop(store);
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
        let c = at(minute);
        let r = tick::tick(&c, None)?;
        say(format!(
            "{} tick ({note}): {} reminders created, {} emails sent",
            rfc3339(c.now()),
            r.summary.created,
            r.summary.sent
        ));
        ticks.push(json!({"at": rfc3339(c.now()), "created": r.summary.created, "sent": r.summary.sent}));
    }

    let last = at(46);
    let store = last.store()?;
    let mut inboxes = Vec::new();
    for (id, who) in [(ana, "Ana"), (bob, "Bob")] {
        let items = store.inbox(id, &InboxFilter::default())?;
        say(format!("{who}'s inbox ({} unread):", store.unread_count(id)?));
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
    Ok(ExitCode::SUCCESS)
}
