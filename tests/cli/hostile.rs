//! One person's bad data costs only that person: hostile names and titles never crash a
//! tick, never inject a header and never hold back another user's email; every kind of
//! broken row an app may write is reported and skipped while everything else flows,
//! exactly once.

use std::collections::HashSet;

use crate::support::{Env, SmtpServer};

/// Three users with events at 10:00; notices delivered.
fn three_users(server: &SmtpServer) -> Env {
    let mut env = Env::new();
    env.smtp(server, "");
    env.at("2030-03-09T09:00:00Z");
    for who in ["ana@example.org", "bob@example.com", "cy@example.net"] {
        env.user(who, &[]);
    }
    for (i, who) in ["1", "2", "3"].iter().enumerate() {
        env.ok(&[
            "event",
            "add",
            "--title",
            &format!("Session {i}"),
            "--start",
            "2030-03-10T10:00:00Z",
            "--participant",
            who,
            "--video",
            "none",
        ]);
    }
    env.tick();
    assert_eq!(server.wait_for(3).len(), 3);
    env
}

/// Regression: a line break in a user's name (written by the app) made building the
/// `To:` header panic on every tick, for everyone, forever.
#[test]
fn a_line_break_in_a_name_injects_nothing_and_stops_no_one() {
    let server = SmtpServer::start();
    let mut env = three_users(&server);
    env.exec("UPDATE users SET name = 'Ana\r\nBcc: evil@attacker.example' WHERE id = 1");
    env.exec(&format!(
        "UPDATE users SET name = '{}' WHERE id = 2",
        "B".repeat(100_000)
    ));
    env.exec(&format!(
        "UPDATE events SET title = '{}' WHERE id = 3",
        "T".repeat(1_000_000)
    ));
    env.at("2030-03-10T09:30:00Z");
    let s = env.tick();
    assert_eq!(
        (s["created"].as_i64(), s["sent"].as_i64()),
        (Some(3), Some(3)),
        "{s}"
    );
    let msgs = server.settled();
    assert_eq!(msgs.len(), 6);
    for m in &msgs[3..] {
        let raw = m.text();
        let headers = raw.split("\r\n\r\n").next().unwrap();
        assert!(!headers.contains("\r\nBcc:"), "no injected header:\n{headers}");
        assert!(
            headers.split("\r\n").all(|l| l.len() <= 998),
            "every header line within RFC 5322's 998"
        );
        assert_eq!(m.to.len(), 1, "one recipient: {:?}", m.to);
    }
}

#[test]
fn every_kind_of_broken_row_is_reported_and_the_rest_flows_once() {
    let server = SmtpServer::start();
    let mut env = three_users(&server);
    // dee's data is broken in every way an app can break it; ana, bob and cy are fine.
    env.user("dee@example.org", &[]);
    env.ok(&[
        "event",
        "add",
        "--title",
        "Dee's",
        "--start",
        "2030-03-10T10:00:00Z",
        "--participant",
        "4",
        "--video",
        "none",
    ]);
    env.ok(&["send", "--user", "4", "--title", "custom", "--body", "b"]);
    let conn = env.sql_unguarded();
    conn.execute_batch(
        "UPDATE events SET title = x'ff00fe', sequence = 'abc' WHERE id = 4;
         UPDATE participants SET role = x'c328' WHERE event_id = 4;
         PRAGMA foreign_keys = OFF;
         INSERT INTO users (id, email, name, created_at) VALUES (9, 'gone@example.org', 'Gone', '2030-03-09T09:00:00Z');
         INSERT INTO participants (event_id, user_id, added_at) VALUES (1, 9, '2030-03-09T09:00:00Z');
         INSERT INTO notifications (user_id, kind, title, body, created_at) VALUES (9, 'custom', 't', 'b', '2030-03-09T09:00:00Z');
         INSERT INTO deliveries (notification_id, channel, next_attempt_at, created_at, updated_at)
           VALUES (last_insert_rowid(), 'email', '2030-03-09T09:00:00Z', '2030-03-09T09:00:00Z', '2030-03-09T09:00:00Z');
         DELETE FROM users WHERE id = 9;",
    )
    .unwrap();
    env.at("2030-03-10T09:30:00Z");
    let out = env.run(&["--json", "check-reminders"]);
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0) | Some(3)), "{err}");
    assert_eq!(s["created"], 3, "ana's, bob's and cy's reminders: {s}\n{err}");
    let broken = s["broken_rows"].to_string();
    assert!(broken.contains("events id 4"), "{broken}");
    assert!(
        broken.contains("participants") && broken.contains("participant 9"),
        "{broken}"
    );
    // Each of the three got the reminder once; nothing was sent to the deleted user.
    let msgs = server.settled();
    let reminders: Vec<&str> = msgs[3..].iter().map(|m| m.to[0].as_str()).collect();
    let unique: HashSet<&str> = reminders.iter().copied().collect();
    assert_eq!(unique.len(), reminders.len(), "once each: {reminders:?}");
    for who in ["ana@example.org", "bob@example.com", "cy@example.net"] {
        assert!(unique.contains(who), "{who} got theirs: {reminders:?}");
    }
    assert!(!unique.contains("gone@example.org"));
    // A second tick reports the same rows again and sends nothing twice.
    env.at("2030-03-10T09:31:00Z");
    let again = env.run(&["--json", "check-reminders"]);
    let s2: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(s2["created"], 0);
    assert_eq!(server.settled().len(), msgs.len());
    // The listings still work and show what they can.
    env.ok(&["deliveries"]);
    env.ok(&["user", "list"]);
    env.ok(&["event", "list", "--all"]);
}

