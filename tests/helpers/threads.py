"""numba thread counts for the determinism tests: one thread against several, never one alone."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


def thread_counts() -> list[int]:
    """1, 2 and numba's maximum: the counts a result must not depend on.

    Fails (rather than comparing one thread with itself) when numba allows a single thread;
    conftest raises ``NUMBA_NUM_THREADS`` to 2 on a one-CPU machine before numba is imported.
    """
    import numba

    most = numba.config.NUMBA_NUM_THREADS
    assert most >= 2, f"numba allows {most} thread: set NUMBA_NUM_THREADS >= 2 before importing it"
    return sorted({1, 2, most})


@contextlib.contextmanager
def numba_threads(n: int) -> Iterator[None]:
    """numba's parallel kernels use ``n`` threads inside the block."""
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        yield
    finally:
        numba.set_num_threads(before)
