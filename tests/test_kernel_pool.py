"""``in_threads`` runs its ranges on one shared pool per process: the ranges cover the items in
order whatever the thread count, the pool's threads are reused from call to call, a call made
from a pool thread runs inline (no deadlock), and a forked child starts a pool of its own."""

from __future__ import annotations

import itertools
import os
import sys
import threading

import numpy as np
import pytest

from darkflow.stats import _common
from darkflow.stats._common import in_threads


def _ranges(n: int, threads: int) -> list[tuple[int, int]]:
    got: list[tuple[int, int]] = []
    lock = threading.Lock()

    def run(lo: int, hi: int) -> None:
        with lock:
            got.append((lo, hi))

    in_threads(run, n, threads=threads)
    return sorted(got)


@pytest.mark.parametrize("threads", [1, 2, 3, 5])
def test_ranges_cover_the_items_once_in_order(threads):
    n = 1001
    got = _ranges(n, threads)
    assert len(got) == threads
    assert got[0][0] == 0 and got[-1][1] == n
    assert all(a[1] == b[0] for a, b in itertools.pairwise(got))
    out = np.zeros(n, np.int64)

    def fill(lo: int, hi: int) -> None:
        out[lo:hi] = np.arange(lo, hi) ** 2

    in_threads(fill, n, threads=threads)
    assert np.array_equal(out, np.arange(n) ** 2)


def test_the_pool_threads_are_reused_across_calls():
    caller = threading.current_thread()
    seen: list[threading.Thread] = []  # the Thread objects themselves: idents get reused

    def once() -> None:
        barrier = threading.Barrier(3, timeout=30)

        def run(lo: int, hi: int) -> None:
            seen.append(threading.current_thread())
            barrier.wait()  # three ranges at once: three threads

        in_threads(run, 3, threads=3)

    for _ in range(6):
        once()
    workers = {t for t in seen if t is not caller}
    assert len(seen) == 18 and sum(t is caller for t in seen) == 6
    # a pool of at least 2 threads, started once (a pool per call: 12 threads)
    assert 2 <= len(workers) <= _common._SHARED._size < 12
    assert all(t.name.startswith("darkflow-kernel") for t in workers)


def test_a_nested_call_from_a_pool_thread_completes_inline():
    inner_threads: list[set[int]] = []
    done = []

    def inner_call(lo: int, hi: int) -> None:
        seen: set[int] = set()

        def inner(a: int, b: int) -> None:
            seen.add(threading.get_ident())

        in_threads(inner, 64, threads=4)
        inner_threads.append(seen)
        done.append((lo, hi))

    result: list = []
    caller = threading.Thread(
        target=lambda: result.append(in_threads(inner_call, 8, threads=4)), daemon=True
    )
    caller.start()
    caller.join(timeout=60)
    assert not caller.is_alive(), "nested in_threads deadlocked"
    assert sorted(done) == [(0, 2), (2, 4), (4, 6), (6, 8)]
    # the ranges run on pool threads ran their inner calls on their own thread only
    assert sum(len(s) == 1 for s in inner_threads) >= 3


def test_an_error_in_a_range_is_raised_after_all_ranges_ended():
    finished = []

    def run(lo: int, hi: int) -> None:
        if lo == 0:
            raise ValueError("first range")
        finished.append(lo)

    with pytest.raises(ValueError, match="first range"):
        in_threads(run, 4, threads=4)
    assert sorted(finished) == [1, 2, 3]

    def late(lo: int, hi: int) -> None:
        if lo == 3:
            raise KeyError("last range")

    with pytest.raises(KeyError, match="last range"):
        in_threads(late, 4, threads=4)


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork with threads (Python 3.12+)
def test_a_forked_child_starts_its_own_pool():
    in_threads(lambda lo, hi: None, 4, threads=2)  # the parent's pool exists
    parent_pool = _common._SHARED._pool
    assert parent_pool is not None
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (child)
        code = 1
        try:
            out = np.zeros(100)

            def fill(lo: int, hi: int) -> None:
                out[lo:hi] = 1.0

            done = threading.Event()
            t = threading.Thread(target=lambda: (in_threads(fill, 100, threads=2), done.set()))
            t.start()
            t.join(timeout=30)
            ok = done.is_set() and out.all() and _common._SHARED._pool is not parent_pool
            code = 0 if ok else 2
        finally:
            os.write(write, bytes([code]))
            os._exit(0)
    os.close(write)
    status = os.read(read, 1)
    os.close(read)
    os.waitpid(pid, 0)
    assert status == bytes([0])
