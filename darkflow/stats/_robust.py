"""The robust standard deviation of darkflow: ``MAD_TO_STD x median absolute deviation``.

Every robust sigma in darkflow (residual widths, tile clipping, gain and law fits, plots) comes
from here, with the one constant :data:`~darkflow.stats.MAD_TO_STD` = 1 / Phi^-1(3/4) =
1.482602218505602 (astropy's ``mad_std``). Numba kernels import that constant.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from darkflow.stats._common import MAD_TO_STD

__all__ = ["mad_std", "robust_std"]


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
    median = np.nanmedian if ignore_nan else np.median
    v = np.asarray(values)
    if axis is None:
        c = median(v) if center is None else center
        return float(MAD_TO_STD * median(np.abs(v - c)))
    c = median(v, axis=axis, keepdims=True) if center is None else center
    return MAD_TO_STD * median(np.abs(v - c), axis=axis, keepdims=keepdims)


def robust_std(values: Any, *, min_size: int = 1) -> float:
    """:func:`mad_std` of the finite values; NaN when fewer than ``min_size`` (at least 1)
    remain."""
    v = np.asarray(values)
    v = v[np.isfinite(v)]
    if v.size < max(min_size, 1):
        return math.nan
    return mad_std(v)
