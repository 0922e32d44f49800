"""Values grouped by closed bins ``[a, b]`` of increasing edges, in one pass (numba kernel).

A value on an inner edge belongs to both bins it closes (``(d >= a) & (d <= b)`` per bin);
the plain twin :func:`closed_bins_reference` takes one selection per bin, which the tests
compare :func:`closed_bins` with. Within a bin, the values keep their order.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
from numba import njit

__all__ = ["closed_bins", "closed_bins_reference"]


@njit(cache=True, fastmath=False, nogil=True, error_model="numpy")
def _bin_of(x, edges):  # pragma: no cover - compiled
    """The bin ``j`` with ``edges[j] <= x < edges[j + 1]`` (the last bin closed above);
    -1 outside ``[edges[0], edges[-1]]`` or NaN."""
    n_bins = edges.size - 1
    if not (edges[0] <= x <= edges[n_bins]):
        return -1
    lo, hi = 0, n_bins  # edges[lo] <= x; the answer lies in [lo, hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if edges[mid] <= x:
            lo = mid
        else:
            hi = mid
    return lo


@njit(cache=True, fastmath=False, nogil=True, error_model="numpy")
def _count_nb(d, edges, at, starts):  # pragma: no cover - compiled
    """Each value's bin (``at``, -1 outside) and the bins' offsets (``starts``)."""
    n_bins = edges.size - 1
    counts = np.zeros(n_bins + 1, np.int64)
    for i in range(d.size):
        j = _bin_of(d[i], edges)
        at[i] = j
        if j < 0:
            continue
        counts[j + 1] += 1
        if j > 0 and d[i] == edges[j]:
            counts[j] += 1  # on an inner edge: also the lower bin's
    for j in range(n_bins):
        starts[j + 1] = starts[j] + counts[j + 1]


@njit(cache=True, fastmath=False, nogil=True, error_model="numpy")
def _fill_nb(d, v, edges, at, starts, d_out, v_out):  # pragma: no cover - compiled
    fill = starts[:-1].copy()
    for i in range(d.size):
        j = at[i]
        if j < 0:
            continue
        if j > 0 and d[i] == edges[j]:
            d_out[fill[j - 1]] = d[i]
            v_out[fill[j - 1]] = v[i]
            fill[j - 1] += 1
        d_out[fill[j]] = d[i]
        v_out[fill[j]] = v[i]
        fill[j] += 1


def closed_bins(
    d: np.ndarray, v: np.ndarray, edges: np.ndarray
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(d[sel], v[sel])`` with ``sel = (d >= a) & (d <= b)`` for each pair ``a, b`` of the
    increasing ``edges`` (float64 1-d arrays; ``v`` paired with ``d``)."""
    d = np.ascontiguousarray(d, dtype=np.float64)
    v = np.ascontiguousarray(v, dtype=np.float64)
    edges = np.ascontiguousarray(edges, dtype=np.float64)
    n_bins = edges.size - 1
    if n_bins < 1:
        return
    starts = np.zeros(n_bins + 1, np.int64)
    at = np.empty(d.size, np.int16 if n_bins < 32_000 else np.int64)
    _count_nb(d, edges, at, starts)
    d_out = np.empty(int(starts[-1]), np.float64)
    v_out = np.empty(int(starts[-1]), np.float64)
    _fill_nb(d, v, edges, at, starts, d_out, v_out)
    for j in range(n_bins):
        yield d_out[starts[j] : starts[j + 1]], v_out[starts[j] : starts[j + 1]]


def closed_bins_reference(
    d: np.ndarray, v: np.ndarray, edges: np.ndarray
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Plain twin of :func:`closed_bins`: one selection per bin."""
    for a, b in itertools.pairwise(edges):
        sel = (d >= a) & (d <= b)
        yield d[sel], v[sel]
