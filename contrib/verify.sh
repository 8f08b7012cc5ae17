#!/usr/bin/env bash
# Static checks of contrib/ for CI: systemd units (systemd-analyze verify) and the
# Task Scheduler XML (well-formed, still UTF-16 LE with BOM). Installs what it needs
# on Debian/Ubuntu. Usage: contrib/verify.sh [path/to/notifyctl]  (see systemd/verify.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo

need() {  # need COMMAND DEBIAN-PACKAGE
  command -v "$1" >/dev/null && return
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
need systemd-analyze systemd
need xmllint libxml2-utils

"$here/systemd/verify.sh" "$@"

xml=$here/windows/notifyctl-task.xml
xmllint --noout "$xml"
# An editor re-saving it as UTF-8 would break `schtasks /Create /XML` (see the comment in it).
[ "$(head -c 2 "$xml" | od -An -tx1 | tr -d ' \n')" = fffe ] || {
  echo "windows xml: $xml must be UTF-16 LE with BOM" >&2; exit 1; }
echo "windows xml: OK"

for s in "$here/systemd/verify.sh" "$here/../.ci/windows-smoke.sh"; do
  if [ -f "$s" ]; then bash -n "$s"; fi
done
echo "contrib verify: OK"
