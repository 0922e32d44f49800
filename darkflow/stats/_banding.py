"""The banding gate's background residuals and their noise variances in one numba pass, with
the numpy twin.

:func:`banding_inputs` gives, per pixel, the residual ``c - background`` where the pixel is
background (``valid``), within 5 predicted sigmas (``|c - background| / u <= 5``) and not in a
source column (NaN elsewhere), and the variance ``u² w²`` of its noise. numpy builds them from
eight frame-sized temporaries (:func:`banding_inputs_reference`, the gate's former code); the
kernel takes the same IEEE operations in the same dtypes (float32 differences and ratios, a
float64 square times ``w²``), so the values are bit-identical (tests/test_banding_kernel.py).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from darkflow.stats._common import in_threads

__all__ = ["banding_inputs", "banding_inputs_reference"]


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _inputs(c, bg, u, valid, columns, w2, resid, var, y0, y1):  # pragma: no cover (numba)
    nx = c.shape[1]
    five = np.float32(5.0)
    nan = np.float32(np.nan)
    for y in range(y0, y1):
        for x in range(nx):
            uu = u[y, x]
            d = c[y, x] - bg[y, x]
            z = abs(d / uu)
            resid[y, x] = d if (valid[y, x] and z <= five and not columns[x]) else nan
            uf = np.float64(uu)
            var[y, x] = uf * uf * w2


def banding_inputs(
    c: np.ndarray,
    background: np.ndarray,
    u: np.ndarray,
    valid: np.ndarray,
    columns: np.ndarray | None,
    w2: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``(resid, var)`` of the banding gate (``columns``: the source columns left out, or
    ``None``): equal to :func:`banding_inputs_reference`."""
    arrays = (c, background, u, valid)
    if not (
        all(isinstance(a, np.ndarray) and a.ndim == 2 and a.shape == c.shape for a in arrays)
        and c.dtype == background.dtype == u.dtype == np.float32
        and valid.dtype == np.bool_
        and (columns is None or (columns.dtype == np.bool_ and columns.shape == c.shape[1:]))
    ):
        return banding_inputs_reference(c, background, u, valid, columns, w2)
    ny, nx = c.shape
    cols = np.zeros(nx, np.bool_) if columns is None else columns
    resid = np.empty(c.shape, np.float32)
    var = np.empty(c.shape, np.float64)
    in_threads(
        lambda y0, y1: _inputs(c, background, u, valid, cols, float(w2), resid, var, y0, y1),
        ny,
        min_items=64,
    )
    return resid, var


def banding_inputs_reference(
    c: np.ndarray,
    background: np.ndarray,
    u: np.ndarray,
    valid: np.ndarray,
    columns: np.ndarray | None,
    w2: float,
) -> tuple[np.ndarray, np.ndarray]:
    """numpy twin of :func:`banding_inputs` (the banding gate's former code)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = c - background
        z = diff / u
        np.abs(z, out=z)
        resid = np.where(valid & (z <= 5.0), diff, np.nan)
    del diff, z
    var = np.square(u, dtype=np.float64)
    var *= w2
    if columns is not None:
        resid = np.where(columns[None, :], np.nan, resid)
    return resid, var
