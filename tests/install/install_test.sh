#!/usr/bin/env bash
# `meson install` into a DESTDIR: the binaries, man pages, systemd unit,
# EnvironmentFile and port files land where the unit expects them;
# `systemd-analyze verify` accepts the unit; and the installed dpdk-vuiso,
# started the way the unit starts it (its ExecStart, its EnvironmentFile,
# NOTIFY_SOCKET), tells systemd READY=1 only once the port its config file
# names listens (its back-end, qemu-storage-daemon, comes up 2 s late),
# answers the installed vuiso-ctl and stops on SIGTERM with status 0.
# Usage: install_test.sh BUILD_DIR
set -uo pipefail
build=$1
dest=$(mktemp -d /tmp/vuiso-install-XXXXXX)
prefix="vuiso-install-$$"
pid=
qsd=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    [ -n "$qsd" ] && kill "$qsd" 2>/dev/null && wait "$qsd" 2>/dev/null
    rm -rf "$dest" "/var/run/dpdk/$prefix"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

meson install -C "$build" --destdir "$dest" --no-rebuild --quiet >"$dest/install.log" 2>&1 ||
    fail "meson install: $(cat "$dest/install.log")"
opt() { meson introspect "$build" --buildoptions |
    python3 -c "import json,sys; print(next(o['value'] for o in json.load(sys.stdin) if o['name']=='$1'))"; }
p=$(opt prefix) bindir=$(opt bindir) sysconfdir=$(opt sysconfdir) mandir=$(opt mandir) datadir=$(opt datadir)
abs() { case $1 in /*) echo "$1" ;; *) echo "$p/$1" ;; esac; }
bin=$(abs "$bindir") etc=$(abs "$sysconfdir") man=$(abs "$mandir") doc=$(abs "$datadir")/doc/dpdk-vuiso
unit=$(find "$dest" -name dpdk-vuiso.service | head -1)
[ -n "$unit" ] || fail "no dpdk-vuiso.service installed"
for f in "$bin/dpdk-vuiso" "$bin/vuiso-ctl" "$bin/vuiso-probe" "$man/man8/dpdk-vuiso.8" \
    "$man/man8/vuiso-ctl.8" "$man/man8/vuiso-probe.8" "$etc/default/dpdk-vuiso" \
    "$etc/dpdk-vuiso/ports.json" "$doc/examples/ports.json"; do
    [ -e "$dest$f" ] || fail "$f is not installed"
done
echo "installed: $(cd "$dest" && find . -type f | wc -l) files, unit ${unit#$dest}"

# verify checks that ExecStart's binary exists: a copy of the unit whose
# paths point into DESTDIR (the man pages are checked on their own below).
mkdir -p "$dest/verify"
sed -e "s|=$bin/|=$dest$bin/|; s|$etc/|$dest$etc/|g" "$unit" >"$dest/verify/dpdk-vuiso.service"
out=$(systemd-analyze verify --man=no "$dest/verify/dpdk-vuiso.service" 2>&1) ||
    fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify warns: $out"
grep -q "Type=notify" "$unit" || fail "the unit is not Type=notify"
for m in dpdk-vuiso vuiso-ctl vuiso-probe; do
    w=$(MANWIDTH=80 man --warnings -l "$dest$man/man8/$m.8" 2>&1 >/dev/null)
    [ -z "$w" ] || fail "man page $m.8: $w"
done

# The unit's ExecStart with its EnvironmentFile's variables, paths in DESTDIR.
execstart=$(sed -n 's/^ExecStart=//p' "$unit")
envfile=$(sed -n 's/^EnvironmentFile=-\?//p' "$unit")
# shellcheck disable=SC1090
source "$dest$envfile"
# This machine: one lcore on core 1, a file prefix of this test's own.
VUISO_EAL_ARGS=${VUISO_EAL_ARGS/--file-prefix vuiso/--file-prefix $prefix}
cmd=$(eval "echo $execstart")
cmd=${cmd//"$bin/"/"$dest$bin/"}
cmd=${cmd//"$etc/"/"$dest$etc/"}
echo "starting as the unit would: $cmd"

# The installed port file, with one port on a back-end not there yet.
guest="$dest/guest.sock" backend="$dest/blk.sock"
printf '{"ports": [{"name": "vuiso0", "guest": "%s", "backend": "%s"}]}\n' "$guest" "$backend" \
    >"$dest$etc/dpdk-vuiso/ports.json"
truncate -s 16M "$dest/disk.raw"

notify="$dest/notify.sock"
python3 - "$notify" "$guest" >"$dest/notify.log" 2>&1 <<'PY' &
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(30)
end = time.time() + 30
while time.time() < end:
    try:
        m = s.recv(4096).decode()
    except socket.timeout:
        break
    print(m, flush=True)
    if "READY=1" in m:
        print("guest socket at READY:", "yes" if os.path.exists(sys.argv[2]) else "no", flush=True)
        sys.exit(0)
sys.exit(1)
PY
listener=$!
for _ in $(seq 50); do [ -S "$notify" ] && break; sleep 0.1; done
NOTIFY_SOCKET=$notify $cmd >"$dest/vuiso.log" 2>&1 &
pid=$!
sleep 2
grep -q "READY=1" "$dest/notify.log" && fail "READY=1 before the configured port listens: $(cat "$dest/notify.log")"
qemu-storage-daemon --blockdev driver=file,node-name=f0,filename="$dest/disk.raw" \
    --export type=vhost-user-blk,id=e0,node-name=f0,writable=on,addr.type=unix,addr.path="$backend" \
    >"$dest/qsd.log" 2>&1 &
qsd=$!
wait "$listener" || fail "no READY=1 from dpdk-vuiso: $(cat "$dest/notify.log") $(cat "$dest/vuiso.log")"
grep -q "guest socket at READY: yes" "$dest/notify.log" ||
    fail "READY=1 before the guest socket listened: $(cat "$dest/notify.log")"
grep -q "STATUS=1 ports, control socket /var/run/dpdk/$prefix/vuiso.sock" "$dest/notify.log" ||
    fail "READY without the status line: $(cat "$dest/notify.log")"
list=$("$dest$bin/vuiso-ctl" -f "$prefix" port-list) || fail "vuiso-ctl port-list: $list"
echo "$list"
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
[ "$rc" = 0 ] || fail "dpdk-vuiso exited $rc on SIGTERM: $(tail -5 "$dest/vuiso.log")"
[ -e "$guest" ] && fail "the guest socket is left behind"
echo "PASS: installed, verified, ready once its port listened, answered, stopped"
