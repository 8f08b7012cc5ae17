//! Connecting to PostgreSQL, against real servers (`pgcluster`): every `sslmode` as libpq
//! means it, the one-line errors a cron job prints (no database, wrong password, nothing
//! listening, a server that never answers), the session limits, and that no error ever
//! shows the password. Each test returns early when the machine has no PostgreSQL.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use notifyctl::store::postgres::connect::{
    connect, is_lock_timeout, is_retryable, sql_state, ConnectOptions, PgUrl,
};

use crate::pgcluster::{self, PASSWORD_ROLE, PASSWORD_ROLE_PASSWORD, TLS_ONLY_ROLE};

fn opts() -> ConnectOptions {
    ConnectOptions {
        default_user: "postgres".into(),
        ..ConnectOptions::default()
    }
}

fn connect_ok(url: &str) -> postgres::Client {
    connect(url, &opts()).unwrap_or_else(|e| panic!("{url}: {e:#}"))
}

/// The error's whole text, as main prints it; checks it is one line, a user error, and
/// free of the password.
fn connect_err(url: &str, opts: &ConnectOptions) -> String {
    let err = match connect(url, opts) {
        Ok(_) => panic!("{url} should not connect"),
        Err(e) => e,
    };
    let text = format!("{err:#}");
    assert!(!text.contains('\n'), "one line: {text}");
    let url_password = PgUrl::parse(url, "x")
        .ok()
        .and_then(|u| u.password().map(str::to_string));
    for password in url_password.iter().chain(&opts.fallback_password) {
        assert!(!text.contains(password.as_str()), "the password leaked: {text}");
    }
    assert!(
        err.downcast_ref::<notifyctl::error::UserError>().is_some(),
        "a user error (exit 2): {text}"
    );
    assert_eq!(notifyctl::error::exit_code(&err), std::process::ExitCode::from(2));
    text
}

fn with_query(url: &str, param: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{param}")
}

fn uses_tls(client: &mut postgres::Client) -> bool {
    client
        .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
        .expect("pg_stat_ssl")
        .get(0)
}

fn show(client: &mut postgres::Client, setting: &str) -> String {
    client
        .query_one(&format!("SHOW {setting}"), &[])
        .expect("SHOW")
        .get(0)
}

#[test]
fn disable_connects_without_tls_and_sets_the_session_limits() {
    let Some(pg) = pgcluster::cluster() else { return };
    let url = pg.new_database();
    let mut client = connect_ok(&url);
    if pg.is_own() {
        assert!(!uses_tls(&mut client));
    }
    assert_eq!(show(&mut client, "lock_timeout"), "5s");
    assert_eq!(show(&mut client, "statement_timeout"), "30s");
    assert_eq!(show(&mut client, "idle_in_transaction_session_timeout"), "1min");
    assert_eq!(show(&mut client, "TimeZone"), "UTC");
    assert_eq!(show(&mut client, "application_name"), "notifyctl");
}

#[test]
fn lock_timeout_is_the_busy_timeout_and_the_url_names_the_application() {
    let Some(pg) = pgcluster::cluster() else { return };
    let url = with_query(&pg.new_database(), "application_name=tick%20on%20web1");
    let opts = ConnectOptions {
        lock_timeout: Duration::from_millis(1500),
        ..opts()
    };
    let mut client = connect(&url, &opts).expect("connect");
    assert_eq!(show(&mut client, "lock_timeout"), "1500ms");
    assert_eq!(show(&mut client, "application_name"), "tick on web1");
}

#[test]
fn a_lock_wait_that_runs_out_is_busy_exit_4() {
    let Some(pg) = pgcluster::cluster() else { return };
    let url = pg.new_database();
    let mut holder = connect_ok(&url);
    holder.batch_execute("CREATE TABLE t (id int)").expect("create");
    holder
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        .expect("lock");
    let opts = ConnectOptions {
        lock_timeout: Duration::from_millis(200),
        ..opts()
    };
    let mut waiter = connect(&url, &opts).expect("connect");
    let started = Instant::now();
    let err = anyhow::Error::new(waiter.batch_execute("SELECT * FROM t").expect_err("lock timeout"))
        .context("reading t");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(is_lock_timeout(&err), "{err:#}");
    assert!(!is_retryable(&err));
    assert_eq!(notifyctl::error::exit_code(&err), std::process::ExitCode::from(4));
}

