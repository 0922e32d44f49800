"""Image kernels for checking calibrated frames: neighbour medians and tile background levels.

Each numba kernel has a plain-numpy reference (``*_reference``) that the tests compare against.
Both are deterministic: every output pixel or tile is computed by one thread from its own inputs.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import numba as nb
import numpy as np

from darkflow.stats._common import MAD_TO_STD, in_threads
from darkflow.stats._robust import mad_std, nanmedian_along

__all__ = [
    "ContentCache",
    "centre_rows",
    "centre_rows_reference",
    "centre_rows_where",
    "centre_rows_where_reference",
    "grid_interp",
    "grid_interp_reference",
    "neighbour_median8",
    "neighbour_median8_reference",
    "residual_summary",
    "residual_summary_reference",
    "row_medians",
    "row_medians_reference",
    "tile_levels",
    "tile_levels_reference",
]


#: pixels per thread below which a kernel call is not split between threads
_MIN_PIXELS = 1 << 16


def _min_rows(width: int) -> int:
    """Rows of ``width`` pixels a thread gets at least (small frames: one thread)."""
    return max(1, _MIN_PIXELS // max(1, width))


# ----------------------------------------------------------------------------- neighbour median
@nb.njit(cache=True)
def _insertion_sort(buf: np.ndarray, n: int) -> None:
    for i in range(1, n):
        v = buf[i]
        j = i - 1
        while j >= 0 and buf[j] > v:
            buf[j + 1] = buf[j]
            j -= 1
        buf[j + 1] = v


@nb.njit(cache=True)
def _reflect(i: int, n: int) -> int:
    if i < 0:
        return -i if n > 1 else 0
    if i >= n:
        return 2 * n - 2 - i if n > 1 else 0
    return i


@nb.njit(cache=True)
def _median8(a0, a1, a2, a3, a4, a5, a6, a7) -> float:  # pragma: no cover (numba)
    """Mean of the 4th and 5th smallest of 8 finite values: Batcher's odd-even merge sort
    (19 compare-exchanges, branch-free min/max), the same two values an insertion sort finds."""
    a0, a1 = min(a0, a1), max(a0, a1)
    a2, a3 = min(a2, a3), max(a2, a3)
    a4, a5 = min(a4, a5), max(a4, a5)
    a6, a7 = min(a6, a7), max(a6, a7)
    a0, a2 = min(a0, a2), max(a0, a2)
    a1, a3 = min(a1, a3), max(a1, a3)
    a4, a6 = min(a4, a6), max(a4, a6)
    a5, a7 = min(a5, a7), max(a5, a7)
    a1, a2 = min(a1, a2), max(a1, a2)
    a5, a6 = min(a5, a6), max(a5, a6)
    a0, a4 = min(a0, a4), max(a0, a4)
    a1, a5 = min(a1, a5), max(a1, a5)
    a2, a6 = min(a2, a6), max(a2, a6)
    a3, a7 = min(a3, a7), max(a3, a7)
    a2, a4 = min(a2, a4), max(a2, a4)
    a3, a5 = min(a3, a5), max(a3, a5)
    a1, a2 = min(a1, a2), max(a1, a2)
    a3, a4 = min(a3, a4), max(a3, a4)
    a5, a6 = min(a5, a6), max(a5, a6)
    return 0.5 * (a3 + a4)


@nb.njit(cache=True, nogil=True)
def _neighbour_median8(data: np.ndarray, out: np.ndarray, y0: int, y1: int) -> None:
    ny, nx = data.shape
    for y in range(y0, y1):
        buf = np.empty(8, dtype=np.float64)
        for x in range(nx):
            if 0 < y < ny - 1 and 0 < x < nx - 1:  # inside: no reflection; all finite: no sort
                a0 = np.float64(data[y - 1, x - 1])
                a1 = np.float64(data[y - 1, x])
                a2 = np.float64(data[y - 1, x + 1])
                a3 = np.float64(data[y, x - 1])
                a4 = np.float64(data[y, x + 1])
                a5 = np.float64(data[y + 1, x - 1])
                a6 = np.float64(data[y + 1, x])
                a7 = np.float64(data[y + 1, x + 1])
                if not math.isnan(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7):
                    out[y, x] = _median8(a0, a1, a2, a3, a4, a5, a6, a7)
                    continue
            n = np.int64(0)  # not a literal 0: one signature of _insertion_sort
            for dy in range(-1, 2):
                yy = _reflect(y + dy, ny)
                for dx in range(-1, 2):
                    if dy == 0 and dx == 0:
                        continue
                    v = data[yy, _reflect(x + dx, nx)]
                    if not math.isnan(v):
                        buf[n] = v
                        n += 1
            if n == 0:
                out[y, x] = np.nan
                continue
            _insertion_sort(buf, n)
            if n % 2:
                out[y, x] = buf[n // 2]
            else:
                out[y, x] = 0.5 * (buf[n // 2 - 1] + buf[n // 2])


def neighbour_median8(data: np.ndarray) -> np.ndarray:
    """Median of the 8 neighbours of every pixel (edges reflected, NaN neighbours ignored)."""
    data = np.ascontiguousarray(data, dtype=np.float32)
    out = np.empty(data.shape, dtype=np.float32)
    if data.size:
        in_threads(
            lambda y0, y1: _neighbour_median8(data, out, y0, y1),
            data.shape[0],
            min_items=_min_rows(data.shape[1]),
        )
    return out


def neighbour_median8_reference(data: np.ndarray) -> np.ndarray:
    """numpy reference of :func:`neighbour_median8`."""
    import warnings

    data = np.asarray(data, dtype=np.float32)
    padded = np.pad(data, 1, mode="reflect")
    ny, nx = data.shape
    shifted = np.stack(
        [
            padded[1 + dy : 1 + dy + ny, 1 + dx : 1 + dx + nx]
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if (dy, dx) != (0, 0)
        ]
    ).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(shifted, axis=0).astype(np.float32)


# ----------------------------------------------------------------------------- shared results
def _same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    """``a`` and ``b`` hold the same bytes (shape and dtype included; NaN equals itself)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    fa, fb = a.reshape(-1), b.reshape(-1)
    step = max(1, fa.size // 64)  # a few samples first: a different input is told in microseconds
    if fa.dtype.itemsize in (1, 2, 4, 8):
        kind = f"u{fa.dtype.itemsize}"
        fa, fb = fa.view(kind), fb.view(kind)
        return bool(np.array_equal(fa[::step], fb[::step]) and np.array_equal(fa, fb))
    return fa.tobytes() == fb.tobytes()


class ContentCache:
    """``fn(data)`` for the last ``size`` distinct inputs of each ``tag``, found by content.

    The light checks compute the same things of the dark model for every light that uses the
    same model (the neighbour medians of its dark signal, its hot pixels): equal models (the
    same masters, scales and biases) give byte-equal arrays, whose results are then computed
    once per process. An input is recognised by its bytes (compared with a kept copy, a few
    milliseconds for a 2048² frame), never by the identity of an array, so a result is reused
    only for an equal input and is the one ``fn`` computes. Results are kept read-only (a
    caller writing into one would change what the next light gets). ``size`` entries per tag at
    most, and only inputs of at most ``max_bytes`` are kept (a larger one is computed each
    time): each entry keeps its input and its result, so the cache holds at most about
    ``size * (max_bytes + its results)`` per tag, whatever the frame size.
    """

    def __init__(self, size: int = 2, max_bytes: int | None = None) -> None:
        self.size = max(1, int(size))
        self.max_bytes = None if max_bytes is None else int(max_bytes)
        self._entries: dict[str, list[tuple[np.ndarray, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, tag: str, data: np.ndarray, fn: Callable[[np.ndarray], Any]) -> Any:
        data = np.ascontiguousarray(data)
        if self.max_bytes is not None and data.nbytes > self.max_bytes:
            return fn(data)  # too large to keep a copy of: within the memory bound
        with self._lock:
            entries = self._entries.setdefault(tag, [])
            for i, (kept, result) in enumerate(entries):
                if _same_bytes(kept, data):
                    entries.insert(0, entries.pop(i))  # most recently used first
                    return result
        result = fn(data)
        _read_only(result)
        with self._lock:
            entries = self._entries.setdefault(tag, [])
            entries.insert(0, (data.copy(), result))
            del entries[self.size :]
        return result

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _read_only(result: Any) -> None:
    if isinstance(result, np.ndarray):
        result.flags.writeable = False
    elif isinstance(result, (tuple, list)):
        for item in result:
            _read_only(item)


# ----------------------------------------------------------------------------- tile levels
@nb.njit(cache=True)
def _median_sorted(v: np.ndarray, n: int) -> float:
    if n % 2:
        return v[n // 2]
    return 0.5 * (v[n // 2 - 1] + v[n // 2])


@nb.njit(cache=True)
def _deviation(v: np.ndarray, a: int, med: float, t: int, below: bool) -> float:
    """The ``t``-th smallest deviation from ``med`` on one side of the sorted ``v`` (``a``: the
    first index with ``v >= med``): ``med - v[a-1-t]`` below, ``v[a+t] - med`` above."""
    if below:
        return med - v[a - 1 - t]
    return v[a + t] - med


@nb.njit(cache=True)
def _kth_deviation(v: np.ndarray, a: int, n_below: int, n_above: int, med: float, k: int) -> float:
    """The ``k``-th smallest (0-based) of the deviations from ``med`` of both sides: the two
    sorted runs' ``k``-th merged element, found by bisection on how many come from below (the
    value a merge of the runs puts at ``k``)."""
    i_lo, i_hi = max(0, k + 1 - n_above), min(k + 1, n_below)
    while True:
        i = (i_lo + i_hi) // 2  # taken from below; k + 1 - i from above
        j = k + 1 - i
        if (
            i < n_below
            and j > 0
            and _deviation(v, a, med, i, True) < _deviation(v, a, med, j - 1, False)
        ):
            i_lo = i + 1
        elif (
            i > 0
            and j < n_above
            and _deviation(v, a, med, i - 1, True) > _deviation(v, a, med, j, False)
        ):
            i_hi = i - 1
        else:
            break
    out = -np.inf
    if i > 0:
        out = _deviation(v, a, med, i - 1, True)
    if j > 0:
        out = max(out, _deviation(v, a, med, j - 1, False))
    return out


@nb.njit(cache=True)
def _mad_sorted(v: np.ndarray, lo: int, hi: int, med: float) -> float:
    """Median of ``|v[lo:hi] - med|`` for sorted ``v``, in O(log n): the deviations below and
    above ``med`` are two sorted runs, whose middle merged element(s) are found by bisection
    (:func:`_kth_deviation`; the values a merge of the runs gives)."""
    m = hi - lo
    a, b = lo, hi  # first index with v >= med, by bisection
    while a < b:
        c = (a + b) // 2
        if v[c] < med:
            a = c + 1
        else:
            b = c
    want = m // 2  # index of the (upper) middle deviation
    cur = _kth_deviation(v, a, a - lo, hi - a, med, want)
    if m % 2:
        return cur
    return 0.5 * (_kth_deviation(v, a, a - lo, hi - a, med, want - 1) + cur)


@nb.njit(cache=True)
def _tile_level_sorted(v: np.ndarray, n: int, sigma: float, iters: int, mad_to_std: float) -> float:
    """Sigma-clipped (median/MAD) values of the sorted ``v[:n]``, then the mode estimate
    2.5 med - 1.5 mean."""
    if n == 0:
        return np.nan
    # kept values: v[lo:hi] (clipping keeps a contiguous range of sorted values); int64, not a
    # literal 0, so each helper is compiled for one signature
    lo, hi = np.int64(0), np.int64(n)
    for _ in range(iters):
        m = hi - lo
        if m < 4:
            break
        med = _median_sorted(v[lo:hi], m)
        s = mad_to_std * _mad_sorted(v, lo, hi, med)
        if s == 0.0:
            break
        new_lo, new_hi = lo, hi
        while new_lo < new_hi and abs(v[new_lo] - med) > sigma * s:
            new_lo += 1
        while new_hi > new_lo and abs(v[new_hi - 1] - med) > sigma * s:
            new_hi -= 1
        if new_lo == lo and new_hi == hi:
            break
        lo, hi = new_lo, new_hi
    m = hi - lo
    if m == 0:
        return np.nan
    med = _median_sorted(v[lo:hi], m)
    total = 0.0
    for i in range(lo, hi):
        total += v[i]
    mean = total / m
    ss = 0.0
    for i in range(lo, hi):
        ss += (v[i] - mean) ** 2
    spread = math.sqrt(ss / m)
    if spread > 0 and abs(mean - med) / spread < 0.3:
        return 2.5 * med - 1.5 * mean
    return med


@nb.njit(cache=True)
def _radix_sort_keys(keys: np.ndarray, tmp: np.ndarray, n: int, count: np.ndarray) -> None:
    """Sort ``keys[:n]`` (uint32) in place: least significant byte first, 4 counting passes
    (a pass whose byte is the same in every key is skipped). ``tmp``: scratch of ``n``;
    ``count``: scratch of ``(4, 256)`` (the 4 bytes' histograms, counted in one pass)."""
    count[:, :] = 0
    for i in range(n):
        k = keys[i]
        count[0, k & 0xFF] += 1
        count[1, (k >> 8) & 0xFF] += 1
        count[2, (k >> 16) & 0xFF] += 1
        count[3, k >> 24] += 1
    src, dst = keys, tmp
    swapped = False
    for p in range(4):
        shift = 8 * p
        if count[p, (src[0] >> shift) & 0xFF] == n:  # one byte value: the order stands
            continue
        total = 0
        for b in range(256):
            c = count[p, b]
            count[p, b] = total
            total += c
        for i in range(n):
            k = src[i]
            b = (k >> shift) & 0xFF
            dst[count[p, b]] = k
            count[p, b] += 1
        src, dst = dst, src
        swapped = not swapped
    if swapped:
        for i in range(n):
            keys[i] = src[i]


@nb.njit(cache=True, nogil=True)
def _tile_levels(
    bits: np.ndarray,
    tile: int,
    sigma: float,
    iters: int,
    grid: np.ndarray,
    mad_to_std: float,
    k0: int,
    k1: int,
) -> None:
    # ``bits``: the float32 frame's bit patterns. A float's bits, sign bit flipped (all bits
    # flipped for negatives), sort as unsigned integers in the order of the floats, so the tile
    # is sorted with a radix sort (no comparisons); the sorted values are those np.sort gives
    # (-0.0 before +0.0, numerically equal).
    ny, nx = bits.shape
    tx = grid.shape[1]
    keys = np.empty(tile * tile, dtype=np.uint32)
    tmp = np.empty(tile * tile, dtype=np.uint32)
    count = np.empty((4, 256), dtype=np.int64)
    v = np.empty(max(tile * tile, 1), dtype=np.float64)
    f = tmp.view(np.float32)
    for k in range(k0, k1):
        j, i = k // tx, k % tx
        n = np.int64(0)  # not a literal 0: one signature of the helpers it is passed to
        for y in range(j * tile, min((j + 1) * tile, ny)):
            for x in range(i * tile, min((i + 1) * tile, nx)):
                b = bits[y, x]
                if (b & np.uint32(0x7F800000)) == np.uint32(0x7F800000):  # NaN or +-inf
                    continue
                if b & np.uint32(0x80000000):
                    keys[n] = ~b
                else:
                    keys[n] = b | np.uint32(0x80000000)
                n += 1
        if n:
            _radix_sort_keys(keys, tmp, n, count)
            for m in range(n):
                kk = keys[m]
                tmp[m] = kk & np.uint32(0x7FFFFFFF) if kk & np.uint32(0x80000000) else ~kk
                v[m] = f[m]
        grid[j, i] = _tile_level_sorted(v, n, sigma, iters, mad_to_std)


def tile_levels(data: np.ndarray, tile: int, *, sigma: float = 3.0, iters: int = 5) -> np.ndarray:
    """Background level of each ``tile`` x ``tile`` block (NaN for an empty block)."""
    data = np.ascontiguousarray(data, dtype=np.float32)
    ty, tx = max(1, math.ceil(data.shape[0] / tile)), max(1, math.ceil(data.shape[1] / tile))
    grid = np.empty((ty, tx), dtype=np.float64)
    bits, tile, sigma, iters = data.view(np.uint32), int(tile), float(sigma), int(iters)
    in_threads(
        lambda k0, k1: _tile_levels(bits, tile, sigma, iters, grid, MAD_TO_STD, k0, k1),
        ty * tx,
        min_items=max(1, _min_rows(tile * tile)),
    )
    return grid


def tile_levels_reference(
    data: np.ndarray, tile: int, *, sigma: float = 3.0, iters: int = 5
) -> np.ndarray:
    """numpy reference of :func:`tile_levels` (the clipping loop written out with numpy)."""
    data = np.asarray(data, dtype=np.float32)
    ty, tx = max(1, math.ceil(data.shape[0] / tile)), max(1, math.ceil(data.shape[1] / tile))
    grid = np.empty((ty, tx))
    for j in range(ty):
        for i in range(tx):
            v = np.sort(
                data[j * tile : (j + 1) * tile, i * tile : (i + 1) * tile]
                .astype(np.float64)
                .ravel()
            )
            v = v[np.isfinite(v)]
            for _ in range(iters):
                if v.size < 4:
                    break
                med = np.median(v)
                s = mad_std(v, center=med)
                if s == 0:
                    break
                keep = np.abs(v - med) <= sigma * s
                if keep.all():
                    break
                v = v[keep]
            if not v.size:
                grid[j, i] = np.nan
                continue
            med, mean, spread = np.median(v), np.mean(v), np.std(v)
            grid[j, i] = (
                2.5 * med - 1.5 * mean if spread > 0 and abs(mean - med) / spread < 0.3 else med
            )
    return grid


# ----------------------------------------------------------------------------- grid interpolation
@nb.njit(cache=True)
def _interp_index(n: int, centres: np.ndarray, index: np.ndarray) -> None:  # pragma: no cover
    """For each position ``0 .. n-1``: the interval ``j`` of ``centres`` holding it
    (``centres[j] <= p < centres[j+1]``), -1 left of the first, -2 at or right of the last."""
    m = centres.size
    j = 0
    for p in range(n):
        if p < centres[0]:
            index[p] = -1
        elif p >= centres[m - 1]:
            index[p] = -2
        else:
            while centres[j + 1] <= p:
                j += 1
            index[p] = j


@nb.njit(cache=True)
def _interp_at(p, j, centres, a, b, first, last):  # pragma: no cover (numba)
    """``np.interp`` at position ``p`` of interval ``j`` between values ``a`` (at
    ``centres[j]``) and ``b``; ``first``/``last``: the end values (outside the centres)."""
    if j == -1:
        return first
    if j == -2:
        return last
    slope = (b - a) / (centres[j + 1] - centres[j])
    return slope * (p - centres[j]) + a


@nb.njit(cache=True, nogil=True)
def _grid_interp_rows(grid, xc, ix, rows):  # pragma: no cover (numba)
    """``np.interp`` along each row of the grid, to every column."""
    ty, tx = grid.shape
    nx = rows.shape[1]
    for j in range(ty):
        for x in range(nx):
            k = ix[x]
            b = grid[j, k + 1] if k >= 0 else 0.0
            a = grid[j, k] if k >= 0 else 0.0
            rows[j, x] = _interp_at(np.float64(x), k, xc, a, b, grid[j, 0], grid[j, tx - 1])


@nb.njit(cache=True, nogil=True)
def _grid_interp(rows, yc, iy, out, y0, y1):  # pragma: no cover (numba)
    """Then along the columns, for the image rows ``y0 .. y1``."""
    ty = rows.shape[0]
    nx = out.shape[1]
    for y in range(y0, y1):
        k = iy[y]
        for x in range(nx):
            b = rows[k + 1, x] if k >= 0 else 0.0
            a = rows[k, x] if k >= 0 else 0.0
            v = _interp_at(np.float64(y), k, yc, a, b, rows[0, x], rows[ty - 1, x])
            out[y, x] = np.float32(v)


def _centres(n: int, tile: int) -> np.ndarray:
    return (np.arange(n) + 0.5) * tile - 0.5


def grid_interp(grid: np.ndarray, tile: int, shape: tuple[int, int]) -> np.ndarray:
    """A grid of tile values (centres at ``(j + 0.5) tile - 0.5``) interpolated to every pixel
    of ``shape`` (float32): ``np.interp`` along the rows of the grid, then along the columns
    (constant beyond the outer centres). Threads over image rows."""
    grid = np.ascontiguousarray(grid, dtype=np.float64)
    ny, nx = shape
    ty, tx = grid.shape
    yc, xc = _centres(ty, tile), _centres(tx, tile)
    iy, ix = np.empty(ny, np.int64), np.empty(nx, np.int64)
    _interp_index(ny, yc, iy)
    _interp_index(nx, xc, ix)
    out = np.empty((ny, nx), dtype=np.float32)
    if out.size:
        rows = np.empty((ty, nx), dtype=np.float64)
        _grid_interp_rows(grid, xc, ix, rows)
        in_threads(
            lambda y0, y1: _grid_interp(rows, yc, iy, out, y0, y1), ny, min_items=_min_rows(nx)
        )
    return out


def grid_interp_reference(grid: np.ndarray, tile: int, shape: tuple[int, int]) -> np.ndarray:
    """numpy reference of :func:`grid_interp` (``np.interp`` per grid row, then per column)."""
    ny, nx = shape
    ty, tx = grid.shape
    yc, xc = _centres(ty, tile), _centres(tx, tile)
    rows = np.array([np.interp(np.arange(nx), xc, grid[j]) for j in range(ty)])
    out = np.empty((ny, nx))
    for i in range(nx):
        out[:, i] = np.interp(np.arange(ny), yc, rows[:, i])
    return out.astype(np.float32)


# ----------------------------------------------------------------------------- row medians
@nb.njit(cache=True)
def _select(buf: np.ndarray, n: int, k: int) -> None:  # pragma: no cover (numba)
    """Partially order ``buf[:n]`` so that ``buf[k]`` is its k-th smallest value (0-based),
    smaller or equal values before it, larger or equal after it (no NaN in ``buf[:n]``).
    Quickselect with the median of three as pivot and a branch-free partition (values below
    the pivot to the front, then those equal to it), insertion sort below 17 values."""
    lo, hi = 0, n  # the k-th value is in buf[lo:hi]
    while hi - lo > 16:
        a, b, c = buf[lo], buf[(lo + hi) >> 1], buf[hi - 1]
        if a > b:
            a, b = b, a
        if b > c:
            b = c
            if a > b:
                b = a
        pivot = b
        j = lo
        for i in range(lo, hi):
            v = buf[i]
            buf[i] = buf[j]
            buf[j] = v
            j += v < pivot
        if k < j:  # buf[lo:j] < pivot <= buf[j:hi]
            hi = j
            continue
        e = j
        for i in range(j, hi):
            v = buf[i]
            buf[i] = buf[e]
            buf[e] = v
            e += v == pivot
        if k < e:  # buf[j:e] == pivot (the pivot is one of the values: e > j)
            return
        lo = e
    for i in range(lo + 1, hi):
        v = buf[i]
        j = i - 1
        while j >= lo and buf[j] > v:
            buf[j + 1] = buf[j]
            j -= 1
        buf[j + 1] = v


@nb.njit(cache=True, nogil=True)
def _median_of(buf, n, half):  # pragma: no cover (numba)
    """The median of ``buf[:n]`` (no NaN; reordered): ``(lo + hi) * half`` in its dtype,
    ``lo`` and ``hi`` the middle order statistics as a sort gives them; NaN for ``n = 0``."""
    if n == 0:
        return np.nan
    k = (n - 1) // 2
    _select(buf, n, k)
    lo = buf[k]
    hi = lo
    if n % 2 == 0:
        hi = buf[k + 1]
        for i in range(k + 2, n):
            if buf[i] < hi:
                hi = buf[i]
    return (lo + hi) * half


@nb.njit(cache=True, nogil=True)
def _row_medians(a, half, med, y0, y1):  # pragma: no cover (numba)
    """Rows ``y0 .. y1``: the median of each row's values that are not NaN (NaN for none),
    :func:`_median_of` them."""
    nx = a.shape[1]
    buf = np.empty(nx, dtype=a.dtype)
    for y in range(y0, y1):
        n = 0
        for x in range(nx):
            v = a[y, x]
            if not math.isnan(v):
                buf[n] = v
                n += 1
        med[y] = _median_of(buf, n, half)


@nb.njit(cache=True, nogil=True)
def _centre_rows_where(values, like, out, y0, y1):  # pragma: no cover (numba)
    """Rows ``y0 .. y1`` of ``values`` as float64 where ``like`` is finite (NaN elsewhere),
    minus the median of the row's values that are not NaN (:func:`_median_of`; 0 when not
    finite)."""
    nx = values.shape[1]
    buf = np.empty(nx, dtype=np.float64)
    half = np.float64(0.5)
    for y in range(y0, y1):
        n = 0
        for x in range(nx):
            v = np.float64(values[y, x]) if np.isfinite(like[y, x]) else np.nan
            out[y, x] = v
            if not math.isnan(v):
                buf[n] = v
                n += 1
        med = _median_of(buf, n, half)
        if not np.isfinite(med):
            med = 0.0
        for x in range(nx):
            out[y, x] = out[y, x] - med


def row_medians(a: np.ndarray) -> np.ndarray:
    """The median of each row of the 2-D float array ``a`` ignoring NaN (NaN for a row without
    values), in ``a``'s dtype: the values of a sort of every row
    (:func:`darkflow.stats._robust.nanmedian_along` ``(a, 1)``), by a selection per row."""
    a = np.asarray(a)
    if a.ndim != 2 or a.dtype not in (np.float32, np.float64) or a.size == 0:
        return row_medians_reference(a)
    a = np.ascontiguousarray(a)
    med = np.empty(a.shape[0], dtype=a.dtype)
    half = a.dtype.type(0.5)
    in_threads(
        lambda y0, y1: _row_medians(a, half, med, y0, y1),
        a.shape[0],
        min_items=_min_rows(a.shape[1]),
    )
    return med


def centre_rows(a: np.ndarray) -> np.ndarray:
    """Each row of the 2-D float array ``a`` (NaN = masked) minus the median of its values
    (rows without a finite median unchanged), the difference taken as numpy takes it (the
    result's memory layout follows ``a``'s): equal to :func:`centre_rows_reference`, the
    medians by selection (:func:`row_medians`) instead of a sort of every row."""
    med = row_medians(a)
    return a - np.where(np.isfinite(med), med, 0.0)[:, None]


def centre_rows_where(values: np.ndarray, like: np.ndarray) -> np.ndarray:
    """:func:`centre_rows` of ``np.where(np.isfinite(like), values.astype(np.float64),
    np.nan)`` (C order), without the float64 copies: one pass per row (numba). Equal to
    :func:`centre_rows_where_reference`."""
    values, like = np.asarray(values), np.asarray(like)
    if not (
        values.ndim == 2
        and values.shape == like.shape
        and values.dtype in (np.float32, np.float64)
        and like.dtype.kind == "f"
        and values.size
    ):
        return centre_rows_where_reference(values, like)
    out = np.empty(values.shape, dtype=np.float64)
    in_threads(
        lambda y0, y1: _centre_rows_where(values, like, out, y0, y1),
        values.shape[0],
        min_items=_min_rows(values.shape[1]),
    )
    return out


def centre_rows_where_reference(
    values: np.ndarray, like: np.ndarray, centre: Callable[[np.ndarray], np.ndarray] | None = None
) -> np.ndarray:
    """Twin of :func:`centre_rows_where`: the banding gate's former code, ``centre`` (by
    default :func:`centre_rows`, whose selection puts the same one of equal values, such as
    -0.0 and 0.0, in the middle; :func:`centre_rows_reference` sorts) of the float64 copy."""
    masked = np.where(np.isfinite(like), np.asarray(values).astype(np.float64), np.nan)
    return (centre or centre_rows)(masked)


def row_medians_reference(a: np.ndarray) -> np.ndarray:
    """numpy reference of :func:`row_medians`: a sort of every row (NaN sorted last)."""
    return nanmedian_along(np.asarray(a), 1)


def centre_rows_reference(a: np.ndarray) -> np.ndarray:
    """numpy reference of :func:`centre_rows` (the banding gate's former code)."""
    med = row_medians_reference(a)
    return a - np.where(np.isfinite(med), med, 0.0)[:, None]


# ----------------------------------------------------------------------------- residual summary
@nb.njit(cache=True, nogil=True)
def _residual_summary(z, valid, edges, tail, values, counts):  # pragma: no cover (numba)
    """``z[valid]`` in raster order into ``values``; the histogram of those values clipped to
    the outer edges (bins ``[e_i, e_i+1)``, the last one closed, compared in float64 as
    numpy's histogram does); returns ``(n, below)``, ``below`` the count under ``tail``."""
    ny, nx = z.shape
    m = edges.shape[0]
    first, last = edges[0], edges[m - 1]
    scale = (m - 1) / (last - first)
    n = 0
    below = 0
    for y in range(ny):
        for x in range(nx):
            if not valid[y, x]:
                continue
            v = z[y, x]
            values[n] = v
            n += 1
            f = np.float64(v)
            if f < tail:
                below += 1
            if f < first:
                f = first
            elif f > last:
                f = last
            if f == last:
                counts[m - 2] += 1
                continue
            # the bin of f: a guess from the mean bin width, then moved to where
            # edges[i] <= f < edges[i + 1] (the edges decide, as in numpy)
            i = min(max(int((f - first) * scale), 0), m - 2)
            while i > 0 and f < edges[i]:
                i -= 1
            while i < m - 2 and f >= edges[i + 1]:
                i += 1
            counts[i] += 1
    return n, below


def residual_summary(
    z: np.ndarray, valid: np.ndarray, edges: np.ndarray, tail: float
) -> tuple[np.ndarray, int, np.ndarray]:
    """``(z[valid], count of z[valid] < tail, histogram of z[valid] clipped to the outer
    edges over edges)`` in one pass; equal to :func:`residual_summary_reference` (for finite
    ``z[valid]``; NaN goes to the reference)."""
    edges = np.asarray(edges, dtype=np.float64)
    if not (
        isinstance(z, np.ndarray)
        and z.ndim == 2
        and z.dtype in (np.float32, np.float64)
        and valid.shape == z.shape
        and edges.ndim == 1
        and edges.size >= 2
        and bool(np.all(np.diff(edges) > 0))
    ):
        return residual_summary_reference(z, valid, edges, tail)
    values = np.empty(int(np.count_nonzero(valid)), z.dtype)
    counts = np.zeros(edges.size - 1, np.int64)
    n, below = _residual_summary(z, np.asarray(valid, np.bool_), edges, float(tail), values, counts)
    if not np.isfinite(values).all():
        return residual_summary_reference(z, valid, edges, tail)
    return values[:n], int(below), counts


def residual_summary_reference(
    z: np.ndarray, valid: np.ndarray, edges: np.ndarray, tail: float
) -> tuple[np.ndarray, int, np.ndarray]:
    """numpy twin of :func:`residual_summary` (the former code of the residual statistics)."""
    zb = z[valid]
    counts, _ = np.histogram(np.clip(zb, edges[0], edges[-1]), bins=edges)
    return zb, int(np.count_nonzero(zb < tail)), counts.astype(np.int64)
