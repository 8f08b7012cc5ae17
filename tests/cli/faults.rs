//! The guarantees under load and faults: many ticks at once, ticks killed at random
//! moments, SMTP servers that misbehave, a locked or read-only database.

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

use crate::support::{all_arrived_once, smtp_env, Env, SmtpPolicy, SmtpServer};

/// Tick, moving the clock on, until nothing waits.
fn drain(env: &mut Env, mut minute: u32) {
    for _ in 0..40 {
        env.at(&format!(
            "2030-03-10T{:02}:{:02}:00Z",
            9 + minute / 60,
            minute % 60
        ));
        if env.tick()["pending"] == 0 {
            return;
        }
        minute += 3;
    }
    panic!("the outbox never drained");
}

#[test]
fn sixteen_ticks_started_together_send_everything_once() {
    let server = SmtpServer::start();
    let env = smtp_env(&server);
    env.ok(&[
        "event",
        "add",
        "--title",
        "Call",
        "--start",
        "2030-03-10T09:30:00Z",
        "--participant",
        "1",
    ]);
    env.queue_custom(200);
    let children: Vec<_> = (0..16)
        .map(|_| {
            env.std_cmd()
                .args(["--json", "check-reminders"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut created = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        created += serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["created"]
            .as_i64()
            .unwrap();
    }
    assert_eq!(created, 1, "the reminder was created by exactly one tick");
    assert_eq!(all_arrived_once(&server, 202), 0, "no duplicates");
    assert_eq!(server.settled().len(), 202);
}

#[test]
fn ticks_killed_at_random_moments_lose_nothing() {
    let server = SmtpServer::with(SmtpPolicy {
        delay: Duration::from_millis(2),
        ..Default::default()
    });
    let mut env = smtp_env(&server);
    let total = 400;
    env.queue_custom(total);
    let mut kills = 0;
    // A cheap deterministic "random": kill after 15..95 ms, varying each round.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for round in 0..60u32 {
        env.at(&format!(
            "2030-03-10T{:02}:{:02}:00Z",
            9 + (round * 3) / 60,
            (round * 3) % 60
        ));
        let mut child = env
            .std_cmd()
            .arg("check-reminders")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(15 + seed % 80));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
        if server.messages().len() >= total
            && env
                .json(&["deliveries", "--status", "sent", "--limit", "1000"])
                .as_array()
                .unwrap()
                .len()
                == total
        {
            break;
        }
    }
    assert!(kills >= 2, "the test killed ticks mid-batch ({kills})");
    drain(&mut env, 200);
    let dups = all_arrived_once(&server, total);
    // Only a kill between the server's acceptance and the commit can duplicate: at most the
    // three messages one connection may have sent ahead of the recording thread.
    assert!(dups <= 3 * kills, "{dups} duplicates for {kills} kills");
    eprintln!("killed {kills} ticks; {dups} duplicate emails (a kill between acceptance and commit)");
}

#[test]
fn a_slow_server_is_waited_for() {
    let server = SmtpServer::with(SmtpPolicy {
        delay: Duration::from_millis(400),
        ..Default::default()
    });
    let env = smtp_env(&server);
    env.queue_custom(3);
    let s = env.tick();
    assert_eq!(s["sent"], 3);
    assert_eq!(all_arrived_once(&server, 3), 0);
}

#[test]
fn a_connection_dropped_mid_message_is_retried_without_loss() {
    let server = SmtpServer::with(SmtpPolicy {
        drop_every: 4,
        ..Default::default()
    });
    let mut env = smtp_env(&server);
    env.queue_custom(20);
    let started = std::time::Instant::now();
    let s = env.tick();
    assert!(s["failed"].as_i64().unwrap() >= 1, "{s}");
    assert_eq!(s["sent"], 3, "sent until the drop, then the rest waits: {s}");
    // Regression: the given-back deliveries were re-claimed in a loop until max runtime.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "tick took {:?}",
        started.elapsed()
    );
    drain(&mut env, 1);
    assert_eq!(all_arrived_once(&server, 20), 0);
}

#[test]
fn a_server_failing_every_third_message_delivers_all_once() {
    let server = SmtpServer::with(SmtpPolicy {
        temp_fail_every: 3,
        ..Default::default()
    });
    let mut env = smtp_env(&server);
    env.queue_custom(30);
    let s = env.tick();
    assert!(s["failed"].as_i64().unwrap() >= 9, "{s}");
    drain(&mut env, 1);
    assert_eq!(all_arrived_once(&server, 30), 0);
}

