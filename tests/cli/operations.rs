//! Operations the way admins run things (issue 16): JSON and journald logs, the metrics
//! file (read back with an independent Prometheus text parser), heartbeat pings received by
//! a local server, secrets from files, and the invitation as a calendar part.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{stderr_of, Env, HttpAnswer, HttpServer, SmtpPolicy, SmtpServer};

/// An event at 10:00 with ana as participant, created at 09:00 (her `assigned` notice is
/// queued) and a tick at 09:30 (its 30-minute reminder is due).
fn booked(env: &mut Env) {
    env.at("2030-03-10T09:00:00Z");
    env.user("ana@example.org", &[]);
    env.ok(&[
        "event",
        "add",
        "--title",
        "Call",
        "--start",
        "2030-03-10T10:00:00Z",
        "--participant",
        "ana@example.org",
        "--video",
        "none",
    ]);
}

fn json_lines(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}")))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Logs

#[test]
fn json_log_lines_parse_and_carry_the_tick_delivery_user_event_and_channel() {
    let server = SmtpServer::with(SmtpPolicy {
        temp_fail_first: 1,
        ..Default::default()
    });
    let mut env = Env::new();
    env.smtp(&server, "");
    booked(&mut env);
    env.ok(&["send", "--user", "1", "--title", "t", "--body", "b"]);
    env.env("NOTIFYCTL_LOG_FORMAT", "json");
    let out = env.run(&["check-reminders", "-v"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let lines = json_lines(&stderr_of(&out));
    let failed = lines
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("failed (attempt 1)"))
        })
        .unwrap_or_else(|| panic!("a retry line: {lines:?}"));
    assert_eq!(failed["level"], "WARN");
    let time = failed["timestamp"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(time).is_ok() && time.ends_with('Z'),
        "RFC 3339 UTC: {time}"
    );
    assert_eq!(failed["delivery_id"], 1);
    assert_eq!(failed["user_id"], 1);
    assert_eq!(failed["event_id"], 1);
    assert_eq!(failed["channel"], "email");
    let tick_id = failed["tick_id"].as_i64().expect("tick_id");
    assert_eq!(failed["span"]["tick_id"], tick_id, "the tick's span too");
    let sent = lines
        .iter()
        .find(|l| l["message"].as_str().is_some_and(|m| m.contains("sent by email")))
        .expect("an info line for the next delivery");
    assert_eq!(
        (sent["level"].as_str(), sent["tick_id"].as_i64()),
        (Some("INFO"), Some(tick_id))
    );

    // The flag does the same as the variable, and a failed command's last line is JSON too.
    let mut bad = Env::bare();
    bad.config("[reminders]\ngrace = \"soon\"\n");
    let err = bad.fails(&["check-reminders", "--log-format", "json"], 2);
    let last = json_lines(&err).pop().unwrap();
    assert_eq!(
        (last["level"].as_str(), last["exit_code"].as_i64()),
        (Some("ERROR"), Some(2))
    );
    assert!(
        last["message"].as_str().unwrap().contains("invalid duration"),
        "{last}"
    );
    bad.fails(&["check-reminders", "--log-format", "xml"], 2);
}

#[test]
fn log_lines_stay_one_printable_line_whatever_the_data() {
    let mut env = Env::new();
    env.at("2030-03-10T09:00:00Z");
    env.user("ana@example.org", &[]);
    // A zone the web app wrote with an escape sequence and a line break in it.
    env.exec(
        "UPDATE users SET timezone = 'Evil/Zone' || char(27) || '[31m' || char(10) || 'next' WHERE id = 1",
    );
    env.ok(&["send", "--user", "1", "--title", "t", "--body", "b"]);
    for format in ["text", "json"] {
        let out = env.run(&["check-reminders", "--log-format", format]);
        let err = stderr_of(&out);
        assert!(err.contains("Evil/Zone"), "the problem is logged: {err}");
        assert!(
            !err.chars().any(|c| c.is_control() && c != '\n'),
            "no control characters: {err:?}"
        );
        if format == "json" {
            json_lines(&err);
        }
        env.ok(&["send", "--user", "1", "--title", "t", "--body", "b"]);
    }
}

