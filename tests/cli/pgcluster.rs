//! A throwaway PostgreSQL server per test process, from Debian's `postgresql` package.
//!
//! [`cluster()`] starts one lazily: `initdb` in a fresh temp dir, then `pg_ctl start` on
//! 127.0.0.1 and a free port with durability off (`fsync`, `synchronous_commit`,
//! `full_page_writes`), 300 connections, trust for local users. [`tls_cluster()`] starts a
//! second one with `ssl=on` and a CA and server certificate made by `openssl` at test time.
//! Each costs about 1.5 s, once per test process.
//!
//! Rust tests have no teardown, so the server is started through a small `sh` wrapper that
//! then reads its stdin until EOF. This process holds the only write end of that pipe (std
//! opens pipes close-on-exec, so no other child inherits it); when it exits, however it
//! exits, the kernel closes the pipe, and the wrapper stops the server (SIGQUIT: immediate
//! shutdown) and removes the temp dir. The wrapper ignores SIGINT, so a Ctrl-C on `cargo test` does
//! not orphan the server either.
//!
//! `initdb` refuses to run as root: as root, the wrapper runs as `postgres` (`runuser`).
//! Without the binaries, [`cluster()`] is `None` and one line on stderr says the PostgreSQL
//! tests were skipped. `NOTIFYCTL_TEST_PG_URL=postgres://...` uses an existing server
//! instead (a new database per test; the tests that need their own server are skipped).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once, OnceLock};
use std::time::Instant;

/// A role that must log in with a password (scram-sha-256 in pg_hba.conf, ahead of the
/// trust lines), for the credential tests.
pub const PASSWORD_ROLE: &str = "notifyctl_pw";
pub const PASSWORD_ROLE_PASSWORD: &str = "Corr3ct-h0rse";
/// On the TLS cluster: a role that pg_hba.conf refuses without TLS (`sslmode=allow`).
pub const TLS_ONLY_ROLE: &str = "notifyctl_tls_only";

pub struct Cluster {
    /// A superuser URL for the `postgres` database.
    admin_url: String,
    /// `None` when the server is NOTIFYCTL_TEST_PG_URL's.
    own: Option<OwnServer>,
}

/// A server this process started.
struct OwnServer {
    port: u16,
    dir: PathBuf,
    /// The wrapper; its stdin is the pipe whose EOF stops the server. Never dropped: statics
    /// are not, so it closes only when the process ends.
    wrapper: Mutex<Child>,
}

pub struct TlsCluster {
    pub cluster: Cluster,
    /// The CA that signed the server's certificate (which names `localhost`, and not
    /// `127.0.0.1`, so verify-full can be shown to fail on a name).
    pub ca: PathBuf,
    /// A CA that signed nothing here.
    pub other_ca: PathBuf,
}

static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();
static TLS_CLUSTER: OnceLock<Option<TlsCluster>> = OnceLock::new();
static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// This process's PostgreSQL server, started on first use; `None` (with one line on stderr)
/// when the machine has none.
pub fn cluster() -> Option<&'static Cluster> {
    CLUSTER
        .get_or_init(|| {
            if let Ok(url) = std::env::var("NOTIFYCTL_TEST_PG_URL") {
                return Some(Cluster {
                    admin_url: url,
                    own: None,
                });
            }
            let bin = server_binaries()?;
            Some(start(&bin, false))
        })
        .as_ref()
}

/// A second server with TLS on; `None` when there is no local PostgreSQL (or only
/// NOTIFYCTL_TEST_PG_URL's) or no `openssl`.
pub fn tls_cluster() -> Option<&'static TlsCluster> {
    TLS_CLUSTER
        .get_or_init(|| {
            if std::env::var_os("NOTIFYCTL_TEST_PG_URL").is_some() {
                say_once("NOTIFYCTL_TEST_PG_URL is set: the tests that need a server of their own (TLS, passwords) were skipped");
                return None;
            }
            let bin = server_binaries()?;
            if Command::new("openssl").arg("version").output().is_err() {
                say_once("openssl not found (apt-get install openssl): the PostgreSQL TLS tests were skipped");
                return None;
            }
            let cluster = start(&bin, true);
            let dir = cluster.own.as_ref().map(|s| s.dir.clone()).expect("own server");
            Some(TlsCluster {
                cluster,
                ca: dir.join("ca.crt"),
                other_ca: dir.join("other-ca.crt"),
            })
        })
        .as_ref()
}

