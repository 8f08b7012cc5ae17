//! What each person receives: preferences per kind and channel, quiet hours in the user's
//! zone, SMS through a configurable HTTP gateway, ntfy push, and the daily agenda. Every
//! gateway here is a real HTTP server on 127.0.0.1 that records what it was sent.

use std::time::Duration;

use serde_json::Value;

use crate::support::{on_postgres, Env, HttpAnswer, HttpServer};

const ANA: &str = "ana@example.org";
const ANA_PHONE: &str = "+33612345678";

/// A config with email as `.eml` files, SMS to `sms` and push to `ntfy` (either may be
/// absent), and `extra` (whole sections).
fn config(env: &mut Env, sms: Option<&str>, ntfy: Option<&str>, extra: &str) {
    let mut toml = String::from("[email]\ntransport = \"file\"\nmax_attempts = 3\n");
    if let Some(url) = sms {
        toml.push_str(&format!(
            "[sms]\nurl = \"{url}\"\nfrom = \"+15550001111\"\ntimeout = \"3s\"\n"
        ));
    }
    if let Some(url) = ntfy {
        toml.push_str(&format!("[ntfy]\nurl = \"{url}\"\ntimeout = \"3s\"\n"));
    }
    toml.push_str(extra);
    env.config(&toml);
}

/// Ana in Paris with a phone and an ntfy topic.
fn ana(env: &Env, extra: &[&str]) -> i64 {
    let mut args = vec![
        "--tz",
        "Europe/Paris",
        "--locale",
        "en",
        "--phone",
        ANA_PHONE,
        "--ntfy-topic",
        "ana-topic",
    ];
    args.extend_from_slice(extra);
    env.user(ANA, &args)
}

/// An event for Ana (her `assigned` notice is created with it); its id.
fn event(env: &Env, title: &str, start: &str) -> i64 {
    env.json(&[
        "event",
        "add",
        "--title",
        title,
        "--start",
        start,
        "--participant",
        ANA,
        "--video",
        "https://meet.example.org/room-1",
    ])["id"]
        .as_i64()
        .expect("event id")
}

fn deliveries(env: &Env) -> Vec<Value> {
    env.json(&["deliveries"]).as_array().unwrap().clone()
}

fn delivery(env: &Env, channel: &str, kind: &str) -> Value {
    deliveries(env)
        .into_iter()
        .find(|d| d["channel"] == channel && d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} delivery on {channel}: {:?}", deliveries(env)))
}

fn prefs(env: &Env, user: &str) -> Value {
    env.json(&["prefs", "show", "--user", user])
}

