"""fsc: a persistent, size-bounded, cross-process filesystem cache.

    import fsc
    with fsc.Cache("/var/cache/myapp", cache_size=1 << 30, expiration_time=3600) as cache:
        cache.set("key", b"value")
        cache.get("key")                                # b"value"; None on a miss
        cache.get_or_create("other", lambda: b"made once, across processes")
        with cache.lock("key", timeout=5):              # excludes other processes too
            ...

Keys are str (UTF-8 encoded) or bytes, of any length (one longer than the
library's FSC_MAX_KEY is stored under hashed_key(key)); values are bytes (or
files, with set_file/get_file). Errors are fsc.Error subclasses, one per status code of
fsc.h (fsc.LockTimeoutError, fsc.TooBigError, ...). Importing the package
registers the dogpile.cache backends "fsc.filesystem" and "fsc.raw_filesystem"
when dogpile.cache is installed (see fsc.dogpile_backends).
"""

import datetime
import grp
import hashlib
import os
import threading

try:
    from . import _fsc_swig as _c
except ImportError:  # running from a build tree: the generated module is top-level
    import _fsc_swig as _c

__all__ = ["Cache", "Lock", "Error", "ClosedError", "version", "hashed_key"]

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
    "FSC_ELOST": "LostError",
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


class ClosedError(InvalidArgumentError, ValueError):  # noqa: F821 (made above)
    """A call on a closed Cache (or one closed while the call waited to start)."""

    def __init__(self, message="the cache is closed"):
        super().__init__(message, _c.FSC_EINVAL)


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


# Keys longer than the library takes are stored under this prefix and the
# SHA-256 of the whole key, so that a key of any length works.
LONG_KEY_PREFIX = b"fsc.sha256:"


def hashed_key(key):
    """The key under which a key too long for the library is stored."""
    return LONG_KEY_PREFIX + hashlib.sha256(key).hexdigest().encode("ascii")


def _key(key):
    if isinstance(key, str):
        key = key.encode("utf-8")
    elif not isinstance(key, (bytes, bytearray, memoryview)):
        raise TypeError("fsc keys are str or bytes, not %s" % type(key).__name__)
    return hashed_key(key) if len(key) > _c.FSC_MAX_KEY else key


def _path_of_whole_value(fd, size):
    """The path of fd's file when that file is exactly the value (not a pack
    or a file with an entry header) and is still at that path, else None."""
    st = os.fstat(fd)
    if st.st_size != size:
        return None
    try:
        path = os.readlink("/proc/self/fd/%d" % fd)
        at_path = os.stat(path)
    except OSError:
        return None
    return path if (at_path.st_dev, at_path.st_ino) == (st.st_dev, st.st_ino) else None


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


# network_mode's names (FSC_NETWORK in fsc.h).
_NETWORK_MODES = {"auto": _c.FSC_NETWORK_AUTO, "on": _c.FSC_NETWORK_ON, "off": _c.FSC_NETWORK_OFF}


def _network_mode(mode):
    """"auto", "on" or "off" -> FSC_NETWORK_*; anything else is a ValueError."""
    if isinstance(mode, str) and mode in _NETWORK_MODES:
        return _NETWORK_MODES[mode]
    raise ValueError('network_mode must be "auto", "on" or "off", not %r' % (mode,))


def _gid(group):
    """None -> -1 (private); a gid (int) or a group name -> the gid."""
    if group is None:
        return -1
    if isinstance(group, str):
        return grp.getgrnam(group).gr_gid
    return int(group)


class _Handle:
    """One fsc_cache handle and the calls running on it: a handle replaced by
    a changed option is closed only once no call uses it any more."""

    __slots__ = ("handle", "calls", "retired")

    def __init__(self, handle):
        self.handle, self.calls, self.retired = handle, 0, False


def _live_option(name):
    """A property of Cache: reads the option `name`; setting it opens the
    cache again with the new value."""
    return property(lambda self: self._options[name], lambda self, value: self._reopen(**{name: value}))


