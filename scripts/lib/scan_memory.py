#!/usr/bin/env python3
"""scan_memory.py PID NEEDLE: exit 0 if NEEDLE is in PID's readable memory
(/proc/PID/maps + /proc/PID/mem), 1 if not, 2 if the scan itself failed."""
import sys

pid, needle = sys.argv[1], sys.argv[2].encode()
try:
    maps = open(f"/proc/{pid}/maps").read().splitlines()
    mem = open(f"/proc/{pid}/mem", "rb", buffering=0)
except OSError as e:
    print(f"scan_memory: {e}", file=sys.stderr)
    sys.exit(2)
chunk = 4 << 20
for line in maps:
    f = line.split()
    if f[1][0] != "r" or line.endswith(("[vvar]", "[vsyscall]")):
        continue
    start, end = (int(x, 16) for x in f[0].split("-"))
    at = start
    while at < end:
        try:
            mem.seek(at)
            data = mem.read(min(chunk + len(needle), end - at))
        except OSError:
            break
        if needle in data:
            sys.exit(0)
        at += chunk
sys.exit(1)
