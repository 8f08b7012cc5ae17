//! The rules a booking app needs (issue 14): per-event reminders, recurring series and
//! `explain`, each pinned to the way reminder engines are known to get it wrong: series
//! reminders drifting by an hour at a daylight-saving change, a deleted occurrence still
//! reminding, a booking inside the lead time reminded late, an edited rule dropping (or
//! repeating) reminders, an open-ended rule creating rows forever.

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use icalendar::parser::{read_calendar, unfold};
use mail_parser::{MessageParser, MimeHeaders};
use serde_json::Value;

use crate::support::{Env, SmtpPolicy, SmtpServer};

const ANA: &str = "ana@example.org";
const BOB: &str = "bob@example.com";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn rfc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// 09:30 on `date` in `tz`, as an instant.
fn local_0930(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    tz.from_local_datetime(&date.and_hms_opt(9, 30, 0).unwrap())
        .single()
        .expect("09:30 exists and is unambiguous")
        .with_timezone(&Utc)
}

/// A world with Ana (and Bob), the clock at `now`, mail written to files.
fn env_at(now: &str) -> Env {
    let mut env = Env::new();
    env.at(now);
    env.user(ANA, &["--tz", "Europe/Paris"]);
    env.user(BOB, &["--tz", "America/New_York"]);
    env
}

fn tick_at(env: &mut Env, at: DateTime<Utc>) -> Value {
    env.at(&rfc(at));
    env.tick()
}

/// `explain --json` for Ana.
fn explain(env: &Env, event: &str) -> Value {
    env.json(&["explain", event, "--user", ANA])
}

/// (event_start, offset, outcome, reason) of every decision `explain` reports.
fn decisions(x: &Value) -> Vec<(String, i64, String, Option<String>)> {
    x["reminders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["event_start"].as_str().unwrap().to_string(),
                r["offset_minutes"].as_i64().unwrap(),
                r["outcome"].as_str().unwrap().to_string(),
                r["reason"].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// A VEVENT's properties: (name with its parameters, value).
type Props = Vec<(String, String)>;

/// Every calendar written to the outbox (file transport), as parsed by a real iCalendar
/// parser: (METHOD, the VEVENTs' properties by name).
fn calendars(env: &Env) -> Vec<(String, Vec<Props>)> {
    let parser = MessageParser::default();
    let mut out = Vec::new();
    for path in env.eml_files() {
        let raw = std::fs::read(&path).unwrap();
        let msg = parser.parse(&raw).expect("MIME parses");
        let Some(ics) = msg
            .attachments()
            .find(|a| a.attachment_name() == Some("invite.ics"))
        else {
            continue;
        };
        let text = String::from_utf8_lossy(ics.contents()).into_owned();
        let unfolded = unfold(&text);
        let cal = read_calendar(&unfolded).unwrap_or_else(|e| panic!("iCalendar parses: {e}\n{text}"));
        let method = cal
            .properties
            .iter()
            .find(|p| p.name == "METHOD")
            .map(|p| p.val.to_string())
            .unwrap_or_default();
        let events = cal
            .components
            .iter()
            .filter(|c| c.name == "VEVENT")
            .map(|c| {
                c.properties
                    .iter()
                    .map(|p| {
                        let params: Vec<String> = p
                            .params
                            .iter()
                            .map(|q| {
                                format!(
                                    "{}={}",
                                    q.key,
                                    q.val.as_ref().map(|v| v.to_string()).unwrap_or_default()
                                )
                            })
                            .collect();
                        let name = if params.is_empty() {
                            p.name.to_string()
                        } else {
                            format!("{};{}", p.name, params.join(";"))
                        };
                        (name, p.val.to_string())
                    })
                    .collect()
            })
            .collect();
        out.push((method, events));
    }
    out
}

fn prop<'a>(event: &'a [(String, String)], name: &str) -> Option<&'a str> {
    event
        .iter()
        .find(|(n, _)| n == name || n.starts_with(&format!("{name};")))
        .map(|(_, v)| v.as_str())
}

