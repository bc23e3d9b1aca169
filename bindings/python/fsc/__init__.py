"""fsc: a persistent, size-bounded, cross-process filesystem cache.

    import fsc
    with fsc.Cache("/var/cache/myapp", cache_size=1 << 30, expiration_time=3600) as cache:
        cache.set("key", b"value")
        cache.get("key")                                # b"value"; None on a miss
        cache.get_or_create("other", lambda: b"made once, across processes")
        with cache.lock("key", timeout=5):              # excludes other processes too
            ...

Keys are str (UTF-8 encoded) or bytes; values are bytes (or files, with
set_file/get_file). Errors are fsc.Error subclasses, one per status code of
fsc.h (fsc.LockTimeoutError, fsc.TooBigError, ...). Importing the package
registers the dogpile.cache backends "fsc.filesystem" and "fsc.raw_filesystem"
when dogpile.cache is installed (see fsc.dogpile_backends).
"""

import datetime
import os

try:
    from . import _fsc_swig as _c
except ImportError:  # running from a build tree: the generated module is top-level
    import _fsc_swig as _c

__all__ = ["Cache", "Lock", "Error", "version"]

# ---------------------------------------------------------------------------
# Errors: one class per status code of fsc.h, made from this one table.
# ---------------------------------------------------------------------------


class Error(Exception):
    """Base class of every fsc error; .status is the code, .status_name its name."""

    status = None
    status_name = None

    def __init__(self, message, status=None):
        super().__init__(message)
        if status is not None:
            self.status = status
            self.status_name = _c.fsc_strerror(status)


_ERRORS = {
    "FSC_EINVAL": "InvalidArgumentError",
    "FSC_ENOMEM": "OutOfMemoryError",
    "FSC_EIO": "IoError",
    "FSC_ENOSPC": "NoSpaceError",
    "FSC_EACCES": "AccessDeniedError",
    "FSC_EBUSY": "BusyError",
    "FSC_ETIMEDOUT": "LockTimeoutError",
    "FSC_EDEADLK": "DeadlockError",
    "FSC_ECORRUPT": "CorruptError",
    "FSC_ETOOBIG": "TooBigError",
    "FSC_EXDEV": "CrossDeviceError",
    "FSC_EFORMAT": "FormatError",
    "FSC_ECREATOR": "CreatorError",
    "FSC_ENOTSUP": "NotSupportedError",
}
_BY_STATUS = {}
for _name in dir(_c):
    if _name.startswith("FSC_E") and isinstance(getattr(_c, _name), int):
        # A status code missing from the table still gets a class of its own.
        _cls_name = _ERRORS.get(_name, "Error_" + _name[4:])
        _status = getattr(_c, _name)
        _cls = type(_cls_name, (Error,), {"status": _status, "status_name": _name, "__module__": __name__})
        globals()[_cls_name] = _cls
        __all__.append(_cls_name)
        _BY_STATUS[_status] = _cls


def _check(status, what):
    """Returns a non-negative status; raises the error class of a negative one."""
    if status >= 0:
        return status
    cls = _BY_STATUS.get(status, Error)
    detail = _c.fsc_errmsg()
    raise cls("%s: %s%s" % (what, _c.fsc_strerror(status), " (%s)" % detail if detail else ""), status)


def version():
    """The library's version, e.g. "0.1.0"."""
    return _c.fsc_version()


def _key(key):
    if isinstance(key, str):
        return key.encode("utf-8")
    if isinstance(key, (bytes, bytearray, memoryview)):
        return key
    raise TypeError("fsc keys are str or bytes, not %s" % type(key).__name__)


def _path(path):
    """os.fspath(path), refused with a NUL in it: the C library would take the
    path up to the NUL."""
    path = os.fspath(path)
    if ("\0" if isinstance(path, str) else b"\0") in path:
        raise ValueError("a path must not contain a NUL character: %r" % path)
    return path


_MS_MAX = (1 << 63) - 1


def _ms(seconds, default):
    """None -> default; seconds (int/float) or timedelta -> milliseconds,
    saturated at the int64 maximum (the library reads that as never)."""
    if seconds is None:
        return default
    if isinstance(seconds, datetime.timedelta):
        seconds = seconds.total_seconds()
    if seconds != seconds:
        raise ValueError("a time span must be a number, not NaN")
    if seconds < 0:
        raise ValueError("a time span must not be negative")
    ms = seconds * 1000
    return _MS_MAX if ms >= _MS_MAX else int(round(ms))