class Cache:
    """One open cache directory. Safe to share between threads; many
    processes may open the same directory at once.

    cache_size: bytes on disk; 0 or None is unbounded. pack_limit: values
    stored with set() of at most that many bytes are packed into their
    shard's pack file instead of getting a file of their own; 0 gives every
    value its own file; above 1 MiB, InvalidArgumentError.

    cache_size and expiration_time are attributes that may be changed on an
    open cache: the directory is opened again with the new option (locks held
    stay held) and every later call uses it.

    shared_group (a gid or a group name) shares the cache with that group's
    members; without it a directory another user owns or others may write
    is refused with AccessDeniedError (see FSC_OWNERSHIP in fsc.h).

    network_mode: "auto" runs in network mode (FSC_NETWORK in fsc.h) when
    the cache is on a network or FUSE filesystem; "on" and "off" force it.

    close() may come from any thread, or from a callback (a creator, a
    foreach visitor) of this cache: calls in flight finish on the open
    handle, which is closed when the last of them ends; calls made after
    close() raise ClosedError."""

    def __init__(self, dir, cache_size=1 << 30, expiration_time=None, distributed_lock=True,
                 file_movable=False, durable=False, max_entries=0,
                 pack_limit=_c.FSC_PACK_LIMIT_DEFAULT, shared_group=None, network_mode="auto"):
        self.dir = _path(dir)
        self.file_movable = bool(file_movable)
        self._options = dict(cache_size=cache_size, expiration_time=expiration_time,
                             distributed_lock=distributed_lock, file_movable=file_movable,
                             durable=durable, max_entries=max_entries, pack_limit=pack_limit,
                             shared_group=_gid(shared_group), network_mode=_network_mode(network_mode))
        self._guard = threading.Lock()
        self._open = _Handle(self._open_handle(self._options))

    def _open_handle(self, options):
        opts = _c.fsc_options()
        opts.cache_size = 0 if options["cache_size"] is None else int(options["cache_size"])
        opts.max_entries = int(options["max_entries"])
        opts.pack_limit = int(options["pack_limit"])
        opts.expiration_ms = _ms(options["expiration_time"], -1)
        opts.distributed_lock = 1 if options["distributed_lock"] else 0
        opts.file_movable = 1 if options["file_movable"] else 0
        opts.durable = 1 if options["durable"] else 0
        opts.shared_group = options["shared_group"]
        opts.network_mode = options["network_mode"]
        status, handle = _c.fsc_open(self.dir, opts)
        _check(status, "open %r" % self.dir)
        return handle

    def _retire(self, replacement):
        """Swaps in the replacement (None: closing); the old handle is closed
        now or by the last call still running on it."""
        with self._guard:
            old, self._open = self._open, replacement
            if old is None:
                return
            old.retired = True
            idle = old.calls == 0
        if idle:
            _c.fsc_close(old.handle)

    def _call(self, function, *args):
        """function(handle, *args), with the handle kept open meanwhile."""
        with self._guard:
            used = self._open
            if used is None:
                raise ClosedError()
            used.calls += 1
        try:
            return function(used.handle, *args)
        finally:
            with self._guard:
                used.calls -= 1
                last = used.retired and used.calls == 0
            if last:
                _c.fsc_close(used.handle)

    def _reopen(self, **changes):
        options = dict(self._options, **changes)
        handle = _Handle(self._open_handle(options))
        self._options = options
        self._retire(handle)

    cache_size = _live_option("cache_size")
    expiration_time = _live_option("expiration_time")

    def close(self):
        """Closes the handle (locks still held stay valid until released);
        with calls in flight, the last of them closes it."""
        self._retire(None)

    @property
    def closed(self):
        """True once close() was called."""
        return self._open is None

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
        status, entry = self._call(_c.fsc_get, _key(key))
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
        _check(self._call(_c.fsc_set, _key(key), value), "set")

    def delete(self, key):
        """Removes the key's value; True if there was one."""
        return _check(self._call(_c.fsc_delete, _key(key)), "delete") == _c.FSC_OK

    def __contains__(self, key):
        entry = self._entry(key)
        _c.fsc_entry_free(entry)
        return entry is not None

    def get_file(self, key):
        """The value as a binary file object positioned where the stored file
        was (see set_file), or None. The caller closes it. When the value is
        a file of its own (set_file), the file's .name is its path."""
        found = self._get_file_and_time(key)
        return None if found is None else found[0]

    def _get_file_and_time(self, key):
        entry = self._entry(key)
        if entry is None:
            return None
        try:
            fd = os.dup(_c.fsc_entry_fd(entry))  # shares the entry's offset
            size = _c.fsc_entry_size(entry)
            created = _c.fsc_entry_created_ms(entry) / 1000.0
        finally:
            _c.fsc_entry_free(entry)
        file = os.fdopen(fd, "rb")
        path = _path_of_whole_value(fd, size)
        if path is not None:
            file.raw.name = path
        return file, created

    def set_file(self, key, file, move=False):
        """Stores a file without reading it into memory.

        file is a path or a file object with a fileno(). The file object's
        current position is remembered: get_file hands out a file positioned
        there. move=True (or file_movable=True) renames the file into the
        cache instead of copying it (a file object then needs a .name)."""
        move = move or self.file_movable
        flags = _c.FSC_MOVE if move else 0
        if isinstance(file, (str, bytes, os.PathLike)):
            _check(self._call(_c.fsc_set_file, _key(key), -1, os.fsdecode(_path(file)), flags), "set_file")
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
            _check(self._call(_c.fsc_set_file, _key(key), fd, path, flags), "set_file")
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
        status, pid = self._call(_c.fsc_lock_holder, _key(key))
        _check(status, "lock_holder")
        return pid

    def get_or_create(self, key, creator, expiration_time=None):
        """The key's value; when it is missing or expired, creator() (returning
        bytes) is called at most once across every process and its result
        stored. An exception in creator propagates and nothing is stored.
        An expired value is returned as is while another caller regenerates."""

        def create():
            self.set(key, creator())

        status, entry = self._call(_c.fsc_get_or_create, _key(key), _ms(expiration_time, -1), create)
        _check(status, "get_or_create")
        return self._read_all(entry)

    # -- housekeeping ---------------------------------------------------------

    def invalidate(self, hard=True):
        """Every value stored before now becomes a miss (hard) or stale (soft:
        get misses, get_or_create serves it while one caller regenerates)."""
        _check(self._call(_c.fsc_invalidate, 1 if hard else 0), "invalidate")

    def clear(self):
        """Removes every value."""
        _check(self._call(_c.fsc_clear), "clear")

    def prune(self):
        """Drops expired values, then evicts down to cache_size."""
        _check(self._call(_c.fsc_prune), "prune")

    def stats(self):
        """A dict of entries, bytes, cache_size, hits, misses, sets, evictions, expirations,
        network_fs (True when the cache is on a network or FUSE filesystem) and
        network_mode (True when this handle runs in network mode)."""
        status, stats = self._call(_c.fsc_stats)
        _check(status, "stats")
        return stats

    def verify(self, repair=False):
        """Checks every file; a dict of checked, problems, repaired."""
        status, report = self._call(_c.fsc_verify, 1 if repair else 0)
        _check(status, "verify")
        return report

    def foreach(self, visit):
        """Calls visit(key_bytes, size, created_ms) for every stored value;
        a truthy return value stops the walk."""
        _check(self._call(_c.fsc_foreach, visit), "foreach")

    def keys(self):
        """Every stored key, as bytes."""
        found = []
        self.foreach(lambda key, size, created_ms: found.append(key))
        return found


