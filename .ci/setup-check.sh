#!/usr/bin/env bash
# The README's set-up steps, run as written (issue 11): the blocks marked
# `<!-- setup-check: NAME -->` in README.md are executed line by line, with the
# installation's absolute paths moved under a temp directory (SYSROOT, see unit-sim.sh)
# and `systemctl` skipped (no systemd PID 1 here). The user `notifyctl` is real: the
# steps create it, and this script removes it again if it created it.
#
# Then, as cron and systemd would run them:
# - cron: the README's cron block must be contrib/notifyctl.cron's lines; the installed
#   file's job line runs as its user in cron's environment (env -i PATH=/usr/bin:/bin
#   SHELL=/bin/sh, then the file's variables), must succeed silently and do the work; the
#   same line without the file's PATH must fail (what the README's old snippet did).
# - systemd: `systemd-analyze verify --root` on the units as installed, with the binary
#   at the path the unit names; the unit's start simulated after the steps, and again on
#   a fresh machine (no config, no env file, no database): its first run must work.
#
# Usage (as root): bash .ci/setup-check.sh   (NOTIFYCTL_BIN: the binary, default the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
start=$SECONDS
say() { echo "setup-check: $*"; }
die() { echo "setup-check: FAIL: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (it creates the notifyctl user, as the README's steps do)"
for tool in systemd-analyze runuser useradd; do
    command -v "$tool" >/dev/null || die "$tool not found"
done

bin=${NOTIFYCTL_BIN:-${CARGO_TARGET_DIR:-target}/release/notifyctl}
if [ ! -x "$bin" ]; then
    say "building $bin"
    cargo build --release
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

SYSROOT=$(mktemp -d)
chmod 755 "$SYSROOT" # the notifyctl user must reach the files below it
# What a stock Debian system already has (cron and bash-completion installed).
for d in usr/local/bin usr/local/share/man etc/bash_completion.d etc/cron.d etc/systemd/system var/lib; do
    mkdir -p "$SYSROOT/$d"
done
export SYSROOT
# shellcheck source=SCRIPTDIR/unit-sim.sh
source .ci/unit-sim.sh
created_user=no
cleanup() {
    rm -rf "$SYSROOT"
    if [ "$created_user" = yes ]; then
        userdel notifyctl 2>/dev/null || true
        groupdel notifyctl 2>/dev/null || true
    fi
}
trap cleanup EXIT

readme_block() {  # the fenced block after <!-- setup-check: $1 -->
    awk -v mark="<!-- setup-check: $1 -->" '
        $0 == mark { found = 1; next }
        found == 1 && /^```/ { found = 2; next }
        found == 2 && /^```/ { exit }
        found == 2 { print }' README.md
}

run_block() {  # run_block NAME: each line of the README block, rerooted
    local block line
    block=$(readme_block "$1")
    [ -n "$block" ] || die "README.md has no block marked setup-check: $1"
    say "README block '$1'"
    while IFS= read -r line; do
        case $line in
        '' | '#'*) continue ;;
        systemctl*) say "  skipped (no systemd here): $line"; continue ;;
        useradd*notifyctl)
            if getent passwd notifyctl >/dev/null; then
                say "  skipped (user notifyctl exists): $line"; continue
            fi
            created_user=yes ;;
        esac
        line=$(reroot <<<"$line")
        line=${line//target\/release\/notifyctl/$bin}
        echo "  + $line"
        (cd "$repo" && PATH="$SYSROOT/usr/local/bin:$PATH" bash -euo pipefail -c "$line") \
            || die "README line failed: $line"
    done <<<"$block"
}

mode_of() { stat -c '%a %U %G' "$1"; }

# --- install ------------------------------------------------------------------
run_block from-source
[ -x "$SYSROOT/usr/local/bin/notifyctl" ] || die "no notifyctl in /usr/local/bin after the install steps"
[ -f "$SYSROOT/usr/local/share/man/man1/notifyctl-init.1" ] || die "notifyctl-init(1) not installed"
run_block install
state=$SYSROOT/var/lib/notifyctl
db=$state/notifyctl.db
cfg=$SYSROOT/etc/notifyctl/config.toml
[ "$(mode_of "$state")" = "2770 notifyctl notifyctl" ] || die "state dir is $(mode_of "$state")"
[ "$(mode_of "$db")" = "660 notifyctl notifyctl" ] || die "database is $(mode_of "$db")"
grep -qx "path = \"$db\"" "$cfg" || die "the README's sed did not set [database] path in config.toml"
say "install: OK (state dir 2770, database 0660, config points at it)"

