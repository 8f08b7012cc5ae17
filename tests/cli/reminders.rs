//! The reminder engine under the conditions that break a "flag + window" design.

use std::process::Stdio;

use chrono::{DateTime, TimeDelta, Utc};

use crate::support::{Env, SmtpServer};

const START: &str = "2030-03-10T10:00:00Z";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn rfc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Two participants, one event at START created the day before, notices delivered.
fn setup(server: &SmtpServer) -> Env {
    let mut env = Env::new();
    env.smtp(server, "");
    env.at("2030-03-09T09:00:00Z");
    env.user("ana@example.org", &["--tz", "Europe/Paris"]);
    env.user("bob@example.com", &["--locale", "en"]);
    env.ok(&[
        "event",
        "add",
        "--title",
        "Mentoring",
        "--start",
        START,
        "--participant",
        "ana@example.org",
        "--participant",
        "bob@example.com",
    ]);
    env.tick();
    assert_eq!(server.wait_for(2).len(), 2, "assigned notices");
    env
}

fn reminders(env: &Env, user: &str) -> Vec<i64> {
    let v = env.json(&["list", "--user", user, "--type", "reminder"]);
    let mut offsets: Vec<i64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["offset_minutes"].as_i64().unwrap())
        .collect();
    offsets.sort();
    offsets
}

fn subjects(server: &SmtpServer) -> Vec<String> {
    server
        .messages()
        .iter()
        .map(|m| m.header("Subject").unwrap_or_default())
        .collect()
}

#[test]
fn minute_by_minute_walk_sends_each_reminder_once_in_app_and_by_email() {
    let server = SmtpServer::start();
    let mut env = setup(&server);
    let mut created = 0;
    let mut minute = t("2030-03-10T09:00:00Z");
    while minute <= t("2030-03-10T10:05:00Z") {
        env.at(&rfc(minute));
        let s = env.tick();
        created += s["created"].as_i64().unwrap();
        // The same minute run twice adds nothing.
        let again = env.tick();
        assert_eq!(again["created"], 0, "at {minute}");
        assert_eq!(again["sent"], 0, "at {minute}");
        minute += TimeDelta::minutes(1);
    }
    assert_eq!(created, 4, "30 and 5 minutes, two participants");
    assert_eq!(reminders(&env, "ana@example.org"), vec![5, 30]);
    assert_eq!(reminders(&env, "bob@example.com"), vec![5, 30]);
    let msgs = server.wait_for(6);
    assert_eq!(msgs.len(), 6, "2 assigned + 4 reminders: {:?}", subjects(&server));
    let ids: std::collections::HashSet<String> = msgs.iter().map(|m| m.message_id()).collect();
    assert_eq!(ids.len(), 6);
    let subj = subjects(&server);
    assert!(
        subj.iter()
            .any(|s| s.contains("commence dans 30 minutes") || s.contains("Rappel")),
        "{subj:?}"
    );
    assert_eq!(
        server.connections(),
        3,
        "one SMTP connection per tick that had mail"
    );
}

