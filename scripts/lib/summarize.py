#!/usr/bin/env python3
"""Counts every test meson ran, per GoogleTest case (from the JUnit log),
and counts a test binary that failed without a failed case (a crash, a
timeout) as one more failure. Prints the failures, then one summary line:
'N passed, N failed, N skipped'. Exits 1 when anything failed."""
import json
import sys
import xml.etree.ElementTree as ET

logdir = sys.argv[1]
passed = failed = skipped = 0
failed_names = []
junit_failed_suites = set()

root = ET.parse(f"{logdir}/testlog.junit.xml").getroot()
for suite in root.iter("testsuite"):
    for case in suite.iter("testcase"):
        tags = {child.tag for child in case}
        name = f"{suite.get('name')}.{case.get('name')}"
        if "failure" in tags or "error" in tags:
            failed += 1
            failed_names.append(name)
            junit_failed_suites.add(suite.get("name"))
        elif "skipped" in tags:
            skipped += 1
        else:
            passed += 1

with open(f"{logdir}/testlog.json") as f:
    for line in f:
        t = json.loads(line)
        if t["result"] in ("OK", "SKIP", "EXPECTEDFAIL"):
            continue
        # JUnit suites are named "<project>.<test name>.<gtest suite>".
        marker = f"{t['name']}."
        if not any(marker in s for s in junit_failed_suites):
            failed += 1
            failed_names.append(f"{t['name']} ({t['result']}: the binary itself failed)")

for n in failed_names:
    print(f"FAILED: {n}")
line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(1 if failed else 0)
