//! Test support: a temp environment that runs the real binary on either backend (a SQLite
//! file, or a fresh database of the PostgreSQL test cluster), a real SMTP server on
//! 127.0.0.1 (the `mailin` protocol crate behind a small accept loop, so tests can make
//! it fail, stall or drop connections), and a real HTTP receiver (`tiny_http`).
//!
//! Every test file keeps its tests as plain `#[test] fn`s (the SQLite variant) and lists
//! at its end, in `on_postgres!(...)`, those that run on PostgreSQL too; what the SQL of
//! a test needs, `Env::exec` / `Env::dump` / `Env::lock_writes` do on both.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use assert_cmd::Command;
use mailin::{Action, Handler, Response, SessionBuilder};
use serde_json::Value;

/// The database a test's commands use: SQLite unless the test runs through
/// [`run_on_postgres`] (the `on_postgres!` list at the end of each test file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

thread_local! {
    // libtest runs each test on its own thread: the choice is per test.
    static BACKEND: std::cell::Cell<Backend> = const { std::cell::Cell::new(Backend::Sqlite) };
}

/// Run a test against a fresh PostgreSQL database of the test cluster (`pgcluster`), or
/// return at once when the machine has no PostgreSQL (`pgcluster` says so on stderr, once).
pub fn run_on_postgres(test: fn()) {
    if crate::pgcluster::cluster().is_none() {
        return;
    }
    BACKEND.with(|b| b.set(Backend::Postgres));
    test();
}

/// The backend of the running test.
pub fn backend() -> Backend {
    BACKEND.with(|b| b.get())
}

