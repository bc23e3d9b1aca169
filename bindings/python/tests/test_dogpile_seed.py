"""dogpile_filesystem's public behaviours, kept by fsc.filesystem and
fsc.raw_filesystem: arguments, mutexes, live options, prune, too-big values,
key lengths, file-like raw values, and a directory the seed's cache holds.
Tests named after a seed test cover what that (deselected) test checks."""

import datetime
import hashlib
import io
import logging
import os
import threading
import time

import pytest
from dogpile.cache import make_region
from dogpile.cache.api import NO_VALUE, CachedValue

import fsc
from fsc import dogpile_backends


def region(cache_dir, name="fsc.filesystem", **arguments):
    return make_region().configure(name, arguments=dict(base_dir=cache_dir, **arguments))


def cached_fn(r):
    @r.cache_on_arguments()
    def fn(arg):
        return arg + 1
    return fn


def sized_fn(r):
    @r.cache_on_arguments()
    def fn(arg, size):
        return b"0" * size
    return fn


# -- arguments ----------------------------------------------------------------


def test_seed_argument_set_and_unknown_arguments(cache_dir):
    r = region(cache_dir, cache_size=None, expiration_time=None, file_movable=False,
               distributed_lock=True, no_such_argument=1)
    assert r.backend.cache.stats()["cache_size"] == 0  # None: no byte limit
    assert r.backend.cache_size is None and r.backend.expiration_time is None
    assert r.backend.base_dir == os.path.abspath(cache_dir)
    assert cached_fn(r)(1) == 2


@pytest.mark.parametrize("expiration", [0, 0.0, datetime.timedelta(0)])
def test_expiration_time_in_seconds_or_timedelta(cache_dir, expiration):
    r = region(cache_dir, expiration_time=expiration)
    r.set("k", "v")
    assert r.get("k") is NO_VALUE
    assert r.backend.expiration_time == expiration


def test_missing_parent_directories_are_created(tmp_path):
    r = region(str(tmp_path / "a" / "b" / "cache"))
    r.set("k", "v")
    assert r.get("k") == "v"


@pytest.mark.parametrize("distributed_lock", [False, None])
def test_no_distributed_lock_leaves_locking_to_dogpile(cache_dir, distributed_lock):
    r = region(cache_dir, distributed_lock=distributed_lock)
    assert r.backend.get_mutex("foo") is None
    calls = []

    @r.cache_on_arguments()
    def fn(arg):
        calls.append(arg)
        return arg + 1

    assert fn(1) == 2 and fn(1) == 2 and calls == [1]


# -- mutexes (test_dogpile_lock_threaded, test_dogpile_lock_processes) --------


def test_mutex_is_one_object_per_key_and_excludes_other_threads(cache_dir):
    backend = region(cache_dir).backend
    mutex = backend.get_mutex("asd")
    assert backend.get_mutex("asd") is mutex and backend.get_mutex("other") is not mutex
    assert mutex.acquire() and mutex.acquire(wait=True)  # re-entrant
    mutex.release()
    assert mutex.is_locked()
    seen = []

    def other_thread():
        other = backend.get_mutex("asd")
        seen.append((other is mutex, other.acquire(False), other.acquire(wait=False)))

    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    assert seen == [(True, False, False)]
    mutex.release()
    assert not mutex.is_locked()


