"""The numba kernels (serial, ``nogil``, ``cache=True, fastmath=False``) and their wrappers.

Each public function here has a plain-numpy twin in :mod:`darkflow.stats._reference` that the
tests compare it with. See the package docstring for the algorithm.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import carray, njit
from numba.core import types as _nbt
from numba.extending import intrinsic

from darkflow.stats._common import (
    _PLANE_DTYPES,
    MAD_TO_STD,
    MODE_MAD,
    MODE_NOISE,
    MODE_NOISE_MAD,
    MODE_STD,
    PLANES,
    block_width,
    in_threads,
    raw16_exact,
    sorting_network,
)

__all__ = ["combine_band", "decode_be16", "sort_columns"]

# serial kernels over a range of independent items, run in threads by ``in_threads``
_JIT = {"cache": True, "fastmath": False, "nogil": True, "error_model": "numpy"}


@intrinsic
def _u16_ptr(typingctx, address):  # pragma: no cover - compiled
    """A ``uint64`` address as a ``uint16*`` (the caller keeps the memory alive)."""
    sig = _nbt.CPointer(_nbt.uint16)(_nbt.uint64)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return sig, codegen


@njit(**_JIT)
def _sort_columns_nb(work, ci, cj, b0, b1):  # pragma: no cover - compiled
    width = work.shape[1]
    for b in range(b0, b1):
        x0 = b * 128
        x1 = min(width, x0 + 128)
        for c in range(ci.shape[0]):
            i = ci[c]
            j = cj[c]
            for p in range(x0, x1):
                a = work[i, p]
                v = work[j, p]
                work[i, p] = a if a < v else v
                work[j, p] = v if a < v else a


def sort_columns(values: np.ndarray) -> np.ndarray:
    """Sort each column of a 2-D float array with the sorting network (numba); returns a copy.

    Non-finite values become ``+inf`` (they sort last), as in :func:`combine_band`.
    """
    work = np.where(np.isfinite(values), values, np.inf).astype(values.dtype)
    work = np.ascontiguousarray(work)
    ci, cj = sorting_network(max(work.shape[0], 1))
    in_threads(lambda b0, b1: _sort_columns_nb(work, ci, cj, b0, b1), (work.shape[1] + 127) // 128)
    return work


# --------------------------------------------------------------------------- decoding
@njit(cache=True, fastmath=False, nogil=True, error_model="numpy")
def _decode_one(u, bscale, bzero, blank, has_blank):  # pragma: no cover - compiled
    s = np.int32(((u & 0xFF) << 8) | (u >> 8))
    if s >= 32768:
        s -= 65536
    if has_blank and s == blank:
        return np.nan
    return np.float64(s) * bscale + bzero


@njit(**_JIT)
def _decode_be16_nb(raw, r0, r1, bscale, bzero, blank, has_blank, out):  # pragma: no cover
    nx = raw.shape[1]
    for r in range(r0, r1):
        for x in range(nx):
            out[r, x] = _decode_one(raw[r, x], bscale, bzero, blank, has_blank)


#: inputs of fewer values than this are decoded without threads
_DECODE_PARALLEL_MIN = 1 << 18


def decode_be16(
    raw: np.ndarray,
    out: np.ndarray,
    *,
    bscale: float = 1.0,
    bzero: float = 0.0,
    blank: int | None = None,
) -> None:
    """Decode big-endian 16-bit FITS integers into ``out`` (float32/64), applying BSCALE/BZERO.

    ``raw`` is the native ``uint16`` view of the file bytes (shape ``(rows, nx)``); values equal
    to ``blank`` (the stored integer, before scaling) become NaN. ``out`` must have the same
    shape; it is written in place.
    """
    # a few rows are decoded without threads: starting them costs more than their decoding
    args = (float(bscale), float(bzero), int(blank if blank is not None else 0), blank is not None)
    in_threads(
        lambda r0, r1: _decode_be16_nb(raw, r0, r1, *args, out),
        raw.shape[0],
        threads=None if raw.size >= _DECODE_PARALLEL_MIN else 1,
    )


# --------------------------------------------------------------------------- combine
# Scalar parameters travel in two small arrays (index names below) to keep signatures short.
# numba freezes the globals a kernel reads into its on-disk cache and invalidates that cache only
# when this file changes: constants defined elsewhere (MAD_TO_STD, the public MODE_* codes) reach
# the kernels as arguments (fpar) or are translated to the kernel's own codes (_K_*) in _params.
_F_SAT, _F_SLO, _F_SHI, _F_SIG0SQ, _F_LEVEL0, _F_INVGAIN, _F_BSCALE, _F_BZERO, _F_MADSTD = range(9)
_I_MODE, _I_MAXITERS, _I_BLANK, _I_HASBLANK = range(4)
_K_MAD, _K_STD, _K_NOISE, _K_NOISE_MAD = range(4)
#: pixel blocks per thread below which a band is not split between threads
_MIN_BLOCKS = 16


@njit(cache=True, fastmath=False, nogil=True, error_model="numpy")
def _mad_sorted(work, p, lo, hi, med, off):  # pragma: no cover - compiled
    """MAD of the sorted kept values ``work[lo:hi, p]`` around ``med`` (merge walk outwards)."""
    m = hi - lo
    k1 = (m - 1) // 2
    k2 = m // 2
    a = lo + (m - 1) // 2  # left walk starts at the lower middle, going down
    b = a + 1  # right walk starts above it, going up
    d1 = 0.0
    d2 = 0.0
    for cnt in range(k2 + 1):
        dl = np.inf
        dr = np.inf
        if a >= lo:
            dl = med - (np.float64(work[a, p]) + off)
        if b < hi:
            dr = (np.float64(work[b, p]) + off) - med
        if dl <= dr:
            d = dl
            a -= 1
        else:
            d = dr
            b += 1
        if cnt == k1:
            d1 = d
        if cnt == k2:
            d2 = d
    return 0.5 * (d1 + d2)


@njit(cache=True, fastmath=False, nogil=True, error_model="numpy")
def _clip_pixel(work, p, lo, hi, nv, iters, mode, fpar, off):  # pragma: no cover - compiled
    """Up to ``iters`` clipping iterations of the sorted kept values ``work[lo:hi, p]``.

    The result keeps every valid value (``work[:nv, p]``) inside the bounds of the last
    iteration, like astropy's ``sigma_clip``; with no iteration run, ``(lo, hi)`` is returned.
    """
    have = False
    lower_f = 0.0
    upper_f = 0.0
    frozen = -1.0
    for _ in range(iters):
        m = hi - lo
        if m < 1:
            break
        med = 0.5 * (
            (np.float64(work[lo + (m - 1) // 2, p]) + off)
            + (np.float64(work[lo + m // 2, p]) + off)
        )
        if mode == _K_MAD:
            scale = fpar[_F_MADSTD] * _mad_sorted(work, p, lo, hi, med, off)
        elif mode == _K_STD:
            acc = 0.0
            for k in range(lo, hi):
                acc += np.float64(work[k, p]) + off
            mean = acc / m
            acc = 0.0
            for k in range(lo, hi):
                d = (np.float64(work[k, p]) + off) - mean
                acc += d * d
            scale = np.sqrt(acc / m)
        elif mode == _K_NOISE:
            scale = np.sqrt(fpar[_F_SIG0SQ] + max(med - fpar[_F_LEVEL0], 0.0) * fpar[_F_INVGAIN])
        else:
            if frozen < 0.0:
                frozen = max(
                    np.sqrt(fpar[_F_SIG0SQ]),
                    fpar[_F_MADSTD] * _mad_sorted(work, p, lo, hi, med, off),
                )
            scale = frozen
        lower = med - scale * fpar[_F_SLO]
        upper = med + scale * fpar[_F_SHI]
        nlo = lo
        while nlo < hi and (np.float64(work[nlo, p]) + off) < lower:
            nlo += 1
        nhi = hi
        while nhi > nlo and (np.float64(work[nhi - 1, p]) + off) > upper:
            nhi -= 1
        if nhi <= nlo:  # degenerate bounds (zero scale between two values): keep the last
            break
        have = True
        lower_f = lower
        upper_f = upper
        if nlo == lo and nhi == hi:
            break
        lo = nlo
        hi = nhi
    if have:
        lo = 0
        while lo < nv and (np.float64(work[lo, p]) + off) < lower_f:
            lo += 1
        hi = nv
        while hi > lo and (np.float64(work[hi - 1, p]) + off) > upper_f:
            hi -= 1
    return lo, hi


@njit(cache=True, fastmath=False, nogil=True, error_model="numpy")
def _finish_block(  # pragma: no cover - compiled
    work, bw, nvalid, nhot, ci, cj, fpar, ipar, lo_a, hi_a, f1, f2, f3, orow, x0, outs, off
):
    """Sort, clip, sum and store one gathered block of ``bw`` pixels (value = work + off).

    Loops run across the pixels of the block and touch few arrays each, so they vectorise.
    """
    n = work.shape[0]
    out_mean, out_unc, out_nused, out_nlow, out_nhigh, out_hot, out_sat = outs
    for c in range(ci.shape[0]):  # sorting network
        i = ci[c]
        j = cj[c]
        wi = work[i, :bw]  # 1-D contiguous views: unit stride, so the loops vectorise
        wj = work[j, :bw]
        for p in range(bw):
            a = wi[p]
            v = wj[p]
            wi[p] = a if a < v else v
            wj[p] = v if a < v else a
    mode = ipar[_I_MODE]
    iters = ipar[_I_MAXITERS]
    if mode == _K_NOISE and iters > 0:
        # first iteration for all pixels at once (no outlier: the common case stops here)
        full = True
        for p in range(bw):
            full &= nvalid[p] == n
        if full:  # the middle rows are the same for every pixel: vectorised median
            wa = work[(n - 1) // 2, :bw]
            wb = work[n // 2, :bw]
            for p in range(bw):
                f3[p] = 0.5 * ((np.float64(wa[p]) + off) + (np.float64(wb[p]) + off))
        else:
            for p in range(bw):
                nv = nvalid[p]
                f3[p] = (
                    0.5
                    * (
                        (np.float64(work[(nv - 1) // 2, p]) + off)
                        + (np.float64(work[nv // 2, p]) + off)
                    )
                    if nv > 0
                    else np.nan
                )
        s0 = fpar[_F_SIG0SQ]
        lv0 = fpar[_F_LEVEL0]
        ig = fpar[_F_INVGAIN]
        slo = fpar[_F_SLO]
        shi = fpar[_F_SHI]
        for p in range(bw):
            med = f3[p]
            scale = np.sqrt(s0 + max(med - lv0, 0.0) * ig)
            f1[p] = med - scale * slo
            f2[p] = med + scale * shi
            lo_a[p] = 0
            hi_a[p] = 0
        for k in range(n):
            wk = work[k, :bw]
            for p in range(bw):
                lo_a[p] += np.int32((np.float64(wk[p]) + off) < f1[p])
        for k in range(n):
            wk = work[k, :bw]
            for p in range(bw):
                hi_a[p] += np.int32(((np.float64(wk[p]) + off) > f2[p]) & (k < nvalid[p]))
        for p in range(bw):
            nv = nvalid[p]
            lo = lo_a[p]
            hi = nv - hi_a[p]
            if hi > lo and (lo > 0 or hi < nv):
                lo, hi = _clip_pixel(
                    work, p, np.int64(lo), np.int64(hi), np.int64(nv), iters - 1, mode, fpar, off
                )
            else:
                lo = 0
                hi = nv
            lo_a[p] = lo
            hi_a[p] = hi
    else:
        for p in range(bw):
            nv = np.int64(nvalid[p])  # one signature for both calls (one compile)
            lo, hi = _clip_pixel(work, p, np.int64(0), nv, nv, iters, mode, fpar, off)
            lo_a[p] = lo
            hi_a[p] = hi
    # shifted one-pass sums over the kept range, in ascending order for every pixel
    for p in range(bw):
        m = hi_a[p] - lo_a[p]
        f3[p] = (np.float64(work[lo_a[p] + (m - 1) // 2, p]) + off) if m > 0 else 0.0
        f1[p] = 0.0
        f2[p] = 0.0
    for k in range(n):
        wk = work[k, :bw]
        for p in range(bw):
            inside = (k >= lo_a[p]) & (k < hi_a[p])
            d = (np.float64(wk[p]) + off) - f3[p] if inside else 0.0
            f1[p] += d
            f2[p] += d * d
    sig0_sq = fpar[_F_SIG0SQ]
    level0 = fpar[_F_LEVEL0]
    inv_gain = fpar[_F_INVGAIN]
    sat = fpar[_F_SAT]
    # per-pixel results (f1 = mean, f2 = uncertainty), then one simple store loop per plane
    for p in range(bw):
        m = hi_a[p] - lo_a[p]
        mf = np.float64(m)
        mean = f3[p] + f1[p] / mf  # m == 0: 0/0 = NaN
        var = (f2[p] - f1[p] * f1[p] / mf) / (mf - 1.0)
        many = np.sqrt(max(var, 0.0) / mf)
        one = np.sqrt(sig0_sq + max(mean - level0, 0.0) * inv_gain)
        f1[p] = mean
        f2[p] = many if m > 1 else (one if m == 1 else np.nan)
    om = out_mean[orow, x0 : x0 + bw]
    for p in range(bw):
        om[p] = f1[p]
    ou = out_unc[orow, x0 : x0 + bw]
    for p in range(bw):
        ou[p] = f2[p]
    on = out_nused[orow, x0 : x0 + bw]
    for p in range(bw):
        on[p] = hi_a[p] - lo_a[p]
    ol = out_nlow[orow, x0 : x0 + bw]
    for p in range(bw):
        ol[p] = lo_a[p]
    oh = out_nhigh[orow, x0 : x0 + bw]
    for p in range(bw):
        oh[p] = nvalid[p] - hi_a[p]
    ot = out_hot[orow, x0 : x0 + bw]
    for p in range(bw):
        nv = nvalid[p]
        ot[p] = nhot[p] / np.float64(nv) if nv > 0 else 0.0
    # every valid value saturated <=> the smallest one is (the sort put it first)
    w0 = work[0, :bw]
    osat = out_sat[orow, x0 : x0 + bw]
    for p in range(bw):
        osat[p] = (nvalid[p] > 0) & ((np.float64(w0[p]) + off) >= sat)


@njit(cache=True, fastmath=False, nogil=True, error_model="numpy")
def _scratch(n, width, dtype):  # pragma: no cover - compiled
    work = np.empty((n, width), dtype=dtype)
    ints = np.empty((4, width), dtype=np.int32)
    flts = np.empty((3, width), dtype=np.float64)
    return work, ints, flts


@njit(cache=True, fastmath=False, nogil=True, error_model="numpy")
def _gather_float(stack, r, x0, bw, work, nvalid, nhot, hot_thr):  # pragma: no cover
    n = stack.shape[0]
    for k in range(n):
        src = stack[k, r, x0 : x0 + bw]
        wk = work[k, :bw]
        for p in range(bw):
            v = src[p]
            wk[p] = v if np.isfinite(v) else np.inf
    for p in range(bw):
        nvalid[p] = 0
        nhot[p] = 0
    for k in range(n):
        wk = work[k, :bw]
        for p in range(bw):
            nvalid[p] += np.int32(wk[p] < np.inf)
    for k in range(n):
        t = hot_thr[k]
        wk = work[k, :bw]
        for p in range(bw):
            w = wk[p]
            nhot[p] += np.int32((w > t) & (w < np.inf))


@njit(cache=True, fastmath=False, nogil=True, error_model="numpy")
def _gather_raw16(
    addrs, nx, r, x0, bw, work, nvalid, nhot, hot_key, blank_key, has_blank
):  # pragma: no cover
    n = addrs.shape[0]
    start = np.uint64(2 * (r * nx + x0))
    for k in range(n):
        src = carray(_u16_ptr(addrs[k] + start), bw)  # row r, pixels x0.. of frame k
        wk = work[k, :bw]
        for p in range(bw):
            u = src[p]
            wk[p] = np.uint16((((u << 8) | (u >> 8)) & 0xFFFF) ^ 0x8000)
    for p in range(bw):
        nvalid[p] = 0
        nhot[p] = 0
    if has_blank:  # rare: BLANK values get the largest key and are not counted
        for k in range(n):
            kh = hot_key[k]
            for p in range(bw):
                key = work[k, p]
                ok = key != blank_key
                nvalid[p] += np.int32(ok)
                nhot[p] += np.int32(ok & (np.int32(key) > kh))
                work[k, p] = key if ok else np.uint16(0xFFFF)
    else:
        for p in range(bw):
            nvalid[p] = n
        for k in range(n):
            kh = hot_key[k]
            wk = work[k, :bw]
            for p in range(bw):
                nhot[p] += np.int32(np.int32(wk[p]) > kh)


@njit(cache=True, fastmath=False, nogil=True, error_model="numpy")
def _chunk_float(
    stack, blk0, blk1, nbx, width, ci, cj, hot_thr, fpar, ipar, outs, row0
):  # pragma: no cover
    n = stack.shape[0]
    nx = stack.shape[2]
    work, ints, flts = _scratch(n, width, stack.dtype)
    nvalid, nhot, lo_a, hi_a = ints[0], ints[1], ints[2], ints[3]
    for blk in range(blk0, blk1):
        r = blk // nbx
        x0 = (blk % nbx) * width
        bw = min(width, nx - x0)
        _gather_float(stack, r, x0, bw, work, nvalid, nhot, hot_thr)
        _finish_block(
            work,
            bw,
            nvalid,
            nhot,
            ci,
            cj,
            fpar,
            ipar,
            lo_a,
            hi_a,
            flts[0],
            flts[1],
            flts[2],
            row0 + r,
            x0,
            outs,
            0.0,
        )


@njit(cache=True, fastmath=False, nogil=True, error_model="numpy")
def _chunk_raw16(
    addrs, nx, blk0, blk1, nbx, width, ci, cj, hot_key, fpar, ipar, outs, row0
):  # pragma: no cover
    n = addrs.shape[0]
    work, ints, flts = _scratch(n, width, np.uint16)
    nvalid, nhot, lo_a, hi_a = ints[0], ints[1], ints[2], ints[3]
    off = fpar[_F_BZERO] - 32768.0
    blank_key = np.uint16((ipar[_I_BLANK] + 32768) & 0xFFFF)
    has_blank = ipar[_I_HASBLANK] != 0
    for blk in range(blk0, blk1):
        r = blk // nbx
        x0 = (blk % nbx) * width
        bw = min(width, nx - x0)
        _gather_raw16(addrs, nx, r, x0, bw, work, nvalid, nhot, hot_key, blank_key, has_blank)
        _finish_block(
            work,
            bw,
            nvalid,
            nhot,
            ci,
            cj,
            fpar,
            ipar,
            lo_a,
            hi_a,
            flts[0],
            flts[1],
            flts[2],
            row0 + r,
            x0,
            outs,
            off,
        )


def _hot_keys(hot_thr: np.ndarray, off: float) -> np.ndarray:
    """Per-frame thresholds as integer keys: value > thr  <=>  key > floor(thr - off)."""
    t = hot_thr - off
    with np.errstate(invalid="ignore"):
        keys = np.clip(np.floor(t), -1.0, 65535.0)
    return np.where(np.isnan(t), 65535.0, keys).astype(np.int32)


_KERNEL_MODE = {
    MODE_MAD: _K_MAD,
    MODE_STD: _K_STD,
    MODE_NOISE: _K_NOISE,
    MODE_NOISE_MAD: _K_NOISE_MAD,
}


def _params(mode, sigma_low, sigma_high, max_iters, sig0_sq, level0, inv_gain, sat_level, raw16):
    bscale, bzero, blank = raw16 if raw16 is not None else (1.0, 0.0, None)
    if raw16 is not None and not raw16_exact(bscale, bzero):
        raise ValueError("raw16 input needs BSCALE = 1 and an integral BZERO (decode to float)")
    if blank is not None and not -32768 <= int(blank) <= 32767:
        blank = None  # cannot occur in 16-bit data
    fpar = np.array(
        [sat_level, sigma_low, sigma_high, sig0_sq, level0, inv_gain, bscale, bzero, MAD_TO_STD],
        dtype=np.float64,
    )
    if mode not in _KERNEL_MODE:
        raise ValueError(f"unknown clipping mode {mode!r}")
    ipar = np.array(
        [_KERNEL_MODE[mode], max_iters, 0 if blank is None else int(blank), blank is not None],
        dtype=np.int64,
    )
    if mode in (MODE_NOISE, MODE_NOISE_MAD) and not np.isfinite(sig0_sq):
        raise ValueError("the noise model needs a finite sig0_sq")
    if max_iters < 0:
        raise ValueError("max_iters must be >= 0")
    return fpar, ipar


def combine_band(
    stack: np.ndarray | Sequence[np.ndarray],
    outputs: dict[str, np.ndarray],
    *,
    hot_thr: np.ndarray,
    nrows: int | None = None,
    row0: int = 0,
    sat_level: float = np.inf,
    mode: int = MODE_MAD,
    sigma_low: float = 3.0,
    sigma_high: float = 3.0,
    max_iters: int = 5,
    sig0_sq: float = np.nan,
    level0: float = 0.0,
    inv_gain: float = 0.0,
    raw16: tuple[float, float, int | None] | None = None,
) -> None:
    """Robust per-pixel combine of the band ``stack[:, :nrows, :]`` (numba, in threads).

    Parameters
    ----------
    stack
        C-contiguous ``(n_frames, rows, nx)`` float32/float64 values (NaN/inf ignored), or with
        ``raw16`` the native ``uint16`` view of big-endian FITS 16-bit integers: a 3-D array
        or a sequence of C-contiguous 2-D ``(rows, nx)`` arrays (e.g. memory-mapped bands of
        the files, read in place).
    outputs
        Full-frame planes (see :func:`empty_planes`) written at rows ``row0 .. row0 + nrows``.
    hot_thr
        Per-frame threshold (length ``n_frames``) above which a value counts as high.
    nrows
        Rows of ``stack`` that hold data (default all).
    row0
        Row of the output planes that receives the first band row.
    sat_level
        Values at or above it count as saturated.
    mode, sigma_low, sigma_high, max_iters, sig0_sq, level0, inv_gain
        Clipping scale and parameters, see the module docstring.
    raw16
        ``(bscale, bzero, blank)`` of raw 16-bit values (BSCALE must be 1 and BZERO integral,
        see :func:`raw16_exact`; ``blank`` None: no BLANK).
    """
    hot_thr = np.ascontiguousarray(hot_thr, dtype=np.float64)
    frames = list(stack) if raw16 is not None and not isinstance(stack, np.ndarray) else None
    n, rows, nx = _check_band_args(stack if frames is None else frames, hot_thr, outputs, raw16)
    nrows = rows if nrows is None else int(nrows)
    if not 0 <= nrows <= rows or row0 < 0 or row0 + nrows > outputs["mean"].shape[0]:
        raise ValueError("band rows fall outside the stack or the output planes")
    fpar, ipar = _params(
        mode, sigma_low, sigma_high, max_iters, sig0_sq, level0, inv_gain, sat_level, raw16
    )
    if nrows == 0 or n == 0:
        return
    ci, cj = sorting_network(n)
    outs = tuple(outputs[name] for name in PLANES)
    width = block_width(n)
    nbx = (nx + width - 1) // width
    row0 = int(row0)
    # blocks of pixels split between threads; each pixel's result depends on its values only
    if raw16 is None:

        def run(b0: int, b1: int) -> None:
            _chunk_float(stack, b0, b1, nbx, width, ci, cj, hot_thr, fpar, ipar, outs, row0)

        in_threads(run, nrows * nbx, min_items=_MIN_BLOCKS)
        return
    if frames is None:
        frames = list(stack)
    # Raw big-endian 16-bit input, read in place; the sort works on unsigned keys.
    # ``addrs[k]`` is the address of row 0 of frame ``k`` (C-contiguous rows of ``nx`` values,
    # e.g. a memory-mapped band of the file: no copy). The keys ``s + 32768`` keep the order of
    # the values (BSCALE is 1) and the value is ``key + off`` exactly (``off = BZERO - 32768``),
    # so every result equals the float path bit for bit; integer keys sort twice as fast as
    # float32 (twice the SIMD lanes). ``frames`` stays referenced until the kernel returns: the
    # addresses remain valid.
    addrs = np.array([f.ctypes.data for f in frames], dtype=np.uint64)
    hot_key = _hot_keys(hot_thr, fpar[_F_BZERO] - 32768.0)

    def run16(b0: int, b1: int) -> None:
        _chunk_raw16(addrs, nx, b0, b1, nbx, width, ci, cj, hot_key, fpar, ipar, outs, row0)

    in_threads(run16, nrows * nbx, min_items=_MIN_BLOCKS)
    del frames


def _check_band_args(stack, hot_thr, outputs, raw16) -> tuple[int, int, int]:
    want = (np.uint16,) if raw16 is not None else (np.float32, np.float64)
    names = "/".join(np.dtype(w).name for w in want)
    if isinstance(stack, np.ndarray):
        if stack.ndim != 3 or stack.dtype not in want:
            raise ValueError(f"stack must be a 3-D {names} array")
        if not stack.flags.c_contiguous:
            raise ValueError("stack must be C-contiguous")
        n, rows, nx = stack.shape
    else:
        if not stack:
            raise ValueError("no frames")
        if any(f.ndim != 2 or f.dtype not in want or not f.flags.c_contiguous for f in stack):
            raise ValueError(f"frames must be C-contiguous 2-D {names} arrays")
        n, nx, rows = len(stack), stack[0].shape[1], min(f.shape[0] for f in stack)
        if any(f.shape[1] != nx for f in stack):
            raise ValueError("frames of different width")
    if hot_thr.shape != (n,):
        raise ValueError("hot_thr must hold one threshold per frame")
    if n > np.iinfo(np.uint16).max:
        raise ValueError("at most 65535 frames per combine")
    for name, dt in zip(PLANES, _PLANE_DTYPES, strict=True):
        arr = outputs[name]
        if arr.ndim != 2 or arr.shape[1] != nx or arr.dtype != dt:
            raise ValueError(f"output plane {name} must be 2-D {np.dtype(dt).name}, nx={nx}")
        if not arr.flags.c_contiguous or not arr.flags.writeable:
            raise ValueError(f"output plane {name} must be C-contiguous and writeable")
    return n, rows, nx
