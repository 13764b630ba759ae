#!/usr/bin/env bash
# Runs one libFuzzer target: first every saved regression input of that
# target (tests/fuzz/regressions/<target>-*), then fresh fuzzing for
# SECONDS from an empty corpus. A crash, a sanitizer report or a failed
# check fails the test; the crashing input is kept in the log (base64).
#   run_fuzz.sh TARGET_BINARY SECONDS REGRESSION_DIR
set -uo pipefail
bin=$1 seconds=$2 regressions=$3
name=$(basename "$bin")
name=${name#fuzz_}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
shopt -s nullglob
saved=("$regressions/$name"-*)
if [ ${#saved[@]} -gt 0 ]; then
    "$bin" "${saved[@]}" >"$work/regressions.log" 2>&1 || {
        cat "$work/regressions.log"
        echo "FAIL: a saved regression input of $name fails again"
        exit 1
    }
    echo "${#saved[@]} saved regression inputs pass"
fi
mkdir "$work/corpus"
"$bin" -max_total_time="$seconds" -max_len=4096 -timeout=10 -artifact_prefix="$work/" \
    "$work/corpus" >"$work/fuzz.log" 2>&1
rc=$?
tail -5 "$work/fuzz.log"
for crash in "$work"/crash-* "$work"/timeout-* "$work"/leak-*; do
    echo "input ($(basename "$crash")): $(base64 -w0 "$crash")"
done
exit $rc
