//! What recipients get: MIME structure, escaping, languages, calendar invites, video
//! links, webhooks — checked with independent parsers.

use std::time::Duration;

use icalendar::parser::{read_calendar, unfold};
use mail_parser::{MessageParser, MimeHeaders};

use crate::support::{Env, HttpServer, SmtpServer};

fn smtp_env(server: &SmtpServer) -> Env {
    let mut env = Env::new();
    env.smtp(
        server,
        "unsubscribe_url = \"https://example.org/unsubscribe?u=1\"",
    );
    env.at("2030-03-09T09:00:00Z");
    env.user("ana@example.org", &["--tz", "Europe/Paris", "--locale", "fr"]);
    env.user("bob@example.com", &["--tz", "America/New_York", "--locale", "en"]);
    env
}

#[test]
fn assigned_email_is_multipart_escaped_with_a_parsable_invite() {
    let server = SmtpServer::start();
    let env = smtp_env(&server);
    env.ok(&[
        "event",
        "add",
        "--title",
        "<script>alert(\"x\")</script> & co",
        "--start",
        "2030-03-10T10:00:00Z",
        "--participant",
        "ana@example.org",
        "--participant",
        "bob@example.com",
        "--video",
        "https://meet.example.org/room?a=1&b=2",
    ]);
    env.tick();
    let msgs = server.wait_for(2);
    assert_eq!(msgs.len(), 2);
    let parser = MessageParser::default();
    let mut subjects = Vec::new();
    for m in &msgs {
        let msg = parser.parse(&m.data).expect("MIME parses");
        subjects.push(msg.subject().unwrap().to_string());
        let text = msg.body_text(0).expect("text part");
        let html = msg.body_html(0).expect("html part");
        assert!(
            text.contains("<script>alert(\"x\")</script> & co"),
            "raw in text: {text}"
        );
        assert!(html.contains("&lt;script&gt;"), "escaped in HTML");
        assert!(!html.contains("<script>"), "no raw markup in HTML");
        assert!(
            html.contains("https://meet.example.org/room?a=1&amp;b=2"),
            "video link escaped in href"
        );
        assert!(msg.message_id().unwrap().starts_with("notifyctl."));
        assert!(msg.date().is_some());
        assert_eq!(
            m.header("List-Unsubscribe").as_deref(),
            Some("<https://example.org/unsubscribe?u=1>")
        );
        assert_eq!(
            m.header("List-Unsubscribe-Post").as_deref(),
            Some("List-Unsubscribe=One-Click")
        );
        let ics = msg
            .attachments()
            .find(|a| a.attachment_name() == Some("invite.ics"))
            .expect("ics attachment");
        let ics = String::from_utf8_lossy(ics.contents()).into_owned();
        let unfolded = unfold(&ics);
        let cal = read_calendar(&unfolded).expect("iCalendar parses");
        assert_eq!(
            cal.properties
                .iter()
                .find(|p| p.name == "METHOD")
                .unwrap()
                .val
                .as_str(),
            "REQUEST"
        );
        let ev = cal.components.iter().find(|c| c.name == "VEVENT").unwrap();
        assert_eq!(ev.find_prop("DTSTART").unwrap().val.as_str(), "20300310T100000Z");
        assert_eq!(ev.find_prop("UID").unwrap().val.as_str(), "event-1@example.com");
        assert_eq!(
            ev.find_prop("URL").unwrap().val.as_str(),
            "https://meet.example.org/room?a=1&b=2"
        );
    }
    subjects.sort();
    assert_ne!(subjects[0], subjects[1], "French and English subjects differ");
    assert!(
        subjects.iter().any(|s| s.starts_with("Nouvel événement assigné")),
        "{subjects:?}"
    );
    assert!(
        subjects.iter().any(|s| s.starts_with("New event assigned")),
        "{subjects:?}"
    );
}