/// Whether `kind` on `channel` is on in `prefs show --json`.
fn pref(p: &Value, kind: &str, channel: &str) -> (bool, bool) {
    let row = p["preferences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == kind && r["channel"] == channel)
        .unwrap_or_else(|| panic!("no {kind}/{channel} in {p}"));
    (row["enabled"].as_bool().unwrap(), row["sent"].as_bool().unwrap())
}

// ---------------------------------------------------------------------------------
// Preferences

#[test]
fn prefs_set_and_show_per_kind_and_channel() {
    let sms = HttpServer::start(vec![(200, String::new(), Duration::ZERO)]);
    let mut env = Env::new();
    config(&mut env, Some(&sms.url("/sms")), Some("http://127.0.0.1:9"), "");
    ana(&env, &[]);
    let p = prefs(&env, ANA);
    assert_eq!(pref(&p, "assigned", "sms"), (true, true), "on by default");
    let channels: Vec<&str> = p["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["email", "sms", "ntfy"]);

    env.ok(&[
        "prefs",
        "set",
        "--user",
        ANA,
        "--kind",
        "assigned",
        "--channel",
        "sms",
        "off",
    ]);
    env.ok(&[
        "prefs",
        "set",
        "--user",
        "1",
        "--kind",
        "all",
        "--channel",
        "ntfy",
        "off",
    ]);
    env.ok(&[
        "prefs",
        "set",
        "--user",
        "1",
        "--kind",
        "reminder",
        "--channel",
        "ntfy",
        "on",
    ]);
    let p = prefs(&env, ANA);
    assert_eq!(pref(&p, "assigned", "sms"), (false, false));
    assert_eq!(pref(&p, "assigned", "email"), (true, true));
    assert_eq!(pref(&p, "custom", "ntfy"), (false, false));
    assert_eq!(
        pref(&p, "reminder", "ntfy"),
        (true, true),
        "a kind's own setting wins over all"
    );
    let human = env.ok(&["prefs", "show", "--user", ANA]);
    assert!(human.contains("assigned") && human.contains("off"), "{human}");

    // An assignment now goes by email only (and in-app): no SMS, no push.
    env.at("2030-03-10T09:00:00Z");
    event(&env, "Mentoring", "2030-03-12T09:00:00Z");
    let channels: Vec<String> = deliveries(&env)
        .iter()
        .map(|d| d["channel"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(channels, ["email"]);
    let inbox = env.json(&["list", "--user", ANA]);
    assert_eq!(
        inbox.as_array().unwrap().len(),
        1,
        "the in-app row is always kept"
    );
    env.tick();
    assert!(sms.requests().is_empty());
}

#[test]
fn a_mandatory_kind_still_goes_out_and_prefs_set_says_so() {
    let sms = HttpServer::start(vec![(200, String::new(), Duration::ZERO)]);
    let mut env = Env::new();
    config(&mut env, Some(&sms.url("/sms")), None, "");
    env.at("2030-03-10T09:00:00Z");
    ana(&env, &[]);
    let out = env.ok(&[
        "prefs",
        "set",
        "--user",
        ANA,
        "--kind",
        "cancelled",
        "--channel",
        "sms",
        "off",
    ]);
    assert!(out.contains("mandatory"), "{out}");
    assert_eq!(pref(&prefs(&env, ANA), "cancelled", "sms"), (false, true));
    let id = event(&env, "Mentoring", "2030-03-12T09:00:00Z");
    env.tick();
    let before = sms.requests().len();
    env.ok(&["event", "cancel", &id.to_string()]);
    env.tick();
    let reqs = sms.requests();
    assert_eq!(reqs.len(), before + 1, "the cancellation goes by SMS: {reqs:?}");
    assert_eq!(delivery(&env, "sms", "cancelled")["status"], "sent");

    // The list is the operator's: with none mandatory, off is off.
    config(
        &mut env,
        Some(&sms.url("/sms")),
        None,
        "[preferences]\nmandatory = []\n",
    );
    let out = env.ok(&[
        "prefs",
        "set",
        "--user",
        ANA,
        "--kind",
        "cancelled",
        "--channel",
        "sms",
        "off",
    ]);
    assert!(!out.contains("mandatory"), "{out}");
    assert_eq!(pref(&prefs(&env, ANA), "cancelled", "sms"), (false, false));
}

#[test]
fn a_preference_changed_between_the_notice_and_its_sending_wins() {
    let sms = HttpServer::start(vec![(200, String::new(), Duration::ZERO)]);
    let mut env = Env::new();
    config(&mut env, Some(&sms.url("/sms")), None, "");
    env.at("2030-03-10T09:00:00Z");
    ana(&env, &[]);
    event(&env, "Mentoring", "2030-03-12T09:00:00Z");
    assert_eq!(delivery(&env, "sms", "assigned")["status"], "pending");
    env.ok(&[
        "prefs",
        "set",
        "--user",
        ANA,
        "--kind",
        "assigned",
        "--channel",
        "sms",
        "off",
    ]);
    env.ok(&["user", "update", ANA, "--email-notices", "off"]);
    let s = env.tick();
    assert_eq!(s["sent"], 0, "{s}");
    assert!(sms.requests().is_empty(), "{:?}", sms.requests());
    assert!(env.eml_files().is_empty());
    let d = delivery(&env, "sms", "assigned");
    assert_eq!(d["status"], "superseded");
    assert!(
        d["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("turned SMS off")
            || d["response"]
                .as_str()
                .unwrap_or_default()
                .contains("turned SMS off"),
        "{d}"
    );
    assert_eq!(delivery(&env, "email", "assigned")["status"], "superseded");
}

#[test]
fn a_channel_turned_on_before_the_sending_carries_the_message_too() {
    let sms = HttpServer::start(vec![(200, String::new(), Duration::ZERO)]);
    let mut env = Env::new();
    config(&mut env, Some(&sms.url("/sms")), None, "");
    env.at("2030-03-10T09:00:00Z");
    ana(&env, &[]);
    env.ok(&[
        "prefs",
        "set",
        "--user",
        ANA,
        "--kind",
        "all",
        "--channel",
        "sms",
        "off",
    ]);
    event(&env, "Mentoring", "2030-03-12T09:00:00Z");
    let earlier = event(&env, "Already sent", "2030-03-13T09:00:00Z");
    assert!(deliveries(&env).iter().all(|d| d["channel"] == "email"));
    // The second notice's email went before the change: that notice is no longer on its way.
    let mail = env
        .json(&["deliveries"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["event_id"] == earlier)
        .map(|d| d["id"].as_i64().unwrap())
        .collect::<Vec<_>>();
    assert!(!mail.is_empty());
    env.exec(&format!(
        "UPDATE deliveries SET status = 'sent' WHERE id IN ({})",
        mail.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",")
    ));
    env.ok(&[
        "prefs",
        "set",
        "--user",
        ANA,
        "--kind",
        "assigned",
        "--channel",
        "sms",
        "on",
    ]);
    let s = env.tick();
    let reqs = sms.requests();
    assert_eq!(reqs.len(), 1, "the notice still on its way goes by SMS too: {s}");
    assert!(reqs[0].body.contains("Mentoring"), "{:?}", reqs[0].body);
    assert_eq!(delivery(&env, "sms", "assigned")["status"], "sent");
    // Turning it on again adds nothing twice.
    env.ok(&[
        "prefs",
        "set",
        "--user",
        ANA,
        "--kind",
        "assigned",
        "--channel",
        "sms",
        "on",
    ]);
    assert_eq!(env.tick()["sent"], 0);
    assert_eq!(sms.requests().len(), 1);
}

#[test]
fn email_notices_off_is_one_case_of_the_preferences() {
    let mut env = Env::new();
    config(&mut env, None, None, "");
    env.at("2030-03-10T09:00:00Z");
    ana(&env, &[]);
    env.ok(&["user", "update", ANA, "--email-notices", "off"]);
    let p = prefs(&env, ANA);
    for kind in ["assigned", "reminder", "custom", "agenda"] {
        assert_eq!(pref(&p, kind, "email"), (false, false), "{kind}");
    }
    assert_eq!(pref(&p, "cancelled", "email"), (false, true), "mandatory");
    assert_eq!(env.json(&["user", "show", ANA])["email_enabled"], false);
    event(&env, "Mentoring", "2030-03-12T09:00:00Z");
    assert!(deliveries(&env).is_empty(), "in-app only");
    assert_eq!(env.json(&["list", "--user", ANA]).as_array().unwrap().len(), 1);
    // Back on, through prefs set as well.
    env.ok(&[
        "prefs",
        "set",
        "--user",
        ANA,
        "--kind",
        "all",
        "--channel",
        "email",
        "on",
    ]);
    assert_eq!(env.json(&["user", "show", ANA])["email_enabled"], true);
}

// ---------------------------------------------------------------------------------
// Quiet hours

#[test]
fn quiet_hours_hold_a_notice_until_they_end() {
    let sms = HttpServer::start(vec![(200, String::new(), Duration::ZERO)]);
    let mut env = Env::new();
    config(
        &mut env,
        Some(&sms.url("/sms")),
        None,
        "[metrics]\ntextfile = \"metrics.prom\"\n",
    );
    // 23:00 in Paris (UTC+1 in March before the change).
    env.at("2030-03-10T22:00:00Z");
    ana(&env, &["--quiet-hours", "22:00-07:00"]);
    event(&env, "Mentoring", "2030-03-14T09:00:00Z");
    let s = env.tick();
    assert_eq!(
        (s["sent"].as_i64(), s["held"].as_i64()),
        (Some(0), Some(2)),
        "{s}"
    );
    assert!(sms.requests().is_empty());
    assert!(env.eml_files().is_empty());
    let metrics = std::fs::read_to_string(env.path("metrics.prom")).unwrap();
    assert!(
        metrics.contains("notifyctl_deliveries_total{channel=\"sms\",outcome=\"held\"} 1"),
        "{metrics}"
    );
    let d = delivery(&env, "sms", "assigned");
    assert_eq!(d["status"], "pending");
    assert_eq!(d["held_until"], "2030-03-11T06:00:00Z", "07:00 in Paris: {d}");
    assert!(d["hold_reason"].as_str().unwrap().contains("quiet hours"), "{d}");
    let table = env.ok(&["deliveries"]);
    assert!(
        table.contains("held") && table.contains("2030-03-11T06:00:00Z"),
        "{table}"
    );
    let held = env.json(&["deliveries", "--status", "held"]);
    assert_eq!(held.as_array().unwrap().len(), 2);
    let plan = env.json(&["plan", "--next", "12h"]);
    let goes: Vec<&Value> = plan
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["what"] == "held")
        .collect();
    assert_eq!(goes.len(), 2, "{plan}");
    assert_eq!(goes[0]["at"], "2030-03-11T06:00:00Z");
    assert!(env
        .ok(&["plan", "--next", "12h"])
        .contains("held for quiet hours"));
    // explain, for support staff: held, until when and why; no attempt was spent.
    let event_id = d["event_id"].to_string();
    let text = env.ok(&["explain", &event_id, "--user", ANA]);
    assert!(
        text.contains("sms delivery")
            && text.contains("held until 2030-03-11T06:00:00Z")
            && text.contains("quiet hours"),
        "{text}"
    );
    let x = env.json(&["explain", &event_id, "--user", ANA]);
    let held: Vec<&Value> = x["notices"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|n| n["deliveries"].as_array().unwrap().iter())
        .filter(|d| d["held_until"] == "2030-03-11T06:00:00Z")
        .collect();
    assert_eq!(held.len(), 2, "{x}");
    assert!(held
        .iter()
        .all(|d| d["attempts_log"].as_array().unwrap().is_empty()));

    // 06:59 in Paris: still quiet.
    env.at("2030-03-11T05:59:00Z");
    assert_eq!(env.tick()["sent"], 0);
    assert!(sms.requests().is_empty());
    // 07:00: both go.
    env.at("2030-03-11T06:00:00Z");
    let s = env.tick();
    assert_eq!(s["sent"], 2, "{s}");
    assert_eq!(sms.requests().len(), 1);
    assert_eq!(env.eml_files().len(), 1);
    assert_eq!(delivery(&env, "sms", "assigned")["held_until"], Value::Null);
}

/// A moved occurrence is judged by its own start, not the series' first: moving next
/// week's session of a series that starts tomorrow waits for the quiet hours to end;
/// moving tomorrow's goes now (less than a day ahead).
#[test]
fn a_moved_occurrence_a_week_ahead_waits_for_quiet_hours() {
    let mut env = Env::new();
    config(&mut env, None, None, "");
    env.at("2030-03-10T10:00:00Z");
    ana(&env, &["--quiet-hours", "22:00-07:00"]);
    let id = env.json(&[
        "event",
        "add",
        "--title",
        "Daily",
        "--start",
        "2030-03-11T09:30",
        "--tz",
        "Europe/Paris",
        "--participant",
        ANA,
        "--repeat",
        "FREQ=DAILY;COUNT=10",
    ])["id"]
        .to_string();
    env.tick();
    // 23:30 in Paris: quiet.
    env.at("2030-03-10T22:30:00Z");
    env.ok(&[
        "event",
        "update",
        &id,
        "--occurrence",
        "2030-03-17T09:30",
        "--start",
        "2030-03-17T11:00",
    ]);
    let s = env.tick();
    assert_eq!(
        (s["sent"].as_i64(), s["held"].as_i64()),
        (Some(0), Some(1)),
        "{s}"
    );
    let d = delivery(&env, "email", "rescheduled");
    assert_eq!(d["held_until"], "2030-03-11T06:00:00Z", "{d}");
    env.ok(&[
        "event",
        "update",
        &id,
        "--occurrence",
        "2030-03-11T09:30",
        "--start",
        "2030-03-11T10:00",
    ]);
    let s = env.tick();
    assert_eq!(s["sent"], 1, "tomorrow's move goes now: {s}");
}

#[test]
fn quiet_hours_within_one_day_and_removed() {
    let sms = HttpServer::start(vec![(200, String::new(), Duration::ZERO)]);
    let mut env = Env::new();
    config(&mut env, Some(&sms.url("/sms")), None, "");
    env.at("2030-03-10T12:30:00Z"); // 13:30 Paris
    ana(&env, &["--quiet-hours", "12:00-14:00"]);
    env.ok(&["send", "--user", ANA, "--title", "Lunch", "--body", "Later"]);
    assert_eq!(env.tick()["held"], 2);
    assert_eq!(
        delivery(&env, "sms", "custom")["held_until"],
        "2030-03-10T13:00:00Z"
    );
    // Removing them makes the held messages due at once.
    env.ok(&["user", "update", ANA, "--quiet-hours", "none"]);
    let s = env.tick();
    assert_eq!(s["sent"], 2, "{s}");
    assert_eq!(sms.requests().len(), 1);
}

#[test]
fn quiet_hours_across_a_daylight_saving_night() {
    let sms = HttpServer::start(vec![(200, String::new(), Duration::ZERO)]);
    let mut env = Env::new();
    config(&mut env, Some(&sms.url("/sms")), None, "");
    // Paris, night of 2030-03-30 to 31: clocks go from 02:00 CET to 03:00 CEST. 23:30 CET.
    env.at("2030-03-30T22:30:00Z");
    ana(&env, &["--quiet-hours", "22:00-07:00"]);
    env.ok(&["send", "--user", ANA, "--title", "Hello", "--body", "Night"]);
    env.tick();
    // 07:00 CEST is 05:00Z, not 06:00Z.
    assert_eq!(
        delivery(&env, "sms", "custom")["held_until"],
        "2030-03-31T05:00:00Z"
    );
    env.at("2030-03-31T04:59:00Z");
    assert_eq!(env.tick()["sent"], 0);
    env.at("2030-03-31T05:00:00Z");
    assert_eq!(env.tick()["sent"], 2);
    assert_eq!(sms.requests().len(), 1);

    // And back in autumn (2030-10-27, 03:00 CEST becomes 02:00 CET): 07:00 CET is 06:00Z.
    env.at("2030-10-26T21:30:00Z");
    env.ok(&["send", "--user", ANA, "--title", "Hello", "--body", "Autumn"]);
    env.tick();
    let held = env.json(&["deliveries", "--status", "held"]);
    assert_eq!(held[0]["held_until"], "2030-10-27T06:00:00Z", "{held}");
}

#[test]
fn reminders_and_cancellations_are_never_held() {
    let sms = HttpServer::start(vec![(200, String::new(), Duration::ZERO)]);
    let mut env = Env::new();
    config(&mut env, Some(&sms.url("/sms")), None, "");
    env.at("2030-03-10T12:00:00Z");
    ana(&env, &["--quiet-hours", "22:00-07:00"]);
    // An early event: 07:15 Paris (06:15Z) on the 11th; reminders at 05:45Z and 06:10Z fall
    // in the quiet hours.
    let id = event(&env, "Early", "2030-03-11T06:15:00Z");
    env.tick();
    let before = sms.requests().len();
    env.at("2030-03-11T05:45:00Z");
    let s = env.tick();
    assert_eq!(s["held"], 0, "{s}");
    assert_eq!(
        sms.requests().len(),
        before + 1,
        "the 30-minute reminder goes at once"
    );
    assert_eq!(delivery(&env, "sms", "reminder")["status"], "sent");
    env.at("2030-03-11T05:50:00Z");
    env.ok(&["event", "cancel", &id.to_string()]);
    let s = env.tick();
    assert_eq!(s["held"], 0, "{s}");
    assert_eq!(delivery(&env, "sms", "cancelled")["status"], "sent");
}

// ---------------------------------------------------------------------------------
// SMS

#[test]
fn sms_is_a_form_post_with_basic_auth_as_configured() {
    let sms = HttpServer::start(vec![(201, r#"{"sid":"SM42"}"#.into(), Duration::ZERO)]);
    let mut env = Env::new();
    env.env("TWILIO_TOKEN", "s3cret");
    config(
        &mut env,
        None,
        None,
        &format!(
            "[sms]\nurl = \"{}\"\nfrom = \"+15550001111\"\nauth = \"basic\"\nusername = \"AC123\"\nsecret_env = \"TWILIO_TOKEN\"\n",
            sms.url("/2010-04-01/Accounts/AC123/Messages.json")
        ),
    );
    env.at("2030-03-10T09:00:00Z");
    ana(&env, &[]);
    event(&env, "Mentoring & more", "2030-03-12T09:00:00Z");
    let s = env.tick();
    assert_eq!(s["sent"], 2, "{s}");
    let reqs = sms.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.url, "/2010-04-01/Accounts/AC123/Messages.json");
    assert_eq!(
        r.header("Content-Type"),
        Some("application/x-www-form-urlencoded")
    );
    // base64("AC123:s3cret")
    assert_eq!(r.header("Authorization"), Some("Basic QUMxMjM6czNjcmV0"));
    let form: Vec<(String, String)> = url::form_urlencoded::parse(r.body.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("To"), Some(ANA_PHONE));
    assert_eq!(get("From"), Some("+15550001111"));
    let text = get("Body").unwrap();
    assert!(text.contains("Mentoring & more"), "{text}");
    assert!(text.chars().count() <= 160, "one segment: {text}");
    let d = delivery(&env, "sms", "assigned");
    assert_eq!(d["status"], "sent");
    assert_eq!(d["message_id"], "SM42");
    assert_eq!(d["recipient"], ANA_PHONE);
    let shown = env.ok(&["config", "show"]);
    assert!(!shown.contains("s3cret"), "{shown}");
}

#[test]
fn sms_as_json_with_a_bearer_token_from_a_file() {
    let sms = HttpServer::start(vec![(200, "{}".into(), Duration::ZERO)]);
    let mut env = Env::new();
    let secret = env.path("sms-token");
    std::fs::write(&secret, "tok-123\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    config(
        &mut env,
        None,
        None,
        &format!(
            "[sms]\nurl = \"{}\"\nmethod = \"PUT\"\nformat = \"json\"\nbody = '{{\"to\": {{{{ to }}}}, \"text\": {{{{ text }}}}, \"ref\": {{{{ delivery_id }}}}}}'\nauth = \"bearer\"\nsecret_file = \"sms-token\"\n",
            sms.url("/send")
        ),
    );
    env.at("2030-03-10T09:00:00Z");
    env.user(ANA, &["--locale", "fr", "--phone", ANA_PHONE]);
    env.ok(&[
        "send",
        "--user",
        ANA,
        "--title",
        "Bonjour \"à\" tous",
        "--body",
        "x",
    ]);
    env.tick();
    let reqs = sms.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let r = &reqs[0];
    assert_eq!(r.method, "PUT");
    assert_eq!(r.header("Authorization"), Some("Bearer tok-123"));
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    let body: Value = serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body));
    assert_eq!(body["to"], ANA_PHONE);
    assert!(
        body["text"].as_str().unwrap().contains("Bonjour \"à\" tous"),
        "{body}"
    );
    assert!(
        body["ref"].as_str().is_some_and(|r| r.parse::<i64>().is_ok()),
        "the delivery id: {body}"
    );
    let show = env.ok(&["config", "show"]);
    assert!(show.contains("[sms] secret: set from file"), "{show}");
    assert!(!show.contains("tok-123"));
}

#[test]
fn a_missing_sms_secret_keeps_the_message_and_says_which_setting() {
    let sms = HttpServer::start(vec![(200, "{}".into(), Duration::ZERO)]);
    let mut env = Env::new();
    config(
        &mut env,
        None,
        None,
        &format!(
            "[sms]\nurl = \"{}\"\nauth = \"bearer\"\nsecret_env = \"NO_SUCH_SMS_TOKEN\"\n",
            sms.url("/send")
        ),
    );
    env.at("2030-03-10T09:00:00Z");
    ana(&env, &[]);
    env.ok(&["send", "--user", ANA, "--title", "Hi", "--body", "x"]);
    let (_, err) = env.exits(&["check-reminders"], 3);
    assert!(err.contains("NO_SUCH_SMS_TOKEN"), "{err}");
    assert!(sms.requests().is_empty());
    assert_eq!(delivery(&env, "sms", "custom")["status"], "pending");
    let (out, _) = env.exits(&["config", "check"], 3);
    assert!(out.contains("[sms] secret"), "{out}");
}

#[test]
fn a_long_title_is_shortened_to_one_sms_the_link_kept_whole() {
    let sms = HttpServer::start(vec![(200, "{}".into(), Duration::ZERO)]);
    let mut env = Env::new();
    config(&mut env, Some(&sms.url("/sms")), None, "");
    env.at("2030-03-10T09:00:00Z");
    ana(&env, &[]);
    let title = "Quarterly planning ".repeat(12);
    event(&env, title.trim(), "2030-03-10T09:40:00Z");
    env.at("2030-03-10T09:10:00Z");
    env.tick();
    let reqs = sms.requests();
    let texts: Vec<String> = reqs
        .iter()
        .map(|r| {
            url::form_urlencoded::parse(r.body.as_bytes())
                .find(|(k, _)| k == "Body")
                .map(|(_, v)| v.into_owned())
                .unwrap()
        })
        .collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    for text in &texts {
        assert!(text.chars().count() <= 160, "one segment: {text}");
        assert!(text.contains("https://meet.example.org/room-1"), "{text}");
        assert!(
            text.contains("Quarterly planning") && text.contains("..."),
            "{text}"
        );
    }
    assert!(texts[1].starts_with("Reminder:"), "{}", texts[1]);
}

/// One custom notice for Ana queued on SMS only (email off) against `answers`.
fn sms_outcome(answers: Vec<HttpAnswer>) -> (Env, HttpServer) {
    let sms = HttpServer::scripted(answers);
    let mut env = Env::new();
    let url = sms.url("/sms");
    let toml = format!(
        "[email]\ntransport = \"none\"\nmax_attempts = 3\nbackoff_base = \"1m\"\n[sms]\nurl = \"{url}\"\ntimeout = \"3s\"\n"
    );
    env.config(&toml);
    env.at("2030-03-10T09:00:00Z");
    ana(&env, &[]);
    env.ok(&["send", "--user", ANA, "--title", "Hi", "--body", "x"]);
    (env, sms)
}

#[test]
fn a_4xx_is_permanent_and_dead_at_once() {
    let (env, sms) = sms_outcome(vec![HttpAnswer::new(400)]);
    let (_, err) = env.exits(&["check-reminders"], 3);
    assert!(err.contains("dead"), "{err}");
    assert_eq!(sms.requests().len(), 1);
    let d = delivery(&env, "sms", "custom");
    assert_eq!(d["status"], "dead");
    assert!(d["last_error"].as_str().unwrap().contains("400"), "{d}");
    env.ok(&["deliveries", "retry", "--dead"]);
    assert_eq!(delivery(&env, "sms", "custom")["status"], "pending");
}

#[test]
fn a_408_and_5xx_are_retried_with_backoff_then_dead() {
    let (mut env, sms) = sms_outcome(vec![
        HttpAnswer::new(408),
        HttpAnswer::new(503),
        HttpAnswer::new(500),
    ]);
    assert_eq!(env.tick()["failed"], 1);
    let d = delivery(&env, "sms", "custom");
    assert_eq!(d["status"], "failed");
    let next = d["next_attempt_at"].as_str().unwrap().to_string();
    assert!(next.as_str() > "2030-03-10T09:00:00Z", "{d}");
    // Not before the backoff.
    assert_eq!(env.tick()["sent"], 0);
    assert_eq!(sms.requests().len(), 1);
    env.at(&next);
    assert_eq!(env.tick()["failed"], 1);
    assert_eq!(sms.requests().len(), 2);
    let next = delivery(&env, "sms", "custom")["next_attempt_at"]
        .as_str()
        .unwrap()
        .to_string();
    env.at(&next);
    let (_, err) = env.exits(&["check-reminders"], 3);
    assert!(err.contains("failed 3 times"), "{err}");
    assert_eq!(delivery(&env, "sms", "custom")["status"], "dead");
    assert_eq!(sms.requests().len(), 3);
}

#[test]
fn a_429_waits_for_its_retry_after() {
    let (mut env, sms) = sms_outcome(vec![
        HttpAnswer::new(429).header("Retry-After", "600"),
        HttpAnswer::new(200),
    ]);
    assert_eq!(env.tick()["failed"], 1);
    let d = delivery(&env, "sms", "custom");
    assert_eq!(d["status"], "failed");
    assert_eq!(d["next_attempt_at"], "2030-03-10T09:10:00Z", "{d}");
    env.at("2030-03-10T09:09:00Z");
    env.tick();
    assert_eq!(sms.requests().len(), 1);
    env.at("2030-03-10T09:10:00Z");
    assert_eq!(env.tick()["sent"], 1);
    assert_eq!(sms.requests().len(), 2);
}

// ---------------------------------------------------------------------------------
// ntfy

#[test]
fn ntfy_publishes_title_click_and_priority() {
    let ntfy = HttpServer::start(vec![(200, r#"{"id":"abc123"}"#.into(), Duration::ZERO)]);
    let mut env = Env::new();
    config(&mut env, None, Some(&ntfy.url("")), "");
    env.at("2030-03-10T09:00:00Z");
    ana(&env, &[]);
    event(&env, "Mentoring", "2030-03-10T09:40:00Z");
    env.tick();
    env.at("2030-03-10T09:10:00Z");
    env.tick();
    let reqs = ntfy.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    for r in &reqs {
        assert_eq!(r.method, "POST");
        assert_eq!(r.url, "/");
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        assert_eq!(r.header("Authorization"), None);
    }
    let assigned: Value = serde_json::from_str(&reqs[0].body).unwrap();
    let reminder: Value = serde_json::from_str(&reqs[1].body).unwrap();
    assert_eq!(assigned["topic"], "ana-topic");
    assert!(
        assigned["title"].as_str().unwrap().contains("Mentoring"),
        "{assigned}"
    );
    assert_eq!(assigned["click"], "https://meet.example.org/room-1");
    assert_eq!(assigned["priority"], 3);
    assert_eq!(reminder["priority"], 4, "reminders stand out: {reminder}");
    assert_eq!(reminder["click"], "https://meet.example.org/room-1");
    let d = delivery(&env, "ntfy", "reminder");
    assert_eq!(d["status"], "sent");
    assert_eq!(d["message_id"], "abc123");
    assert!(
        !d["recipient"].as_str().unwrap().contains("ana-topic"),
        "a topic is a secret: {d}"
    );
}

#[test]
fn a_slow_gateway_times_out_and_is_retried() {
    let (env, sms) = sms_outcome(vec![
        HttpAnswer::new(200).delay(Duration::from_secs(6)),
        HttpAnswer::new(200),
    ]);
    let started = std::time::Instant::now();
    let s = env.tick();
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "bounded by [sms] timeout"
    );
    assert_eq!(s["sent"], 0, "{s}");
    assert_eq!(sms.requests().len(), 1);
    let d = delivery(&env, "sms", "custom");
    assert_ne!(d["status"], "sent", "{d}");
    assert_ne!(d["status"], "dead", "{d}");
}

#[test]
fn sms_by_get_carries_the_form_in_the_query_string() {
    let sms = HttpServer::start(vec![(200, "OK".into(), Duration::ZERO)]);
    let mut env = Env::new();
    config(
        &mut env,
        None,
        None,
        &format!(
            "[sms]\nurl = \"{}\"\nmethod = \"GET\"\nbody = \"to={{{{ to }}}}&msg={{{{ text }}}}\"\n",
            sms.url("/api/send?key=abc")
        ),
    );
    env.at("2030-03-10T09:00:00Z");
    ana(&env, &[]);
    env.ok(&["send", "--user", ANA, "--title", "A&B=C", "--body", "x"]);
    env.tick();
    let reqs = sms.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "GET");
    assert!(reqs[0].body.is_empty());
    let query = reqs[0].url.split_once('?').unwrap().1.to_string();
    let form: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(form[0], ("key".into(), "abc".into()));
    assert_eq!(form[1], ("to".into(), ANA_PHONE.into()));
    assert!(form[2].1.starts_with("A&B=C"), "escaped, not split: {form:?}");
    assert_eq!(form.len(), 3, "{form:?}");
}

#[test]
fn refused_ntfy_credentials_keep_the_message_without_spending_an_attempt() {
    let ntfy = HttpServer::scripted(vec![HttpAnswer::new(403), HttpAnswer::new(200)]);
    let mut env = Env::new();
    env.env("NOTIFYCTL_NTFY_SECRET", "tk_wrong");
    config(
        &mut env,
        None,
        None,
        &format!("[ntfy]\nurl = \"{}\"\nauth = \"bearer\"\n", ntfy.url("")),
    );
    env.at("2030-03-10T09:00:00Z");
    ana(&env, &[]);
    env.ok(&["send", "--user", ANA, "--title", "Hi", "--body", "x"]);
    let (_, err) = env.exits(&["check-reminders"], 3);
    assert!(err.contains("403"), "{err}");
    assert!(!err.contains("tk_wrong"), "{err}");
    assert_eq!(
        ntfy.requests()[0].header("Authorization"),
        Some("Bearer tk_wrong")
    );
    let d = delivery(&env, "ntfy", "custom");
    assert_eq!(
        (d["status"].as_str(), d["attempts"].as_i64()),
        (Some("pending"), Some(0)),
        "{d}"
    );
    assert_eq!(env.tick()["sent"], 1, "the next tick sends it");
    assert_eq!(delivery(&env, "ntfy", "custom")["status"], "sent");
}

#[test]
fn a_move_far_ahead_waits_for_the_morning_a_move_to_tomorrow_does_not() {
    let sms = HttpServer::start(vec![(200, String::new(), Duration::ZERO)]);
    let mut env = Env::new();
    config(&mut env, Some(&sms.url("/sms")), None, "");
    env.at("2030-03-10T12:00:00Z");
    ana(&env, &["--quiet-hours", "22:00-07:00"]);
    let far = event(&env, "Far", "2030-03-20T09:00:00Z");
    let near = event(&env, "Near", "2030-03-20T10:00:00Z");
    env.tick();
    env.at("2030-03-10T22:30:00Z"); // 23:30 in Paris
    env.ok(&[
        "event",
        "update",
        &far.to_string(),
        "--start",
        "2030-03-21T09:00:00Z",
    ]);
    env.ok(&[
        "event",
        "update",
        &near.to_string(),
        "--start",
        "2030-03-11T12:00:00Z",
    ]);
    let before = sms.requests().len();
    let s = env.tick();
    assert_eq!(s["held"], 2, "the far move, by SMS and email: {s}");
    let reqs = sms.requests();
    assert_eq!(reqs.len(), before + 1, "the near move goes now");
    assert!(reqs[before].body.contains("Near"), "{:?}", reqs[before].body);
}

// ---------------------------------------------------------------------------------
// The daily agenda

const AGENDA: &str = "[agenda]\nat = \"07:30\"\ngrace = \"30m\"\n";

fn agendas(env: &Env, user: &str) -> Vec<Value> {
    env.json(&["list", "--user", user])
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "agenda")
        .cloned()
        .collect()
}

#[test]
fn agendas_at_0730_in_paris_and_new_york_from_one_tick_loop() {
    let ntfy = HttpServer::start(vec![(200, "{}".into(), Duration::ZERO)]);
    let mut env = Env::new();
    config(&mut env, None, Some(&ntfy.url("")), AGENDA);
    env.at("2030-03-10T20:00:00Z");
    ana(&env, &[]);
    env.user(
        "bob@example.com",
        &[
            "--tz",
            "America/New_York",
            "--locale",
            "en",
            "--ntfy-topic",
            "bob-topic",
        ],
    );
    // Ana: two events on the 11th in Paris; Bob: one on the 11th in New York.
    event(&env, "Standup", "2030-03-11T08:00:00Z");
    event(&env, "Review", "2030-03-11T15:00:00Z");
    env.ok(&[
        "event",
        "add",
        "--title",
        "Call",
        "--start",
        "2030-03-11T18:00:00Z",
        "--participant",
        "bob@example.com",
    ]);
    env.tick();
    let plan = env.json(&["plan", "--next", "24h"]);
    let planned: Vec<(String, String)> = plan
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["what"] == "agenda")
        .map(|p| {
            (
                p["at"].as_str().unwrap().into(),
                p["user_email"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        planned,
        [
            ("2030-03-11T06:30:00Z".to_string(), ANA.to_string()),
            ("2030-03-11T11:30:00Z".to_string(), "bob@example.com".to_string())
        ],
        "07:30 CET and 07:30 EDT (New York changed its clocks on the 10th)"
    );
    // Every minute from 06:00Z to 12:00Z, as cron would (in 5-minute steps here).
    let mut minute = chrono::DateTime::parse_from_rfc3339("2030-03-11T06:00:00Z").unwrap();
    let mut ana_first = None;
    let mut bob_first = None;
    while minute.to_rfc3339().as_str() < "2030-03-11T12:00:00+00:00" {
        env.at(&minute.to_rfc3339());
        env.tick();
        if ana_first.is_none() && !agendas(&env, ANA).is_empty() {
            ana_first = Some(minute.to_rfc3339());
        }
        if bob_first.is_none() && !agendas(&env, "bob@example.com").is_empty() {
            bob_first = Some(minute.to_rfc3339());
        }
        minute += chrono::TimeDelta::minutes(5);
    }
    assert_eq!(ana_first.as_deref(), Some("2030-03-11T06:30:00+00:00"));
    assert_eq!(bob_first.as_deref(), Some("2030-03-11T11:30:00+00:00"));
    let a = agendas(&env, ANA);
    assert_eq!(a.len(), 1, "once per user and date");
    let body = a[0]["body"].as_str().unwrap();
    assert!(body.contains("Standup") && body.contains("Review"), "{body}");
    assert!(body.contains("9:00 AM Standup"), "in her zone: {body}");
    let b = agendas(&env, "bob@example.com");
    assert_eq!(b.len(), 1);
    assert!(b[0]["body"].as_str().unwrap().contains("Call"));
    // Through their channels: one push each, besides the assignment notices.
    let pushes: Vec<Value> = ntfy
        .requests()
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).unwrap())
        .filter(|v| v["tags"][0] == "agenda")
        .collect();
    assert_eq!(pushes.len(), 2, "{pushes:?}");
}

#[test]
fn the_agenda_follows_preferences_and_quiet_hours() {
    let ntfy = HttpServer::start(vec![(200, "{}".into(), Duration::ZERO)]);
    let mut env = Env::new();
    config(&mut env, None, Some(&ntfy.url("")), AGENDA);
    env.at("2030-03-10T20:00:00Z");
    ana(&env, &["--quiet-hours", "22:00-08:00"]);
    env.ok(&[
        "prefs",
        "set",
        "--user",
        ANA,
        "--kind",
        "agenda",
        "--channel",
        "email",
        "off",
    ]);
    event(&env, "Standup", "2030-03-11T09:00:00Z");
    env.tick();
    let pushes_before = ntfy.requests().len();
    env.at("2030-03-11T06:30:00Z"); // 07:30 in Paris, still quiet until 08:00
    let s = env.tick();
    assert_eq!(
        (s["created"].as_i64(), s["held"].as_i64()),
        (Some(1), Some(1)),
        "{s}"
    );
    let agenda: Vec<Value> = deliveries(&env)
        .into_iter()
        .filter(|d| d["kind"] == "agenda")
        .collect();
    assert_eq!(agenda.len(), 1, "push only: {agenda:?}");
    assert_eq!(agenda[0]["channel"], "ntfy");
    assert_eq!(agenda[0]["held_until"], "2030-03-11T07:00:00Z");
    env.at("2030-03-11T07:00:00Z");
    assert_eq!(env.tick()["sent"], 1);
    assert_eq!(ntfy.requests().len(), pushes_before + 1);
    assert_eq!(agendas(&env, ANA).len(), 1);
}

#[test]
fn the_agenda_lists_the_occurrences_of_a_series_that_day() {
    let mut env = Env::new();
    config(&mut env, None, None, AGENDA);
    env.at("2030-03-10T20:00:00Z");
    ana(&env, &[]);
    // Every Monday 10:00 in Paris since a week ago, and one single event on Monday.
    env.ok(&[
        "event",
        "add",
        "--title",
        "Weekly mentoring",
        "--start",
        "2030-03-04T09:00:00Z",
        "--tz",
        "Europe/Paris",
        "--repeat",
        "FREQ=WEEKLY",
        "--participant",
        ANA,
    ]);
    event(&env, "One-off", "2030-03-11T13:00:00Z");
    env.at("2030-03-11T06:30:00Z"); // Monday 07:30 in Paris
    let s = env.tick();
    assert_eq!(s["created"], 1, "{s}");
    let listed = agendas(&env, ANA);
    assert_eq!(listed.len(), 1);
    let mail = env
        .eml_files()
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .find(|m| m.contains("Weekly mentoring") && m.contains("One-off"))
        .expect("an agenda email listing the occurrence and the event");
    assert!(
        mail.find("Weekly mentoring") < mail.find("One-off"),
        "the occurrence at 10:00, then the event at 14:00: {mail}"
    );
    // Tuesday: the series has no occurrence, so no agenda (nor one planned).
    env.at("2030-03-12T05:00:00Z");
    let planned = env.json(&["plan", "--next", "2h"]);
    assert!(
        !planned.to_string().contains("agenda"),
        "no agenda planned on a day without occurrences: {planned}"
    );
    env.at("2030-03-12T06:30:00Z");
    assert_eq!(env.tick()["created"], 0);
    assert_eq!(agendas(&env, ANA).len(), 1);
    // The next Monday: the series alone.
    env.at("2030-03-18T06:30:00Z");
    assert_eq!(env.tick()["created"], 1);
    assert_eq!(agendas(&env, ANA).len(), 2);
}

#[test]
fn no_agenda_on_a_day_without_events() {
    let mut env = Env::new();
    config(&mut env, None, None, AGENDA);
    env.at("2030-03-10T20:00:00Z");
    ana(&env, &[]);
    event(&env, "Tomorrow after", "2030-03-12T08:00:00Z");
    env.at("2030-03-11T06:30:00Z");
    let s = env.tick();
    assert_eq!(s["created"], 0, "{s}");
    assert!(agendas(&env, ANA).is_empty());
    env.at("2030-03-12T06:30:00Z");
    env.tick();
    assert_eq!(agendas(&env, ANA).len(), 1);
}

#[test]
fn a_missed_agenda_is_caught_up_within_grace_and_not_after() {
    let mut env = Env::new();
    config(&mut env, None, None, AGENDA);
    env.at("2030-03-10T20:00:00Z");
    ana(&env, &[]);
    event(&env, "Day one", "2030-03-11T12:00:00Z");
    event(&env, "Day two", "2030-03-12T12:00:00Z");
    env.tick();
    // No tick at 06:30Z on the 11th; the next one 20 minutes later (grace 30m).
    env.at("2030-03-11T06:50:00Z");
    env.tick();
    assert_eq!(agendas(&env, ANA).len(), 1);
    // On the 12th the first tick comes 40 minutes late: too late for a morning agenda.
    env.at("2030-03-12T07:10:00Z");
    env.tick();
    assert_eq!(agendas(&env, ANA).len(), 1, "none after the grace");
    assert!(env
        .json(&["plan", "--next", "1h"])
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["what"] != "agenda"));
}

#[test]
fn overlapping_ticks_give_one_agenda_each() {
    let mut env = Env::new();
    config(&mut env, None, None, AGENDA);
    env.at("2030-03-10T20:00:00Z");
    for i in 0..20 {
        let email = format!("u{i}@example.org");
        env.user(&email, &["--tz", "Europe/Paris"]);
        env.ok(&[
            "event",
            "add",
            "--title",
            "Session",
            "--start",
            &format!("2030-03-11T{:02}:00:00Z", 8 + (i % 8)),
            "--participant",
            &email,
            "--allow-overlap",
        ]);
    }
    env.tick();
    env.at("2030-03-11T06:31:00Z");
    let children: Vec<_> = (0..4)
        .map(|_| {
            env.std_cmd()
                .args(["--json", "check-reminders"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    for i in 0..20 {
        assert_eq!(agendas(&env, &format!("u{i}@example.org")).len(), 1, "user {i}");
    }
    let files = env.eml_files().len();
    // Twenty assignment mails and twenty agendas, none twice.
    assert_eq!(files, 40);
}

// ---------------------------------------------------------------------------------
// Bad input

#[test]
fn bad_input_is_one_line_nothing_written() {
    let mut env = Env::new();
    config(&mut env, Some("http://127.0.0.1:9/sms"), None, "");
    ana(&env, &[]);
    let before = env.dump();
    for (args, says) in [
        (vec!["user", "update", ANA, "--phone", "0612345678"], "E.164"),
        (vec!["user", "update", ANA, "--phone", "+33 6 12"], "E.164"),
        (
            vec!["user", "update", ANA, "--quiet-hours", "22:00"],
            "quiet hours",
        ),
        (
            vec!["user", "update", ANA, "--quiet-hours", "22:00-24:00"],
            "quiet hours",
        ),
        (
            vec!["user", "update", ANA, "--quiet-hours", "07:00-07:00"],
            "the same",
        ),
        (
            vec!["user", "update", ANA, "--name", "New", "--quiet-hours", "x"],
            "quiet hours",
        ),
        (vec!["user", "update", ANA, "--ntfy-topic", "a/b"], "topic"),
        (
            vec![
                "prefs",
                "set",
                "--user",
                ANA,
                "--kind",
                "weekly",
                "--channel",
                "sms",
                "off",
            ],
            "unknown kind",
        ),
        (
            vec![
                "prefs",
                "set",
                "--user",
                ANA,
                "--kind",
                "all",
                "--channel",
                "fax",
                "off",
            ],
            "unknown channel",
        ),
        (
            vec![
                "prefs",
                "set",
                "--user",
                ANA,
                "--kind",
                "all",
                "--channel",
                "webhook",
                "off",
            ],
            "not a person's channel",
        ),
        (
            vec![
                "prefs",
                "set",
                "--user",
                "nobody@example.org",
                "--kind",
                "all",
                "--channel",
                "sms",
                "off",
            ],
            "nobody",
        ),
        (
            vec![
                "user",
                "add",
                "--email",
                "x@example.org",
                "--name",
                "X",
                "--phone",
                "12",
            ],
            "E.164",
        ),
    ] {
        let err = env.fails(&args, 2);
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: one line: {err}");
    }
    assert_eq!(env.dump(), before, "nothing was written");
    let p = prefs(&env, ANA);
    assert_eq!(p["quiet_hours"], Value::Null);
}

#[test]
fn a_bad_channel_config_is_refused_in_one_line() {
    let mut env = Env::new();
    for (toml, says) in [
        ("[sms]\nurl = \"ftp://x\"\n", "sms.url"),
        ("[sms]\nurl = \"http://x\"\nmethod = \"DELETE\"\n", "method"),
        ("[sms]\nurl = \"http://x\"\nbody = \"{{ to \"\n", "body"),
        ("[ntfy]\nurl = \"http://x\"\nreminder_priority = 9\n", "priority"),
        ("[agenda]\nat = \"7h30\"\n", "07:30"),
        ("[preferences]\nmandatory = [\"weekly\"]\n", "weekly"),
        // Line breaks the URL parser would silently drop, and a sender on two lines.
        ("[sms]\nurl = \"http://x/sms\\n/x\"\n", "sms.url"),
        ("[ntfy]\nurl = \"http://x/ \"\n", "ntfy.url"),
        ("[sms]\nurl = \"http://x\"\nfrom = \"+33 6\\n\"\n", "sms.from"),
    ] {
        env.config(toml);
        let err = env.fails(&["config", "check"], 2);
        assert!(err.contains(says), "{toml}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{toml}: {err}");
    }
}

on_postgres!(
    prefs_set_and_show_per_kind_and_channel,
    a_mandatory_kind_still_goes_out_and_prefs_set_says_so,
    a_preference_changed_between_the_notice_and_its_sending_wins,
    a_channel_turned_on_before_the_sending_carries_the_message_too,
    email_notices_off_is_one_case_of_the_preferences,
    quiet_hours_hold_a_notice_until_they_end,
    quiet_hours_within_one_day_and_removed,
    a_moved_occurrence_a_week_ahead_waits_for_quiet_hours,
    quiet_hours_across_a_daylight_saving_night,
    reminders_and_cancellations_are_never_held,
    sms_is_a_form_post_with_basic_auth_as_configured,
    sms_as_json_with_a_bearer_token_from_a_file,
    a_missing_sms_secret_keeps_the_message_and_says_which_setting,
    a_long_title_is_shortened_to_one_sms_the_link_kept_whole,
    a_4xx_is_permanent_and_dead_at_once,
    a_408_and_5xx_are_retried_with_backoff_then_dead,
    a_429_waits_for_its_retry_after,
    a_slow_gateway_times_out_and_is_retried,
    sms_by_get_carries_the_form_in_the_query_string,
    refused_ntfy_credentials_keep_the_message_without_spending_an_attempt,
    a_move_far_ahead_waits_for_the_morning_a_move_to_tomorrow_does_not,
    ntfy_publishes_title_click_and_priority,
    agendas_at_0730_in_paris_and_new_york_from_one_tick_loop,
    no_agenda_on_a_day_without_events,
    the_agenda_lists_the_occurrences_of_a_series_that_day,
    the_agenda_follows_preferences_and_quiet_hours,
    a_missed_agenda_is_caught_up_within_grace_and_not_after,
    overlapping_ticks_give_one_agenda_each,
    bad_input_is_one_line_nothing_written,
);
