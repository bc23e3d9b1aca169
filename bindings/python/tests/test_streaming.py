"""A 256 MiB file value goes in and out without ever being held in memory,
from a regular file and (through the raw dogpile backend) from an object
that only has read()."""

import os

import pytest

from conftest import PEAK_RSS, Child

SIZE = 256 * 1024 * 1024

CHILD = PEAK_RSS + """
src = os.path.join(sys.argv[1], "big.bin")
chunk = bytes(range(256)) * 4096  # 1 MiB
with open(src, "wb") as f:
    for _ in range(%d // len(chunk)):
        f.write(chunk)
c = fsc.Cache(os.path.join(sys.argv[1], "cache"), cache_size=1 << 30)
with open(src, "rb") as f:
    f.seek(1)
    c.set_file("big", f)
os.unlink(src)
total, first = 0, None
buf = bytearray(1 << 20)
with c.get_file("big") as f:
    start = f.tell()
    while True:
        n = f.readinto(buf)
        if not n:
            break
        if first is None:
            first = bytes(buf[:3])
        total += n
print(start, total, first.hex(), peak_rss_kib(), flush=True)
""" % SIZE


def test_big_raw_value_streams(tmp_path):
    p = Child(CHILD, tmp_path)
    start, total, first, peak_kib = p.read().split()
    p.finish()
    assert int(start) == 1 and int(total) == SIZE - 1 and first == "010203"
    assert int(peak_kib) < 64 * 1024, "peak RSS %s KiB" % peak_kib


CHILD_READ_ONLY = PEAK_RSS + """
from dogpile.cache import make_region

class Generated:
    # A value with only read(), made up as it is read.
    def __init__(self, size):
        self.left = size
    def read(self, n):
        n = min(n, self.left)
        self.left -= n
        return b"\\x07" * n

region = make_region().configure("fsc.raw_filesystem",
                                 arguments={"base_dir": os.path.join(sys.argv[1], "cache")})
region.set("big", Generated(%d))
with region.get("big") as f:
    total = sum(len(chunk) for chunk in iter(lambda: f.read(1 << 20), b""))
print(total, peak_rss_kib(), flush=True)
""" % SIZE


def test_big_read_only_value_streams_through_the_raw_backend(tmp_path, monkeypatch):
    pytest.importorskip("dogpile.cache")
    # Each chunk is a new bytes object: under ASan the freed ones would stay
    # resident in its quarantine (256 MiB by default), so keep that small.
    asan = [os.environ.get("ASAN_OPTIONS"), "quarantine_size_mb=16"]
    monkeypatch.setenv("ASAN_OPTIONS", ":".join(filter(None, asan)))
    p = Child(CHILD_READ_ONLY, tmp_path)
    total, peak_kib = p.read().split()
    p.finish()
    assert int(total) == SIZE
    # Half the value: room for dogpile's imports and ASan's shadow memory.
    assert int(peak_kib) < SIZE // 2 // 1024, "peak RSS %s KiB" % peak_kib