/// Run `args` with stderr going to a file, with `JOURNAL_STREAM` naming that file's
/// device and inode (as systemd names the journal's stream) or `journal_stream` verbatim.
fn with_stderr_file(env: &Env, args: &[&str], journal_stream: Option<&str>) -> (Option<i32>, String) {
    use std::os::unix::fs::MetadataExt;
    let path = env.path(&format!("stderr-{}", rand_suffix()));
    let file = std::fs::File::create(&path).unwrap();
    let meta = file.metadata().unwrap();
    let mut cmd = env.std_cmd();
    cmd.args(args).stderr(file).stdout(std::process::Stdio::null());
    match journal_stream {
        Some("self") => cmd.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino())),
        Some(other) => cmd.env("JOURNAL_STREAM", other),
        None => &mut cmd,
    };
    let status = cmd.status().unwrap();
    (status.code(), std::fs::read_to_string(&path).unwrap())
}

fn rand_suffix() -> usize {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

#[test]
fn journald_priorities_only_when_stderr_is_the_journal_stream() {
    let mut env = Env::new();
    // The webhook channel without its secret: an error line; SMTP down: warning lines.
    let hook = HttpServer::start(vec![(200, "ok".into(), Duration::ZERO)]);
    let dead = crate::support::dead_port();
    env.config(&format!(
        "[email]\ntransport = \"smtp\"\n[email.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n[webhook]\nurl = \"{}\"\nsecret_env = \"NO_SUCH_SECRET\"\n",
        dead.port,
        hook.url("/hook")
    ));
    env.at("2030-03-10T09:00:00Z");
    env.user("ana@example.org", &[]);
    env.ok(&["send", "--user", "1", "--title", "t", "--body", "b"]);
    let (code, journal) = with_stderr_file(&env, &["check-reminders", "-v"], Some("self"));
    assert_eq!(code, Some(3), "{journal}");
    let lines: Vec<&str> = journal.lines().collect();
    assert!(
        lines.iter().all(|l| l.starts_with('<')),
        "every line has a priority: {journal}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<3>notifyctl: error: the webhook channel cannot be used")),
        "{journal}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<4>notifyctl: warn: delivery")),
        "{journal}"
    );
    // The command's own last line (exit 3) is an error for the journal too.
    assert!(
        lines.last().unwrap().starts_with("<3>notifyctl: error: tick:"),
        "{journal}"
    );
    // JSON lines get the prefix too (journald strips it, the message stays JSON).
    env.ok(&["send", "--user", "1", "--title", "t", "--body", "b"]);
    let (_, journal) = with_stderr_file(&env, &["check-reminders", "--log-format", "json"], Some("self"));
    for line in journal.lines() {
        let (prefix, json) = line.split_at(3);
        assert!(matches!(prefix, "<3>" | "<4>" | "<6>" | "<7>"), "{line}");
        serde_json::from_str::<Value>(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    }

    // Not the journal: an inherited JOURNAL_STREAM naming another stream, or none.
    for other in [Some("1:2"), None] {
        env.ok(&["send", "--user", "1", "--title", "t", "--body", "b"]);
        let (code, text) = with_stderr_file(&env, &["check-reminders", "-v"], other);
        assert_eq!(code, Some(3));
        assert!(!text.is_empty());
        assert!(
            text.lines().all(|l| l.starts_with("notifyctl: ")),
            "no prefix ({other:?}): {text}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Metrics

/// The metrics file, parsed by an independent reader of the format; every line must be
/// understood, and every sample have its HELP and TYPE.
fn scrape(path: &Path) -> HashMap<String, f64> {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<std::io::Result<String>> = text.lines().map(|l| Ok(l.to_string())).collect();
    let scrape = prometheus_parse::Scrape::parse(lines.into_iter()).expect("parses");
    let sample_lines = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count();
    assert_eq!(
        scrape.samples.len(),
        sample_lines,
        "every sample line is understood:\n{text}"
    );
    let mut out = HashMap::new();
    for s in &scrape.samples {
        assert!(s.metric.starts_with("notifyctl_"), "{}", s.metric);
        assert!(scrape.docs.contains_key(&s.metric), "# HELP for {}", s.metric);
        let value = match s.value {
            prometheus_parse::Value::Counter(v) => {
                assert!(s.metric.ends_with("_total"), "{}", s.metric);
                v
            }
            prometheus_parse::Value::Gauge(v) => v,
            ref other => panic!("{} has no counter/gauge TYPE: {other:?}", s.metric),
        };
        let mut labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        labels.sort();
        out.insert(format!("{}{{{}}}", s.metric, labels.join(",")), value);
    }
    out
}

#[test]
fn metrics_file_is_parsed_and_its_counters_add_up_the_tick_summaries() {
    let server = SmtpServer::with(SmtpPolicy {
        temp_fail_first: 1,
        ..Default::default()
    });
    let mut env = Env::new();
    let prom = env.path("textfile/notifyctl.prom");
    std::fs::create_dir(env.path("textfile")).unwrap();
    env.config(&format!(
        "[metrics]\ntextfile = \"textfile/notifyctl.prom\"\n[email]\ntransport = \"smtp\"\n[email.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n",
        server.port
    ));
    booked(&mut env);
    // A second event whose reminders were all missed: one skip (late) at the first tick.
    env.ok(&[
        "event",
        "add",
        "--title",
        "Early",
        "--start",
        "2030-03-10T09:20:00Z",
        "--participant",
        "1",
        "--allow-overlap",
        "--video",
        "none",
    ]);
    env.at("2030-03-10T09:30:00Z");
    let first = env.tick();
    env.at("2030-03-10T09:32:00Z");
    let second = env.tick();
    let m = scrape(&prom);
    let total = |k: &str| first[k].as_i64().unwrap() + second[k].as_i64().unwrap();
    assert_eq!(m["notifyctl_ticks_total{outcome=ok}"], 2.0);
    assert_eq!(m["notifyctl_ticks_total{outcome=failed}"], 0.0);
    assert_eq!(m["notifyctl_reminders_created_total{}"], total("created") as f64);
    let skipped: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("notifyctl_reminders_skipped_total"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(skipped, total("skipped") as f64);
    assert!(total("skipped") >= 1, "{first} {second}");
    for outcome in ["sent", "failed", "dead", "dropped"] {
        assert_eq!(
            m[&format!("notifyctl_deliveries_total{{channel=email,outcome={outcome}}}")],
            total(outcome) as f64,
            "{outcome}: {first} {second}"
        );
    }
    assert!(total("failed") == 1 && total("sent") >= 2, "{first} {second}");
    assert_eq!(
        m["notifyctl_deliveries_waiting{status=pending}"]
            + m["notifyctl_deliveries_waiting{status=failed}"]
            + m["notifyctl_deliveries_waiting{status=sending}"],
        second["pending"].as_f64().unwrap()
    );
    assert_eq!(m["notifyctl_deliveries_dead{}"], 0.0);
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp() as f64;
    assert_eq!(
        m["notifyctl_last_success_timestamp_seconds{}"],
        at("2030-03-10T09:32:00Z")
    );
    assert_eq!(
        m["notifyctl_last_tick_timestamp_seconds{}"],
        at("2030-03-10T09:32:00Z")
    );
    assert!(m["notifyctl_tick_duration_seconds{}"] >= 0.0);

    // A failed tick (the database is gone) is counted, keeps the last success, and has no
    // backlog gauges, since nothing could be read.
    env.hide_database();
    env.at("2030-03-10T09:33:00Z");
    env.fails(&["check-reminders"], 2);
    let m = scrape(&prom);
    assert_eq!(m["notifyctl_ticks_total{outcome=failed}"], 1.0);
    assert_eq!(m["notifyctl_ticks_total{outcome=ok}"], 2.0);
    assert_eq!(m["notifyctl_reminders_created_total{}"], total("created") as f64);
    assert_eq!(
        m["notifyctl_last_success_timestamp_seconds{}"],
        at("2030-03-10T09:32:00Z")
    );
    assert!(!m.contains_key("notifyctl_deliveries_dead{}"));
    // The backlog's age once the clock moved on, with a delivery still waiting.
    env.restore_database();
    server.set_policy(SmtpPolicy {
        reject_all: false,
        temp_fail_every: 1,
        ..Default::default()
    });
    env.ok(&["send", "--user", "1", "--title", "t", "--body", "b"]);
    env.at("2030-03-10T09:43:00Z");
    env.tick();
    let m = scrape(&prom);
    assert_eq!(m["notifyctl_oldest_waiting_delivery_age_seconds{}"], 600.0);

    // Written atomically, readable by node_exporter, nothing left behind.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&prom).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    let names: Vec<_> = std::fs::read_dir(env.path("textfile"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("notifyctl.prom")]);
}

#[test]
fn a_metrics_file_that_cannot_be_written_is_logged_and_fails_nothing() {
    let mut env = Env::new();
    env.config("[metrics]\ntextfile = \"no/such/dir/notifyctl.prom\"\n");
    let out = env.run(&["check-reminders"]);
    assert!(out.status.success());
    assert!(stderr_of(&out).contains("does not exist"), "{}", stderr_of(&out));
    let (_, err) = env.exits(&["config", "check"], 3);
    assert!(err.contains("metrics"), "{err}");
    Env::bare()
        .config("[metrics]\ntextfile = \"notifyctl.txt\"\n")
        .fails(&["check-reminders"], 2);
}

// ---------------------------------------------------------------------------------------
// Heartbeat

#[test]
fn heartbeat_pings_start_then_success_then_fail_for_a_failing_tick() {
    let hb = HttpServer::start(vec![(200, "OK".into(), Duration::ZERO)]);
    let mut env = Env::new();
    env.config(&format!("[tick]\nheartbeat_url = \"{}\"\n", hb.url("/ping/abc")));
    env.tick();
    // A tick that cannot open its database fails once the config was read.
    env.hide_database();
    env.fails(&["check-reminders"], 2);
    let reqs = hb.requests();
    let seen: Vec<(&str, &str)> = reqs
        .iter()
        .map(|r| (r.method.as_str(), r.url.split('?').next().unwrap()))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("GET", "/ping/abc/start"),
            ("GET", "/ping/abc"),
            ("GET", "/ping/abc/start"),
            ("POST", "/ping/abc/fail"),
        ]
    );
    // Each tick's pings share a run id, and two ticks have different ones.
    let rid = |i: usize| reqs[i].url.split("rid=").nth(1).unwrap().to_string();
    assert_eq!(rid(0), rid(1));
    assert_eq!(rid(2), rid(3));
    assert_ne!(rid(0), rid(2));
    assert_eq!(rid(0).len(), 36, "a UUID");
    assert!(
        reqs[3].body.contains("does not exist"),
        "the reason: {}",
        reqs[3].body
    );
}

#[test]
fn a_tick_that_exits_3_pings_fail_with_the_reason() {
    let hb = HttpServer::start(vec![(200, "OK".into(), Duration::ZERO)]);
    let server = SmtpServer::with(SmtpPolicy {
        reject_all: true,
        ..Default::default()
    });
    let mut env = Env::new();
    env.smtp(&server, "");
    let cfg = std::fs::read_to_string(env.config.as_ref().unwrap()).unwrap();
    env.config(&format!("{cfg}[tick]\nheartbeat_url = \"{}\"\n", hb.url("/hc")));
    env.at("2030-03-10T09:00:00Z");
    env.user("ana@example.org", &[]);
    env.ok(&["send", "--user", "1", "--title", "t", "--body", "b"]);
    env.exits(&["check-reminders"], 3);
    let reqs = hb.requests();
    let urls: Vec<&str> = reqs.iter().map(|r| r.url.split('?').next().unwrap()).collect();
    assert_eq!(urls, vec!["/hc/start", "/hc/fail"]);
    assert!(
        reqs[1].body.starts_with("exit status 3: tick: ") && reqs[1].body.contains("went dead"),
        "{}",
        reqs[1].body
    );
}

#[test]
fn a_stalled_heartbeat_server_never_holds_the_tick_back_or_fails_it() {
    let slow = HttpServer::scripted(vec![HttpAnswer::new(200).delay(Duration::from_secs(10))]);
    let mut env = Env::new();
    env.config(&format!(
        "[tick]\nheartbeat_url = \"{}\"\nheartbeat_timeout = \"1s\"\n",
        slow.url("/ping")
    ));
    let started = Instant::now();
    let out = env.run(&["check-reminders"]);
    assert!(out.status.success(), "a failed ping is not a failed tick");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "bounded by heartbeat_timeout: {:?}",
        started.elapsed()
    );
    assert!(stderr_of(&out).contains("heartbeat"), "the failure is logged");
    assert!(!stderr_of(&out).contains("/ping"), "the ping URL is not logged");
    // Nothing listening: the same.
    let dead = crate::support::dead_port();
    env.config(&format!(
        "[tick]\nheartbeat_url = \"http://127.0.0.1:{}/x\"\nheartbeat_timeout = \"1s\"\n",
        dead.port
    ));
    let out = env.run(&["check-reminders"]);
    assert!(out.status.success());
    assert!(stderr_of(&out).contains("heartbeat"));
    Env::bare()
        .config("[tick]\nheartbeat_url = \"ftp://example.org/x\"\n")
        .fails(&["check-reminders"], 2);
}

// ---------------------------------------------------------------------------------------
// Secrets from files

fn secret_file(env: &Env, name: &str, content: &str, mode: u32) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = env.path(name);
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path.display().to_string()
}

