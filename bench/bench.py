#!/usr/bin/env python3
"""notifyctl benchmarks: wall time and peak memory of the commands users run.

Builds databases of N events (two participants each, spread over 60 days) and prints a
table with the median of several runs of:
  - an idle tick (nothing due) at each N;
  - a busy tick with 10,000 due reminders delivered to an SMTP server on 127.0.0.1
    (smtp-sink from Debian's postfix package: it accepts and discards mail faster than
    notifyctl sends it, so the figure is notifyctl's);
  - `list --limit 20` and `unread-count` for a user with 100,000 notifications;
  - `event add` with the double-booking check for a participant with 10,000 events;
  - `import` of 100,000 and 1,000,000 events, a tick after a long history, the listings;
  - 1, 2, 4 and 8 tick processes started together on one set of due reminders (SQLite and
    PostgreSQL), counting what was sent twice or never;
  - the idle tick on PostgreSQL (Debian's postgresql, a throwaway cluster in a temp dir);
  - recurring series: `plan --next 30d` and an idle tick over 10,000 open-ended weekly
    series, and a busy tick whose 10,000 due reminders are occurrences of 5,000 series.

Usage: python3 bench/bench.py [--sizes 10000,100000,1000000] [--runs 5] [--quick]
                              [--only idle,inbox,event-add,busy,import,history,listings,many,pg,series]
                              [--write-readme]
Needs: cargo (builds target/release/notifyctl), python3; installs Debian's postfix (for
smtp-sink) and time (GNU time, for peak RSS) with apt-get when missing (root). Figures
are process wall times as a user sees them (process start, opening the database, the
work, exit) and peak RSS as GNU time reports it.
"""

import argparse
import calendar
import json
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "notifyctl")
T0 = 1_900_000_000  # 2030-03-17T17:46:40Z: events start from here
NOW = "2030-03-20T12:00:00Z"


def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def ensure_package(path, package):
    if not os.path.exists(path):
        print(f"installing {package} ...", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", package],
            check=True,
            env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
            stdout=subprocess.DEVNULL,
        )


def run(args, env, check=True):
    """Run notifyctl; return (wall seconds, peak RSS in MiB, stdout).

    Peak RSS comes from GNU time (%M): a process forked from Python would report
    Python's own RSS as its high-water mark, GNU time's fork is tiny."""
    start = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "NOTIFYCTL_BENCH_RSS_KB=%M", BIN] + args, env=env, capture_output=True
    )
    wall = time.perf_counter() - start
    err = proc.stderr.decode()
    rss_kb = int(err.rsplit("NOTIFYCTL_BENCH_RSS_KB=", 1)[1].split()[0])
    if check and proc.returncode != 0:
        sys.exit(f"notifyctl {' '.join(args)} failed ({proc.returncode}): {err}")
    return wall, rss_kb / 1024.0, proc.stdout.decode()


def median_run(args, env, runs):
    results = [run(args, env) for _ in range(runs)]
    return statistics.median(r[0] for r in results), statistics.median(r[1] for r in results), results[-1][2]


def base_env(db, config=None, now=NOW):
    env = {"PATH": os.environ.get("PATH", ""), "NOTIFYCTL_DB": db, "NOTIFYCTL_NOW": now}
    if config:
        env["NOTIFYCTL_CONFIG"] = config
    return env


def make_db(path, events, users=2000):
    """Users and `events` events with two participants each, over 60 days, by SQL."""
    run(["init"], base_env(path))
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous = OFF")
    created = iso(T0 - 86400 * 10)
    conn.executemany(
        "INSERT INTO users (email, name, timezone, locale, created_at) VALUES (?, ?, 'Europe/Paris', 'fr', ?)",
        ((f"user{i}@example.org", f"User {i}", created) for i in range(users)),
    )
    span = 60 * 86400
    step = span / max(events, 1)
    conn.executemany(
        "INSERT INTO events (id, title, starts_at, ends_at, timezone, status, sequence, armed_at, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, 'Europe/Paris', 'scheduled', 0, ?, ?, ?)",
        (
            (i + 1, f"Session {i}", iso(T0 + int(i * step)), iso(T0 + int(i * step) + 1800), created, created, created)
            for i in range(events)
        ),
    )
    conn.executemany(
        "INSERT INTO participants (event_id, user_id, role, added_at) VALUES (?, ?, 'participant', ?)",
        ((i + 1, (2 * i) % users + 1 + k, created) for i in range(events) for k in (0, 1)),
    )
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()


