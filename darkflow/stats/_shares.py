"""The variance gate's noise shares (what the predicted variance of each background pixel is
made of) as one numba pass, with its numpy twin.

Per background pixel with a positive predicted variance ``u²``: the shares of the shot noise
``max(u² - read - m, 0) / u²``, of the read noise ``min(read / u², 1)``, of the master's
variance ``m / u²``, of the common (frame-level and scale) part ``min(sys / u², 0.9)`` and,
with a gain, of the sky's response non-uniformity ``(prnu shot gain)² / u²``. The gate takes
the median of each. numpy computed them with boolean gathers and some fifteen temporaries of
the background's size; the kernel gathers the pixels in raster order and makes the same
float64 operations in the same order, so every share is bit-identical and so are the medians
(tests/test_share_kernel.py).
"""

from __future__ import annotations

import math
from typing import Any

import numba as nb
import numpy as np

from darkflow.stats._tails import nan_to_num64

__all__ = ["noise_share_medians", "noise_shares", "noise_shares_reference"]

SAMPLE_PIXELS = 1 << 14  # pixels looked at for the brackets (those with shares are kept)
SPREAD = 5.0  # the bracket: this many standard deviations of the sample rank of the median


_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}  # x / 0 gives inf, as numpy


@nb.njit(**_JIT)
def _row_shares(u, valid, model_var, params, y, rb, ok):  # pragma: no cover
    """Row ``y``: ``ok`` = background pixel with ``u² > 0``, ``rb[0..4]`` its shares (shot,
    read, master, common, non-uniformity), garbage where not ``ok``. No branch on the values:
    the loop is vectorised. ``params``: :func:`_kernel_args`' tuple."""
    signal, use_signal, read, common_var, scale_rel, prnu, gain, systematic, use_sys = params
    nx = u.shape[1]
    for x in range(nx):
        uu = np.float64(u[y, x])
        u2 = uu * uu
        ok[x] = valid[y, x] & (u2 > 0)
        mv = np.float64(model_var[y, x])
        shot = (u2 - read) - mv
        shot = shot if (shot >= 0.0 or shot != shot) else 0.0
        rb[0, x] = shot / u2
        r = read / u2
        rb[1, x] = r if (r <= 1.0 or r != r) else 1.0
        sys = common_var
        if use_sys:
            sv = np.float64(systematic[y, x])
            sys = sys + sv
            mv = mv - sv
            mv = mv if (mv >= 0.0 or mv != mv) else 0.0
        elif use_signal:
            t = scale_rel * nan_to_num64(np.float64(signal[y, x]))
            sys = sys + t * t
        rb[2, x] = mv / u2
        q = sys / u2
        rb[3, x] = q if (q <= 0.9 or q != q) else 0.9
        p = prnu * (shot * gain)
        rb[4, x] = (p * p) / u2


@nb.njit(**_JIT)
def _noise_shares(u, valid, model_var, params, rows, out):  # pragma: no cover
    """The first ``rows`` shares of every pixel that has shares, raster order, into ``out``;
    returns their number."""
    nx = u.shape[1]
    rb = np.empty((5, nx), np.float64)
    ok = np.empty(nx, np.bool_)
    n = 0
    for y in range(u.shape[0]):
        _row_shares(u, valid, model_var, params, y, rb, ok)
        for x in range(nx):
            if ok[x]:
                for k in range(rows):
                    out[k, n] = rb[k, x]
                n += 1
    return n


