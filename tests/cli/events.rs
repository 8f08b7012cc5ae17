use std::process::Stdio;

use crate::support::Env;

fn setup() -> Env {
    let mut env = Env::new();
    env.at("2030-03-01T08:00:00Z");
    env.user("ana@example.org", &["--tz", "Europe/Paris"]);
    env.user("bob@example.com", &["--tz", "America/New_York", "--locale", "en"]);
    env
}

#[test]
fn local_time_is_read_in_the_first_participants_zone_and_stored_in_utc() {
    let env = setup();
    let v = env.json(&[
        "event",
        "add",
        "--title",
        "Session",
        "--start",
        "2030-03-10 09:30",
        "--duration",
        "45m",
        "--participant",
        "ana@example.org",
    ]);
    assert_eq!(v["starts_at"], "2030-03-10T08:30:00Z");
    assert_eq!(v["ends_at"], "2030-03-10T09:15:00Z");
    let v = env.json(&[
        "event",
        "add",
        "--title",
        "S2",
        "--start",
        "2030-03-10T09:30",
        "--tz",
        "America/New_York",
        "--end",
        "2030-03-10T10:00",
    ]);
    assert_eq!(v["starts_at"], "2030-03-10T13:30:00Z");
    let v = env.json(&[
        "event",
        "add",
        "--title",
        "S3",
        "--start",
        "2030-03-11T09:30:00+01:00",
    ]);
    assert_eq!(v["starts_at"], "2030-03-11T08:30:00Z");
    assert_eq!(v["ends_at"], "2030-03-11T09:30:00Z", "one hour by default");
}

#[test]
fn dst_gap_and_overlap_times_are_refused() {
    let env = setup();
    let before = env.dump();
    let err = env.fails(
        &[
            "event",
            "add",
            "--title",
            "T",
            "--start",
            "2030-03-31T02:30",
            "--tz",
            "Europe/Paris",
        ],
        2,
    );
    assert!(err.contains("does not exist in Europe/Paris"), "{err}");
    let err = env.fails(
        &[
            "event",
            "add",
            "--title",
            "T",
            "--start",
            "2030-10-27T02:30",
            "--participant",
            "ana@example.org",
        ],
        2,
    );
    assert!(
        err.contains("ambiguous") && err.contains("+02:00") && err.contains("+01:00"),
        "{err}"
    );
    let err = env.fails(&["event", "add", "--title", "T", "--start", "next tuesday"], 2);
    assert!(err.contains("invalid time 'next tuesday'"), "{err}");
    let err = env.fails(
        &[
            "event",
            "add",
            "--title",
            "T",
            "--start",
            "2030-03-10T09:00Z",
            "--end",
            "2030-03-10T08:00Z",
        ],
        2,
    );
    assert!(err.contains("ends"), "{err}");
    let err = env.fails(
        &[
            "event",
            "add",
            "--title",
            "T",
            "--start",
            "2030-03-10T09:00Z",
            "--participant",
            "zed@example.org",
        ],
        2,
    );
    assert!(err.contains("unknown user 'zed@example.org'"), "{err}");
    assert_eq!(env.dump(), before, "nothing written");
}

#[test]
fn participants_get_an_assigned_notice_and_a_pending_email() {
    let env = setup();
    env.ok(&[
        "event",
        "add",
        "--title",
        "Mentoring",
        "--start",
        "2030-03-10T09:00Z",
        "--participant",
        "ana@example.org:mentor",
        "--participant",
        "bob@example.com:mentee",
    ]);
    let ana = env.json(&["list", "--user", "ana@example.org"]);
    assert_eq!(ana[0]["kind"], "assigned");
    assert_eq!(ana[0]["title"], "Nouvel événement assigné : Mentoring");
    assert_eq!(ana[0]["event_id"], 1);
    assert!(ana[0]["offset_minutes"].is_null());
    let bob = env.json(&["list", "--user", "bob@example.com"]);
    assert!(
        bob[0]["title"]
            .as_str()
            .unwrap()
            .starts_with("New event assigned"),
        "{bob}"
    );
    let pending = env.json(&["deliveries", "--status", "pending"]);
    assert_eq!(pending.as_array().unwrap().len(), 2);
    let e = env.json(&["event", "show", "1"]);
    assert_eq!(e["participants"][0]["role"], "mentor");
    assert!(e["video_url"]
        .as_str()
        .unwrap()
        .starts_with("https://meet.jit.si/notifyctl-"));
}

