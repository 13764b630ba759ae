#!/usr/bin/env python3
"""net loopback benchmark: one dpdk-testpmd (core 0) with a net_vhost port
and a net_virtio_user port, io forwarding seeded with tx_first, the
virtio_user port connected directly to the vhost port, then through
dpdk-vuiso (bounce) on core 1 — with one lcore (-l 1: the main lcore
relays both rings) and, with --lcores one,two, also with two lcores on that
core (--lcores 0@1,1@1: one ring each, time-sliced). 64 B and 1518 B
frames; Mpps (packets received per second, both ports) and the ratio. For
each proxied run it also reports dpdk-vuiso's copy efficiency against the
rte_memcpy roofline on its core and its cycles per request.

With --packed the virtio_user port runs packed rings (packed_vq=1), in the
direct run and in the proxied one; --shadow split,packed measures the
proxied run with each shadow ring format (shadow-ring=) toward net_vhost.
--binaries A,B measures the proxied run with each dpdk-vuiso binary (a
change against its baseline, side by side).

  tests/perf/net_loopback.py [--time SECONDS] [--sizes 64,1518] [--lcores one,two]
                             [--bursts N] [--queue-size N] [--packed] [--shadow split,packed]
                             [--binaries PATH,PATH]
"""
import argparse
import os
import re
import subprocess
import time

import perflib as pl

PROMPT = "testpmd> "


def stats(tp):
    """Sends 'show port stats all'; returns {port: rx_packets}."""
    before = tp.text().count("Tx-bps:")
    tp.send("show port stats all")
    pl.wait_for(lambda: tp.text().count("Tx-bps:") >= before + 2, 10, "testpmd's port stats")
    text = tp.text()
    rx = {}
    for m in re.finditer(r"NIC statistics for port (\d+)\s+#+\s+RX-packets:\s+(\d+)", text):
        rx[int(m.group(1))] = int(m.group(2))
    return rx


def profile(run, seconds, core):
    """perf record on `core` for `seconds`; returns the top of the report."""
    data = run.path("perf.data")
    r = subprocess.run(["perf", "record", "-q", "-o", data, "-C", str(core), "--", "sleep",
                        str(seconds)], capture_output=True, text=True, timeout=seconds + 30)
    if r.returncode != 0:
        return f"(perf record failed: {r.stderr.strip()})"
    r = subprocess.run(["perf", "report", "-i", data, "--stdio", "--sort", "comm,symbol",
                        "--percent-limit", "2"], capture_output=True, text=True, timeout=60)
    return "\n".join(l for l in r.stdout.splitlines() if l and not l.startswith("#"))


LCORE_MODELS = {"one": pl.ONE_LCORE, "two": ["--lcores", f"0@{pl.VUISO_CORE},1@{pl.VUISO_CORE}"]}


def measure(size, seconds, proxied, want_profile=False, devargs="", lcores="one", bursts=8,
            queue_size=256, packed=False, binary=None):
    with pl.Run("net") as run:
        vsock = run.path("vhost.sock")
        prefix = run.prefix("testpmd")
        tp = run.start(["stdbuf", "-oL", "dpdk-testpmd", "--lcores", f"0@{pl.PEER_CORE},1@{pl.PEER_CORE}",
                        "--no-huge", "-m", "1024", "--no-pci", "--file-prefix", prefix,
                        "--log-level", "lib.eal:warning", "--vdev", f"net_vhost0,iface={vsock},queues=1",
                        "--", "-i", "--nb-cores", "1", "--forward-mode", "io", "--rxd", "1024",
                        "--txd", "1024"], "testpmd", pl.PEER_CORE, stdin=subprocess.PIPE)
        pl.wait_for(lambda: PROMPT in tp.text() and os.path.exists(vsock), 30, "testpmd's prompt")
        sock, v = vsock, None
        if proxied:
            sock = run.path("guest.sock")
            v = pl.vuiso(run, [f"vuiso0,guest={sock},backend={vsock},isolation=bounce{devargs}"],
                         [sock], lcores=LCORE_MODELS[lcores], binary=binary)
        tp.send(f"port attach net_virtio_user0,path={sock},queues=1,queue_size={queue_size}"
                + (",packed_vq=1" if packed else ""))
        pl.wait_for(lambda: "Port 1 is attached" in tp.text(), 20, "virtio_user to attach")
        tp.send("port start all")
        tp.send(f"set txpkts {size}")
        tp.send(f"start tx_first {bursts}")
        time.sleep(1.0)  # warm-up
        t0, a = time.monotonic(), stats(tp)
        if v:
            s0, l0 = pl.telemetry(v.prefix, ["/vuiso/port/stats,0", "/vuiso/lcores"])
        if want_profile:
            out_profile = {c: profile(run, 2, c) for c in (pl.PEER_CORE, pl.VUISO_CORE)}
        time.sleep(seconds)
        t1, b = time.monotonic(), stats(tp)
        out = {"mpps": sum(b[p] - a.get(p, 0) for p in b) / (t1 - t0) / 1e6}
        if v:
            s1, l1 = pl.telemetry(v.prefix, ["/vuiso/port/stats,0", "/vuiso/lcores"])
            dt = t1 - t0
            moved = (s1["bytes_to_backend"] + s1["bytes_to_guest"]) - (s0["bytes_to_backend"] + s0["bytes_to_guest"])
            reqs = s1["requests"] - s0["requests"]
            (b0, t0c), (b1, t1c) = pl.lcore_cycles(l0), pl.lcore_cycles(l1)
            busy, total = b1 - b0, t1c - t0c
            passes = pl.lcore_passes(l1) - pl.lcore_passes(l0)
            out.update(copied_gbs=moved / dt / 1e9, cycles_per_request=busy / max(reqs, 1),
                       busy_share=busy / max(total, 1), requests_per_s=reqs / dt,
                       requests_per_pass=reqs / max(passes, 1))
        if want_profile:
            out["profile"] = out_profile
        tp.send("stop")
        tp.send("quit")
        return out


