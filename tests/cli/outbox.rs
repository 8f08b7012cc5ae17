//! The email outbox against a real SMTP server that fails in the ways real ones do.

use std::time::Duration;

use crate::support::{all_arrived_once, dead_port, wait_until, Env, SmtpPolicy, SmtpServer};

/// One user, one custom notice waiting in the outbox.
fn setup(server_port: u16, extra: &str) -> Env {
    let mut env = Env::new();
    env.config(&format!(
        "[email]\ntransport = \"smtp\"\nmax_attempts = 3\n{extra}\n[email.smtp]\nhost = \"127.0.0.1\"\nport = {server_port}\ntls = \"none\"\ntimeout = \"3s\"\n"
    ));
    env.at("2030-03-10T09:00:00Z");
    env.user("ana@example.org", &[]);
    env.ok(&[
        "send",
        "--user",
        "ana@example.org",
        "--title",
        "Hello",
        "--body",
        "Body",
    ]);
    env
}

fn delivery(env: &Env) -> serde_json::Value {
    env.json(&["deliveries"])[0].clone()
}

#[test]
fn temporary_failure_is_retried_on_schedule_and_arrives_once() {
    let server = SmtpServer::with(SmtpPolicy {
        temp_fail_first: 1,
        ..Default::default()
    });
    let mut env = setup(server.port, "");
    let s = env.tick();
    assert_eq!(
        (s["sent"].as_i64(), s["failed"].as_i64(), s["pending"].as_i64()),
        (Some(0), Some(1), Some(1))
    );
    let d = delivery(&env);
    assert_eq!(d["status"], "failed");
    assert_eq!(d["attempts"], 1);
    assert_eq!(
        d["next_attempt_at"], "2030-03-10T09:01:00Z",
        "first retry after backoff_base"
    );
    assert!(d["last_error"].as_str().unwrap().contains("451"), "{d}");
    // Not before its time.
    env.at("2030-03-10T09:00:30Z");
    assert_eq!(env.tick()["sent"], 0);
    env.at("2030-03-10T09:01:00Z");
    assert_eq!(env.tick()["sent"], 1);
    assert_eq!(delivery(&env)["status"], "sent");
    assert!(delivery(&env)["response"].as_str().unwrap().starts_with("250"));
    env.at("2030-03-10T10:00:00Z");
    env.tick();
    assert_eq!(server.wait_for(1).len(), 1);
    assert_eq!(server.attempts(), 2);
}

#[test]
fn permanent_failure_is_dead_at_once_and_listed() {
    let server = SmtpServer::with(SmtpPolicy {
        reject_all: true,
        ..Default::default()
    });
    let env = setup(server.port, "");
    let (out, _) = env.exits(&["--json", "check-reminders"], 3);
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["dead"], 1);
    let dead = env.json(&["deliveries", "--status", "dead"]);
    assert_eq!(dead.as_array().unwrap().len(), 1);
    assert!(dead[0]["last_error"].as_str().unwrap().contains("550"));
    // status flags it, with exit 3.
    let (_, err) = env.exits(&["status"], 3);
    assert!(err.contains("1 dead deliveries"), "{err}");
    // An admin fixes the cause and re-queues.
    server.set_policy(SmtpPolicy::default());
    env.ok(&["deliveries", "retry", "--dead"]);
    assert_eq!(env.tick()["sent"], 1);
    assert_eq!(server.wait_for(1).len(), 1);
}

#[test]
fn retries_stop_at_max_attempts() {
    let server = SmtpServer::with(SmtpPolicy {
        temp_fail_first: 100,
        ..Default::default()
    });
    let mut env = setup(server.port, "");
    for minute in ["09:00", "09:01"] {
        env.at(&format!("2030-03-10T{minute}:00Z"));
        env.tick();
    }
    env.at("2030-03-10T09:03:00Z");
    let (out, err) = env.exits(&["--json", "check-reminders"], 3);
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["dead"], 1, "{s}");
    assert!(
        err.contains("deliveries went dead") && err.contains("failed 3 times") && err.contains("451"),
        "{err}"
    );
    let d = delivery(&env);
    assert_eq!(d["status"], "dead", "{d}");
    assert_eq!(d["attempts"], 3);
}

