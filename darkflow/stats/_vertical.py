"""The vertical residual of the light checks' noise gate as one numba pass, with its numpy twin.

Each pixel minus its prediction from the pixels 1 and 2 rows above and below, over the spread
of that difference (:func:`darkflow.verify._residuals.vertical_residual` documents the
statistic). numpy computes it with a dozen frame-sized float32 temporaries; the kernel computes
every pixel with the same float32 operations in the same order (constants as float32, the
square root correctly rounded), so the values are bit-identical
(tests/test_vertical_kernel.py).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from darkflow.stats._common import in_threads

__all__ = ["vertical_residual_of", "vertical_residual_reference"]


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _at(data, valid, y, x):  # pragma: no cover (numba)
    return data[y, x] if valid[y, x] else np.float32(np.nan)


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _vertical(data, unc, valid, step, out, y0, y1):  # pragma: no cover (numba)
    """Rows ``y0 .. y1`` (all at least ``2 step`` from the edges)."""
    nx = data.shape[1]
    f4, f6, f16, f36 = np.float32(4.0), np.float32(6.0), np.float32(16.0), np.float32(36.0)
    for y in range(y0, y1):
        ym2, ym1, yp1, yp2 = y - 2 * step, y - step, y + step, y + 2 * step
        for x in range(nx):
            near = _at(data, valid, ym1, x) + _at(data, valid, yp1, x)
            far = _at(data, valid, ym2, x) + _at(data, valid, yp2, x)
            u0, um1, up1 = unc[y, x], unc[ym1, x], unc[yp1, x]
            um2, up2 = unc[ym2, x], unc[yp2, x]
            var = u0 * u0 + (f16 * (um1 * um1 + up1 * up1) + um2 * um2 + up2 * up2) / f36
            pred = (f4 * near - far) / f6
            out[y, x] = (_at(data, valid, y, x) - pred) / np.float32(math.sqrt(np.float64(var)))


def vertical_residual_of(
    data: np.ndarray, uncertainty: np.ndarray, valid: np.ndarray, step: int
) -> np.ndarray:
    """:func:`vertical_residual_reference` (same arguments, same values) in one pass."""
    data = np.asarray(data)
    unc = np.asarray(uncertainty)
    valid = np.asarray(valid)
    if not (
        data.ndim == 2
        and data.dtype == np.float32
        and unc.dtype == np.float32
        and valid.dtype == np.bool_
        and data.shape == unc.shape == valid.shape
    ):
        return vertical_residual_reference(data, unc, valid, step)
    ny, nx = data.shape
    out = np.full(data.shape, np.nan, dtype=np.float32)
    k = 2 * step
    if ny <= 2 * k:
        return out
    in_threads(
        lambda y0, y1: _vertical(data, unc, valid, step, out, k + y0, k + y1),
        ny - 2 * k,
        min_items=max(1, (1 << 16) // max(nx, 1)),
    )
    return out


def vertical_residual_reference(
    data: np.ndarray, uncertainty: np.ndarray, valid: np.ndarray, step: int
) -> np.ndarray:
    """numpy twin of :func:`vertical_residual_of` (the noise gate's former code)."""
    x = np.where(valid, np.asarray(data, dtype=np.float32), np.float32(np.nan))
    u2 = np.square(np.asarray(uncertainty, dtype=np.float32))
    ny = x.shape[0]
    out = np.full(x.shape, np.nan, dtype=np.float32)
    k = 2 * step
    if ny <= 2 * k:
        return out

    def at(a: np.ndarray, o: int) -> np.ndarray:
        return a[k + o : ny - k + o]

    near = at(x, -step) + at(x, step)
    far = at(x, -2 * step) + at(x, 2 * step)
    var = at(u2, 0) + (
        16.0 * (at(u2, -step) + at(u2, step)) + at(u2, -2 * step) + at(u2, 2 * step)
    ) / np.float32(36.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[k : ny - k] = (at(x, 0) - (4.0 * near - far) / np.float32(6.0)) / np.sqrt(var)
    return out