#[test]
fn control_characters_and_huge_values_are_refused_at_every_input() {
    let mut env = Env::new();
    env.at("2030-03-09T09:00:00Z");
    env.user("ana@example.org", &[]);
    let before = env.dump();
    let cases: Vec<Vec<String>> = vec![
        vec![
            "user",
            "add",
            "--email",
            "x@example.org",
            "--name",
            "X\r\nBcc: y@example.org",
        ],
        vec![
            "user",
            "add",
            "--email",
            "x@example.org",
            "--name",
            &"n".repeat(100_000),
        ],
        vec!["user", "add", "--email", "a@[127.0.0.1]", "--name", "IP"],
        vec!["user", "update", "1", "--name", "Ana\u{1b}[31m"],
        vec![
            "event",
            "add",
            "--title",
            "T\nx",
            "--start",
            "2030-03-10T10:00:00Z",
        ],
        vec![
            "event",
            "add",
            "--title",
            &"t".repeat(100_000),
            "--start",
            "2030-03-10T10:00:00Z",
        ],
        vec![
            "event",
            "add",
            "--title",
            "T",
            "--start",
            "2030-03-10T10:00:00Z",
            "--participant",
            "1:ro\u{7}le",
        ],
        vec!["send", "--user", "1", "--title", "a\rb", "--body", "x"],
    ]
    .into_iter()
    .map(|v| v.into_iter().map(String::from).collect())
    .collect();
    for args in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = env.fails(&args, 2);
        assert_eq!(
            err.trim().lines().count(),
            1,
            "one line for {:?}: {err}",
            &args[..2]
        );
        assert!(
            err.len() < 400,
            "the bad value is not echoed whole: {} bytes",
            err.len()
        );
    }
    std::fs::write(
        env.path("u.csv"),
        "email,name\nok@example.org,Fine\nbad@example.org,\"Two\nLines\"\n",
    )
    .unwrap();
    let err = env.fails(&["import", "users", "u.csv"], 2);
    assert!(
        err.contains("field name") && err.contains("control character"),
        "{err}"
    );
    assert_eq!(env.dump(), before, "nothing was written");
}

// SQLite-only, not listed below:
// - every_kind_of_broken_row_is_reported_and_the_rest_flows_once: blobs in text columns, foreign keys turned off: what SQLite lets an app write and PostgreSQL refuses.
crate::support::on_postgres!(
    a_line_break_in_a_name_injects_nothing_and_stops_no_one,
    control_characters_and_huge_values_are_refused_at_every_input,
);