# ---------------------------------------------------------------------------
# Cache
# ---------------------------------------------------------------------------


class Cache:
    """One open cache directory. Safe to share between threads; many
    processes may open the same directory at once.

    pack_limit: values stored with set() of at most that many bytes are
    packed into their shard's pack file instead of getting a file of their
    own; 0 gives every value its own file; above 1 MiB, InvalidArgumentError."""

    def __init__(self, dir, cache_size=1 << 30, expiration_time=None, distributed_lock=True,
                 file_movable=False, durable=False, max_entries=0,
                 pack_limit=_c.FSC_PACK_LIMIT_DEFAULT):
        opts = _c.fsc_options()
        _c.fsc_options_init(opts)
        opts.cache_size = int(cache_size)
        opts.max_entries = int(max_entries)
        opts.pack_limit = int(pack_limit)
        opts.expiration_ms = _ms(expiration_time, -1)
        opts.distributed_lock = 1 if distributed_lock else 0
        opts.file_movable = 1 if file_movable else 0
        opts.durable = 1 if durable else 0
        self.dir = _path(dir)
        self.file_movable = bool(file_movable)
        status, handle = _c.fsc_open(self.dir, opts)
        _check(status, "open %r" % self.dir)
        self._handle = handle

    @property
    def _h(self):
        if self._handle is None:
            raise ValueError("the cache is closed")
        return self._handle

    def close(self):
        """Closes the handle (locks still held stay valid until released)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            _c.fsc_close(handle)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # -- values -------------------------------------------------------------

    def _entry(self, key):
        status, entry = _c.fsc_get(self._h, _key(key))
        return entry if _check(status, "get") == _c.FSC_OK else None

    @staticmethod
    def _read_all(entry):
        try:
            status, data = _c.fsc_py_entry_read_all(entry)
            _check(status, "read")
            return data
        finally:
            _c.fsc_entry_free(entry)

    def get(self, key):
        """The value as bytes, or None on a miss (absent, expired, invalidated)."""
        entry = self._entry(key)
        return None if entry is None else self._read_all(entry)

    def get_entry_info(self, key):
        """(size, offset, created_seconds) of the key's value, or None."""
        entry = self._entry(key)
        if entry is None:
            return None
        try:
            return (_c.fsc_entry_size(entry), _c.fsc_entry_offset(entry),
                    _c.fsc_entry_created_ms(entry) / 1000.0)
        finally:
            _c.fsc_entry_free(entry)

    def set(self, key, value):
        """Stores bytes (any buffer) under the key, replacing any value."""
        _check(_c.fsc_set(self._h, _key(key), value), "set")

    def delete(self, key):
        """Removes the key's value; True if there was one."""
        return _check(_c.fsc_delete(self._h, _key(key)), "delete") == _c.FSC_OK

    def __contains__(self, key):
        entry = self._entry(key)
        _c.fsc_entry_free(entry)
        return entry is not None

    def get_file(self, key):
        """The value as a binary file object positioned where the stored file
        was (see set_file), or None. The caller closes it."""
        found = self._get_file_and_time(key)
        return None if found is None else found[0]

    def _get_file_and_time(self, key):
        entry = self._entry(key)
        if entry is None:
            return None
        try:
            fd = os.dup(_c.fsc_entry_fd(entry))  # shares the entry's offset
            created = _c.fsc_entry_created_ms(entry) / 1000.0
        finally:
            _c.fsc_entry_free(entry)
        return os.fdopen(fd, "rb"), created

    def set_file(self, key, file, move=False):
        """Stores a file without reading it into memory.

        file is a path or a file object with a fileno(). The file object's
        current position is remembered: get_file hands out a file positioned
        there. move=True (or file_movable=True) renames the file into the
        cache instead of copying it (a file object then needs a .name)."""
        move = move or self.file_movable
        flags = _c.FSC_MOVE if move else 0
        if isinstance(file, (str, bytes, os.PathLike)):
            _check(_c.fsc_set_file(self._h, _key(key), -1, os.fsdecode(_path(file)), flags), "set_file")
            return
        file.flush()
        fd = file.fileno()
        path = os.fsdecode(_path(file.name)) if move and isinstance(getattr(file, "name", None), (str, bytes)) else None
        if move and path is None:
            flags = 0  # nothing to rename: copy from the descriptor
        # The library takes the offset from the descriptor; a buffered reader
        # may have read ahead of tell(), so set it and put it back afterwards.
        kernel_pos = os.lseek(fd, 0, os.SEEK_CUR)
        os.lseek(fd, file.tell(), os.SEEK_SET)
        try:
            _check(_c.fsc_set_file(self._h, _key(key), fd, path, flags), "set_file")
        finally:
            os.lseek(fd, kernel_pos, os.SEEK_SET)

    # -- locks and get-or-create -----------------------------------------------

    def lock(self, key, timeout=None):
        """The key's lock, shared by every thread and process using this
        directory: `with cache.lock(key, timeout=5): ...` (LockTimeoutError
        when not acquired in time). Re-entrant for the holding thread."""
        return Lock(self, key, timeout)

    def lock_holder(self, key):
        """Pid of another process holding the key's lock, 0 if none."""
        status, pid = _c.fsc_lock_holder(self._h, _key(key))
        _check(status, "lock_holder")
        return pid

    def get_or_create(self, key, creator, expiration_time=None):
        """The key's value; when it is missing or expired, creator() (returning
        bytes) is called at most once across every process and its result
        stored. An exception in creator propagates and nothing is stored.
        An expired value is returned as is while another caller regenerates."""

        def create():
            self.set(key, creator())

        status, entry = _c.fsc_get_or_create(self._h, _key(key), _ms(expiration_time, -1), create)
        _check(status, "get_or_create")
        return self._read_all(entry)

    # -- housekeeping ---------------------------------------------------------

    def invalidate(self, hard=True):
        """Every value stored before now becomes a miss (hard) or stale (soft:
        get misses, get_or_create serves it while one caller regenerates)."""
        _check(_c.fsc_invalidate(self._h, 1 if hard else 0), "invalidate")

    def clear(self):
        """Removes every value."""
        _check(_c.fsc_clear(self._h), "clear")

    def prune(self):
        """Drops expired values, then evicts down to cache_size."""
        _check(_c.fsc_prune(self._h), "prune")

    def stats(self):
        """A dict of entries, bytes, cache_size, hits, misses, sets, evictions, expirations."""
        status, stats = _c.fsc_stats(self._h)
        _check(status, "stats")
        return stats

    def verify(self, repair=False):
        """Checks every file; a dict of checked, problems, repaired."""
        status, report = _c.fsc_verify(self._h, 1 if repair else 0)
        _check(status, "verify")
        return report

    def foreach(self, visit):
        """Calls visit(key_bytes, size, created_ms) for every stored value;
        a truthy return value stops the walk."""
        _check(_c.fsc_foreach(self._h, visit), "foreach")

    def keys(self):
        """Every stored key, as bytes."""
        found = []
        self.foreach(lambda key, size, created_ms: found.append(key))
        return found


