"""Photometry's bad-pixel filling (:func:`darkflow.verify.photometry.measure`) as a numba
kernel, with its numpy twin.

Each star window's hot pixels are replaced by the median of their good 3x3 neighbours before
it is measured, three or four times per star (raw and calibrated frames, the model); the twin
(the former ``_fill``) does it with a padded copy, nine gathers and a sort per call, mostly
Python overhead on windows of 23x23 pixels. The kernel sorts each bad pixel's good, not-NaN
neighbours and takes numpy's median of them (the mean of the two middle values, in float64),
so the filled windows are equal bit for bit (tests/test_fill_kernel.py).
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["fill_bad", "fill_bad_reference"]


@nb.njit(cache=True, nogil=True)
def _fill_bad(cut, bad, out):  # pragma: no cover
    ny, nx = cut.shape
    vals = np.empty(8, np.float64)
    for y in range(ny):
        for x in range(nx):
            if not bad[y, x]:
                continue
            n = 0
            for yy in range(y - 1, y + 2):
                for xx in range(x - 1, x + 2):
                    if 0 <= yy < ny and 0 <= xx < nx and not bad[yy, xx]:
                        v = cut[yy, xx]
                        if not np.isnan(v):
                            vals[n] = v
                            n += 1
            if n == 0:
                out[y, x] = np.nan
                continue
            s = np.sort(vals[:n])
            out[y, x] = (s[(n - 1) // 2] + s[n // 2]) / 2


def fill_bad(cut: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """``cut`` (float64) with its ``bad`` pixels replaced by the median of their good, not-NaN
    3x3 neighbours (NaN without one), as :func:`fill_bad_reference` does."""
    if not (
        isinstance(cut, np.ndarray)
        and cut.dtype == np.float64
        and cut.ndim == 2
        and bad.shape == cut.shape
    ):
        return fill_bad_reference(cut, bad)
    out = cut.copy()
    _fill_bad(cut, np.asarray(bad, dtype=np.bool_), out)
    return out


def fill_bad_reference(cut: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """numpy twin of :func:`fill_bad` (the photometry's former ``_fill``)."""
    from darkflow.verify._residuals import nanmedian_along  # one sort; no good neighbour: NaN

    out = cut.copy()
    ny, nx = cut.shape
    padded = np.full((ny + 2, nx + 2), np.nan)
    padded[1:-1, 1:-1] = np.where(bad, np.nan, cut)
    ys, xs = np.nonzero(bad)
    window = np.stack([padded[ys + 1 + dy, xs + 1 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
    out[ys, xs] = nanmedian_along(window, 0)
    return out
