"""The last step of :func:`darkflow.subtract.shot_signal` as one numba pass, and its numpy twin.

Given a calibrated frame, its smooth background and the median of each pixel's 8 neighbours,
the signal whose Poisson noise a pixel carries is its own value where it stands 3 sigma above
the background, the neighbours' median where that stands significantly above it, else the
background (see the docstring of ``shot_signal``). numpy computes it with a handful of
full-frame temporaries; the kernel makes one pass with the same operations in the same order
and numpy's dtypes (float32, the noise in float64 when the variance or the gain is float64),
so both give the same values (tests/test_shot_kernel.py; a zero's sign aside).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from darkflow.stats._common import in_threads

__all__ = ["shot_signal_of", "shot_signal_of_reference"]


@nb.njit(cache=True, nogil=True)
def _max0(v):  # pragma: no cover (numba)
    """``np.maximum(v, 0)`` of a float32 (NaN stays NaN)."""
    if math.isnan(v) or v >= np.float32(0.0):
        return v
    return np.float32(0.0)


@nb.njit(cache=True, nogil=True)
def _shot_signal(cal, smooth, local, base, gain, k_own, k_local, floor, out, y0, y1):
    # pragma: no cover (numba); base, gain, k_own, k_local, floor: of the noise's dtype;
    # ``base`` is per pixel or of shape (1, 1) (one value for every pixel)
    nx = cal.shape[1]
    by = 1 if base.shape[0] > 1 else 0
    bx = 1 if base.shape[1] > 1 else 0
    for y in range(y0, y1):
        for x in range(nx):
            c = cal[y, x]
            s = smooth[y, x]
            if math.isnan(s) or math.isinf(s):
                s = c
            v = base[y * by, x * bx] + _max0(s) / gain
            if not (math.isnan(v) or v >= floor):
                v = floor
            noise = np.sqrt(v)
            if c - s > k_own * noise:
                sig = c
            elif local[y, x] - s > k_local * noise:
                sig = local[y, x]
            else:
                sig = s
            out[y, x] = _max0(sig)


def shot_signal_of(
    calibrated: np.ndarray,
    smooth: np.ndarray,
    local: np.ndarray,
    base_variance: np.ndarray | float,
    egain_e_per_adu: float,
    local_sd: float,
) -> np.ndarray:
    """The shot signal (float32 ADU) of ``calibrated`` from its background ``smooth`` (NaN:
    the pixel's own value), its neighbours' median ``local`` and the variance without the
    pixel's own shot noise ``base_variance`` (per pixel or one value), at ``egain_e_per_adu``;
    ``local_sd``: the spread of ``local`` in units of one pixel's."""
    if any(np.asarray(a).dtype != np.float32 for a in (calibrated, smooth, local)):
        # numpy's promotion for other frames (the kernel is float32 frames only)
        return shot_signal_of_reference(
            calibrated, smooth, local, base_variance, egain_e_per_adu, local_sd
        )
    cal = np.ascontiguousarray(calibrated, dtype=np.float32)
    sm = np.ascontiguousarray(smooth, dtype=np.float32)
    loc = np.ascontiguousarray(local, dtype=np.float32)
    # the noise's dtype as numpy's promotion gives it: float32, unless the variance or the
    # gain is a float64 array or numpy scalar (Python numbers adapt to float32)
    dt = np.result_type(np.float32, base_variance, egain_e_per_adu)
    base = np.asarray(base_variance, dtype=dt)
    if base.shape != cal.shape:  # one value (or a broadcast row/column: expanded)
        base = base.reshape(1, 1) if base.size == 1 else np.broadcast_to(base, cal.shape)
    base = np.ascontiguousarray(base)  # one array layout: one compiled signature
    out = np.empty(cal.shape, dtype=np.float32)
    if cal.size:
        args = (
            dt.type(egain_e_per_adu),
            dt.type(3.0),
            dt.type(np.float32(3.0 * local_sd)),
            dt.type(1e-12),
        )
        in_threads(
            lambda y0, y1: _shot_signal(cal, sm, loc, base, *args, out, y0, y1),
            cal.shape[0],
            min_items=max(1, (1 << 16) // max(1, cal.shape[1])),
        )
    return out


def shot_signal_of_reference(
    calibrated: np.ndarray,
    smooth: np.ndarray,
    local: np.ndarray,
    base_variance: np.ndarray | float,
    egain_e_per_adu: float,
    local_sd: float,
) -> np.ndarray:
    """numpy twin of :func:`shot_signal_of`: the former body of ``shot_signal``."""
    smooth = np.where(np.isfinite(smooth), smooth, calibrated)
    noise = np.sqrt(np.maximum(base_variance + np.maximum(smooth, 0.0) / egain_e_per_adu, 1e-12))
    with np.errstate(invalid="ignore"):  # inf - inf: not a source
        own = calibrated - smooth > 3.0 * noise
        structure = local - smooth > np.float32(3.0 * local_sd) * noise
    signal = np.where(own, calibrated, np.where(structure, local, smooth))
    return np.maximum(signal, 0.0).astype(np.float32)
