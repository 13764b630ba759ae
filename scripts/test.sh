#!/usr/bin/env bash
# Runs every test of dpdk-vuiso on a fresh Debian 12 machine (as root):
# installs what is missing, builds with -Werror, checks formatting, runs
# the unit suites and the integration suites against real peers
# (qemu-storage-daemon, dpdk-testpmd). Ends with 'N passed, N failed'.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh

install_deps || { echo "0 passed, 1 failed"; exit 1; }
echo "== building (build/)"
if ! build_tree build -Dwerror=true -Dtests=true; then
    echo "build failed"
    echo "0 passed, 1 failed"
    exit 1
fi

echo "== running unit, lint and integration suites"
# Integration tests are marked non-parallel in meson: each runs alone.
meson test -C build --num-processes 2 --print-errorlogs >build/meson-test.out 2>&1
grep -E "^ *[0-9]+/[0-9]+ " build/meson-test.out
python3 scripts/lib/summarize.py build/meson-logs
