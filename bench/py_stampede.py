"""A stampede through Python: N forked processes call get_or_create on one
missing key at once, through fsc.Cache and through a dogpile region on
fsc.filesystem; each exits as soon as it has the value. Prints, per N, the
median wall time from the release of the start barrier to the last exit,
as a ratio to the creator's own time (the baseline: 1.0 is one creation and
nothing more), and how many times the creator ran (must be 1).

    PYTHONPATH=build/bindings/python:bindings/python LD_LIBRARY_PATH=build/lib \\
      /usr/bin/python3 bench/py_stampede.py [--dir /tmp] [--procs 32,128] [--reps 5] [--creator-ms 200]
"""

import argparse
import os
import shutil
import statistics
import tempfile
import time

import fsc
from dogpile.cache import make_region


def caller(mode, base, made, creator_s, ready_w, go_r):
    def create():
        with open(made, "a") as f:
            f.write("x\n")
        time.sleep(creator_s)
        return b"v" if mode == "fsc.Cache" else "v"

    if mode == "fsc.Cache":
        cache = fsc.Cache(base)
        call = lambda: cache.get_or_create("k", create)  # noqa: E731
    else:
        region = make_region().configure("fsc.filesystem", arguments={"base_dir": base})
        call = lambda: region.get_or_create("k", create)  # noqa: E731
    os.write(ready_w, b"r")
    os.read(go_r, 1)  # EOF when the parent closes the pipe: all start at once
    call()


def stampede(mode, n, root, rep, creator_s):
    base = os.path.join(root, "%s-%d-%d" % (mode, n, rep))
    made = base + ".made"
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    kids = []
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(ready_r)
                os.close(go_w)
                caller(mode, base, made, creator_s, ready_w, go_r)
                code = 0
            finally:
                os._exit(code)
        kids.append(pid)
    os.close(ready_w)
    os.close(go_r)
    for _ in range(n):
        if os.read(ready_r, 1) != b"r":
            raise SystemExit("py_stampede: a caller failed to start")
    t0 = time.monotonic()
    os.close(go_w)
    failed = sum(os.waitpid(pid, 0)[1] != 0 for pid in kids)
    wall = time.monotonic() - t0
    os.close(ready_r)
    with open(made) as f:
        creators = f.read().count("x")
    return wall, creators, failed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=tempfile.gettempdir())
    ap.add_argument("--procs", default="32,128")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--creator-ms", type=int, default=200)
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="fsc-py-stampede-", dir=a.dir)
    creator_s = a.creator_ms / 1000.0
    print("| caller | N | last done, ms (median) | / creator | range | creator runs | failed |")
    print("|---|---|---|---|---|---|---|")
    try:
        for mode in ("fsc.Cache", "dogpile fsc.filesystem"):
            for n in map(int, a.procs.split(",")):
                runs = [stampede(mode, n, root, rep, creator_s) for rep in range(a.reps)]
                walls = [w * 1000 for w, _, _ in runs]
                med = statistics.median(walls)
                print("| %s | %d | %.0f | %.2fx | %.2f-%.2fx | %s | %d |" % (
                    mode, n, med, med / a.creator_ms, min(walls) / a.creator_ms, max(walls) / a.creator_ms,
                    ",".join(str(c) for _, c, _ in runs), sum(f for _, _, f in runs)))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
