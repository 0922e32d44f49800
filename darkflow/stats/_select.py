"""The median of a large float array by a sampled window (numba), numpy's partition its twin.

numpy's selection (``np.partition``, introselect) slows down five- to tenfold on arrays with
many equal values: the light checks' noise shares clipped at 0 or 1, the excess scatter of
pixels that scatter no more than the typical one (mostly exact zeros). Here the wanted rank is
bracketed first (only when a strided sample shows many ties at the median): two values of a strided sample of 4096 (a fixed, deterministic sample),
chosen some standard deviations of the sample's rank on either side of the median, then one
pass counts the values below the lower one and equal to either, and keeps the values strictly
between (a few per cent of them). The middle ranks then are one of the two bracket values
(ties: no selection at all) or a selection among the kept values. When the bracket misses the
rank (a sample that misleads, very rare), numpy's partition of everything is taken instead.

The median is taken as :func:`darkflow.stats._robust.median` takes it: the middle value, or
``np.mean`` of the two middle values, in the array's dtype. A rank's value does not depend on
how it was found, so the result equals the partition's (tests/test_select_kernel.py), a zero's
sign aside (numpy treats -0.0 and 0.0 as equal and may return either).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

__all__ = ["window_median"]

MIN_SIZE = 1 << 16  # smaller arrays: numpy's partition is as fast
SAMPLE = 4096
TIES = 20  # the middle value held by 1/TIES of the sample or more: many ties
SPREAD = 5.0  # the bracket: this many standard deviations of the sample rank of the median


@nb.njit(cache=True, nogil=True)
def _bracket(v, lo, hi, buf):  # pragma: no cover (numba)
    """Values below ``lo``, equal to ``lo``, strictly between (kept in ``buf`` while it has
    room: its last slot takes the overflow) and equal to ``hi`` (when ``hi != lo``). Without
    branches: on random data a mispredicted comparison per value cost more than the pass."""
    below = 0
    eq_lo = 0
    mid = 0
    eq_hi = 0
    last = buf.size - 1
    distinct = hi != lo
    for i in range(v.size):
        x = v[i]
        below += x < lo
        eq_lo += x == lo
        eq_hi += (x == hi) & distinct
        buf[min(mid, last)] = x
        mid += (x > lo) & (x < hi)
    return below, eq_lo, mid, eq_hi


def window_median(values: np.ndarray):
    """The median of ``values`` (float32 or float64 without NaN, at least 2**16 of them) as
    :func:`darkflow.stats._robust.median` gives it (value and type); ``None`` for other
    arrays, for arrays without many ties at the median (numpy's selection is as fast there)
    and when the bracket misses: the caller takes numpy's path then."""
    v = np.asarray(values)
    if v.dtype not in (np.float32, np.float64) or v.size < MIN_SIZE:
        return None
    v = v.ravel()
    n = v.size
    k = n // 2
    ranks = [k] if n % 2 else [k - 1, k]
    step = n // SAMPLE
    sample = np.sort(v[::step])
    m = sample.size
    centre = k * m / n
    reach = SPREAD * 0.5 * math.sqrt(m)
    lo = sample[max(int(centre - reach), 0)]
    hi = sample[min(int(centre + reach) + 1, m - 1)]
    # numpy's selection is as fast on arrays without a value repeated many times near the
    # median: only those (a twentieth of the sample or more on the bracket's ends or middle)
    # come here
    middle = sample[min(int(centre), m - 1)]
    if max(np.count_nonzero(sample == x) for x in (lo, middle, hi)) * TIES < m:
        return None
    buf = np.empty(max(n // 8, 1024) + 1, v.dtype)
    below, eq_lo, mid, eq_hi = _bracket(v, lo, hi, buf)
    if mid >= buf.size:
        return None
    found = []
    for r in ranks:
        r -= below
        if r < 0:
            return None
        if r < eq_lo:
            found.append(lo)
            continue
        r -= eq_lo
        if r < mid:
            found.append(np.partition(buf[:mid], r)[r])
            continue
        r -= mid
        if r < eq_hi:
            found.append(hi)
            continue
        return None
    return np.mean(np.array(found, dtype=v.dtype))
