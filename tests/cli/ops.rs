//! Running it for real: monitoring, retention, import, config checks, first run.

use crate::support::{Env, SmtpPolicy, SmtpServer};

#[test]
fn status_max_age_exit_codes() {
    let mut env = Env::new();
    env.at("2030-03-10T09:00:00Z");
    let (_, err) = env.exits(&["status", "--max-age", "5m"], 3);
    assert!(err.contains("no successful tick"), "{err}");
    env.tick();
    env.at("2030-03-10T09:04:00Z");
    env.ok(&["status", "--max-age", "5m"]);
    let v = env.json(&["status", "--max-age", "5m"]);
    assert_eq!(v["healthy"], true);
    assert_eq!(v["last_success_age_seconds"], 240);
    env.at("2030-03-10T09:06:00Z");
    let (out, err) = env.exits(&["status", "--max-age", "5m"], 3);
    assert!(err.contains("last successful tick was 6m ago"), "{err}");
    assert!(out.contains("health:           PROBLEM"), "{out}");
    // Without --max-age the age alone is no problem.
    env.ok(&["status"]);
    env.fails(&["status", "--max-age", "soon"], 2);
}

#[test]
fn prune_removes_old_finished_rows_only() {
    let mut env = Env::new();
    env.at("2030-01-01T09:00:00Z");
    env.user("ana@example.org", &[]);
    for i in 0..4 {
        env.ok(&[
            "send",
            "--user",
            "1",
            "--title",
            &format!("old {i}"),
            "--body",
            "b",
        ]);
    }
    env.tick();
    env.ok(&["mark-read", "1", "2", "4"]);
    env.at("2030-03-01T09:00:00Z");
    env.tick();
    // Note 3 stays unread; note 4 is read but its email waits for a retry.
    env.exec("UPDATE deliveries SET status = 'failed', next_attempt_at = '2030-03-02T00:00:00Z' WHERE notification_id = 4");
    let before = env.dump();
    let dry = env.json(&["prune", "--older-than", "30d", "--dry-run"]);
    assert_eq!(dry["removed"]["notifications"], 2, "{dry}");
    assert_eq!(env.dump(), before, "dry run changes nothing");
    let v = env.json(&["prune", "--older-than", "30d"]);
    assert_eq!(v["removed"]["notifications"], 2);
    assert_eq!(v["removed"]["ticks"], 1, "the latest tick is kept");
    let left: Vec<String> = env
        .json(&["list", "--user", "1"])
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["title"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        left,
        vec!["old 3", "old 2"],
        "old 0 and old 1 pruned; unread and waiting kept"
    );
    assert_eq!(
        env.json(&["deliveries", "--status", "pending"])
            .as_array()
            .unwrap()
            .len(),
        0,
        "sent meanwhile by the second tick"
    );
    env.fails(&["prune", "--older-than", "a while"], 2);
}

