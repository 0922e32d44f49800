"""Constants and helpers shared by the numba kernels and their numpy references."""

from __future__ import annotations

import functools
import os
import threading
from typing import Any

import numpy as np

__all__ = [
    "MAD_TO_STD",
    "MODE_MAD",
    "MODE_NOISE",
    "MODE_NOISE_MAD",
    "MODE_STD",
    "PLANES",
    "block_width",
    "empty_planes",
    "in_threads",
    "kernel_threads",
    "raw16_exact",
    "sorting_network",
]

MAD_TO_STD = 1.482602218505602  # 1 / Phi^-1(3/4), as astropy.stats.mad_std

MODE_MAD = 0
MODE_STD = 1
MODE_NOISE = 2
MODE_NOISE_MAD = 3


@functools.lru_cache(maxsize=64)
def sorting_network(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Comparators ``(i, j)``, ``i < j``, of a Batcher odd-even merge sort for ``n`` inputs.

    Built for the next power of two and pruned of comparators touching an index ``>= n``: the
    padding would hold ``+inf``, which never moves, so the pruned network sorts ``n`` values.
    Returns two read-only int64 arrays (first and second index of each comparator).
    """
    if n < 1:
        raise ValueError("sorting_network needs n >= 1")
    size = 1
    while size < n:
        size *= 2
    first: list[int] = []
    second: list[int] = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    a, b = i + j, i + j + k
                    if a // (2 * p) == b // (2 * p) and b < n:
                        first.append(a)
                        second.append(b)
            k //= 2
        p *= 2
    ci = np.array(first, dtype=np.int64)
    cj = np.array(second, dtype=np.int64)
    ci.flags.writeable = False
    cj.flags.writeable = False
    return ci, cj


def block_width(n: int) -> int:
    """Pixels per block in :func:`combine_band`: the ``n × width`` work block stays in L1/L2."""
    return int(min(256, max(16, (8192 // max(n, 1)) // 16 * 16)))


PLANES = ("mean", "uncertainty", "n_used", "n_low", "n_high", "hot", "saturated")
_PLANE_DTYPES = (np.float32, np.float32, np.uint16, np.uint16, np.uint16, np.float32, np.bool_)


def kernel_threads() -> int:
    """Threads a kernel call may use: numba's setting for this thread (``numba.set_num_threads``,
    as the worker processes and the tests set it), without starting numba's thread pool when
    nothing ever set it (then ``NUMBA_NUM_THREADS``, one per core by default)."""
    import numba
    from numba.np.ufunc import parallel

    if getattr(parallel, "_is_initialized", True):
        return max(1, int(numba.get_num_threads()))
    return max(1, int(numba.config.NUMBA_NUM_THREADS))


class _SharedPool:
    """The kernel threads, one pool per process: started on first use, reused by every
    :func:`in_threads` call (starting and joining threads per call cost a night ~300 thread
    starts), grown when a call asks for more workers than it has, and started again in a
    child process after a fork (the pool's threads do not survive a fork). Its worker threads
    are flagged, so a call from one of them runs inline (it never waits on its own pool)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: Any = None
        self._size = 0
        self._pid = os.getpid()
        self._local = threading.local()

    def reset(self) -> None:
        """Forget the pool (in a child process after a fork: its threads stayed behind)."""
        self._lock = threading.Lock()
        self._pool, self._size, self._pid = None, 0, os.getpid()
        self._local = threading.local()

    def in_worker(self) -> bool:
        """Whether the calling thread is one of the pool's workers."""
        return getattr(self._local, "worker", False)

    def _mark_worker(self) -> None:
        self._local.worker = True

    def get(self, workers: int) -> Any:
        """The pool, with at least ``workers`` threads."""
        if self._pid != os.getpid():  # a forked child: the parent's lock and threads are gone
            self.reset()
        with self._lock:
            if self._pool is None or self._size < workers:
                from concurrent.futures import ThreadPoolExecutor

                # a smaller pool still in use by another call finishes its work; its idle
                # threads exit once nothing references it
                self._pool = ThreadPoolExecutor(
                    max_workers=workers,
                    thread_name_prefix="darkflow-kernel",
                    initializer=self._mark_worker,
                )
                self._size = workers
            return self._pool


_SHARED = _SharedPool()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_SHARED.reset)


def in_threads(run, n: int, *, min_items: int = 1, threads: int | None = None) -> None:
    """Call ``run(lo, hi)`` on contiguous ranges covering ``0 .. n``, one per thread.

    The kernels are serial, ``nogil`` numba functions over a range of independent items (rows,
    tiles, pixel blocks): each item's result depends on its own inputs only, so the output is
    the same for any number of threads. Python threads rather than ``parallel=True``: numba's
    parallel lowering roughly doubles a kernel's first-run compile time (outlined gufunc, and
    every callee optimised again inside it), paid on every fresh install. Ranges of fewer than
    ``min_items`` items are not split. The calling thread runs the first range; the others go
    to a pool shared by all calls (:class:`_SharedPool`); a call made from one of the pool's
    own threads runs all ranges inline.
    """
    if n <= 0:
        return
    t = kernel_threads() if threads is None else max(1, int(threads))
    t = max(1, min(t, n // max(1, min_items)))
    if t == 1 or _SHARED.in_worker():
        run(0, n)
        return
    from concurrent.futures import wait

    bounds = [n * k // t for k in range(t + 1)]
    pool = _SHARED.get(t - 1)
    futures = [pool.submit(run, bounds[k], bounds[k + 1]) for k in range(1, t)]
    try:
        run(bounds[0], bounds[1])
    finally:
        wait(futures)  # no range still writes when this call returns or raises
    for future in futures:
        future.result()


def raw16_exact(bscale: float, bzero: float) -> bool:
    """Whether raw 16-bit data with this scaling can use the integer-key kernel."""
    return bscale == 1.0 and float(bzero).is_integer() and abs(bzero) <= 2.0**24


def empty_planes(shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Allocate the output planes of :func:`combine_band` for an image of ``shape``."""
    return {name: np.empty(shape, dt) for name, dt in zip(PLANES, _PLANE_DTYPES, strict=True)}