#[test]
fn a_tick_on_a_database_locked_past_the_busy_timeout_fails_cleanly() {
    let server = SmtpServer::start();
    let mut env = smtp_env(&server);
    let cfg = std::fs::read_to_string(env.config.as_ref().unwrap()).unwrap();
    env.config(&format!("[database]\nbusy_timeout = \"1s\"\n{cfg}"));
    env.ok(&[
        "event",
        "add",
        "--title",
        "Call",
        "--start",
        "2030-03-10T09:30:00Z",
        "--participant",
        "1",
    ]);
    let before = env.dump();
    let lock = env.lock_writes();
    let err = env.fails(&["check-reminders"], 4);
    assert!(err.contains("locked by another process"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    drop(lock);
    assert_eq!(env.dump(), before, "nothing half-written");
    let s = env.tick();
    assert_eq!(s["created"], 1);
    assert_eq!(s["sent"], 2);
}

#[cfg(unix)]
#[test]
fn a_read_only_database_is_refused_clearly() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    env.user("ana@example.org", &[]);
    let before = env.dump();
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&env.db, std::fs::Permissions::from_mode(0o444)).unwrap();
    // Root ignores permission bits: run the binary as `nobody` then.
    let mut cmd = if unsafe_is_root() {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(assert_cmd::cargo::cargo_bin("notifyctl"));
        c
    } else {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("notifyctl"))
    };
    let out = cmd
        .env("NOTIFYCTL_DB", &env.db)
        .args(["user", "add", "--email", "bob@example.com", "--name", "Bob"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(err.contains("read-only") || err.contains("permission"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(env.dump(), before);
}

fn unsafe_is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false)
}

#[test]
fn rows_written_by_an_app_with_broken_values_are_reported_and_skipped() {
    let server = SmtpServer::start();
    let env = smtp_env(&server);
    env.ok(&[
        "event",
        "add",
        "--title",
        "Good",
        "--start",
        "2030-03-10T09:30:00Z",
        "--participant",
        "1",
    ]);
    env.user("bob@example.com", &[]);
    env.ok(&[
        "event",
        "add",
        "--title",
        "Bad",
        "--start",
        "2030-03-10T09:20:00Z",
        "--participant",
        "2",
    ]);
    env.queue_custom(2);
    let conn = env.sql_unguarded();
    // A participant row with a broken instant, and a notification with a broken one.
    conn.execute(
        "UPDATE participants SET added_at = 'not a time' WHERE user_id = 2",
        [],
    )
    .unwrap();
    conn.execute(
        "UPDATE notifications SET created_at = '??' WHERE title = 'bulk 0'",
        [],
    )
    .unwrap();
    let out = env.run(&["--json", "check-reminders"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "the unreadable delivery needs a person: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["created"], 1, "the good event's reminder: {s}");
    assert_eq!(s["broken_rows"].as_array().unwrap().len(), 1);
    assert_eq!(s["dead"], 1, "the unreadable delivery is set aside");
    let dead = env.json(&["deliveries", "--status", "dead"]);
    assert!(dead.to_string().contains("unreadable row"), "{dead}");
    // Everything else went out.
    let ids: HashSet<String> = server.wait_for(4).iter().map(|m| m.message_id()).collect();
    assert_eq!(ids.len(), 4, "assigned x2, reminder, bulk 1");
}

/// Three custom notices waiting; the server on `server`, ticks limited to `max_runtime`.
fn stalled_env(server: &SmtpServer, extra_tick: &str) -> Env {
    let mut env = Env::new();
    env.config(&format!(
        "[tick]\n{extra_tick}\n[email]\ntransport = \"smtp\"\nmax_attempts = 50\nbackoff_base = \"1s\"\nbackoff_max = \"1s\"\n[email.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\ntimeout = \"20s\"\n",
        server.port
    ));
    env.at("2030-03-10T09:00:00Z");
    env.user("ana@example.org", &[]);
    for i in 0..3 {
        env.ok(&["send", "--user", "1", "--title", &format!("n{i}"), "--body", "b"]);
    }
    env
}

/// Run one tick; its exit code and how long it took.
fn timed_tick(env: &Env, max_runtime: &str) -> (Option<i32>, Duration) {
    let started = std::time::Instant::now();
    let out = env.run(&["--json", "check-reminders", "--max-runtime", max_runtime]);
    (out.status.code(), started.elapsed())
}

/// Regression: a server that never greets held a `--max-runtime 5s` tick for 20 s (the
/// SMTP timeout), so ticks started every minute could pile up.
#[test]
fn a_server_that_never_greets_holds_a_tick_no_longer_than_max_runtime() {
    let server = SmtpServer::with(SmtpPolicy {
        silent: true,
        ..Default::default()
    });
    let env = stalled_env(&server, "");
    let (code, took) = timed_tick(&env, "3s");
    assert_eq!(code, Some(0), "a server that is down is retried, not a failure");
    assert!(
        took < Duration::from_secs(6),
        "bounded by --max-runtime: {took:?}"
    );
    let d = env.json(&["deliveries"]);
    assert!(d.as_array().unwrap().iter().all(|d| d["status"] != "sent"));
    let failed = env.json(&["deliveries", "--status", "failed"]);
    let error = failed[0]["last_error"].as_str().unwrap();
    assert!(
        error.contains("greeting") && !error.contains("os error"),
        "says what timed out, in words: {error}"
    );
}

/// Regression: a server answering one byte every few seconds held a `--max-runtime 40s`
/// tick for 210 s (the timeout applied per read), and the next ticks took over its
/// claims and sent the same messages again.
#[test]
fn a_server_trickling_its_answers_is_cut_at_max_runtime_without_duplicates() {
    let server = SmtpServer::with(SmtpPolicy {
        trickle: Duration::from_millis(300),
        ..Default::default()
    });
    let env = stalled_env(&server, "");
    let (code, took) = timed_tick(&env, "3s");
    assert_eq!(code, Some(0));
    assert!(
        took < Duration::from_secs(6),
        "bounded by --max-runtime: {took:?}"
    );
    // A faster server later: everything arrives, once.
    server.set_policy(SmtpPolicy::default());
    let mut env = env;
    env.at("2030-03-10T09:05:00Z");
    let s = env.tick();
    assert_eq!(s["pending"], 0, "{s}");
    assert_eq!(all_arrived_once(&server, 3), 0, "no duplicates");
}

/// Regression: with a server that answers the final dot after 12 s, a second tick took
/// the claim over and sent the message again (two copies, same Message-ID). Ticks here
/// overlap as cron's do, their clocks two seconds apart.
#[test]
fn a_slow_answer_to_the_message_is_waited_for_and_never_sent_twice() {
    let server = SmtpServer::with(SmtpPolicy {
        delay: Duration::from_secs(6),
        ..Default::default()
    });
    let env = stalled_env(&server, "claim_timeout = \"50s\"\nanswer_grace = \"15s\"");
    let children: Vec<_> = (0..4)
        .map(|i| {
            let child = env
                .std_cmd()
                .env("NOTIFYCTL_NOW", format!("2030-03-10T09:00:{:02}Z", i * 2))
                .args(["--json", "check-reminders", "--max-runtime", "3s"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_secs(2));
            child
        })
        .collect();
    let mut sent = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        sent += v["sent"].as_i64().unwrap_or(0);
    }
    // The first tick sent one message (its answer came 6 s later, within the grace);
    // no other tick took it over meanwhile.
    let msgs = server.settled();
    let ids: HashSet<String> = msgs.iter().map(|m| m.message_id()).collect();
    assert_eq!(msgs.len(), ids.len(), "no message twice: {sent} sent");
    assert_eq!(
        sent as usize,
        msgs.len(),
        "every accepted message recorded as sent"
    );
    // Later ticks finish the rest, still once each.
    server.set_policy(SmtpPolicy::default());
    let mut env = env;
    env.at("2030-03-10T09:10:00Z");
    assert_eq!(env.tick()["pending"], 0);
    assert_eq!(all_arrived_once(&server, 3), 0);
}

/// Regression: a 535 to AUTH marked every pending delivery dead in one tick, and every
/// new one each minute after.
#[test]
fn a_wrong_smtp_password_keeps_the_mail_and_makes_status_unhealthy() {
    let server = SmtpServer::with(SmtpPolicy {
        auth: Some(("apikey".into(), "right".into())),
        ..Default::default()
    });
    let mut env = stalled_env(&server, "");
    let cfg = std::fs::read_to_string(env.config.as_ref().unwrap()).unwrap();
    env.config(&format!("{cfg}username = \"apikey\"\npassword_env = \"PW\"\n"));
    env.env("PW", "wrong");
    let (out, err) = env.exits(&["--json", "check-reminders"], 3);
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (s["sent"].as_i64(), s["dead"].as_i64()),
        (Some(0), Some(0)),
        "{s}"
    );
    assert!(err.contains("refused") && err.contains("535"), "{err}");
    let pending = env.json(&["deliveries", "--status", "pending"]);
    assert_eq!(pending.as_array().unwrap().len(), 3, "all kept");
    assert!(pending.as_array().unwrap().iter().all(|d| d["attempts"] == 0));
    let (_, err) = env.exits(&["status"], 3);
    assert!(err.contains("535"), "status says why: {err}");
    // The admin fixes the password: everything goes, once.
    let mut env = env;
    env.env("PW", "right");
    env.at("2030-03-10T09:01:00Z");
    assert_eq!(env.tick()["sent"], 3);
    assert_eq!(all_arrived_once(&server, 3), 0);
}

#[cfg(unix)]
fn signal(child: &std::process::Child, name: &str) {
    let ok = std::process::Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{name}");
}

/// Regression: SIGTERM (every `systemctl stop`, every shutdown) killed a tick at once,
/// left its record "running" forever and its claims waiting for the lease.
#[cfg(unix)]
#[test]
fn sigterm_finishes_the_message_in_flight_gives_back_the_rest_and_exits_143() {
    let server = SmtpServer::with(SmtpPolicy {
        delay: Duration::from_millis(300),
        ..Default::default()
    });
    let mut env = smtp_env(&server);
    env.queue_custom(30);
    let mut child = env
        .std_cmd()
        .arg("check-reminders")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        crate::support::wait_until(Duration::from_secs(20), || server.messages().len() >= 3),
        "sending started"
    );
    signal(&child, "TERM");
    let stopped = std::time::Instant::now();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    assert!(
        stopped.elapsed() < Duration::from_secs(3),
        "stopped promptly: {:?}",
        stopped.elapsed()
    );
    let accepted = server.settled().len();
    let sending = env.json(&["deliveries", "--status", "sending"]);
    assert_eq!(sending.as_array().unwrap().len(), 0, "every claim given back");
    let sent = env.json(&["deliveries", "--status", "sent", "--limit", "1000"]);
    assert_eq!(
        sent.as_array().unwrap().len(),
        accepted,
        "the message in flight was finished and recorded"
    );
    let status = env.run(&["--json", "status"]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["last_tick"]["ok"], false, "recorded as interrupted: {v}");
    assert!(
        v["last_tick"]["error"].as_str().unwrap().contains("signal 15"),
        "{v}"
    );
    // The next tick sends the rest, each once.
    server.set_policy(SmtpPolicy::default());
    env.at("2030-03-10T09:01:00Z");
    assert_eq!(env.tick()["pending"], 0);
    assert_eq!(all_arrived_once(&server, 30), 0);
}

#[cfg(unix)]
#[test]
fn a_second_signal_stops_at_once() {
    let server = SmtpServer::with(SmtpPolicy {
        delay: Duration::from_secs(8),
        ..Default::default()
    });
    let env = smtp_env(&server);
    env.queue_custom(3);
    let mut child = env
        .std_cmd()
        .arg("check-reminders")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(crate::support::wait_until(Duration::from_secs(20), || server
        .attempts()
        >= 1));
    let stopped = std::time::Instant::now();
    signal(&child, "INT");
    std::thread::sleep(Duration::from_millis(100));
    signal(&child, "INT");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        stopped.elapsed() < Duration::from_secs(4),
        "{:?}",
        stopped.elapsed()
    );
}

// SQLite-only, not listed below:
// - a_read_only_database_is_refused_clearly: file permissions.
// - rows_written_by_an_app_with_broken_values_are_reported_and_skipped: text in time columns, which PostgreSQL's typed columns refuse.
crate::support::on_postgres!(
    sixteen_ticks_started_together_send_everything_once,
    ticks_killed_at_random_moments_lose_nothing,
    a_slow_server_is_waited_for,
    a_connection_dropped_mid_message_is_retried_without_loss,
    a_server_failing_every_third_message_delivers_all_once,
    a_tick_on_a_database_locked_past_the_busy_timeout_fails_cleanly,
    a_server_that_never_greets_holds_a_tick_no_longer_than_max_runtime,
    a_server_trickling_its_answers_is_cut_at_max_runtime_without_duplicates,
    a_slow_answer_to_the_message_is_waited_for_and_never_sent_twice,
    a_wrong_smtp_password_keeps_the_mail_and_makes_status_unhealthy,
    #[cfg(unix)]
    sigterm_finishes_the_message_in_flight_gives_back_the_rest_and_exits_143,
    #[cfg(unix)]
    a_second_signal_stops_at_once,
);
