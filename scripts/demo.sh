#!/usr/bin/env bash
# The demo on a fresh Debian 12 machine (as root): installs what is missing,
# builds, starts two real vhost-user back-ends (qemu-storage-daemon
# exporting a 128 MiB image as vhost-user-blk, and dpdk-testpmd with a
# net_vhost port), shows what vuiso-probe learns from each, and drives
# verified data through both with the project's front-end library. Every
# process it starts is stopped by PID; it ends by itself in well under a
# minute.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
install_deps || exit 1
echo "== building (build/)"
build_tree build -Dtests=true >/dev/null || { echo "build failed"; exit 1; }

work=$(mktemp -d /tmp/vuiso-demo-XXXXXX)
prefix="vuiso-demo-$$"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null
    done
    rm -rf "$work" "/var/run/dpdk/$prefix"
}
trap cleanup EXIT

wait_for() { # path, seconds
    for _ in $(seq $(($2 * 10))); do [ -S "$1" ] && return 0; sleep 0.1; done
    echo "error: $1 did not appear; see the log below" >&2
    return 1
}

# A disk image that already holds data the host wrote.
truncate -s 128M "$work/disk.raw"
printf 'written by the host before the back-end started\n' |
    dd of="$work/disk.raw" conv=notrunc status=none

qemu-storage-daemon \
    --blockdev "driver=file,node-name=file0,filename=$work/disk.raw" \
    --export "type=vhost-user-blk,id=exp0,node-name=file0,writable=on,addr.type=unix,addr.path=$work/blk.sock" \
    >"$work/qsd.log" 2>&1 &
pids+=($!)
stdbuf -oL dpdk-testpmd -l 0,1 --no-huge -m 256 --no-pci --file-prefix "$prefix" \
    --vdev "net_vhost0,iface=$work/net.sock,queues=1" -- \
    --stats-period 1 --forward-mode=macswap --total-num-mbufs 2048 --nb-cores 1 \
    >"$work/testpmd.log" 2>&1 &
pids+=($!)
wait_for "$work/blk.sock" 10 || { cat "$work/qsd.log"; exit 1; }
wait_for "$work/net.sock" 20 || { cat "$work/testpmd.log"; exit 1; }

echo
echo "== vuiso-probe $work/blk.sock   (qemu-storage-daemon)"
build/app/vuiso-probe/vuiso-probe "$work/blk.sock" || exit 1
echo
echo "== vuiso-probe $work/net.sock   (dpdk-testpmd net_vhost0)"
build/app/vuiso-probe/vuiso-probe "$work/net.sock" || exit 1
echo
echo "== data through the front-end library (vuiso-loopcheck)"
build/app/vuiso-loopcheck/vuiso-loopcheck blk "$work/blk.sock" || exit 1
build/app/vuiso-loopcheck/vuiso-loopcheck net "$work/net.sock" || exit 1
echo
echo "demo finished: both back-ends answered and every byte came back intact"