/// Everything a run printed, for "the secret never appears" checks.
fn all_output(env: &Env, args: &[&str]) -> String {
    let out = env.run(args);
    format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr_of(&out))
}

#[test]
fn smtp_password_from_a_credentials_file_logs_in_and_is_never_printed() {
    let server = SmtpServer::with(SmtpPolicy {
        auth: Some(("apikey".into(), "s3cr3t-from-file".into())),
        ..Default::default()
    });
    let mut env = Env::new();
    std::fs::create_dir(env.path("creds")).unwrap();
    secret_file(&env, "creds/smtp-password", "s3cr3t-from-file\n", 0o400);
    // As systemd's LoadCredential= hands it over; the variable wins over nothing else.
    env.env("CREDENTIALS_DIRECTORY", env.path("creds").to_str().unwrap());
    env.env("NOTIFYCTL_SMTP_PASSWORD", "wrong-from-env");
    env.config(&format!(
        "[email]\ntransport = \"smtp\"\n[email.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nusername = \"apikey\"\npassword_file = \"${{CREDENTIALS_DIRECTORY}}/smtp-password\"\n",
        server.port
    ));
    env.at("2030-03-10T09:00:00Z");
    env.user("ana@example.org", &[]);
    env.ok(&["send", "--user", "1", "--title", "t", "--body", "b"]);
    let printed = all_output(&env, &["check-reminders", "-vv", "--log-format", "json"]);
    assert_eq!(
        server.wait_for(1).len(),
        1,
        "logged in with the file's password: {printed}"
    );
    let check = env.ok(&["config", "check"]);
    assert!(
        check.contains("ok    secret [email.smtp] password: set from file")
            && check.contains("creds/smtp-password"),
        "{check}"
    );
    let show = env.ok(&["config", "show"]);
    assert!(
        show.contains("# secret [email.smtp] password: set from file"),
        "{show}"
    );
    let json = env.json(&["config", "show"]);
    assert!(json["secrets"]["[email.smtp] password"]
        .as_str()
        .unwrap()
        .starts_with("set from file"));
    for output in [printed, check, show, json.to_string()] {
        assert!(!output.contains("s3cr3t-from-file"), "{output}");
    }
    // Without the variable the path cannot be made: a one-line error, exit 3 for the tick.
    let mut unset = Env::new();
    unset.config(&std::fs::read_to_string(env.config.as_ref().unwrap()).unwrap());
    unset.at("2030-03-10T09:00:00Z");
    unset.user("ana@example.org", &[]);
    unset.ok(&["send", "--user", "1", "--title", "t", "--body", "b"]);
    let (_, err) = unset.exits(&["check-reminders"], 3);
    assert!(
        err.contains("${CREDENTIALS_DIRECTORY}, which is not set"),
        "{err}"
    );
}

