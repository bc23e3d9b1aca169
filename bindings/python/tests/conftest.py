"""Shared fixtures: a fresh cache directory per test and child processes
driven line by line over pipes (never by sleeping)."""

import os
import subprocess
import sys
import textwrap

import pytest

import fsc


@pytest.fixture
def cache_dir(tmp_path):
    return str(tmp_path / "cache")


@pytest.fixture
def cache(cache_dir):
    with fsc.Cache(cache_dir) as c:
        yield c


class Child:
    """A Python child process running `code`; talk to it with send()/expect()."""

    def __init__(self, code, *args):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code)] + [str(a) for a in args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=dict(os.environ), text=True)

    @property
    def pid(self):
        return self.proc.pid

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, line):
        got = self.proc.stdout.readline().strip()
        assert got == line, "child said %r, expected %r" % (got, line)

    def read(self):
        return self.proc.stdout.readline().strip()

    def finish(self):
        self.proc.stdin.close()
        rest = self.proc.stdout.read()
        assert self.proc.wait(timeout=60) == 0, "child failed: %r" % rest
        return rest


def answers_after_pile_up(lock, start, code, *args, n=4):
    """Holds `lock` while n children of `code` (started with `start`, the
    child fixture) say "ready" and pile up behind it, then releases it; returns
    the set of the lines they answer, once all have exited cleanly."""
    assert lock.acquire()
    kids = [start(code, *args) for _ in range(n)]
    for k in kids:
        k.expect("ready")
    lock.release()
    answers = {k.read() for k in kids}
    for k in kids:
        k.finish()
    return answers


# The start of a child's code: imports, and peak_rss_kib(), its peak resident
# set (VmHWM) so far.
PEAK_RSS = """
import os, sys, fsc

def peak_rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
"""


@pytest.fixture
def child():
    started = []

    def start(code, *args):
        c = Child(code, *args)
        started.append(c)
        return c

    yield start
    for c in started:
        if c.proc.poll() is None:
            c.proc.kill()
            c.proc.wait()
