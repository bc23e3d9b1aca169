"""fsc.filesystem beside dogpile_filesystem's paylogic.filesystem: a large
value stored and read through a dogpile region, and 1 KB values.

    SEED_SRC=/path/to/dogpile_filesystem \\
    PYTHONPATH=build/bindings/python:bindings/python LD_LIBRARY_PATH=build/lib \\
    python3 bench/dogpile_large.py [--dir PARENT] [--reps 3] [--mib 256 (0: none)]
                                   [--before-rev REV] [--small-ops 2000]
                                   [--small-rounds 21]

Every measurement runs in a fresh child process (python3 this file --child
...), which prints its wall times and its peak RSS (VmHWM). Variants run
interleaved, repetition by repetition; medians (min-max) are printed.

  fsc      fsc.filesystem of the fsc package on PYTHONPATH
  before   the same at git revision REV (--before-rev), when given: its
           bindings/python/fsc is extracted to a temp directory put first on
           sys.path (the compiled module still comes from PYTHONPATH)
  seed     paylogic.filesystem from the checkout in SEED_SRC

Values: "bytes" (one bytes object of --mib MiB) and "list" (a list of 4 KiB
bytes objects, --mib MiB in all), each wrapped by dogpile in a CachedValue.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

KIB = 1024
MIB = 1024 * KIB


def peak_rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])


def make_value(kind, size):
    if kind == "bytes":
        return b"\xa5" * size  # every page written (bytes(size) would leave them unmapped)
    return [i.to_bytes(8, "little") * (4 * KIB // 8) for i in range(size // (4 * KIB))]


def region_for(variant, base_dir):
    from dogpile.cache import make_region

    if variant == "seed":
        from dogpile.cache.region import register_backend

        register_backend("paylogic.filesystem", "dogpile_filesystem.backend", "GenericFSBackend")
        name, arguments = "paylogic.filesystem", {"base_dir": base_dir, "cache_size": 4 << 30}
    else:
        import fsc  # noqa: F401 (registers fsc.filesystem)

        name, arguments = "fsc.filesystem", {"base_dir": base_dir, "cache_size": 4 << 30}
    return make_region().configure(name, arguments=arguments)


def child_large(variant, kind, size, base_dir):
    """Sets, drops and gets one value; prints the times and the peak RSS."""
    region = region_for(variant, base_dir)
    value = make_value(kind, size)
    held_kib = peak_rss_kib()
    start = time.perf_counter()
    region.set("big", value)
    set_s = time.perf_counter() - start
    del value
    start = time.perf_counter()
    got = region.get("big")
    get_s = time.perf_counter() - start
    length = len(got) if kind == "bytes" else sum(map(len, got))
    assert length == size, (length, size)
    return {"set": set_s, "get": get_s, "peak_kib": peak_rss_kib(), "held_kib": held_kib}


def load_before(before_dir):
    """fsc.dogpile_backends as found under before_dir, loaded beside the
    current one as fsc._dogpile_before (its registrations are undone)."""
    import importlib.util

    from dogpile.cache.region import register_backend

    import fsc

    path = os.path.join(before_dir, "fsc", "dogpile_backends.py")
    spec = importlib.util.spec_from_file_location("fsc._dogpile_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, cls in (("fsc.filesystem", "FilesystemBackend"),
                      ("fsc.raw_filesystem", "RawFilesystemBackend")):
        register_backend(name, fsc.dogpile_backends.__name__, cls)
    return module


def child_small(ops, rounds, base_dir, before_dir):
    """CPU us per backend set and get of 1,000-byte values (dogpile's
    CachedValue) of `ops` new keys a round, in rounds alternating (in turn
    first) between the current backend and, with before_dir, the earlier one
    (each on its own cache)."""
    from dogpile.cache.api import CachedValue

    import fsc

    classes = {"fsc": fsc.dogpile_backends.FilesystemBackend}
    if before_dir:
        classes["before"] = load_before(before_dir).FilesystemBackend
    backends = {v: cls({"base_dir": os.path.join(base_dir, v)}) for v, cls in classes.items()}
    value = CachedValue(b"v" * 1000, {"ct": time.time(), "v": 2})
    result = {v: {"set": [], "get": []} for v in backends}
    order = list(backends.items())
    for n in range(rounds):
        keys = ["r%d-k%d" % (n, i) for i in range(ops)]  # new keys: no compaction in between
        for variant, backend in order if n % 2 else order[::-1]:
            # CPU time of this process: the machine's other load does not count.
            start = time.process_time()
            for key in keys:
                backend.set(key, value)
            result[variant]["set"].append((time.process_time() - start) / ops * 1e6)
            start = time.process_time()
            for key in keys:
                backend.get(key)
            result[variant]["get"].append((time.process_time() - start) / ops * 1e6)
    return result


def run_child(variant, paths, parent, args):
    """One fresh child process, with a fresh directory under parent; its JSON result."""
    env = dict(os.environ)
    extra = [p for p in (paths.get(variant),) if p]
    env["PYTHONPATH"] = os.pathsep.join(extra + [env.get("PYTHONPATH", "")])
    base_dir = tempfile.mkdtemp(prefix="dogpile-large-", dir=parent)
    try:
        out = subprocess.run([sys.executable, __file__, "--child", variant, base_dir] + args,
                             env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    finally:
        shutil.rmtree(base_dir, ignore_errors=True)
    return json.loads(out)


def extract_before(rev, into):
    """bindings/python/fsc at rev, unpacked under into; the directory to put on sys.path."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    archive = subprocess.run(["git", "-C", repo, "archive", rev, "bindings/python/fsc"],
                             check=True, stdout=subprocess.PIPE).stdout
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)
    return os.path.join(into, "bindings", "python")