#[test]
fn import_users_and_events_all_or_nothing() {
    let mut env = Env::new();
    env.at("2030-03-01T09:00:00Z");
    std::fs::write(
        env.path("users.csv"),
        "email,name,timezone,locale\nana@example.org,Ana,Europe/Paris,fr\nbob@example.com,Bob,,en\n",
    )
    .unwrap();
    assert_eq!(env.json(&["import", "users", "users.csv"])["imported"], 2);
    std::fs::write(
        env.path("more.jsonl"),
        "{\"email\":\"cy@example.org\",\"name\":\"Cy\"}\n{\"email\":\"bad\",\"name\":\"X\"}\n{\"email\":\"dee@example.org\",\"name\":\"Dee\",\"timezone\":\"Nowhere/Land\"}\n{\"email\":\"ana@example.org\",\"name\":\"Dup\"}\n",
    )
    .unwrap();
    let before = env.dump();
    let err = env.fails(&["import", "users", "more.jsonl"], 2);
    assert!(err.contains("line 2, field email"), "{err}");
    assert!(err.contains("line 3, field timezone"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
    assert_eq!(env.dump(), before, "nothing written");
    // The duplicate with an existing user is caught inside the transaction.
    std::fs::write(
        env.path("dup.jsonl"),
        "{\"email\":\"cy@example.org\",\"name\":\"Cy\"}\n{\"email\":\"ANA@example.org\",\"name\":\"Dup\"}\n",
    )
    .unwrap();
    let err = env.fails(&["import", "users", "dup.jsonl"], 2);
    assert!(
        err.contains("line 2, field email") && err.contains("already exists"),
        "{err}"
    );
    assert_eq!(env.dump(), before);

    std::fs::write(
        env.path("events.csv"),
        "title,start,duration,timezone,video,participants\nIntro,2030-03-10 09:00,30m,,none,ana@example.org:mentor;bob@example.com\nFollow-up,2030-03-11T10:00:00Z,1h,,,bob@example.com\n",
    )
    .unwrap();
    assert_eq!(env.json(&["import", "events", "events.csv"])["imported"], 2);
    let e = env.json(&["event", "show", "1"]);
    assert_eq!(
        e["starts_at"], "2030-03-10T08:00:00Z",
        "read in the first participant's zone"
    );
    assert_eq!(e["participants"][0]["role"], "mentor");
    assert_eq!(
        env.json(&["list", "--user", "ana@example.org"])
            .as_array()
            .unwrap()
            .len(),
        0,
        "no notices without --notify"
    );
    std::fs::write(
        env.path("events.jsonl"),
        "{\"title\":\"A\",\"start\":\"2030-04-01T09:00:00Z\",\"participants\":[\"ana@example.org\"]}\n{\"title\":\"B\",\"start\":\"2030-03-31T02:30\",\"timezone\":\"Europe/Paris\",\"participants\":[]}\n{\"title\":\"C\",\"start\":\"2030-04-02T09:00:00Z\",\"participants\":[\"zed@example.org\"]}\n",
    )
    .unwrap();
    let before = env.dump();
    let err = env.fails(&["import", "events", "events.jsonl", "--notify"], 2);
    assert!(
        err.contains("line 2, field start") && err.contains("does not exist"),
        "{err}"
    );
    assert!(
        err.contains("line 3, field participants") && err.contains("zed@example.org"),
        "{err}"
    );
    assert_eq!(env.dump(), before);
    std::fs::write(
        env.path("ok.jsonl"),
        "{\"title\":\"A\",\"start\":\"2030-04-01T09:00:00Z\",\"participants\":[\"ana@example.org\"]}\n",
    )
    .unwrap();
    env.ok(&["import", "events", "ok.jsonl", "--notify"]);
    assert_eq!(
        env.json(&["list", "--user", "ana@example.org"])[0]["kind"],
        "assigned"
    );
    env.fails(&["import", "users", "users.txt"], 2);
}

#[test]
fn config_check_tests_the_smtp_login_without_sending() {
    let server = SmtpServer::with(SmtpPolicy {
        auth: Some(("apikey".into(), "right".into())),
        ..Default::default()
    });
    let mut env = Env::new();
    env.config(&format!(
        "[email]\ntransport = \"smtp\"\n[email.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nusername = \"apikey\"\npassword_env = \"PW\"\n",
        server.port
    ));
    env.env("PW", "right");
    let out = env.ok(&["config", "check"]);
    assert!(
        out.contains("ok    email: connected to 127.0.0.1") && out.contains("logged in"),
        "{out}"
    );
    assert_eq!(server.messages().len(), 0, "nothing sent");
    let mut wrong = Env::new();
    wrong.config(&std::fs::read_to_string(env.config.as_ref().unwrap()).unwrap());
    wrong.env("PW", "wrong");
    let (out, err) = wrong.exits(&["config", "check"], 3);
    assert!(
        err.contains("config check failed: email") && err.contains("535"),
        "{err}"
    );
    assert!(out.contains("FAIL  email"), "{out}");
    let shown = env.ok(&["config", "show"]);
    assert!(
        shown.contains("password_env = \"PW\"")
            && shown.contains("secret [email.smtp] password: set from environment variable PW"),
        "{shown}"
    );
    assert!(!shown.contains("right"), "the secret is never printed");
}

#[test]
fn demo_runs_and_shows_the_product() {
    let env = Env::bare();
    let keep = env.path("demo");
    let out = env.ok(&["demo", "--keep", keep.to_str().unwrap()]);
    assert!(out.contains("30 minutes before"), "{out}");
    let v = env.json(&["demo", "--keep", env.path("demo2").to_str().unwrap()]);
    assert_eq!(
        v["emails"].as_array().unwrap().len(),
        6,
        "2 assigned + 2×2 reminders: {v}"
    );
    let ticks = v["ticks"].as_array().unwrap();
    assert_eq!(ticks[3]["created"], 0, "the repeated minute creates nothing");
}

#[test]
fn completions_and_man_page_come_from_the_cli() {
    let env = Env::bare();
    assert!(env.ok(&["completions", "bash"]).contains("check-reminders"));
    assert!(env.ok(&["man"]).contains(".TH notifyctl"));
}

#[test]
fn a_database_locked_by_another_writer_fails_clearly_and_changes_nothing() {
    let mut env = Env::new();
    env.config("[database]\nbusy_timeout = \"1s\"\n");
    env.user("ana@example.org", &[]);
    let before = env.dump();
    let lock = env.lock_writes();
    let err = env.fails(&["user", "add", "--email", "bob@example.com", "--name", "Bob"], 4);
    assert!(
        err.contains("locked by another process") && err.contains("nothing was changed"),
        "{err}"
    );
    drop(lock);
    assert_eq!(env.dump(), before);
    env.tick();
}

#[test]
fn a_quiet_tick_prints_nothing_unless_something_failed() {
    use crate::support::{stderr_of, stdout_of};
    let server = SmtpServer::start();
    let mut env = Env::new();
    env.smtp(&server, "");
    env.at("2030-03-10T09:00:00Z");
    env.user("ana@example.org", &[]);
    env.ok(&["send", "--user", "1", "--title", "Hi", "--body", "b"]);
    let out = env.run(&["check-reminders", "-q"]);
    assert!(out.status.success());
    assert_eq!(
        (stdout_of(&out), stderr_of(&out)),
        (String::new(), String::new()),
        "cron mails nothing"
    );
    server.set_policy(SmtpPolicy {
        reject_all: true,
        ..Default::default()
    });
    env.ok(&["send", "--user", "1", "--title", "Hi again", "--body", "b"]);
    let out = env.run(&["check-reminders", "-q"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "a dead delivery needs a person: cron, systemd and Task Scheduler show a failed run"
    );
    assert!(stdout_of(&out).is_empty());
    let err = stderr_of(&out);
    assert!(
        err.contains("dead") && err.contains("550") && err.contains("ana@example.org"),
        "cron mails the dead delivery: {err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn global_options_may_follow_the_subcommand() {
    let env = Env::new();
    env.user("ana@example.org", &[]);
    let db = env.db_arg();
    let out = env.ok(&[
        "unread-count",
        "--user",
        "1",
        "--json",
        "--db",
        &db,
        "--now",
        "2030-03-10T09:00:00Z",
    ]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["unread"],
        0
    );
}

// SQLite-only, not listed below:
// - completions_and_man_page_come_from_the_cli: no database.
// - demo_runs_and_shows_the_product: the demo makes its own SQLite file.
crate::support::on_postgres!(
    status_max_age_exit_codes,
    prune_removes_old_finished_rows_only,
    import_users_and_events_all_or_nothing,
    config_check_tests_the_smtp_login_without_sending,
    a_database_locked_by_another_writer_fails_clearly_and_changes_nothing,
    a_quiet_tick_prints_nothing_unless_something_failed,
    global_options_may_follow_the_subcommand,
);

/// The last process to close the database leaves a short write-ahead log for the next one
/// (copying it into the file costs two fsyncs, more than an idle tick's work) and copies a
/// long one. Either way the next process sees every commit.
#[test]
fn a_short_write_ahead_log_is_left_for_the_next_process_a_long_one_is_copied() {
    let mut env = Env::new();
    let wal = {
        let mut p = env.db.clone().into_os_string();
        p.push("-wal");
        std::path::PathBuf::from(p)
    };
    env.at("2030-03-10T09:00:00Z");
    env.user("ana@example.org", &[]);
    env.tick();
    let short = std::fs::metadata(&wal)
        .expect("the log of an idle tick stays")
        .len();
    assert!(short > 0 && short <= 256 << 10, "{short} bytes");
    // A new process reads it back (SQLite's recovery): the tick and the user are there.
    let status = env.json(&["status"]);
    assert_eq!(status["last_tick"]["ok"], true, "{status}");
    assert_eq!(env.json(&["user", "list"]).as_array().unwrap().len(), 1);

    // Several MiB of events: the command that wrote them copies the log into the file.
    let mut rows = String::new();
    for i in 0..4000 {
        rows.push_str(&format!(
            "{{\"title\":\"{}{i}\",\"start\":\"2030-04-{:02}T{:02}:{:02}:00Z\",\"duration\":\"1m\",\"participants\":[\"ana@example.org\"]}}\n",
            "x".repeat(280),
            1 + i / 480,
            (i % 480) / 20,
            (i % 20) * 3,
        ));
    }
    std::fs::write(env.path("e.jsonl"), rows).unwrap();
    assert_eq!(env.json(&["import", "events", "e.jsonl"])["imported"], 4000);
    assert!(
        !wal.exists(),
        "a log of several MiB is copied and removed at close"
    );
    assert_eq!(env.count("SELECT count(*) FROM events"), 4000);
}
