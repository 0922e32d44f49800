"""The square dilation of a boolean mask (the light checks' source masks): a numba kernel and
its numpy twin.

:func:`dilate` sets every pixel within ``radius`` pixels (a ``(2 radius + 1)²`` square, the
frame's edge cutting it) of a set pixel. numpy ORs ``(2 radius + 1)² - 1`` shifted copies of the
whole frame (:func:`dilate_reference`, the former code); the kernel does it in two separable
passes (a square is a row's window of a column's window), each pixel's window in constant
time. A logical OR over the same pixels: the masks are equal (tests/test_mask_kernel.py).
:func:`finite_float64` gathers the finite values of an array as float64 in one pass (numpy: a
float64 copy of every value, then a boolean gather of it).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from darkflow.stats._common import in_threads

__all__ = ["dilate", "dilate_reference", "finite_float64", "finite_float64_reference"]


@nb.njit(cache=True, nogil=True)
def _rows_pass(mask, radius, out, y0, y1):  # pragma: no cover (numba)
    """Rows ``y0 .. y1``: ``out[y, x]`` = any of ``mask[y, x - radius .. x + radius]``."""
    nx = mask.shape[1]
    for y in range(y0, y1):
        last = -radius - 1  # the last set column at or before x + radius
        for x in range(min(radius, nx)):
            if mask[y, x]:
                last = x
        for x in range(nx):
            ahead = x + radius
            if ahead < nx and mask[y, ahead]:
                last = ahead
            out[y, x] = last >= x - radius


@nb.njit(cache=True, nogil=True)
def _columns_pass(rows, radius, out, y0, y1):  # pragma: no cover (numba)
    """Rows ``y0 .. y1``: ``out[y, x]`` = any of ``rows[y - radius .. y + radius, x]``."""
    ny, nx = rows.shape
    for y in range(y0, y1):
        lo = max(y - radius, 0)
        hi = min(y + radius + 1, ny)
        for x in range(nx):
            out[y, x] = rows[lo, x]
        for k in range(lo + 1, hi):
            for x in range(nx):
                out[y, x] = out[y, x] | rows[k, x]


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` (2-D, boolean) dilated by a square of ``2 radius + 1`` pixels: a new array,
    equal to :func:`dilate_reference`."""
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.dtype != np.bool_ or radius < 1 or mask.size == 0:
        return dilate_reference(mask, radius)
    rows = np.empty(mask.shape, np.bool_)
    out = np.empty(mask.shape, np.bool_)
    ny = mask.shape[0]
    in_threads(lambda y0, y1: _rows_pass(mask, radius, rows, y0, y1), ny, min_items=64)
    in_threads(lambda y0, y1: _columns_pass(rows, radius, out, y0, y1), ny, min_items=64)
    return out


def dilate_reference(mask: np.ndarray, radius: int) -> np.ndarray:
    """numpy twin of :func:`dilate` (the light checks' former code): the OR of the shifted
    copies."""
    out = mask.copy()
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy == 0 and dx == 0:
                continue
            shifted = np.zeros_like(mask)
            ys = slice(max(dy, 0), mask.shape[0] + min(dy, 0))
            yd = slice(max(-dy, 0), mask.shape[0] + min(-dy, 0))
            xs = slice(max(dx, 0), mask.shape[1] + min(dx, 0))
            xd = slice(max(-dx, 0), mask.shape[1] + min(-dx, 0))
            shifted[yd, xd] = mask[ys, xs]
            out |= shifted
    return out


@nb.njit(cache=True, nogil=True)
def _finite_count(v):  # pragma: no cover (numba)
    n = 0
    for i in range(v.size):
        n += np.isfinite(v[i])
    return n


@nb.njit(cache=True, nogil=True)
def _finite_fill(v, out):  # pragma: no cover (numba)
    j = 0
    for i in range(v.size):
        x = v[i]
        if np.isfinite(x):
            out[j] = np.float64(x)
            j += 1


def finite_float64(values: np.ndarray) -> np.ndarray:
    """The finite values of ``values`` (any shape, raster order) as a new 1-D float64 array:
    equal to :func:`finite_float64_reference`, without the float64 copy of every value."""
    v = np.asarray(values)
    if v.dtype not in (np.float32, np.float64) or not v.flags.c_contiguous:
        return finite_float64_reference(v)
    v = v.ravel()
    out = np.empty(_finite_count(v), np.float64)
    _finite_fill(v, out)
    return out


def finite_float64_reference(values: np.ndarray) -> np.ndarray:
    """numpy twin of :func:`finite_float64` (the former code of the batch variance)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    return v[np.isfinite(v)]
