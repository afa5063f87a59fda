#!/usr/bin/python3
"""Prints, for each failed test in the given ctest JUnit files, its name and the tail of its output.

run-tests.sh calls it last: CI keeps only the end of a run's output, and with ctest -j the
output of a failed test is buried hundreds of lines above the stage summaries.
Usage: failure-summary.py STAGE=FILE.xml ...   (missing files are reported, not fatal)
"""
import sys
import xml.etree.ElementTree as ET

TAIL = 60  # lines of each failed test's output; pytest's short summary fits in far fewer


def failed_cases(path):
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        status = case.get("status", "")
        bad = case.find("failure") is not None or case.find("error") is not None
        if bad or status in ("fail", "failed", "timeout"):
            out = case.findtext("system-out") or ""
            yield case.get("name", "?"), out


def main(args):
    any_failed = False
    for arg in args:
        stage, _, path = arg.partition("=")
        try:
            cases = list(failed_cases(path))
        except (OSError, ET.ParseError) as e:
            print(f"=== {stage}: no test report ({e})")
            any_failed = True
            continue
        for name, out in cases:
            any_failed = True
            lines = out.rstrip().splitlines()
            print(f"=== FAILED in {stage}: {name} (last {min(TAIL, len(lines))} lines)")
            print("\n".join(lines[-TAIL:]))
    if not any_failed:
        print("=== no failed tests")


if __name__ == "__main__":
    main(sys.argv[1:])
