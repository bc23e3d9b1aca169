"""The dogpile.cache backends fsc.filesystem and fsc.raw_filesystem, used the
way dogpile_filesystem's README documents its backends."""

import datetime
import os
import re
import tempfile

import pytest
from dogpile.cache import make_region
from dogpile.cache.api import NO_VALUE

import fsc  # registers the backends
from conftest import answers_after_pile_up


def generic_region(cache_dir, **arguments):
    return make_region().configure("fsc.filesystem", arguments=dict(base_dir=cache_dir, **arguments))


def raw_region(cache_dir, **arguments):
    return make_region().configure("fsc.raw_filesystem", arguments=dict(base_dir=cache_dir, **arguments))


def test_seed_arguments_are_accepted(cache_dir):
    region = generic_region(cache_dir, cache_size=1024 ** 3,
                            expiration_time=datetime.timedelta(seconds=30), distributed_lock=True)
    assert region.get("k") is NO_VALUE
    region.set("k", {"any": ["picklable", 1]})
    assert region.get("k") == {"any": ["picklable", 1]}
    region.delete("k")
    assert region.get("k") is NO_VALUE


def test_pack_limit_argument(cache_dir):
    region = generic_region(cache_dir, pack_limit=0)
    region.set("k", "small")
    assert region.get("k") == "small"
    shards = os.path.join(cache_dir, "shards")
    names = [n for xx in os.listdir(shards) for n in os.listdir(os.path.join(shards, xx))]
    assert any(re.fullmatch(r"[0-9a-f]{32}", n) for n in names), names
    with pytest.raises(fsc.InvalidArgumentError):
        generic_region(cache_dir + "2", pack_limit=(1 << 20) + 1)


@pytest.mark.parametrize("make", [generic_region, raw_region])
def test_network_mode_argument(cache_dir, make):
    region = make(cache_dir, network_mode="on")
    assert region.backend.cache.stats()["network_mode"] is True
    assert make(cache_dir + "2").backend.cache.stats()["network_mode"] is False
    with pytest.raises(ValueError, match="network_mode"):
        make(cache_dir + "3", network_mode="sometimes")


def test_get_or_create(cache_dir):
    region = generic_region(cache_dir)
    calls = []

    def create():
        calls.append(1)
        return (42, "answer")

    assert region.get_or_create("k", create) == (42, "answer")
    assert region.get_or_create("k", create) == (42, "answer")
    assert calls == [1]
    # Another region on the same directory (another process's view) sees it.
    assert generic_region(cache_dir).get("k") == (42, "answer")


def test_cache_on_arguments(cache_dir):
    region = generic_region(cache_dir)
    calls = []

    @region.cache_on_arguments()
    def square(x):
        calls.append(x)
        return x * x

    assert [square(3), square(3), square(4)] == [9, 9, 16]
    assert calls == [3, 4]
    square.invalidate(3)
    assert square(3) == 9 and calls == [3, 4, 3]


def test_multi(cache_dir):
    region = generic_region(cache_dir)
    region.set_multi({"a": 1, "b": 2})
    assert region.get_multi(["a", "b", "c"]) == [1, 2, NO_VALUE]
    region.delete_multi(["a", "b"])
    assert region.get_multi(["a", "b"]) == [NO_VALUE, NO_VALUE]


def test_backend_expiration(cache_dir):
    region = generic_region(cache_dir, expiration_time=datetime.timedelta(0))
    region.set("k", "v")
    assert region.get("k") is NO_VALUE  # the backend drops it at once
    region = generic_region(cache_dir, expiration_time=datetime.timedelta(hours=1))
    region.set("k", "v")
    assert region.get("k") == "v"


def test_region_expiration(cache_dir):
    region = make_region().configure("fsc.filesystem", expiration_time=-1, arguments={"base_dir": cache_dir})
    region.set("k", "old")
    assert region.get("k", expiration_time=0) is NO_VALUE
    assert region.get_or_create("k", lambda: "new", expiration_time=0) == "new"


