"""Kernels of star detection (:func:`darkflow.verify.photometry.detect_stars`) and their scipy twins.

Each numba kernel gives exactly (bit for bit) what its ``*_reference`` twin computes with
``scipy.ndimage``; tests compare them. They run on one thread (a frame's detection is one
step of a light's checks; the lights of a night run in parallel).

* :func:`local_max5_at` tells whether each given pixel equals the maximum of the 5x5 window
  around it (edges repeated), what ``a == ndimage.maximum_filter(a, 5, mode="nearest")`` tells
  for every pixel; only the pixels asked for are looked at.
* :func:`region_peaks` gives, per label of a label image, the first maximum (raster order)
  of an image over the label's pixels and the maximum of another image's finite values there,
  in one pass, what ``ndimage.find_objects`` and an ``argmax`` per region give.
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = [
    "local_max5_at",
    "local_max5_at_reference",
    "region_peaks",
    "region_peaks_reference",
]


@nb.njit(cache=True, nogil=True)
def _local_max5_at(a, ys, xs, out):  # pragma: no cover
    ny, nx = a.shape
    for k in range(ys.size):
        y, x = ys[k], xs[k]
        v = a[y, x]
        top = v
        for yy in range(y - 2, y + 3):
            cy = min(max(yy, 0), ny - 1)
            for xx in range(x - 2, x + 3):
                w = a[cy, min(max(xx, 0), nx - 1)]
                if w > top:
                    top = w
        out[k] = top == v


def local_max5_at(a: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Whether ``a[ys[k], xs[k]]`` is the maximum of its 5x5 window (edges repeated), per k.

    ``a`` holds no NaN (a NaN window compares as scipy's filter does not define)."""
    a = np.ascontiguousarray(a, dtype=np.float64)
    ys = np.ascontiguousarray(ys, dtype=np.int64)
    xs = np.ascontiguousarray(xs, dtype=np.int64)
    out = np.empty(ys.size, dtype=np.bool_)
    _local_max5_at(a, ys, xs, out)
    return out


def local_max5_at_reference(a: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """scipy twin of :func:`local_max5_at`."""
    from scipy import ndimage

    a = np.asarray(a, dtype=np.float64)
    return (a == ndimage.maximum_filter(a, size=5, mode="nearest"))[ys, xs]


@nb.njit(cache=True, nogil=True)
def _region_peaks(labels, box, sat, use_sat, n, py, px, sat_max):  # pragma: no cover
    ny, nx = labels.shape
    best = np.full(n, -np.inf)
    for k in range(n):
        py[k] = -1
        px[k] = -1
        sat_max[k] = -np.inf
    for y in range(ny):
        for x in range(nx):
            lab = labels[y, x]
            if lab <= 0 or lab > n:
                continue
            k = lab - 1
            v = box[y, x]
            if py[k] < 0 or v > best[k]:  # the first maximum in raster order
                best[k] = v
                py[k] = y
                px[k] = x
            if use_sat:
                s = np.float64(sat[y, x])
                if not np.isnan(s) and not np.isinf(s) and s > sat_max[k]:
                    sat_max[k] = s


def region_peaks(
    labels: np.ndarray, box: np.ndarray, sat: np.ndarray | None, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per label ``1..n`` of a label image: the row and column of the first maximum of ``box``
    over its pixels in raster order (-1 for an absent label), and the maximum of the finite
    values of ``sat`` over its pixels (``-inf`` when none, or without ``sat``)."""
    labels = np.ascontiguousarray(labels)
    box = np.ascontiguousarray(box, dtype=np.float64)
    n = max(int(n), 0)
    py, px = np.empty(n, np.int64), np.empty(n, np.int64)
    sat_max = np.empty(n, np.float64)
    use = sat is not None
    # the placeholder has the light's dtype: one compiled signature for both uses
    sat_a = np.ascontiguousarray(sat) if use else np.zeros((1, 1), np.float32)
    _region_peaks(labels, box, sat_a, use, n, py, px, sat_max)
    return py, px, sat_max


def region_peaks_reference(
    labels: np.ndarray, box: np.ndarray, sat: np.ndarray | None, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """scipy twin of :func:`region_peaks` (``ndimage.find_objects``, then each region)."""
    from scipy import ndimage

    py, px = np.full(n, -1, np.int64), np.full(n, -1, np.int64)
    sat_max = np.full(n, -np.inf)
    for k, sl in enumerate(ndimage.find_objects(labels, max_label=n)):
        if sl is None:
            continue
        region = labels[sl] == k + 1
        j = int(np.argmax(np.where(region, box[sl], -np.inf)))
        y, x = divmod(j, region.shape[1])
        py[k], px[k] = y + sl[0].start, x + sl[1].start
        if sat is not None:
            vals = np.asarray(sat[sl][region], dtype=np.float64)
            vals = vals[np.isfinite(vals)]
            if vals.size:
                sat_max[k] = vals.max()
    return py, px, sat_max
