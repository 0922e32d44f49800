"""The median of a large float array by a bracketed selection (numba), numpy's partition its twin.

``np.partition`` of a 2048x2048 frame costs about 40 ms (a copy and an introselect that slows
down five- to tenfold on many equal values). Here, for float32/float64 arrays of at least
:data:`MIN_SIZE` values:

1. a fixed, deterministic sample of :data:`SAMPLE` values (one per stride, at a position inside
   the stride that varies from stride to stride, so image columns do not alias; an array of
   fewer than ``SAMPLE x SAMPLE_STRIDE`` values gives one value in :data:`SAMPLE_STRIDE`, at
   least :data:`MIN_SAMPLE`: the sample's sort would cost more than the passes) is sorted, and
   two of its values, ``lo`` and ``hi``, are taken :data:`SPREAD` standard deviations of the
   sample's rank on either side of the wanted rank;
2. one vectorised pass counts the values below ``lo``, equal to ``lo``, strictly between,
   equal to ``hi`` (and the NaNs, or the values left out);
3. a second pass copies the values strictly between (a few per cent) into a buffer, and the
   wanted ranks are ``lo``, ``hi`` or a selection (``np.partition``) in that buffer.

A rank's value does not depend on how it was found, so the result is the partition's, bit for
bit (tests/test_select_kernel.py). The function returns ``None`` (the caller then takes numpy's
path) when the bracket misses the rank (a misleading sample: very rare), when NaN are present
and not skipped (numpy's median returns NaN), and when the middle value is a zero and the array
holds zeros of both signs (numpy treats -0.0 and 0.0 as equal and returns one of them by its
own selection order).

The same passes give the median of ``|x - centre|`` (the MAD of :func:`~darkflow.stats.mad_std`)
without the intermediate array: ``x - centre`` and its absolute value are computed in the
array's dtype, as numpy computes them when ``centre`` has that dtype. ``skip`` leaves out the
NaN (``nanmedian``) or every non-finite value (``robust_std``), judged on ``x``.

The median is taken as :func:`darkflow.stats._robust.median` takes it: the middle value, or
``np.mean`` of the two middle values, in the array's dtype.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

__all__ = ["MIN_SIZE", "SKIP_NAN", "SKIP_NONE", "SKIP_NONFINITE", "select_middle"]

MIN_SIZE = 1 << 14  # smaller arrays: numpy's partition is as fast
SAMPLE = 4096
MIN_SAMPLE, SAMPLE_STRIDE = 1024, 32  # arrays below SAMPLE * SAMPLE_STRIDE: a smaller sample
SPREAD = 5.0  # the bracket: this many standard deviations of the sample rank of the median
SKIP_NONE, SKIP_NAN, SKIP_NONFINITE = 0, 1, 2

_JIT = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}


@nb.njit(inline="always")
def _value(x, centre, absdev):  # pragma: no cover (numba)
    return abs(x - centre) if absdev else x


@nb.njit(inline="always")
def _kept(x, skip):  # pragma: no cover (numba)
    """Whether ``x`` takes part: always, not NaN, or finite (NaN compare false)."""
    if skip == 0:
        return True
    if skip == 1:
        return x == x
    return abs(x) < np.inf


@nb.njit(**_JIT)
def _sample(v, m, centre, absdev, skip):  # pragma: no cover (numba)
    """``m`` values of ``v`` (one per stride, jittered inside it), transformed; the ones left
    out by ``skip`` dropped."""
    n = v.size
    step = n // m
    out = np.empty(m, v.dtype)
    j = 0
    for i in range(m):
        x = v[i * step + (i * 2654435761) % step]
        if _kept(x, skip):
            out[j] = _value(x, centre, absdev)
            j += 1
    return out[:j]


@nb.njit(**_JIT)
def _count(v, lo, hi, centre, absdev, skip):  # pragma: no cover (numba)
    """Values below ``lo``, equal to ``lo``, strictly between, equal to ``hi`` (when
    ``hi != lo``), and the NaN (``skip`` 0) or the values left out (``skip`` 1, 2)."""
    below = 0
    eq_lo = 0
    mid = 0
    eq_hi = 0
    other = 0
    distinct = hi != lo
    for i in range(v.size):
        x = v[i]
        y = _value(x, centre, absdev)
        ok = _kept(x, skip)
        below += (y < lo) & ok
        eq_lo += (y == lo) & ok
        eq_hi += (y == hi) & distinct & ok
        mid += (y > lo) & (y < hi) & ok
        other += (y != y) if skip == 0 else not ok
    return below, eq_lo, mid, eq_hi, other


@nb.njit(**_JIT)
def _gather(v, lo, hi, centre, absdev, skip, buf):  # pragma: no cover (numba)
    """Copy the values strictly between ``lo`` and ``hi`` into ``buf`` (one slot more than
    there are such values: the store has no branch, the last slot takes the rest)."""
    j = 0
    for i in range(v.size):
        x = v[i]
        y = _value(x, centre, absdev)
        buf[j] = y
        j += (y > lo) & (y < hi) & _kept(x, skip)
    return j


def _ranks(n: int) -> list[int]:
    k = n // 2
    return [k] if n % 2 else [k - 1, k]


def select_middle(values: np.ndarray, *, centre=None, skip: int = SKIP_NONE):
    """The middle value(s) of the 1-D float32/float64 array ``values`` (of ``|values - centre|``
    when ``centre`` is given, a scalar of the array's dtype), leaving out what ``skip`` says:
    ``(middle, n)``, ``middle`` an array of the array's dtype holding the value of rank
    ``n // 2`` (``n`` odd) or of ranks ``n // 2 - 1`` and ``n // 2`` (``n`` even) among the
    ``n`` values taken. The median is ``np.mean(middle)``, as
    :func:`darkflow.stats._robust.median` of those values gives it (value and type).

    ``None`` when numpy's path must be taken: fewer than :data:`MIN_SIZE` values, NaN with
    ``skip = SKIP_NONE``, no value left, a bracket that misses, a zero median among zeros of
    both signs (see the module docstring).
    """
    v = values
    if v.dtype not in (np.float32, np.float64) or v.ndim != 1 or v.size < MIN_SIZE:
        return None
    absdev = centre is not None
    c = v.dtype.type(centre if absdev else 0)
    taken = min(SAMPLE, max(MIN_SAMPLE, v.size // SAMPLE_STRIDE), v.size)
    sample = np.sort(_sample(v, taken, c, absdev, skip))  # numpy's sort: NaN last
    m = sample.size
    if m == 0 or (skip == SKIP_NONE and np.isnan(sample[-1])):
        return None
    # the wanted ranks among the kept values are not known before the pass: the sample's share
    # of kept values estimates their number
    n_est = max(v.size * m // taken, 1)
    ks = _ranks(n_est)
    reach = SPREAD * 0.5 * math.sqrt(m) + 1.0
    lo = sample[max(int(ks[0] * m / n_est - reach), 0)]
    hi = sample[min(int(ks[-1] * m / n_est + reach) + 1, m - 1)]
    below, eq_lo, mid, eq_hi, other = _count(v, lo, hi, c, absdev, skip)
    if skip == SKIP_NONE and other:
        return None
    n = v.size - (other if skip != SKIP_NONE else 0)
    if n == 0:
        return None
    ranks = _ranks(n)
    middle = np.empty(len(ranks), v.dtype)
    inside = {}  # slot of ``middle`` -> rank among the values strictly between
    for s, r in enumerate(ranks):
        r -= below
        if 0 <= r < eq_lo:
            middle[s] = lo
        elif 0 <= r - eq_lo < mid:
            inside[s] = r - eq_lo
        elif 0 <= r - eq_lo - mid < eq_hi:
            middle[s] = hi
        else:  # the bracket missed the rank
            return None
    if inside:
        buf = np.empty(mid + 1, v.dtype)
        _gather(v, lo, hi, c, absdev, skip, buf)
        part = np.partition(buf[:mid], sorted(set(inside.values())))
        for s, r in inside.items():
            middle[s] = part[r]
    if not absdev and not middle.all() and _both_zeros(v):
        return None
    return middle, n


@nb.njit(**_JIT)
def _both_zeros(v):  # pragma: no cover (numba)
    """Whether ``v`` holds both a -0.0 and a 0.0 (numpy's selection picks one of them)."""
    neg = False
    pos = False
    for i in range(v.size):
        x = v[i]
        if x == 0:
            if np.signbit(x):
                neg = True
            else:
                pos = True
            if neg and pos:
                return True
    return False
