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

__all__ = [
    "finite_median",
    "finite_squared_median",
    "mad_std",
    "median",
    "median_and_squared",
    "nanmedian",
    "nanmedian_along",
    "robust_std",
]

# darkflow.stats._select's MIN_SIZE and SKIP_* codes, repeated here so that importing this
# module does not load numba (tests/test_select_kernel.py checks they agree)
_SELECT_MIN = 1 << 14
_SKIP_NAN, _SKIP_NONFINITE = 1, 2


def median(values: Any) -> Any:
    """``np.median(values)`` (all axes), the same value and type, with one selection.

    numpy's median partitions around two or three positions at once (the middle ones and the
    last, for its NaN check), which its vectorised single-position selection does not cover:
    about 10x slower on a frame. Here: a bracketed selection for large float arrays
    (:mod:`darkflow.stats._select`, numba, ten times faster than numpy's partition on a frame),
    otherwise one partition around the upper middle, the lower middle as the largest value
    below it, their ``np.mean`` as numpy takes it. Arrays with NaN, empty or not floating
    point: ``np.median`` itself.
    """
    v = np.asarray(values)
    if v.dtype.kind != "f" or v.size == 0:
        return np.median(v)
    v = v.ravel()
    found = _selected(v)
    if found is not None:
        return np.mean(found[0])
    if np.isnan(v).any():
        return np.median(v)
    return np.mean(_partition_middle(v))


def _selected(v: np.ndarray, centre: Any = None, skip: int = 0) -> Any:
    """:func:`~darkflow.stats._select.select_middle` for large arrays (numba loaded only
    then): ``(middle values, number of values)``; None for small ones or when numpy's path
    must be taken."""
    if v.size < _SELECT_MIN:
        return None
    from darkflow.stats._select import select_middle

    return select_middle(v, centre=centre, skip=skip)


def _partition_middle(v: np.ndarray) -> np.ndarray:
    """The middle value(s) of the 1-D float array ``v`` without NaN (not empty) by
    ``np.partition`` (their ``np.mean`` is the median): the reference of the bracketed
    selection."""
    k = v.size // 2
    part = np.partition(v, k)
    if v.size % 2:
        return part[k : k + 1]
    return np.array([part[:k].max(), part[k]], dtype=v.dtype)


def nanmedian(values: Any) -> Any:
    """``np.nanmedian(values)`` (all axes), the same value and type: :func:`median` of the
    values that are not NaN (no such value, empty or not floating point: numpy's own)."""
    v = np.asarray(values)
    if v.dtype.kind != "f" or v.size == 0:
        return np.nanmedian(v)
    v = v.ravel()
    found = _selected(v, skip=_SKIP_NAN)
    if found is not None:
        return np.mean(found[0])
    nan = np.isnan(v)
    if not nan.any():
        return median(v)
    keep = v[~nan]
    return median(keep) if keep.size else np.nanmedian(v)


def finite_median(values: Any) -> tuple[Any, int]:
    """``(median of the finite values, their number)``: :func:`median` of
    ``values[np.isfinite(values)]`` (NaN when there is none) without the copy."""
    v = np.asarray(values).ravel()
    if v.dtype.kind == "f":
        found = _selected(v, skip=_SKIP_NONFINITE)
        if found is not None:
            return np.mean(found[0]), found[1]
    keep = v[np.isfinite(v)]
    return (median(keep) if keep.size else math.nan), int(keep.size)


def median_and_squared(values: Any) -> tuple[Any, Any]:
    """``(median(values), median(np.square(values, dtype=np.float64)))`` with one selection
    when no value is negative or NaN: squaring keeps the order of such values (exactly in
    float64 for float32 values, monotonically for float64), so the squares' middle values are
    the squares of the middle values, and their ``np.mean`` is the squares' median."""
    v = np.asarray(values).ravel()
    if v.dtype.kind != "f" or v.size == 0 or not v.min() >= 0:
        return median(v), median(np.square(v, dtype=np.float64))
    found = _selected(v)
    middle = found[0] if found is not None else _partition_middle(v)
    return np.mean(middle), np.mean(np.square(middle, dtype=np.float64))