def median_range(values, fmt):
    return "%s (%s-%s)" % (fmt % statistics.median(values), fmt % min(values), fmt % max(values))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=os.environ.get("TMPDIR", "/tmp"))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--before-rev")
    parser.add_argument("--small-ops", type=int, default=2000)
    parser.add_argument("--small-rounds", type=int, default=21)
    parser.add_argument("--child", nargs="+")
    opts = parser.parse_args()
    if opts.child:
        variant, base_dir, what = opts.child[0], opts.child[1], opts.child[2]
        result = (child_small(int(opts.child[3]), int(opts.child[4]), base_dir, opts.child[5])
                  if what == "small" else child_large(variant, what, int(opts.child[3]), base_dir))
        print(json.dumps(result))
        return

    paths, variants = {"fsc": None}, ["fsc"]
    work = tempfile.mkdtemp(prefix="dogpile-bench-")
    try:
        if opts.before_rev:
            paths["before"] = extract_before(opts.before_rev, work)
            variants.append("before")
        if os.environ.get("SEED_SRC"):
            paths["seed"] = os.environ["SEED_SRC"]
            variants.append("seed")
        run(opts, paths, variants)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(opts, paths, variants):
    size = opts.mib * MIB
    print("dir %s (%s), %d MiB, %d reps, variants %s" % (
        opts.dir, subprocess.run(["stat", "-f", "-c", "%T", opts.dir], stdout=subprocess.PIPE,
                                 text=True).stdout.strip(), opts.mib, opts.reps, variants))
    for kind in ("bytes", "list") if size else ():
        results = {v: [] for v in variants}
        for _ in range(opts.reps):
            for variant in variants:
                results[variant].append(run_child(variant, paths, opts.dir, [kind, str(size)]))
        print("\n%s value, %d MiB: seconds, and peak RSS / value size (held: RSS holding the "
              "value before the set)" % (kind, opts.mib))
        for variant in variants:
            rs = results[variant]
            print("  %-7s set %s  get %s  peak %s  held %s" % (
                variant, median_range([r["set"] for r in rs], "%.3f"),
                median_range([r["get"] for r in rs], "%.3f"),
                median_range([r["peak_kib"] * KIB / size for r in rs], "%.2fx"),
                median_range([r["held_kib"] * KIB / size for r in rs], "%.2fx")))
        for variant in variants:
            if variant == "fsc":
                continue
            rs, base = results["fsc"], results[variant]
            print("  fsc/%-7s set %s  get %s  peak %s" % (variant, *(
                median_range([a[m] / b[m] for a, b in zip(rs, base)], "%.2fx")
                for m in ("set", "get", "peak_kib"))))

    # One child alternates between the two, round by round: the ratio is per round.
    before = paths.get("before") or ""
    small = run_child("fsc", {}, opts.dir,
                      ["small", str(opts.small_ops), str(opts.small_rounds), before])
    print("\n1,000-byte values, backend.set/get of %d new keys a round, %d rounds: "
          "CPU us per op" % (opts.small_ops, opts.small_rounds))
    for variant, r in small.items():
        print("  %-7s set %s  get %s" % (variant, median_range(r["set"], "%.2f"),
                                        median_range(r["get"], "%.2f")))
    if "before" in small:
        print("  fsc/before set %s  get %s" % tuple(
            median_range([a / b for a, b in zip(small["fsc"][m], small["before"][m])], "%.3fx")
            for m in ("set", "get")))


if __name__ == "__main__":
    main()
