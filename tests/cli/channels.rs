//! Channels that misbehave or are switched off: webhook redirects, rate limits and slow
//! receivers, and queued mail when a channel is turned off.

use std::time::Duration;

use crate::support::{Env, HttpAnswer, HttpServer, SmtpServer};

/// One user, one custom notice queued for the webhook at `url`.
fn hook_env(url: &str) -> Env {
    let mut env = Env::new();
    env.env("HOOK_SECRET", "topsecret");
    env.config(&format!(
        "[email]\ntransport = \"none\"\n[webhook]\nurl = \"{url}\"\nsecret_env = \"HOOK_SECRET\"\ntimeout = \"2s\"\n"
    ));
    env.at("2030-03-10T09:00:00Z");
    env.user("ana@example.org", &[]);
    env.ok(&["send", "--user", "1", "--title", "Ping", "--body", "Pong"]);
    env
}

fn the_delivery(env: &Env) -> serde_json::Value {
    env.json(&["deliveries"])[0].clone()
}

/// Regression: a webhook answered with a redirect was recorded as sent.
#[test]
fn a_redirect_is_not_a_delivery() {
    let hook = HttpServer::scripted(vec![HttpAnswer::new(301).header("Location", "/elsewhere")]);
    let env = hook_env(&hook.url("/hook"));
    let s = env.tick();
    assert_eq!(
        (s["sent"].as_i64(), s["failed"].as_i64()),
        (Some(0), Some(1)),
        "{s}"
    );
    let d = the_delivery(&env);
    assert_eq!(d["status"], "failed");
    let error = d["last_error"].as_str().unwrap();
    assert!(error.contains("301") && error.contains("/elsewhere"), "{error}");
    assert_eq!(
        hook.requests().len(),
        1,
        "a POST is not re-sent to another URL on a 301"
    );
}

#[test]
fn a_307_is_followed_with_the_same_body_and_signature() {
    let hook = HttpServer::scripted(vec![
        HttpAnswer::new(307).header("Location", "/moved"),
        HttpAnswer::new(200),
    ]);
    let env = hook_env(&hook.url("/hook"));
    assert_eq!(env.tick()["sent"], 1);
    let reqs = hook.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!((reqs[0].url.as_str(), reqs[1].url.as_str()), ("/hook", "/moved"));
    assert_eq!(reqs[1].method, "POST");
    assert_eq!(reqs[0].body, reqs[1].body);
    assert_eq!(
        reqs[0].header("X-Notifyctl-Signature"),
        reqs[1].header("X-Notifyctl-Signature")
    );
    let d = the_delivery(&env);
    assert_eq!(d["status"], "sent");
    assert!(d["response"].as_str().unwrap().contains("/moved"), "{d}");
}

#[test]
fn redirect_loops_stop() {
    let hook = HttpServer::scripted(vec![HttpAnswer::new(307).header("Location", "/hook")]);
    let env = hook_env(&hook.url("/hook"));
    assert_eq!(env.tick()["failed"], 1);
    assert_eq!(
        hook.requests().len(),
        4,
        "the request and at most three redirects"
    );
    assert!(the_delivery(&env)["last_error"]
        .as_str()
        .unwrap()
        .contains("redirects"));
}

#[test]
fn a_429_is_retried_no_sooner_than_retry_after() {
    let hook = HttpServer::scripted(vec![
        HttpAnswer::new(429).header("Retry-After", "600"),
        HttpAnswer::new(200),
    ]);
    let mut env = hook_env(&hook.url("/hook"));
    assert_eq!(env.tick()["failed"], 1);
    let d = the_delivery(&env);
    assert_eq!(d["next_attempt_at"], "2030-03-10T09:10:00Z", "{d}");
    env.at("2030-03-10T09:05:00Z");
    assert_eq!(env.tick()["sent"], 0);
    env.at("2030-03-10T09:10:00Z");
    assert_eq!(env.tick()["sent"], 1);
}

#[test]
fn a_slow_receiver_is_given_up_on_with_a_message_that_says_so() {
    let hook = HttpServer::scripted(vec![HttpAnswer::new(200).delay(Duration::from_secs(8))]);
    let env = hook_env(&hook.url("/hook"));
    let started = std::time::Instant::now();
    assert_eq!(env.tick()["failed"], 1);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    let error = the_delivery(&env)["last_error"].as_str().unwrap().to_string();
    assert!(
        error.contains("no answer within 2s") && !error.contains("os error"),
        "{error}"
    );
}

