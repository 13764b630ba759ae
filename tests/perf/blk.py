#!/usr/bin/env python3
"""blk benchmark: vuiso-bench -> qemu-storage-daemon, directly and through
dpdk-vuiso (bounce, one lcore on core 1), side by side in one invocation,
for a null-co disk and a file on tmpfs: 4 KiB randread at QD1 and QD32,
128 KiB read at QD8. Prints IOPS, MB/s, p50/p99 latency and the ratios.

  tests/perf/blk.py [--time SECONDS] [--isolation bounce|passthrough]
"""
import argparse

import perflib as pl

CASES = [("randread", "4k", 1), ("randread", "4k", 32), ("read", "128k", 8)]


def measure(backend, isolation, seconds, proxied):
    with pl.Run("blk") as run:
        bsock = run.path("blk.sock")
        pl.qsd(run, bsock, backend)
        sock, v = bsock, None
        if proxied:
            sock = run.path("guest.sock")
            v = pl.vuiso(run, [f"vuiso0,guest={sock},backend={bsock},isolation={isolation}"], [sock])
        out = []
        for rw, bs, qd in CASES:
            if v:
                s0, l0 = pl.telemetry(v.prefix, ["/vuiso/port/stats,0", "/vuiso/lcores"])
            r = pl.bench(run, ["blk", "--socket", sock, "--rw", rw, "--bs", bs, "--qd", str(qd),
                               "--time", str(seconds), "--span", "128M"])
            if v:
                s1, l1 = pl.telemetry(v.prefix, ["/vuiso/port/stats,0", "/vuiso/lcores"])
                reqs = max(1, s1["requests"] - s0["requests"])
                r["vuiso_cycles_per_request"] = (pl.lcore_cycles(l1)[0] -
                                                 pl.lcore_cycles(l0)[0]) / reqs
                # The back-end's time as dpdk-vuiso sees it (shadow post to
                # used, kick wake-up included); cumulative, so exact for the
                # first case only.
                r["backend_p50_us"] = float(s1["latency"]["p50_us"]) if not out else None
            out.append(r)
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--time", type=float, default=5)
    ap.add_argument("--isolation", default="bounce", choices=["bounce", "passthrough"])
    a = ap.parse_args()
    pl.check_built()
    pl.environment()
    rows = []
    for backend in ("null", "tmpfs"):
        direct = measure(backend, a.isolation, a.time, False)
        prox = measure(backend, a.isolation, a.time, True)
        for (rw, bs, qd), d, p in zip(CASES, direct, prox):
            rows.append([backend, f"{rw} {bs} QD{qd}",
                         f"{d['iops']:.0f}", f"{p['iops']:.0f}", f"{pl.ratio(p['iops'], d['iops']):.3f}",
                         f"{d['mbps']:.1f}", f"{p['mbps']:.1f}",
                         f"{d['lat_p50_us']:.1f}", f"{p['lat_p50_us']:.1f}",
                         f"{p['lat_p50_us'] - d['lat_p50_us']:+.1f}",
                         f"{d['lat_p99_us']:.1f}", f"{p['lat_p99_us']:.1f}",
                         f"{p.get('vuiso_cycles_per_request', 0):.0f}",
                         "" if p.get("backend_p50_us") is None else f"{p['backend_p50_us']:.1f}"])
    print(f"\nblk, vuiso-bench -> qemu-storage-daemon, direct vs through dpdk-vuiso ({a.isolation}), "
          f"{a.time:g} s per case")
    pl.table(rows, ["disk", "case", "IOPS direct", f"IOPS {a.isolation}", "ratio",
                    "MB/s direct", f"MB/s {a.isolation}", "p50 us direct", f"p50 us {a.isolation}",
                    "added p50 us", "p99 us direct", f"p99 us {a.isolation}",
                    "vuiso cycles/request", "back-end p50 us seen by vuiso"])


if __name__ == "__main__":
    main()