impl Cluster {
    /// A fresh database (unique name) and a URL for it (trust, no TLS).
    pub fn new_database(&self) -> String {
        let name = format!(
            "notifyctl_test_{}_{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = self.admin();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e:?}"));
        self.database_url(&name)
    }

    /// The admin URL with another database name.
    pub fn database_url(&self, name: &str) -> String {
        match &self.own {
            Some(server) => format!(
                "postgres://postgres@127.0.0.1:{}/{name}?sslmode=disable",
                server.port
            ),
            None => replace_dbname(&self.admin_url, name),
        }
    }

    /// A superuser connection to the `postgres` database.
    pub fn admin(&self) -> postgres::Client {
        match &self.own {
            Some(server) => admin_client(server.port),
            None => {
                let opts = notifyctl::store::postgres::connect::ConnectOptions::from_env(
                    std::time::Duration::from_secs(5),
                );
                notifyctl::store::postgres::connect::connect(&self.admin_url, &opts)
                    .unwrap_or_else(|e| panic!("NOTIFYCTL_TEST_PG_URL: {e:#}"))
            }
        }
    }

    /// The port of a server this process started (`None` for NOTIFYCTL_TEST_PG_URL's).
    pub fn port(&self) -> Option<u16> {
        self.own.as_ref().map(|s| s.port)
    }

    /// The directory of a started server's Unix socket.
    pub fn socket_dir(&self) -> Option<&Path> {
        self.own.as_ref().map(|s| s.dir.as_path())
    }

    /// True when this process started the server, so pg_hba.conf and the test roles
    /// ([`PASSWORD_ROLE`], [`TLS_ONLY_ROLE`]) are ours.
    pub fn is_own(&self) -> bool {
        self.own.is_some()
    }
}

fn admin_client(port: u16) -> postgres::Client {
    postgres::Config::new()
        .host("127.0.0.1")
        .port(port)
        .user("postgres")
        .dbname("postgres")
        .connect(postgres::NoTls)
        .unwrap_or_else(|e| panic!("connecting to the test cluster on port {port}: {e:?}"))
}

