#!/usr/bin/env python3
"""footprint: many ports in one dpdk-vuiso. One qemu-storage-daemon exports
one null-co disk N times (core 0); dpdk-vuiso (one lcore on core 1,
hugepages) serves N bounce ports. Measures the time from dpdk-vuiso's start
until every guest socket listens, its RSS and the hugepages it holds with
no guest, then with a VMM (vuiso-bench, 2 requests a second) on every port,
and after they have all gone. Per port: the difference divided by N.

  tests/perf/footprint.py [--ports 64]
"""
import argparse
import os
import subprocess
import time

import perflib as pl


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def huge_in_use():
    """2 MiB hugepages in use on the machine (total - free)."""
    total = free = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("HugePages_Total:"):
                total = int(line.split()[1])
            elif line.startswith("HugePages_Free:"):
                free = int(line.split()[1])
    return total - free


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--ports", type=int, default=64)
    a = ap.parse_args()
    pl.check_built()
    n = a.ports
    if not pl.reserve_hugepages(2 * n + 512):
        pl.die(f"cannot reserve {2 * n + 512} hugepages")
    with pl.Run("footprint") as run:
        argv = ["qemu-storage-daemon", "--blockdev",
                "driver=null-co,node-name=disk0,size=67108864,read-zeroes=on"]
        for i in range(n):
            argv += ["--export", f"type=vhost-user-blk,id=e{i},node-name=disk0,writable=on,"
                                 f"addr.type=unix,addr.path={run.path(f'b{i}.sock')}"]
        run.start(argv, "qsd", pl.PEER_CORE)
        pl.wait_for(lambda: all(os.path.exists(run.path(f"b{i}.sock")) for i in range(n)), 30,
                    "qemu-storage-daemon's sockets")
        huge0 = huge_in_use()
        guests = [run.path(f"g{i}.sock") for i in range(n)]
        vdevs = [f"vuiso{i},guest={guests[i]},backend={run.path(f'b{i}.sock')}" for i in range(n)]
        t0 = time.monotonic()
        v = pl.vuiso(run, vdevs, guests)
        listening = time.monotonic() - t0
        time.sleep(1)
        idle_rss, idle_huge = rss_kib(v.p.pid), huge_in_use() - huge0

        vmms = [run.start([pl.BENCH, "blk", "--socket", g, "--qd", "1", "--think", "500",
                           "--time", "20", "--warmup", "0"], f"bench{i}", pl.PEER_CORE)
                for i, g in enumerate(guests)]
        pl.wait_for(lambda: v.text().count("device started") >= n, 60, "every device to start")
        time.sleep(2)
        busy_rss, busy_huge = rss_kib(v.p.pid), huge_in_use() - huge0
        info = pl.telemetry(v.prefix, ["/vuiso/port/info,0"])[0]
        for b in vmms:
            b.stop()
        pl.wait_for(lambda: v.text().count("device stopped") >= n, 60, "every device to stop")
        time.sleep(1)
        after_rss, after_huge = rss_kib(v.p.pid), huge_in_use() - huge0

    mib = 1 / 1024
    print(f"\n{n} bounce ports in one dpdk-vuiso (-l {pl.VUISO_CORE}, hugepages), one "
          f"qemu-storage-daemon, VMMs with one ring of 256; every guest socket listening "
          f"{listening:.2f} s after start")
    print(f"each running port's region: {info['region']['size'] >> 20} MiB "
          f"{info['region']['backing']}, {info['region']['pool_buffers']} units of "
          f"{info['region']['buf_size']} B")
    pl.table([
        ["no guest", f"{idle_rss * mib:.1f}", f"{idle_huge * 2}", "-", "-"],
        [f"{n} guests running", f"{busy_rss * mib:.1f}", f"{busy_huge * 2}",
         f"{(busy_rss - idle_rss) * mib / n:.2f}", f"{(busy_huge - idle_huge) * 2 / n:.1f}"],
        ["guests gone", f"{after_rss * mib:.1f}", f"{after_huge * 2}",
         f"{(after_rss - idle_rss) * mib / n:.2f}", f"{(after_huge - idle_huge) * 2 / n:.1f}"],
    ], ["state", "RSS MiB", "hugepages MiB", "RSS MiB per port (vs no guest)",
        "hugepages MiB per port (vs no guest)"])


if __name__ == "__main__":
    main()