fn assert_one_line_error(stderr: &str) {
    assert!(stderr.starts_with("notifyctl: error:"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line please: {stderr}");
}

// ---------------------------------------------------------------------------------------
// Series across daylight saving

/// A weekly 09:30 series over a clock change: each reminder goes out 10 minutes before
/// 09:30 local time (not 24-hour steps from the first), once, and nothing an hour early.
fn series_keeps_wall_clock(tz: Tz, first: &str) {
    let first = NaiveDate::parse_from_str(first, "%Y-%m-%d").unwrap();
    let expected: Vec<DateTime<Utc>> = (0..4)
        .map(|week| local_0930(tz, first + chrono::Days::new(7 * week)))
        .collect();
    let offsets: std::collections::HashSet<i64> = expected.iter().map(|s| tz_offset(tz, *s)).collect();
    assert_eq!(offsets.len(), 2, "the series crosses a clock change");
    let mut env = env_at(&rfc(expected[0] - TimeDelta::days(2)));
    let id = env.json(&[
        "event",
        "add",
        "--title",
        "Therapy",
        "--start",
        &format!("{}T09:30", first),
        "--tz",
        tz.name(),
        "--participant",
        ANA,
        "--repeat",
        "FREQ=WEEKLY;COUNT=4",
        "--remind",
        "10m",
    ])["id"]
        .to_string();
    env.tick();
    for start in &expected {
        let due = *start - TimeDelta::minutes(10);
        assert_eq!(
            tick_at(&mut env, due - TimeDelta::hours(1))["created"],
            0,
            "an hour early, {start}"
        );
        assert_eq!(tick_at(&mut env, due)["created"], 1, "due for {start}");
        assert_eq!(
            tick_at(&mut env, due + TimeDelta::minutes(1))["created"],
            0,
            "once, {start}"
        );
    }
    let x = explain(&env, &id);
    let got = decisions(&x);
    assert_eq!(got.len(), 4, "{got:?}");
    for ((start, offset, outcome, _), want) in got.iter().zip(&expected) {
        assert_eq!(start, &rfc(*want));
        assert_eq!(t(start).with_timezone(&tz).format("%H:%M").to_string(), "09:30");
        assert_eq!((*offset, outcome.as_str()), (10, "sent"));
    }
    // One email per reminder, plus the invitation.
    assert_eq!(env.eml_files().len(), 5);
}

fn tz_offset(tz: Tz, at: DateTime<Utc>) -> i64 {
    use chrono::Offset;
    at.with_timezone(&tz).offset().fix().local_minus_utc() as i64
}

#[test]
fn paris_weekly_series_keeps_0930_across_spring_forward() {
    series_keeps_wall_clock(chrono_tz::Europe::Paris, "2030-03-18");
}

#[test]
fn paris_weekly_series_keeps_0930_across_fall_back() {
    series_keeps_wall_clock(chrono_tz::Europe::Paris, "2030-10-21");
}

#[test]
fn new_york_weekly_series_keeps_0930_across_spring_forward() {
    series_keeps_wall_clock(chrono_tz::America::New_York, "2030-03-04");
}

#[test]
fn new_york_weekly_series_keeps_0930_across_fall_back() {
    series_keeps_wall_clock(chrono_tz::America::New_York, "2030-10-28");
}

// ---------------------------------------------------------------------------------------
// One occurrence cancelled or moved

#[test]
fn cancelled_occurrence_never_reminds_and_a_moved_one_reminds_at_its_new_time_only() {
    let paris = chrono_tz::Europe::Paris;
    let mut env = env_at("2030-03-15T09:00:00Z");
    let id = env.json(&[
        "event",
        "add",
        "--title",
        "Mentoring",
        "--start",
        "2030-03-18T09:30",
        "--tz",
        "Europe/Paris",
        "--participant",
        ANA,
        "--repeat",
        "FREQ=WEEKLY;COUNT=3",
        "--remind",
        "10m",
    ])["id"]
        .to_string();
    let day = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
    let first = local_0930(paris, day("2030-03-18"));
    let second = local_0930(paris, day("2030-03-25"));
    let third = local_0930(paris, day("2030-04-01"));
    let cancelled = env.json(&["event", "cancel", &id, "--occurrence", "2030-03-25T09:30"]);
    assert_eq!(cancelled["occurrence"]["original_start"], rfc(second));
    assert_eq!(cancelled["notified"], 1);
    let moved = env.json(&[
        "event",
        "update",
        &id,
        "--occurrence",
        "2030-04-01T09:30",
        "--start",
        "2030-04-02T11:00",
    ]);
    let new_start = t("2030-04-02T09:00:00Z");
    assert_eq!(moved["occurrence"]["starts_at"], rfc(new_start));
    assert_eq!(moved["rescheduled"], true);
    // The listing shows what takes place.
    let listed = env.json(&[
        "event",
        "list",
        "--from",
        "2030-03-16T00:00:00Z",
        "--to",
        "2030-04-30T00:00:00Z",
    ]);
    let starts: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["starts_at"].as_str().unwrap())
        .collect();
    assert_eq!(starts, [rfc(first), rfc(new_start)]);
    env.tick();
    let ten = TimeDelta::minutes(10);
    assert_eq!(tick_at(&mut env, first - ten)["created"], 1);
    assert_eq!(tick_at(&mut env, second - ten)["created"], 0, "cancelled");
    assert_eq!(tick_at(&mut env, third - ten)["created"], 0, "moved away");
    assert_eq!(tick_at(&mut env, new_start - ten)["created"], 1, "moved here");
    assert_eq!(tick_at(&mut env, new_start + ten)["created"], 0);
    let got = decisions(&explain(&env, &id));
    assert_eq!(
        got,
        [
            (rfc(first), 10, "sent".into(), None),
            (rfc(new_start), 10, "sent".into(), None)
        ]
    );
    // The invitations, as a calendar reads them: the series with its rule, the cancelled
    // occurrence (CANCEL with RECURRENCE-ID), the moved one (an override at its new time).
    let cals = calendars(&env);
    let methods: Vec<&str> = cals.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(
        methods.iter().filter(|m| **m == "CANCEL").count(),
        1,
        "{methods:?}"
    );
    let series = cals
        .iter()
        .flat_map(|(_, evs)| evs)
        .find(|e| prop(e, "RRULE").is_some())
        .expect("the series' invitation");
    assert_eq!(prop(series, "RRULE"), Some("FREQ=WEEKLY;COUNT=3"));
    assert_eq!(prop(series, "DTSTART"), Some("20300318T093000"));
    let (_, cancel) = cals.iter().find(|(m, _)| m == "CANCEL").expect("a CANCEL");
    assert_eq!(prop(&cancel[0], "RECURRENCE-ID"), Some("20300325T093000"));
    let moved_ics = cals
        .iter()
        .filter(|(m, _)| m == "REQUEST")
        .flat_map(|(_, evs)| evs)
        .find(|e| prop(e, "RECURRENCE-ID") == Some("20300401T093000"))
        .expect("the moved occurrence's override");
    assert_eq!(prop(moved_ics, "DTSTART"), Some("20300402T110000"));
    // Someone invited afterwards gets the whole series as it is: the rule, the cancelled
    // occurrence as EXDATE, the moved one as an override.
    env.ok(&["event", "assign", &id, "--user", BOB]);
    env.tick();
    let cals = calendars(&env);
    let (_, invitation) = cals
        .iter()
        .find(|(m, evs)| m == "REQUEST" && evs.iter().any(|e| prop(e, "EXDATE").is_some()))
        .expect("an invitation with EXDATE");
    let master = invitation
        .iter()
        .find(|e| prop(e, "RRULE").is_some())
        .expect("the master");
    assert_eq!(prop(master, "EXDATE"), Some("20300325T093000"));
    assert!(
        master.iter().any(|(n, _)| n == "EXDATE;TZID=Europe/Paris"),
        "{master:?}"
    );
    let override_ = invitation
        .iter()
        .find(|e| prop(e, "RECURRENCE-ID") == Some("20300401T093000"))
        .expect("the moved occurrence's override");
    assert_eq!(prop(override_, "DTSTART"), Some("20300402T110000"));
}

#[test]
fn cancelling_a_series_ends_it_and_its_reminders() {
    let mut env = env_at("2030-03-15T09:00:00Z");
    let id = env.json(&[
        "event",
        "add",
        "--title",
        "Weekly",
        "--start",
        "2030-03-18T09:30",
        "--tz",
        "Europe/Paris",
        "--participant",
        ANA,
        "--repeat",
        "FREQ=WEEKLY",
    ])["id"]
        .to_string();
    let first = t("2030-03-18T08:30:00Z");
    assert_eq!(tick_at(&mut env, first - TimeDelta::minutes(30))["created"], 1);
    env.at("2030-03-20T09:00:00Z");
    let out = env.ok(&["event", "cancel", &id]);
    assert!(out.contains("cancelled series"), "{out}");
    let mut minute = t("2030-03-25T07:00:00Z");
    while minute < t("2030-03-25T08:40:00Z") {
        assert_eq!(tick_at(&mut env, minute)["created"], 0, "at {minute}");
        minute += TimeDelta::minutes(5);
    }
    let listed = env.json(&["event", "list", "--from", "2030-03-21T00:00:00Z"]);
    assert_eq!(listed.as_array().unwrap().len(), 0, "{listed}");
    let (method, _) = calendars(&env).pop().unwrap();
    assert_eq!(method, "CANCEL");
}

#[test]
fn cancelling_the_rest_of_a_series_keeps_the_earlier_occurrences() {
    let mut env = env_at("2030-03-15T09:00:00Z");
    let id = env.json(&[
        "event",
        "add",
        "--title",
        "Therapy",
        "--start",
        "2030-03-18T09:30",
        "--tz",
        "Europe/Paris",
        "--participant",
        ANA,
        "--repeat",
        "FREQ=WEEKLY;COUNT=6",
        "--remind",
        "10m",
    ])["id"]
        .to_string();
    env.tick();
    let ten = TimeDelta::minutes(10);
    assert_eq!(tick_at(&mut env, t("2030-03-18T08:30:00Z") - ten)["created"], 1);
    // Nothing after the series' end to cancel: refused, nothing written.
    let before = env.dump();
    let err = env.fails(&["event", "cancel", &id, "--from", "2030-06-01T00:00"], 2);
    assert_one_line_error(&err);
    assert!(err.contains("no occurrence from"), "{err}");
    assert_eq!(env.dump(), before);
    env.at("2030-03-20T09:00:00Z");
    // From the day of the third session (local midnight) on.
    let v = env.json(&["event", "cancel", &id, "--from", "2030-04-01T00:00"]);
    assert_eq!(v["status"], "scheduled");
    assert_eq!(v["from"]["original_start"], "2030-04-01T07:30:00Z");
    assert_eq!(v["repeat_rule"], "FREQ=WEEKLY;UNTIL=20300401T072959Z");
    assert_eq!(v["series_end"], "2030-03-25T09:30:00Z");
    assert_eq!(v["notified"], 1);
    // The second session still reminds; none after it.
    assert_eq!(tick_at(&mut env, t("2030-03-25T08:30:00Z") - ten)["created"], 1);
    for start in [
        "2030-04-01T07:30:00Z",
        "2030-04-08T07:30:00Z",
        "2030-04-22T07:30:00Z",
    ] {
        assert_eq!(tick_at(&mut env, t(start) - ten)["created"], 0, "{start}");
    }
    let listed = env.json(&[
        "event",
        "list",
        "--from",
        "2030-03-16T00:00:00Z",
        "--to",
        "2030-06-01T00:00:00Z",
    ]);
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    // The notice is about the first cancelled session; calendars get the series as it now
    // is (a REQUEST with the cut rule), not a CANCEL of that one occurrence.
    let x = explain(&env, &id);
    let cancelled = x["notices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "cancelled")
        .expect("a cancelled notice");
    assert_eq!(cancelled["occurrence_start"], "2030-04-01T07:30:00Z");
    let cals = calendars(&env);
    assert!(
        cals.iter().all(|(m, _)| m == "REQUEST"),
        "no CANCEL: {:?}",
        cals.iter().map(|c| &c.0).collect::<Vec<_>>()
    );
    let rules: Vec<&str> = cals
        .iter()
        .flat_map(|(_, evs)| evs)
        .filter_map(|e| prop(e, "RRULE"))
        .collect();
    assert!(
        rules.contains(&"FREQ=WEEKLY;UNTIL=20300401T072959Z"),
        "the series with its new end: {rules:?}"
    );
    // From its first occurrence on, the whole series goes.
    let v = env.json(&["event", "cancel", &id, "--from", "2030-03-18T09:30"]);
    assert_eq!(v["status"], "cancelled");
}

// ---------------------------------------------------------------------------------------
// Per-event reminders

#[test]
fn booking_inside_the_lead_time_records_the_missed_reminder_as_armed_late() {
    let mut env = env_at("2030-03-10T09:40:00Z");
    let id = env.json(&[
        "event",
        "add",
        "--title",
        "Call",
        "--start",
        "2030-03-10T10:00:00Z",
        "--participant",
        ANA,
        "--remind",
        "1h",
        "--remind",
        "10m",
    ])["id"]
        .to_string();
    let s = env.tick();
    assert_eq!((s["created"].as_i64(), s["skipped"].as_i64()), (Some(0), Some(1)));
    assert_eq!(tick_at(&mut env, t("2030-03-10T09:50:00Z"))["created"], 1);
    let x = explain(&env, &id);
    assert_eq!(
        decisions(&x),
        [
            (
                "2030-03-10T10:00:00Z".into(),
                60,
                "skipped".into(),
                Some("armed_late".into())
            ),
            ("2030-03-10T10:00:00Z".into(), 10, "sent".into(), None),
        ]
    );
    assert_eq!(x["event"]["reminder_offsets"], serde_json::json!([60, 10]));
    assert_eq!(x["event"]["own_offsets"], true);
}

#[test]
fn editing_remind_replans_only_the_undecided_and_never_sends_twice() {
    let mut env = env_at("2030-03-09T09:00:00Z");
    let id = env.json(&[
        "event",
        "add",
        "--title",
        "Consultation",
        "--start",
        "2030-03-10T12:00:00Z",
        "--participant",
        ANA,
        "--remind",
        "2h",
        "--remind",
        "1h",
    ])["id"]
        .to_string();
    assert_eq!(tick_at(&mut env, t("2030-03-10T10:00:00Z"))["created"], 1, "2h");
    // At 10:30: 1h goes, 30m comes, 90m comes but its moment is now (armed_late).
    env.at("2030-03-10T10:30:00Z");
    let v = env.json(&[
        "event", "update", &id, "--remind", "2h", "--remind", "90m", "--remind", "30m",
    ]);
    assert_eq!(v["remind_offsets"], serde_json::json!([120, 90, 30]));
    // Off and on again: the 2h one stays decided.
    env.ok(&["event", "update", &id, "--remind", "none"]);
    env.ok(&[
        "event", "update", &id, "--remind", "2h", "--remind", "90m", "--remind", "30m",
    ]);
    assert_eq!(tick_at(&mut env, t("2030-03-10T10:30:00Z"))["created"], 0);
    assert_eq!(
        tick_at(&mut env, t("2030-03-10T11:00:00Z"))["created"],
        0,
        "1h was removed"
    );
    assert_eq!(tick_at(&mut env, t("2030-03-10T11:30:00Z"))["created"], 1, "30m");
    assert_eq!(tick_at(&mut env, t("2030-03-10T11:45:00Z"))["created"], 0);
    let got = decisions(&explain(&env, &id));
    let sent: Vec<i64> = got.iter().filter(|d| d.2 == "sent").map(|d| d.1).collect();
    assert_eq!(sent, [120, 30], "{got:?}");
    assert!(
        got.iter()
            .any(|d| d.1 == 90 && d.3.as_deref() == Some("armed_late")),
        "{got:?}"
    );
    let reminders = env.json(&["list", "--user", ANA, "--type", "reminder"]);
    assert_eq!(reminders.as_array().unwrap().len(), 2, "each once: {reminders}");
    // `default`: the config's offsets again (30m, 5m); 30m is already decided.
    env.ok(&["event", "update", &id, "--remind", "default"]);
    assert_eq!(tick_at(&mut env, t("2030-03-10T11:55:00Z"))["created"], 1, "5m");
    let reminders = env.json(&["list", "--user", ANA, "--type", "reminder"]);
    assert_eq!(reminders.as_array().unwrap().len(), 3);
}

/// A web form's empty reminder field on `event update` changes nothing: it does not put
/// the event back on the config's offsets (that is `--remind default`).
#[test]
fn an_empty_remind_on_update_keeps_the_events_own_offsets() {
    let env = env_at("2030-03-09T09:00:00Z");
    let id = env.json(&[
        "event",
        "add",
        "--title",
        "Consultation",
        "--start",
        "2030-03-10T12:00:00Z",
        "--participant",
        ANA,
        "--remind",
        "2h",
    ])["id"]
        .to_string();
    env.ok(&["event", "update", &id, "--remind", ""]);
    env.ok(&["event", "update", &id, "--remind", " ", "--title", "Renamed"]);
    let x = explain(&env, &id);
    assert_eq!(x["event"]["reminder_offsets"], serde_json::json!([120]));
    assert_eq!(x["event"]["own_offsets"], true);
    let none = env.json(&[
        "event",
        "add",
        "--title",
        "Quiet",
        "--start",
        "2030-03-11T12:00:00Z",
        "--participant",
        ANA,
        "--remind",
        "none",
    ])["id"]
        .to_string();
    env.ok(&["event", "update", &none, "--remind", ""]);
    assert_eq!(
        explain(&env, &none)["event"]["reminder_offsets"],
        serde_json::json!([])
    );
}

#[test]
fn remind_none_sends_no_reminder_and_import_takes_remind_per_row() {
    let mut env = env_at("2030-03-09T09:00:00Z");
    let none = env.json(&[
        "event",
        "add",
        "--title",
        "Quiet",
        "--start",
        "2030-03-10T12:00:00Z",
        "--participant",
        ANA,
        "--remind",
        "none",
    ]);
    assert_eq!(none["remind_offsets"], serde_json::json!([]));
    let csv = env.path("events.csv");
    std::fs::write(
        &csv,
        "title,start,duration,participants,remind\n\
         Day before,2030-03-11T12:00:00Z,1h,bob@example.com,1d\n\
         Two,2030-03-12T12:00:00Z,1h,bob@example.com,2h;15m\n\
         Silent,2030-03-13T12:00:00Z,1h,bob@example.com,none\n",
    )
    .unwrap();
    env.ok(&["import", "events", csv.to_str().unwrap()]);
    let shown: Vec<Value> = (2..=4)
        .map(|id| env.json(&["event", "show", &id.to_string()]))
        .collect();
    let offsets: Vec<&Value> = shown.iter().map(|v| &v["remind_offsets"]).collect();
    assert_eq!(
        offsets,
        [
            &serde_json::json!([1440]),
            &serde_json::json!([120, 15]),
            &serde_json::json!([])
        ]
    );
    let mut minute = t("2030-03-10T11:00:00Z");
    while minute < t("2030-03-10T12:00:00Z") {
        assert_eq!(tick_at(&mut env, minute)["created"], 0, "none at {minute}");
        minute += TimeDelta::minutes(5);
    }
    assert_eq!(
        tick_at(&mut env, t("2030-03-10T12:00:00Z"))["created"],
        1,
        "1d of the import"
    );
    let plan = env.json(&["plan", "--next", "3d"]);
    let planned: Vec<i64> = plan
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["offset_minutes"].as_i64().unwrap())
        .collect();
    assert_eq!(planned, [120, 15], "{plan}");
    // A bad offset in a row is that row's error, and nothing is imported.
    let before = env.dump();
    std::fs::write(
        &csv,
        "title,start,duration,participants,remind\nBad,2030-03-14T12:00:00Z,1h,bob@example.com,5x\n",
    )
    .unwrap();
    let out = env.run(&["import", "events", csv.to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("remind")
            || String::from_utf8_lossy(&out.stdout).contains("remind"),
        "{out:?}"
    );
    assert_eq!(env.dump(), before);
}

// ---------------------------------------------------------------------------------------
// Open-ended series: bounded work

#[test]
fn open_ended_series_with_ticks_a_year_apart_creates_no_rows_ahead() {
    let mut env = env_at("2030-03-01T09:00:00Z");
    let id = env.json(&[
        "event",
        "add",
        "--title",
        "Standup",
        "--start",
        "2030-03-04T09:30",
        "--tz",
        "Europe/Paris",
        "--participant",
        ANA,
        "--repeat",
        "FREQ=WEEKLY;BYDAY=MO,TH",
        "--remind",
        "10m",
    ])["id"]
        .to_string();
    env.tick();
    // A year without a tick: each occurrence that passed is recorded once, as missed.
    let later = t("2031-03-01T09:00:00Z");
    let s = tick_at(&mut env, later);
    let passed = s["skipped"].as_i64().unwrap();
    assert!((100..=106).contains(&passed), "two a week for a year: {s}");
    assert_eq!(env.count("SELECT count(*) FROM reminders"), passed);
    assert_eq!(
        env.count("SELECT count(*) FROM events"),
        1,
        "occurrences are not rows"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM reminders WHERE event_start > '2031-03-01T09:00:00Z'"),
        0,
        "nothing decided ahead"
    );
    // A second tick at once adds nothing; a year later again, the same bounded amount.
    assert_eq!(tick_at(&mut env, later + TimeDelta::minutes(1))["skipped"], 0);
    let s = tick_at(&mut env, t("2032-03-01T09:00:00Z"));
    assert!((100..=106).contains(&s["skipped"].as_i64().unwrap()), "{s}");
    // event list and plan show a window of occurrences, not the series' whole future.
    let listed = env.json(&["event", "list"]);
    let n = listed.as_array().unwrap().len();
    assert!((8..=10).contains(&n), "30 days of Mondays and Thursdays: {n}");
    for e in listed.as_array().unwrap() {
        assert_eq!(e["id"].to_string(), id);
        assert!(e["occurrence"]["original_start"].is_string(), "{e}");
    }
    let plan = env.json(&["plan", "--next", "7d"]);
    assert_eq!(plan.as_array().unwrap().len(), 2, "{plan}");
    let listed = env.json(&[
        "event",
        "list",
        "--from",
        "2040-01-01T00:00:00Z",
        "--to",
        "2040-01-08T00:00:00Z",
    ]);
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
}

// ---------------------------------------------------------------------------------------
// Double booking covers occurrences

#[test]
fn booking_over_an_occurrence_is_refused_until_it_is_cancelled() {
    let env = env_at("2030-03-01T09:00:00Z");
    let id = env.json(&[
        "event",
        "add",
        "--title",
        "Weekly",
        "--start",
        "2030-03-04T09:30",
        "--tz",
        "Europe/Paris",
        "--participant",
        ANA,
        "--repeat",
        "FREQ=WEEKLY",
    ])["id"]
        .to_string();
    // The occurrence a year on, after two clock changes, still at 09:30 Paris time.
    let single = [
        "event",
        "add",
        "--title",
        "Clash",
        "--start",
        "2031-03-03T10:00",
        "--tz",
        "Europe/Paris",
        "--participant",
        ANA,
    ];
    let before = env.dump();
    let err = env.fails(&single, 2);
    assert_one_line_error(&err);
    assert!(
        err.contains("already booked") && err.contains(&format!("event {id}")),
        "{err}"
    );
    assert_eq!(env.dump(), before, "nothing written");
    // Another series meeting it every other week is refused too.
    let err = env.fails(
        &[
            "event",
            "add",
            "--title",
            "Fortnightly",
            "--start",
            "2030-03-11T10:00",
            "--tz",
            "Europe/Paris",
            "--participant",
            ANA,
            "--repeat",
            "FREQ=WEEKLY;INTERVAL=2",
        ],
        2,
    );
    assert_one_line_error(&err);
    // Moving an event onto an occurrence is refused.
    let other = env.json(&[
        "event",
        "add",
        "--title",
        "Free slot",
        "--start",
        "2030-03-05T10:00",
        "--tz",
        "Europe/Paris",
        "--participant",
        ANA,
    ])["id"]
        .to_string();
    env.fails(&["event", "update", &other, "--start", "2030-03-11T09:00"], 2);
    // Once that occurrence is cancelled, the slot is free.
    env.ok(&["event", "cancel", &id, "--occurrence", "2031-03-03T09:30"]);
    env.ok(&single);
    // --allow-overlap books over an occurrence on purpose.
    let mut forced = single.to_vec();
    forced[5] = "2031-03-10T10:00";
    forced.push("--allow-overlap");
    env.ok(&forced);
}

// ---------------------------------------------------------------------------------------
// explain

#[test]
fn explain_shows_each_attempt_a_retry_a_dead_end_and_the_coming_ticks() {
    let server = SmtpServer::with(SmtpPolicy {
        temp_fail_first: 1,
        ..SmtpPolicy::default()
    });
    let mut env = Env::new();
    env.smtp(&server, "");
    env.at("2030-03-10T09:40:00Z");
    env.user(ANA, &["--tz", "Europe/Paris"]);
    let id = env.json(&[
        "event",
        "add",
        "--title",
        "Call",
        "--start",
        "2030-03-10T10:00:00Z",
        "--participant",
        ANA,
        "--remind",
        "1h",
        "--remind",
        "10m",
    ])["id"]
        .to_string();
    let s = env.tick();
    assert_eq!(s["failed"], 1, "{s}");
    // The retry succeeds.
    tick_at(&mut env, t("2030-03-10T09:45:00Z"));
    assert_eq!(server.wait_for(1).len(), 1);
    let x = explain(&env, &id);
    let notice = &x["notices"][0];
    assert_eq!(notice["kind"], "assigned");
    let attempts = notice["deliveries"][0]["attempts_log"].as_array().unwrap();
    let outcomes: Vec<&str> = attempts.iter().map(|a| a["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["failed", "sent"]);
    assert!(
        attempts[0]["answer"].as_str().unwrap().contains("451"),
        "{attempts:?}"
    );
    assert_eq!(attempts[0]["at"], "2030-03-10T09:40:00Z");
    assert_eq!(attempts[1]["at"], "2030-03-10T09:45:00Z");
    assert_eq!(
        decisions(&x),
        [(
            "2030-03-10T10:00:00Z".into(),
            60,
            "skipped".into(),
            Some("armed_late".into())
        )]
    );
    let upcoming = x["upcoming"].as_array().unwrap();
    assert_eq!(upcoming.len(), 1, "{upcoming:?}");
    assert_eq!(upcoming[0]["at"], "2030-03-10T09:50:00Z");
    assert_eq!(upcoming[0]["action"], "send");
    let text = env.ok(&["explain", &id, "--user", ANA]);
    for needle in [
        "recipient ana@example.org",
        "attempt 1: failed",
        "451",
        "attempt 2: sent",
        "1h before the start at 2030-03-10T10:00:00Z",
        "skipped: its moment had already passed",
        "at 2030-03-10T09:50:00Z: the 10m reminder",
        "will be sent",
    ] {
        assert!(text.contains(needle), "{needle:?} in:\n{text}");
    }
    // The 10-minute reminder meets a server that refuses it for good.
    server.set_policy(SmtpPolicy {
        reject_all: true,
        ..SmtpPolicy::default()
    });
    env.at("2030-03-10T09:50:00Z");
    // A dead delivery is a tick that needs attention (exit 3).
    env.exits(&["check-reminders"], 3);
    let x = explain(&env, &id);
    let reminder = x["notices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "reminder")
        .expect("the reminder notice");
    let delivery = &reminder["deliveries"][0];
    assert_eq!(delivery["status"], "dead", "{delivery}");
    let log = delivery["attempts_log"].as_array().unwrap();
    assert_eq!(log.len(), 1);
    assert!(log[0]["answer"].as_str().unwrap().contains("550"), "{log:?}");
    assert_eq!(x["upcoming"].as_array().unwrap().len(), 0);
    let text = env.ok(&["explain", &id, "--user", ANA]);
    assert!(text.contains("attempt 1: dead"), "{text}");
    assert!(text.contains("no reminder left to decide"), "{text}");
    // Someone who is not a participant: said so, nothing else invented.
    env.user(BOB, &[]);
    let text = env.ok(&["explain", &id, "--user", BOB]);
    assert!(text.contains("not a participant"), "{text}");
    assert!(text.contains("notices (0)"), "{text}");
}

// ---------------------------------------------------------------------------------------
// Rows an app wrote

#[test]
fn a_series_an_app_broke_is_reported_and_stops_no_one() {
    let mut env = env_at("2030-03-09T09:00:00Z");
    let series = [
        "event",
        "add",
        "--title",
        "Weekly",
        "--start",
        "2030-03-11T10:00",
        "--tz",
        "Europe/Paris",
        "--participant",
        ANA,
        "--repeat",
        "FREQ=WEEKLY",
        "--remind",
        "10m",
    ];
    let broken = env.json(&series)["id"].to_string();
    let mut other = series.to_vec();
    other[9] = BOB;
    let fine = env.json(&other)["id"].to_string();
    env.tick();
    env.exec(&format!(
        "UPDATE events SET repeat_rule = 'FREQ=SOMETIMES;BYDAY=XX' WHERE id = {broken}"
    ));
    // A series needs a zone: the database refuses one without.
    assert!(env
        .try_exec(&format!("UPDATE events SET timezone = NULL WHERE id = {fine}"))
        .is_err());
    let s = tick_at(&mut env, t("2030-03-11T08:50:00Z"));
    assert_eq!(s["created"], 1, "Bob's series still reminds: {s}");
    let broken_rows = s["broken_rows"].to_string();
    assert!(
        broken_rows.contains("repeat_rule") && broken_rows.contains(&format!("id {broken}")),
        "{broken_rows}"
    );
    // Support can still read it; changing one occurrence says what is wrong, in one line.
    let shown = env.ok(&["event", "show", &broken]);
    assert!(shown.contains("repeat:    FREQ=SOMETIMES;BYDAY=XX"), "{shown}");
    env.ok(&["explain", &broken, "--user", ANA]);
    let out = env.run(&["event", "list"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Weekly"));
    let err = env.fails(
        &["event", "cancel", &broken, "--occurrence", "2030-03-18T10:00"],
        2,
    );
    assert_one_line_error(&err);
    assert!(err.contains("cannot be used"), "{err}");
    // It can still be cancelled as a whole.
    env.ok(&["event", "cancel", &broken]);
}

// ---------------------------------------------------------------------------------------
// Bad input: one line, a non-zero exit, nothing written

#[test]
fn bad_rules_offsets_and_occurrences_are_refused_in_one_line_writing_nothing() {
    let env = env_at("2030-03-01T09:00:00Z");
    let series = env.json(&[
        "event",
        "add",
        "--title",
        "Weekly",
        "--start",
        "2030-03-04T09:30",
        "--tz",
        "Europe/Paris",
        "--participant",
        ANA,
        "--repeat",
        "FREQ=WEEKLY;COUNT=5",
    ])["id"]
        .to_string();
    let single = env.json(&[
        "event",
        "add",
        "--title",
        "Once",
        "--start",
        "2030-03-20T10:00:00Z",
        "--participant",
        BOB,
    ])["id"]
        .to_string();
    let add = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "event",
            "add",
            "--title",
            "New",
            "--start",
            "2030-03-05T09:30",
            "--tz",
            "Europe/Paris",
            "--participant",
            BOB,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (add(&["--repeat", "FREQ=WEEKLY;BYDAY=XX"]), "not a weekday"),
        (add(&["--repeat", "FREQ=HOURLY"]), "daily or less often"),
        (add(&["--repeat", "FREQ=WEEKLY;COUNT=99999"]), "too large"),
        (add(&["--repeat", "FREQ=WEEKLY;BYDAY=MO"]), "not an occurrence"),
        (
            add(&["--repeat", "DTSTART:20300305T093000\nRRULE:FREQ=DAILY"]),
            "DTSTART",
        ),
        (
            add(&["--repeat", &format!("FREQ=DAILY;{}", "X".repeat(100_000))]),
            "at most 1000",
        ),
        (
            add(&["--repeat", "FREQ=DAILY;COUNT=3\u{1b}[31m"]),
            "control character (\\u{1b})",
        ),
        (add(&["--remind", "5x"]), "5x"),
        (add(&["--remind", "0m"]), "positive"),
        (add(&["--remind", "90s"]), "whole number of minutes"),
        (
            add(&["--remind", "none", "--remind", "10m"]),
            "cannot be combined",
        ),
        (add(&["--remind", "400d"]), "365d"),
        (
            vec![
                "event".into(),
                "cancel".into(),
                series.clone(),
                "--occurrence".into(),
                "2030-03-05T09:30".into(),
            ],
            "no occurrence",
        ),
        (
            vec![
                "event".into(),
                "cancel".into(),
                series.clone(),
                "--occurrence".into(),
                "someday".into(),
            ],
            "someday",
        ),
        (
            vec![
                "event".into(),
                "update".into(),
                series.clone(),
                "--occurrence".into(),
                "2030-04-29T09:30".into(),
                "--start".into(),
                "2030-04-30T09:30".into(),
            ],
            "no occurrence",
        ),
        (
            vec![
                "event".into(),
                "cancel".into(),
                single.clone(),
                "--occurrence".into(),
                "2030-03-20T10:00:00Z".into(),
            ],
            "not a recurring series",
        ),
        (
            vec![
                "event".into(),
                "update".into(),
                series.clone(),
                "--occurrence".into(),
                "2030-03-11T09:30".into(),
            ],
            "--start",
        ),
        (
            vec![
                "event".into(),
                "update".into(),
                series.clone(),
                "--repeat".into(),
                "FREQ=WEEKLY;UNTIL=20200101T000000Z".into(),
            ],
            "UNTIL",
        ),
        (
            vec![
                "event".into(),
                "update".into(),
                single.clone(),
                "--remind=-5m".into(),
            ],
            "-5m",
        ),
        (
            vec!["explain".into(), "999".into(), "--user".into(), ANA.into()],
            "unknown event",
        ),
        (
            vec![
                "explain".into(),
                series.clone(),
                "--user".into(),
                "nobody@example.org".into(),
            ],
            "nobody@example.org",
        ),
    ];
    let before = env.dump();
    for (args, expected) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = env.run(&args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert_one_line_error(&err);
        assert!(
            err.len() < 1000,
            "{args:?}: a short error, not {} bytes",
            err.len()
        );
        assert!(err.contains(expected), "{args:?}: {expected:?} not in {err}");
        assert_eq!(env.dump(), before, "{args:?} wrote something");
    }
}

crate::support::on_postgres!(
    paris_weekly_series_keeps_0930_across_spring_forward,
    new_york_weekly_series_keeps_0930_across_fall_back,
    cancelled_occurrence_never_reminds_and_a_moved_one_reminds_at_its_new_time_only,
    cancelling_a_series_ends_it_and_its_reminders,
    cancelling_the_rest_of_a_series_keeps_the_earlier_occurrences,
    booking_inside_the_lead_time_records_the_missed_reminder_as_armed_late,
    editing_remind_replans_only_the_undecided_and_never_sends_twice,
    remind_none_sends_no_reminder_and_import_takes_remind_per_row,
    open_ended_series_with_ticks_a_year_apart_creates_no_rows_ahead,
    booking_over_an_occurrence_is_refused_until_it_is_cancelled,
    explain_shows_each_attempt_a_retry_a_dead_end_and_the_coming_ticks,
    a_series_an_app_broke_is_reported_and_stops_no_one,
    bad_rules_offsets_and_occurrences_are_refused_in_one_line_writing_nothing,
);