#[test]
fn a_secret_file_every_user_can_read_is_refused_in_one_line() {
    let server = SmtpServer::with(SmtpPolicy {
        auth: Some(("u".into(), "hunter2".into())),
        ..Default::default()
    });
    let mut env = Env::new();
    let path = secret_file(&env, "pw", "hunter2\n", 0o644);
    env.config(&format!(
        "[email]\ntransport = \"smtp\"\n[email.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nusername = \"u\"\npassword_file = \"{path}\"\n",
        server.port
    ));
    env.at("2030-03-10T09:00:00Z");
    env.user("ana@example.org", &[]);
    env.ok(&["send", "--user", "1", "--title", "t", "--body", "b"]);
    let (_, err) = env.exits(&["check-reminders"], 3);
    assert!(err.contains("readable by every local user (mode 0644)"), "{err}");
    assert!(err.contains("chmod o-rwx"), "{err}");
    assert_eq!(server.messages().len(), 0);
    let (out, err) = env.exits(&["config", "check"], 3);
    assert!(out.contains("FAIL  secret [email.smtp] password"), "{out}");
    for text in [&out, &err] {
        assert!(!text.contains("hunter2"));
    }
    assert!(err.lines().count() == 1, "{err}");
    // Group access is how systemd and Kubernetes hand secrets over: allowed.
    secret_file(&env, "pw", "hunter2\n", 0o640);
    env.tick();
    assert_eq!(server.wait_for(1).len(), 1);
}

