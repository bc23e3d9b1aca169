"""fsc.Cache: values, files, locks, get-or-create, housekeeping, errors."""

import datetime
import os
import re
import threading
import time

import pytest

import fsc
from fsc import _c

from conftest import answers_after_pile_up


def test_set_get_delete(cache):
    assert cache.get("missing") is None
    cache.set("k", b"v1")
    assert cache.get("k") == b"v1"
    cache.set("k", bytearray(b"v2"))
    assert cache.get("k") == b"v2"
    assert "k" in cache
    assert cache.delete("k") is True
    assert cache.delete("k") is False
    assert cache.get("k") is None and "k" not in cache


def test_binary_values_and_keys(cache):
    value = bytes(range(256)) * 3 + b"\0"
    cache.set(b"\0\xff\0", value)
    cache.set("\u00e9t\u00e9", b"utf8")
    assert cache.get(b"\0\xff\0") == value
    assert cache.get(b"\0\xff") is None
    assert cache.get("\u00e9t\u00e9".encode("utf-8")) == b"utf8"
    assert sorted(cache.keys()) == sorted([b"\0\xff\0", "\u00e9t\u00e9".encode("utf-8")])
    cache.set("empty", b"")
    assert cache.get("empty") == b""


def test_bad_arguments(cache):
    with pytest.raises(fsc.InvalidArgumentError):
        cache.set("", b"x")
    with pytest.raises(TypeError):
        cache.set(1, b"x")
    with pytest.raises(TypeError):
        cache.set("k", "not bytes")


def test_errors_come_from_the_status_table():
    codes = {getattr(_c, n): n for n in dir(_c) if n.startswith("FSC_E") and isinstance(getattr(_c, n), int)}
    assert len(codes) >= 14
    classes = set()
    for status, name in codes.items():
        cls = fsc._BY_STATUS[status]
        assert issubclass(cls, fsc.Error) and cls is not fsc.Error
        assert cls.status == status and cls.status_name == name == _c.fsc_strerror(status)
        assert not cls.__name__.startswith("Error_"), "no idiomatic name for " + name
        classes.add(cls)
    assert len(classes) == len(codes)


def test_open_errors(tmp_path):
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "somefile").write_text("x")
    with pytest.raises(fsc.FormatError) as e:
        fsc.Cache(str(tmp_path / "foreign"))
    assert e.value.status == _c.FSC_EFORMAT and "foreign" in str(e.value)
    (tmp_path / "plain").write_text("x")
    with pytest.raises(fsc.Error):
        fsc.Cache(str(tmp_path / "plain"))


def test_too_big(cache_dir):
    with fsc.Cache(cache_dir, cache_size=10) as c:
        with pytest.raises(fsc.TooBigError):
            c.set("k", b"x" * 11)
        assert c.get("k") is None


def _shard_files(cache_dir):
    """(entry files named by 32 hex digits, pack.<16 hex> files) under shards/*/."""
    names = [n for xx in os.listdir(os.path.join(cache_dir, "shards"))
             for n in os.listdir(os.path.join(cache_dir, "shards", xx))]
    return ([n for n in names if re.fullmatch(r"[0-9a-f]{32}", n)],
            [n for n in names if re.fullmatch(r"pack\.[0-9a-f]{16}", n)])


@pytest.mark.parametrize("pack_limit", [0, None])
def test_pack_limit(tmp_path, pack_limit):
    cache_dir = str(tmp_path / "cache")
    kwargs = {} if pack_limit is None else {"pack_limit": pack_limit}
    with fsc.Cache(cache_dir, **kwargs) as c:
        c.set("k", b"small value")
        assert c.get("k") == b"small value"
    entries, packs = _shard_files(cache_dir)
    if pack_limit == 0:
        assert entries and not packs, (entries, packs)
    else:
        assert packs and not entries, (entries, packs)


def test_pack_limit_over_max(tmp_path):
    with pytest.raises(fsc.InvalidArgumentError) as e:
        fsc.Cache(str(tmp_path / "big"), pack_limit=_c.FSC_PACK_LIMIT_MAX + 1)
    assert e.value.status_name == "FSC_EINVAL" and (1 << 20) == _c.FSC_PACK_LIMIT_MAX
    fsc.Cache(str(tmp_path / "max"), pack_limit=1 << 20).close()


def test_not_supported_yet_are_wrapped(cache):
    for call in (cache.prune, cache.stats, cache.verify):
        try:
            call()
        except fsc.NotSupportedError as e:
            assert e.status_name == "FSC_ENOTSUP"


def test_stats_says_local_filesystem(cache):
    assert cache.stats()["network_fs"] is False
    assert cache.stats()["network_mode"] is False


