"""Column sums of a masked image (the banding gate's column profiles): a numba kernel and its
numpy twin.

:func:`column_sums` gives, per column of a 2-D array ``a`` (NaN = masked), the number of
finite values, their sum and the sum of a weight ``w`` over the same pixels (a column mean's
noise variance), in one pass without temporaries. The numpy twin
:func:`column_sums_reference` is the former implementation of the banding gate (finite masks,
``nan_to_num``, ``nansum``: five full-frame temporaries per sum).

Same values, not just close ones: numpy sums a C-contiguous array along axis 0 one row after
the other (an element-wise add into the output row), so the kernel adds the rows in the same
order, in the array's own dtype (float32 sums of float32 values as numpy does). Other layouts
(numpy sums a contiguous column pairwise, in blocks of eight) go to the numpy twin, so the
result never depends on the path taken (tests/test_column_kernels.py).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from darkflow.stats._common import in_threads

__all__ = ["column_sums", "column_sums_reference"]


@nb.njit(cache=True, nogil=True)
def _column_sums(a, mask, w, n, s, v, x0, x1):  # pragma: no cover (numba)
    """Columns ``x0 .. x1``: ``n`` finite ``a`` (and finite ``mask``), ``s`` their sum, ``v``
    the sum of ``w`` over them; rows added in order (numpy's axis-0 reduction)."""
    ny = a.shape[0]
    for y in range(ny):
        for x in range(x0, x1):
            value = a[y, x]
            if np.isfinite(value) and np.isfinite(mask[y, x]):
                n[x] += 1
                s[x] += value
                v[x] += w[y, x]


def _c_order(*arrays: np.ndarray) -> bool:
    return all(x.ndim == 2 and x.flags.c_contiguous for x in arrays)


def column_sums(
    a: np.ndarray, w: np.ndarray, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column of ``a``: the count of its finite values (where ``mask``, when given, is
    finite too), their sum (``a``'s dtype, float32 or float64) and the float64 sum of ``w``
    over the same pixels. Returns ``(n int64, sum, w_sum float64)``, equal to
    :func:`column_sums_reference`."""
    a = np.asarray(a)
    w = np.asarray(w)
    m = a if mask is None else np.asarray(mask)
    fast = (
        a.dtype in (np.float32, np.float64)
        and w.dtype == np.float64
        and m.dtype.kind == "f"
        and a.shape == w.shape == m.shape
        and _c_order(a, w, m)
    )
    if not fast:
        return column_sums_reference(a, w, mask)
    nx = a.shape[1]
    n = np.zeros(nx, np.int64)
    s = np.zeros(nx, a.dtype)
    v = np.zeros(nx, np.float64)
    # columns are independent: any split gives the same sums
    in_threads(lambda lo, hi: _column_sums(a, m, w, n, s, v, lo, hi), nx, min_items=256)
    return n, s, v


def column_sums_reference(
    a: np.ndarray, w: np.ndarray, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """numpy twin of :func:`column_sums` (the banding gate's former code; infinite values
    masked like NaN)."""
    a = np.asarray(a)
    finite = np.isfinite(a) if mask is None else np.isfinite(a) & np.isfinite(mask)
    # infinities count as masked (the gate's values are finite or NaN: there, this is the
    # former code exactly)
    masked = np.where(finite, a, np.nan) if mask is not None or np.isinf(a).any() else a
    n = np.count_nonzero(finite, axis=0).astype(np.int64)
    s = np.nansum(np.nan_to_num(masked), axis=0)
    v = np.sum(np.where(finite, w, 0.0), axis=0)
    return n, s, v