# --- cron ---------------------------------------------------------------------
active() { grep -Ev '^[[:space:]]*(#|$)' "$@"; }
diff <(readme_block cron | active) <(active contrib/notifyctl.cron) \
    || die "the README's cron block differs from contrib/notifyctl.cron"
run_block cron-install
crontab=$SYSROOT/etc/cron.d/notifyctl
vars=() job=
while IFS= read -r line; do
    if [[ $line =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; then
        vars+=("$(reroot <<<"$line")")
    else
        [ -z "$job" ] || die "more than one job line in $crontab"
        job=$line
    fi
done < <(active "$crontab")
read -r -a fields <<<"$job"
cron_user=${fields[5]}
command=$(sed -E 's/^([^[:space:]]+[[:space:]]+){6}//' <<<"$job")
say "cron job: user '$cron_user', command '$command'"
cron_env=(env -i PATH=/usr/bin:/bin SHELL=/bin/sh HOME=/ LOGNAME="$cron_user")
# Something for the tick to do: an event 20 minutes ahead, so its assignment email goes out.
at=$(date -u -d '+20 minutes' +%Y-%m-%dT%H:%M:00Z)
as_notifyctl() { runuser -u notifyctl -- "$SYSROOT/usr/local/bin/notifyctl" --config "$cfg" "$@"; }
as_notifyctl user add --email ana@example.org --name Ana >/dev/null
as_notifyctl event add --title "Setup check" --start "$at" --participant ana@example.org >/dev/null
out=$(cd / && runuser -u "$cron_user" -- "${cron_env[@]}" "${vars[@]}" /bin/sh -c "$command" 2>&1) \
    || die "the cron job failed in cron's environment: $out"
[ -z "$out" ] || die "the cron job printed (cron would mail it): $out"
ls "$state"/outbox/*.eml >/dev/null 2>&1 || die "the cron job sent no email (no .eml in $state/outbox)"
if ! PATH=/usr/bin:/bin command -v notifyctl >/dev/null; then
    nopath=()
    for v in "${vars[@]}"; do [[ $v == PATH=* ]] || nopath+=("$v"); done
    rc=0
    (cd / && runuser -u "$cron_user" -- "${cron_env[@]}" "${nopath[@]}" /bin/sh -c "$command" >/dev/null 2>&1) || rc=$?
    [ "$rc" = 127 ] || die "without the file's PATH the job should not find notifyctl (exit $rc)"
    say "cron: without the PATH line the job exits 127, as the README's old snippet did"
fi
say "cron: OK (silent, exit 0, $(ls "$state"/outbox | wc -l) email(s) in outbox/)"

# --- systemd ------------------------------------------------------------------
run_block systemd-install
units=$SYSROOT/etc/systemd/system
mkdir -p "$SYSROOT/usr/lib/systemd"
cp -a /usr/lib/systemd/system "$SYSROOT/usr/lib/systemd/" # the targets the units refer to
out=$(systemd-analyze verify --root="$SYSROOT" --man=no notifyctl.service notifyctl.timer 2>&1) \
    || die "systemd-analyze verify: $out"
[ -z "$out" ] || die "systemd-analyze verify warned: $out"
say "systemd-analyze verify --root: OK"
simulate_unit "$units/notifyctl.service" || die "the unit's start failed after the README's steps"
say "unit start after the steps: OK"
# A fresh machine: only the binary and the units (no config, env file, database).
rm -rf "$state" "$SYSROOT/etc/notifyctl"
simulate_unit "$units/notifyctl.service" || die "the unit's first start on a fresh machine failed"
[ "$(mode_of "$db")" = "660 notifyctl notifyctl" ] || die "first start made the database $(mode_of "$db")"
[ "$(mode_of "$state")" = "2770 notifyctl notifyctl" ] || die "state dir is $(mode_of "$state")"
say "unit first start on a fresh machine: OK (ExecStartPre init created the database 0660)"

say "OK in $((SECONDS - start))s"