#[test]
fn double_booking_is_refused_unless_allowed_and_back_to_back_is_fine() {
    let env = setup();
    env.ok(&[
        "event",
        "add",
        "--title",
        "A",
        "--start",
        "2030-03-10T09:00Z",
        "--duration",
        "1h",
        "--participant",
        "ana@example.org",
    ]);
    let before = env.dump();
    let err = env.fails(
        &[
            "event",
            "add",
            "--title",
            "B",
            "--start",
            "2030-03-10T09:30Z",
            "--participant",
            "bob@example.com",
            "--participant",
            "ana@example.org",
        ],
        2,
    );
    assert!(
        err.contains("ana@example.org is already booked") && err.contains("--allow-overlap"),
        "{err}"
    );
    assert_eq!(env.dump(), before);
    env.ok(&[
        "event",
        "add",
        "--title",
        "C",
        "--start",
        "2030-03-10T10:00Z",
        "--participant",
        "ana@example.org",
    ]);
    env.ok(&[
        "event",
        "add",
        "--title",
        "D",
        "--start",
        "2030-03-10T09:30Z",
        "--participant",
        "ana@example.org",
        "--allow-overlap",
    ]);
    // Moving onto a taken slot is refused too; a cancelled event frees its slot.
    let err = env.fails(&["event", "update", "3", "--start", "2030-03-10T09:15Z"], 2);
    assert!(err.contains("already booked"), "{err}");
    env.ok(&["event", "cancel", "1"]);
    env.ok(&[
        "event",
        "add",
        "--title",
        "E",
        "--start",
        "2030-03-10T08:00Z",
        "--duration",
        "1h",
        "--participant",
        "ana@example.org",
    ]);
}