#[test]
fn serialization_failures_and_deadlocks_are_retryable() {
    let Some(pg) = pgcluster::cluster() else { return };
    let mut client = connect_ok(&pg.new_database());
    for (code, retryable) in [("40001", true), ("40P01", true), ("23505", false)] {
        let e = client
            .batch_execute(&format!(
                "DO $$ BEGIN RAISE EXCEPTION 'test' USING ERRCODE = '{code}'; END $$"
            ))
            .expect_err("raised");
        let err = anyhow::Error::new(e).context("a transaction");
        assert_eq!(
            sql_state(&err).map(|s| s.code().to_string()),
            Some(code.to_string())
        );
        assert_eq!(is_retryable(&err), retryable, "{code}");
        assert!(!is_lock_timeout(&err));
    }
}

#[test]
fn a_database_that_does_not_exist_says_how_to_create_it() {
    let Some(pg) = pgcluster::cluster() else { return };
    let Some(port) = pg.port() else { return };
    let url = format!("postgres://postgres@127.0.0.1:{port}/nope_db?sslmode=disable");
    let e = connect_err(&url, &opts());
    assert_eq!(
        e,
        format!(
            "database nope_db does not exist on 127.0.0.1:{port}: create it (createdb nope_db) or fix --db"
        )
    );
}

#[test]
fn a_wrong_password_names_the_user_and_never_shows_the_password() {
    let Some(pg) = pgcluster::cluster() else { return };
    let Some(port) = pg.port() else { return };
    let wrong = "Wr0ng-p%40ss";
    let url = format!("postgres://{PASSWORD_ROLE}:{wrong}@127.0.0.1:{port}/postgres?sslmode=disable");
    let e = connect_err(&url, &opts());
    assert_eq!(
        e,
        format!(
            "PostgreSQL at 127.0.0.1:{port} refused the password in the URL for user {PASSWORD_ROLE}: fix the password (or the user)"
        )
    );
    assert!(!e.contains("Wr0ng") && !e.contains(PASSWORD_ROLE_PASSWORD), "{e}");

    // The right one, over SCRAM.
    let right = format!(
        "postgres://{PASSWORD_ROLE}:{PASSWORD_ROLE_PASSWORD}@127.0.0.1:{port}/postgres?sslmode=disable"
    );
    connect_ok(&right);

    // None at all.
    let none = format!("postgres://{PASSWORD_ROLE}@127.0.0.1:{port}/postgres?sslmode=disable");
    let e = connect_err(&none, &opts());
    assert_eq!(
        e,
        format!(
            "PostgreSQL at 127.0.0.1:{port} asks for a password for user {PASSWORD_ROLE}: put it in the URL or in PGPASSWORD"
        )
    );

    // A wrong PGPASSWORD says where the password came from.
    let from_env = ConnectOptions {
        fallback_password: Some("Wr0ng-env".into()),
        ..opts()
    };
    let e = connect_err(&none, &from_env);
    assert!(
        e.contains("refused the password from PGPASSWORD for user notifyctl_pw"),
        "{e}"
    );
    assert!(!e.contains("Wr0ng-env"), "{e}");
}

#[test]
fn a_role_pg_hba_refuses_gets_the_servers_reason() {
    let Some(pg) = pgcluster::cluster() else { return };
    let Some(port) = pg.port() else { return };
    let url = format!("postgres://{TLS_ONLY_ROLE}@127.0.0.1:{port}/postgres?sslmode=disable");
    let e = connect_err(&url, &opts());
    assert!(
        e.starts_with(&format!(
            "PostgreSQL at 127.0.0.1:{port} refused user {TLS_ONLY_ROLE} for database postgres: "
        )) && e.contains("pg_hba.conf rejects connection"),
        "{e}"
    );
}

