#!/usr/bin/env bash
# The main job on an embedded default (as root on Debian 12): one dpdk-vuiso
# serves two guests. A Linux guest under QEMU/TCG uses a vhost-user-blk disk
# served by qemu-storage-daemon through port vuiso0 (bounce): it writes and
# reads back random data with O_DIRECT (4 KiB, 64 KiB, 1 MiB blocks) and
# reads data the host wrote before boot; the back-end's memory is searched
# for a secret held in guest RAM. Then, while the blk guest runs on, port
# vuiso1 is added at run time with vuiso-ctl and a net guest (testpmd
# virtio_user) loops frames through it to testpmd net_vhost (macswap);
# telemetry is asked for both ports.
# Prints a summary; every process is stopped by PID; ends by itself in well
# under 2 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
source scripts/lib/guest.sh
source scripts/lib/hugepages.sh
install_deps || exit 1
echo "== building (build/)"
build_tree build -Dtests=true >/dev/null || { echo "build failed"; exit 1; }
build_guest || exit 1

work=$(mktemp -d /tmp/vuiso-demo-XXXXXX)
prefix="vuiso-demo-$$"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null
    done
    rm -rf "$work" "/var/run/dpdk/$prefix" "/var/run/dpdk/$prefix-net" "/var/run/dpdk/$prefix-guest"
}
trap 'cleanup; release_hugepages' EXIT
ctl() { build/app/vuiso-ctl/vuiso-ctl -f "$prefix" "$@"; }
fail() { echo "demo: $*" >&2; exit 1; }
wait_sock() { for _ in $(seq $(($2 * 10))); do [ -S "$1" ] && return 0; sleep 0.1; done; return 1; }
wait_text() { for _ in $(seq $(($3 * 10))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }

img=$work/disk.raw
truncate -s 128M "$img"
head -c 1M /dev/urandom >"$work/pre"
dd if="$work/pre" of="$img" bs=1M seek=32 conv=notrunc status=none
pre_md5=$(md5sum <"$work/pre" | cut -c1-32)
secret=$(head -c 64 /dev/urandom | od -An -tx1 | tr -d ' \n')

echo "== qemu-storage-daemon: 128 MiB image as vhost-user-blk"
qemu-storage-daemon --blockdev driver=file,node-name=file0,filename="$img" \
    --export type=vhost-user-blk,id=exp0,node-name=file0,writable=on,num-queues=1,addr.type=unix,addr.path="$work/blk.sock" \
    >"$work/qsd.log" 2>&1 &
qsd=$!; pids+=($qsd)
wait_sock "$work/blk.sock" 10 || fail "qemu-storage-daemon did not start: $(cat "$work/qsd.log")"

# Hugepages for EAL and the isolated region when they can be had (given back
# at exit); plain memory otherwise.
if reserve_hugepages 64; then memory=(--in-memory); else memory=(--no-huge -m 256); fi
echo "== dpdk-vuiso: vuiso0, isolation=bounce, one lcore (-l 1), ${memory[*]}"
build/app/dpdk-vuiso/dpdk-vuiso "${memory[@]}" --no-pci -l 1 --file-prefix "$prefix" \
    --log-level lib.eal:warning \
    --vdev "vuiso0,guest=$work/guest.sock,backend=$work/blk.sock,isolation=bounce" \
    >"$work/vuiso.log" 2>&1 &
vuiso=$!; pids+=($vuiso)
wait_sock "$work/guest.sock" 20 || fail "dpdk-vuiso did not open its guest socket: $(cat "$work/vuiso.log")"

echo "== QEMU/TCG guest (Linux 6.1, busybox) with vhost-user-blk on dpdk-vuiso"
qemu-system-x86_64 -machine q35,accel=tcg -m 256 -nodefaults -display none -no-reboot \
    -kernel "$VUISO_GUEST_KERNEL" -initrd "$VUISO_GUEST_INITRD" \
    -append "console=ttyS0 quiet panic=-1 vuiso.run=demo vuiso.secret=$secret" \
    -object memory-backend-memfd,id=mem0,size=256M,share=on -numa node,memdev=mem0 \
    -chardev socket,id=c0,path="$work/guest.sock" -device vhost-user-blk-pci,chardev=c0,num-queues=1 \
    -serial file:"$work/console.log" >"$work/qemu.log" 2>&1 &
qemu=$!; pids+=($qemu)
wait_text "$work/console.log" "VUISO READY" 90 || fail "the guest did not finish: $(tail -5 "$work/console.log")"
grep "VUISO " "$work/console.log" | sed 's/^/   guest: /'

ok=$(grep -c "VUISO OK" "$work/console.log")
pre_ok=no; grep -q "VUISO PRE $pre_md5" "$work/console.log" && pre_ok=yes
on_disk=0
while read -r _ _ bs off len sum; do
    [ "$(dd if="$img" bs=4096 skip=$((off / 4096)) count=$((len / 4096)) status=none | md5sum | cut -c1-32)" = "$sum" ] &&
        on_disk=$((on_disk + 1))
done < <(grep -o "VUISO OK.*" "$work/console.log" | tr -d '\r')

inode=$(awk '/memfd:memory-backend-memfd/ {print $5; exit}' "/proc/$qemu/maps")
maps=no; awk -v i="$inode" '$5 == i && /memfd:/ {found=1} END {exit !found}' "/proc/$qsd/maps" && maps=yes
python3 scripts/lib/scan_memory.py "$qemu" "$secret" || fail "the secret is not in guest RAM: the scan cannot be trusted"
found=no; python3 scripts/lib/scan_memory.py "$qsd" "$secret" && found=yes
readable=no; [ "$maps" = yes ] || [ "$found" = yes ] && readable=yes

echo "== testpmd net_vhost (macswap) as the net back-end; vuiso1 added at run time (the blk guest runs on)"
stdbuf -oL dpdk-testpmd -l 0,1 --no-huge -m 256 --no-pci --file-prefix "$prefix-net" \
    --vdev "net_vhost0,iface=$work/net.sock,queues=1" -- --stats-period 1 --nb-cores 1 \
    --total-num-mbufs=4096 --forward-mode=macswap >"$work/net.log" 2>&1 &
pids+=($!)
wait_sock "$work/net.sock" 20 || fail "testpmd did not start: $(tail -5 "$work/net.log")"
ctl port-add "vuiso1,guest=$work/net-guest.sock,backend=$work/net.sock" | sed 's/^/   vuiso-ctl: /' ||
    fail "vuiso-ctl port-add failed"
wait_sock "$work/net-guest.sock" 20 || fail "vuiso1's guest socket did not open"
ctl port-list | sed 's/^/   vuiso-ctl: /'
echo "== net guest: testpmd virtio_user, frames looped through vuiso1 for 3 s"
stdbuf -oL dpdk-testpmd -l 0,1 --main-lcore 1 --no-huge -m 256 --no-pci --file-prefix "$prefix-guest" \
    --vdev "net_virtio_user0,path=$work/net-guest.sock,queues=1" -- --stats-period 1 --nb-cores 1 \
    --total-num-mbufs=4096 --forward-mode=io --tx-first >"$work/net-guest.log" 2>&1 &
netguest=$!; pids+=($netguest)
sleep 4
kill "$netguest"; wait "$netguest" 2>/dev/null
net_rx=$(grep -o "RX-packets: *[0-9]*" "$work/net-guest.log" | tail -1 | grep -o "[0-9]*$")
net_tx=$(grep -o "TX-packets: *[0-9]*" "$work/net-guest.log" | tail -1 | grep -o "[0-9]*$")
echo "== telemetry (dpdk-telemetry.py -f $prefix)"
printf '/vuiso/ports\n/vuiso/port/stats,0\n/vuiso/port/stats,1\n' | dpdk-telemetry.py -f "$prefix" 2>/dev/null |
    python3 -c 'import json,sys
port = 0
for l in sys.stdin:
    l = l.strip()
    if not l.startswith("{"): continue
    (k, v), = json.loads(l).items()
    if k == "/vuiso/ports": print("   /vuiso/ports:", v)
    else: print("   /vuiso/port/stats,%d: requests %d, completions %d, bytes %d to the back-end, %d to the guest, latency p50 %s us" % (port, v["requests"], v["completions"], v["bytes_to_backend"], v["bytes_to_guest"], v["latency"]["p50_us"])); port += 1'

kill "$qemu"; wait "$qemu" 2>/dev/null
kill -TERM "$vuiso"; wait "$vuiso"; vrc=$?
relayed=$(grep -o "vuiso0: relayed .*" "$work/vuiso.log" | tail -1)
relayed1=$(grep -o "vuiso1: relayed .*" "$work/vuiso.log" | tail -1)
region=$(grep "vuiso0: device started" "$work/vuiso.log" |
    grep -o "region [0-9]* MiB [a-z]* on NUMA node [0-9a-z]*" | tail -1)

echo
echo "== summary"
echo "   blk path:                      guest (QEMU/TCG) -> dpdk-vuiso vuiso0 (bounce) -> qemu-storage-daemon"
echo "   net path (added at run time):  guest (testpmd virtio_user) -> dpdk-vuiso vuiso1 (bounce) -> testpmd (macswap)"
echo "   dpdk-vuiso:                    $relayed"
echo "                                  $relayed1"
echo "   vuiso0's isolated region:      ${region#region } (sized to the guest's ring)"
echo "   data verified in the guest:    $ok/3 block sizes (4 KiB, 64 KiB, 1 MiB) read back identical"
echo "   data verified in the image:    $on_disk/3 written ranges match the guest's checksums"
echo "   host data read by the guest:   $pre_ok"
echo "   back-end maps guest memory fd: $maps"
echo "   guest secret in back-end RAM:  $found"
echo "   back-end can read guest RAM:   $readable"
echo "   net guest frames:              ${net_tx:-0} sent, ${net_rx:-0} came back"
echo "   dpdk-vuiso exit on SIGTERM:    $vrc"
[ "$ok" = 3 ] && [ "$on_disk" = 3 ] && [ "$pre_ok" = yes ] && [ "$readable" = no ] && [ "$vrc" = 0 ] &&
    [ "${net_rx:-0}" -gt 0 ]
