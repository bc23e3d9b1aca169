"""dogpile.cache backends on fsc, registered when the package fsc is imported.

    from dogpile.cache import make_region
    import fsc  # registers "fsc.filesystem" and "fsc.raw_filesystem"

    region = make_region().configure("fsc.filesystem", arguments={
        "base_dir": "/path/to/cachedir",           # only for this region
        "cache_size": 1024 ** 3,                   # default 1 GiB; None: no limit
        "expiration_time": datetime.timedelta(seconds=30),  # default: never
        "distributed_lock": True,                  # default True
    })

A drop-in for dogpile_filesystem's "paylogic.filesystem" and
"paylogic.raw_filesystem": the same arguments ("file_movable" for the raw
variant; other arguments are ignored, except fsc's own "pack_limit" and
"network_mode"), the same
backend attributes and methods (expiration_time and cache_size may be changed
on a live backend, prune(), get_mutex()). See bindings/python/README.md.
"""

import logging
import os
import pickle
import stat
import tempfile
import threading
import time
import weakref

from dogpile.cache.api import NO_VALUE, CachedValue, CacheBackend
from dogpile.cache.region import register_backend, value_version

from . import Cache, CrossDeviceError, FormatError, TooBigError, _c, hashed_key

__all__ = ["FilesystemBackend", "RawFilesystemBackend"]

log = logging.getLogger(__name__)

# File values that are not regular files are spooled in chunks of this size.
CHUNK = 1024 * 1024

# fsc.filesystem keeps a pickle of up to this many bytes in memory and reads
# it back whole (fsc_get checks stored values up to 1 MiB itself); a larger
# one goes through a file both ways.
STREAM_LIMIT = 1024 * 1024


def _holds_dogpile_filesystem_cache(base_dir):
    """dogpile_filesystem keeps its values in base_dir/values/ (KEY.payload,
    KEY.metadata) beside its lock files dogpile.lock and rw.lock."""
    return os.path.isdir(os.path.join(base_dir, "values"))


def _open(base_dir, arguments):
    try:
        return Cache(
            base_dir,
            cache_size=arguments.get("cache_size", 1024 ** 3),
            expiration_time=arguments.get("expiration_time"),
            distributed_lock=bool(arguments.get("distributed_lock", True)),
            pack_limit=arguments.get("pack_limit", _c.FSC_PACK_LIMIT_DEFAULT),
            network_mode=arguments.get("network_mode", "auto"),
        )
    except FormatError as e:
        if not _holds_dogpile_filesystem_cache(base_dir):
            raise
        raise FormatError(
            "%s holds a dogpile_filesystem cache (values/, dogpile.lock, rw.lock), which fsc "
            "neither reads nor shares: give the fsc backend a directory of its own, or remove "
            "this one (it holds only cached values, which the region recreates)" % base_dir,
            e.status) from e


def _cache_option(name):
    """A property that reads and sets the option `name` of the backend's cache."""
    return property(lambda self: getattr(self.cache, name), lambda self, value: setattr(self.cache, name, value))


