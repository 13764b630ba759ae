"""Shared plumbing of the benchmarks in tests/perf: processes pinned to a
core and stopped by PID, dpdk-vuiso, qemu-storage-daemon, dpdk-testpmd,
vuiso-bench and dpdk-telemetry.py. Every wait has a timeout; every file a
run makes lives in one temporary directory, removed at the end.

CPU placement: dpdk-vuiso gets core 1 (one lcore, `-l 1`, unless a script
asks for another lcore set on that core); everything else (the back-end,
the load generator or testpmd) runs on core 0 in both runs. dpdk-vuiso
takes hugepages (EAL --in-memory, a hugetlb region) when 256 are free or can
be reserved; what was reserved is given back at exit.
"""
import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("VUISO_BUILD", os.path.join(ROOT, "build"))
VUISO = os.path.join(BUILD, "app", "dpdk-vuiso", "dpdk-vuiso")
BENCH = os.path.join(BUILD, "app", "vuiso-bench", "vuiso-bench")
PEER_CORE, VUISO_CORE = 0, 1
ONE_LCORE = ["-l", str(VUISO_CORE)]
HUGEPAGES = "/proc/sys/vm/nr_hugepages"


def free_hugepages():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("HugePages_Free:"):
                return int(line.split()[1])
    return 0


def reserve_hugepages(want):
    """At least `want` free 2 MiB hugepages, if root can reserve them; what
    is added is given back at exit. Returns whether they are there."""
    free = free_hugepages()
    if free >= want:
        return True
    try:
        with open(HUGEPAGES) as f:
            before = int(f.read())
        with open(HUGEPAGES, "w") as f:
            f.write(str(before + want - free))

        def give_back():
            with open(HUGEPAGES, "w") as f:
                f.write(str(before))

        atexit.register(give_back)
    except OSError:
        return False
    return free_hugepages() >= want


def die(msg):
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(1)


def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    die(f"timed out after {timeout} s waiting for {what}")


class Proc:
    """A child process pinned to `core`, output to `log`, stopped by PID."""

    def __init__(self, argv, log, core, stdin=None):
        self.log = log
        self.argv = argv
        self.out = open(log, "ab")
        self.p = subprocess.Popen(["taskset", "-c", str(core)] + argv, stdout=self.out,
                                  stderr=subprocess.STDOUT, stdin=stdin,
                                  start_new_session=True)

    def running(self):
        return self.p.poll() is None

    def send(self, line):
        self.p.stdin.write((line + "\n").encode())
        self.p.stdin.flush()

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.running():
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self.out.close()
        return self.p.returncode

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()


