"""Print, for each test-module prefix, how many tests of a pytest JUnit XML report passed.

  python tests/odoo/junit_counts.py REPORT.xml tests.e2e_odoo tests.local

One line per prefix: `<prefix>: N passed, N failed, N skipped`, or `<prefix>: not collected`.
tests/run.sh prints these lines and, with REQUIRE_ODOO_TESTS=1, fails on a skip or an absence.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET


def counts(report: str, prefix: str) -> str:
    try:
        cases = ET.parse(report).getroot().iter("testcase")
    except (OSError, ET.ParseError):
        return f"{prefix}: not collected (no pytest report)"
    passed = failed = skipped = 0
    for case in cases:
        if not (case.get("classname") or "").startswith(prefix + "."):
            continue
        if case.find("skipped") is not None:
            skipped += 1
        elif case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        else:
            passed += 1
    if passed + failed + skipped == 0:
        return f"{prefix}: not collected"
    return f"{prefix}: {passed} passed, {failed} failed, {skipped} skipped"


if __name__ == "__main__":
    for name in sys.argv[2:]:
        print(counts(sys.argv[1], name))
