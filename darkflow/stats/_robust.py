"""The robust standard deviation of darkflow: ``MAD_TO_STD x median absolute deviation``.

Every robust sigma in darkflow (residual widths, tile clipping, gain and law fits, plots) comes
from here, with the one constant :data:`~darkflow.stats.MAD_TO_STD` = 1 / Phi^-1(3/4)
(astropy's ``mad_std``), defined once in ``stats/_common.py``. Numba kernels import that constant.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from darkflow.stats._common import MAD_TO_STD

__all__ = ["mad_std", "median", "nanmedian", "robust_std"]


def median(values: Any) -> Any:
    """``np.median(values)`` (all axes), the same value and type, with one selection.

    numpy's median partitions around two or three positions at once (the middle ones and the
    last, for its NaN check), which its vectorised single-position selection does not cover:
    about 10x slower on a frame. Here: one partition around the upper middle, the lower middle
    as the largest value below it, their ``np.mean`` as numpy takes it. Arrays with NaN, empty
    or not floating point: ``np.median`` itself.
    """
    v = np.asarray(values)
    if v.dtype.kind != "f" or v.size == 0 or np.isnan(v).any():
        return np.median(v)
    v = v.ravel()
    if v.size >= (1 << 16):
        # many ties at the median slow numpy's selection down five- to tenfold: a bracketed
        # selection then (numba, the same value; None where numpy's is as fast)
        from darkflow.stats._select import window_median

        found = window_median(v)
        if found is not None:
            return found
    k = v.size // 2
    part = np.partition(v, k)
    if v.size % 2:
        return np.mean(part[k : k + 1])
    return np.mean(np.array([part[:k].max(), part[k]], dtype=v.dtype))


def nanmedian(values: Any) -> Any:
    """``np.nanmedian(values)`` (all axes), the same value and type: :func:`median` of the
    values that are not NaN (no such value, empty or not floating point: numpy's own)."""
    v = np.asarray(values)
    if v.dtype.kind != "f" or v.size == 0:
        return np.nanmedian(v)
    v = v.ravel()
    nan = np.isnan(v)
    if not nan.any():
        return median(v)
    keep = v[~nan]
    return median(keep) if keep.size else np.nanmedian(v)


def mad_std(
    values: Any,
    *,
    center: Any = None,
    axis: int | None = None,
    ignore_nan: bool = False,
    keepdims: bool = False,
) -> Any:
    """Standard deviation of a Gaussian from the median absolute deviation of ``values``.

    ``MAD_TO_STD * median(|values - center|)``, ``center`` being the median of ``values`` by
    default (along ``axis`` when given). ``values`` must not be empty. NaNs propagate unless
    ``ignore_nan`` (then an all-NaN line gives NaN with numpy's ``RuntimeWarning``); use
    :func:`robust_std` to drop non-finite values first. The median keeps the data's dtype, so
    float32 data give the float32 product.

    Returns
    -------
    float, or an array when ``axis`` is given.
    """
    v = np.asarray(values)
    if axis is None:
        med = np.nanmedian if ignore_nan else median
        c = med(v) if center is None else center
        return float(MAD_TO_STD * med(np.abs(v - c)))
    med = np.nanmedian if ignore_nan else np.median
    c = med(v, axis=axis, keepdims=True) if center is None else center
    return MAD_TO_STD * med(np.abs(v - c), axis=axis, keepdims=keepdims)


def robust_std(values: Any, *, min_size: int = 1) -> float:
    """:func:`mad_std` of the finite values; NaN when fewer than ``min_size`` (at least 1)
    remain."""
    v = np.asarray(values)
    v = v[np.isfinite(v)]
    if v.size < max(min_size, 1):
        return math.nan
    return mad_std(v)