@pytest.mark.parametrize("mode, running", [("auto", False), ("on", True), ("off", False)])
def test_network_mode(cache_dir, mode, running):
    with fsc.Cache(cache_dir, network_mode=mode) as c:
        stats = c.stats()
        assert stats["network_mode"] is running and stats["network_fs"] is False
        # A handle forced on works as any other on a local directory.
        c.set("k", b"v")
        assert c.get("k") == b"v"
        assert c.get_or_create("g", lambda: b"made") == b"made"
        c.cache_size = 1 << 20  # reopened with the same mode
        assert c.stats()["network_mode"] is running


@pytest.mark.parametrize("bad", ["ON", "", None, 1, True])
def test_network_mode_bad_value(tmp_path, bad):
    with pytest.raises(ValueError, match="network_mode must be"):
        fsc.Cache(str(tmp_path / "c"), network_mode=bad)
    assert not (tmp_path / "c").exists()


def test_lost_error():
    assert fsc.LostError.status == _c.FSC_ELOST == -15
    assert fsc.LostError.status_name == "FSC_ELOST" and issubclass(fsc.LostError, fsc.Error)
    with pytest.raises(fsc.LostError, match="FSC_ELOST"):
        fsc._check(_c.FSC_ELOST, "set")


def test_closed_cache(cache_dir):
    c = fsc.Cache(cache_dir)
    c.close()
    c.close()
    with pytest.raises(ValueError):
        c.get("k")


def test_expiration(cache_dir):
    with fsc.Cache(cache_dir, expiration_time=datetime.timedelta(0)) as c:
        c.set("k", b"v")
        assert c.get("k") is None  # older than 0 ms: always expired
    with fsc.Cache(cache_dir, expiration_time=3600) as c:
        c.set("k", b"v")
        assert c.get("k") == b"v"
        calls = []
        assert c.get_or_create("k", lambda: calls.append(1) or b"new", expiration_time=0) == b"new"
        assert calls == [1]


def test_invalidate_hard_and_soft(cache):
    cache.set("k", b"old")
    cache.invalidate(hard=True)
    assert cache.get("k") is None
    cache.set("k", b"old")
    cache.invalidate(hard=False)
    assert cache.get("k") is None
    assert cache.get_or_create("k", lambda: b"new") == b"new"
    assert cache.get("k") == b"new"


def test_clear(cache):
    for i in range(5):
        cache.set("k%d" % i, b"v")
    cache.clear()
    assert all(cache.get("k%d" % i) is None for i in range(5))


def test_get_or_create(cache):
    calls = []

    def creator():
        calls.append(1)
        return b"made"

    assert cache.get_or_create("k", creator) == b"made"
    assert cache.get_or_create("k", creator) == b"made"
    assert calls == [1]


def test_creator_exception_propagates_and_nothing_is_stored(cache):
    class Boom(Exception):
        pass

    def creator():
        raise Boom("no value")

    with pytest.raises(Boom, match="no value"):
        cache.get_or_create("k", creator)
    assert cache.get("k") is None
    # The lock was released: a later caller creates the value.
    assert cache.get_or_create("k", lambda: b"second") == b"second"
    with pytest.raises(TypeError):
        cache.get_or_create("j", lambda: "not bytes")
    assert cache.get("j") is None


def test_set_file_copy_keeps_offset(cache, tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"0123456789")
    with open(src, "rb") as f:
        f.seek(4)
        cache.set_file("k", f)
        assert f.tell() == 4
    assert src.exists()
    got = cache.get_file("k")
    with got:
        assert got.tell() == 4
        assert got.read() == b"456789"
        got.seek(0)
        assert got.read() == b"0123456789"
    cache.set_file("p", str(src))
    with cache.get_file("p") as got:
        assert got.tell() == 0 and got.read() == b"0123456789"
    assert cache.get_file("missing") is None


def test_set_file_after_buffered_read(cache, tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"abcdefgh" * 4096)
    with open(src, "rb") as f:
        assert f.read(3) == b"abc"  # the reader has buffered far more than 3 bytes
        cache.set_file("k", f)
        assert f.read(3) == b"def"
    with cache.get_file("k") as got:
        assert got.tell() == 3 and got.read(3) == b"def"


def test_set_file_move(cache, tmp_path):
    src = tmp_path / "moved.bin"
    src.write_bytes(b"moved content")
    with open(src, "rb") as f:
        f.seek(6)
        cache.set_file("k", f, move=True)
    assert not src.exists()
    with cache.get_file("k") as got:
        assert got.tell() == 6 and got.read() == b"content"


def test_lock_context_and_reentrance(cache):
    with cache.lock("k", timeout=1) as held:
        assert held.locked_here()
        with cache.lock("k", timeout=0):  # re-entrant for this thread
            pass
    lock = cache.lock("k")
    assert lock.acquire(blocking=False)
    lock.release()
    with pytest.raises(RuntimeError):
        lock.release()