#[test]
fn eight_ticks_at_once_every_email_arrives_once() {
    let server = SmtpServer::start();
    let mut env = setup(&server);
    env.at("2030-03-10T09:30:00Z");
    let children: Vec<_> = (0..8)
        .map(|_| {
            env.std_cmd()
                .env("NOTIFYCTL_NOW", "2030-03-10T09:30:00Z")
                .args(["--json", "check-reminders"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut created = 0;
    let mut sent = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        created += v["created"].as_i64().unwrap();
        sent += v["sent"].as_i64().unwrap();
    }
    assert_eq!(created, 2);
    assert_eq!(sent, 2);
    assert_eq!(server.settled().len(), 4, "every email once, no duplicate");
}

#[test]
fn missed_tick_still_sends_within_grace() {
    let server = SmtpServer::start();
    let mut env = setup(&server);
    // No tick between 31 and 22 minutes before the start.
    env.at("2030-03-10T09:29:00Z");
    assert_eq!(env.tick()["created"], 0);
    env.at("2030-03-10T09:38:00Z");
    let s = env.tick();
    assert_eq!(s["created"], 2, "8 minutes late, inside the 10-minute grace");
    assert_eq!(reminders(&env, "ana@example.org"), vec![30]);
}

#[test]
fn first_tick_three_minutes_before_sends_only_the_five_minute_one() {
    let server = SmtpServer::start();
    let mut env = setup(&server);
    env.at("2030-03-10T09:57:00Z");
    let s = env.tick();
    assert_eq!(s["created"], 2);
    assert_eq!(s["skipped"], 2, "the 30-minute ones are skipped");
    assert_eq!(reminders(&env, "ana@example.org"), vec![5]);
    let status = env.json(&["status"]);
    let skipped = &status["skipped_last_24h"];
    assert_eq!(skipped[0]["reason"], "collapsed");
    assert_eq!(skipped[0]["count"], 2);
    assert!(server
        .wait_for(4)
        .iter()
        .all(|m| !m.text().contains("30 minutes")));
}

#[test]
fn a_reminder_more_than_grace_late_is_skipped_not_sent() {
    let server = SmtpServer::start();
    let mut env = setup(&server);
    env.at("2030-03-10T09:45:00Z");
    let s = env.tick();
    assert_eq!(s["created"], 0);
    assert_eq!(s["skipped"], 2);
    assert_eq!(env.json(&["status"])["skipped_last_24h"][0]["reason"], "late");
    env.at("2030-03-10T09:55:00Z");
    assert_eq!(env.tick()["created"], 2, "the 5-minute one still goes");
}

#[test]
fn rescheduling_rearms_and_drops_the_old_reminders() {
    let server = SmtpServer::start();
    let mut env = setup(&server);
    env.at("2030-03-10T09:31:00Z");
    assert_eq!(env.tick()["created"], 2);
    // Moved an hour later: the old start's 5-minute reminder never goes; new ones do.
    env.ok(&["event", "update", "1", "--start", "2030-03-10T11:00:00Z"]);
    env.at("2030-03-10T09:55:00Z");
    let s = env.tick();
    assert_eq!(s["created"], 0, "nothing for the old start");
    assert_eq!(s["sent"], 2, "the rescheduled notices");
    env.at("2030-03-10T10:30:00Z");
    assert_eq!(env.tick()["created"], 2);
    env.at("2030-03-10T10:55:00Z");
    assert_eq!(env.tick()["created"], 2);
    assert_eq!(reminders(&env, "bob@example.com"), vec![5, 30, 30]);
}

#[test]
fn cancelled_event_gets_no_more_reminders() {
    let server = SmtpServer::start();
    let mut env = setup(&server);
    env.ok(&["event", "cancel", "1"]);
    for m in ["2030-03-10T09:30:00Z", "2030-03-10T09:55:00Z"] {
        env.at(m);
        assert_eq!(env.tick()["created"], 0);
    }
    assert!(reminders(&env, "ana@example.org").is_empty());
    let subj = subjects(&server);
    assert_eq!(subj.len(), 4, "2 assigned + 2 cancelled: {subj:?}");
}

#[test]
fn plan_shows_what_the_ticks_will_do() {
    let server = SmtpServer::start();
    let mut env = setup(&server);
    env.at("2030-03-10T09:00:00Z");
    let plan = env.json(&["plan", "--next", "2h"]);
    let rows = plan.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["at"], "2030-03-10T09:30:00Z");
    assert_eq!(rows[0]["action"], "send");
    assert_eq!(rows[3]["at"], "2030-03-10T09:55:00Z");
    assert_eq!(
        rows[0]["local_start"].as_str().unwrap().contains("11:00"),
        rows[0]["user_email"] == "ana@example.org"
    );
    // Plan writes nothing.
    assert_eq!(env.tick()["created"], 0);
    env.at("2030-03-10T09:52:00Z");
    let plan = env.json(&["plan", "--next", "10m"]);
    let actions: Vec<(i64, String)> = plan
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["offset_minutes"].as_i64().unwrap(),
                r["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(actions.iter().filter(|a| a.0 == 30 && a.1 == "skip").count(), 2);
    assert_eq!(actions.iter().filter(|a| a.0 == 5 && a.1 == "send").count(), 2);
}

#[test]
fn dry_run_writes_and_sends_nothing() {
    let server = SmtpServer::start();
    let mut env = setup(&server);
    env.at("2030-03-10T09:30:00Z");
    let before = env.dump();
    let v = env.json(&["check-reminders", "--dry-run"]);
    assert_eq!(v["created"], 2);
    assert_eq!(v["dry_run"], true);
    assert_eq!(env.dump(), before);
    assert_eq!(server.messages().len(), 2);
}

#[test]
fn reminders_follow_the_configured_offsets() {
    let server = SmtpServer::start();
    let mut env = setup(&server);
    let cfg = std::fs::read_to_string(env.config.as_ref().unwrap()).unwrap();
    env.config(&format!(
        "[reminders]\noffsets = [\"1h\", \"10m\"]\ngrace = \"2m\"\n{cfg}"
    ));
    env.at("2030-03-10T09:00:00Z");
    assert_eq!(env.tick()["created"], 2);
    env.at("2030-03-10T09:51:00Z");
    assert_eq!(env.tick()["created"], 2);
    assert_eq!(reminders(&env, "ana@example.org"), vec![10, 60]);
}

#[test]
fn a_broken_row_written_by_an_app_does_not_stop_the_tick() {
    let server = SmtpServer::start();
    let mut env = setup(&server);
    env.ok(&[
        "event",
        "add",
        "--title",
        "Other",
        "--start",
        "2030-03-10T10:05:00Z",
        "--participant",
        "bob@example.com",
        "--allow-overlap",
    ]);
    // An app wrote a participant with a broken added_at (before the schema's guards).
    env.sql_unguarded()
        .execute(
            "UPDATE participants SET added_at = 'yesterday' WHERE event_id = 2",
            [],
        )
        .unwrap();
    env.at("2030-03-10T09:35:00Z");
    let out = env.run(&["--json", "check-reminders"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["created"], 2, "event 1's reminders still go: {v}");
    assert_eq!(v["broken_rows"].as_array().unwrap().len(), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken row"));
}

/// Regression: the tick looked back from its own, just-written tick record, so reminders
/// of events that started while cron was down were never recorded as skipped.
#[test]
fn reminders_missed_while_no_tick_ran_are_recorded_as_skipped() {
    let server = SmtpServer::start();
    let mut env = setup(&server);
    env.at("2030-03-10T09:00:00Z");
    env.tick();
    // Cron is down from 09:00 to 11:00; the event started at 10:00.
    env.at("2030-03-10T11:00:00Z");
    let s = env.tick();
    assert_eq!(s["created"], 0);
    assert_eq!(s["skipped"], 4, "both offsets for both participants: {s}");
    let status = env.json(&["status"]);
    assert_eq!(status["skipped_last_24h"][0]["reason"], "late");
    assert_eq!(status["skipped_last_24h"][0]["count"], 4);
}

/// After a tick that failed, the next good one looks back to the last good tick, so
/// reminders of events that started in the gap are recorded whatever the failure point.
#[test]
fn a_failed_tick_does_not_hide_reminders_missed_before_it() {
    let server = SmtpServer::start();
    let mut env = setup(&server);
    let good = std::fs::read_to_string(env.config.as_ref().unwrap()).unwrap();
    env.at("2030-03-10T09:00:00Z");
    env.tick();
    // At 10:45 a tick fails after recording itself, before deciding anything (its
    // template directory is missing).
    env.config(&format!("[templates]\ndir = \"no-such-dir\"\n{good}"));
    env.at("2030-03-10T10:45:00Z");
    let err = env.fails(&["check-reminders"], 2);
    assert!(err.contains("no-such-dir"), "{err}");
    let status = env.run(&["--json", "status"]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["last_tick"]["ok"], false, "{v}");
    assert_eq!(v["last_tick"]["skipped"], 0, "{v}");
    env.config(&good);
    env.at("2030-03-10T10:46:00Z");
    env.tick();
    let status = env.json(&["status"]);
    assert_eq!(status["skipped_last_24h"][0]["count"], 4, "{status}");
}

#[test]
fn json_summary_stays_valid_with_the_stdout_transport() {
    let mut env = Env::new();
    env.config("[email]\ntransport = \"stdout\"\n");
    env.user("ana@example.org", &[]);
    env.ok(&["send", "--user", "1", "--title", "Hi", "--body", "b"]);
    let v = env.json(&["check-reminders"]);
    assert_eq!(v["sent"], 1);
}

/// Regression: an event whose start an app wrote as `2030-01-01 09:00:00` (SQLite's own
/// CURRENT_TIMESTAMP form) or with an offset was never selected by the tick's text
/// comparison: never reminded, never reported, missing from `plan`.
#[test]
fn start_times_an_app_writes_in_other_forms_are_reminded() {
    let server = SmtpServer::start();
    let mut env = setup(&server);
    let conn = env.sql();
    for (id, start, end) in [
        (10, "2030-03-10 11:00:00", "2030-03-10 12:00:00"),
        (11, "2030-03-10T13:00:00+01:00", "2030-03-10T14:00:00+01:00"),
    ] {
        conn.execute(
            "INSERT INTO events (id, title, starts_at, ends_at, armed_at, created_at, updated_at)
             VALUES (?1, 'App', ?2, ?3, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            rusqlite::params![id, start, end],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO participants (event_id, user_id, added_at) VALUES (?1, 1, '2030-03-09 09:00:00')",
            [id],
        )
        .unwrap();
    }
    let shown = env.json(&["event", "show", "11"]);
    assert_eq!(
        shown["starts_at"], "2030-03-10T12:00:00Z",
        "stored in UTC: {shown}"
    );
    env.at("2030-03-10T10:00:00Z");
    let plan = env.json(&["plan", "--next", "3h"]);
    let planned: Vec<(i64, String)> = plan
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["event_id"].as_i64().unwrap() >= 10)
        .map(|p| {
            (
                p["event_id"].as_i64().unwrap(),
                p["at"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        planned,
        vec![
            (10, "2030-03-10T10:30:00Z".to_string()),
            (10, "2030-03-10T10:55:00Z".to_string()),
            (11, "2030-03-10T11:30:00Z".to_string()),
            (11, "2030-03-10T11:55:00Z".to_string()),
        ]
    );
    env.at("2030-03-10T10:30:00Z");
    assert_eq!(env.tick()["created"], 1, "event 10's 30-minute reminder");
    env.at("2030-03-10T11:30:00Z");
    assert_eq!(env.tick()["created"], 1, "event 11's 30-minute reminder");
    // Something that is not a time fails the app's INSERT loudly, naming the column.
    let err = conn
        .execute(
            "INSERT INTO events (title, starts_at, ends_at, armed_at, created_at, updated_at)
             VALUES ('Bad', 'next tuesday', 'soon after', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            [],
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("events.starts_at must be a time"), "{err}");
}

#[test]
fn a_legacy_event_with_an_unreadable_start_is_reported_by_status() {
    let mut env = Env::new();
    env.at("2030-03-09T09:00:00Z");
    env.user("ana@example.org", &[]);
    env.ok(&[
        "event",
        "add",
        "--title",
        "Call",
        "--start",
        "2030-03-10T10:00:00Z",
        "--participant",
        "1",
    ]);
    env.sql_unguarded()
        .execute(
            "UPDATE events SET starts_at = 'soon', ends_at = 'whenever' WHERE id = 1",
            [],
        )
        .unwrap();
    // Its assigned notice cannot be built: that delivery alone is set aside.
    let (_, err) = env.exits(&["check-reminders"], 3);
    assert!(err.contains("unreadable event 1"), "{err}");
    let (out, err) = env.exits(&["--json", "status"], 3);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["healthy"], false);
    assert!(
        err.contains("events id 1, column starts_at") && err.contains("'soon'"),
        "status names the row, column and value: {err}"
    );
}

/// `n` daily events for ana and bob from 2030-03-01 09:00Z, imported in one go.
fn daily_events(env: &Env, n: usize) {
    let mut lines = String::new();
    for i in 0..n {
        let day = chrono::NaiveDate::from_ymd_opt(2030, 3, 1).unwrap() + chrono::Days::new(i as u64 / 24);
        lines.push_str(&format!(
            "{{\"title\":\"S{i}\",\"start\":\"{day}T{:02}:00:00Z\",\"duration\":\"30m\",\"video\":\"none\",\"participants\":[\"ana@example.org\",\"bob@example.com\"]}}\n",
            i % 24
        ));
    }
    std::fs::write(env.path("events.jsonl"), lines).unwrap();
    env.ok(&["import", "events", "events.jsonl"]);
}

/// Regression: after an outage longer than 7 days, missed reminders of the older events
/// were never recorded. Now the whole gap is examined, a page at a time.
#[test]
fn after_a_long_outage_every_missed_reminder_is_recorded() {
    let mut env = Env::new();
    env.at("2030-02-28T00:00:00Z");
    env.user("ana@example.org", &[]);
    env.user("bob@example.com", &[]);
    env.tick();
    daily_events(&env, 24 * 45);
    // Cron was down for 60 days.
    env.at("2030-04-29T00:00:00Z");
    let s = env.tick();
    assert_eq!(s["created"], 0);
    assert_eq!(
        s["skipped"],
        24 * 45 * 2 * 2,
        "both offsets, both participants, every event: {s}"
    );
    assert_eq!(env.tick()["skipped"], 0, "and only once");
}

#[test]
fn a_tick_out_of_time_before_the_history_is_done_leaves_it_to_the_next() {
    let mut env = Env::new();
    env.at("2030-02-28T00:00:00Z");
    env.user("ana@example.org", &[]);
    env.user("bob@example.com", &[]);
    env.tick();
    daily_events(&env, 24 * 45);
    env.at("2030-04-29T00:00:00Z");
    let (out, err) = env.exits(&["--json", "check-reminders", "--max-runtime", "0s"], 3);
    let first: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(err.contains("ran out of time"), "{err}");
    let status = env.run(&["--json", "status"]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        v["last_tick"]["ok"], false,
        "not a good tick: the next looks back as far"
    );
    env.at("2030-04-29T00:01:00Z");
    let second = env.tick();
    assert_eq!(
        first["skipped"].as_i64().unwrap() + second["skipped"].as_i64().unwrap(),
        24 * 45 * 2 * 2
    );
}

/// Regression: a tick whose clock was far ahead recorded every reminder up to then as
/// `late`; when the clock came back, those events never got their reminders.
#[test]
fn a_clock_that_ran_ahead_is_reported_and_its_late_decisions_can_be_reopened() {
    let server = SmtpServer::start();
    let mut env = setup(&server);
    // Someone runs a tick with --now a year ahead against this database.
    env.at("2031-03-10T09:00:00Z");
    let ahead = env.tick();
    assert_eq!(ahead["skipped"], 4, "recorded as late: {ahead}");
    // Back to the real time: the tick says so loudly.
    env.at("2030-03-10T09:29:00Z");
    let (_, err) = env.exits(&["check-reminders"], 3);
    assert!(
        err.contains("behind the latest tick") && err.contains("reminders reopen"),
        "{err}"
    );
    let dry = env.json(&[
        "reminders",
        "reopen",
        "--since",
        "2031-01-01T00:00:00Z",
        "--dry-run",
    ]);
    assert_eq!(dry["reopened"], 4);
    let v = env.json(&["reminders", "reopen", "--since", "2031-01-01T00:00:00Z"]);
    assert_eq!(v["reopened"], 4);
    assert_eq!(v["future_ticks_forgotten"], 1);
    env.at("2030-03-10T09:30:00Z");
    let s = env.tick();
    assert_eq!(
        s["created"], 2,
        "the 30-minute reminders go out after all, quietly: {s}"
    );
}

// SQLite-only, not listed below:
// - a_broken_row_written_by_an_app_does_not_stop_the_tick: text in a time column (PostgreSQL's typed columns refuse it).
// - start_times_an_app_writes_in_other_forms_are_reminded: SQLite's text forms of instants and its guards (app-written events on PostgreSQL: many_hosts.rs).
// - a_legacy_event_with_an_unreadable_start_is_reported_by_status: text in a time column (PostgreSQL's typed columns refuse it).
crate::support::on_postgres!(
    minute_by_minute_walk_sends_each_reminder_once_in_app_and_by_email,
    eight_ticks_at_once_every_email_arrives_once,
    missed_tick_still_sends_within_grace,
    first_tick_three_minutes_before_sends_only_the_five_minute_one,
    a_reminder_more_than_grace_late_is_skipped_not_sent,
    rescheduling_rearms_and_drops_the_old_reminders,
    cancelled_event_gets_no_more_reminders,
    plan_shows_what_the_ticks_will_do,
    dry_run_writes_and_sends_nothing,
    reminders_follow_the_configured_offsets,
    reminders_missed_while_no_tick_ran_are_recorded_as_skipped,
    a_failed_tick_does_not_hide_reminders_missed_before_it,
    json_summary_stays_valid_with_the_stdout_transport,
    after_a_long_outage_every_missed_reminder_is_recorded,
    a_tick_out_of_time_before_the_history_is_done_leaves_it_to_the_next,
    a_clock_that_ran_ahead_is_reported_and_its_late_decisions_can_be_reopened,
);
