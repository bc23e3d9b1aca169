"""Cross-language peer in Python: one operation per run on a cache
directory, keys and values given and printed in hex. See README.md for the
commands."""
import os
import sys
import time

import fsc


def die(msg):
    print("error " + msg, flush=True)
    sys.exit(1)


def wait_for(path):
    """Polls for path every millisecond, for at most 30 s."""
    deadline = time.monotonic() + 30
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            die("timed out waiting for " + path)
        time.sleep(0.001)


def main(argv):
    if len(argv) < 4:
        die("usage: peer.py CMD DIR KEYHEX [ARGS...]")
    cmd, dir_, key, args = argv[1], argv[2], argv[3], argv[4:]
    if key.startswith("@"):  # FILE's bytes: a long key's hex does not fit in one argument
        with open(key[1:], "rb") as f:
            key = f.read()
    else:
        key = bytes.fromhex(key)
    if cmd == "openrace":  # READYFILE GOFILE: open at the start signal, then get
        open(args[0], "w").close()
        wait_for(args[1])
        cmd = "get"
    with fsc.Cache(dir_) as cache:
        if cmd == "set":
            cache.set(key, bytes.fromhex(args[0]))
            print("stored")
        elif cmd == "get":
            v = cache.get(key)
            print("miss" if v is None else "hit " + v.hex())
        elif cmd == "trylock":
            try:
                with cache.lock(key, timeout=0):
                    pass
                print("acquired")
            except fsc.BusyError:
                print("busy %d" % cache.lock_holder(key))
        elif cmd == "stampede":
            ready, go, counter, mine = args
            open(ready, "w").close()
            wait_for(go)

            def create():
                fd = os.open(counter, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, b"python %d\n" % os.getpid())
                finally:
                    os.close(fd)
                time.sleep(0.3)
                return bytes.fromhex(mine)

            print("value " + cache.get_or_create(key, create).hex())
        else:
            die("unknown command %r" % cmd)


if __name__ == "__main__":
    try:
        main(sys.argv)
    except fsc.Error as e:
        die("%s: %s" % (type(e).__name__, e))
