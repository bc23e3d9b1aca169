"""fsc.filesystem with values whose pickle is over STREAM_LIMIT: pickled
through a temp file in the cache's tmp/ and moved in, unpickled from the
entry's file; values pickled whole by earlier versions still read."""

import os
import pickle
import time

import pytest

pytest.importorskip("dogpile.cache")

from dogpile.cache import make_region  # noqa: E402
from dogpile.cache.api import NO_VALUE, CachedValue  # noqa: E402

import fsc  # noqa: E402
from conftest import PEAK_RSS, Child  # noqa: E402
from fsc.dogpile_backends import STREAM_LIMIT  # noqa: E402

BIG = 3 * STREAM_LIMIT + 7


def region_on(cache_dir):
    return make_region().configure("fsc.filesystem", arguments={"base_dir": cache_dir})


def temp_files(cache_dir):
    return os.listdir(os.path.join(cache_dir, "tmp"))


def big_list():
    return [bytes([i % 251]) * 4096 for i in range(BIG // 4096)] + [{"tail": 1.5}]


@pytest.mark.parametrize("make", [lambda: os.urandom(BIG), big_list], ids=["bytes", "list"])
def test_large_value_round_trip(cache_dir, make):
    region = region_on(cache_dir)
    value = make()
    region.set("big", value)
    assert region.get("big") == value
    # Stored as a file value (fsc.Cache names only those by their path), nothing left in tmp/.
    with region.backend.cache.get_file("big") as f:
        assert isinstance(f.name, str) and os.path.getsize(f.name) > STREAM_LIMIT
    assert temp_files(cache_dir) == []


def test_values_pickled_whole_by_earlier_versions_still_read(cache_dir):
    region = region_on(cache_dir)
    cache = region.backend.cache
    for key, payload in (("small", b"s" * 100), ("big", os.urandom(BIG))):
        value = CachedValue(payload, {"ct": time.time(), "v": 2})
        whole = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
        cache.set(key, whole)
        assert region.get(key) == payload


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("cannot pickle this")


def test_a_failure_midway_leaves_no_temp_file_and_stores_nothing(cache_dir):
    region = region_on(cache_dir)
    region.set("key", b"old")
    with pytest.raises(RuntimeError, match="cannot pickle"):
        region.set("key", [os.urandom(BIG), Unpicklable()])
    assert temp_files(cache_dir) == []
    assert region.get("key") == b"old"
    region.set("key", b"new")  # the next set of the thread works
    assert region.get("key") == b"new"


def test_a_set_made_while_pickling_another_value(cache_dir):
    region = region_on(cache_dir)

    class SetsWhilePickled:
        def __reduce__(self):
            region.set("inner", [1, 2])
            return (str, ("made",))

    region.set("first", b"f")  # the thread's pickler now exists, for reuse
    region.set("outer", [SetsWhilePickled(), b"o" * BIG])
    assert region.get("outer") == ["made", b"o" * BIG]
    assert region.get("inner") == [1, 2]


def test_a_value_too_big_for_the_cache_leaves_no_temp_file(cache_dir):
    region = make_region().configure("fsc.filesystem", arguments={
        "base_dir": cache_dir, "cache_size": 2 * STREAM_LIMIT})
    region.set("key", b"old")
    region.set("key", os.urandom(BIG))  # not kept, with a warning
    assert temp_files(cache_dir) == []
    assert region.get("key") is NO_VALUE


def test_a_damaged_large_value_is_a_miss(cache_dir):
    region = region_on(cache_dir)
    region.set("big", os.urandom(BIG))
    with region.backend.cache.get_file("big") as f:
        path = f.name
    with open(path, "r+b") as f:  # same size, but no longer a pickle
        f.write(b"\0" * 64)
    assert region.get("big") is NO_VALUE
    assert "big" not in region.backend.cache


def test_changed_bytes_that_still_unpickle_are_returned_and_verify_finds_them(cache_dir):
    region = region_on(cache_dir)
    region.set("big", b"a" * BIG)
    cache = region.backend.cache
    with cache.get_file("big") as f:
        path = f.name
    with open(path, "r+b") as f:  # inside the bytes object's data
        f.seek(BIG // 2)
        f.write(b"b")
    got = region.get("big")
    assert len(got) == BIG and got.count(b"b") == 1
    assert cache.verify()["problems"] > 0


CRASHING = """
import os, signal, sys
from dogpile.cache import make_region
import fsc

class Crash:
    def __reduce__(self):
        os.kill(os.getpid(), signal.SIGKILL)

region = make_region().configure("fsc.filesystem", arguments={"base_dir": sys.argv[1]})
region.set("key", [bytes(%d), Crash()])
""" % BIG


def test_a_crash_midway_leaves_a_temp_file_that_the_next_open_removes(cache_dir):
    fsc.Cache(cache_dir).close()
    p = Child(CRASHING, cache_dir)
    assert p.proc.wait(timeout=60) < 0
    assert len(temp_files(cache_dir)) == 1
    with fsc.Cache(cache_dir) as cache:
        assert temp_files(cache_dir) == []
        assert "key" not in cache


SIZE = 256 * 1024 * 1024

BIG_SET_GET = PEAK_RSS + """
from dogpile.cache import make_region

region = make_region().configure("fsc.filesystem", arguments={"base_dir": sys.argv[1]})
before_kib = peak_rss_kib()
value = b"\\xa5" * %d  # every page written
region.set("big", value)
del value
value = region.get("big")
print(len(value), peak_rss_kib() - before_kib, flush=True)
""" % SIZE


def test_a_large_set_and_get_hold_the_value_about_once(cache_dir, monkeypatch):
    # Freed buffers stay resident in ASan's quarantine (256 MiB by default).
    asan = [os.environ.get("ASAN_OPTIONS"), "quarantine_size_mb=16"]
    monkeypatch.setenv("ASAN_OPTIONS", ":".join(filter(None, asan)))
    p = Child(BIG_SET_GET, cache_dir)
    length, grown_kib = p.read().split()
    p.finish()
    assert int(length) == SIZE
    # Pickled whole, the value was held twice (the value and its pickle) on each way.
    assert int(grown_kib) * 1024 < 1.25 * SIZE, "peak RSS grew by %s KiB" % grown_kib
