#!/usr/bin/env bash
# Runs every test of dpdk-vuiso on a fresh Debian 12 machine (as root):
# installs what is missing, builds three trees with -Werror (plain, g++;
# AddressSanitizer + UndefinedBehaviorSanitizer, clang++ -O1; the libFuzzer
# targets, clang++), checks formatting, reserves hugepages (given back at
# exit), runs the unit and integration suites (real peers:
# qemu-storage-daemon, dpdk-testpmd, virtiofsd, OVS-DPDK, libvirt, a Linux
# guest under QEMU/TCG). Each integration test runs once: suite 'matrix'
# (the peer matrices and the long Linux-guest runs; see
# tests/integration/meson.build) in the optimized tree, the others under
# the sanitizers; unit tests in both; each fuzz target for 20 s. Ends with
# 'N passed, N failed'.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
source scripts/lib/guest.sh
source scripts/lib/hugepages.sh

install_deps || { echo "0 passed, 1 failed"; exit 1; }
# The test guest (kernel + initramfs) for the QEMU tests; cached outside the repo.
build_guest || { echo "building the test guest failed"; echo "0 passed, 1 failed"; exit 1; }
start=$SECONDS
took() { echo "   ($((SECONDS - start)) s so far)"; }
for tree in build build-asan build-fuzz; do
    # Line tables only (-g1): backtraces and sanitizer reports keep their
    # file:line, and the trees build a fifth faster than with full -g.
    args=(-Dwerror=true -Dtests=true -Dcpp_args=-g1)
    cxx=${CXX:-c++}
    # clang builds the sanitizer tree in about half gcc's time.
    [ "$tree" = build-asan ] && args+=(-Dsanitize=address,undefined -Doptimization=1) && cxx=clang++
    [ "$tree" = build-fuzz ] && args=(-Dwerror=true -Dfuzz=true -Dcpp_args=-g1) && cxx=clang++
    echo "== building ($tree/, $cxx)"
    if ! CXX=$cxx build_tree "$tree" "${args[@]}" >"$tree.build.log" 2>&1; then
        tail -40 "$tree.build.log"
        echo "build of $tree failed"
        echo "0 passed, 1 failed"
        exit 1
    fi
    took
done

# Hugepages are the tested default: EAL (--in-memory) and every isolated
# region take theirs from here (a few tests run --no-huge). Given back at exit.
trap release_hugepages EXIT
reserve_hugepages 768 || { echo "cannot reserve 768 hugepages"; echo "0 passed, 1 failed"; exit 1; }

# Integration tests are marked non-parallel in meson: each runs alone.
echo "== running the unit, lint and matrix suites (build/)"
meson test -C build --suite unit --suite lint --suite matrix --num-processes 2 \
    --print-errorlogs >build/meson-test.out 2>&1
grep -E "^ *[0-9]+/[0-9]+ " build/meson-test.out
took
echo "== running the unit and integration suites under ASan+UBSan (build-asan/; not 'matrix')"
meson test -C build-asan --no-suite lint --no-suite matrix --num-processes 2 --print-errorlogs \
    >build-asan/meson-test.out 2>&1
grep -E "^ *[0-9]+/[0-9]+ " build-asan/meson-test.out
took
echo "== fuzzing the split and packed chain walkers and the vhost-user message rules (build-fuzz/)"
meson test -C build-fuzz --print-errorlogs >build-fuzz/meson-test.out 2>&1
grep -E "^ *[0-9]+/[0-9]+ " build-fuzz/meson-test.out
took
python3 scripts/lib/summarize.py plain=build/meson-logs asan=build-asan/meson-logs \
    fuzz=build-fuzz/meson-logs
