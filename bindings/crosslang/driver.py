#!/usr/bin/python3
"""Cross-language tests of fsc: peers in Go, Ruby, Lua, Python and C work on
one cache directory at once and must agree on bytes, locks and get-or-create.

Every language's peer is given by options (see meson.build); a language
whose option is missing was not built and is skipped. Output is TAP-like,
ending with "N passed, M failed"; exit 1 on any failure, 77 when fewer than
two languages can run."""
import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

RUN_TIMEOUT = 60      # seconds any one peer may take
POLL_LIMIT = 60       # seconds to wait for a peer to signal readiness

passed = failed = 0
n = 0


def tap(ok, desc, diag=None):
    global passed, failed, n
    n += 1
    if ok:
        passed += 1
    else:
        failed += 1
    print("%s %d - %s" % ("ok" if ok else "not ok", n, desc), flush=True)
    if not ok and diag:
        for line in str(diag).rstrip("\n").splitlines():
            print("#   " + line)
    return ok


def note(msg):
    print("# " + msg, flush=True)


def build_go(args, work, base):
    """Builds the Go peer in base against a copy of the Go package with the
    SWIG output Meson generated; returns the binary's path or None. Only
    the Go build cache (safe to share between runs) lives in work."""
    root = os.path.join(base, "go")
    pkg = os.path.join(root, "fsc")
    shutil.copytree(args.go_src, pkg, ignore=shutil.ignore_patterns(
        "*_test.go", "README.md", "meson.build", "*.sh", "fsc_wrap.c"))
    swig_dir = os.path.join(pkg, "internal", "swigfsc")
    for gen in args.go_gen:
        shutil.copy(gen, swig_dir)
    peer = os.path.join(root, "peer")
    os.makedirs(peer)
    shutil.copy(os.path.join(args.src, "peer.go"), os.path.join(peer, "main.go"))
    with open(os.path.join(peer, "go.mod"), "w") as f:
        f.write("module fscxlangpeer\n\ngo 1.19\n\nrequire github.com/fsc-cache/fsc/bindings/go v0.0.0\n\nreplace github.com/fsc-cache/fsc/bindings/go => ../fsc\n")
    env = dict(os.environ, GOCACHE=os.path.join(work, "gocache"), GOPATH=os.path.join(work, "gopath"),
               GOPROXY="off", GOFLAGS="", GO111MODULE="on", CGO_ENABLED="1", GOTOOLCHAIN="local")
    env.setdefault("HOME", work)
    exe = os.path.join(peer, "xlang-peer-go")
    r = subprocess.run([args.go, "build", "-o", exe, "."], cwd=peer, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    if tap(r.returncode == 0 and os.access(exe, os.X_OK), "Go peer builds", r.stdout):
        return exe
    return None


def peers(args, work, base):
    """Language name -> argv prefix of its peer, for the languages built."""
    langs, skipped = {}, []
    if args.go and args.go_src and args.go_gen:
        exe = build_go(args, work, base)
        if exe:
            langs["go"] = [exe]
        else:
            skipped.append(("go", "the Go peer did not build"))
    else:
        skipped.append(("go", "Go binding not built"))
    if args.ruby and args.ruby_path:
        inc = []
        for d in args.ruby_path:
            inc += ["-I", d]
        langs["ruby"] = [args.ruby] + inc + [os.path.join(args.src, "peer.rb")]
    else:
        skipped.append(("ruby", "Ruby binding not built"))
    if args.lua:
        langs["lua"] = [args.lua, os.path.join(args.src, "peer.lua")]
    else:
        skipped.append(("lua", "Lua binding (or lua5.4) not built"))
    if args.python and args.python_path:
        langs["python"] = [args.python, os.path.join(args.src, "peer.py")]
    else:
        skipped.append(("python", "Python binding not built"))
    if args.c:
        langs["c"] = [args.c]
    else:
        skipped.append(("c", "C peer not built"))
    return langs, skipped


class Peers:
    def __init__(self, langs, env):
        self.langs = langs
        self.env = env

    def run(self, lang, *argv):
        """Runs one peer to its end: (exit status, stdout, stderr)."""
        try:
            r = subprocess.run(self.langs[lang] + list(argv), env=self.env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired as e:
            return None, e.stdout or "", "timed out after %d s" % RUN_TIMEOUT
        return r.returncode, r.stdout, r.stderr

    def spawn(self, lang, *argv):
        return subprocess.Popen(self.langs[lang] + list(argv), env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)


def finish(p):
    """Waits (bounded) for a spawned peer: (exit status, stdout, stderr)."""
    try:
        out, err = p.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return None, out, err + "\n(killed after %d s)" % RUN_TIMEOUT
    return p.returncode, out, err


def wait_files(paths, procs):
    """Polls until every path exists; fails early when a peer has exited.
    Returns None on success, else a reason."""
    deadline = time.monotonic() + POLL_LIMIT
    while True:
        missing = [p for p in paths if not os.path.exists(p)]
        if not missing:
            return None
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            return "\n".join("peer %s (pid %d) exited before signalling: %s" % (
                os.path.basename(p.args[0]) if len(p.args) < 3 else " ".join(
                    os.path.basename(a) for a in p.args[:2]), p.pid, diag(*finish(p))) for p in dead)
        if time.monotonic() > deadline:
            return "timed out waiting for %s" % " ".join(missing)
        time.sleep(0.002)


def diag(rc, out, err):
    return "exit %s\nstdout: %s\nstderr: %s" % (rc, out.strip()[:400], err.strip()[-1500:])


def binary(tag, size):
    """size bytes naming tag, with NUL and 0xff bytes and every byte value."""
    head = b"\x00\xff" + tag.encode() + b"\x00"
    body = bytes((i * 131 + 7) % 256 for i in range(max(0, size - len(head) - 1)))
    return (head + body + b"\xff")[:size] if size >= len(head) + 1 else head


# ---------------------------------------------------------------------------


def check_values(P, base):
    """Every language writes a value; every other language reads the same
    bytes. Then one key is passed round: each language reads what the last
    one stored and stores a new value in its place."""
    cache = os.path.join(base, "values")
    order = list(P.langs)
    sizes = {"go": 40000, "ruby": 123, "lua": 300, "python": 7000, "c": 65}
    for w in order:
        key = b"key\x00" + w.encode() + b"\xff\x00"
        value = binary("from " + w, sizes.get(w, 300))
        rc, out, err = P.run(w, "set", cache, key.hex(), value.hex())
        if not tap(rc == 0 and out.strip() == "stored",
                   "%s stores %d bytes under a key with NUL bytes" % (w, len(value)), diag(rc, out, err)):
            continue
        for r in order:
            if r == w:
                continue
            rc, out, err = P.run(r, "get", cache, key.hex())
            tap(rc == 0 and out.strip() == "hit " + value.hex(),
                "%s reads %s's value with the same bytes" % (r, w), diag(rc, out, err))
    # An empty value and a value of one NUL byte, from Go (or the first).
    w = order[0]
    for value in (b"", b"\x00"):
        key = b"\x00small" + value
        rc, out, err = P.run(w, "set", cache, key.hex(), value.hex())
        if tap(rc == 0, "%s stores a %d-byte value" % (w, len(value)), diag(rc, out, err)):
            for r in order[1:]:
                rc, out, err = P.run(r, "get", cache, key.hex())
                tap(rc == 0 and out.strip() == ("hit " + value.hex()).strip(),
                    "%s reads %s's %d-byte value" % (r, w, len(value)), diag(rc, out, err))

    # The ring: one key, replaced by each language in turn.
    key = b"ring\x00\xff"
    ring = order + order[:1]
    value = binary("ring 0 " + ring[0], 500)
    rc, out, err = P.run(ring[0], "set", cache, key.hex(), value.hex())
    tap(rc == 0, "ring: %s stores the first value" % ring[0], diag(rc, out, err))
    for i, lang in enumerate(ring[1:], 1):
        rc, out, err = P.run(lang, "get", cache, key.hex())
        tap(rc == 0 and out.strip() == "hit " + value.hex(),
            "ring: %s reads what %s stored" % (lang, ring[i - 1]), diag(rc, out, err))
        if i == len(ring) - 1:
            break
        value = binary("ring %d %s" % (i, lang), 500 + 37 * i)
        rc, out, err = P.run(lang, "set", cache, key.hex(), value.hex())
        tap(rc == 0 and out.strip() == "stored", "ring: %s replaces it" % lang, diag(rc, out, err))

    # A miss is a miss everywhere.
    for r in order:
        rc, out, err = P.run(r, "get", cache, b"absent\x00".hex())
        tap(rc == 0 and out.strip() == "miss", "%s misses an absent key" % r, diag(rc, out, err))


def check_long_keys(P, base):
    """Every binding stores a key longer than FSC_MAX_KEY under "fsc.sha256:"
    + its SHA-256 in hex: a value any language stores under such a key, every
    other language reads under the same key, and C (which takes no such key)
    under the hashed one. The keys go in files (@FILE): their hex is longer
    than one argument may be."""
    cache = os.path.join(base, "long-keys")
    hashing = [lang for lang in P.langs if lang != "c"]
    for w in hashing:
        key = binary("long key of " + w, 65536 + 1 + len(w))
        key_file = os.path.join(base, "long-key." + w)
        with open(key_file, "wb") as f:
            f.write(key)
        value = binary("long-key value from " + w, 100)
        rc, out, err = P.run(w, "set", cache, "@" + key_file, value.hex())
        if not tap(rc == 0 and out.strip() == "stored", "%s stores a value under a %d-byte key" % (w, len(key)),
                   diag(rc, out, err)):
            continue
        for r in hashing:
            if r != w:
                rc, out, err = P.run(r, "get", cache, "@" + key_file)
                tap(rc == 0 and out.strip() == "hit " + value.hex(),
                    "%s reads it under the same long key" % r, diag(rc, out, err))
        if "c" in P.langs:
            hashed = b"fsc.sha256:" + hashlib.sha256(key).hexdigest().encode()
            rc, out, err = P.run("c", "get", cache, hashed.hex())
            tap(rc == 0 and out.strip() == "hit " + value.hex(),
                "c reads it under fsc.sha256:<hex SHA-256 of the key>", diag(rc, out, err))


def check_lock(P, base, holder="ruby"):
    """A lock held by one process makes every other language's try-lock
    fail with the busy error; after its release they all take it."""
    if holder not in P.langs:
        note("SKIP lock check: %s not available to hold the lock" % holder)
        return
    cache = os.path.join(base, "locks")
    os.makedirs(cache, exist_ok=True)
    key = b"lock\x00\xff"
    ready = os.path.join(base, "lock.held")
    release = os.path.join(base, "lock.release")
    hold = P.spawn(holder, "hold", cache, key.hex(), ready, release)
    why = wait_files([ready], [hold])
    if not tap(why is None, "%s takes the lock and says so" % holder, why):
        hold.kill()
        finish(hold)
        return
    with open(ready) as f:
        pid = f.read().strip()
    tap(pid == str(hold.pid), "%s's signal names its pid" % holder, "read %r, pid %d" % (pid, hold.pid))
    for lang in P.langs:
        rc, out, err = P.run(lang, "trylock", cache, key.hex())
        tap(rc == 0 and out.strip() == "busy %d" % hold.pid,
            "%s's try-lock (timeout 0) is busy while %s holds it, and names the holder" % (lang, holder),
            diag(rc, out, err))
    tap(hold.poll() is None, "%s still holds the lock after the tries" % holder, diag(hold.poll(), "", ""))
    open(release, "w").close()
    rc, out, err = finish(hold)
    tap(rc == 0 and out.split("\n")[-2:] == ["released", ""],
        "%s releases the lock when told" % holder, diag(rc, out, err))
    for lang in P.langs:
        rc, out, err = P.run(lang, "trylock", cache, key.hex())
        tap(rc == 0 and out.strip() == "acquired", "%s's try-lock succeeds after the release" % lang,
            diag(rc, out, err))


def check_open_race(P, base, rnd, per_lang=2):
    """Processes of every language open one new cache directory at the same
    moment (fsc.h: many processes may open the same base_dir at once): each
    must open it and miss."""
    d = os.path.join(base, "open%d" % rnd)
    os.makedirs(d)
    cache = os.path.join(d, "cache")
    go = os.path.join(d, "go")
    procs, readies = [], []
    for lang in P.langs:
        for i in range(per_lang):
            ready = os.path.join(d, "ready.%s.%d" % (lang, i))
            procs.append((lang, P.spawn(lang, "openrace", cache, b"k\x00".hex(), ready, go)))
            readies.append(ready)
    why = wait_files(readies, [p for _, p in procs])
    ok = tap(why is None, "open round %d: %d peers wait for the start" % (rnd, len(procs)), why)
    open(go, "w").close()
    results = [(lang, p.pid) + finish(p) for lang, p in procs]
    if ok:
        bad = [r for r in results if r[2] != 0 or r[3].strip() != "miss"]
        tap(not bad, "open round %d: every peer opens the new cache directory and misses" % rnd,
            "\n".join("%s pid %d: %s" % (r[0], r[1], diag(*r[2:])) for r in bad))


def check_stampede(P, base, rnd, per_lang=2):
    """Processes of every language ask at the same moment for one missing
    key: one creator call in all, one value for all. The cache directory is
    created first, by one process, so that only the key is contended."""
    d = os.path.join(base, "stampede%d" % rnd)
    os.makedirs(d)
    cache = os.path.join(d, "cache")
    counter = os.path.join(d, "counter")
    go = os.path.join(d, "go")
    key = b"stampede\x00%d\xff" % rnd
    first = next(iter(P.langs))
    rc, out, err = P.run(first, "get", cache, key.hex())
    if not tap(rc == 0 and out.strip() == "miss", "round %d: %s creates the cache; the key is missing" % (rnd, first),
               diag(rc, out, err)):
        return
    procs, readies, mine = [], [], {}
    for lang in P.langs:
        for i in range(per_lang):
            ready = os.path.join(d, "ready.%s.%d" % (lang, i))
            value = binary("stampede %d %s %d" % (rnd, lang, i), 1000 + i)
            p = P.spawn(lang, "stampede", cache, key.hex(), ready, go, counter, value.hex())
            procs.append((lang, p))
            readies.append(ready)
            mine[(lang, p.pid)] = value
    why = wait_files(readies, [p for _, p in procs])
    ok = tap(why is None, "round %d: %d peers (%s) wait for the start" % (rnd, len(procs), " ".join(P.langs)), why)
    open(go, "w").close()
    results = [(lang, p.pid) + finish(p) for lang, p in procs]
    if not ok:
        return
    bad = [r for r in results if r[2] != 0 or not r[3].startswith("value ")]
    tap(not bad, "round %d: every peer gets a value" % rnd,
        "\n".join("%s pid %d: %s" % (r[0], r[1], diag(*r[2:])) for r in bad))
    try:
        with open(counter) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        lines = []
    tap(len(lines) == 1, "round %d: exactly one creator call in all" % rnd, "counter file: %r" % lines)
    values = {r[3].strip() for r in results if r[2] == 0}
    tap(len(values) == 1, "round %d: every peer gets the same value" % rnd,
        "\n".join("%s pid %d: %s" % (r[0], r[1], r[3].strip()[:60]) for r in results))
    if len(lines) >= 1:
        who = lines[0].split()
        expect = mine.get((who[0], int(who[1]))) if len(who) == 2 and who[1].isdigit() else None
        tap(expect is not None and values == {"value " + expect.hex()},
            "round %d: the value is the one the creator (%s) made" % (rnd, lines[0]),
            "creator line %r" % lines[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True, help="this directory (peer scripts)")
    ap.add_argument("--work", required=True, help="a directory for build output")
    ap.add_argument("--c", help="the C peer")
    ap.add_argument("--go", help="the go tool")
    ap.add_argument("--go-src", help="bindings/go")
    ap.add_argument("--go-gen", nargs=2, help="SWIG's fsc.go and fsc_wrap.c")
    ap.add_argument("--ruby")
    ap.add_argument("--ruby-path", action="append", help="a directory for ruby -I")
    ap.add_argument("--lua")
    ap.add_argument("--python")
    ap.add_argument("--python-path")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    os.makedirs(args.work, exist_ok=True)
    base = tempfile.mkdtemp(prefix="fsc-xlang-")
    try:
        langs, skipped = peers(args, args.work, base)
        for lang, why in skipped:
            note("SKIP %s: %s" % (lang, why))
        if len(langs) < 2:
            note("fewer than two languages available (%s): nothing to test" % (" ".join(langs) or "none"))
            print("%d passed, %d failed" % (passed, failed))
            return 1 if failed else 77
        note("languages: " + " ".join(langs))
        env = dict(os.environ)
        if args.python_path:
            env["PYTHONPATH"] = args.python_path
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        P = Peers(langs, env)
        check_values(P, base)
        check_long_keys(P, base)
        check_lock(P, base)
        for rnd in range(args.rounds):
            check_open_race(P, base, rnd)
        for rnd in range(args.rounds):
            check_stampede(P, base, rnd)
    finally:
        if failed:
            note("cache directories kept in " + base)
        else:
            shutil.rmtree(base, ignore_errors=True)
    print("1..%d" % n)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
