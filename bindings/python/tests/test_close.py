"""close() racing calls in other threads, and callbacks that close, re-enter
or raise: no crash, every call gives its value or raises fsc.ClosedError."""

import threading

import pytest

import fsc


def _worker(cache, n, started, errors):
    """Calls get/set/get_or_create until the cache is closed."""
    key = "k%d" % n
    calls = 0
    while True:
        try:
            op = calls % 3
            if op == 0:
                cache.set(key, b"v")
            elif op == 1:
                assert cache.get(key) in (b"v", None)
            else:
                assert cache.get_or_create("shared", lambda: b"made") == b"made"
        except fsc.ClosedError:
            return
        except BaseException as e:  # anything else fails the test
            errors.append(e)
            return
        calls += 1
        if calls == 50:
            started.release()


def test_close_while_threads_call(cache_dir):
    for _ in range(20):
        cache = fsc.Cache(cache_dir)
        started = threading.Semaphore(0)
        errors = []
        threads = [threading.Thread(target=_worker, args=(cache, n, started, errors)) for n in range(4)]
        for t in threads:
            t.start()
        for _ in threads:
            started.acquire()  # every thread is calling
        cache.close()
        for t in threads:
            t.join()
        assert errors == []
        assert cache.closed
        with pytest.raises(fsc.ClosedError):
            cache.get("k0")


def test_creator_closes_its_cache(cache_dir):
    cache = fsc.Cache(cache_dir)

    def creator():
        cache.close()
        return b"value"

    # The value's set runs after the close: it is refused, nothing is stored.
    with pytest.raises(fsc.ClosedError):
        cache.get_or_create("k", creator)
    assert cache.closed
    with pytest.raises(fsc.ClosedError):
        cache.get_or_create("k", creator)
    with fsc.Cache(cache_dir) as again:  # the key's lock was released
        assert again.get("k") is None
        assert again.get_or_create("k", lambda: b"second") == b"second"


def test_creator_reenters_its_cache(cache):
    def creator():
        assert cache.get("k") is None
        cache.set("other", b"o")
        assert cache.get_or_create("inner", lambda: b"i") == b"i"
        with cache.lock("k"):  # re-entrant for the creating thread
            pass
        return b"outer"

    assert cache.get_or_create("k", creator) == b"outer"
    assert cache.get("other") == b"o" and cache.get("inner") == b"i"


def test_creator_raises_then_cache_works(cache):
    class Boom(Exception):
        pass

    def creator():
        cache.set("side", b"s")
        raise Boom()

    with pytest.raises(Boom):
        cache.get_or_create("k", creator)
    assert cache.get("k") is None and cache.get("side") == b"s"
    assert cache.get_or_create("k", lambda: b"v") == b"v"


def test_visitor_closes_and_reenters(cache_dir):
    cache = fsc.Cache(cache_dir)
    for i in range(5):
        cache.set("k%d" % i, b"v")
    seen = []

    def visit(key, size, created_ms):
        seen.append(key)
        if len(seen) == 1:
            assert cache.get(key) == b"v"  # re-entry
            cache.close()
        elif len(seen) == 2:
            with pytest.raises(fsc.ClosedError):
                cache.get(key)

    cache.foreach(visit)
    assert len(seen) == 5 and cache.closed