#[test]
fn server_not_listening_loses_nothing() {
    let mut dead = dead_port();
    let port = dead.port;
    let mut env = setup(port, "");
    env.ok(&[
        "send",
        "--user",
        "ana@example.org",
        "--title",
        "Second",
        "--body",
        "B",
    ]);
    let s = env.tick();
    assert_eq!(s["sent"], 0);
    assert_eq!(
        s["failed"], 1,
        "tried once, then the channel is known down for this tick"
    );
    assert_eq!(s["pending"], 2);
    assert_eq!(
        env.json(&["deliveries", "--status", "pending"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // The server comes back on the same port.
    dead.release();
    let server = SmtpServer::start_on(port);
    env.at("2030-03-10T09:05:00Z");
    let s = env.tick();
    assert_eq!(s["sent"], 2);
    assert_eq!(server.wait_for(2).len(), 2);
}

#[test]
fn cancelled_while_waiting_for_a_retry_the_reminder_is_dropped() {
    let server = SmtpServer::with(SmtpPolicy {
        temp_fail_first: 100,
        ..Default::default()
    });
    let mut env = setup(server.port, "");
    env.ok(&[
        "event",
        "add",
        "--title",
        "Call",
        "--start",
        "2030-03-10T09:40:00Z",
        "--participant",
        "ana@example.org",
    ]);
    env.at("2030-03-10T09:10:00Z");
    let s = env.tick();
    assert_eq!(s["created"], 1);
    assert_eq!(s["failed"], 3, "custom + assigned + reminder all waiting");
    env.ok(&["event", "cancel", "1"]);
    server.set_policy(SmtpPolicy::default());
    env.at("2030-03-10T09:20:00Z");
    let s = env.tick();
    assert_eq!(s["dropped"], 2, "assigned and reminder superseded: {s}");
    assert_eq!(s["sent"], 2, "custom and cancelled");
    let superseded = env.json(&["deliveries", "--status", "superseded"]);
    assert_eq!(superseded.as_array().unwrap().len(), 2);
    let kinds: Vec<String> = server
        .wait_for(2)
        .iter()
        .map(|m| m.header("Subject").unwrap())
        .collect();
    assert!(kinds.iter().all(|k| !k.contains("Rappel")), "{kinds:?}");
}

#[test]
fn a_reminder_that_can_no_longer_arrive_in_time_expires() {
    let server = SmtpServer::with(SmtpPolicy {
        temp_fail_first: 100,
        ..Default::default()
    });
    let mut env = setup(server.port, "");
    env.ok(&[
        "event",
        "add",
        "--title",
        "Call",
        "--start",
        "2030-03-10T09:40:00Z",
        "--participant",
        "ana@example.org",
    ]);
    env.at("2030-03-10T09:35:00Z");
    env.tick();
    server.set_policy(SmtpPolicy::default());
    env.at("2030-03-10T09:41:00Z");
    let s = env.tick();
    assert_eq!(s["dropped"], 1);
    assert_eq!(
        env.json(&["deliveries", "--status", "expired"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// `[email.smtp] connections = 3`: every message arrives once, on more than one
/// connection, and the tick ends. A worker takes its next job while the server answers the
/// current one; it must never wait for the queue another idle worker holds (a tick with
/// two connections once hung at its last message that way).
#[test]
fn several_connections_send_everything_once_and_the_tick_ends() {
    let server = SmtpServer::with(SmtpPolicy {
        delay: Duration::from_millis(1),
        ..Default::default()
    });
    let mut env = Env::new();
    env.config(&format!(
        "[email]\ntransport = \"smtp\"\n[email.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\ntimeout = \"3s\"\nconnections = 3\n",
        server.port
    ));
    env.at("2030-03-10T09:00:00Z");
    env.user("ana@example.org", &[]);
    let total = 300;
    env.queue_custom(total);
    let mut child = env
        .std_cmd()
        .args(["--json", "check-reminders"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let ended = wait_until(Duration::from_secs(60), || child.try_wait().unwrap().is_some());
    if !ended {
        child.kill().unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(ended, "the tick did not end within a minute");
    assert!(out.status.success(), "{out:?}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["sent"], total, "{summary}");
    assert_eq!(all_arrived_once(&server, total), 0, "no duplicates");
    assert!(server.connections() >= 2, "{} connections", server.connections());
}

#[test]
fn sigkill_in_the_middle_of_a_large_batch_loses_nothing() {
    let server = SmtpServer::with(SmtpPolicy {
        delay: Duration::from_millis(4),
        ..Default::default()
    });
    let mut env = setup(server.port, "");
    let n = 300;
    env.queue_custom(n);
    let total = n + 1;
    let mut child = env.std_cmd().arg("check-reminders").spawn().unwrap();
    // Kill it once some, not all, have gone.
    assert!(
        wait_until(Duration::from_secs(20), || server.messages().len() >= 40),
        "the tick started sending"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let before_restart = server.messages().len();
    assert!(
        before_restart > 0 && before_restart < total,
        "killed mid-batch ({before_restart})"
    );
    // Its claims expire; later ticks finish the work.
    env.at("2030-03-10T09:03:00Z");
    let s = env.tick();
    assert_eq!(s["pending"], 0, "{s}");
    let msgs = server.wait_for(total);
    let ids: std::collections::HashSet<String> = msgs.iter().map(|m| m.message_id()).collect();
    assert_eq!(ids.len(), total, "every email arrived");
    // A duplicate is only possible for a message the server accepted whose outcome was not
    // committed yet at the kill: on one connection at most the three it may have out
    // before their outcomes are committed (README, Guarantees).
    assert!(
        msgs.len() - ids.len() <= 3,
        "{} duplicates",
        msgs.len() - ids.len()
    );
    assert_eq!(
        env.json(&["deliveries", "--status", "sent", "--limit", "1000"])
            .as_array()
            .unwrap()
            .len(),
        total
    );
}

#[test]
fn max_runtime_stops_claiming_and_gives_work_back() {
    let server = SmtpServer::with(SmtpPolicy {
        delay: Duration::from_millis(300),
        ..Default::default()
    });
    let env = setup(server.port, "");
    for i in 0..5 {
        env.ok(&["send", "--user", "1", "--title", &format!("n{i}"), "--body", "b"]);
    }
    let s = env.json(&["check-reminders", "--max-runtime", "1s"]);
    let sent = s["sent"].as_i64().unwrap();
    assert!((1..6).contains(&sent), "{s}");
    assert_eq!(s["pending"].as_i64().unwrap(), 6 - sent);
    assert_eq!(
        env.json(&["deliveries", "--status", "sending"])
            .as_array()
            .unwrap()
            .len(),
        0,
        "claims given back"
    );
    let s = env.json(&["check-reminders", "--max-runtime", "30s"]);
    assert_eq!(s["sent"].as_i64().unwrap(), 6 - sent);
}

#[test]
fn a_missing_smtp_password_fails_the_tick_clearly_and_keeps_the_mail() {
    let server = SmtpServer::start();
    let env = setup(server.port, "");
    let cfg = std::fs::read_to_string(env.config.as_ref().unwrap()).unwrap();
    let mut env = env;
    env.config(&format!(
        "{cfg}username = \"apikey\"\npassword_env = \"TEST_SMTP_PW\"\n"
    ));
    let (_, err) = env.exits(&["check-reminders"], 3);
    assert!(err.contains("TEST_SMTP_PW is not set"), "{err}");
    let pending = env.json(&["deliveries", "--status", "pending"]);
    assert_eq!(pending.as_array().unwrap().len(), 1, "the mail is kept");
    assert_eq!(pending[0]["attempts"], 0, "no attempt spent on a setting");
    let status = env.run(&["--json", "status"]);
    assert_eq!(status.status.code(), Some(3), "status is unhealthy");
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["last_tick"]["ok"], true, "the tick itself finished");
    assert!(
        v["problems"].to_string().contains("TEST_SMTP_PW"),
        "status says why: {v}"
    );
}

/// One event at 09:40 for ana, whose reminder is created at 09:10 but cannot go out
/// (the server answers 451), so the tests can change the event before it is sent.
fn reminder_waiting(server: &SmtpServer) -> Env {
    let mut env = setup(server.port, "");
    env.ok(&[
        "event",
        "add",
        "--title",
        "Call",
        "--start",
        "2030-03-10T09:40:00Z",
        "--participant",
        "ana@example.org",
    ]);
    env.at("2030-03-10T09:10:00Z");
    let s = env.tick();
    assert_eq!(s["created"], 1, "{s}");
    assert_eq!(s["failed"], 3, "custom + assigned + reminder waiting: {s}");
    env
}

fn statuses_by_kind(env: &Env) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = env
        .json(&["deliveries"])
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap().to_string(),
                d["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_reminder_for_a_moved_event_is_superseded_not_sent() {
    let server = SmtpServer::with(SmtpPolicy {
        temp_fail_first: 100,
        ..Default::default()
    });
    let mut env = reminder_waiting(&server);
    env.ok(&["event", "update", "1", "--start", "2030-03-10T11:00:00Z"]);
    server.set_policy(SmtpPolicy::default());
    env.at("2030-03-10T09:12:00Z");
    let s = env.tick();
    assert_eq!(s["dropped"], 1, "the 09:40 reminder: {s}");
    let reminder = env
        .json(&["deliveries", "--status", "superseded"])
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(reminder.len(), 1);
    assert_eq!(reminder[0]["kind"], "reminder");
    assert!(
        reminder[0]["last_error"].as_str().unwrap().contains("moved"),
        "{reminder:?}"
    );
    let subjects: Vec<String> = server
        .settled()
        .iter()
        .map(|m| m.header("Subject").unwrap_or_default())
        .collect();
    assert!(!subjects.iter().any(|s| s.contains("Rappel")), "{subjects:?}");
}

#[test]
fn a_reminder_for_someone_no_longer_a_participant_is_superseded() {
    let server = SmtpServer::with(SmtpPolicy {
        temp_fail_first: 100,
        ..Default::default()
    });
    let mut env = reminder_waiting(&server);
    env.ok(&["event", "unassign", "1", "--user", "ana@example.org"]);
    server.set_policy(SmtpPolicy::default());
    env.at("2030-03-10T09:12:00Z");
    let s = env.tick();
    assert_eq!(s["dropped"], 2, "assigned and reminder: {s}");
    assert_eq!(
        statuses_by_kind(&env),
        vec![
            ("assigned".into(), "superseded".into()),
            ("cancelled".into(), "sent".into()),
            ("custom".into(), "sent".into()),
            ("reminder".into(), "superseded".into()),
        ]
    );
    let superseded = env.json(&["deliveries", "--status", "superseded"]);
    for d in superseded.as_array().unwrap() {
        assert!(
            d["last_error"]
                .as_str()
                .unwrap()
                .contains("no longer a participant"),
            "{d}"
        );
    }
}

#[test]
fn retry_by_id_requeues_that_delivery_only() {
    let server = SmtpServer::with(SmtpPolicy {
        reject_all: true,
        ..Default::default()
    });
    let env = setup(server.port, "");
    env.ok(&[
        "send",
        "--user",
        "ana@example.org",
        "--title",
        "Second",
        "--body",
        "B",
    ]);
    env.exits(&["check-reminders"], 3);
    let dead = env.json(&["deliveries", "--status", "dead"]);
    assert_eq!(dead.as_array().unwrap().len(), 2);
    let first = dead[1]["id"].as_i64().unwrap();
    server.set_policy(SmtpPolicy::default());
    let before = env.dump();
    let err = env.fails(&["deliveries", "retry", &first.to_string(), "999"], 2);
    assert!(err.contains("unknown delivery 999"), "{err}");
    assert_eq!(env.dump(), before, "nothing re-queued when one id is unknown");
    let v = env.json(&["deliveries", "retry", &first.to_string()]);
    assert_eq!(v["requeued"], 1);
    let d = env.json(&["deliveries"]);
    let status = |id: i64| d.as_array().unwrap().iter().find(|x| x["id"] == id).unwrap()["status"].clone();
    assert_eq!(status(first), "pending");
    assert_eq!(d.as_array().unwrap().len(), 2);
    let s = env.json(&["check-reminders"]);
    assert_eq!(s["sent"], 1, "only the re-queued one: {s}");
    assert_eq!(server.settled().len(), 1);
    let sent = env.json(&["deliveries", "--status", "sent"]);
    assert_eq!(sent[0]["id"], first);
    // A sent delivery cannot be re-queued.
    let err = env.fails(&["deliveries", "retry", &first.to_string()], 2);
    assert!(err.contains("is sent"), "{err}");
}

#[test]
fn a_misconfigured_webhook_does_not_stop_email() {
    let server = SmtpServer::start();
    let mut env = Env::new();
    env.config(&format!(
        "[email]\ntransport = \"smtp\"\n[email.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\ntimeout = \"3s\"\n[webhook]\nurl = \"http://127.0.0.1:9/hook\"\nsecret_env = \"NOTIFYCTL_TEST_UNSET_SECRET\"\n",
        server.port
    ));
    env.at("2030-03-10T09:00:00Z");
    env.user("ana@example.org", &[]);
    env.ok(&["send", "--user", "1", "--title", "Hello", "--body", "B"]);
    let (out, err) = env.exits(&["--json", "check-reminders"], 3);
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["sent"], 1, "the email went out: {s}");
    assert!(
        err.contains("webhook") && err.contains("NOTIFYCTL_TEST_UNSET_SECRET"),
        "the tick says which channel and why: {err}"
    );
    assert_eq!(server.settled().len(), 1);
    let waiting = env.json(&["deliveries", "--status", "pending"]);
    assert_eq!(
        waiting.as_array().unwrap().len(),
        1,
        "the webhook waits, not dead"
    );
    assert_eq!(waiting[0]["channel"], "webhook");
    assert_eq!(waiting[0]["attempts"], 0, "no attempt was spent on it");
    let (_, err) = env.exits(&["status"], 3);
    assert!(err.contains("webhook"), "status names the problem: {err}");
}

crate::support::on_postgres!(
    temporary_failure_is_retried_on_schedule_and_arrives_once,
    permanent_failure_is_dead_at_once_and_listed,
    retries_stop_at_max_attempts,
    server_not_listening_loses_nothing,
    cancelled_while_waiting_for_a_retry_the_reminder_is_dropped,
    a_reminder_that_can_no_longer_arrive_in_time_expires,
    sigkill_in_the_middle_of_a_large_batch_loses_nothing,
    max_runtime_stops_claiming_and_gives_work_back,
    a_missing_smtp_password_fails_the_tick_clearly_and_keeps_the_mail,
    a_reminder_for_a_moved_event_is_superseded_not_sent,
    a_reminder_for_someone_no_longer_a_participant_is_superseded,
    retry_by_id_requeues_that_delivery_only,
    a_misconfigured_webhook_does_not_stop_email,
);