def test_forked_child_gets_its_own_mutex_and_cannot_take_the_parents(cache_dir):
    backend = region(cache_dir).backend
    mutex = backend.get_mutex("asd")
    assert mutex.acquire() and mutex.acquire()
    mutex.release()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            own = backend.get_mutex("asd")
            answer = "%d %d %d" % (own is mutex, own.is_locked(), own.acquire(False))
            os.write(w, answer.encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        answer = f.read()
    assert os.waitpid(pid, 0)[1] == 0
    assert answer == "0 0 0"  # a new object, not held, and the parent's hold excludes it
    mutex.release()
    assert not mutex.is_locked()


CHILD_DEADLOCK = """
import sys, fsc
from dogpile.cache import make_region
backend = make_region().configure("fsc.filesystem", arguments={"base_dir": sys.argv[1]}).backend
first, second = backend.get_mutex(sys.argv[2]), backend.get_mutex(sys.argv[3])
assert first.acquire()
print("holding", flush=True)
sys.stdin.readline()
try:
    second.acquire()
except fsc.DeadlockError:
    first.release()
    print("deadlock", flush=True)
else:
    print("both", flush=True)
"""


def test_opposite_order_mutexes_give_one_deadlock_error(cache_dir, child):
    """test_avoid_deadlock: two processes taking two keys in opposite order."""
    one = child(CHILD_DEADLOCK, cache_dir, "k1", "k2")
    two = child(CHILD_DEADLOCK, cache_dir, "k2", "k1")
    one.expect("holding")
    two.expect("holding")
    one.send("go")
    two.send("go")
    answers = sorted([one.read(), two.read()])
    one.finish()
    two.finish()
    assert answers == ["both", "deadlock"]


@pytest.mark.parametrize("n_caches", [1, 2, 10])
def test_many_mutexes_at_once(tmp_path, n_caches):
    """test_can_acquire_n_locks: 1000 keys' mutexes held at once, per cache."""
    backends = [region(str(tmp_path / ("c%d" % i))).backend for i in range(n_caches)]
    held = [b.get_mutex("key-%d" % k) for b in backends for k in range(1000)]
    assert all(m.acquire(False) for m in held)
    for m in held:
        m.release()
    assert not any(m.is_locked() for m in held)


def test_recursive_get_or_create_under_the_mutex(cache_dir):
    r = region(cache_dir)
    context = {"value": 3}

    @r.cache_on_arguments()
    def fn():
        if context["value"] == 0:
            return 42
        context["value"] -= 1
        return fn()

    assert fn() == 42 and context["value"] == 0


# -- live options and prune --------------------------------------------------


def entries(r):
    return r.backend.cache.stats()["entries"]


def created_times(r):
    found = []
    r.backend.cache.foreach(lambda key, size, created_ms: found.append(created_ms / 1000.0))
    return found


def test_cleanup_expired_keys(cache_dir):
    r = region(cache_dir)
    fn = cached_fn(r)
    assert fn(1) == 2 and fn.get(1) == 2
    r.backend.expiration_time = datetime.timedelta(seconds=0)
    assert fn.get(1) is NO_VALUE
    r.backend.prune()
    assert entries(r) == 0 and r.backend.cache.keys() == []
    assert fn(1) == 2


def test_expired_items_are_deleted(cache_dir):
    r = region(cache_dir, expiration_time=datetime.timedelta(seconds=30))
    fn = cached_fn(r)
    assert fn(1) == fn.get(1) == 2
    r.backend.expiration_time = datetime.timedelta(seconds=0)
    r.backend.prune()
    assert fn.get(1) is NO_VALUE and entries(r) == 0
    assert fn(1) == 2


def test_unexpired_items_are_not_deleted(cache_dir, monkeypatch):
    r = region(cache_dir, expiration_time=datetime.timedelta(seconds=30))
    fn = cached_fn(r)
    made_40_s_ago = time.time() - 40
    monkeypatch.setattr(time, "time", lambda: made_40_s_ago)
    assert fn(1) == 2  # dogpile records its making 40 s ago
    monkeypatch.undo()
    assert fn(2) == 3
    r.backend.prune()
    assert fn.get(1) is NO_VALUE
    assert fn.get(2) == 3 and entries(r) == 1  # the old one is gone from the disk too


@pytest.mark.parametrize("name", ["fsc.filesystem", "fsc.raw_filesystem"])
def test_expired_items_are_not_returned(cache_dir, name):
    r = region(cache_dir, name, expiration_time=datetime.timedelta(seconds=30))
    r.set("k", io.BytesIO(b"v") if name == "fsc.raw_filesystem" else "v")
    assert r.get("k") is not NO_VALUE
    r.backend.expiration_time = datetime.timedelta(seconds=0)
    assert r.get("k") is NO_VALUE


def bytes_on_disk(r):
    return r.backend.cache.stats()["bytes"]


def test_cleanup_when_size_exceeded(cache_dir):
    r = region(cache_dir, cache_size=15000)
    fn = sized_fn(r)
    fn("foo", 10000)
    fn("bar", 10000)
    fn("baz", 1)
    assert 10000 < bytes_on_disk(r) <= 15000
    assert fn.get("foo", 10000) is NO_VALUE  # the least recently used went
    assert fn.get("bar", 10000) == b"0" * 10000 and fn.get("baz", 1) == b"0"


@pytest.mark.parametrize("cache_size", [None, 0, 30000])
def test_no_cleanup_required(cache_dir, cache_size):
    r = region(cache_dir, cache_size=cache_size)
    fn = sized_fn(r)
    for arg, size in [("foo", 10000), ("bar", 10000), ("baz", 1)]:
        fn(arg, size)
    assert bytes_on_disk(r) >= 10000 + 10000 + 1 and entries(r) == 3


def test_shrinking_cache_size_takes_effect_at_prune(cache_dir):
    r = region(cache_dir, cache_size=None)
    fn = sized_fn(r)
    fn("foo", 10000)
    fn("bar", 10000)
    r.backend.cache_size = 15000
    assert r.backend.cache_size == 15000 and r.backend.cache.stats()["cache_size"] == 15000
    r.backend.prune()
    assert entries(r) == 1 and bytes_on_disk(r) <= 15000


def test_live_options_keep_held_mutexes(cache_dir):
    backend = region(cache_dir).backend
    mutex = backend.get_mutex("k")
    assert mutex.acquire()
    backend.expiration_time = 10
    backend.cache_size = 1 << 20
    assert backend.get_mutex("k") is mutex and mutex.acquire(False)  # still ours, re-entrant
    mutex.release()
    mutex.release()
    assert not mutex.is_locked()


# -- values larger than cache_size ---------------------------------------------


@pytest.mark.parametrize("name", ["fsc.filesystem", "fsc.raw_filesystem"])
def test_value_larger_than_cache_size_is_returned_not_kept(cache_dir, name, caplog):
    raw = name == "fsc.raw_filesystem"
    r = region(cache_dir, name, cache_size=2000)
    make = (lambda n: io.BytesIO(b"x" * n)) if raw else (lambda n: "x" * n)
    r.set("k", make(10))
    assert r.get("k") is not NO_VALUE
    with caplog.at_level(logging.WARNING, logger=dogpile_backends.__name__):
        got = r.get_or_create("k2", lambda: make(5000))
        r.set("k", make(5000))  # replaces the small value: that one goes too
    assert (got.getvalue() if raw else got) == (b"x" if raw else "x") * 5000
    assert r.get("k2") is NO_VALUE and r.get("k") is NO_VALUE
    warned = [rec for rec in caplog.records if rec.levelno == logging.WARNING]
    assert len(warned) == 2 and "not cached" in warned[0].getMessage()


# -- keys ----------------------------------------------------------------------


def test_keys_of_any_length(cache_dir):
    r = region(cache_dir)
    long_a = "a" * (fsc._c.FSC_MAX_KEY + 1)
    long_b = "a" * fsc._c.FSC_MAX_KEY + "b"
    for key, value in [(long_a, 1), (long_b, 2), ("", 3), ("k", 4)]:
        r.set(key, value)
    assert [r.get(k) for k in (long_a, long_b, "", "k")] == [1, 2, 3, 4]
    stored = set(r.backend.cache.keys())
    assert fsc.hashed_key(long_a.encode()) in stored
    assert fsc.hashed_key(long_a.encode()) == b"fsc.sha256:" + hashlib.sha256(long_a.encode()).hexdigest().encode()
    assert max(len(k) for k in stored) <= fsc._c.FSC_MAX_KEY
    r.delete(long_a)
    assert r.get(long_a) is NO_VALUE and r.get(long_b) == 2


# -- raw values ------------------------------------------------------------------


def raw(cache_dir, **arguments):
    return region(cache_dir, "fsc.raw_filesystem", **arguments)


def test_raw_bytesio_keeps_its_position(cache_dir):
    r = raw(cache_dir)
    value = io.BytesIO(b"0123456789")
    value.seek(3)
    r.set("k", value)
    assert value.tell() == 3
    with r.get("k") as got:
        assert got.read() == b"3456789"
        got.seek(0)
        assert got.read() == b"0123456789"


def test_raw_file_has_its_path_as_name(cache_dir):
    r = raw(cache_dir)
    r.set("k", io.BytesIO(b"value"))
    with r.get("k") as got:
        assert isinstance(got.name, str) and got.name.startswith(os.path.abspath(cache_dir) + os.sep)
        assert os.path.samefile(got.name, "/proc/self/fd/%d" % got.fileno())
        with open(got.name, "rb") as again:
            assert again.read() == b"value"


class ReadOnly:
    """A value with only read(): records every size asked for."""

    def __init__(self, data):
        self._data = io.BytesIO(data)
        self.asked = []

    def read(self, size=-1):
        self.asked.append(size)
        return self._data.read(size)


def test_raw_object_with_only_read_is_read_in_chunks(cache_dir):
    data = os.urandom(3 * dogpile_backends.CHUNK + 5)
    value = ReadOnly(data)
    r = raw(cache_dir)
    r.set("k", value)
    assert value.asked and all(size == dogpile_backends.CHUNK for size in value.asked)
    with r.get("k") as got:
        assert got.read() == data


def test_raw_pipe(cache_dir):
    data = os.urandom(2 * dogpile_backends.CHUNK + 7)
    rfd, wfd = os.pipe()

    def feed():
        with os.fdopen(wfd, "wb") as w:
            w.write(data)

    t = threading.Thread(target=feed)
    t.start()
    r = raw(cache_dir)
    with os.fdopen(rfd, "rb") as pipe:
        r.set("k", pipe)
    t.join()
    with r.get("k") as got:
        assert got.tell() == 0 and got.read() == data


def test_raw_movable_file_across_filesystems_is_copied(cache_dir):
    if os.stat("/dev/shm").st_dev == os.stat(os.path.dirname(cache_dir) or ".").st_dev:
        pytest.skip("/dev/shm is on the cache's filesystem here")
    r = raw(cache_dir, file_movable=True)
    with open("/dev/shm/fsc-test-%d" % os.getpid(), "w+b") as f:
        try:
            f.write(b"abc")
            f.seek(1)
            r.set("k", f)
        finally:
            os.unlink(f.name)
    with r.get("k") as got:
        assert got.read() == b"bc"


def test_raw_set_without_metadata(cache_dir):
    backend = raw(cache_dir).backend
    backend.set("k", io.BytesIO(b"v"))
    got = backend.get("k")
    assert isinstance(got, CachedValue) and got.payload.read() == b"v"
    got.payload.close()


# -- a directory that holds a dogpile_filesystem cache --------------------------


def test_dogpile_filesystem_directory_is_refused_clearly(tmp_path):
    seed_dir = tmp_path / "seed"
    (seed_dir / "values").mkdir(parents=True)
    (seed_dir / "values" / ("0" * 64 + ".payload")).write_bytes(b"x")
    (seed_dir / "dogpile.lock").write_bytes(b"")
    with pytest.raises(fsc.FormatError) as e:
        region(str(seed_dir))
    assert "dogpile_filesystem" in str(e.value) and "directory of its own" in str(e.value)
    other = tmp_path / "other"
    other.mkdir()
    (other / "file").write_bytes(b"x")
    with pytest.raises(fsc.FormatError) as e:
        region(str(other))
    assert "holds a dogpile_filesystem cache" not in str(e.value)


def test_backend_methods_called_directly(cache_dir):
    r = region(cache_dir)
    r.backend.set("x", {"any": "picklable"})
    assert r.backend.get("x") == {"any": "picklable"}
    r.set("k", "v")
    r.backend.attempt_delete_key("k")
    assert r.get("k") is NO_VALUE


def test_value_that_cannot_be_unpickled_is_a_miss(cache_dir, caplog):
    r = region(cache_dir)
    r.backend.cache.set("k", b'{"ct": 1, "v": 2}|not a pickle')
    with caplog.at_level(logging.WARNING, logger=dogpile_backends.__name__):
        assert r.get("k") is NO_VALUE
    assert "cannot be unpickled" in caplog.text and r.backend.cache.get("k") is None
    assert r.get_or_create("k", lambda: "new") == "new"
