#!/usr/bin/env bash
# Windows smoke test for CI (Debian 12 runner): cross-build notifyctl.exe with
# MinGW and run a tick under Wine.
#   .ci/windows-smoke.sh                    build + smoke the real binary
#   .ci/windows-smoke.sh --toolchain-only   prove MinGW/shim/Wine with a throwaway
#                                          crate (HashMap + bundled SQLite in WAL)
# Cargo jobs follow CARGO_BUILD_JOBS. Needs network (apt, rustup, crates.io).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
target=x86_64-pc-windows-gnu
mode=${1:-full}
case $mode in full|--toolchain-only) ;; *) echo "usage: $0 [--toolchain-only]" >&2; exit 2;; esac
# The smoke run must not pick up a developer's or runner's database/config.
unset NOTIFYCTL_DB NOTIFYCTL_CONFIG NOTIFYCTL_NOW
say() { echo "windows smoke: $*"; }
die() { echo "windows smoke: FAIL: $*" >&2; exit 1; }
t0=$SECONDS; lap() { say "$1 in $((SECONDS - t0))s"; t0=$SECONDS; }

# --- toolchain -------------------------------------------------------------
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
# Debian's wine64 package installs no wine64 in PATH, only /usr/lib/wine/wine64.
wine=$(command -v wine64 || echo /usr/lib/wine/wine64)
if ! command -v x86_64-w64-mingw32-gcc >/dev/null || [ ! -x "$wine" ]; then
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    gcc-mingw-w64-x86-64 wine64 >/dev/null
fi
wine=$(command -v wine64 || echo /usr/lib/wine/wine64)
wineserver=$(command -v wineserver || echo /usr/lib/wine/wineserver)
rustup target add "$target" || die "rustup target add $target"
lap "toolchain installed"

work=$(mktemp -d)
export WINEPREFIX=$work/prefix WINEDEBUG=-all
# No Mono/Gecko install prompts: a console program needs neither.
export WINEDLLOVERRIDES="mscoree,mshtml="
cleanup() { "$wineserver" -k >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
run=$work/run; mkdir -p "$run"

# --- build -----------------------------------------------------------------
# Env var rather than a committed .cargo/config.toml: only this job cross-links.
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
if [ "$mode" = --toolchain-only ]; then
  crate=$work/hello; mkdir -p "$crate/src"
  printf '[package]\nname = "notifyctl"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\nrusqlite = { version = "0.37", features = ["bundled"] }\n' >"$crate/Cargo.toml"
  cat >"$crate/src/main.rs" <<'RS'
fn main() -> rusqlite::Result<()> {
    let mut m = std::collections::HashMap::new(); // RandomState -> ProcessPrng
    m.insert("k", 1);
    let c = rusqlite::Connection::open("hello.db")?;
    let mode: String = c.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    c.execute_batch("CREATE TABLE IF NOT EXISTS t(x); INSERT INTO t VALUES (1);")?;
    println!("hello map={} journal={}", m["k"], mode);
    Ok(())
}
RS
else
  crate=$root
fi
(cd "$crate" && cargo build --release --target "$target") || die "cross-build failed"
exe=${CARGO_TARGET_DIR:-$crate/target}/$target/release/notifyctl.exe
[ -f "$exe" ] || die "no $exe after build"
cp "$exe" "$run/"   # copy: keep the shim out of target/ (it must never ship)
lap "built"

# --- Wine ------------------------------------------------------------------
# Rust std >= 1.78 imports ProcessPrng from bcryptprimitives.dll, which Wine 8
# lacks (exit 53). The shim forwards it to RtlGenRandom; real Windows needs none.
x86_64-w64-mingw32-gcc -O2 -s -shared -o "$run/bcryptprimitives.dll" \
  "$root/.ci/wine-shim/bcryptprimitives.c" -ladvapi32 || die "shim build failed"
lap "shim built"
"$wine" wineboot --init >/dev/null 2>&1 || die "wineboot --init failed"
lap "wineboot done"

cd "$run"
if [ "$mode" = --toolchain-only ]; then
  mkdir noshim && cp notifyctl.exe noshim/
  rc=0; (cd noshim && "$wine" ./notifyctl.exe >/dev/null 2>&1) || rc=$?
  say "without shim: exit $rc (53 = DLL not found, expected on Wine 8)"
  out=$("$wine" ./notifyctl.exe | tr -d '\r') || die "with shim: exit $?"
  say "with shim: $out"
  [[ $out == *"journal=wal"* ]] || die "unexpected output: $out"
  lap "ran"; say OK; exit 0
fi

# Relative paths: the .exe sees Windows paths, and outbox/ sits next to the db.
nc() { "$wine" ./notifyctl.exe --db smoke.db "$@"; }
step() { say "+ notifyctl $*"; nc "$@" || die "'notifyctl $*' exited $?"; }
count() {  # count KEY JSON -> the number, or empty
  grep -Eo "\"$1\"[[:space:]]*:[[:space:]]*[0-9]+" <<<"$2" | grep -Eo '[0-9]+$' | head -n1 || true
}
step init
step user add --email a@example.org --name Ana --tz Europe/Paris
step --now 2030-03-10T08:00:00Z event add --title "Smoke test" \
  --start 2030-03-10T09:30:00Z --duration 1h --participant a@example.org
# 30 minutes before the start: the 30m reminder is due.
say "+ notifyctl --now 2030-03-10T09:00:00Z check-reminders --json"
summary=$(nc --now 2030-03-10T09:00:00Z check-reminders --json | tr -d '\r') \
  || die "check-reminders exited non-zero: $summary"
say "summary: $summary"
created=$(count created "$summary"); sent=$(count sent "$summary")
[ "${created:-0}" -ge 1 ] || die "expected created >= 1 in the summary"
[ "${sent:-0}" -ge 1 ] || die "expected sent >= 1 in the summary"
ls outbox/*.eml >/dev/null 2>&1 || die "no .eml file in $run/outbox"
say "outbox: $(ls outbox | wc -l) file(s)"
step --now 2030-03-10T09:01:00Z status --max-age 5m
lap "smoke ran"
say OK