/// PGPASSWORD is read from the environment, which a test must not change in its own
/// process (other tests run beside it): run the test below in a child process with it.
#[test]
fn pgpassword_is_used_when_the_url_has_none() {
    let Some(pg) = pgcluster::cluster() else { return };
    let Some(port) = pg.port() else { return };
    let url = format!("postgres://{PASSWORD_ROLE}@127.0.0.1:{port}/postgres?sslmode=disable");
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "pg_connect::pgpassword_child",
            "--exact",
            "--ignored",
            "--test-threads=1",
        ])
        .env("PGPASSWORD", PASSWORD_ROLE_PASSWORD)
        .env("NOTIFYCTL_TEST_CHILD_URL", &url)
        .output()
        .expect("run the child test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "run by pgpassword_is_used_when_the_url_has_none, with PGPASSWORD set"]
fn pgpassword_child() {
    // Run on its own (--include-ignored), it has nothing to do.
    let Ok(url) = std::env::var("NOTIFYCTL_TEST_CHILD_URL") else {
        return;
    };
    let opts = ConnectOptions::from_env(Duration::from_secs(5));
    assert_eq!(opts.fallback_password.as_deref(), Some(PASSWORD_ROLE_PASSWORD));
    let mut client = connect(&url, &opts).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(show(&mut client, "session_authorization"), PASSWORD_ROLE);
}

#[test]
fn nothing_listening_fails_at_once() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("postgres://ana:S3cret@127.0.0.1:{port}/app?sslmode=disable");
    let started = Instant::now();
    let e = connect_err(&url, &opts());
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        e,
        format!(
            "cannot connect to PostgreSQL at 127.0.0.1:{port} (connection refused): is the server running?"
        )
    );
}

#[test]
fn a_server_that_never_answers_fails_within_connect_timeout() {
    // Accepts TCP connections, then says nothing: the startup exchange would wait forever.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    for mode in ["disable", "prefer", "require"] {
        let url = format!("postgres://ana:S3cret@127.0.0.1:{port}/app?sslmode={mode}&connect_timeout=1");
        let started = Instant::now();
        let e = connect_err(&url, &opts());
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(3),
            "{mode}: {took:?}"
        );
        assert_eq!(
            e,
            format!(
                "cannot connect to PostgreSQL at 127.0.0.1:{port} within 1s: is the server running (and is it PostgreSQL)?"
            ),
            "{mode}"
        );
    }
}

#[test]
fn a_unix_socket_ignores_sslmode() {
    let Some(pg) = pgcluster::cluster() else { return };
    let (Some(dir), Some(port)) = (pg.socket_dir(), pg.port()) else {
        return;
    };
    let dir = dir.to_str().expect("utf-8").replace('/', "%2F");
    let mut client = connect_ok(&format!(
        "postgres://postgres@{dir}:{port}/postgres?sslmode=require"
    ));
    assert!(!uses_tls(&mut client));
    let query_form = format!(
        "postgres://postgres@/postgres?host={}&port={port}",
        pg.socket_dir().expect("dir").display()
    );
    connect_ok(&query_form);
}

#[test]
fn malformed_urls_are_user_errors_that_hide_the_password() {
    for url in [
        "postgres://ana:S3cret@db:none/app",
        "postgres://ana:S3cret@db/app?sslmode=always",
        "postgres://ana:S3/cret@db/app",
        "postgres://ana:S3cret@db/app?pool=5",
    ] {
        let e = connect_err(url, &opts());
        assert!(
            e.starts_with("invalid PostgreSQL URL postgres://ana:***@db"),
            "{e}"
        );
        assert!(!e.contains("S3"), "{e}");
    }
    let parsed =
        PgUrl::parse("postgresql://ana:S3cret@[::1]:6000/app?sslmode=verify-full", "me").expect("parse");
    assert_eq!(parsed.endpoint(), "[::1]:6000");
    assert_eq!(
        parsed.to_string(),
        "postgresql://ana:***@[::1]:6000/app?sslmode=verify-full"
    );
}

// --- sslmode against a server without TLS (the main cluster) ---

#[test]
fn prefer_falls_back_to_plain_when_the_server_has_no_tls() {
    let Some(pg) = pgcluster::cluster() else { return };
    if !pg.is_own() {
        return;
    }
    let url = pg.new_database().replace("sslmode=disable", "sslmode=prefer");
    let mut client = connect_ok(&url);
    assert!(!uses_tls(&mut client));
}

#[test]
fn require_refuses_a_server_without_tls() {
    let Some(pg) = pgcluster::cluster() else { return };
    let Some(port) = pg.port() else { return };
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres?sslmode=require");
    assert_eq!(
        connect_err(&url, &opts()),
        format!(
            "PostgreSQL at 127.0.0.1:{port} does not offer TLS, which sslmode=require requires: \
             turn on ssl in the server, or use sslmode=prefer or disable"
        )
    );
}

// --- sslmode against a server with TLS (certificate for `localhost` only) ---