class Lock:
    """One key's lock. A context manager, and a mutex with
    acquire(blocking=True, timeout=-1) -> bool and release() (the shape that
    dogpile.cache and threading expect; acquire also takes wait= as a name
    for blocking). Each acquire is one hold; release may come from another
    thread. A forked child holds none of its parent's holds."""

    def __init__(self, cache, key, timeout=None):
        self._cache = cache
        self._key = _key(key)
        self._timeout = timeout
        self._pid = os.getpid()
        self._holds = []

    def _held(self):
        """This process's holds (fsc drops the parent's in a forked child)."""
        if self._pid != os.getpid():
            self._pid, self._holds = os.getpid(), []
        return self._holds

    def _take(self, timeout_ms):
        status, handle = self._cache._call(_c.fsc_lock, self._key, timeout_ms)
        if status in (_c.FSC_EBUSY, _c.FSC_ETIMEDOUT):
            return False
        _check(status, "lock")
        self._held().append(handle)
        return True

    def acquire(self, blocking=True, timeout=-1, *, wait=None):
        """True when acquired; False when busy (blocking=False) or timed out.
        DeadlockError when the kernel refuses a wait that would deadlock
        between processes (nothing more is then held)."""
        if wait is not None:
            blocking = wait
        if not blocking:
            return self._take(0)
        return self._take(-1 if timeout is None or timeout < 0 else _ms(timeout, -1))

    def release(self):
        holds = self._held()
        if not holds:
            raise RuntimeError("release of an fsc lock that is not held")
        _check(_c.fsc_unlock(holds.pop()), "unlock")

    def locked_here(self):
        """True while this object holds the lock in this process."""
        return bool(self._held())

    is_locked = locked_here  # dogpile_filesystem's name

    def __enter__(self):
        timeout_ms = _ms(self._timeout, -1)
        if not self._take(timeout_ms):
            status = _c.FSC_EBUSY if timeout_ms == 0 else _c.FSC_ETIMEDOUT
            raise _BY_STATUS[status]("lock not acquired within %s s" % self._timeout, status)
        return self

    def __exit__(self, *exc):
        self.release()

    def __del__(self):
        holds = self._held()
        while holds:
            try:
                _c.fsc_unlock(holds.pop())
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
