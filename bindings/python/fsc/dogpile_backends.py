"""dogpile.cache backends on fsc, registered when the package fsc is imported.

    from dogpile.cache import make_region
    import fsc  # registers "fsc.filesystem" and "fsc.raw_filesystem"

    region = make_region().configure("fsc.filesystem", arguments={
        "base_dir": "/path/to/cachedir",           # only for this region
        "cache_size": 1024 ** 3,                   # default 1 GiB
        "expiration_time": datetime.timedelta(seconds=30),  # default: never
        "distributed_lock": True,                  # default True
        "pack_limit": 4096,                        # default 4096; 0: a file per value
    })

They take the arguments of dogpile_filesystem's "paylogic.filesystem" and
"paylogic.raw_filesystem" (plus "file_movable" for the raw variant, and
"pack_limit", as for fsc.Cache), so switching is a change of the backend name.
The generic variant stores any picklable value; the raw variant stores file
objects without reading them into memory and gives back a file positioned
where the stored one was (file values always get a file of their own).
get_mutex(key) is the key's fsc lock: it excludes other threads and (with
distributed_lock) other processes.
"""

from dogpile.cache.api import NO_VALUE, BytesBackend, CachedValue, CacheBackend
from dogpile.cache.region import register_backend, value_version

from . import Cache, _c

__all__ = ["FilesystemBackend", "RawFilesystemBackend"]


def _open(arguments, raw):
    if "base_dir" not in arguments:
        raise ValueError("the fsc backends need a 'base_dir' argument")
    return Cache(
        arguments["base_dir"],
        cache_size=arguments.get("cache_size", 1024 ** 3),
        expiration_time=arguments.get("expiration_time"),
        distributed_lock=arguments.get("distributed_lock", True),
        file_movable=raw and arguments.get("file_movable", False),
        pack_limit=arguments.get("pack_limit", _c.FSC_PACK_LIMIT_DEFAULT),
    )


class FilesystemBackend(BytesBackend):
    """"fsc.filesystem": any picklable value (dogpile's serializer)."""

    def __init__(self, arguments):
        self.cache = _open(arguments, raw=False)

    def get_serialized(self, key):
        value = self.cache.get(key)
        return NO_VALUE if value is None else value

    def get_serialized_multi(self, keys):
        return [self.get_serialized(key) for key in keys]

    def set_serialized(self, key, value):
        self.cache.set(key, value)

    def set_serialized_multi(self, mapping):
        for key, value in mapping.items():
            self.cache.set(key, value)

    def delete(self, key):
        self.cache.delete(key)

    def delete_multi(self, keys):
        for key in keys:
            self.cache.delete(key)

    def get_mutex(self, key):
        return self.cache.lock(key)


class RawFilesystemBackend(CacheBackend):
    """"fsc.raw_filesystem": file values, stored and returned without pickling.

    Values are file objects with a fileno() (e.g. tempfile.NamedTemporaryFile);
    with file_movable=True the file is renamed into the cache (create it with
    delete=False). The creation time dogpile needs is the stored entry's."""

    def __init__(self, arguments):
        self.cache = _open(arguments, raw=True)

    def get(self, key):
        found = self.cache._get_file_and_time(key)
        if found is None:
            return NO_VALUE
        file, created = found
        return CachedValue(file, {"ct": created, "v": value_version})

    def get_multi(self, keys):
        return [self.get(key) for key in keys]

    def set(self, key, value):
        self.cache.set_file(key, value.payload)

    def set_multi(self, mapping):
        for key, value in mapping.items():
            self.set(key, value)

    def delete(self, key):
        self.cache.delete(key)

    def delete_multi(self, keys):
        for key in keys:
            self.cache.delete(key)

    def get_mutex(self, key):
        return self.cache.lock(key)


register_backend("fsc.filesystem", __name__, "FilesystemBackend")
register_backend("fsc.raw_filesystem", __name__, "RawFilesystemBackend")