fn tls_url(host: &str, query: &str) -> Option<String> {
    let tls = pgcluster::tls_cluster()?;
    let port = tls.cluster.port()?;
    Some(format!("postgres://postgres@{host}:{port}/postgres?{query}"))
}

fn ca() -> String {
    pgcluster::tls_cluster().expect("tls").ca.display().to_string()
}

fn other_ca() -> String {
    pgcluster::tls_cluster()
        .expect("tls")
        .other_ca
        .display()
        .to_string()
}

#[test]
fn verify_full_connects_when_the_ca_and_the_name_match() {
    let Some(url) = tls_url("localhost", "sslmode=verify-full") else {
        return;
    };
    let mut client = connect_ok(&format!("{url}&sslrootcert={}", ca()));
    assert!(uses_tls(&mut client));
}

#[test]
fn verify_full_refuses_a_name_the_certificate_does_not_have() {
    let Some(url) = tls_url("127.0.0.1", "sslmode=verify-full") else {
        return;
    };
    let e = connect_err(&format!("{url}&sslrootcert={}", ca()), &opts());
    assert!(
        e.contains("is not valid for the name 127.0.0.1") && e.contains("sslmode=verify-ca"),
        "{e}"
    );
}

#[test]
fn verify_full_refuses_a_certificate_from_another_ca() {
    let Some(url) = tls_url("localhost", "sslmode=verify-full") else {
        return;
    };
    let other = other_ca();
    let e = connect_err(&format!("{url}&sslrootcert={other}"), &opts());
    assert!(
        e.contains(&format!("is not signed by a CA in sslrootcert {other}")),
        "{e}"
    );
    // Without sslrootcert: the system store, which does not know the test CA either.
    let e = connect_err(&url, &opts());
    assert!(e.contains("is not signed by a CA in the system store"), "{e}");
}

#[test]
fn verify_ca_checks_the_chain_but_not_the_name() {
    let Some(url) = tls_url("127.0.0.1", "sslmode=verify-ca") else {
        return;
    };
    let mut client = connect_ok(&format!("{url}&sslrootcert={}", ca()));
    assert!(uses_tls(&mut client));
    let e = connect_err(&format!("{url}&sslrootcert={}", other_ca()), &opts());
    assert!(e.contains("is not signed by a CA in sslrootcert"), "{e}");
}

#[test]
fn require_encrypts_without_checking_unless_given_a_root_certificate() {
    let Some(url) = tls_url("127.0.0.1", "sslmode=require") else {
        return;
    };
    let mut client = connect_ok(&url);
    assert!(uses_tls(&mut client));
    // libpq: with sslrootcert, require verifies the chain as verify-ca does.
    connect_ok(&format!("{url}&sslrootcert={}", ca()));
    let e = connect_err(&format!("{url}&sslrootcert={}", other_ca()), &opts());
    assert!(e.contains("is not signed by a CA in sslrootcert"), "{e}");
}

#[test]
fn prefer_uses_tls_when_offered_and_disable_never_does() {
    let Some(url) = tls_url("127.0.0.1", "sslmode=prefer") else {
        return;
    };
    assert!(uses_tls(&mut connect_ok(&url)));
    let no_mode = url.replace("?sslmode=prefer", "");
    assert!(uses_tls(&mut connect_ok(&no_mode)), "prefer is the default");
    let disabled = url.replace("sslmode=prefer", "sslmode=disable");
    assert!(!uses_tls(&mut connect_ok(&disabled)));
}

#[test]
fn allow_tries_tls_when_the_server_refuses_plain() {
    let Some(url) = tls_url("127.0.0.1", "sslmode=allow") else {
        return;
    };
    assert!(!uses_tls(&mut connect_ok(&url)), "allow starts without TLS");
    let tls_only = url.replace("postgres@", &format!("{TLS_ONLY_ROLE}@"));
    assert!(uses_tls(&mut connect_ok(&tls_only)));
}

#[test]
fn an_unreadable_sslrootcert_is_a_clear_error() {
    let Some(url) = tls_url("localhost", "sslmode=verify-full") else {
        return;
    };
    let e = connect_err(&format!("{url}&sslrootcert=/nonexistent/ca.pem"), &opts());
    assert!(
        e.starts_with("cannot read sslrootcert /nonexistent/ca.pem: "),
        "{e}"
    );
}