def test_lock_excludes_other_thread(cache):
    lock = cache.lock("k")
    assert lock.acquire()
    result = []
    t = threading.Thread(target=lambda: result.append(cache.lock("k").acquire(blocking=False)))
    t.start()
    t.join()
    assert result == [False]
    lock.release()


CHILD_LOCK = """
import sys, fsc
c = fsc.Cache(sys.argv[1])
with c.lock("k"):
    print("locked", flush=True)
    sys.stdin.readline()
print("released", flush=True)
sys.stdin.readline()
"""


def test_lock_excludes_other_process(cache, cache_dir, child):
    p = child(CHILD_LOCK, cache_dir)
    p.expect("locked")
    assert cache.lock_holder("k") == p.pid
    assert cache.lock("k").acquire(blocking=False) is False
    with pytest.raises(fsc.BusyError):
        with cache.lock("k", timeout=0):
            pass
    with pytest.raises(fsc.LockTimeoutError):
        with cache.lock("k", timeout=0.05):
            pass
    assert cache.lock("other").acquire(blocking=False)  # other keys are free
    p.send("release")
    p.expect("released")
    with cache.lock("k", timeout=10):
        assert cache.lock_holder("k") == 0
    p.finish()


def _waiting_for_a_lock(pid):
    """True when /proc/locks lists pid as blocked on a record lock ("->" lines)."""
    with open("/proc/locks") as f:
        return any(len(w) > 5 and w[1] == "->" and w[5] == str(pid) for w in map(str.split, f))


def test_lock_wait_releases_the_gil(cache, cache_dir, child):
    p = child(CHILD_LOCK, cache_dir)
    p.expect("locked")
    outcome = []

    def wait():
        with cache.lock("k"):  # no timeout: one wait in the kernel
            outcome.append("acquired")

    t = threading.Thread(target=wait)
    t.start()
    # Only a wait that released the GIL lets this thread see it in the kernel
    # (one that kept it would hang here: the child releases only when told).
    while not _waiting_for_a_lock(os.getpid()):
        assert t.is_alive() and not outcome
    p.send("release")
    p.expect("released")
    t.join()
    assert outcome == ["acquired"]
    p.finish()


CHILD_GET_OR_CREATE = """
import os, sys, fsc
c = fsc.Cache(sys.argv[1])
def creator():
    with open(sys.argv[2], "a") as f:
        f.write("%d\\n" % os.getpid())
    return b"value from %d" % os.getpid()
print("ready", flush=True)
print(c.get_or_create("k", creator).decode(), flush=True)
"""


def test_get_or_create_creates_once_across_processes(cache, cache_dir, child, tmp_path):
    log = tmp_path / "creators"
    answers = answers_after_pile_up(cache.lock("k"), child, CHILD_GET_OR_CREATE, cache_dir, log)
    creators = log.read_text().split()
    assert len(creators) == 1
    assert answers == {"value from %s" % creators[0]}


def test_fork_child_uses_inherited_cache(cache):
    cache.set("k", b"parent")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            ok = cache.get("k") == b"parent"
            cache.set("k", b"child")
            with cache.lock("k", timeout=5):
                pass
            os.write(w, b"ok" if ok else b"bad")
        finally:
            os._exit(0)
    os.close(w)
    assert os.read(r, 10) == b"ok"
    os.close(r)
    assert os.waitpid(pid, 0)[1] == 0
    assert cache.get("k") == b"child"


def test_ownership_and_shared_group(tmp_path):
    planted = tmp_path / "planted"
    planted.mkdir()
    os.chmod(planted, 0o777)
    with pytest.raises(fsc.AccessDeniedError, match="writable by others"):
        fsc.Cache(str(planted))
    shared = tmp_path / "shared"
    with fsc.Cache(str(shared), shared_group=os.getgid()) as c:
        c.set("k", b"v")
    assert os.stat(shared).st_mode & 0o7777 == 0o2770
    with pytest.raises(fsc.AccessDeniedError, match="writable by group"):
        fsc.Cache(str(shared))


def test_lock_held_in_parent_is_not_held_by_forked_child(cache):
    lock = cache.lock("k")
    assert lock.acquire(wait=True) and lock.is_locked()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(w, b"%d %d" % (lock.is_locked(), lock.acquire(wait=False)))
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        assert f.read() == b"0 0"  # the child's copy holds nothing, and the parent excludes it
    assert os.waitpid(pid, 0)[1] == 0
    lock.release()
    assert not lock.is_locked()