/// Generates, for the listed tests of a file, a `postgres` module whose tests run the same
/// functions against PostgreSQL: `on_postgres!(a, b)` gives `postgres::a` and `postgres::b`.
/// A test left out of the list is SQLite-only; each file says which and why.
/// An entry may carry attributes (`#[cfg(unix)] name`).
macro_rules! on_postgres {
    ($($(#[$attr:meta])* $test:ident),+ $(,)?) => {
        /// The same tests on PostgreSQL (skipped, with a line on stderr, without it).
        mod postgres {
            $(
                #[test]
                $(#[$attr])*
                fn $test() {
                    $crate::support::run_on_postgres(super::$test);
                }
            )+
        }
    };
}
pub(crate) use on_postgres;

/// One test's world: a temp directory with a database (a SQLite file there, or a fresh
/// PostgreSQL database), an optional config, a clock.
pub struct Env {
    pub dir: tempfile::TempDir,
    /// The SQLite file (on PostgreSQL: unused, never created).
    pub db: PathBuf,
    /// The PostgreSQL database's URL, when the test runs on PostgreSQL.
    pub pg_url: Option<String>,
    pub config: Option<PathBuf>,
    now: Option<String>,
    envs: Vec<(String, String)>,
}

/// A test's PostgreSQL database goes with it (`WITH (FORCE)`: a killed tick's session
/// may linger), so a long run, or one against NOTIFYCTL_TEST_PG_URL, leaves nothing behind.
impl Drop for Env {
    fn drop(&mut self) {
        let Some(name) = self.pg_url.as_deref().and_then(database_name) else {
            return;
        };
        if let Some(pg) = crate::pgcluster::cluster() {
            let _ = pg
                .admin()
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// The database a test URL names (`.../NAME?...`), if it is one the tests made.
fn database_name(url: &str) -> Option<String> {
    let path = url.split('?').next()?;
    let name = path.rsplit('/').next()?;
    name.starts_with("notifyctl_test_").then(|| name.to_string())
}

impl Env {
    /// A fresh, initialised database and no config (the embedded defaults).
    pub fn new() -> Env {
        let env = Env::bare();
        env.ok(&["init"]);
        env
    }

    /// No database yet (on PostgreSQL: an empty database, without notifyctl's schema).
    pub fn bare() -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("notify.db");
        let pg_url = match backend() {
            Backend::Sqlite => None,
            Backend::Postgres => Some(
                crate::pgcluster::cluster()
                    .expect("run_on_postgres checked for a cluster")
                    .new_database(),
            ),
        };
        Env {
            dir,
            db,
            pg_url,
            config: None,
            now: None,
            envs: Vec::new(),
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.pg_url.is_some()
    }

    /// What `--db` / `NOTIFYCTL_DB` say: the file, or the URL.
    pub fn db_arg(&self) -> String {
        match &self.pg_url {
            Some(url) => url.clone(),
            None => self.db.display().to_string(),
        }
    }

    /// Whether the database exists: the SQLite file, or notifyctl's schema.
    pub fn exists(&self) -> bool {
        match &self.pg_url {
            None => self.db.exists(),
            Some(_) => self
                .pg()
                .query_one(
                    "SELECT to_regclass('notifyctl.schema_migrations') IS NOT NULL",
                    &[],
                )
                .expect("to_regclass")
                .get(0),
        }
    }

    /// Make the database vanish for the commands that follow (they fail: "... does not
    /// exist"): the SQLite file is moved away; on PostgreSQL the schema is renamed.
    pub fn hide_database(&self) {
        match &self.pg_url {
            None => std::fs::rename(&self.db, self.path("hidden.db")).expect("moving the database away"),
            Some(_) => self.exec("ALTER SCHEMA notifyctl RENAME TO notifyctl_hidden"),
        }
    }

    /// Undo [`Env::hide_database`].
    pub fn restore_database(&self) {
        match &self.pg_url {
            None => std::fs::rename(self.path("hidden.db"), &self.db).expect("moving the database back"),
            Some(_) => self.exec("ALTER SCHEMA notifyctl_hidden RENAME TO notifyctl"),
        }
    }

    /// Set the clock for the commands that follow (RFC 3339).
    pub fn at(&mut self, now: &str) -> &mut Env {
        self.now = Some(now.to_string());
        self
    }

    pub fn env(&mut self, key: &str, value: &str) -> &mut Env {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Write a config file (TOML) and use it from now on.
    pub fn config(&mut self, toml: &str) -> &mut Env {
        let path = self.dir.path().join("config.toml");
        std::fs::write(&path, toml).expect("write config");
        self.config = Some(path);
        self
    }

    /// Use an SMTP server on 127.0.0.1 for email, with no TLS.
    pub fn smtp(&mut self, server: &SmtpServer, extra: &str) -> &mut Env {
        self.config(&format!(
            "[email]\ntransport = \"smtp\"\n{extra}\n[email.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\ntimeout = \"5s\"\n",
            server.port
        ))
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::from_std(self.std_cmd());
        c.timeout(Duration::from_secs(120));
        c
    }

    /// The same command as `cmd`, for tests that spawn and kill processes.
    pub fn std_cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("notifyctl"));
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("NOTIFYCTL_DB", self.db_arg())
            .current_dir(self.dir.path());
        if let Some(cfg) = &self.config {
            c.env("NOTIFYCTL_CONFIG", cfg);
        }
        if let Some(now) = &self.now {
            c.env("NOTIFYCTL_NOW", now);
        }
        for (k, v) in &self.envs {
            c.env(k, v);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run notifyctl")
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "notifyctl {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Run and require exit `code` (a report may be on stdout); returns (stdout, stderr).
    pub fn exits(&self, args: &[&str], code: i32) -> (String, String) {
        let out = self.run(args);
        let (o, e) = (stdout_of(&out), stderr_of(&out));
        assert_eq!(
            out.status.code(),
            Some(code),
            "notifyctl {args:?} should exit {code}:\nstdout: {o}\nstderr: {e}"
        );
        (o, e)
    }

    /// Run with --json and parse stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed invalid JSON ({e}): {out}"))
    }

    /// Run, require failure with `code`, nothing on stdout; returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(code),
            "notifyctl {args:?} should exit {code}:\nstdout: {}\nstderr: {stderr}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            out.stdout.is_empty(),
            "errors must not go to stdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        stderr
    }

    pub fn user(&self, email: &str, extra: &[&str]) -> i64 {
        let mut args = vec![
            "user",
            "add",
            "--email",
            email,
            "--name",
            email.split('@').next().unwrap(),
        ];
        args.extend_from_slice(extra);
        self.json(&args)["id"].as_i64().expect("user id")
    }

    pub fn tick(&self) -> Value {
        self.json(&["check-reminders"])
    }

    /// A copy of the database's state for "nothing was written" checks.
    pub fn dump(&self) -> String {
        if self.is_postgres() {
            return self.pg_dump();
        }
        let conn = rusqlite::Connection::open(&self.db).expect("open db");
        let mut out = String::new();
        for table in TABLES {
            let mut stmt = conn
                .prepare(&format!("SELECT * FROM {table} ORDER BY 1"))
                .unwrap();
            let n = stmt.column_count();
            let rows = stmt
                .query_map([], |r| {
                    let mut s = String::new();
                    for i in 0..n {
                        let v: rusqlite::types::Value = r.get(i)?;
                        s.push_str(&format!("{v:?}|"));
                    }
                    Ok(s)
                })
                .unwrap();
            for r in rows {
                out.push_str(&format!("{table}: {}\n", r.unwrap()));
            }
        }
        out
    }

    /// Every row as its text form, in a stable order. (Identity sequences are left out:
    /// they are not transactional, as SQLite's next rowid is not part of a dump either.)
    fn pg_dump(&self) -> String {
        let mut client = self.pg();
        let mut out = String::new();
        for table in TABLES {
            for row in client
                .query(&format!("SELECT t::text FROM {table} t ORDER BY 1"), &[])
                .unwrap_or_else(|e| panic!("dump {table}: {e:?}"))
            {
                out.push_str(&format!("{table}: {}\n", row.get::<_, String>(0)));
            }
        }
        out
    }

    /// The one number a query gives (`SELECT count(*) ...`), on either backend.
    pub fn count(&self, sql: &str) -> i64 {
        match &self.pg_url {
            Some(_) => self
                .pg()
                .query_one(sql, &[])
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .get(0),
            None => self
                .sql()
                .query_row(sql, [], |r| r.get(0))
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
        }
    }

    /// Run SQL statements (no results) the way a web app would, on either backend. Write
    /// instants as RFC 3339 literals ('2030-03-10T09:00:00Z'): both read them.
    pub fn exec(&self, sql: &str) {
        if let Err(e) = self.try_exec(sql) {
            panic!("{sql}: {e}");
        }
    }

    /// [`Env::exec`], returning the database's error instead of failing the test.
    pub fn try_exec(&self, sql: &str) -> Result<(), String> {
        match &self.pg_url {
            Some(_) => self.pg().batch_execute(sql).map_err(|e| match e.as_db_error() {
                Some(db) => format!("{} ({})", db.message(), db.code().code()),
                None => e.to_string(),
            }),
            None => self.sql().execute_batch(sql).map_err(|e| e.to_string()),
        }
    }

    /// A connection to the test's PostgreSQL database, with `search_path` on notifyctl's
    /// schema so that the SQL of the tests reads the same on both backends.
    pub fn pg(&self) -> postgres::Client {
        let url = self.pg_url.as_deref().expect("a PostgreSQL test");
        let opts = notifyctl::store::postgres::connect::ConnectOptions::from_env(Duration::from_secs(10));
        let mut client = notifyctl::store::postgres::connect::connect(url, &opts)
            .unwrap_or_else(|e| panic!("connecting to {url}: {e:#}"));
        client
            .batch_execute("SET search_path = notifyctl, public")
            .expect("search_path");
        client
    }

    /// Take the database's write lock, as another writer holding a transaction open would:
    /// SQLite's `BEGIN IMMEDIATE`; on PostgreSQL, every notifyctl table locked against
    /// writes (reads go on). Released when the value is dropped.
    pub fn lock_writes(&self) -> WriteLock {
        match &self.pg_url {
            Some(_) => {
                let mut client = self.pg();
                client
                    .batch_execute(&format!(
                        "BEGIN; LOCK TABLE {} IN EXCLUSIVE MODE",
                        TABLES.join(", ")
                    ))
                    .expect("lock tables");
                WriteLock::Postgres(client)
            }
            None => {
                let conn = self.sql();
                conn.execute_batch("BEGIN IMMEDIATE; UPDATE users SET name = name;")
                    .expect("begin immediate");
                WriteLock::Sqlite(conn)
            }
        }
    }

    /// `n` custom notices for user 1 with their email deliveries, all due at
    /// 2030-03-10T09:00Z, written directly as a web app would (a large batch, quickly).
    pub fn queue_custom(&self, n: usize) {
        if self.is_postgres() {
            self.exec(&format!(
                "WITH n AS (INSERT INTO notifications (user_id, kind, title, body, created_at)
                            SELECT 1, 'custom', 'bulk ' || i, 'b', '2030-03-10T09:00:00Z'
                              FROM generate_series(0, {n} - 1) AS i ORDER BY i
                            RETURNING id)
                 INSERT INTO deliveries (notification_id, channel, next_attempt_at, created_at, updated_at)
                 SELECT id, 'email', '2030-03-10T09:00:00Z', '2030-03-10T09:00:00Z', '2030-03-10T09:00:00Z'
                   FROM n"
            ));
            return;
        }
        let conn = self.sql();
        conn.execute_batch("BEGIN").unwrap();
        for i in 0..n {
            conn.execute(
                "INSERT INTO notifications (user_id, kind, title, body, created_at) VALUES (1, 'custom', ?1, 'b', '2030-03-10T09:00:00Z')",
                [format!("bulk {i}")],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO deliveries (notification_id, channel, next_attempt_at, created_at, updated_at)
                 VALUES (last_insert_rowid(), 'email', '2030-03-10T09:00:00Z', '2030-03-10T09:00:00Z', '2030-03-10T09:00:00Z')",
                [],
            )
            .unwrap();
        }
        conn.execute_batch("COMMIT").unwrap();
    }

    /// A connection without the schema's guards on instants, to write rows as an app
    /// did before they existed (legacy broken rows). SQLite only.
    pub fn sql_unguarded(&self) -> rusqlite::Connection {
        let conn = self.sql();
        for t in ["users", "events", "participants"] {
            for w in ["insert", "update"] {
                conn.execute_batch(&format!("DROP TRIGGER IF EXISTS {t}_instants_{w}"))
                    .unwrap();
            }
        }
        conn
    }

    /// A SQLite connection, for the tests that reach into SQLite itself (PRAGMAs, blobs,
    /// its triggers): those are SQLite-only.
    pub fn sql(&self) -> rusqlite::Connection {
        assert!(
            !self.is_postgres(),
            "Env::sql is SQLite's: use Env::exec or Env::pg"
        );
        let conn = rusqlite::Connection::open(&self.db).expect("open db");
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn
    }

    pub fn eml_files(&self) -> Vec<PathBuf> {
        let dir = self.dir.path().join("outbox");
        let mut v: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .collect(),
            Err(_) => Vec::new(),
        };
        v.sort();
        v
    }
}

/// notifyctl's tables, in the order `dump` shows them.
const TABLES: [&str; 11] = [
    "users",
    "events",
    "event_exceptions",
    "participants",
    "notifications",
    "deliveries",
    "delivery_attempts",
    "reminders",
    "ticks",
    "preferences",
    "agenda_runs",
];

/// Another writer's open transaction (see [`Env::lock_writes`]); rolled back on drop.
pub enum WriteLock {
    Sqlite(rusqlite::Connection),
    Postgres(postgres::Client),
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        let _ = match self {
            WriteLock::Sqlite(conn) => conn.execute_batch("ROLLBACK").map_err(|e| e.to_string()),
            WriteLock::Postgres(client) => client.batch_execute("ROLLBACK").map_err(|e| e.to_string()),
        };
    }
}

pub fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

// ---------------------------------------------------------------------------------
// SMTP

/// A message the server accepted.
#[derive(Debug, Clone)]
pub struct Received {
    pub to: Vec<String>,
    pub data: Vec<u8>,
}

impl Received {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        let msg = mail_parser::MessageParser::default().parse(&self.data)?;
        msg.header_raw(name).map(|s| s.trim().to_string())
    }

    pub fn message_id(&self) -> String {
        self.header("Message-ID").expect("Message-ID header")
    }
}

/// How the server answers. Counters are over DATA attempts (1-based).
#[derive(Debug, Clone, Default)]
pub struct SmtpPolicy {
    /// Answer 451 to the first N messages.
    pub temp_fail_first: usize,
    /// Answer 550 to every message.
    pub reject_all: bool,
    /// Answer 451 to every Nth message.
    pub temp_fail_every: usize,
    /// Close the connection in the middle of every Nth message.
    pub drop_every: usize,
    /// Wait this long before answering each message.
    pub delay: Duration,
    /// Require AUTH PLAIN/LOGIN with these credentials.
    pub auth: Option<(String, String)>,
    /// Never send the greeting (the connection just hangs).
    pub silent: bool,
    /// Write every reply one byte at a time, pausing this long between bytes.
    pub trickle: Duration,
}

#[derive(Default)]
struct SmtpState {
    policy: SmtpPolicy,
    accepted: Vec<Received>,
    attempts: usize,
    connections: usize,
    /// Connections still open (a client that exited has closed its own).
    open: usize,
}

/// The mailin session handles the protocol; the decision on each message is taken in the
/// connection loop (see `serve_connection`), because mailin stays in its DATA state after
/// an error answer to the final dot and would then swallow the client's next command.
#[derive(Clone)]
struct SmtpHandler {
    state: Arc<Mutex<SmtpState>>,
    to: Vec<String>,
    data: Vec<u8>,
    drop_now: Arc<Mutex<bool>>,
    ended: Arc<Mutex<Option<(usize, Received)>>>,
    attempt: usize,
}

impl Handler for SmtpHandler {
    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.to = to.to_vec();
        self.data.clear();
        let mut s = self.state.lock().unwrap();
        s.attempts += 1;
        self.attempt = s.attempts;
        mailin::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        let p = self.state.lock().unwrap().policy.clone();
        if p.drop_every > 0 && self.attempt % p.drop_every == 0 && self.data.len() > 200 {
            *self.drop_now.lock().unwrap() = true;
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let received = Received {
            to: self.to.clone(),
            data: self.data.clone(),
        };
        *self.ended.lock().unwrap() = Some((self.attempt, received));
        mailin::response::OK
    }

    fn auth_plain(&mut self, _authz: &str, user: &str, password: &str) -> Response {
        self.check_auth(user, password)
    }

    fn auth_login(&mut self, user: &str, password: &str) -> Response {
        self.check_auth(user, password)
    }
}

/// The answer to a complete message, by the policy; accepted ones are recorded.
fn decide(state: &Arc<Mutex<SmtpState>>, attempt: usize, received: Received) -> Response {
    let p = state.lock().unwrap().policy.clone();
    if !p.delay.is_zero() {
        thread::sleep(p.delay);
    }
    if p.reject_all {
        return Response::custom(550, "5.1.1 Mailbox unavailable".into());
    }
    if attempt <= p.temp_fail_first || (p.temp_fail_every > 0 && attempt % p.temp_fail_every == 0) {
        return Response::custom(451, "4.3.0 Try again later".into());
    }
    state.lock().unwrap().accepted.push(received);
    Response::custom(250, format!("2.0.0 Ok: queued as test-{attempt}"))
}

impl SmtpHandler {
    fn check_auth(&self, user: &str, password: &str) -> Response {
        match &self.state.lock().unwrap().policy.auth {
            Some((u, p)) if u == user && p == password => mailin::response::AUTH_OK,
            _ => mailin::response::INVALID_CREDENTIALS,
        }
    }
}

pub struct SmtpServer {
    pub port: u16,
    state: Arc<Mutex<SmtpState>>,
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        SmtpServer::with(SmtpPolicy::default())
    }

    pub fn with(policy: SmtpPolicy) -> SmtpServer {
        SmtpServer::listen(TcpListener::bind("127.0.0.1:0").expect("bind smtp"), policy)
    }

    /// Start on a given port (a server that comes back after being down).
    /// Once a reserved port is released, another test's outgoing connection (the
    /// PostgreSQL variants open many) may hold it for a moment: a few tries.
    pub fn start_on(port: u16) -> SmtpServer {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(listener) => break listener,
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries < 50 => {
                    tries += 1;
                    thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("bind smtp port {port}: {e}"),
            }
        };
        SmtpServer::listen(listener, SmtpPolicy::default())
    }

    fn listen(listener: TcpListener, policy: SmtpPolicy) -> SmtpServer {
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(SmtpState {
            policy,
            ..Default::default()
        }));
        let shared = state.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                thread::spawn(move || serve_connection(stream, state));
            }
        });
        SmtpServer { port, state }
    }

    pub fn set_policy(&self, policy: SmtpPolicy) {
        self.state.lock().unwrap().policy = policy;
    }

    pub fn messages(&self) -> Vec<Received> {
        self.state.lock().unwrap().accepted.clone()
    }

    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }

    pub fn attempts(&self) -> usize {
        self.state.lock().unwrap().attempts
    }

    /// Wait until `n` messages arrived (the client may still be closing).
    pub fn wait_for(&self, n: usize) -> Vec<Received> {
        wait_until(Duration::from_secs(10), || self.messages().len() >= n);
        self.messages()
    }

    /// The messages once every client has hung up: when the clients have exited, nothing
    /// more can arrive, so a count taken now is final (no sleep-and-hope).
    pub fn settled(&self) -> Vec<Received> {
        let idle = wait_until(Duration::from_secs(10), || self.state.lock().unwrap().open == 0);
        assert!(idle, "SMTP clients still connected after 10 s");
        self.messages()
    }
}

