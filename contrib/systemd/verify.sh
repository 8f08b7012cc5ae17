#!/usr/bin/env bash
# Check the unit files with `systemd-analyze verify` (no running systemd needed).
# Usage: contrib/systemd/verify.sh [path/to/notifyctl]
# verify refuses units whose ExecStart binary is missing, so the units are
# checked from a temp copy whose ExecStart points at: $1, else an installed
# /usr/local/bin/notifyctl, else target/release/notifyctl, else a stub script.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

bin=${1:-}
if [ -z "$bin" ]; then
  for c in /usr/local/bin/notifyctl "$root/target/release/notifyctl"; do
    if [ -x "$c" ]; then bin=$c; break; fi
  done
fi
if [ -z "$bin" ]; then
  bin=$tmp/notifyctl
  printf '#!/bin/sh\nexit 0\n' >"$bin"
  chmod +x "$bin"
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")   # verify wants an absolute path
[ -x "$bin" ] || { echo "systemd verify: $bin is not executable" >&2; exit 1; }

for u in notifyctl.service notifyctl.timer; do
  sed "s#/usr/local/bin/notifyctl#$bin#" "$here/$u" >"$tmp/$u"
done
# verify exits 0 on mere warnings: treat any output as a failure so that
# typos (unknown directives only warn) break CI.
out=$(cd "$tmp" && systemd-analyze verify --man=no notifyctl.service notifyctl.timer 2>&1) || {
  echo "$out" >&2; echo "systemd verify: FAILED" >&2; exit 1; }
if [ -n "$out" ]; then echo "$out" >&2; echo "systemd verify: FAILED (warnings)" >&2; exit 1; fi
echo "systemd verify: OK (ExecStart=$bin)"
