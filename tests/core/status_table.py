#!/usr/bin/python3
"""Every hand-written list of status codes agrees with enum fsc_status in
include/fsc.h: fsc_strerror's names, Go's Code constants and its Err*
sentinels, and the names of the Python and Ruby error classes. (Lua builds
its table from the SWIG module at load time, and the CLI prints
fsc_strerror's names.) Usage: status_table.py SOURCE_ROOT"""
import os
import re
import sys


def read(root, path):
    with open(os.path.join(root, path), encoding="utf-8") as f:
        return f.read()


def block(text, start, end, path):
    """The text from the first start to the end after it."""
    i = text.find(start)
    j = text.find(end, i + len(start))
    if i < 0 or j < 0:
        sys.exit("%s: no %r ... %r" % (path, start, end))
    return text[i:j]


def check(path, want, got, problems):
    """got: name -> value a list gives, or None where it only names the status."""
    for name, value in want.items():
        if name not in got:
            problems.append("%s lacks %s (%d)" % (path, name, value))
        elif got[name] is not None and got[name] != value:
            problems.append("%s gives %s as %s, fsc.h as %d" % (path, name, got[name], value))
    problems += ["%s lists %s, not a status it should list" % (path, name) for name in got if name not in want]


def main(root):
    header = "include/fsc.h"
    enum = {name: int(value) for name, value in re.findall(
        r"(FSC_\w+) = (-?\d+)", block(read(root, header), "enum fsc_status {", "};", header))}
    errors = {name: value for name, value in enum.items() if value < 0}
    problems = []

    # fsc_strerror: a case per status, returning the status's own name.
    capi = "lib/capi/capi.cc"
    cases = re.findall(r'case (FSC_\w+): return "([^"]*)";',
                       block(read(root, capi), "const char *fsc_strerror", "default:", capi))
    check(capi, enum, {case: None for case, _ in cases}, problems)
    problems += ['%s: fsc_strerror(%s) is "%s"' % (capi, case, name) for case, name in cases if case != name]

    # Go: CodeX Code = value // FSC_NAME, and a sentinel ErrX = &Error{Code: CodeX}
    # for FSC_MISS and every error status.
    go = "bindings/go/errors.go"
    go_text = read(root, go)
    codes = re.findall(r"\b(Code\w+)\s+Code = (-?\d+)\s+// (FSC_\w+)", block(go_text, "const (", ")", go))
    check(go, enum, {name: int(value) for _, value, name in codes}, problems)
    sentinels = set(re.findall(r"\bErr\w+\s*= &Error\{Code: (Code\w+)\}", block(go_text, "var (", ")", go)))
    want_sentinel = dict(errors, FSC_MISS=enum.get("FSC_MISS", 1))
    check(go + " (Err* sentinels)", want_sentinel,
          {name: None for ident, _, name in codes if ident in sentinels and name in want_sentinel}, problems)

    # Python and Ruby: the class name of each error status.
    py = "bindings/python/fsc/__init__.py"
    check(py, errors, dict.fromkeys(re.findall(
        r'"(FSC_\w+)": "\w+"', block(read(root, py), "_ERRORS = {", "}", py))), problems)
    rb = "bindings/ruby/lib/fsc.rb"
    check(rb, errors, dict.fromkeys(re.findall(
        r"(FSC_\w+): :\w+", block(read(root, rb), "ERRORS = {", "}", rb))), problems)

    for p in problems:
        print(p)
    verdict = "lists that disagree: %d" % len(problems) if problems else "every list agrees"
    print("%d statuses in fsc.h; %s" % (len(enum), verdict))
    return 1 if problems or not errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