/// The server's replies: buffered and sent in one write each (no Nagle stalls), or one
/// byte at a time with a pause when the policy says to trickle.
struct Replies {
    out: TcpStream,
    buf: Vec<u8>,
    trickle: Duration,
}

impl Write for Replies {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let bytes = std::mem::take(&mut self.buf);
        if self.trickle.is_zero() {
            return self.out.write_all(&bytes);
        }
        for b in bytes {
            self.out.write_all(&[b])?;
            thread::sleep(self.trickle);
        }
        Ok(())
    }
}

/// Counts a connection as open until its handler returns, however it returns.
struct OpenGuard(Arc<Mutex<SmtpState>>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        if let Ok(mut s) = self.0.lock() {
            s.open -= 1;
        }
    }
}

fn serve_connection(stream: TcpStream, state: Arc<Mutex<SmtpState>>) {
    let auth = {
        let mut s = state.lock().unwrap();
        s.connections += 1;
        s.open += 1;
        s.policy.auth.is_some()
    };
    let _open = OpenGuard(state.clone());
    let mut builder = SessionBuilder::new("test.smtp.local");
    if auth {
        builder
            .enable_auth(mailin::AuthMechanism::Plain)
            .enable_auth(mailin::AuthMechanism::Login);
        builder.insecure_enable_plaintext_auth();
    }
    let drop_now = Arc::new(Mutex::new(false));
    let ended = Arc::new(Mutex::new(None));
    let handler = SmtpHandler {
        state: state.clone(),
        to: Vec::new(),
        data: Vec::new(),
        drop_now: drop_now.clone(),
        ended: ended.clone(),
        attempt: 0,
    };
    let mut session = builder.build(stream.peer_addr().unwrap().ip(), handler);
    // Answers go out in one write each: small writes plus delayed ACKs would add
    // 40 ms stalls per command and make the server, not the client, the bottleneck.
    stream.set_nodelay(true).ok();
    let (silent, trickle) = {
        let s = state.lock().unwrap();
        (s.policy.silent, s.policy.trickle)
    };
    let mut writer = Replies {
        out: stream.try_clone().unwrap(),
        buf: Vec::new(),
        trickle,
    };
    let mut reader = BufReader::new(stream);
    if silent {
        // Hold the connection open, saying nothing, until the client gives up.
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut reader, &mut sink);
        return;
    }
    if session
        .greeting()
        .write_to(&mut writer)
        .and_then(|_| writer.flush())
        .is_err()
    {
        return;
    }
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut res = session.process(&line);
        if let Some((attempt, received)) = ended.lock().unwrap().take() {
            res = decide(&state, attempt, received);
        }
        if *drop_now.lock().unwrap() {
            let _ = writer.out.shutdown(std::net::Shutdown::Both);
            return;
        }
        match res.action {
            Action::Reply => {
                if res.write_to(&mut writer).and_then(|_| writer.flush()).is_err() {
                    return;
                }
            }
            Action::Close | Action::UpgradeTls => {
                let _ = res.write_to(&mut writer);
                let _ = writer.flush();
                return;
            }
            Action::NoReply => {}
        }
    }
}