fn replace_dbname(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// One line straight to stderr (libtest captures only the print macros), once per process.
fn say_once(line: &str) {
    static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if !said.iter().any(|s| s == line) {
        let _ = writeln!(std::io::stderr(), "notifyctl tests: {line}");
        said.push(line.to_string());
    }
}

/// `/usr/lib/postgresql/<highest version>/bin`, or `None` (said once on stderr).
fn server_binaries() -> Option<PathBuf> {
    static SKIPPED: Once = Once::new();
    let mut found: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: Vec<u32> = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<_>>()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .collect();
    found.sort();
    let bin = found.pop().map(|(_, bin)| bin);
    if bin.is_none() {
        SKIPPED.call_once(|| {
            say_once(
                "PostgreSQL server not found (apt-get install postgresql, or set \
                 NOTIFYCTL_TEST_PG_URL=postgres://...); the PostgreSQL variants of the tests were skipped",
            )
        });
    }
    bin
}

/// The wrapper: make a temp dir, initdb, (certificates), start, say "ready", wait for EOF
/// on stdin, stop, clean up. Arguments: BIN TMPDIR PORT TLS.
const WRAPPER: &str = r#"
set -u
B=$1; T=$2; PORT=$3; TLS=$4
trap '' INT HUP
D=$(mktemp -d "$T/notifyctl-pg-XXXXXX") || { echo "failed: mktemp -d in $T"; exit 1; }
echo "dir $D"
fail() {
    echo "failed: $1"
    for f in "$D"/*.log; do [ -f "$f" ] && tail -n 20 "$f"; done
    rm -rf "$D"
    exit 1
}
"$B/initdb" -D "$D/data" -U postgres -A trust -E UTF8 --no-sync --no-instructions >"$D/initdb.log" 2>&1 \
    || fail initdb
cat >"$D/data/pg_hba.conf" <<EOF
local     all all                   trust
host      all notifyctl_pw       127.0.0.1/32 scram-sha-256
hostnossl all notifyctl_tls_only 127.0.0.1/32 reject
host      all all                127.0.0.1/32 trust
EOF
OPTS="-c listen_addresses=127.0.0.1 -p $PORT -k $D -c fsync=off -c synchronous_commit=off"
OPTS="$OPTS -c full_page_writes=off -c max_connections=300 -c shared_buffers=32MB"
if [ "$TLS" = 1 ]; then
    cd "$D" || fail cd
    ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    for ca in ca other-ca; do
        openssl req -x509 $ec -days 3 -subj "/CN=notifyctl test $ca" \
            -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
            -keyout $ca.key -out $ca.crt >>openssl.log 2>&1 || fail "openssl ($ca)"
    done
    openssl req -new $ec -subj /CN=localhost -keyout data/server.key -out server.csr >>openssl.log 2>&1 \
        || fail "openssl (server key)"
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3 \
        -extfile server.ext -out data/server.crt >>openssl.log 2>&1 || fail "openssl (server certificate)"
    chmod 600 data/server.key
    OPTS="$OPTS -c ssl=on"
fi
# A child of this shell (not daemonized by pg_ctl), so it is reaped here and dies with a
# killed process group.
"$B/postgres" -D "$D/data" $OPTS >"$D/server.log" 2>&1 </dev/null &
pid=$!
tries=0
until "$B/pg_isready" -q -h "$D" -p "$PORT"; do
    kill -0 $pid 2>/dev/null || fail "postgres exited"
    tries=$((tries + 1))
    [ $tries -lt 1200 ] || { kill -QUIT $pid; fail "postgres not ready within 60 s"; }
    sleep 0.05
done
echo ready
cat >/dev/null
kill -QUIT $pid 2>/dev/null
wait $pid
rm -rf "$D"
"#;

/// Start a server (a few attempts, in case another process takes the free port first).
fn start(bin: &Path, tls: bool) -> Cluster {
    let began = Instant::now();
    let mut last_failure = String::new();
    for _ in 0..3 {
        match start_once(bin, tls) {
            Ok(server) => {
                let port = server.port;
                let cluster = Cluster {
                    admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres?sslmode=disable"),
                    own: Some(server),
                };
                create_roles(port);
                log_cost(began, tls);
                return cluster;
            }
            Err(failure) => last_failure = failure,
        }
    }
    panic!(
        "could not start a PostgreSQL test cluster with {}:\n{last_failure}",
        bin.display()
    );
}

fn log_cost(began: Instant, tls: bool) {
    if std::env::var_os("NOTIFYCTL_TEST_PG_VERBOSE").is_some() {
        let what = if tls { "TLS cluster" } else { "cluster" };
        say_once(&format!(
            "PostgreSQL {what} started in {:.2}s",
            began.elapsed().as_secs_f64()
        ));
    }
}

fn start_once(bin: &Path, tls: bool) -> Result<OwnServer, String> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let tmp = std::env::temp_dir();
    let args = [
        bin.to_str().ok_or("non-UTF-8 path")?.to_string(),
        tmp.to_str().ok_or("non-UTF-8 TMPDIR")?.to_string(),
        port.to_string(),
        if tls { "1" } else { "0" }.to_string(),
    ];
    let mut command = if running_as_root() {
        // initdb refuses root; the whole wrapper (and so the temp dir) belongs to postgres.
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", "sh", "-c", WRAPPER, "sh"]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", WRAPPER, "sh"]);
        c
    };
    command
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut wrapper = command
        .spawn()
        .map_err(|e| format!("cannot run the cluster wrapper: {e}"))?;
    let stdout = wrapper.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut dir = None;
    let mut failure = Vec::new();
    for line in lines.by_ref() {
        let line = line.map_err(|e| e.to_string())?;
        if let Some(d) = line.strip_prefix("dir ") {
            dir = Some(PathBuf::from(d));
        } else if line == "ready" {
            let dir = dir.ok_or("the wrapper named no directory")?;
            return Ok(OwnServer {
                port,
                dir,
                wrapper: Mutex::new(wrapper),
            });
        } else {
            failure.push(line);
        }
    }
    let _ = wrapper.wait();
    Err(failure.join("\n"))
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The roles the credential and `sslmode=allow` tests log in as; and a check that the
/// contrib extension the schema needs is installed.
fn create_roles(port: u16) {
    let mut admin = admin_client(port);
    admin
        .batch_execute(&format!(
            "CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{PASSWORD_ROLE_PASSWORD}';
             CREATE ROLE {TLS_ONLY_ROLE} LOGIN;"
        ))
        .expect("creating the test roles");
    let gist = admin
        .query_opt(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'btree_gist'",
            &[],
        )
        .expect("pg_available_extensions");
    assert!(
        gist.is_some(),
        "the PostgreSQL test cluster has no btree_gist extension (Debian: it is in the postgresql package)"
    );
}