def finite_squared_median(values: Any) -> Any:
    """``median(s[np.isfinite(s)])`` of ``s = np.square(values.astype(np.float64))`` (NaN when
    no square is finite): for float32 values none of which is negative, the squares of the
    middle finite values (one selection, no array of squares)."""
    v = np.asarray(values).ravel()
    if v.dtype == np.float32 and v.size >= _SELECT_MIN and not (v < 0).any():
        found = _selected(v, skip=_SKIP_NONFINITE)
        if found is not None:
            return np.mean(np.square(found[0], dtype=np.float64))
    s = np.square(v.astype(np.float64))
    s = s[np.isfinite(s)]
    return median(s) if s.size else math.nan


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
        if not ignore_nan and v.dtype.kind == "f" and v.size >= _SELECT_MIN:
            # large arrays: the deviations' median without the array of deviations
            c = median(v) if center is None else _same_type(center, v.dtype)
            found = None if c is None else _selected(v.ravel(), c)
            if found is not None:
                return float(MAD_TO_STD * np.mean(found[0]))
        med = np.nanmedian if ignore_nan else median
        c = med(v) if center is None else center
        return float(MAD_TO_STD * med(np.abs(v - c)))
    med = np.nanmedian if ignore_nan else np.median
    c = med(v, axis=axis, keepdims=True) if center is None else center
    return MAD_TO_STD * med(np.abs(v - c), axis=axis, keepdims=keepdims)


def _same_type(center: Any, dtype: np.dtype) -> Any:
    """``center`` as a scalar of ``dtype`` when ``values - center`` is computed in ``dtype``
    with exactly that scalar (numpy's rules: a scalar of that dtype, or a Python number the
    dtype holds exactly); otherwise None."""
    if isinstance(center, np.generic):
        return center if center.dtype == dtype else None
    if isinstance(center, (float, int)) and not isinstance(center, bool):
        c = dtype.type(center)
        return c if float(c) == center else None
    return None


def robust_std(values: Any, *, min_size: int = 1) -> float:
    """:func:`mad_std` of the finite values; NaN when fewer than ``min_size`` (at least 1)
    remain."""
    v = np.asarray(values)
    if v.dtype.kind == "f" and v.size >= _SELECT_MIN:
        # large arrays: the median of the finite values and of their deviations, no copies
        flat = v.ravel()
        found = _selected(flat, skip=_SKIP_NONFINITE)
        if found is not None:
            if found[1] < max(min_size, 1):
                return math.nan
            mad = _selected(flat, np.mean(found[0]), _SKIP_NONFINITE)
            if mad is not None:
                return float(MAD_TO_STD * np.mean(mad[0]))
    v = v[np.isfinite(v)]
    if v.size < max(min_size, 1):
        return math.nan
    return mad_std(v)


def nanmedian_along(a: np.ndarray, axis: int) -> np.ndarray:
    """``np.nanmedian(a, axis)`` by one sort (NaN sorts last); all-NaN slices give NaN.

    Several times faster than ``np.nanmedian`` on large arrays and silent on empty slices.
    """
    # sorted as a contiguous copy: numpy's vectorised sort takes contiguous lines only (the
    # columns of a frame sort ~2x faster copied first)
    s = np.sort(np.ascontiguousarray(np.moveaxis(np.asarray(a), axis, -1)), axis=-1)
    n = np.count_nonzero(~np.isnan(s), axis=-1)
    lo = np.take_along_axis(s, np.maximum((n - 1) // 2, 0)[..., None], axis=-1)[..., 0]
    hi = np.take_along_axis(s, np.maximum(n // 2, 0)[..., None], axis=-1)[..., 0]
    out = (lo + hi) / 2
    return np.where(n > 0, out, np.nan).astype(s.dtype, copy=False)