/// A port with nothing listening on it, reserved for the test while the value lives:
/// the socket is bound but never listens, so connections are refused and no other test
/// can take the port. `release` frees it for a server that "comes back".
pub struct DeadPort {
    pub port: u16,
    socket: Option<socket2::Socket>,
}

impl DeadPort {
    pub fn release(&mut self) {
        self.socket = None;
    }
}

pub fn dead_port() -> DeadPort {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into())
        .unwrap();
    let port = socket.local_addr().unwrap().as_socket().unwrap().port();
    DeadPort {
        port,
        socket: Some(socket),
    }
}

/// Poll `cond` until it holds or `limit` passes; whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------
// HTTP

#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP server on 127.0.0.1 that records requests and answers from a script: each
/// request takes the next (status, body, delay) of `answers`, the last one repeating.
pub struct HttpServer {
    pub port: u16,
    requests: Arc<Mutex<Vec<HttpRequest>>>,
}

/// One scripted answer of the test HTTP server.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
    pub headers: Vec<(String, String)>,
}

impl HttpAnswer {
    pub fn new(status: u16) -> HttpAnswer {
        HttpAnswer {
            status,
            body: String::new(),
            delay: Duration::ZERO,
            headers: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> HttpAnswer {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn delay(mut self, d: Duration) -> HttpAnswer {
        self.delay = d;
        self
    }
}

impl HttpServer {
    pub fn start(answers: Vec<(u16, String, Duration)>) -> HttpServer {
        HttpServer::scripted(
            answers
                .into_iter()
                .map(|(status, body, delay)| HttpAnswer {
                    status,
                    body,
                    delay,
                    headers: Vec::new(),
                })
                .collect(),
        )
    }

    pub fn scripted(answers: Vec<HttpAnswer>) -> HttpServer {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind http");
        let port = server.server_addr().to_ip().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        thread::spawn(move || {
            for (i, mut req) in server.incoming_requests().enumerate() {
                let mut body = String::new();
                let _ = req.as_reader().read_to_string(&mut body);
                seen.lock().unwrap().push(HttpRequest {
                    method: req.method().to_string(),
                    url: req.url().to_string(),
                    headers: req
                        .headers()
                        .iter()
                        .map(|h| (h.field.to_string(), h.value.to_string()))
                        .collect(),
                    body,
                });
                let answer = answers[i.min(answers.len() - 1)].clone();
                thread::spawn(move || {
                    thread::sleep(answer.delay);
                    let mut resp = tiny_http::Response::from_string(answer.body)
                        .with_status_code(answer.status)
                        .with_header(
                            "Content-Type: application/json"
                                .parse::<tiny_http::Header>()
                                .unwrap(),
                        );
                    for (k, v) in &answer.headers {
                        resp.add_header(tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap());
                    }
                    let _ = req.respond(resp);
                });
            }
        });
        HttpServer { port, requests }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn requests(&self) -> Vec<HttpRequest> {
        self.requests.lock().unwrap().clone()
    }
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// An environment with Ana, sending to `server` with quick retries (the fault tests').
pub fn smtp_env(server: &SmtpServer) -> Env {
    let mut env = Env::new();
    env.smtp(
        server,
        "max_attempts = 50\nbackoff_base = \"1s\"\nbackoff_max = \"1s\"",
    );
    env.at("2030-03-10T09:00:00Z");
    env.user("ana@example.org", &[]);
    env
}

/// Every message arrived, by Message-ID; how many arrived more than once.
pub fn all_arrived_once(server: &SmtpServer, total: usize) -> usize {
    let msgs = server.wait_for(total);
    let mut by_id: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for m in &msgs {
        *by_id.entry(m.message_id()).or_default() += 1;
    }
    assert_eq!(
        by_id.len(),
        total,
        "every email arrived ({} of {total})",
        by_id.len()
    );
    by_id.values().filter(|&&c| c > 1).count()
}
