#!/usr/bin/env python3
"""Idle cost of adaptive polling: dpdk-vuiso (bounce, core 1) between
vuiso-bench and qemu-storage-daemon (core 0). Measures the CPU dpdk-vuiso
uses while its port is idle, with --idle-ms 100 (sleeps) and --idle-ms 0
(always polls), and the latency of the first request after an idle period
(the lcore wakes on the guest's kick) against the steady-state p50.

  tests/perf/idle.py [--idle SECONDS] [--rounds N]
"""
import argparse
import time

import perflib as pl


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    import os
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(idle_ms, idle_s, rounds):
    with pl.Run("idle") as run:
        bsock, gsock = run.path("blk.sock"), run.path("guest.sock")
        pl.qsd(run, bsock, "null")
        v = pl.vuiso(run, [f"vuiso0,guest={gsock},backend={bsock}"], [gsock],
                     ["--idle-ms", str(idle_ms)])
        steady = pl.bench(run, ["blk", "--socket", gsock, "--qd", "1", "--time", "2"])
        time.sleep(1)
        c0 = cpu_seconds(v.p.pid)
        time.sleep(idle_s)
        cpu = (cpu_seconds(v.p.pid) - c0) / idle_s
        # One request every `think` ms: each finds the lcore asleep (if it sleeps).
        think = 300
        r = pl.bench(run, ["blk", "--socket", gsock, "--qd", "1", "--think", str(think),
                           "--time", str(rounds * think / 1000), "--warmup", "0.3"])
        lc = pl.telemetry(v.prefix, ["/vuiso/lcores"])[0]["lcore1"]
        return {"cpu": cpu, "steady_p50": steady["lat_p50_us"], "first": r["lat_p50_us"],
                "sleeps": lc["sleeps"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--idle", type=float, default=5, help="seconds of idleness measured")
    ap.add_argument("--rounds", type=int, default=10, help="requests after an idle gap")
    a = ap.parse_args()
    pl.check_built()
    pl.environment()
    rows = []
    for idle_ms in (100, 0):
        m = measure(idle_ms, a.idle, a.rounds)
        rows.append([f"--idle-ms {idle_ms}", f"{m['cpu'] * 100:.1f} %", m["sleeps"],
                     f"{m['steady_p50']:.1f}", f"{m['first']:.1f}"])
    print(f"\nidle cost: dpdk-vuiso CPU over {a.idle:g} s of an idle port; latency of the first "
          f"request after a 300 ms idle gap (p50 of {a.rounds}) vs steady-state QD1 p50")
    pl.table(rows, ["mode", "idle CPU (one core = 100 %)", "lcore sleeps", "steady p50 us",
                    "after-idle p50 us"])


if __name__ == "__main__":
    main()