#[test]
fn times_are_shown_in_the_recipients_zone_across_dst() {
    let server = SmtpServer::start();
    let mut env = smtp_env(&server);
    // 2030-03-31 01:30Z: Paris has just sprung forward (03:30 CEST); New York is EDT.
    env.ok(&[
        "event",
        "add",
        "--title",
        "Early",
        "--start",
        "2030-03-31T01:30:00Z",
        "--participant",
        "ana@example.org",
        "--participant",
        "bob@example.com",
    ]);
    env.at("2030-03-31T01:00:00Z");
    env.tick();
    let msgs = server.wait_for(4);
    let parser = MessageParser::default();
    let reminder_text = |to: &str| {
        msgs.iter()
            .filter(|m| m.to.iter().any(|t| t.contains(to)))
            .map(|m| parser.parse(&m.data).unwrap().body_text(0).unwrap().into_owned())
            .find(|t| t.contains("commence dans") || t.contains("starts in"))
            .unwrap_or_else(|| panic!("a reminder for {to}"))
    };
    let fr = reminder_text("ana@");
    assert!(fr.contains("Votre événement commence dans 30 minutes"), "{fr}");
    assert!(fr.contains("03:30") && fr.contains("Europe/Paris"), "{fr}");
    let en = reminder_text("bob@");
    assert!(en.contains("9:30 PM") && en.contains("America/New_York"), "{en}");
}

#[test]
fn cancellation_invite_cancels_with_a_higher_sequence() {
    let server = SmtpServer::start();
    let env = smtp_env(&server);
    env.ok(&[
        "event",
        "add",
        "--title",
        "Call",
        "--start",
        "2030-03-10T10:00:00Z",
        "--participant",
        "ana@example.org",
    ]);
    env.tick();
    env.ok(&["event", "cancel", "1"]);
    env.tick();
    let msgs = server.wait_for(2);
    let parser = MessageParser::default();
    let seq_and_method: Vec<(String, String)> = msgs
        .iter()
        .map(|m| {
            let msg = parser.parse(&m.data).unwrap();
            let ics = String::from_utf8_lossy(msg.attachments().next().unwrap().contents()).into_owned();
            let unfolded = unfold(&ics);
            let cal = read_calendar(&unfolded).unwrap();
            let ev = cal
                .components
                .iter()
                .find(|c| c.name == "VEVENT")
                .unwrap()
                .clone();
            let method = cal
                .properties
                .iter()
                .find(|p| p.name == "METHOD")
                .unwrap()
                .val
                .to_string();
            (ev.find_prop("SEQUENCE").unwrap().val.to_string(), method)
        })
        .collect();
    assert_eq!(
        seq_and_method,
        vec![("0".into(), "REQUEST".into()), ("1".into(), "CANCEL".into())]
    );
}

