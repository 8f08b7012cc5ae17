//! The email outbox against a real SMTP server that fails in the ways real ones do.

use std::time::Duration;

use crate::support::{dead_port, Env, SmtpPolicy, SmtpServer};

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
    let s = env.tick();
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
    for minute in ["09:00", "09:01", "09:03"] {
        env.at(&format!("2030-03-10T{minute}:00Z"));
        env.tick();
    }
    let d = delivery(&env);
    assert_eq!(d["status"], "dead", "{d}");
    assert_eq!(d["attempts"], 3);
}

#[test]
fn server_not_listening_loses_nothing() {
    let port = dead_port();
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
    for _ in 0..400 {
        if server.messages().len() >= 40 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
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
    // A duplicate is only possible for the one message in flight at the kill.
    assert!(
        msgs.len() - ids.len() <= 1,
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
    let err = env.fails(&["check-reminders"], 2);
    assert!(err.contains("TEST_SMTP_PW is not set"), "{err}");
    assert_eq!(
        env.json(&["deliveries", "--status", "pending"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let status = env.run(&["--json", "status"]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["last_tick"]["ok"], false);
}