/// Regression: `transport = "none"` with email still queued made every tick fail with a
/// message that did not say what to do.
#[test]
fn switching_email_off_supersedes_the_queued_mail_without_failing_ticks() {
    let server = SmtpServer::start();
    let mut env = Env::new();
    env.smtp(&server, "");
    env.at("2030-03-10T09:00:00Z");
    env.user("ana@example.org", &[]);
    env.ok(&["send", "--user", "1", "--title", "Hi", "--body", "b"]);
    env.config("[email]\ntransport = \"none\"\n");
    let s = env.tick();
    assert_eq!(s["dropped"], 1, "{s}");
    let d = the_delivery(&env);
    assert_eq!(d["status"], "superseded");
    assert!(
        d["last_error"].as_str().unwrap().contains("transport = \"none\""),
        "{d}"
    );
    env.ok(&["status"]);
    assert!(server.settled().is_empty());
}

#[test]
fn a_recipient_who_turned_email_off_meanwhile_gets_no_mail() {
    let server = SmtpServer::start();
    let mut env = Env::new();
    env.smtp(&server, "");
    env.at("2030-03-10T09:00:00Z");
    env.user("ana@example.org", &[]);
    env.ok(&["send", "--user", "1", "--title", "Hi", "--body", "b"]);
    env.ok(&["user", "update", "1", "--email-notices", "off"]);
    assert_eq!(env.tick()["dropped"], 1);
    assert_eq!(
        env.json(&["list", "--user", "1"]).as_array().unwrap().len(),
        1,
        "the in-app notice stays"
    );
    assert!(server.settled().is_empty());
}

/// Regression: the file transport wrote through a symlink at a predictable temporary
/// name in the outbox directory, so a local user could make a root tick overwrite any file.
#[cfg(unix)]
#[test]
fn the_file_transport_never_writes_through_a_symlink() {
    let mut env = Env::new();
    env.at("2030-03-10T09:00:00Z");
    env.user("ana@example.org", &[]);
    env.ok(&["send", "--user", "1", "--title", "Hi", "--body", "b"]);
    let outbox = env.path("outbox");
    std::fs::create_dir(&outbox).unwrap();
    let victim = env.path("victim");
    std::fs::write(&victim, "precious").unwrap();
    for name in [".notifyctl-1.eml.tmp", "notifyctl-1.eml"] {
        std::os::unix::fs::symlink(&victim, outbox.join(name)).unwrap();
    }
    assert_eq!(env.tick()["sent"], 1);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let eml = outbox.join("notifyctl-1.eml");
    assert!(!std::fs::symlink_metadata(&eml).unwrap().file_type().is_symlink());
    assert!(std::fs::read_to_string(&eml).unwrap().contains("Subject:"));
}

#[cfg(unix)]
#[test]
fn an_outbox_directory_others_may_write_is_refused_and_the_mail_kept() {
    use std::os::unix::fs::PermissionsExt;
    let mut env = Env::new();
    env.at("2030-03-10T09:00:00Z");
    env.user("ana@example.org", &[]);
    env.ok(&["send", "--user", "1", "--title", "Hi", "--body", "b"]);
    let outbox = env.path("outbox");
    std::fs::create_dir(&outbox).unwrap();
    std::fs::set_permissions(&outbox, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (_, err) = env.exits(&["check-reminders"], 3);
    assert!(
        err.contains("every local user") && err.contains("outbox"),
        "{err}"
    );
    assert_eq!(the_delivery(&env)["status"], "pending");
    assert!(env.eml_files().is_empty());
}

crate::support::on_postgres!(
    a_redirect_is_not_a_delivery,
    a_307_is_followed_with_the_same_body_and_signature,
    redirect_loops_stop,
    a_429_is_retried_no_sooner_than_retry_after,
    a_slow_receiver_is_given_up_on_with_a_message_that_says_so,
    switching_email_off_supersedes_the_queued_mail_without_failing_ticks,
    a_recipient_who_turned_email_off_meanwhile_gets_no_mail,
    #[cfg(unix)]
    the_file_transport_never_writes_through_a_symlink,
    #[cfg(unix)]
    an_outbox_directory_others_may_write_is_refused_and_the_mail_kept,
);