#[test]
fn concurrent_bookings_of_one_slot_exactly_one_wins() {
    let env = setup();
    let children: Vec<_> = (0..8)
        .map(|i| {
            env.std_cmd()
                .env("NOTIFYCTL_NOW", "2030-03-01T08:00:00Z")
                .args([
                    "event",
                    "add",
                    "--title",
                    &format!("try {i}"),
                    "--start",
                    "2030-03-10T09:00Z",
                    "--participant",
                    "ana@example.org",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let results: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let wins = results.iter().filter(|o| o.status.success()).count();
    assert_eq!(
        wins,
        1,
        "exactly one booking succeeds: {:?}",
        results
            .iter()
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            .collect::<Vec<_>>()
    );
    for o in results.iter().filter(|o| !o.status.success()) {
        assert!(String::from_utf8_lossy(&o.stderr).contains("already booked"));
    }
    assert_eq!(env.json(&["event", "list"]).as_array().unwrap().len(), 1);
}

#[test]
fn assign_unassign_update_cancel_notify() {
    let env = setup();
    env.ok(&[
        "event",
        "add",
        "--title",
        "Demo",
        "--start",
        "2030-03-10T09:00Z",
        "--participant",
        "ana@example.org",
    ]);
    env.ok(&[
        "event",
        "assign",
        "1",
        "--user",
        "bob@example.com",
        "--role",
        "sales",
    ]);
    assert_eq!(
        env.json(&["list", "--user", "bob@example.com", "--type", "assigned"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let err = env.fails(&["event", "assign", "1", "--user", "bob@example.com"], 2);
    assert!(err.contains("already assigned"), "{err}");

    let v = env.json(&["event", "update", "1", "--start", "2030-03-10T11:00Z"]);
    assert_eq!(v["rescheduled"], true);
    assert_eq!(v["ends_at"], "2030-03-10T12:00:00Z", "length kept");
    for u in ["ana@example.org", "bob@example.com"] {
        assert_eq!(
            env.json(&["list", "--user", u, "--type", "rescheduled"])
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
    // A title change alone is not a reschedule.
    assert_eq!(
        env.json(&["event", "update", "1", "--title", "Demo 2"])["rescheduled"],
        false
    );

    env.ok(&["event", "unassign", "1", "--user", "bob@example.com"]);
    assert_eq!(
        env.json(&["list", "--user", "bob@example.com", "--type", "cancelled"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    env.ok(&["event", "cancel", "1"]);
    assert_eq!(
        env.json(&["list", "--user", "ana@example.org", "--type", "cancelled"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let err = env.fails(&["event", "cancel", "1"], 2);
    assert!(err.contains("cancelled"), "{err}");
    assert_eq!(env.json(&["event", "list"]).as_array().unwrap().len(), 0);
    assert_eq!(env.json(&["event", "list", "--all"]).as_array().unwrap().len(), 1);
    assert_eq!(env.json(&["event", "show", "1"])["status"], "cancelled");
}

#[test]
fn event_list_filters_by_user_and_time() {
    let env = setup();
    env.ok(&[
        "event",
        "add",
        "--title",
        "A",
        "--start",
        "2030-03-10T09:00Z",
        "--participant",
        "ana@example.org",
    ]);
    env.ok(&[
        "event",
        "add",
        "--title",
        "B",
        "--start",
        "2030-03-12T09:00Z",
        "--participant",
        "bob@example.com",
    ]);
    assert_eq!(
        env.json(&["event", "list", "--user", "bob@example.com"])[0]["title"],
        "B"
    );
    let v = env.json(&[
        "event",
        "list",
        "--from",
        "2030-03-11T00:00Z",
        "--to",
        "2030-03-13T00:00Z",
    ]);
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert!(env.ok(&["event", "list"]).contains("PARTICIPANTS"));
    env.fails(&["event", "show", "99"], 2);
}

#[test]
fn missing_database_and_directory_and_broken_config() {
    let mut env = Env::bare();
    let err = env.fails(&["user", "list"], 2);
    assert!(err.contains("does not exist: run `notifyctl init`"), "{err}");
    let err = env.fails(&["--db", "/nonexistent-dir/x.db", "init"], 2);
    assert!(err.contains("directory /nonexistent-dir does not exist"), "{err}");
    env.config("[reminders]\ngrace = \"ten minutes\"\n");
    let err = env.fails(&["init"], 2);
    assert!(
        err.contains("invalid duration 'ten minutes'") && err.contains("config"),
        "{err}"
    );
    env.config("[email\ntransport = 1");
    let err = env.fails(&["init"], 2);
    assert!(err.contains("invalid config"), "{err}");
    let err = env.fails(&["--config", "/nope.toml", "init"], 2);
    assert!(err.contains("cannot read config file /nope.toml"), "{err}");
    let err = env.fails(&["--now", "yesterday", "init"], 2);
    assert!(err.contains("invalid --now"), "{err}");
    assert!(!env.exists(), "no partial database was created");
}

#[cfg(unix)]
#[test]
fn the_database_file_is_private_and_init_is_idempotent() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    env.ok(&["init"]);
    let mode = std::fs::metadata(&env.db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let again = env.json(&["init"]);
    assert_eq!(again["created"], false);
    assert!(again["schema_version"].as_i64().unwrap() >= 2, "{again}");
}

#[test]
fn a_file_that_is_not_a_database_is_refused() {
    let env = Env::bare();
    std::fs::write(
        &env.db,
        "hello, this is not sqlite, just text that is long enough to be a header......",
    )
    .unwrap();
    let err = env.fails(&["user", "list"], 1);
    assert!(
        err.contains("opening database") && err.contains("not a database"),
        "{err}"
    );
}

/// Regression: `init` on another program's SQLite file that happens to have
/// `user_version = 1` said "ready" and later commands failed obscurely.
#[test]
fn another_programs_sqlite_file_is_refused_and_left_alone() {
    let env = Env::bare();
    let conn = rusqlite::Connection::open(&env.db).unwrap();
    conn.execute_batch("CREATE TABLE things (id INTEGER PRIMARY KEY); PRAGMA user_version = 1;")
        .unwrap();
    drop(conn);
    let before = std::fs::read(&env.db).unwrap();
    let err = env.fails(&["init"], 2);
    assert!(
        err.contains("is not a notifyctl database") && err.contains("users"),
        "{err}"
    );
    assert_eq!(std::fs::read(&env.db).unwrap(), before, "nothing written");
    // An app's own file with a `users` table of its own: ours would clash.
    let env = Env::bare();
    let conn = rusqlite::Connection::open(&env.db).unwrap();
    conn.execute_batch("CREATE TABLE users (login TEXT)").unwrap();
    drop(conn);
    let err = env.fails(&["init"], 2);
    assert!(err.contains("already has a table named users"), "{err}");
}

/// Regression: `event update` to the same start still bumped the calendar SEQUENCE.
#[test]
fn an_update_that_changes_nothing_keeps_the_sequence_and_notifies_nobody() {
    let mut env = Env::new();
    env.at("2030-03-01T09:00:00Z");
    env.user("ana@example.org", &[]);
    env.ok(&[
        "event",
        "add",
        "--title",
        "Call",
        "--start",
        "2030-03-10T09:00:00Z",
        "--participant",
        "1",
    ]);
    let seq = env.json(&["event", "show", "1"])["sequence"].clone();
    let v = env.json(&[
        "event",
        "update",
        "1",
        "--start",
        "2030-03-10T09:00:00Z",
        "--title",
        "Call",
    ]);
    assert_eq!(v["rescheduled"], false);
    assert_eq!(env.json(&["event", "show", "1"])["sequence"], seq);
    let rescheduled = env.json(&["list", "--user", "1", "--type", "rescheduled"]);
    assert!(rescheduled.as_array().unwrap().is_empty());
    // A real change still bumps it.
    env.ok(&["event", "update", "1", "--title", "Call (room B)"]);
    assert_eq!(
        env.json(&["event", "show", "1"])["sequence"].as_i64(),
        seq.as_i64().map(|s| s + 1)
    );
}

/// The double-booking check goes through an index (schema step 4) kept in step by
/// triggers: the same answers as reading the whole history, in every shape.
#[test]
fn the_overlap_check_sees_every_shape_and_every_change() {
    let mut env = Env::new();
    env.at("2030-03-01T09:00:00Z");
    env.user("ana@example.org", &[]);
    let add = |env: &Env, start: &str, end: &str| {
        env.run(&[
            "event",
            "add",
            "--title",
            "X",
            "--start",
            start,
            "--end",
            end,
            "--participant",
            "1",
            "--video",
            "none",
        ])
    };
    let ok =
        |out: std::process::Output| assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let refused = |out: std::process::Output| {
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("already booked"));
    };
    ok(add(&env, "2030-03-10T10:00:00Z", "2030-03-10T12:00:00Z")); // event 1
    refused(add(&env, "2030-03-10T10:00:00Z", "2030-03-10T12:00:00Z")); // identical
    refused(add(&env, "2030-03-10T10:30:00Z", "2030-03-10T11:00:00Z")); // nested inside
    refused(add(&env, "2030-03-10T09:00:00Z", "2030-03-10T13:00:00Z")); // containing
    refused(add(&env, "2030-03-10T11:59:59Z", "2030-03-10T12:30:00Z")); // one second over
    ok(add(&env, "2030-03-10T12:00:00Z", "2030-03-10T12:30:00Z")); // back to back after: 2
    ok(add(&env, "2030-03-10T09:30:00Z", "2030-03-10T10:00:00Z")); // back to back before: 3
                                                                   // A long event spanning days is found from any hour inside it.
    ok(add(&env, "2030-04-01T00:00:00Z", "2030-04-05T00:00:00Z")); // 4
    refused(add(&env, "2030-04-03T15:00:00Z", "2030-04-03T15:10:00Z"));
    // Cancelled: the slot is free again.
    env.ok(&["event", "cancel", "1"]);
    ok(add(&env, "2030-03-10T10:15:00Z", "2030-03-10T11:00:00Z")); // 5
                                                                   // Moved: the old slot frees up, the new one is taken.
    env.ok(&["event", "update", "4", "--start", "2030-05-01T00:00:00Z"]);
    ok(add(&env, "2030-04-03T15:00:00Z", "2030-04-03T15:10:00Z")); // 6
    refused(add(&env, "2030-05-02T00:00:00Z", "2030-05-02T01:00:00Z"));
    // Unassigned: free for that user.
    env.ok(&["event", "unassign", "5", "--user", "1"]);
    ok(add(&env, "2030-03-10T10:15:00Z", "2030-03-10T11:00:00Z")); // 7
                                                                   // A participant row the web app writes with SQL is seen too.
                                                                   // (No explicit id: PostgreSQL's identity columns refuse one.)
    env.exec(
        "INSERT INTO events (title, starts_at, ends_at, armed_at, created_at, updated_at)
         VALUES ('App', '2030-06-01T08:00:00Z', '2030-06-01T09:00:00Z',
                 '2030-03-01T09:00:00Z', '2030-03-01T09:00:00Z', '2030-03-01T09:00:00Z')",
    );
    env.exec(
        "INSERT INTO participants (event_id, user_id, added_at)
         SELECT id, 1, '2030-03-01T09:00:00Z' FROM events WHERE title = 'App'",
    );
    refused(add(&env, "2030-06-01T08:30:00Z", "2030-06-01T08:45:00Z"));
    env.exec("DELETE FROM participants WHERE event_id = (SELECT id FROM events WHERE title = 'App')");
    ok(add(&env, "2030-06-01T08:30:00Z", "2030-06-01T08:45:00Z"));
}

// SQLite-only, not listed below:
// - the_database_file_is_private_and_init_is_idempotent: the file's mode (init's idempotence on PostgreSQL: many_hosts.rs).
// - a_file_that_is_not_a_database_is_refused: a SQLite file.
// - another_programs_sqlite_file_is_refused_and_left_alone: a SQLite file (PostgreSQL's foreign schema: pg_schema.rs).
crate::support::on_postgres!(
    local_time_is_read_in_the_first_participants_zone_and_stored_in_utc,
    dst_gap_and_overlap_times_are_refused,
    participants_get_an_assigned_notice_and_a_pending_email,
    double_booking_is_refused_unless_allowed_and_back_to_back_is_fine,
    concurrent_bookings_of_one_slot_exactly_one_wins,
    assign_unassign_update_cancel_notify,
    event_list_filters_by_user_and_time,
    missing_database_and_directory_and_broken_config,
    an_update_that_changes_nothing_keeps_the_sequence_and_notifies_nobody,
    the_overlap_check_sees_every_shape_and_every_change,
);