#[test]
fn webhook_secret_from_a_file_signs_the_requests() {
    let hook = HttpServer::start(vec![(200, "ok".into(), Duration::ZERO)]);
    let mut env = Env::new();
    let path = secret_file(&env, "hook-secret", "file-secret\r\n", 0o600);
    env.config(&format!(
        "[email]\ntransport = \"none\"\n[webhook]\nurl = \"{}\"\nsecret_file = \"{path}\"\n",
        hook.url("/hook")
    ));
    env.at("2030-03-10T09:00:00Z");
    env.user("ana@example.org", &[]);
    env.ok(&["send", "--user", "1", "--title", "t", "--body", "b"]);
    let printed = all_output(&env, &["check-reminders", "-vv"]);
    let reqs = hook.requests();
    assert_eq!(reqs.len(), 1, "{printed}");
    let r = &reqs[0];
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"file-secret").unwrap();
    mac.update(format!("{}.{}", r.header("X-Notifyctl-Timestamp").unwrap(), r.body).as_bytes());
    assert_eq!(
        r.header("X-Notifyctl-Signature").unwrap(),
        format!("v1={}", hex::encode(mac.finalize().into_bytes()))
    );
    assert!(!printed.contains("file-secret"));
    assert!(!all_output(&env, &["config", "show"]).contains("file-secret"));
}