@nb.njit(**_JIT)
def _share_sample(u, valid, model_var, params, row_step, col_step, out):  # pragma: no cover
    """The shares of the pixels of every ``row_step``-th row, every ``col_step``-th column
    (from an offset that moves from row to row), that have shares; returns their number."""
    nx = u.shape[1]
    rb = np.empty((5, nx), np.float64)
    ok = np.empty(nx, np.bool_)
    j = 0
    for i, y in enumerate(range(row_step // 2, u.shape[0], row_step)):
        _row_shares(u, valid, model_var, params, y, rb, ok)
        for x in range(i % col_step, nx, col_step):
            if ok[x] and j < out.shape[1]:
                for k in range(5):
                    out[k, j] = rb[k, x]
                j += 1
    return j


@nb.njit(**_JIT)
def _share_brackets(u, valid, model_var, params, rows, lo, hi, counts, buf):  # pragma: no cover
    """One pass: per share ``k < rows``, ``counts[k]`` = (values below ``lo[k]``, equal to
    it, strictly between, equal to ``hi[k]`` (when above ``lo[k]``), NaN), the values strictly
    between copied into ``buf[k]`` (as many as fit; the last slot takes the rest); returns the
    number of pixels with shares. Branch-free: the values fall either side at random."""
    nx = u.shape[1]
    cap = buf.shape[1] - 1
    rb = np.empty((5, nx), np.float64)
    ok = np.empty(nx, np.bool_)
    n = 0
    for y in range(u.shape[0]):
        _row_shares(u, valid, model_var, params, y, rb, ok)
        for x in range(nx):
            n += ok[x]
        for k in range(rows):
            a = lo[k]
            b = hi[k]
            c0 = 0
            c1 = 0
            c3 = 0
            c4 = 0
            for x in range(nx):
                z = rb[k, x]
                o = ok[x]
                c0 += (z < a) & o
                c1 += (z == a) & o
                c3 += (z == b) & o
                c4 += (z != z) & o
            counts[k, 0] += c0
            counts[k, 1] += c1
            counts[k, 4] += c4
            if b != a:
                counts[k, 3] += c3
            j = counts[k, 2]
            for x in range(nx):
                z = rb[k, x]
                buf[k, min(j, cap)] = z
                j += (z > a) & (z < b) & ok[x]
            counts[k, 2] = j
    return n


def noise_shares(
    u: np.ndarray,
    valid: np.ndarray,
    model_var: np.ndarray,
    *,
    read_var: float,
    common_var: float,
    dark_signal: np.ndarray | None = None,
    scale_rel_sigma: float = 0.0,
    prnu: float = 0.0,
    gain: float | None = None,
    systematic_var: np.ndarray | None = None,
) -> np.ndarray:
    """The shares of every background pixel with ``u² > 0``, raster order: rows shot, read,
    master, common and (with a ``gain``) response non-uniformity; float64 of shape ``(4 or 5,
    n)``. The scale part of the common share: the model's ``systematic_var`` when given (then
    taken out of the master's share, not of the shot noise's), else ``(scale_rel_sigma x
    dark_signal)²`` when ``dark_signal`` is given and ``scale_rel_sigma > 0``. Equal to
    :func:`noise_shares_reference`."""
    args = _kernel_args(
        u,
        valid,
        model_var,
        read_var,
        common_var,
        dark_signal,
        scale_rel_sigma,
        prnu,
        gain,
        systematic_var,
    )
    if args is None:
        return noise_shares_reference(
            u,
            valid,
            model_var,
            read_var=read_var,
            common_var=common_var,
            dark_signal=dark_signal,
            scale_rel_sigma=scale_rel_sigma,
            prnu=prnu,
            gain=gain,
            systematic_var=systematic_var,
        )
    rows = 5 if gain is not None else 4
    out = np.empty((rows, int(np.count_nonzero(valid))), np.float64)
    n = _noise_shares(u, np.asarray(valid, np.bool_), model_var, args, rows, out)
    return out[:, :n]


def _kernel_args(
    u,
    valid,
    model_var,
    read_var,
    common_var,
    dark_signal=None,
    scale_rel_sigma=0.0,
    prnu=0.0,
    gain=None,
    systematic_var=None,
):
    """The shares kernels' arguments after ``(u, valid, model_var)``, or None when the arrays
    are not all 2-D numpy arrays of one shape (numpy's path then)."""
    arrays = [u, valid, model_var] + ([dark_signal] if dark_signal is not None else [])
    arrays += [systematic_var] if systematic_var is not None else []
    if not (u.ndim == 2 and all(isinstance(a, np.ndarray) and a.shape == u.shape for a in arrays)):
        return None
    use_signal = dark_signal is not None and scale_rel_sigma > 0
    return (
        dark_signal if use_signal else np.zeros((0, 0), np.float32),
        use_signal,
        float(read_var),
        float(common_var),
        float(scale_rel_sigma),
        float(prnu),
        float(gain) if gain is not None else 0.0,
        systematic_var if systematic_var is not None else np.zeros((0, 0), np.float32),
        systematic_var is not None,
    )


def noise_share_medians(
    u: np.ndarray, valid: np.ndarray, model_var: np.ndarray, **kw: Any
) -> list[float]:
    """The median of each share of :func:`noise_shares` (4, or 5 with a ``gain``), each equal
    to :func:`darkflow.stats._robust.median` of that row of shares, without the rows: a fixed
    sample of the pixels brackets each median, one pass counts each share's values below,
    at and between its bracket and copies those between, a selection among them gives the
    middle ranks (:func:`darkflow.stats._select.select_middle`'s method, the ranks' values do
    not depend on how they were found). ``kw``: :func:`noise_shares`' keywords. Whatever
    the bracket cannot settle (a missed rank, a NaN share, a zero median, fewer than 16384
    pixels) takes the former path: the rows and their medians."""
    from darkflow.stats._robust import median

    rows = 5 if kw.get("gain") is not None else 4
    found = _bracketed_medians(u, valid, model_var, rows, kw)
    if found is not None:
        return found
    shares = noise_shares(u, valid, model_var, **kw)
    return [float(median(shares[k])) for k in range(rows)]


def _bracketed_medians(u, valid, model_var, rows: int, kw: dict) -> list[float] | None:
    args = _kernel_args(u, valid, model_var, **kw)
    if args is None or u.size < 4 * SAMPLE_PIXELS:
        return None
    valid = np.asarray(valid, np.bool_)
    ny, nx = u.shape
    row_step = max(ny // 64, 1)
    col_step = max(nx * len(range(row_step // 2, ny, row_step)) // SAMPLE_PIXELS, 1)
    sample = np.empty((5, SAMPLE_PIXELS), np.float64)
    m = _share_sample(u, valid, model_var, args, row_step, col_step, sample)
    if m < 1024:
        return None
    sample = np.sort(sample[:rows, :m], axis=1)  # NaN last
    if np.isnan(sample[:, -1]).any():
        return None
    reach = SPREAD * 0.5 * math.sqrt(m) + 1.0
    lo = sample[:, max(int(m / 2 - reach) - 1, 0)].copy()
    hi = sample[:, min(int(m / 2 + reach) + 1, m - 1)].copy()
    lo = np.append(lo, np.zeros(5 - rows))
    hi = np.append(hi, np.zeros(5 - rows))
    # a share's values between its bracket: about 2 x reach / m of them; room for twice that
    cap = int(u.size * 4.0 * reach / m) + 1024
    counts = np.zeros((5, 5), np.int64)
    buf = np.empty((rows, cap + 1), np.float64)
    n = _share_brackets(u, valid, model_var, args, rows, lo, hi, counts, buf)
    if n < 1 << 14 or counts[:rows, 4].any() or (counts[:rows, 2] > cap).any():
        return None
    ranks = [n // 2] if n % 2 else [n // 2 - 1, n // 2]
    out = []
    for k in range(rows):
        below, eq_lo, mid, eq_hi, _ = (int(c) for c in counts[k])
        middle = np.empty(len(ranks), np.float64)
        inside = {}
        for s, r in enumerate(ranks):
            r -= below
            if 0 <= r < eq_lo:
                middle[s] = lo[k]
            elif 0 <= r - eq_lo < mid:
                inside[s] = r - eq_lo
            elif 0 <= r - eq_lo - mid < eq_hi:
                middle[s] = hi[k]
            else:  # the bracket missed the rank
                return None
        if inside:
            part = np.partition(buf[k, :mid], sorted(set(inside.values())))
            for s, r in inside.items():
                middle[s] = part[r]
        if not middle.all():  # a zero in the middle: numpy's own choice among signed zeros
            return None
        out.append(float(np.mean(middle)))
    return out


def noise_shares_reference(
    u: np.ndarray,
    valid: np.ndarray,
    model_var: np.ndarray,
    *,
    read_var: float,
    common_var: float,
    dark_signal: np.ndarray | None = None,
    scale_rel_sigma: float = 0.0,
    prnu: float = 0.0,
    gain: float | None = None,
    systematic_var: np.ndarray | None = None,
) -> np.ndarray:
    """numpy twin of :func:`noise_shares` (the variance gate's former code)."""
    u2 = np.square(u[valid], dtype=np.float64)
    ok = u2 > 0
    u2 = u2[ok]
    mvar = np.asarray(model_var[valid], dtype=np.float64)[ok]
    read = read_var
    shot = np.maximum(u2 - read - mvar, 0.0)
    systematic = np.full(u2.shape, common_var, dtype=np.float64)
    if systematic_var is not None:
        sys_var = np.asarray(systematic_var[valid], dtype=np.float64)[ok]
        systematic += sys_var
        mvar = np.maximum(mvar - sys_var, 0.0)
    rows = [shot / u2, np.minimum(read / u2, 1.0), mvar / u2]
    if systematic_var is None and dark_signal is not None and scale_rel_sigma > 0:
        sv = np.asarray(dark_signal[valid], dtype=np.float64)[ok]
        systematic += np.square(scale_rel_sigma * np.nan_to_num(sv))
    rows.append(np.minimum(systematic / u2, 0.9))
    if gain is not None:
        signal = shot * gain  # ADU of signal behind the shot noise
        rows.append(np.square(prnu * signal) / u2)
    return np.array(rows, dtype=np.float64).reshape(len(rows), u2.size)
