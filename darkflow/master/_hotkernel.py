"""The hot-persistence plane as integer counts and back, in one pass (numba kernels).

``hot_persistence`` is ``count / valid`` (float32) with ``valid = n_used + n_low + n_high``;
a master file stores the counts (integers compress far better) when they give the plane back
bit for bit. The numpy twins are :func:`darkflow.master._fitsio._hot_counts_reference` and
:func:`darkflow.master._fitsio._hot_from_counts`, which the tests compare these with.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["hot_counts", "hot_from_counts"]

_JIT = {"cache": True, "fastmath": False, "nogil": True, "error_model": "numpy"}
_U16_MAX = float(np.iinfo(np.uint16).max)


@njit(**_JIT)
def _hot_counts_nb(hot, n_used, n_low, n_high, out):  # pragma: no cover - compiled
    for i in range(hot.size):
        valid = np.float64(np.int64(n_used[i]) + np.int64(n_low[i]) + np.int64(n_high[i]))
        c = np.rint(np.float64(hot[i]) * valid)
        if not (0.0 <= c <= _U16_MAX):  # out of range, NaN
            return False
        count = np.uint16(c)
        back = np.float32(count / valid) if valid > 0 else np.float32(0.0)
        if back != hot[i]:
            return False
        out[i] = count
    return True


@njit(**_JIT)
def _hot_from_counts_nb(counts, n_used, n_low, n_high, out):  # pragma: no cover - compiled
    for i in range(counts.size):
        valid = np.float64(np.int64(n_used[i]) + np.int64(n_low[i]) + np.int64(n_high[i]))
        out[i] = np.float32(counts[i] / valid) if valid > 0 else np.float32(0.0)


def _flat(a: np.ndarray, dtype) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=dtype).reshape(-1)


def hot_counts(
    hot: np.ndarray, n_used: np.ndarray, n_low: np.ndarray, n_high: np.ndarray
) -> np.ndarray | None:
    """The plane ``hot`` as uint16 counts of ``n_used + n_low + n_high`` frames, or ``None``
    when the counts do not give it back bit for bit (``count / valid`` as float32, 0 where no
    frame is valid)."""
    out = np.empty(hot.shape, np.uint16)
    ok = _hot_counts_nb(
        _flat(hot, np.float32),
        _flat(n_used, np.uint16),
        _flat(n_low, np.uint16),
        _flat(n_high, np.uint16),
        out.reshape(-1),
    )
    return out if ok else None


def hot_from_counts(
    counts: np.ndarray, n_used: np.ndarray, n_low: np.ndarray, n_high: np.ndarray
) -> np.ndarray:
    """The hot-persistence plane (float32) from its counts: ``count / valid``, 0 where no
    frame is valid."""
    out = np.empty(counts.shape, np.float32)
    _hot_from_counts_nb(
        _flat(counts, np.uint16),
        _flat(n_used, np.uint16),
        _flat(n_low, np.uint16),
        _flat(n_high, np.uint16),
        out.reshape(-1),
    )
    return out