#[test]
fn whereby_api_key_from_a_file() {
    let api = HttpServer::start(vec![(
        201,
        r#"{"meetingId":"1","roomUrl":"https://whereby.com/room-file"}"#.into(),
        Duration::ZERO,
    )]);
    let mut env = Env::new();
    let path = secret_file(&env, "whereby", "key-from-file\n", 0o600);
    env.config(&format!(
        "[video]\nprovider = \"whereby\"\nwhereby_api_url = \"{}\"\nwhereby_api_key_file = \"{path}\"\n",
        api.url("/v1")
    ));
    let out = env.run(&[
        "--json",
        "-vv",
        "event",
        "add",
        "--title",
        "T",
        "--start",
        "2030-03-10T10:00:00Z",
    ]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["video_url"], "https://whereby.com/room-file");
    assert_eq!(
        api.requests()[0].header("Authorization"),
        Some("Bearer key-from-file")
    );
    assert!(
        !format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr_of(&out)).contains("key-from-file")
    );
}

// ---------------------------------------------------------------------------------------
// The invitation as a calendar part

#[test]
fn the_invitation_is_both_a_calendar_alternative_and_an_attachment() {
    use icalendar::parser::{read_calendar, unfold};
    use mail_parser::{MessageParser, MimeHeaders, PartType};
    let server = SmtpServer::start();
    let mut env = Env::new();
    env.smtp(&server, "");
    booked(&mut env);
    env.tick();
    env.ok(&["event", "cancel", "1"]);
    env.tick();
    let msgs = server.wait_for(2);
    assert_eq!(msgs.len(), 2);
    for (m, method) in msgs.iter().zip(["REQUEST", "CANCEL"]) {
        let msg = MessageParser::default().parse(&m.data).expect("MIME parses");
        let is_calendar = |i: usize| {
            msg.parts[i]
                .content_type()
                .is_some_and(|ct| ct.ctype() == "text" && ct.subtype() == Some("calendar"))
        };
        let alternative = msg
            .parts
            .iter()
            .find(|p| {
                p.content_type()
                    .is_some_and(|ct| ct.subtype() == Some("alternative"))
            })
            .expect("multipart/alternative");
        let PartType::Multipart(children) = &alternative.body else {
            panic!("alternative has parts");
        };
        let subtypes: Vec<String> = children
            .iter()
            .map(|&i| {
                msg.parts[i as usize]
                    .content_type()
                    .unwrap()
                    .subtype()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(
            subtypes,
            ["plain", "html", "calendar"],
            "text, HTML, then the invitation"
        );
        let inline = *children.iter().find(|&&i| is_calendar(i as usize)).unwrap() as usize;
        let inline_part = &msg.parts[inline];
        assert_eq!(
            inline_part.content_type().unwrap().attribute("method"),
            Some(method)
        );
        assert!(
            inline_part.attachment_name().is_none(),
            "the alternative is not a file"
        );
        let attached = msg
            .parts
            .iter()
            .enumerate()
            .find(|(i, p)| *i != inline && is_calendar(*i) && p.attachment_name() == Some("invite.ics"))
            .map(|(_, p)| p)
            .expect("the invite.ics attachment is kept");
        assert_eq!(attached.content_type().unwrap().attribute("method"), Some(method));
        for part in [inline_part, attached] {
            let text = String::from_utf8_lossy(part.contents()).into_owned();
            let unfolded = unfold(&text);
            let cal = read_calendar(&unfolded).expect("iCalendar parses");
            let m = cal.properties.iter().find(|p| p.name == "METHOD").unwrap();
            assert_eq!(m.val.as_str(), method);
            let ev = cal.components.iter().find(|c| c.name == "VEVENT").unwrap();
            assert_eq!(ev.find_prop("UID").unwrap().val.as_str(), "event-1@example.com");
        }
        assert_eq!(inline_part.contents(), attached.contents(), "the same invitation");
    }
}

// The rest do not depend on the database (journald, file modes, the .ics part).
crate::support::on_postgres!(
    json_log_lines_parse_and_carry_the_tick_delivery_user_event_and_channel,
    metrics_file_is_parsed_and_its_counters_add_up_the_tick_summaries,
    heartbeat_pings_start_then_success_then_fail_for_a_failing_tick,
    a_tick_that_exits_3_pings_fail_with_the_reason,
    smtp_password_from_a_credentials_file_logs_in_and_is_never_printed,
);
