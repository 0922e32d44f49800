"""A masked running sum of frames (the master hold-out's plain mean of the training frames):
one numba pass per frame and its numpy twin.

Each frame adds its values within ``limit`` of a centre (``|x - centre| <= limit``, finite
values only) to a float64 sum and counts them. float32 frames, centre and limit: the
difference is taken in float32, as numpy does, so the kernel and the twin agree bit for bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["add_within", "add_within_reference"]


@njit(cache=True, fastmath=False, nogil=True, error_model="numpy")
def _add_within_nb(x, centre, limit, total, count):  # pragma: no cover - compiled
    for i in range(x.size):
        v = x[i]
        keep = np.isfinite(v) and abs(v - centre[i]) <= limit[i]
        total[i] += np.float64(v) if keep else 0.0
        count[i] += 1 if keep else 0


def add_within(
    x: np.ndarray, centre: np.ndarray, limit: np.ndarray, total: np.ndarray, count: np.ndarray
) -> None:
    """``total += where(keep, x, 0)``, ``count += keep`` with ``keep = isfinite(x) &
    (|x - centre| <= limit)``, in place. The kernel takes float32 ``x``, ``centre``,
    ``limit`` (C-contiguous, one shape), float64 ``total`` and int32 ``count``; other inputs
    go the twin's way."""
    arrays = (x, centre, limit, total, count)
    if (
        x.dtype == centre.dtype == limit.dtype == np.float32
        and total.dtype == np.float64
        and count.dtype == np.int32
        and all(a.shape == x.shape and a.flags.c_contiguous for a in arrays)
    ):
        _add_within_nb(*(a.reshape(-1) for a in arrays))
    else:
        add_within_reference(x, centre, limit, total, count)


def add_within_reference(
    x: np.ndarray, centre: np.ndarray, limit: np.ndarray, total: np.ndarray, count: np.ndarray
) -> None:
    """numpy twin of :func:`add_within`."""
    with np.errstate(invalid="ignore"):
        keep = np.isfinite(x) & (np.abs(x - centre) <= limit)
    total += np.where(keep, x, 0.0)
    count += keep
