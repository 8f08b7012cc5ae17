#!/usr/bin/env bash
# Build the Debian package: target/debian/notifyctl_<version>-1_<arch>.deb
#
#   bash contrib/debian/build.sh
#
# Needs cargo-deb (`cargo install cargo-deb --locked`). Generates what the package
# ships besides the binary into target/assets/ (see [package.metadata.deb] in
# Cargo.toml): the man pages, bash/zsh/fish completions, and the systemd units with
# ExecStart at /usr/bin/notifyctl. contrib/systemd/ keeps /usr/local/bin for a
# manual install; the packaged copies are made from it here, so there is one unit
# to maintain.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TERM_COLOR=never

cargo build --release --locked
bin=${CARGO_TARGET_DIR:-target}/release/notifyctl

assets=target/assets
rm -rf "$assets"
mkdir -p "$assets/man" "$assets/completions" "$assets/systemd"
"$bin" man --dir "$assets/man" >/dev/null
"$bin" completions bash >"$assets/completions/notifyctl.bash"
"$bin" completions zsh >"$assets/completions/_notifyctl"
"$bin" completions fish >"$assets/completions/notifyctl.fish"
for unit in notifyctl.service notifyctl.timer; do
    sed 's#/usr/local/bin/notifyctl#/usr/bin/notifyctl#g' "contrib/systemd/$unit" >"$assets/systemd/$unit"
done
if grep -n /usr/local/ "$assets/systemd/"*; then
    echo "deb: the packaged units still name /usr/local" >&2
    exit 1
fi

cargo deb --no-build --locked "$@"
