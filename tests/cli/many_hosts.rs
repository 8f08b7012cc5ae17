//! Many hosts on one PostgreSQL database: ticks started together or killed mid-batch,
//! `init` and bookings racing from several processes, the web app writing its own rows
//! in its own transactions, and the ways a server can be missing or busy. PostgreSQL only
//! (every other end-to-end test runs on it too, through `on_postgres!`); each test returns
//! at once, after one line on stderr, on a machine without it.

use std::collections::HashSet;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use notifyctl::store::{self, ClaimRequest, DeliveryOutcome, Location, OpenMode, OpenOptions};

use crate::pgcluster;
use crate::support::{
    all_arrived_once, dead_port, run_on_postgres, smtp_env, stderr_of, Env, SmtpPolicy, SmtpServer,
};

/// Start `n` processes of `args` at once and wait for all of them.
fn together(env: &Env, n: usize, args: &[&str]) -> Vec<Output> {
    let children: Vec<_> = (0..n)
        .map(|_| {
            env.std_cmd()
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn notifyctl")
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait"))
        .collect()
}

fn count(env: &Env, sql: &str) -> i64 {
    env.pg().query_one(sql, &[]).expect(sql).get(0)
}

/// `pairs` events at 10:00, two participants each (`u0@example.org` ...), imported at
/// 09:00 with their assigned notices.
fn booked_pairs(env: &Env, pairs: usize) {
    let mut users = String::from("email,name\n");
    let mut events = String::new();
    for i in 0..pairs {
        users.push_str(&format!(
            "u{}@example.org,U{}\nu{}@example.org,U{}\n",
            2 * i,
            2 * i,
            2 * i + 1,
            2 * i + 1
        ));
        events.push_str(&format!(
            "{{\"title\":\"S{i}\",\"start\":\"2030-03-10T10:00:00Z\",\"video\":\"none\",\"participants\":[\"u{}@example.org\",\"u{}@example.org\"]}}\n",
            2 * i,
            2 * i + 1
        ));
    }
    std::fs::write(env.path("users.csv"), users).unwrap();
    std::fs::write(env.path("events.jsonl"), events).unwrap();
    env.ok(&["import", "users", "users.csv"]);
    env.ok(&["import", "events", "events.jsonl", "--notify"]);
}

#[test]
fn sixteen_ticks_on_one_due_batch_send_every_email_once() {
    run_on_postgres(|| {
        let server = SmtpServer::start();
        let mut env = smtp_env(&server);
        booked_pairs(&env, 20);
        env.queue_custom(100);
        env.at("2030-03-10T09:30:00Z");
        let mut created = 0;
        for out in together(&env, 16, &["--json", "check-reminders"]) {
            assert!(out.status.success(), "{}", stderr_of(&out));
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            created += v["created"].as_i64().unwrap();
        }
        assert_eq!(created, 40, "each reminder created by exactly one tick");
        let total = 40 + 40 + 100;
        assert_eq!(all_arrived_once(&server, total), 0, "no duplicates");
        assert_eq!(server.settled().len(), total);
        assert_eq!(
            count(&env, "SELECT count(*) FROM deliveries WHERE status = 'sent'"),
            total as i64
        );
        assert_eq!(count(&env, "SELECT count(*) FROM ticks WHERE ok"), 16);
    });
}

#[test]
fn ticks_killed_mid_batch_on_many_hosts_lose_nothing() {
    run_on_postgres(|| {
        let server = SmtpServer::with(SmtpPolicy {
            delay: Duration::from_millis(2),
            ..Default::default()
        });
        let mut env = smtp_env(&server);
        let total = 400;
        env.queue_custom(total);
        let mut kills = 0;
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        for round in 0..40u32 {
            // Each round three minutes on: the claims of killed ticks (2 minutes) lapse.
            env.at(&format!(
                "2030-03-10T{:02}:{:02}:00Z",
                9 + (round * 3) / 60,
                (round * 3) % 60
            ));
            let mut children: Vec<_> = (0..4)
                .map(|_| {
                    env.std_cmd()
                        .arg("check-reminders")
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .unwrap()
                })
                .collect();
            for child in &mut children {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                std::thread::sleep(Duration::from_millis(10 + seed % 60));
                if child.try_wait().unwrap().is_none() {
                    child.kill().unwrap();
                    kills += 1;
                }
                child.wait().unwrap();
            }
            let sent = count(&env, "SELECT count(*) FROM deliveries WHERE status = 'sent'");
            if sent == total as i64 {
                break;
            }
        }
        assert!(kills >= 2, "the test killed ticks mid-batch ({kills})");
        env.at("2030-03-10T12:00:00Z");
        assert_eq!(env.tick()["pending"], 0);
        let dups = all_arrived_once(&server, total);
        // A kill between the server's acceptance and the commit duplicates at most the three
        // messages a connection may have out before their outcomes are committed (README).
        assert!(dups <= 3 * kills, "{dups} duplicates for {kills} kills");
        eprintln!("killed {kills} ticks on 4 hosts; {dups} duplicate emails");
    });
}

#[test]
fn init_from_eight_processes_at_once_creates_one_schema() {
    run_on_postgres(|| {
        let env = Env::bare();
        let outs = together(&env, 8, &["--json", "init"]);
        let mut created = 0;
        for out in &outs {
            assert!(out.status.success(), "{}", stderr_of(out));
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["schema_version"], notifyctl::store::postgres::SCHEMA_VERSION);
            created += i32::from(v["created"] == true);
        }
        assert_eq!(created, 1, "exactly one process created it");
        // Each step applied once.
        assert_eq!(
            count(
                &env,
                "SELECT count(*) - count(DISTINCT version) FROM schema_migrations"
            ),
            0
        );
        assert_eq!(
            count(&env, "SELECT max(version) FROM schema_migrations"),
            notifyctl::store::postgres::SCHEMA_VERSION
        );
        env.user("ana@example.org", &[]);
    });
}

#[test]
fn eight_hosts_booking_overlapping_slots_exactly_one_wins() {
    run_on_postgres(|| {
        let mut env = Env::new();
        env.at("2030-03-01T08:00:00Z");
        env.user("ana@example.org", &[]);
        env.user("bob@example.com", &[]);
        // Eight one-hour slots five minutes apart: each overlaps every other. The two
        // participants come in alternating order, so concurrent bookings also meet as
        // deadlocks, which are run again.
        let children: Vec<_> = (0..8)
            .map(|i| {
                let start = format!("2030-03-10T09:{:02}:00Z", 5 * i);
                let (a, b) = if i % 2 == 0 {
                    ("ana@example.org", "bob@example.com")
                } else {
                    ("bob@example.com", "ana@example.org")
                };
                env.std_cmd()
                    .args(["event", "add", "--title", &format!("try {i}"), "--start", &start])
                    .args(["--participant", a, "--participant", b])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let results: Vec<Output> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let wins = results.iter().filter(|o| o.status.success()).count();
        let errors: Vec<String> = results.iter().map(stderr_of).collect();
        assert_eq!(wins, 1, "{errors:#?}");
        for o in results.iter().filter(|o| !o.status.success()) {
            let err = stderr_of(o);
            assert_eq!(o.status.code(), Some(2), "{err}");
            assert!(err.contains("is already booked from"), "{err}");
            assert_eq!(err.trim().lines().count(), 1, "{err}");
        }
        assert_eq!(env.json(&["event", "list"]).as_array().unwrap().len(), 1);
        assert_eq!(count(&env, "SELECT count(*) FROM participants"), 2);
    });
}

#[test]
fn an_app_insert_that_overlaps_is_refused_by_the_constraint() {
    run_on_postgres(|| {
        let mut env = Env::new();
        env.at("2030-03-01T08:00:00Z");
        env.user("ana@example.org", &[]);
        env.ok(&[
            "event",
            "add",
            "--title",
            "CLI",
            "--start",
            "2030-03-10T09:00:00Z",
            "--participant",
            "1",
        ]);
        let book = |start: &str, end: &str, allow: bool| {
            env.try_exec(&format!(
                "WITH e AS (INSERT INTO events (title, starts_at, ends_at) VALUES ('app', '{start}', '{end}') RETURNING id)
                 INSERT INTO participants (event_id, user_id, allow_overlap) SELECT id, 1, {allow} FROM e"
            ))
        };
        let err = book("2030-03-10T09:30:00Z", "2030-03-10T10:30:00Z", false).expect_err("overlaps");
        assert!(
            err.contains("participants_no_double_booking") && err.contains("23P01"),
            "{err}"
        );
        // Back to back is fine; so is an overlap the app asks for; and the refused
        // statement wrote nothing.
        book("2030-03-10T10:00:00+00:00", "2030-03-10T11:00:00+00:00", false).expect("back to back");
        book("2030-03-10T09:15:00Z", "2030-03-10T09:45:00Z", true).expect("allowed");
        assert_eq!(env.json(&["event", "list"]).as_array().unwrap().len(), 3);
        // Moving an event onto a taken slot is refused too, by SQL as by the CLI.
        let err = env
            .try_exec(
                "UPDATE events SET starts_at = '2030-03-10T09:50:00Z', ends_at = '2030-03-10T10:50:00Z'
                  WHERE title = 'app' AND starts_at = '2030-03-10T10:00:00Z'",
            )
            .expect_err("moved onto the CLI's booking");
        assert!(err.contains("23P01"), "{err}");
        // Cancelling frees the slot for the app.
        env.ok(&["event", "cancel", "1"]);
        book("2030-03-10T09:00:00Z", "2030-03-10T09:30:00Z", false).expect("the slot is free again");
        // The CLI's own refusal is unchanged meanwhile.
        let err = env.fails(
            &[
                "event",
                "add",
                "--title",
                "X",
                "--start",
                "2030-03-10T10:15:00Z",
                "--participant",
                "1",
            ],
            2,
        );
        assert!(err.contains("ana@example.org is already booked"), "{err}");
    });
}

/// The app's booking: a user, an event, a participant and the assigned notice with its
/// email delivery, in one transaction, with the defaults schema.postgres.sql documents.
const APP_BOOKING: &str = "
    BEGIN;
    INSERT INTO users (email, name, timezone, locale) VALUES ('cy@example.org', 'Cy', 'Europe/Paris', 'en');
    INSERT INTO events (title, starts_at, ends_at, timezone)
         VALUES ('App call', '2030-03-10T11:00:00+01:00', '2030-03-10T11:45:00+01:00', 'Europe/Paris');
    INSERT INTO participants (event_id, user_id, role)
         SELECT e.id, u.id, 'mentee' FROM events e, users u
          WHERE e.title = 'App call' AND u.email = 'cy@example.org';
    WITH n AS (INSERT INTO notifications (user_id, kind, event_id, event_sequence, title, body)
               SELECT u.id, 'assigned', e.id, 0, 'New event assigned: App call', 'App call'
                 FROM events e, users u WHERE e.title = 'App call' AND u.email = 'cy@example.org'
               RETURNING id)
    INSERT INTO deliveries (notification_id, channel) SELECT id, 'email' FROM n;
    INSERT INTO events (title, starts_at, ends_at) VALUES ('Quiet call', '2030-03-10T12:00:00Z', '2030-03-10T12:30:00Z');
    INSERT INTO participants (event_id, user_id)
         SELECT e.id, u.id FROM events e, users u WHERE e.title = 'Quiet call' AND u.email = 'cy@example.org';
    COMMIT;";

#[test]
fn an_app_booking_in_its_own_transaction_gets_its_notice_and_its_reminders() {
    run_on_postgres(|| {
        let server = SmtpServer::start();
        let mut env = smtp_env(&server);
        env.exec(APP_BOOKING);
        let shown = env.json(&["event", "show", "1"]);
        assert_eq!(
            shown["starts_at"], "2030-03-10T10:00:00Z",
            "stored in UTC: {shown}"
        );
        // The notice the app wrote goes out with the next tick, rendered like notifyctl's
        // own (with its invitation); the event it wrote no notice for gets none, as on
        // SQLite (the tick creates reminders, not assignment notices).
        let s = env.tick();
        assert_eq!(
            (s["sent"].as_i64(), s["created"].as_i64()),
            (Some(1), Some(0)),
            "{s}"
        );
        let msgs = server.wait_for(1);
        assert_eq!(msgs[0].to, vec!["cy@example.org".to_string()]);
        assert!(
            msgs[0].header("Subject").unwrap().contains("App call"),
            "{:?}",
            msgs[0].header("Subject")
        );
        assert!(
            msgs[0].text().contains("text/calendar"),
            "an invitation is attached"
        );
        // Reminders for both events, as for any event.
        env.at("2030-03-10T09:30:00Z");
        assert_eq!(env.tick()["created"], 1);
        env.at("2030-03-10T11:30:00Z");
        assert_eq!(env.tick()["created"], 1);
        let subjects: Vec<String> = server
            .settled()
            .iter()
            .map(|m| m.header("Subject").unwrap_or_default())
            .collect();
        assert_eq!(subjects.len(), 3, "{subjects:?}");
        let inbox = env.json(&["list", "--user", "cy@example.org"]);
        assert_eq!(inbox.as_array().unwrap().len(), 3, "{inbox}");
    });
}

#[test]
fn a_server_that_is_not_there_or_a_database_that_is_not_fails_in_one_line_quickly() {
    run_on_postgres(|| {
        let env = Env::bare();
        let dead = dead_port();
        let url = format!(
            "postgres://postgres:s3cret-pw@127.0.0.1:{}/bookings?sslmode=disable",
            dead.port
        );
        let started = Instant::now();
        for args in [&["user", "list"][..], &["check-reminders"], &["init"]] {
            let mut all = vec!["--db", url.as_str()];
            all.extend_from_slice(args);
            let err = env.fails(&all, 2);
            assert!(err.contains("cannot connect to PostgreSQL at 127.0.0.1"), "{err}");
            assert!(!err.contains("s3cret-pw"), "the password is never shown: {err}");
            assert_eq!(err.trim().lines().count(), 1, "{err}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        // A server that accepts the connection and never answers: the connect timeout.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "postgres://postgres@127.0.0.1:{}/bookings?connect_timeout=1",
            silent.local_addr().unwrap().port()
        );
        let started = Instant::now();
        let err = env.fails(&["--db", &url, "check-reminders"], 2);
        assert!(err.contains("within 1s"), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
        // A database that does not exist on a live server.
        if let Some(pg) = pgcluster::cluster() {
            let url = pg.database_url("no_such_database");
            let err = env.fails(&["--db", &url, "init"], 2);
            assert!(err.contains("database no_such_database does not exist"), "{err}");
        }
    });
}

#[test]
fn a_statement_held_up_by_the_apps_lock_exits_4() {
    run_on_postgres(|| {
        let mut env = Env::new();
        env.config("[database]\nbusy_timeout = \"1s\"\n");
        env.user("ana@example.org", &[]);
        let before = env.dump();
        // The web app holds ana's row in an open transaction.
        let mut app = env.pg();
        app.batch_execute("BEGIN; SELECT * FROM users WHERE id = 1 FOR UPDATE")
            .unwrap();
        let started = Instant::now();
        let err = env.fails(&["user", "update", "1", "--name", "Ana M."], 4);
        assert!(
            err.contains("locked by another process") && err.contains("nothing was changed"),
            "{err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        app.batch_execute("ROLLBACK").unwrap();
        assert_eq!(env.dump(), before);
        env.ok(&["user", "update", "1", "--name", "Ana M."]);
    });
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The outbox's fencing, at the store: a tick whose claim lapsed and was taken over
/// records nothing, and the new owner's outcome stands.
#[test]
fn a_claim_taken_over_cannot_be_recorded_by_its_old_owner() {
    run_on_postgres(|| {
        let env = Env::new();
        env.user("ana@example.org", &[]);
        env.queue_custom(3);
        let location = Location::parse(env.pg_url.as_deref().unwrap());
        let options = OpenOptions {
            mode: OpenMode::Existing,
            busy_timeout: Duration::from_secs(5),
        };
        let mut old = store::open(&location, options).unwrap();
        let mut new = store::open(&location, options).unwrap();
        let t0 = at("2030-03-10T09:00:00Z");
        let claim = |owner: &'static str, now: DateTime<Utc>| ClaimRequest {
            owner,
            now,
            until: now + TimeDelta::minutes(2),
            limit: 10,
            skip_channels: &[],
        };
        let ids = store::write(&mut *old, |ops| ops.claim_due(&claim("tick-1-100", t0))).unwrap();
        assert_eq!(ids.len(), 3);
        // Before the lapse nobody else gets them; after it, the new tick does.
        let none = store::write(&mut *new, |ops| {
            ops.claim_due(&claim("tick-2-200", t0 + TimeDelta::minutes(1)))
        })
        .unwrap();
        assert!(none.is_empty());
        let taken = store::write(&mut *new, |ops| {
            ops.claim_due(&claim("tick-2-200", t0 + TimeDelta::minutes(3)))
        })
        .unwrap();
        assert_eq!(taken, ids);
        let sent = DeliveryOutcome::Sent {
            message_id: None,
            response: "250 ok".into(),
        };
        let later = t0 + TimeDelta::minutes(4);
        assert!(store::write(&mut *new, |ops| ops.record_outcome(
            ids[0],
            "tick-2-200",
            &sent,
            later
        ))
        .unwrap());
        let failed = DeliveryOutcome::Retry {
            error: "late answer".into(),
            next_attempt_at: later,
        };
        for id in &ids {
            assert!(!store::write(&mut *old, |ops| ops.record_outcome(
                *id,
                "tick-1-100",
                &failed,
                later
            ))
            .unwrap());
        }
        assert_eq!(
            count(&env, "SELECT count(*) FROM deliveries WHERE status = 'sent'"),
            1
        );
        assert_eq!(
            count(
                &env,
                "SELECT count(*) FROM deliveries WHERE claimed_by = 'tick-2-200'"
            ),
            2
        );
    });
}

/// Claims from eight sessions at once never exceed their limit and never share a row.
#[test]
fn concurrent_claims_respect_the_limit_and_never_overlap() {
    run_on_postgres(|| {
        let env = Env::new();
        env.user("ana@example.org", &[]);
        env.queue_custom(200);
        let url = env.pg_url.clone().unwrap();
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let url = url.clone();
                std::thread::spawn(move || {
                    let options = OpenOptions {
                        mode: OpenMode::Existing,
                        busy_timeout: Duration::from_secs(5),
                    };
                    let mut s = store::open(&Location::parse(&url), options).unwrap();
                    let owner = format!("tick-{i}-0");
                    let now = at("2030-03-10T09:00:00Z");
                    let mut mine = Vec::new();
                    loop {
                        let request = ClaimRequest {
                            owner: &owner,
                            now,
                            until: now + TimeDelta::minutes(2),
                            limit: 7,
                            skip_channels: &[],
                        };
                        let ids = store::write(&mut *s, |ops| ops.claim_due(&request)).unwrap();
                        assert!(ids.len() <= 7, "{} claimed at once", ids.len());
                        if ids.is_empty() {
                            return mine;
                        }
                        mine.extend(ids);
                    }
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in threads {
            all.extend(t.join().unwrap());
        }
        let unique: HashSet<i64> = all.iter().copied().collect();
        assert_eq!(all.len(), 200, "every delivery claimed once");
        assert_eq!(unique.len(), 200);
    });
}

/// Two hosts whose transactions lock the same rows in opposite orders deadlock; the one
/// PostgreSQL picks as the victim runs again (its closure a second time) and both commit.
#[test]
fn a_deadlocked_transaction_runs_again_and_both_commit() {
    run_on_postgres(|| {
        let env = Env::new();
        env.user("ana@example.org", &[]);
        env.user("bob@example.com", &[]);
        let url = env.pg_url.clone().unwrap();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let threads: Vec<_> = [(1i64, 2i64), (2, 1)]
            .into_iter()
            .map(|(first, second)| {
                let (url, barrier) = (url.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let options = OpenOptions {
                        mode: OpenMode::Existing,
                        busy_timeout: Duration::from_secs(10),
                    };
                    let mut s = store::open(&Location::parse(&url), options).unwrap();
                    let mut runs = 0;
                    store::write(&mut *s, |ops| {
                        runs += 1;
                        let rename = |name: &str| store::UserChanges {
                            name: Some(name.to_string()),
                            ..Default::default()
                        };
                        ops.update_user(first, &rename(&format!("by {first}")))?;
                        if runs == 1 {
                            barrier.wait();
                        }
                        ops.update_user(second, &rename(&format!("by {first}")))
                    })
                    .unwrap();
                    runs
                })
            })
            .collect();
        let runs: Vec<i32> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(runs.iter().sum::<i32>(), 3, "one of them ran twice: {runs:?}");
        // The one that ran again committed last: both rows carry its name.
        let names: Vec<String> = env
            .pg()
            .query("SELECT name FROM users ORDER BY id", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(names[0], names[1], "{names:?}");
    });
}

/// A tick never waits for a decision another session is making (another host's tick in
/// the middle of its transaction): it leaves that one to it and goes on.
#[test]
fn a_tick_leaves_a_candidate_another_session_is_deciding_and_never_waits() {
    run_on_postgres(|| {
        let mut env = Env::new();
        env.config("[database]\nbusy_timeout = \"10s\"\n");
        env.at("2030-03-09T09:00:00Z");
        env.user("ana@example.org", &[]);
        env.user("bob@example.com", &[]);
        env.ok(&[
            "event",
            "add",
            "--title",
            "Call",
            "--start",
            "2030-03-10T10:00:00Z",
            "--participant",
            "1",
            "--participant",
            "2",
        ]);
        let mut other = env.pg();
        other
            .batch_execute("BEGIN; SELECT * FROM participants WHERE user_id = 1 FOR NO KEY UPDATE")
            .unwrap();
        env.at("2030-03-10T09:30:00Z");
        let started = Instant::now();
        let s = env.tick();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "it did not wait for the lock: {:?}",
            started.elapsed()
        );
        assert_eq!(s["created"], 1, "bob's; ana's is the other session's: {s}");
        // That session went away without deciding: the next tick does.
        other.batch_execute("ROLLBACK").unwrap();
        env.at("2030-03-10T09:31:00Z");
        assert_eq!(env.tick()["created"], 1);
        assert_eq!(env.tick()["created"], 0);
    });
}