class Lock:
    """One key's lock. A context manager, and a mutex with
    acquire(blocking=True, timeout=-1) -> bool and release() (the shape that
    dogpile.cache and threading expect). Each acquire is one hold; release
    may come from another thread."""

    def __init__(self, cache, key, timeout=None):
        self._cache = cache
        self._key = _key(key)
        self._timeout = timeout
        self._holds = []

    def _take(self, timeout_ms):
        status, handle = _c.fsc_lock(self._cache._h, self._key, timeout_ms)
        if status in (_c.FSC_EBUSY, _c.FSC_ETIMEDOUT):
            return False
        _check(status, "lock")
        self._holds.append(handle)
        return True

    def acquire(self, blocking=True, timeout=-1):
        """True when acquired; False when busy (blocking=False) or timed out."""
        if not blocking:
            return self._take(0)
        return self._take(-1 if timeout is None or timeout < 0 else _ms(timeout, -1))

    def release(self):
        if not self._holds:
            raise RuntimeError("release of an fsc lock that is not held")
        _check(_c.fsc_unlock(self._holds.pop()), "unlock")

    def locked_here(self):
        """True while this object holds the lock."""
        return bool(self._holds)

    def __enter__(self):
        timeout_ms = _ms(self._timeout, -1)
        if not self._take(timeout_ms):
            status = _c.FSC_EBUSY if timeout_ms == 0 else _c.FSC_ETIMEDOUT
            raise _BY_STATUS[status]("lock not acquired within %s s" % self._timeout, status)
        return self

    def __exit__(self, *exc):
        self.release()

    def __del__(self):
        while self._holds:
            try:
                _c.fsc_unlock(self._holds.pop())
            except Exception:
                pass


def _dogpile_installed():
    import importlib.util

    try:
        return importlib.util.find_spec("dogpile.cache") is not None
    except ImportError:
        return False


if _dogpile_installed():
    from . import dogpile_backends  # noqa: F401,E402  (registers the backends)