#[test]
fn a_user_without_email_gets_in_app_notices_only() {
    let server = SmtpServer::start();
    let env = smtp_env(&server);
    env.ok(&["user", "update", "bob@example.com", "--email-notices", "off"]);
    env.ok(&[
        "event",
        "add",
        "--title",
        "Call",
        "--start",
        "2030-03-10T10:00:00Z",
        "--participant",
        "ana@example.org",
        "--participant",
        "bob@example.com",
    ]);
    env.tick();
    assert_eq!(server.wait_for(1).len(), 1);
    assert_eq!(
        env.json(&["list", "--user", "bob@example.com"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn template_override_replaces_one_template_and_a_broken_one_is_named() {
    let mut env = Env::new();
    std::fs::create_dir_all(env.path("tpl/en")).unwrap();
    std::fs::write(env.path("tpl/en/custom.subject.txt"), "[ACME] {{ custom_title }}").unwrap();
    env.config("[templates]\ndir = \"tpl\"\n");
    env.user("bob@example.com", &["--locale", "en"]);
    env.ok(&[
        "send",
        "--user",
        "bob@example.com",
        "--title",
        "Hi",
        "--body",
        "there",
    ]);
    env.tick();
    let eml = crate::support::read(&env.eml_files()[0]);
    assert!(eml.contains("Subject: [ACME] Hi"), "{eml}");
    std::fs::write(env.path("tpl/en/custom.subject.txt"), "{{ custom_title ").unwrap();
    let err = env.fails(
        &[
            "send",
            "--user",
            "bob@example.com",
            "--title",
            "Hi",
            "--body",
            "x",
        ],
        2,
    );
    assert!(
        err.contains("custom.subject.txt"),
        "a setting to fix, named: {err}"
    );
}

#[test]
fn whereby_creates_the_room_and_falls_back_to_jitsi_when_it_fails() {
    let ok = HttpServer::start(vec![(
        201,
        r#"{"meetingId":"1","roomUrl":"https://whereby.com/room-abc","startDate":"x","endDate":"y"}"#.into(),
        Duration::ZERO,
    )]);
    let mut env = Env::new();
    env.env("WHEREBY_KEY", "k123");
    env.config(&format!("[video]\nprovider = \"whereby\"\nwhereby_api_url = \"{}\"\nwhereby_api_key_env = \"WHEREBY_KEY\"\nwhereby_timeout = \"1s\"\n", ok.url("/v1")));
    let v = env.json(&["event", "add", "--title", "T", "--start", "2030-03-10T10:00:00Z"]);
    assert_eq!(v["video_url"], "https://whereby.com/room-abc");
    let req = &ok.requests()[0];
    assert_eq!(req.url, "/v1/meetings");
    assert_eq!(req.header("Authorization"), Some("Bearer k123"));
    assert!(req.body.contains("\"endDate\""));

    for (status, delay) in [(500, Duration::ZERO), (201, Duration::from_secs(3))] {
        let bad = HttpServer::start(vec![(status, "{}".into(), delay)]);
        env.config(&format!("[video]\nprovider = \"whereby\"\nwhereby_api_url = \"{}\"\nwhereby_api_key_env = \"WHEREBY_KEY\"\nwhereby_timeout = \"1s\"\n", bad.url("/v1")));
        let out = env.run(&[
            "--json",
            "event",
            "add",
            "--title",
            "T",
            "--start",
            "2030-03-11T10:00:00Z",
            "--allow-overlap",
        ]);
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            v["video_url"]
                .as_str()
                .unwrap()
                .starts_with("https://meet.jit.si/notifyctl-"),
            "{v}"
        );
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(
            log.contains("whereby") && log.contains("Jitsi"),
            "failure logged: {log}"
        );
    }
}

#[test]
fn jitsi_rooms_are_unguessable_and_explicit_links_kept() {
    let env = Env::new();
    let a = env.json(&["event", "add", "--title", "A", "--start", "2030-03-10T10:00:00Z"]);
    let b = env.json(&["event", "add", "--title", "B", "--start", "2030-03-11T10:00:00Z"]);
    let (a, b) = (a["video_url"].as_str().unwrap(), b["video_url"].as_str().unwrap());
    assert_ne!(a, b);
    assert!(a.rsplit('-').next().unwrap().len() >= 32, "128 random bits: {a}");
    let c = env.json(&[
        "event",
        "add",
        "--title",
        "C",
        "--start",
        "2030-03-12T10:00:00Z",
        "--video",
        "none",
    ]);
    assert!(c["video_url"].is_null());
    env.fails(
        &[
            "event",
            "add",
            "--title",
            "D",
            "--start",
            "2030-03-13T10:00:00Z",
            "--video",
            "javascript:alert(1)",
        ],
        2,
    );
}

#[test]
fn webhook_is_signed_and_delivered_once_after_a_500() {
    let hook = HttpServer::start(vec![
        (500, "oops".into(), Duration::ZERO),
        (200, "ok".into(), Duration::ZERO),
    ]);
    let mut env = Env::new();
    env.env("HOOK_SECRET", "topsecret");
    env.config(&format!(
        "[email]\ntransport = \"none\"\n[webhook]\nurl = \"{}\"\nsecret_env = \"HOOK_SECRET\"\n",
        hook.url("/hook")
    ));
    env.at("2030-03-10T09:00:00Z");
    env.user("ana@example.org", &[]);
    env.ok(&[
        "send",
        "--user",
        "ana@example.org",
        "--title",
        "Ping",
        "--body",
        "Pong",
    ]);
    assert_eq!(env.tick()["failed"], 1);
    env.at("2030-03-10T09:01:00Z");
    assert_eq!(env.tick()["sent"], 1);
    env.at("2030-03-10T09:30:00Z");
    assert_eq!(env.tick()["sent"], 0);
    let reqs = hook.requests();
    assert_eq!(reqs.len(), 2, "one failure, one success, nothing more");
    for r in &reqs {
        let ts = r.header("X-Notifyctl-Timestamp").unwrap();
        let sig = r.header("X-Notifyctl-Signature").unwrap();
        // Verified the way a receiver would, with an independent HMAC implementation.
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"topsecret").unwrap();
        mac.update(format!("{ts}.{}", r.body).as_bytes());
        assert_eq!(sig, format!("v1={}", hex::encode(mac.finalize().into_bytes())));
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["notification"]["title"], "Ping");
        assert_eq!(body["notification"]["user_email"], "ana@example.org");
    }
    assert_eq!(
        reqs[0].header("X-Notifyctl-Delivery"),
        reqs[1].header("X-Notifyctl-Delivery")
    );
    // A webhook without its secret is refused clearly.
    let mut env2 = Env::new();
    env2.config(&format!(
        "[webhook]\nurl = \"{}\"\nsecret_env = \"NO_SUCH_SECRET\"\n",
        hook.url("/hook")
    ));
    env2.user("ana@example.org", &[]);
    env2.ok(&["send", "--user", "1", "--title", "x", "--body", "y"]);
    let (_, err) = env2.exits(&["check-reminders"], 3);
    assert!(err.contains("NO_SUCH_SECRET"), "{err}");
}

#[test]
fn rescheduled_email_shows_the_old_and_the_new_time() {
    let server = SmtpServer::start();
    let env = smtp_env(&server);
    env.ok(&[
        "event",
        "add",
        "--title",
        "Call",
        "--start",
        "2030-03-10T10:00:00Z",
        "--participant",
        "bob@example.com",
    ]);
    env.ok(&["event", "update", "1", "--start", "2030-03-11T15:00:00Z"]);
    env.tick();
    let msgs = server.wait_for(2);
    let parser = MessageParser::default();
    let text = msgs
        .iter()
        .map(|m| parser.parse(&m.data).unwrap().body_text(0).unwrap().into_owned())
        .find(|t| t.contains("Previously"))
        .expect("a rescheduled email naming the previous time");
    // Bob reads New York time: 10:00Z on March 10 was 6:00 AM EDT; 15:00Z March 11 is 11:00 AM.
    assert!(text.contains("6:00 AM") && text.contains("11:00 AM"), "{text}");
}

#[test]
fn sendmail_and_stdout_transports_deliver_the_same_message() {
    let mut env = Env::new();
    // A stand-in for sendmail with its command-line interface: the message on stdin.
    let script = env.path("fake-sendmail");
    let out = env.path("sendmail-out.eml");
    std::fs::write(&script, format!("#!/bin/sh\ncat > {}\n", out.display())).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    env.config(&format!(
        "[email]\ntransport = \"sendmail\"\nsendmail_command = \"{}\"\n",
        script.display()
    ));
    env.user("ana@example.org", &["--locale", "en"]);
    env.ok(&[
        "send",
        "--user",
        "1",
        "--title",
        "Via sendmail",
        "--body",
        "Hello",
    ]);
    assert_eq!(env.tick()["sent"], 1);
    let eml = crate::support::read(&out);
    assert!(
        eml.contains("Subject: Via sendmail") && eml.contains("To: ana <ana@example.org>"),
        "{eml}"
    );

    env.config("[email]\ntransport = \"stdout\"\n");
    env.ok(&["send", "--user", "1", "--title", "Via stdout", "--body", "Hello"]);
    let printed = env.ok(&["check-reminders"]);
    assert!(
        printed.contains("Subject: Via stdout") && printed.contains("1 sent"),
        "{printed}"
    );
}

crate::support::on_postgres!(
    assigned_email_is_multipart_escaped_with_a_parsable_invite,
    times_are_shown_in_the_recipients_zone_across_dst,
    cancellation_invite_cancels_with_a_higher_sequence,
    a_user_without_email_gets_in_app_notices_only,
    template_override_replaces_one_template_and_a_broken_one_is_named,
    whereby_creates_the_room_and_falls_back_to_jitsi_when_it_fails,
    jitsi_rooms_are_unguessable_and_explicit_links_kept,
    webhook_is_signed_and_delivered_once_after_a_500,
    rescheduled_email_shows_the_old_and_the_new_time,
    sendmail_and_stdout_transports_deliver_the_same_message,
);
