"""Clipped widths of residuals (the master hold-out gates): a numba kernel and its numpy twin.

:func:`clipped_width` is the standard deviation of the values within ``clip`` of their own
standard deviations of their median, iterated from the plain standard deviation (see
:func:`darkflow.verify._holdout.frame_residual` for why not a MAD). The numpy reference
:func:`clipped_width_reference` is the former implementation, written with full-array
temporaries; the kernel makes one pass per round, without temporaries. Both use float32 values, a float32 median and float64
sums, so they agree to float rounding (tests/test_clip_kernels.py).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from darkflow.stats._robust import median as _median

__all__ = ["clipped_width", "clipped_width_reference"]


@nb.njit(cache=True, nogil=True)
def _std_within(v: np.ndarray, centre: np.float32, limit: np.float32) -> tuple:
    """Standard deviation of the values with ``|v - centre| <= limit`` (``limit`` infinite:
    all) and their count, in one pass: float64 sums of ``d = v - centre`` and ``d²``. The
    values sit within a few widths of ``centre``, so ``E[d²] - E[d]²`` loses no precision
    worth having (the numpy twin's two-pass value agrees to ~1e-12). Also the largest
    ``|v - centre|`` kept and the smallest left out (float32, as compared): any limit between
    them keeps the same values."""  # pragma: no cover
    s1 = 0.0
    s2 = 0.0
    n = 0
    c = np.float64(centre)
    far_in = np.float32(-1.0)
    near_out = np.float32(np.inf)
    for i in range(v.size):
        a = abs(v[i] - centre)
        if a <= limit:
            d = np.float64(v[i]) - c
            s1 += d
            s2 += d * d
            n += 1
            if a > far_in:
                far_in = a
        elif a < near_out:
            near_out = a
    if n == 0:
        return math.nan, 0, far_in, near_out
    mean = s1 / n
    return math.sqrt(max(s2 / n - mean * mean, 0.0)), n, far_in, near_out


@nb.njit(cache=True, nogil=True)
def _clip_rounds(
    v: np.ndarray, centre: np.float32, clip: float, iters: int, settled: bool = True
) -> float:
    """The clipping rounds around a fixed ``centre``.

    A round whose limit ``clip * s`` keeps the same values as the round before gives the same
    sums, so the same ``s``, and ends the rounds: with ``settled`` that round is not made
    when the values kept and left out show it (the largest kept and the smallest left out
    both on their side of the new limit), and the result is the same bit for bit."""
    # pragma: no cover (numba)
    s, _, far_in, _ = _std_within(v, centre, np.float32(np.inf))
    if settled and far_in <= np.float32(clip * s):
        return s  # the first round would keep every value
    for _ in range(iters):
        new, kept, far_in, near_out = _std_within(v, centre, np.float32(clip * s))
        if kept < 2:
            new = s
        if not new > 0 or new == s:
            break
        s = new
        if settled:
            limit = np.float32(clip * s)
            if far_in <= limit and near_out > limit:  # the next round keeps the same values
                break
    return s


def _finite32(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=np.float32).ravel()
    finite = np.isfinite(v)
    return v if finite.all() else v[finite]  # no copy when all are finite (the usual case)


def clipped_width(values: np.ndarray, clip: float = 5.0, iters: int = 6) -> float:
    """Standard deviation of the finite ``values`` within ``clip`` of their own standard
    deviations of their median, iterated (at most ``iters`` rounds); NaN for fewer than 2.

    The median is numpy's (its selection is faster than numba's); the rounds are the kernel.
    """
    v = np.ascontiguousarray(_finite32(values))
    if v.size < 2:
        return math.nan
    return float(_clip_rounds(v, np.float32(_median(v)), float(clip), int(iters)))


def clipped_width_reference(values: np.ndarray, clip: float = 5.0, iters: int = 6) -> float:
    """numpy reference of :func:`clipped_width`."""
    v = _finite32(values)
    if v.size < 2:
        return math.nan
    centre = float(np.median(v))
    dev = np.abs(v - centre)
    s = float(np.std(v, dtype=np.float64))
    for _ in range(iters):
        kept = v[dev <= clip * s]
        new = float(np.std(kept, dtype=np.float64)) if kept.size >= 2 else s
        if not new > 0 or new == s:
            break
        s = new
    return s