def test_keys_longer_than_the_library_takes_are_hashed(cache):
    longest = b"k" * _c.FSC_MAX_KEY
    over = longest + b"!"
    cache.set(longest, b"as is")
    cache.set(over, b"hashed")
    cache.set(over + b"?", b"hashed too")
    assert cache.get(longest) == b"as is" and cache.get(over) == b"hashed"
    assert cache.get(over.decode()) == b"hashed"
    assert set(cache.keys()) == {longest, fsc.hashed_key(over), fsc.hashed_key(over + b"?")}
    assert fsc.hashed_key(over).startswith(b"fsc.sha256:") and len(fsc.hashed_key(over)) == 11 + 64
    # The known answer the Go, Ruby and Lua tests check too: every binding stores it so.
    assert fsc.hashed_key(b"0123456789abcdef" * 4097) == (
        b"fsc.sha256:4de9ccf85d6b865de082de306a67e3aacb51222b2e3380a3455d0504e1e993b7")
    with cache.lock(over, timeout=0):
        assert cache.delete(over) and cache.get(over) is None


def test_get_file_names_a_value_of_its_own(cache, tmp_path):
    src = tmp_path / "src"
    src.write_bytes(b"file value")
    cache.set_file("file", str(src))
    cache.set("bytes", b"packed value")
    with cache.get_file("file") as f:
        assert f.name.startswith(cache.dir + os.sep) and open(f.name, "rb").read() == b"file value"
    with cache.get_file("bytes") as f:
        assert isinstance(f.name, int)  # a pack: its path is not the value


def test_options_change_on_an_open_cache(cache_dir):
    with fsc.Cache(cache_dir, cache_size=None) as c:
        assert c.cache_size is None and c.stats()["cache_size"] == 0
        c.set("a", b"x" * 10000)
        c.set("b", b"x" * 10000)
        c.cache_size = 15000
        assert c.cache_size == 15000 and c.stats()["cache_size"] == 15000
        c.prune()
        assert c.keys() == [b"b"]
        c.expiration_time = datetime.timedelta(0)
        assert c.expiration_time == datetime.timedelta(0) and c.get("b") is None
        with pytest.raises(ValueError):
            c.expiration_time = -1
        assert c.expiration_time == datetime.timedelta(0)  # a refused change changes nothing


def test_option_change_during_a_call_closes_the_old_handle_after_it(cache_dir, monkeypatch):
    closed = []
    close = _c.fsc_close
    monkeypatch.setattr(_c, "fsc_close", lambda handle: closed.append(handle) or close(handle))
    with fsc.Cache(cache_dir) as c:
        def create():
            c.expiration_time = 3600  # replaces the handle this get_or_create runs on
            assert closed == []
            return b"made"

        assert c.get_or_create("k", create) == b"made"
        assert len(closed) == 1 and c.get("k") == b"made"
    assert len(closed) == 2


def test_path_with_nul_is_refused(tmp_path):
    # The C library would open the path's prefix before the NUL.
    for bad in (str(tmp_path / "cache\0x"), os.fsencode(str(tmp_path / "cache\0x"))):
        with pytest.raises(ValueError):
            fsc.Cache(bad)
    assert not (tmp_path / "cache").exists()
    with fsc.Cache(str(tmp_path / "ok")) as c:
        with pytest.raises(ValueError):
            c.set_file("k", str(tmp_path / "file\0x"))


@pytest.mark.parametrize("seconds", [1e13, 1e20, float("inf"), datetime.timedelta(days=10 ** 9 - 1)])
def test_huge_expiration_never_expires(cache_dir, seconds):
    with fsc.Cache(cache_dir, expiration_time=seconds) as c:
        c.set("k", b"v")
        assert c.get("k") == b"v"
        c.prune()
        assert c.get("k") == b"v"
        assert c.get_or_create("k", lambda: pytest.fail("a fresh value was created again"), seconds) == b"v"


def test_nan_expiration_is_refused(cache_dir):
    with pytest.raises(ValueError):
        fsc.Cache(cache_dir, expiration_time=float("nan"))


def test_set_file_of_a_fifo_is_refused_at_once(cache, tmp_path):
    import signal

    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)

    def hung(signum, frame):
        raise AssertionError("set_file of a FIFO blocked")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        with pytest.raises(fsc.InvalidArgumentError, match="FIFO"):
            cache.set_file("k", fifo)
        with pytest.raises(fsc.InvalidArgumentError):
            cache.set_file("k", fifo, move=True)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert cache.get("k") is None and os.path.exists(fifo)


@pytest.mark.parametrize("seconds", [1e13, float("inf")])
def test_huge_lock_timeout_is_waiting_as_long_as_it_takes(cache, seconds):
    with cache.lock("k", timeout=seconds):
        pass
    lock = fsc.Lock(cache, "k")
    assert lock.acquire(timeout=seconds)
    lock.release()