def write_config(dir_, body):
    path = os.path.join(dir_, "config.toml")
    with open(path, "w") as f:
        f.write(body)
    return path


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_smtp_sink():
    ensure_package("/usr/sbin/smtp-sink", "postfix")
    sink = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    port = free_port()
    args = [sink]
    if os.geteuid() == 0:
        args += ["-u", "nobody"]
    proc = subprocess.Popen(args + [f"127.0.0.1:{port}", "1000"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    sys.exit("smtp-sink did not start")


def bench_idle(tmp, n, runs, rows):
    db = os.path.join(tmp, f"idle-{n}.db")
    t = time.perf_counter()
    make_db(db, n)
    build = time.perf_counter() - t
    config = write_config(tmp, '[email]\ntransport = "none"\n')
    env = base_env(db, config)
    run(["check-reminders"], env)  # decide what is due in the window once
    wall, rss, _ = median_run(["check-reminders"], env, runs)
    rows.append((f"idle tick, {n:,} events", f"{wall * 1000:.1f} ms", f"{rss:.1f} MiB", f"db built in {build:.0f}s"))
    return db


def due_db(path, events):
    """`events` events starting 30 minutes after NOW, 2 participants each (Europe/Paris,
    French): their 30-minute reminders are all due at NOW."""
    make_db(path, 0, users=max(2 * events, 2))
    conn = sqlite3.connect(path)
    start = "2030-03-20T12:30:00Z"
    created = "2030-03-01T00:00:00Z"
    conn.executemany(
        "INSERT INTO events (id, title, starts_at, ends_at, status, sequence, armed_at, created_at, updated_at, video_url)"
        " VALUES (?, ?, ?, '2030-03-20T13:30:00Z', 'scheduled', 0, ?, ?, ?, ?)",
        ((i + 1, f"Session {i}", start, created, created, created, f"https://meet.jit.si/notifyctl-{i:032x}") for i in range(events)),
    )
    conn.executemany(
        "INSERT INTO participants (event_id, user_id, role, added_at) VALUES (?, ?, 'participant', ?)",
        ((i + 1, 2 * i + 1 + k, created) for i in range(events) for k in (0, 1)),
    )
    conn.commit()
    conn.close()


def real_message(tmp):
    """One reminder exactly as the busy tick sends it (multipart text + HTML + .ics)."""
    db = os.path.join(tmp, "message.db")
    due_db(db, 1)
    config = write_config(tmp, '[email]\ntransport = "file"\n')
    run(["check-reminders"], base_env(db, config))
    outbox = os.path.join(tmp, "outbox")
    name = sorted(n for n in os.listdir(outbox) if n.endswith(".eml"))[-1]
    with open(os.path.join(outbox, name), "rb") as f:
        return f.read()


def bench_busy(tmp, runs, rows, due_reminders=10_000, connections=1):
    """`due_reminders` reminders due in one tick, created and sent to smtp-sink."""
    sink, port = start_smtp_sink()
    try:
        walls, rsses, rates = [], [], []
        for r in range(runs):
            db = os.path.join(tmp, f"busy-{due_reminders}-{r}.db")
            due_db(db, due_reminders // 2)
            config = write_config(
                tmp,
                f'[tick]\nmax_runtime = "10m"\n[email]\ntransport = "smtp"\n'
                f'[email.smtp]\nhost = "127.0.0.1"\nport = {port}\ntls = "none"\nconnections = {connections}\n',
            )
            wall, rss, out = run(["--json", "check-reminders"], base_env(db, config))
            summary = json.loads(out)
            if summary["created"] != due_reminders or summary["sent"] != due_reminders:
                sys.exit(f"busy tick did not send everything: {summary}")
            walls.append(wall)
            rsses.append(rss)
            rates.append(summary["sent"] / wall)
            os.remove(db)
        rows.append(
            (
                f"busy tick, {due_reminders:,} due reminders → smtp-sink, {connections} connection{'s' if connections > 1 else ''}",
                f"{statistics.median(walls):.2f} s",
                f"{statistics.median(rsses):.1f} MiB",
                f"{statistics.median(rates):,.0f} emails/s (reminders created and sent)",
            )
        )
        if due_reminders == 10_000 and connections == 1:
            message = real_message(tmp)
            waiting, pipelined = sink_ceiling(port, message)
            rows.append(
                (
                    f"smtp-sink's ceiling, the same {len(message) / 1024:.1f} KB message, one connection",
                    "-",
                    "-",
                    f"{waiting:,.0f}/s waiting for each reply, {pipelined:,.0f}/s pipelined (raw Python client)",
                )
            )
    finally:
        sink.terminate()


def bench_inbox(tmp, runs, rows):
    db = os.path.join(tmp, "inbox.db")
    make_db(db, 0, users=2)
    conn = sqlite3.connect(db)
    conn.executemany(
        "INSERT INTO notifications (user_id, kind, title, body, created_at, read_at) VALUES (1, 'custom', ?, 'body', ?, ?)",
        (
            (f"Note {i}", iso(T0 + i), None if i % 3 else iso(T0 + i + 60))
            for i in range(100_000)
        ),
    )
    conn.commit()
    conn.close()
    env = base_env(db)
    wall, rss, out = median_run(["--json", "list", "--user", "1", "--limit", "20"], env, runs)
    rows.append(("list --limit 20, 100,000 notifications", f"{wall * 1000:.1f} ms", f"{rss:.1f} MiB", "process wall time"))
    wall, rss, out = median_run(["--json", "unread-count", "--user", "user0@example.org"], env, runs)
    unread = json.loads(out)["unread"]
    rows.append(("unread-count, 100,000 notifications", f"{wall * 1000:.1f} ms", f"{rss:.1f} MiB", f"{unread:,} unread"))
    # The query alone, as a web app reading the documented schema would run it.
    conn = sqlite3.connect(db)
    for label, sql in [
        ("list query alone", "SELECT * FROM notifications WHERE user_id = 1 ORDER BY id DESC LIMIT 20"),
        ("unread-count query alone", "SELECT count(*) FROM notifications WHERE user_id = 1 AND read_at IS NULL"),
    ]:
        times = []
        for _ in range(max(runs, 20)):
            t = time.perf_counter()
            conn.execute(sql).fetchall()
            times.append(time.perf_counter() - t)
        rows.append((label, f"{statistics.median(times) * 1000:.2f} ms", "-", "python sqlite3, same file"))
    conn.close()


def bench_event_add(tmp, runs, rows):
    db = os.path.join(tmp, "booking.db")
    make_db(db, 0, users=2)
    conn = sqlite3.connect(db)
    created = "2030-03-01T00:00:00Z"
    conn.executemany(
        "INSERT INTO events (id, title, starts_at, ends_at, status, sequence, armed_at, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, 'scheduled', 0, ?, ?, ?)",
        ((i + 1, f"E{i}", iso(T0 + i * 7200), iso(T0 + i * 7200 + 3600), created, created, created) for i in range(10_000)),
    )
    conn.executemany(
        "INSERT INTO participants (event_id, user_id, role, added_at) VALUES (?, 1, 'participant', ?)",
        ((i + 1, created) for i in range(10_000)),
    )
    conn.commit()
    conn.close()
    config = write_config(tmp, '[email]\ntransport = "none"\n[video]\nprovider = "none"\n')
    env = base_env(db, config)
    walls, rsses = [], []
    for r in range(runs):
        # A free slot (in the gap after event 5000) and a taken one.
        start = iso(T0 + 5000 * 7200 + 3600 + r * 60)
        wall, rss, _ = run(["event", "add", "--title", "new", "--start", start, "--duration", "1m", "--participant", "1"], env)
        walls.append(wall)
        rsses.append(rss)
    rows.append(("event add + overlap check, 10,000 events", f"{statistics.median(walls) * 1000:.1f} ms", f"{statistics.median(rsses):.1f} MiB", "free slot, accepted"))
    walls = []
    for r in range(runs):
        start = iso(T0 + 5000 * 7200 + 600)
        t = time.perf_counter()
        _, _, _ = run(["event", "add", "--title", "clash", "--start", start, "--participant", "1"], env, check=False)
        walls.append(time.perf_counter() - t)
    rows.append(("event add refused (overlap), 10,000 events", f"{statistics.median(walls) * 1000:.1f} ms", "-", "taken slot, refused"))


def bench_floor(tmp, db, n, rows, runs):
    """What the idle tick is compared with: opening the same file with the sqlite3 CLI, and
    notifyctl's own start (`--version`: dynamic linking, argument parsing, nothing else).
    The sqlite3 CLI runs under GNU time as notifyctl does in `run` (that wrapper's own start,
    about 1.3 ms here, is in every row: the floor is measured the same way). The floor, the
    idle tick on the same file and `--version` are run in turn, many rounds: the machine's
    drift (a few ms between runs of the same build here) then touches all three alike, and
    the idle tick's row for this file is replaced by this measurement."""
    config = write_config(tmp, '[email]\ntransport = "none"\n')
    rounds = max(runs, 41)
    floor, tick, version = [], [], []
    tick_rss, version_rss = [], []
    for _ in range(rounds):
        if shutil.which("sqlite3"):
            t = time.perf_counter()
            subprocess.run(
                ["/usr/bin/time", "-f", "%M", "sqlite3", db, "SELECT count(*) FROM ticks"],
                capture_output=True,
                check=True,
            )
            floor.append(time.perf_counter() - t)
        wall, rss, _ = run(["check-reminders"], base_env(db, config))
        tick.append(wall)
        tick_rss.append(rss)
        wall, rss, _ = run(["--version"], base_env(db))
        version.append(wall)
        version_rss.append(rss)
    label = f"idle tick, {n:,} events"
    median_tick = statistics.median(tick)
    for i, row in enumerate(rows):
        if row[0] == label:
            rows[i] = (label, f"{median_tick * 1000:.1f} ms", f"{statistics.median(tick_rss):.1f} MiB", row[3] + f"; {rounds} runs in turn with the floor")
    if floor:
        median_floor = statistics.median(floor)
        rows.append((f"sqlite3 CLI opening the {n:,}-event file", f"{median_floor * 1000:.1f} ms", "-", f"the floor for the idle tick: the tick is {median_tick / median_floor:.2f}× it"))
    rows.append(("notifyctl --version", f"{statistics.median(version) * 1000:.1f} ms", f"{statistics.median(version_rss):.1f} MiB", "process start alone"))


def events_jsonl(path, n, users):
    """`n` events, two participants each among `users` users, never overlapping."""
    with open(path, "w") as f:
        for i in range(n):
            a = (2 * i) % users + 1
            f.write(
                json.dumps(
                    {
                        "title": f"Session {i}",
                        "start": iso(T0 + i * 1800),
                        "duration": "30m",
                        "video": "none",
                        "participants": [f"user{a - 1}@example.org:mentor", f"user{a}@example.org"],
                    }
                )
                + "\n"
            )


def bench_import(tmp, n, rows):
    db = os.path.join(tmp, f"import-{n}.db")
    make_db(db, 0, users=10_000)
    path = os.path.join(tmp, f"events-{n}.jsonl")
    events_jsonl(path, n, 10_000)
    config = write_config(tmp, '[email]\ntransport = "none"\n[video]\nprovider = "none"\n')
    wall, rss, out = run(["--json", "import", "events", path], base_env(db, config))
    imported = json.loads(out)["imported"]
    if imported != n:
        sys.exit(f"import did not import everything: {imported}")
    rows.append((f"import events, {n:,} events (JSONL, 2 participants each)", f"{wall:.1f} s", f"{rss:.1f} MiB", f"{n / wall:,.0f} events/s, validation and overlap check on"))


def bench_long_history(tmp, runs, rows):
    """`event add` for a participant who already has 100,000 events."""
    db = os.path.join(tmp, "history.db")
    make_db(db, 0, users=2)
    path = os.path.join(tmp, "history.jsonl")
    with open(path, "w") as f:
        for i in range(100_000):
            f.write(json.dumps({"title": f"E{i}", "start": iso(T0 + i * 7200), "duration": "1h", "video": "none", "participants": ["user0@example.org"]}) + "\n")
    config = write_config(tmp, '[email]\ntransport = "none"\n[video]\nprovider = "none"\n')
    env = base_env(db, config)
    run(["import", "events", path], env)
    walls, rsses = [], []
    for r in range(runs):
        start = iso(T0 + 50_000 * 7200 + 3600 + r * 60)  # a free slot in the middle
        wall, rss, _ = run(["event", "add", "--title", "new", "--start", start, "--duration", "1m", "--participant", "1"], env)
        walls.append(wall)
        rsses.append(rss)
    rows.append(("event add + overlap check, participant with 100,000 events", f"{statistics.median(walls) * 1000:.1f} ms", f"{statistics.median(rsses):.1f} MiB", "free slot, accepted"))


def bench_listings(tmp, rows):
    """Streaming listings on 200,000 events: memory must not grow with the window."""
    db = os.path.join(tmp, "listings.db")
    make_db(db, 200_000)
    config = write_config(tmp, '[email]\ntransport = "none"\n')
    env = base_env(db, config, now=iso(T0 - 3600))
    for label, args in [
        ("plan --next 3650d, 200,000 events", ["--json", "plan", "--next", "3650d"]),
        ("event list, 200,000 events", ["--json", "event", "list"]),
    ]:
        wall, rss, out = run(args, env)
        rows.append((label, f"{wall:.1f} s", f"{rss:.1f} MiB", f"{len(out) / 1e6:,.0f} MB of JSON streamed"))


def series_db(path, series, first_start):
    """`series` open-ended weekly series (`FREQ=WEEKLY`, no end, Europe/Paris), two
    participants each, the i-th first starting at `first_start(i)` (a Unix time)."""
    make_db(path, 0, users=max(2 * series, 2))
    conn = sqlite3.connect(path)
    created = "2030-03-01T00:00:00Z"
    conn.executemany(
        "INSERT INTO events (id, title, starts_at, ends_at, timezone, status, sequence, armed_at, created_at,"
        " updated_at, video_url, repeat_rule) VALUES (?, ?, ?, ?, 'Europe/Paris', 'scheduled', 0, ?, ?, ?, ?,"
        " 'FREQ=WEEKLY')",
        (
            (i + 1, f"Weekly {i}", iso(first_start(i)), iso(first_start(i) + 1800), created, created, created,
             f"https://meet.jit.si/notifyctl-{i:032x}")
            for i in range(series)
        ),
    )
    conn.executemany(
        "INSERT INTO participants (event_id, user_id, role, added_at) VALUES (?, ?, 'participant', ?)",
        ((i + 1, 2 * i + 1 + k, created) for i in range(series) for k in (0, 1)),
    )
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()


def bench_series(tmp, runs, rows):
    """Recurring series: occurrences are computed at each read, never stored, so these
    figures are the cost of expanding every live series over the window."""
    n = 10_000
    db = os.path.join(tmp, "series.db")
    week = 7 * 86400
    now = calendar.timegm(time.strptime(NOW, "%Y-%m-%dT%H:%M:%SZ"))
    # First starts spread over the week before NOW (whole minutes): every series has an
    # occurrence in any 7 days from now on.
    series_db(db, n, lambda i: now - week + (i * week // n) // 60 * 60 + 60)
    config = write_config(tmp, '[email]\ntransport = "none"\n')
    env = base_env(db, config)
    wall, rss, out = median_run(["--json", "plan", "--next", "30d"], env, runs)
    planned = len(json.loads(out))
    rows.append(("plan --next 30d, 10,000 weekly series", f"{wall * 1000:.0f} ms", f"{rss:.1f} MiB", f"{planned:,} reminders planned"))
    run(["check-reminders"], env)
    wall, rss, _ = median_run(["check-reminders"], env, runs)
    rows.append(("idle tick, 10,000 weekly series", f"{wall * 1000:.1f} ms", f"{rss:.1f} MiB", "each expanded over the window"))
    # Busy: 5,000 series with an occurrence 30 minutes after NOW, two participants each.
    sink, port = start_smtp_sink()
    try:
        walls, rsses = [], []
        for r in range(runs):
            busy = os.path.join(tmp, f"series-busy-{r}.db")
            series_db(busy, 5_000, lambda i: now + 1800 - week)
            config = write_config(
                tmp,
                f'[tick]\nmax_runtime = "10m"\n[email]\ntransport = "smtp"\n'
                f'[email.smtp]\nhost = "127.0.0.1"\nport = {port}\ntls = "none"\n',
            )
            wall, rss, out = run(["--json", "check-reminders"], base_env(busy, config))
            summary = json.loads(out)
            if summary["created"] != 10_000 or summary["sent"] != 10_000:
                sys.exit(f"series busy tick did not send everything: {summary}")
            walls.append(wall)
            rsses.append(rss)
            os.remove(busy)
        wall = statistics.median(walls)
        rows.append(
            (
                "busy tick, 10,000 due reminders of 5,000 weekly series → smtp-sink",
                f"{wall:.2f} s",
                f"{statistics.median(rsses):.1f} MiB",
                f"{10_000 / wall:,.0f} emails/s (occurrences expanded, reminders created and sent)",
            )
        )
    finally:
        sink.terminate()


def sink_ceiling(port, message, seconds=3.0):
    """The sink's own ceiling: a minimal raw-socket client on one connection, waiting for
    each reply, then with MAIL/RCPT/DATA pipelined (RFC 2920)."""
    body = message.replace(b"\r\n.", b"\r\n..") + b"\r\n.\r\n"
    results = []
    for pipelined in (False, True):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        f = s.makefile("rb")

        def reply():
            while True:
                line = f.readline()
                if len(line) < 4 or line[3:4] != b"-":
                    return line

        reply()
        s.sendall(b"EHLO bench\r\n")
        reply()
        n = 0
        t = time.perf_counter()
        while time.perf_counter() - t < seconds:
            if pipelined:
                s.sendall(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
                reply(), reply(), reply()
            else:
                for cmd in (b"MAIL FROM:<a@example.org>\r\n", b"RCPT TO:<b@example.org>\r\n", b"DATA\r\n"):
                    s.sendall(cmd)
                    reply()
            s.sendall(body)
            reply()
            n += 1
        results.append(n / (time.perf_counter() - t))
        s.close()
    return results


# ---------------------------------------------------------------------------------------
# PostgreSQL: a throwaway cluster, the same data, the same measurements.

class Pg:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (Debian's package), like the tests'."""

    def __init__(self, tmp):
        bins = sorted(d for d in os.listdir("/usr/lib/postgresql") if os.path.isdir(f"/usr/lib/postgresql/{d}/bin"))
        self.bin = f"/usr/lib/postgresql/{bins[-1]}/bin"
        # Not under `tmp`: that is private to us, and the server runs as the postgres user.
        self.dir = tempfile.mkdtemp(prefix="nfy-bench-pg-")
        self.port = free_port()
        as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self.as_pg = as_pg
        self._run(as_pg + [f"{self.bin}/initdb", "-D", f"{self.dir}/data", "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off -c synchronous_commit=off -c max_connections=100 -c shared_buffers=256MB"
        self._run(as_pg + [f"{self.bin}/pg_ctl", "-D", f"{self.dir}/data", "-l", f"{self.dir}/log", "-w", "-o", opts, "start"])
        self.n = 0

    @staticmethod
    def _run(args):
        proc = subprocess.run(args, capture_output=True)
        if proc.returncode != 0:
            sys.exit(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.decode()}{proc.stdout.decode()}")

    def url(self, db):
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}?sslmode=disable"

    def psql(self, db, sql=None, stdin=None):
        args = ["psql", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", db]
        if sql:
            args += ["-c", sql]
        subprocess.run(args, input=stdin, check=True, capture_output=True)

    def new_db(self):
        self.n += 1
        name = f"bench{self.n}"
        self.psql("postgres", f"CREATE DATABASE {name}")
        return name

    def stop(self):
        subprocess.run(self.as_pg + [f"{self.bin}/pg_ctl", "-D", f"{self.dir}/data", "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def pg_copy(pg, db, table, columns, rows):
    data = "".join("\t".join(str(c) for c in r) + "\n" for r in rows).encode()
    pg.psql(db, stdin=f"\\copy notifyctl.{table} ({', '.join(columns)}) FROM STDIN\n".encode() + data + b"\\.\n")


def pg_make_db(pg, events, users=2000, spread=True):
    """The data of make_db (or due_db with spread=False), on a new PostgreSQL database."""
    db = pg.new_db()
    url = pg.url(db)
    run(["init"], base_env(url))
    created = iso(T0 - 86400 * 10)
    pg_copy(pg, db, "users", ["email", "name", "timezone", "locale", "created_at"],
            ((f"user{i}@example.org", f"User {i}", "Europe/Paris", "fr", created) for i in range(users)))
    if spread:
        step = 60 * 86400 / max(events, 1)
        ev = ((f"Session {i}", iso(T0 + int(i * step)), iso(T0 + int(i * step) + 1800), "Europe/Paris", created, created, created) for i in range(events))
    else:
        ev = ((f"Session {i}", "2030-03-20T12:30:00Z", "2030-03-20T13:30:00Z", "Europe/Paris", created, created, created) for i in range(events))
    pg_copy(pg, db, "events", ["title", "starts_at", "ends_at", "timezone", "armed_at", "created_at", "updated_at"], ev)
    pg_copy(pg, db, "participants", ["event_id", "user_id", "added_at", "allow_overlap"],
            ((i + 1, ((2 * i) % users + 1 + k) if spread else (2 * i + 1 + k), created, "true" if not spread else "false") for i in range(events) for k in (0, 1)))
    pg.psql(db, "ANALYZE")
    return url


def bench_pg_idle(pg, sizes, runs, rows):
    config = write_config(pg.dir, '[email]\ntransport = "none"\n')
    for n in sizes:
        t = time.perf_counter()
        url = pg_make_db(pg, n)
        build = time.perf_counter() - t
        env = base_env(url, config)
        run(["check-reminders"], env)
        wall, rss, _ = median_run(["check-reminders"], env, runs)
        rows.append((f"PostgreSQL: idle tick, {n:,} events", f"{wall * 1000:.1f} ms", f"{rss:.1f} MiB", f"db built in {build:.0f}s"))


def concurrent_ticks(env_for, n_procs, due):
    """Start n tick processes together; (wall, total sent) once all have finished."""
    t = time.perf_counter()
    procs = [subprocess.Popen([BIN, "--json", "check-reminders"], env=env_for(i), stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(n_procs)]
    sent = 0
    for p in procs:
        out, err = p.communicate()
        if p.returncode != 0:
            sys.exit(f"a tick failed ({p.returncode}): {err.decode()}")
        sent += json.loads(out)["sent"]
    return time.perf_counter() - t, sent


def bench_many_ticks(tmp, pg, rows):
    """10,000 due reminders, decided and sent by 1, 2, 4 and 8 tick processes started
    together (as on as many hosts), to smtp-sink: emails/s, and sent-twice / never-sent."""
    sink, port = start_smtp_sink()
    due = 10_000
    try:
        for backend in (["sqlite", "postgres"] if pg else ["sqlite"]):
            for n in (1, 2, 4, 8):
                config = write_config(tmp, f'[tick]\nmax_runtime = "10m"\n[email]\ntransport = "smtp"\n[email.smtp]\nhost = "127.0.0.1"\nport = {port}\ntls = "none"\n')
                if backend == "sqlite":
                    location = os.path.join(tmp, f"many-{n}.db")
                    due_db(location, due // 2)
                else:
                    location = pg_make_db(pg, due // 2, users=due, spread=False)
                wall, sent = concurrent_ticks(lambda i: base_env(location, config), n, due)
                check = json.loads(run(["--json", "deliveries", "--status", "sent", "--limit", "100000"], base_env(location, config))[2])
                lost = due - len(check)
                twice = sent - len(check)
                rows.append((f"{'PostgreSQL' if backend == 'postgres' else 'SQLite'}: busy tick, {due:,} reminders, {n} tick process{'es' if n > 1 else ''} at once",
                             f"{wall:.2f} s", "-", f"{due / wall:,.0f} emails/s; sent twice {twice}, lost {lost}"))
                if backend == "sqlite":
                    os.remove(location)
    finally:
        sink.terminate()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="sizes 10000 only, 3 runs")
    ap.add_argument(
        "--write-readme",
        action="store_true",
        help="replace the table between the bench markers in README.md with this run's figures (with --only: just the rows it measured)",
    )
    ap.add_argument(
        "--only",
        default="idle,inbox,event-add,busy,import,history,listings,many,pg,series",
        help="comma-separated subset of: idle, inbox, event-add, busy, import, history, listings, many (concurrent ticks), pg (the PostgreSQL column; needs Debian's postgresql), series (recurring events)",
    )
    args = ap.parse_args()
    only = {o.strip() for o in args.only.split(",") if o.strip()}
    unknown = only - ALL
    if unknown:
        sys.exit(f"--only: unknown benchmark(s): {', '.join(sorted(unknown))}")
    sizes = [10_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    runs = 3 if args.quick else args.runs
    ensure_package("/usr/bin/time", "time")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if "idle" in only:
            db = None
            for n in sizes:
                db = bench_idle(tmp, n, runs, rows)
            if db:
                bench_floor(tmp, db, sizes[-1], rows, runs)
        if "import" in only:
            for n in [100_000] if args.quick else [100_000, 1_000_000]:
                bench_import(tmp, n, rows)
        if "history" in only:
            bench_long_history(tmp, runs, rows)
        if "listings" in only:
            bench_listings(tmp, rows)
        if "series" in only:
            bench_series(tmp, runs, rows)
        pg = None
        if "pg" in only and os.path.isdir("/usr/lib/postgresql"):
            pg = Pg(tmp)
        try:
            if pg:
                bench_pg_idle(pg, sizes, runs, rows)
            if "many" in only:
                bench_many_ticks(tmp, pg, rows)
        finally:
            if pg:
                pg.stop()
        if "inbox" in only:
            bench_inbox(tmp, runs, rows)
        if "event-add" in only:
            bench_event_add(tmp, runs, rows)
        if "busy" in only:
            busy_runs = runs if not args.quick else 1
            for connections in (1, 2, 4):
                bench_busy(tmp, busy_runs, rows, 10_000, connections)
            bench_busy(tmp, 1, rows, 100_000, 1)
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    heading = f"notifyctl benchmarks — median of {runs} runs — {os.cpu_count()} cores, {cpu}"
    table = ["| what | wall time | peak RSS | notes |", "|---|---|---|---|"]
    table += ["| " + " | ".join(r) + " |" for r in rows]
    print(f"\n{heading}\n")
    print("\n".join(table))
    if args.write_readme:
        partial = only != ALL
        write_readme(heading, table, ",".join(sorted(only)) if partial else None)


BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
ALL = {"idle", "inbox", "event-add", "busy", "import", "history", "listings", "many", "pg", "series"}


def write_readme(heading, table, only=None):
    """Replace what lies between the bench markers in README.md (the markers stay). With
    `only` (a subset run), replace just the rows this run measured, by their first cell, and
    say so under the heading; the other rows keep the figures of the run that wrote them."""
    path = os.path.join(ROOT, "README.md")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        sys.exit(f"README.md: expected one {BEGIN} line before one {END} line; put them around the table")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    stamp = time.strftime("%Y-%m-%d")
    if only:
        old = [line for line in rest.split(END, 1)[0].strip().splitlines()]
        lines = [line for line in old if line.startswith("|")]
        notes = [line for line in old if line and not line.startswith("|")]
        key = lambda row: row.split("|")[1].strip()
        new = {key(r): r for r in table[2:]}
        merged = [new.pop(key(r), r) if i >= 2 else r for i, r in enumerate(lines)]
        merged += list(new.values())
        notes.append(f"_rows of `--only {only}` measured again {stamp}: {heading}_")
        notes = latest_notes(notes)
        body = f"{BEGIN}\n" + "\n\n".join(notes) + "\n\n" + "\n".join(merged) + f"\n{END}"
        table = merged
    else:
        body = f"{BEGIN}\n_{heading}, {stamp}, `python3 bench/bench.py --write-readme`_\n\n" + "\n".join(table) + f"\n{END}"
    tmp = path + ".bench-tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(head + body + tail)
    os.replace(tmp, path)
    print(f"README.md: table {'updated' if only else 'replaced'} ({len(table) - 2} rows)", file=sys.stderr)


def latest_notes(notes):
    """The notes still true: a `--only` note whose benchmarks were all measured again by
    later notes is dropped (the first line, the full run's, always stays)."""
    covered, kept = set(), []
    for note in reversed(notes):
        m = re.search(r"--only ([a-z,-]+)", note)
        if m:
            which = set(m.group(1).split(","))
            if which <= covered:
                continue
            covered |= which
        kept.append(note)
    return list(reversed(kept))


if __name__ == "__main__":
    main()
