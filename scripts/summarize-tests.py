#!/usr/bin/env python3
"""Adds up test cases across Meson's test log: every runner's own summary
(cmocka, pytest, go test -v, minitest, TAP) where it prints one, else the
Meson test itself counts as one case. Prints "N passed, M failed[, K skipped]".
Exits 1 when anything failed."""
import json
import re
import sys

CMOCKA_PASS = re.compile(r"^\[  PASSED  \] (\d+) test", re.M)
CMOCKA_FAIL = re.compile(r"^\[  FAILED  \] (\d+) test", re.M)
CMOCKA_SKIP = re.compile(r"^\[  SKIPPED \] (\d+) test", re.M)
PYTEST = re.compile(r"^=+ (.*?) in [\d.]+s", re.M)
GO_PASS = re.compile(r"^\s*--- PASS: ", re.M)
GO_FAIL = re.compile(r"^\s*--- FAIL: ", re.M)
GO_SKIP = re.compile(r"^\s*--- SKIP: ", re.M)
MINITEST = re.compile(r"^(\d+) runs, \d+ assertions, (\d+) failures, (\d+) errors, (\d+) skips", re.M)
PLAIN = re.compile(r"^(?:\w+: )?(\d+) passed, (\d+) failed(?:, (\d+) skipped)?$", re.M)


def count(out):
    """(passed, failed, skipped) from a runner's output, or None."""
    if CMOCKA_PASS.search(out) or CMOCKA_FAIL.search(out):
        p = sum(int(x) for x in CMOCKA_PASS.findall(out))
        f = sum(int(x) for x in CMOCKA_FAIL.findall(out))
        s = sum(int(x) for x in CMOCKA_SKIP.findall(out))
        return p, f, s
    m = PYTEST.findall(out)
    if m:
        p = f = s = 0
        for summary in m:
            for n, what in re.findall(r"(\d+) (passed|failed|error|errors|skipped|xfailed|xpassed)", summary):
                n = int(n)
                if what == "passed" or what == "xpassed":
                    p += n
                elif what == "skipped" or what == "xfailed":
                    s += n
                else:
                    f += n
        return p, f, s
    m = MINITEST.findall(out)
    if m:
        runs = sum(int(r) for r, _, _, _ in m)
        bad = sum(int(a) + int(b) for _, a, b, _ in m)
        skip = sum(int(s) for _, _, _, s in m)
        return runs - bad - skip, bad, skip
    if GO_PASS.search(out) or GO_FAIL.search(out):
        return len(GO_PASS.findall(out)), len(GO_FAIL.findall(out)), len(GO_SKIP.findall(out))
    m = PLAIN.findall(out)
    if m:
        return sum(int(a) for a, _, _ in m), sum(int(b) for _, b, _ in m), sum(int(c or 0) for _, _, c in m)
    return None


def main(path):
    passed = failed = skipped = 0
    with open(path) as f:
        for line in f:
            t = json.loads(line)
            result = t.get("result")
            out = (t.get("stdout") or "") + "\n" + (t.get("stderr") or "")
            c = count(out)
            if result == "SKIP":
                skipped += 1
                continue
            if c is None:
                c = (1, 0, 0) if result in ("OK", "EXPECTEDFAIL") else (0, 1, 0)
            elif result not in ("OK", "EXPECTEDFAIL") and c[1] == 0:
                # The program failed (crash, timeout, bad exit) beyond its own count.
                c = (c[0], c[1] + 1, c[2])
            passed, failed, skipped = passed + c[0], failed + c[1], skipped + c[2]
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