def test_invalidation(cache_dir):
    region = generic_region(cache_dir)
    region.set("k", "old")
    region.invalidate()  # hard
    assert region.get("k") is NO_VALUE
    assert region.get_or_create("k", lambda: "new") == "new"
    soft = make_region().configure("fsc.filesystem", expiration_time=3600, arguments={"base_dir": cache_dir})
    soft.invalidate(hard=False)
    assert soft.get_or_create("k", lambda: "newer") == "newer"


def test_binary_keys(cache_dir):
    region = make_region(key_mangler=lambda key: key.encode("utf-8") + b"\0\xff").configure(
        "fsc.filesystem", arguments={"base_dir": cache_dir})
    region.set("k", "v")
    assert region.get("k") == "v"
    assert region.backend.get(b"k\0\xff") is not NO_VALUE
    assert region.backend.get(b"k") is NO_VALUE


def make_file(content, offset, delete=True):
    f = tempfile.NamedTemporaryFile(delete=delete)
    f.write(content)
    f.flush()
    f.seek(offset)
    return f


@pytest.mark.parametrize("movable", [False, True])
def test_raw_variant(cache_dir, movable):
    region = raw_region(cache_dir, file_movable=movable, cache_size=1024 ** 3,
                        expiration_time=datetime.timedelta(seconds=30), distributed_lock=True)
    calls = []
    original = []

    @region.cache_on_arguments()
    def big_file_operation(arg):
        calls.append(arg)
        f = make_file(b"header:" + arg.encode() * 1000, 7, delete=not movable)
        original.append(f.name)
        return f

    first = big_file_operation("x")
    assert first.tell() == 7 and first.read() == b"x" * 1000
    second = big_file_operation("x")
    assert second is not first
    assert second.tell() == 7 and second.read() == b"x" * 1000
    second.seek(0)
    assert second.read(7) == b"header:"
    assert calls == ["x"]
    import os
    assert os.path.exists(original[0]) is not movable  # moved into the cache, or copied
    for f in (first, second):
        f.close()


def test_raw_variant_invalidation_and_versions(cache_dir):
    region = raw_region(cache_dir)
    region.set("k", make_file(b"abc", 1))
    got = region.get("k")
    assert got.read() == b"bc"
    got.close()
    region.invalidate()
    assert region.get("k") is NO_VALUE


CHILD_MUTEX = """
import sys, fsc
from dogpile.cache import make_region
region = make_region().configure("fsc.filesystem", arguments={"base_dir": sys.argv[1]})
mutex = region.backend.get_mutex("k")
assert mutex.acquire()
print("locked", flush=True)
sys.stdin.readline()
mutex.release()
print("released", flush=True)
sys.stdin.readline()
"""


def test_distributed_lock_excludes_another_process(cache_dir, child):
    region = generic_region(cache_dir)
    p = child(CHILD_MUTEX, cache_dir)
    p.expect("locked")
    mutex = region.backend.get_mutex("k")
    assert mutex.acquire(False) is False
    assert region.backend.get_mutex("other").acquire(False) is True
    p.send("release")
    p.expect("released")
    assert mutex.acquire(False) is True
    mutex.release()
    p.finish()


CHILD_REGION = """
import os, sys, fsc
from dogpile.cache import make_region
region = make_region().configure("fsc.filesystem", arguments={"base_dir": sys.argv[1]})
def create():
    with open(sys.argv[2], "a") as f:
        f.write("%d\\n" % os.getpid())
    return os.getpid()
print("ready", flush=True)
print(region.get_or_create("k", create), flush=True)
"""


def test_region_get_or_create_once_across_processes(cache_dir, child, tmp_path):
    log = tmp_path / "creators"
    region = generic_region(cache_dir)
    answers = answers_after_pile_up(region.backend.get_mutex("k"), child, CHILD_REGION, cache_dir, log)
    creators = log.read_text().split()
    assert len(creators) == 1 and answers == {creators[0]}
