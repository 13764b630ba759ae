#!/usr/bin/env python3
"""Counts every test meson ran in each build tree given (LABEL=LOGDIR ...),
per GoogleTest case (from the JUnit log), and counts a test binary that
failed without a failed case (a crash, a timeout) as one more failure.
Prints the failures, then one summary line: 'N passed, N failed, N skipped'.
Exits 1 when anything failed."""
import json
import sys
import xml.etree.ElementTree as ET

passed = failed = skipped = 0
failed_names = []

for arg in sys.argv[1:]:
    label, logdir = arg.split("=", 1) if "=" in arg else ("", arg)
    tag = f"[{label}] " if label else ""
    failed_here = set()
    root = ET.parse(f"{logdir}/testlog.junit.xml").getroot()
    for suite in root.iter("testsuite"):
        for case in suite.iter("testcase"):
            tags = {child.tag for child in case}
            name = f"{suite.get('name')}.{case.get('name')}"
            if "failure" in tags or "error" in tags:
                failed += 1
                failed_names.append(tag + name)
                failed_here.add(name)
            elif "skipped" in tags:
                skipped += 1
            else:
                passed += 1
    with open(f"{logdir}/testlog.json") as f:
        for line in f:
            t = json.loads(line)
            if t["result"] in ("OK", "SKIP", "EXPECTEDFAIL"):
                continue
            # JUnit names a case "<project>.<test name>.<gtest suite>.<case>",
            # or "<project>.<test name>" when the binary died before its XML.
            if not any(t["name"] in n for n in failed_here):
                failed += 1
                failed_names.append(f"{tag}{t['name']} ({t['result']}: the binary itself failed)")

for n in failed_names:
    print(f"FAILED: {n}")
line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(1 if failed else 0)
