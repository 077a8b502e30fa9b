#!/usr/bin/env python3
"""Prints how many tests were skipped and why, from CTest's JUnit reports (ctest --output-junit).

  tests/skip_summary.py build/ctest-junit.xml [build-fuzz/ctest-junit.xml ...]

A CTest test is skipped when its binary exited 77 (SKIP_RETURN_CODE: every GoogleTest case it ran
was skipped; tests/common/test_main.cpp) or printed GoogleTest's "[  SKIPPED ]" for its one case.
The reason is the message GoogleTest printed under "file:line: Skipped" (GTEST_SKIP() << reason),
or else the last line of the output (a script that exits 77). GoogleTest cases skipped inside a
test that otherwise passed (a binary run as one CTest test) are counted too, so no skip is hidden
in a pass. The last line counts every report together in the plain form CI reads
("tests: N passed, N failed, N skipped"). Standard library only; always exits 0.
"""
import collections
import re
import sys
import xml.etree.ElementTree as ET

ANSI = re.compile(r"\[NON-XML-CHAR-0x1B\]\[[0-9;]*m|\x1b\[[0-9;]*m")
SKIPPED_AT = re.compile(r"^\S+:\d+: Skipped$")
SKIPPED_CASE = re.compile(r"^\[  SKIPPED \] (\S+) \(")


def reasons(output):
    """(case, reason) for each GoogleTest case skipped in `output`."""
    lines = [ANSI.sub("", line).rstrip() for line in output.splitlines()]
    found, reason = [], None
    for i, line in enumerate(lines):
        if SKIPPED_AT.match(line):
            reason = lines[i + 1].strip() if i + 1 < len(lines) and lines[i + 1].strip() else ""
        m = SKIPPED_CASE.match(line)
        if m:
            found.append((m.group(1), reason or "(no reason given)"))
            reason = None
    return found


def last_line(output):
    lines = [ANSI.sub("", line).strip() for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 0
    skipped = collections.defaultdict(list)   # reason -> CTest tests skipped whole
    inside = collections.defaultdict(list)    # reason -> GoogleTest cases skipped in passing tests
    passed = failed = 0
    for path in sys.argv[1:]:
        try:
            root = ET.parse(path).getroot()
        except (OSError, ET.ParseError) as e:
            print(f"skip summary: cannot read {path}: {e}")
            continue
        for case in root.iter("testcase"):
            name = case.get("name").split("  # GetParam()")[0]
            out = case.findtext("system-out") or ""
            if case.get("status") == "notrun" and case.find("skipped") is not None:
                found = reasons(out)
                why = sorted({r for _, r in found}) or [last_line(out)]
                skipped["; ".join(why)].append(name)
            elif case.get("status") == "run":
                passed += 1
                for gtest_case, why in reasons(out):
                    inside[why].append(f"{name}: {gtest_case}")
            else:
                failed += 1
    total = sum(len(v) for v in skipped.values())
    print(f"skipped: {total} test{'s' if total != 1 else ''}" + (":" if total else ""))
    for why, names in sorted(skipped.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        shown = ", ".join(sorted(names)[:4]) + (", ..." if len(names) > 4 else "")
        print(f"  {len(names):4d}  {why}  ({shown})")
    n_inside = sum(len(v) for v in inside.values())
    if n_inside:
        print(f"skipped inside passing tests: {n_inside} GoogleTest case{'s' if n_inside != 1 else ''}:")
        for why, names in sorted(inside.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            shown = ", ".join(sorted(names)[:3]) + (", ..." if len(names) > 3 else "")
            print(f"  {len(names):4d}  {why}  ({shown})")
    print(f"tests: {passed} passed, {failed} failed, {total} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