def roofline(sizes, seconds):
    """rte_memcpy on dpdk-vuiso's core, for the same sizes."""
    out = pl.bench(None, ["copy", "--sizes", ",".join(str(s) for s in sizes), "--time",
                          str(seconds)], core=pl.VUISO_CORE)
    return {int(j["size"]): j for j in (out if isinstance(out, list) else [out])}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--time", type=float, default=5)
    ap.add_argument("--sizes", default="64,1518")
    ap.add_argument("--lcores", default="one", help="dpdk-vuiso lcore models: one, two or one,two")
    ap.add_argument("--bursts", type=int, default=8, help="start tx_first N (frames in the loop)")
    ap.add_argument("--queue-size", type=int, default=256, help="virtio_user's ring size")
    ap.add_argument("--devargs", default="", help="more port devargs, e.g. buf-size=2K")
    ap.add_argument("--packed", action="store_true", help="virtio_user with packed_vq=1")
    ap.add_argument("--shadow", default="split", help="shadow ring formats: split, packed or both")
    ap.add_argument("--binaries", default="", help="dpdk-vuiso binaries to compare (default: the build's)")
    ap.add_argument("--profile", action="store_true",
                    help="perf record both cores during each proxied run, print the top symbols")
    a = ap.parse_args()
    pl.check_built()
    pl.environment()
    sizes = [int(s) for s in a.sizes.split(",")]
    models = a.lcores.split(",")
    roof = roofline(sizes, 1.0)
    rows, eff = [], []
    for size in sizes:
        d = measure(size, a.time, False, bursts=a.bursts, queue_size=a.queue_size, packed=a.packed)
        binaries = a.binaries.split(",") if a.binaries else [None]
        for m, shadow, binary in [(m, sh, b) for m in models for sh in a.shadow.split(",")
                                  for b in binaries]:
            devargs = f",shadow-ring={shadow}" + ("," + a.devargs if a.devargs else "")
            p = measure(size, a.time, True, a.profile, devargs, m, a.bursts, a.queue_size, a.packed,
                        binary)
            if binary:
                shadow = f"{shadow} [{binary}]"
            if a.profile:
                for core, text in p["profile"].items():
                    print(f"\nprofile, {size} B through dpdk-vuiso ({m} lcore), core {core}:\n{text}")
            rows.append([f"{size} B", LCORE_MODELS[m][-1], shadow, f"{d['mpps']:.3f}", f"{p['mpps']:.3f}",
                         f"{pl.ratio(p['mpps'], d['mpps']):.3f}", f"{p['cycles_per_request']:.0f}",
                         f"{p['busy_share'] * 100:.0f} %", f"{p['requests_per_pass']:.1f}"])
            mc = roof[size]["gbytes_per_s"]
            eff.append([f"{size} B", LCORE_MODELS[m][-1], shadow, f"{p['copied_gbs']:.2f}", f"{mc:.2f}",
                        f"{pl.ratio(p['copied_gbs'], mc) * 100:.1f} %"])
    print(f"\nnet loopback, testpmd io fwd (core 0), start tx_first {a.bursts}, direct vs through "
          f"dpdk-vuiso bounce (core 1), {a.time:g} s per run, virtio_user "
          f"{'packed' if a.packed else 'split'} rings")
    pl.table(rows, ["frame", "vuiso lcores", "shadow ring", "Mpps direct", "Mpps bounce", "ratio",
                    "vuiso cycles/request", "vuiso lcore busy", "requests/busy pass"])
    print("\ncopy efficiency: bytes dpdk-vuiso copied per second vs rte_memcpy on its core")
    pl.table(eff, ["frame", "vuiso lcores", "shadow ring", "vuiso GB/s copied", "rte_memcpy GB/s", "efficiency"])


if __name__ == "__main__":
    main()
