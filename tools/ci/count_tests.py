#!/usr/bin/env python3
"""Counts the test results of one build directory after `meson test`.

For each test in meson-logs/testlog.json: a Catch2 run `ringlet_tests-<setup>` counts its
junit file meson-logs/catch-<setup>.xml (one test per <testcase>, failed if it holds a
<failure> or <error>); if meson saw that run fail (crash, timeout, sanitizer report at exit)
but the junit file shows no failure, or the file is missing or cut short, one more failure is
counted. Any other meson test counts as one test. Prints the failures, then a last line
`PASSED FAILED` for the caller.
Usage: count_tests.py BUILD_DIR
"""
import json
import os
import sys
import xml.etree.ElementTree as ET

PASSING = {"OK", "EXPECTEDFAIL"}
NOT_RUN = {"SKIP"}


def junit_counts(path):
    """(tests, failed, failure lines) of a Catch2 junit file; raises if unreadable."""
    root = ET.parse(path).getroot()
    tests = failed = 0
    lines = []
    for case in root.iter("testcase"):
        tests += 1
        problems = case.findall("failure") + case.findall("error")
        if problems:
            failed += 1
            first = problems[0]
            where = (first.text or "").strip().splitlines()
            detail = first.get("message", "") or (where[0] if where else "")
            lines.append(f"{case.get('name')}: {first.tag} {detail}"[:300])
    return tests, failed, lines


def sanitizer_lines(stderr):
    """The headline of each sanitizer report in a test's stderr, with its first frames."""
    out = []
    lines = (stderr or "").splitlines()
    for i, line in enumerate(lines):
        if "ERROR: AddressSanitizer" in line or "ERROR: LeakSanitizer" in line:
            frames = [f for f in lines[i + 1:i + 12] if f.strip().startswith("#")][:4]
            out += [line.strip()] + [f.strip() for f in frames]
        elif "runtime error:" in line:
            out.append(line.strip())
        if len(out) >= 15:
            break
    return out


def main():
    build = sys.argv[1]
    logs = os.path.join(build, "meson-logs")
    entries = []
    try:
        with open(os.path.join(logs, "testlog.json"), encoding="utf-8") as f:
            entries = [json.loads(line) for line in f if line.strip()]
    except OSError as e:
        print(f"  no meson test log ({e}): counting one failure")
        print("0 1")
        return
    passed = failed = 0
    for entry in entries:
        name, result = entry.get("name", "?"), entry.get("result", "?")
        if name.startswith("ringlet_tests-"):
            setup = name[len("ringlet_tests-"):]
            path = os.path.join(logs, f"catch-{setup}.xml")
            try:
                tests, bad, lines = junit_counts(path)
            except (OSError, ET.ParseError) as e:
                print(f"  {name}: {result}, junit file unreadable ({e}): one failure")
                failed += 1
                continue
            passed += tests - bad
            failed += bad
            for line in lines[:25]:
                print(f"  {name}: FAILED {line}")
            if len(lines) > 25:
                print(f"  {name}: ... and {len(lines) - 25} more failed test cases")
            if result not in PASSING:
                for line in sanitizer_lines(entry.get("stderr")):
                    print(f"  {name}: {line[:200]}")
            if result not in PASSING and bad == 0:
                print(f"  {name}: meson says {result} although no test case failed "
                      f"(crash, timeout or sanitizer report at exit): one failure")
                failed += 1
            print(f"  {name}: {tests} test cases, {bad} failed ({result})")
        elif result in PASSING:
            passed += 1
        elif result not in NOT_RUN:
            print(f"  {name}: {result}")
            failed += 1
    print(f"{passed} {failed}")


if __name__ == "__main__":
    main()