class _Backend(CacheBackend):
    """What both variants share: arguments, live options, mutexes, deletes, prune."""

    def __init__(self, arguments, file_movable):
        if "base_dir" not in arguments:
            raise ValueError("the fsc backends need a 'base_dir' argument")
        self.base_dir = os.path.abspath(os.path.normpath(arguments["base_dir"]))
        self.distributed_lock = arguments.get("distributed_lock", True)
        self.file_movable = file_movable
        self.cache = _open(self.base_dir, arguments)
        self._mutex_guard = threading.Lock()
        self._mutex_pid = None
        self._mutexes = None

    # Both stay live: the cache is opened again with the new value.
    expiration_time = _cache_option("expiration_time")
    cache_size = _cache_option("cache_size")

    @staticmethod
    def _key(key):
        # The library takes no empty key; over-long ones fsc.Cache hashes itself.
        return hashed_key(b"") if len(key) == 0 else key

    def get_mutex(self, key):
        """The key's fsc lock, the same object for the same key in one process
        (a forked child gets its own); None without distributed_lock, so that
        dogpile uses its in-process lock."""
        if not self.distributed_lock:
            return None
        with self._mutex_guard:
            if self._mutex_pid != os.getpid():
                self._mutex_pid, self._mutexes = os.getpid(), weakref.WeakValueDictionary()
            mutex = self._mutexes.get(key)
            if mutex is None:
                mutex = self._mutexes[key] = self.cache.lock(self._key(key))
            return mutex

    def _store(self, key, store):
        """Runs store(); a value too big for cache_size is not kept (nor is the
        key's old value), which only a warning tells."""
        try:
            store()
        except TooBigError as e:
            self.cache.delete(self._key(key))
            log.warning("fsc: the value of %.200r is not cached: %s", key, e)

    def get_multi(self, keys):
        return [self.get(key) for key in keys]

    def set_multi(self, mapping):
        for key, value in mapping.items():
            self.set(key, value)

    def delete(self, key):
        self.cache.delete(self._key(key))

    def delete_multi(self, keys):
        for key in keys:
            self.delete(key)

    def attempt_delete_key(self, key):
        """dogpile_filesystem's name; an fsc delete never waits for readers."""
        self.delete(key)

    def prune(self):
        """Drops expired values, then evicts least recently used ones down to cache_size."""
        self.cache.prune()


class FilesystemBackend(_Backend):
    """"fsc.filesystem": any picklable value, pickled with dogpile's metadata."""

    def __init__(self, arguments):
        super().__init__(arguments, file_movable=False)
        self._tmp_dir = os.path.join(self.base_dir, "tmp")  # fsc's, swept by its open
        # Each thread reuses its writer and pickler: new ones per set made a 1 KB set 4% slower.
        self._spare = threading.local()

    def get(self, key):
        entry = self.cache._entry(self._key(key))
        if entry is None:
            return NO_VALUE
        # A value up to STREAM_LIMIT is read whole, which checks it
        # (FSC_CHECKS); a larger one is unpickled from its file, so that each
        # large object is read straight into its own buffer.
        if _c.fsc_entry_size(entry) <= STREAM_LIMIT:
            return self._unpickled(key, pickle.loads, Cache._read_all(entry))
        with _value_file(entry) as file:
            return self._unpickled(key, pickle.load, file)

    def _unpickled(self, key, load, source):
        """load(source), or NO_VALUE (the value deleted) when it cannot be
        unpickled or was made too long ago."""
        try:
            value = load(source)
        except Exception as e:  # any unpickling failure: a value this code cannot read
            log.warning("fsc: the value of %.200r cannot be unpickled (%s: %s); dropped",
                        key, type(e).__name__, e)
            self.delete(key)
            return NO_VALUE
        if self._made_too_long_ago(value):
            self.delete(key)
            return NO_VALUE
        return value

    def _made_too_long_ago(self, value):
        """dogpile_filesystem counts expiration_time from the value's making as
        time.time() saw it, which dogpile records in the value ("ct"); fsc's own
        stamp is the set's. A value is expired when either is too old."""
        span = self.cache.expiration_time
        if span is None or not isinstance(value, CachedValue):
            return False
        if hasattr(span, "total_seconds"):
            span = span.total_seconds()
        return time.time() - value.metadata.get("ct", time.time()) > span

    def set(self, key, value):
        self._store(key, lambda: self._pickle_into(self._key(key), value))

    def _pickle_into(self, key, value):
        """A pickle of up to STREAM_LIMIT bytes is stored from memory; a larger
        one is written to a temp file in the cache's tmp/ as it is made and
        renamed in, so the value is never held twice."""
        spare = self._spare
        out, pickler = getattr(spare, "pair", None) or self._new_pair()
        spare.pair = None  # a set nested in this pickling makes a pair of its own
        try:
            pickler.dump(value)
            if out.file is None:
                self.cache.set(key, b"".join(out.chunks))
            else:
                out.file.close()
                try:
                    self.cache.set_file(key, out.path, move=True)
                    out.path = None
                except CrossDeviceError:  # tmp/ mounted apart from shards/: copy instead
                    self.cache.set_file(key, out.path)
        finally:
            if out.path is not None:
                out.discard()
            out.reset()
            pickler.clear_memo()  # let go of the value
        spare.pair = out, pickler  # after a failure, a new pair is made instead

    def _new_pair(self):
        out = _SpillingWriter(self._tmp_dir)
        return out, pickle.Pickler(out, pickle.HIGHEST_PROTOCOL)


