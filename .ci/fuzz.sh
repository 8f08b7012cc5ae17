#!/usr/bin/env bash
# Fuzz the parsers users feed (times, durations, zones, addresses, phone numbers,
# ntfy topics, quiet hours, the TOML config)
# for SECONDS per target (default 30), on stable Rust.
#
#   bash .ci/fuzz.sh [SECONDS]
#
# Each target starts from its seed corpus (fuzz/seeds/<target>/), copied into a temp
# dir so the run leaves the tree clean. Exits non-zero if any target panics, times out
# or runs out of memory, printing the crashing input in hex and as text.
#
# Stable Rust: libFuzzer's coverage flags (-Cpasses=sancov-module, -Cllvm-args=...) are
# stable, AddressSanitizer (-Zsanitizer) is not, so the default is --sanitizer none.
# FUZZ_SANITIZER=address runs with ASan, through RUSTC_BOOTSTRAP=1 (slower to build).
#
# Environment: FUZZ_SANITIZER (none), FUZZ_TARGET_DIR (fuzz/target; point it outside
# the clone to keep the build between CI runs), CARGO_BUILD_JOBS (cargo's default).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export CARGO_TERM_COLOR=never

secs="${1:-30}"
case "$secs" in '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;; esac
sanitizer="${FUZZ_SANITIZER:-none}"
target_dir="${FUZZ_TARGET_DIR:-$PWD/target}"
cargo_fuzz_version=0.13.2 # builds on Rust 1.95 stable with --locked
start=$SECONDS
step() { echo "=== $* ($((SECONDS - start))s)"; }

step "cargo-fuzz"
if ! cargo fuzz --version >/dev/null 2>&1; then
    t=$SECONDS
    cargo install cargo-fuzz --version "$cargo_fuzz_version" --locked
    echo "timing: install cargo-fuzz $((SECONDS - t))s"
fi
cargo fuzz --version
if [ "$sanitizer" != none ]; then
    export RUSTC_BOOTSTRAP=1 # -Zsanitizer on a stable compiler
fi
# The same flags for build and run, so run does not rebuild.
flags=(--sanitizer "$sanitizer" --codegen-units 16 --target-dir "$target_dir")

step "build (sanitizer: $sanitizer)"
t=$SECONDS
cargo fuzz build "${flags[@]}"
echo "timing: build $((SECONDS - t))s"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
for target in $(cargo fuzz list); do
    step "fuzz $target for ${secs}s"
    corpus="$work/corpus/$target" artifacts="$work/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    if [ -d "seeds/$target" ]; then cp -R "seeds/$target/." "$corpus/"; fi
    log="$work/$target.log"
    t=$SECONDS
    set +e
    cargo fuzz run "${flags[@]}" "$target" "$corpus" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    grep -E '^Done [0-9]+ runs|^stat::number_of_executed_units|^#[0-9]+ +DONE' "$log" || true
    echo "timing: fuzz $target $((SECONDS - t))s (exit $rc, corpus now $(ls "$corpus" | wc -l) inputs)"
    if [ "$rc" -ne 0 ]; then
        failed+=("$target")
        echo "--- $target FAILED; end of its log:"
        grep -v '^"' "$log" | tail -n 60
        for f in "$artifacts"/*; do
            [ -f "$f" ] || continue
            echo "--- crashing input $(basename "$f") ($(wc -c <"$f") bytes), hex:"
            od -An -tx1 -v "$f"
            echo "--- as text:"
            cat -v "$f"
            echo
            echo "--- reproduce: (cd fuzz && cargo fuzz run ${flags[*]:0:4} $target <file with these bytes>)"
        done
    fi
done

step "done"
echo "timing: total $((SECONDS - start))s"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzzing FAILED: ${failed[*]}"
    exit 1
fi
echo "fuzzing passed: no crash in $(cargo fuzz list | wc -l) targets, ${secs}s each"
