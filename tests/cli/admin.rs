//! The admin's path: output that cannot be written, text that must not reach a terminal
//! raw, table alignment, the man pages, a database path SQLite cannot use, and a database
//! shared with a web app running as another user (issue 11).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Once;

use unicode_width::UnicodeWidthStr;

use crate::support::{stderr_of, Env};

fn dev_full() -> File {
    File::create("/dev/full").expect("/dev/full")
}

#[test]
fn stdout_write_failure_exits_1_with_one_line() {
    let env = Env::new();
    env.user("ana@example.org", &[]);
    let out = env
        .std_cmd()
        .args(["user", "list"])
        .stdout(dev_full())
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("writing to standard output"), "{err}");
    // Also --json, and clap's own --help.
    let out = env
        .std_cmd()
        .args(["--json", "user", "list"])
        .stdout(dev_full())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let out = env.std_cmd().arg("--help").stdout(dev_full()).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
}

#[test]
fn closed_pipe_is_silent_and_exits_0() {
    let env = Env::new();
    env.user("ana@example.org", &[]);
    // Far more than a pipe buffer holds, so the write must hit the closed pipe.
    env.queue_custom(3000);
    let mut child = env
        .std_cmd()
        .args(["--json", "list", "--user", "1", "--limit", "3000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader went away (`| head -0`)
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(out.stderr.is_empty(), "{}", stderr_of(&out));
}

#[test]
fn unwritable_stderr_never_panics() {
    let env = Env::new();
    for (args, code) in [
        (&["user", "show", "nobody@example.org"][..], 2), // an error message
        (&["no-such-command"][..], 2),                    // clap's usage error
        (&["--now", "yesterday", "status"][..], 2),
    ] {
        let out = env.std_cmd().args(args).stderr(dev_full()).output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{args:?}");
    }
    // Both streams full: the lost output still decides the exit code, no panic (101).
    env.user("ana@example.org", &[]);
    let out = env
        .std_cmd()
        .args(["-vv", "user", "list"])
        .stdout(dev_full())
        .stderr(dev_full())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

/// The display column where `needle` starts on `line`.
fn column(line: &str, needle: &str) -> usize {
    let at = line
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in {line:?}"));
    line[..at].width()
}

#[test]
fn tables_align_cjk_emoji_and_combining_names_by_display_width() {
    let env = Env::new();
    let names = ["山田太郎", "Zoe\u{301} Martin", "Ana 🎉", "Bob", "한국어 이름"];
    for (i, name) in names.iter().enumerate() {
        let email = format!("u{i}@example.org");
        env.ok(&[
            "user",
            "add",
            "--email",
            &email,
            "--name",
            name,
            "--tz",
            "Europe/Paris",
        ]);
    }
    let table = env.ok(&["user", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    let zone = column(lines[0], "ZONE");
    for line in &lines[1..] {
        assert_eq!(column(line, "Europe/Paris"), zone, "misaligned:\n{table}");
    }

    let now = "2030-03-01T08:00:00Z";
    for (i, title) in names.iter().enumerate() {
        let (start, who) = (format!("2030-03-10T0{i}:00:00Z"), format!("u{i}@example.org"));
        env.ok(&[
            "--now",
            now,
            "event",
            "add",
            "--title",
            title,
            "--start",
            &start,
            "--participant",
            &who,
        ]);
    }
    let table = env.ok(&["--now", now, "event", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), names.len() + 1, "{table}");
    let (title, participants) = (column(lines[0], "TITLE"), column(lines[0], "PARTICIPANTS"));
    for (i, line) in lines[1..].iter().enumerate() {
        assert_eq!(column(line, names[i]), title, "misaligned:\n{table}");
        assert_eq!(
            column(line, &format!("u{i}@example.org")),
            participants,
            "misaligned:\n{table}"
        );
    }
}

#[test]
fn control_characters_never_reach_the_terminal() {
    let env = Env::new();
    env.user("ana@example.org", &[]);
    // A web app wrote these with SQL: an escape sequence, a carriage return that would
    // overwrite the line, a bell, a C1 control, a bidi override.
    let evil = "Ana\u{1b}[2J\u{1b}]0;pwned\u{7}\rX\u{9b}31m\u{202e}gnp.exe";
    // (As literals, so the same SQL runs on both backends: none of them holds a quote.)
    env.exec(&format!("UPDATE users SET name = '{evil}' WHERE id = 1"));
    env.exec(&format!(
        "INSERT INTO notifications (user_id, kind, title, body, created_at) VALUES (1, 'custom', '{evil}', '{}', '2030-03-10T09:00:00Z')",
        "line one\nline two\u{1b}[31m"
    ));
    for args in [
        &["user", "list"][..],
        &["user", "show", "1"],
        &["list", "--user", "1"],
        &["show", "1"],
    ] {
        let out = env.run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr_of(&out));
        let text = String::from_utf8(out.stdout).unwrap();
        let bad: Vec<char> = text
            .chars()
            .filter(|c| (c.is_control() && *c != '\n') || ('\u{202a}'..='\u{202e}').contains(c))
            .collect();
        assert!(bad.is_empty(), "{args:?} printed {bad:?}:\n{text}");
        assert!(text.contains('\u{FFFD}'), "{args:?}: no placeholder:\n{text}");
    }
    // The body keeps its line breaks; --json keeps the exact text.
    assert!(env.ok(&["show", "1"]).contains("line one\nline two\u{FFFD}[31m"));
    assert_eq!(env.json(&["show", "1"])["title"], evil);
}

#[test]
fn man_dir_writes_every_page_the_main_page_refers_to() {
    let env = Env::bare();
    let dir = env.path("man1");
    let listed = env.ok(&["man", "--dir", dir.to_str().unwrap()]);
    let main = std::fs::read_to_string(dir.join("notifyctl.1")).unwrap();
    for section in [".SH \"EXIT STATUS\"", ".SH ENVIRONMENT", ".SH SUBCOMMANDS"] {
        assert!(main.contains(section), "notifyctl.1 lacks {section}");
    }
    for var in [
        "NOTIFYCTL_DB",
        "NOTIFYCTL_CONFIG",
        "NOTIFYCTL_NOW",
        "NOTIFYCTL_LOG",
        "NOTIFYCTL_SMTP_PASSWORD",
    ] {
        assert!(
            main.contains(&format!("\\fB{var}\\fR")),
            "ENVIRONMENT lacks {var}"
        );
    }
    for code in 0..=4 {
        assert!(
            main.contains(&format!(".TP\n\\fB{code}\\fR\n")),
            "EXIT STATUS lacks {code}"
        );
    }
    // Every page any page refers to exists: notifyctl-init(1), notifyctl-user-add(1), ...
    let mut pages = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        pages += 1;
        assert!(
            listed.contains(path.to_str().unwrap()),
            "{} not listed",
            path.display()
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(".SH \"EXIT STATUS\""), "{}", path.display());
        for word in text.split(|c: char| c.is_whitespace() || c == '\\') {
            if let Some(name) = word.strip_suffix("(1)").filter(|w| w.starts_with("notifyctl")) {
                let name = name.trim_start_matches("fB").trim_end_matches("fR");
                assert!(
                    dir.join(format!("{name}.1")).exists(),
                    "{} refers to missing {name}(1)",
                    path.display()
                );
            }
        }
    }
    assert!(pages > 30, "only {pages} pages");
    for page in [
        "notifyctl-init.1",
        "notifyctl-user-add.1",
        "notifyctl-check-reminders.1",
    ] {
        assert!(dir.join(page).exists(), "{page}");
    }
    assert!(!dir.join("notifyctl-help.1").exists());
    // The single page on stdout has the same sections.
    let single = env.ok(&["man"]);
    assert!(single.contains(".SH ENVIRONMENT") && single.contains(".SH \"EXIT STATUS\""));
}

/// Regression: `init --db` with a path too long for SQLite left a 0-byte file behind,
/// which later commands took for a database.
#[test]
fn init_with_a_path_sqlite_cannot_use_creates_nothing() {
    let env = Env::bare();
    let deep = env.path(&"d".repeat(200)).join("e".repeat(200));
    std::fs::create_dir_all(&deep).unwrap();
    let db = deep.join(format!("{}.db", "f".repeat(120)));
    let db_arg = db.to_str().unwrap();
    let err = env.fails(&["--db", db_arg, "init"], 2);
    assert!(
        err.contains("cannot create database") && err.contains("bytes long"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(
        std::fs::read_dir(&deep).unwrap().count(),
        0,
        "init left a file behind"
    );
    let err = env.fails(&["--db", db_arg, "user", "list"], 2);
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn new_database_is_private_unless_its_directory_is_setgid() {
    let env = Env::bare();
    let private = env.path("private.db");
    env.ok(&["--db", private.to_str().unwrap(), "init"]);
    assert_eq!(mode(&private), 0o600);
    let shared_dir = env.path("shared");
    std::fs::create_dir(&shared_dir).unwrap();
    std::fs::set_permissions(&shared_dir, std::fs::Permissions::from_mode(0o2770)).unwrap();
    let shared = shared_dir.join("n.db");
    // Under cron's umask 022 too, which would drop the group's write.
    let bin = assert_cmd::cargo::cargo_bin("notifyctl");
    let out = Command::new("sh")
        .args(["-c", "umask 022 && exec \"$0\" --db \"$1\" init"])
        .arg(&bin)
        .arg(&shared)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(mode(&shared), 0o660);
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

// --- A database shared with a web app running as another user ---------------------------

const TICK_USER: &str = "nctest-tick";
const WEB_USER: &str = "nctest-web";
const SHARED_GROUP: &str = "nctest-share";

/// Two system users and a group both belong to, created once; None (with the reason
/// printed) when this machine cannot run the test.
fn two_users() -> Option<()> {
    static SETUP: Once = Once::new();
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n");
    if !is_root {
        eprintln!("SKIPPED: the shared-database tests switch users and must run as root");
        return None;
    }
    for tool in ["useradd", "groupadd", "setpriv"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map_or(true, |o| !o.status.success())
        {
            eprintln!("SKIPPED: {tool} not found");
            return None;
        }
    }
    SETUP.call_once(|| {
        let exists = |db: &str, name: &str| {
            Command::new("getent")
                .args([db, name])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !exists("group", SHARED_GROUP) {
            run_ok(Command::new("groupadd").args(["--system", SHARED_GROUP]));
        }
        for user in [TICK_USER, WEB_USER] {
            if !exists("passwd", user) {
                // Each with its own primary group (-U), like www-data and notifyctl.
                run_ok(Command::new("useradd").args([
                    "--system",
                    "-U",
                    "-G",
                    SHARED_GROUP,
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    user,
                ]));
            }
        }
    });
    Some(())
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().expect("run");
    assert!(out.status.success(), "{cmd:?}: {}", stderr_of(&out));
}

/// The notifyctl binary run as `user` with its groups, on `db`.
fn as_user(user: &str, db: &Path, now: &str) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        &format!("--reuid={user}"),
        &format!("--regid={user}"),
        "--init-groups",
    ])
    .arg(assert_cmd::cargo::cargo_bin("notifyctl"))
    .env_clear()
    .env("PATH", "/usr/bin:/bin")
    .env("NOTIFYCTL_DB", db)
    .env("NOTIFYCTL_NOW", now)
    .current_dir("/");
    c
}

fn ok_as(user: &str, db: &Path, now: &str, args: &[&str]) -> String {
    let out = as_user(user, db, now).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{user}: notifyctl {args:?}: {}",
        stderr_of(&out)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The web app: another process, as WEB_USER, that keeps a connection open (so its
/// -wal/-shm files stay) until dropped. It is this test binary re-run on the ignored
/// `web_app_holding_the_database` below.
struct WebApp {
    child: std::process::Child,
    // Kept open so the helper can finish writing its test report.
    stdout: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl WebApp {
    fn open(db: &Path) -> WebApp {
        let mut child = Command::new("setpriv")
            .args([
                &format!("--reuid={WEB_USER}"),
                &format!("--regid={WEB_USER}"),
                "--init-groups",
            ])
            .arg(std::env::current_exe().unwrap())
            .args([
                "admin::web_app_holding_the_database",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("NOTIFYCTL_TEST_HOLD_DB", db)
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = stdout
            .by_ref()
            .map_while(Result::ok)
            .any(|l| l.contains("HOLDING"));
        assert!(ready, "the web app process did not open {}", db.display());
        WebApp { child, stdout }
    }
}

impl Drop for WebApp {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        self.stdout.by_ref().for_each(drop);
        let _ = self.child.wait();
    }
}

/// Not a test on its own: the web app process of the shared-database tests.
#[test]
#[ignore = "helper process started by the shared-database tests"]
fn web_app_holding_the_database() {
    let Ok(db) = std::env::var("NOTIFYCTL_TEST_HOLD_DB") else {
        return;
    };
    let conn = rusqlite::Connection::open(&db).expect("web app opens the database");
    let n: i64 = conn
        .query_row("SELECT count(*) FROM notifications", [], |r| r.get(0))
        .expect("web app reads the inbox");
    println!("HOLDING {n}");
    std::io::stdout().flush().unwrap();
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
    drop(conn);
}

/// A directory for the shared database that both users can reach: the temp dir made
/// traversable, the shared dir inside owned by the tick's user and the shared group.
fn shared_dir(env: &Env, mode: u32) -> PathBuf {
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = env.path("state");
    std::fs::create_dir(&dir).unwrap();
    run_ok(
        Command::new("chown")
            .arg(format!("{TICK_USER}:{SHARED_GROUP}"))
            .arg(&dir),
    );
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
    dir
}

fn book_an_event(db: &Path) {
    let at = "2030-03-10T08:00:00Z";
    ok_as(
        TICK_USER,
        db,
        at,
        &["user", "add", "--email", "ana@example.org", "--name", "Ana"],
    );
    ok_as(
        TICK_USER,
        db,
        at,
        &[
            "event",
            "add",
            "--title",
            "Mentoring",
            "--start",
            "2030-03-10T09:30:00Z",
            "--participant",
            "ana@example.org",
        ],
    );
}

#[test]
fn shared_database_in_a_setgid_directory_works_for_the_tick_and_the_web_app() {
    if two_users().is_none() {
        return;
    }
    let env = Env::bare();
    let dir = shared_dir(&env, 0o2770);
    let db = dir.join("notifyctl.db");
    ok_as(TICK_USER, &db, "2030-03-10T08:00:00Z", &["init"]);
    assert_eq!(
        mode(&db),
        0o660,
        "a database in a setgid directory is group-writable"
    );
    book_an_event(&db);

    // The web app holds a connection: the -wal/-shm files stay while the tick runs. Whoever
    // created them (the booking may have left a short log behind: `SqliteStore`'s `Drop`),
    // they are the shared group's to write.
    let web = WebApp::open(&db);
    for sidecar in ["notifyctl.db-wal", "notifyctl.db-shm"] {
        let p = dir.join(sidecar);
        let out = Command::new("stat")
            .args(["-c", "%U %G %a"])
            .arg(&p)
            .output()
            .unwrap();
        assert_eq!(stderr_of(&out), "");
        let stat = String::from_utf8_lossy(&out.stdout);
        let (owner, rest) = stat.trim().split_once(' ').unwrap();
        assert!([WEB_USER, TICK_USER].contains(&owner), "{sidecar}: {stat}");
        assert_eq!(rest, format!("{SHARED_GROUP} 660"), "{sidecar}");
    }
    let summary = ok_as(
        TICK_USER,
        &db,
        "2030-03-10T09:00:00Z",
        &["--json", "check-reminders"],
    );
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(
        summary["sent"], 2,
        "assignment notice and 30-minute reminder: {summary}"
    );
    // The web app's user reads and writes the inbox through notifyctl too.
    ok_as(
        WEB_USER,
        &db,
        "2030-03-10T09:01:00Z",
        &["mark-read", "--all", "--user", "ana@example.org"],
    );
    let summary = ok_as(
        TICK_USER,
        &db,
        "2030-03-10T09:25:00Z",
        &["--json", "check-reminders"],
    );
    assert!(summary.contains("\"sent\": 1"), "5-minute reminder: {summary}");
    drop(web);
    ok_as(TICK_USER, &db, "2030-03-10T09:26:00Z", &["status"]);
}

#[test]
fn shared_database_without_setgid_names_the_file_instead_of_sqlite_code_14() {
    if two_users().is_none() {
        return;
    }
    let env = Env::bare();
    // The old advice: a shared group and chmod 660, but no setgid on the directory.
    let dir = shared_dir(&env, 0o770);
    let db = dir.join("notifyctl.db");
    ok_as(TICK_USER, &db, "2030-03-10T08:00:00Z", &["init"]);
    assert_eq!(mode(&db), 0o600, "private unless the directory is setgid");
    run_ok(Command::new("chgrp").arg(SHARED_GROUP).arg(&db));
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o660)).unwrap();
    book_an_event(&db);

    let web = WebApp::open(&db); // its -shm file takes the web app's own group
    let out = as_user(TICK_USER, &db, "2030-03-10T09:00:00Z")
        .args(["check-reminders"])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let shm = format!("{}-shm", db.display());
    assert!(
        err.contains(&format!(
            "cannot write {shm}: permission denied (owner {WEB_USER}, group {WEB_USER}, mode 0660)"
        )),
        "{err}"
    );
    assert!(
        err.contains("setgid (chmod 2770)") && err.contains("README"),
        "{err}"
    );
    assert!(!err.contains("unable to open database file"), "{err}");
    drop(web);
}

// SQLite-only, not listed below:
// - man_dir_writes_every_page_the_main_page_refers_to: no database.
// - init_with_a_path_sqlite_cannot_use_creates_nothing, new_database_is_private_unless_its_directory_is_setgid,
//   shared_database_*: the SQLite file, its mode and its directory.
crate::support::on_postgres!(
    stdout_write_failure_exits_1_with_one_line,
    closed_pipe_is_silent_and_exits_0,
    unwritable_stderr_never_panics,
    tables_align_cjk_emoji_and_combining_names_by_display_width,
    control_characters_never_reach_the_terminal,
);