class Run:
    """One benchmark run: a temp dir and every process started in it."""

    def __init__(self, name):
        # /dev/shm is tmpfs: the "file on tmpfs" back-end and the sockets live here.
        self.dir = tempfile.mkdtemp(prefix=f"vuiso-perf-{name}-", dir="/dev/shm")
        self.procs, self.prefixes = [], []

    def path(self, name):
        return os.path.join(self.dir, name)

    def start(self, argv, name, core, stdin=None):
        p = Proc(argv, self.path(name + ".log"), core, stdin)
        self.procs.append(p)
        return p

    def prefix(self, name):
        p = f"vuisoperf-{name}-{os.getpid()}-{len(self.prefixes)}"
        self.prefixes.append(p)
        return p

    def close(self):
        for p in reversed(self.procs):
            p.stop()
        for p in self.prefixes:
            shutil.rmtree(f"/var/run/dpdk/{p}", ignore_errors=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def qsd(run, sock, backend, poll_max_ns=None):
    """qemu-storage-daemon exporting `backend`: 'null' or 'tmpfs'. With
    poll_max_ns, the export runs in an iothread with that polling limit
    (QEMU's adaptive polling: 0 = purely event driven)."""
    if backend == "null":
        blockdev = "driver=null-co,node-name=disk0,size=1073741824,read-zeroes=on"
    else:
        image = run.path("disk.raw")  # on tmpfs (the run dir is in /dev/shm)
        with open(image, "wb") as f:
            f.truncate(256 << 20)
        blockdev = f"driver=file,node-name=disk0,cache.direct=off,filename={image}"
    argv = ["qemu-storage-daemon", "--blockdev", blockdev]
    export = f"type=vhost-user-blk,id=exp0,node-name=disk0,writable=on,addr.type=unix,addr.path={sock}"
    if poll_max_ns is not None:
        argv += ["--object", f"iothread,id=iot0,poll-max-ns={poll_max_ns}"]
        export += ",iothread=iot0"
    p = run.start(argv + ["--export", export], "qsd", PEER_CORE)
    wait_for(lambda: os.path.exists(sock), 10, f"qemu-storage-daemon's socket {sock}")
    return p


def vuiso(run, vdevs, guest_socks, app_args=(), lcores=None, binary=None):
    """dpdk-vuiso (`binary`, default the build's) on VUISO_CORE: `lcores`
    (EAL's options) or one lcore."""
    prefix = run.prefix("vuiso")
    memory = ["--in-memory"] if reserve_hugepages(256) else ["--no-huge", "-m", "512"]
    argv = [binary or VUISO] + memory + ["--no-pci"] + list(lcores or ONE_LCORE) + [
        "--file-prefix", prefix, "--log-level", "lib.eal:warning",
        "--log-level", "lib.vhost.config:warning"]
    for v in vdevs:
        argv += ["--vdev", v]
    argv += ["--"] + list(app_args)
    p = run.start(argv, "vuiso", VUISO_CORE)
    p.prefix = prefix
    for s in guest_socks:
        wait_for(lambda: os.path.exists(s) or not p.running(), 20, f"dpdk-vuiso's socket {s}")
        if not p.running():
            die("dpdk-vuiso exited:\n" + p.text())
    return p


def bench(run, args, timeout=120, core=PEER_CORE):
    """vuiso-bench pinned to `core` (None: not pinned); returns its JSON result(s)."""
    pin = [] if core is None else ["taskset", "-c", str(core)]
    r = subprocess.run(pin + [BENCH] + args + ["--json"], capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        die(f"vuiso-bench {' '.join(args)} failed: {r.stderr}")
    out = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
    return out[0] if len(out) == 1 else out


def telemetry(prefix, commands):
    r = subprocess.run(["dpdk-telemetry.py", "-f", prefix], input="\n".join(commands) + "\n",
                       capture_output=True, text=True, timeout=20)
    replies = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
    if len(replies) != len(commands):
        die(f"dpdk-telemetry.py answered {len(replies)} of {len(commands)}: {r.stdout}{r.stderr}")
    return [next(iter(x.values())) for x in replies]


def lcore_cycles(lcores):
    """(busy, total) cycles of dpdk-vuiso's relay lcores (one /vuiso/lcores
    reply), all on VUISO_CORE: busy summed, total of one."""
    busy = sum(l["busy_cycles"] for l in lcores.values())
    total = max(l["total_cycles"] for l in lcores.values())
    return busy, total


def lcore_passes(lcores):
    """Busy passes (passes over an lcore's queues that moved something) of
    dpdk-vuiso's relay lcores, summed."""
    return sum(l["busy_passes"] for l in lcores.values())


def ratio(a, b):
    return a / b if b else float("nan")


def table(rows, header):
    """Prints rows (lists) under header as a markdown table; returns it."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        lines.append("| " + " | ".join(str(x) for x in r) + " |")
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def check_built():
    for b in (VUISO, BENCH):
        if not os.access(b, os.X_OK):
            die(f"{b} is missing: build first (meson setup build && ninja -C build)")


def environment():
    """Prints (and returns) what crossing from the peers' core to dpdk-vuiso's
    costs here: on a VM it depends on where the host placed the vCPUs, and
    every proxied figure pays it."""
    same, cross = bench(None, ["xcore", "--cores", f"{PEER_CORE},{VUISO_CORE}"], core=None)
    text = (f"cross-core costs now: cache line round trip {cross['cache_line_round_trip_ns']:.0f} ns, "
            f"eventfd wake-up round trip {cross['eventfd_round_trip_p50_us']:.1f} us "
            f"(same core {same['eventfd_round_trip_p50_us']:.1f} us)")
    print(text, flush=True)
    return text
