#!/usr/bin/env bash
# The Debian package, for real on this (CI) machine (issue 16): build it with cargo deb,
# `dpkg -i` it, check what it installed, run `init` and ticks as the notifyctl user (and
# the packaged unit's start, simulated: no systemd PID 1 here), then `dpkg --purge` it
# and check that nothing is left: no files, no /var/lib/notifyctl, no user, no group.
#
# Usage (as root): bash .ci/deb-check.sh
# Refuses to run where notifyctl is already installed or its user exists: it would
# remove them at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
start=$SECONDS
step() { echo "=== deb-check: $* ($((SECONDS - start))s)"; }
say() { echo "deb-check: $*"; }
die() { echo "deb-check: FAIL: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (dpkg -i)"
if dpkg -s notifyctl >/dev/null 2>&1 || getent passwd notifyctl >/dev/null || [ -e /var/lib/notifyctl ]; then
    die "notifyctl (package, user or /var/lib/notifyctl) is already on this machine; this check installs and purges it"
fi
cargo_deb_version=3.8.0 # builds on Rust 1.95 stable with --locked

step "cargo-deb"
if ! cargo deb --version >/dev/null 2>&1; then
    t=$SECONDS
    cargo install cargo-deb --version "$cargo_deb_version" --locked
    say "timing: install cargo-deb $((SECONDS - t))s"
fi
cargo deb --version

step "build the package"
t=$SECONDS
bash contrib/debian/build.sh
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
deb=$(ls -t target/debian/notifyctl_"$version"-*.deb | head -1)
say "timing: build $((SECONDS - t))s; $deb ($(du -h "$deb" | cut -f1))"

step "dpkg -i"
installed=no
cleanup() {
    if [ "$installed" = yes ]; then
        echo "deb-check: purging after a failure" >&2
        dpkg --purge notifyctl >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT
dpkg -i "$deb"
installed=yes
files=$(dpkg -L notifyctl)

step "what it installed"
[ "$(command -v notifyctl)" = /usr/bin/notifyctl ] || die "notifyctl is not /usr/bin/notifyctl"
notifyctl --version | grep -qx "notifyctl $version" || die "notifyctl --version: $(notifyctl --version)"
for f in /usr/share/man/man1/notifyctl.1.gz /usr/share/man/man1/notifyctl-init.1.gz \
    /usr/share/bash-completion/completions/notifyctl /usr/share/zsh/vendor-completions/_notifyctl \
    /usr/share/fish/vendor_completions.d/notifyctl.fish /usr/share/doc/notifyctl/config.example.toml \
    /usr/lib/systemd/system/notifyctl.service /usr/lib/systemd/system/notifyctl.timer; do
    [ -f "$f" ] || die "missing $f"
done
zcat /usr/share/man/man1/notifyctl.1.gz | grep -q '^.SH "EXIT STATUS"' || die "notifyctl(1) has no EXIT STATUS"
getent passwd notifyctl >/dev/null || die "postinst created no notifyctl user"
[ "$(stat -c '%a %U %G' /var/lib/notifyctl)" = "2770 notifyctl notifyctl" ] \
    || die "/var/lib/notifyctl is $(stat -c '%a %U %G' /var/lib/notifyctl)"
if ls /etc/systemd/system/*.wants/notifyctl.timer >/dev/null 2>&1; then die "the timer was enabled"; fi
unit=/usr/lib/systemd/system/notifyctl.service
if grep -n /usr/local "$unit"; then die "the packaged unit names /usr/local"; fi
out=$(systemd-analyze verify --man=no notifyctl.service notifyctl.timer 2>&1) || die "systemd-analyze verify: $out"
[ -z "$out" ] || die "systemd-analyze verify warned: $out"
say "binary, $(grep -c man1/ <<<"$files") man pages, completions, units (timer not enabled), user, /var/lib/notifyctl 2770: OK"

step "init and ticks as the notifyctl user"
db=/var/lib/notifyctl/notifyctl.db
nc() { runuser -u notifyctl -- notifyctl --db "$db" "$@"; }
nc init
[ "$(stat -c '%a %U %G' "$db")" = "660 notifyctl notifyctl" ] || die "database is $(stat -c '%a %U %G' "$db")"
# The scripted ticks drive the clock (--now 2030-...) on a database of their own: the
# packaged unit below ticks the real database at the real time, and a tick refuses to run
# behind the latest recorded one (the clock-backwards guard).
check_db=/var/lib/notifyctl/check.db
nc() { runuser -u notifyctl -- notifyctl --db "$check_db" "$@"; }
nc init
nc user add --email ana@example.org --name Ana >/dev/null
nc --now 2030-03-10T08:00:00Z event add --title "Deb check" --start 2030-03-10T09:30:00Z \
    --participant ana@example.org >/dev/null
summary=$(nc --now 2030-03-10T09:00:00Z --json check-reminders)
grep -Eq '"sent": 2' <<<"$summary" || die "tick summary: $summary"
ls /var/lib/notifyctl/outbox/*.eml >/dev/null || die "no .eml in /var/lib/notifyctl/outbox"
# The packaged unit as systemd would start it (ExecStartPre init, then the tick).
# shellcheck source=SCRIPTDIR/unit-sim.sh
SYSROOT=""
source .ci/unit-sim.sh
simulate_unit "$unit" || die "the packaged unit's start failed"
say "init, tick (2 sent), unit start as notifyctl: OK"

step "dpkg --purge"
dpkg --purge notifyctl
installed=no
dpkg -s notifyctl >/dev/null 2>&1 && die "still installed"
getent passwd notifyctl >/dev/null && die "user notifyctl is still there"
getent group notifyctl >/dev/null && die "group notifyctl is still there"
[ -e /var/lib/notifyctl ] && die "/var/lib/notifyctl is still there"
left=()
while IFS= read -r f; do
    if [ -f "$f" ] || [ -L "$f" ]; then left+=("$f"); fi
done <<<"$files"
[ "${#left[@]}" = 0 ] || die "files left after purge: ${left[*]}"
say "purge removed the files, /var/lib/notifyctl, the user and the group"

step "done"
say "OK in $((SECONDS - start))s"