def _value_file(entry):
    """A binary file of the entry's value (which this frees), at its start."""
    try:
        size = _c.fsc_entry_size(entry)
        fd = os.dup(_c.fsc_entry_fd(entry))
    finally:
        _c.fsc_entry_free(entry)
    file = os.fdopen(fd, "rb")
    # The value is the file's last `size` bytes, whatever the offset remembered.
    file.seek(os.fstat(fd).st_size - size)
    return file


class _SpillingWriter:
    """A pickle's output: kept in memory up to STREAM_LIMIT bytes, then in a
    temp file in tmp_dir (fsc's open removes what a crash leaves there).
    discard() closes the file and removes it."""

    __slots__ = ("tmp_dir", "chunks", "held", "file", "path")

    def __init__(self, tmp_dir):
        self.tmp_dir = tmp_dir
        self.reset()

    def reset(self):
        self.chunks, self.held, self.file, self.path = [], 0, None, None

    def write(self, data):
        if self.file is None:
            self.held += len(data) if type(data) is bytes else memoryview(data).nbytes
            if self.held <= STREAM_LIMIT:
                # The pickler may hand out views of its buffer: keep a copy.
                self.chunks.append(data if type(data) is bytes else bytes(data))
                return
            fd, path = tempfile.mkstemp(dir=self.tmp_dir, prefix="dogpile-")
            self.file, self.path = os.fdopen(fd, "wb"), path
            self.file.writelines(self.chunks)
            self.chunks = None
        self.file.write(data)

    def discard(self):
        self.file.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def _regular_file_fd(value):
    """The value's descriptor when it is a regular file, else None."""
    try:
        fd = value.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None


class RawFilesystemBackend(_Backend):
    """"fsc.raw_filesystem": file values, stored and returned without pickling.

    A value is any binary file-like object: a regular file is copied (or,
    with file_movable, renamed) into the cache; anything else (io.BytesIO, a
    pipe, an object with only read()) is read in chunks of CHUNK bytes. The
    file handed back is positioned where the stored one was; its .name is its
    path in the cache. The creation time dogpile needs is the stored entry's."""

    def __init__(self, arguments):
        super().__init__(arguments, file_movable=bool(arguments.get("file_movable", False)))

    def get(self, key):
        found = self.cache._get_file_and_time(self._key(key))
        if found is None:
            return NO_VALUE
        file, created = found
        return CachedValue(file, {"ct": created, "v": value_version})

    def set(self, key, value):
        payload = value.payload if isinstance(value, CachedValue) else value
        self._store(key, lambda: self._set_file(self._key(key), payload))

    def _set_file(self, key, payload):
        if _regular_file_fd(payload) is None:
            self._set_streamed(key, payload)
            return
        if self.file_movable and isinstance(getattr(payload, "name", None), (str, bytes)):
            try:
                self.cache.set_file(key, payload, move=True)
                return
            except CrossDeviceError:
                pass  # the file stays where it was: copy it instead
        self.cache.set_file(key, payload)

    def _set_streamed(self, key, payload):
        """Spools the value through an unnamed temp file, a chunk at a time;
        a seekable value is stored whole and keeps its position."""
        seekable = callable(getattr(payload, "seekable", None)) and payload.seekable()
        offset = payload.tell() if seekable else 0
        if seekable:
            payload.seek(0)
        try:
            with tempfile.TemporaryFile() as spool:
                while True:
                    chunk = payload.read(CHUNK)
                    if not chunk:
                        break
                    spool.write(chunk)
                spool.seek(offset)
                self.cache.set_file(key, spool)
        finally:
            if seekable:
                payload.seek(offset)


register_backend("fsc.filesystem", __name__, "FilesystemBackend")
register_backend("fsc.raw_filesystem", __name__, "RawFilesystemBackend")
