"""Plain-numpy twins of the numba kernels: same operations, same order, vectorised.

They are written for clarity, not speed (whole-band temporaries); the tests compare the
kernels with them bit for bit.
"""

from __future__ import annotations

import numpy as np

from darkflow.stats._common import (
    MAD_TO_STD,
    MODE_MAD,
    MODE_NOISE,
    MODE_NOISE_MAD,
    MODE_STD,
)

__all__ = ["combine_band_reference", "decode_be16_reference", "sort_columns_reference"]


def sort_columns_reference(values: np.ndarray) -> np.ndarray:
    """Plain-numpy twin of :func:`sort_columns`."""
    work = np.where(np.isfinite(values), values, np.inf).astype(values.dtype)
    return np.sort(work, axis=0)


def decode_be16_reference(
    raw: np.ndarray,
    out: np.ndarray,
    *,
    bscale: float = 1.0,
    bzero: float = 0.0,
    blank: int | None = None,
) -> None:
    """Plain-numpy twin of :func:`decode_be16`."""
    stored = raw.view(">i2").astype(np.int32)
    val = stored.astype(np.float64) * float(bscale) + float(bzero)
    if blank is not None:
        val[stored == int(blank)] = np.nan
    out[...] = val


def combine_band_reference(
    stack: np.ndarray,
    *,
    hot_thr: np.ndarray,
    sat_level: float = np.inf,
    mode: int = MODE_MAD,
    sigma_low: float = 3.0,
    sigma_high: float = 3.0,
    max_iters: int = 5,
    sig0_sq: float = np.nan,
    level0: float = 0.0,
    inv_gain: float = 0.0,
    raw16: tuple[float, float, int | None] | None = None,
) -> dict[str, np.ndarray]:
    """Plain-numpy twin of :func:`combine_band`: same operations, same order, vectorised.

    Returns the planes of the band, shape ``(rows, nx)``, keyed like :func:`empty_planes`.
    """
    if raw16 is not None:
        bscale, bzero, blank = raw16
        decoded = np.empty(stack.shape, np.float32)
        decode_be16_reference(stack, decoded, bscale=bscale, bzero=bzero, blank=blank)
        stack = decoded
    n, rows, nx = stack.shape
    npx = rows * nx
    x = stack.reshape(n, npx)
    hot_thr = np.asarray(hot_thr, dtype=np.float64)
    valid = np.isfinite(x)
    nv = valid.sum(axis=0)
    nhot = (valid & (x > hot_thr[:, None])).sum(axis=0)
    nsat = (valid & (x >= sat_level)).sum(axis=0)
    s = np.sort(np.where(valid, x, np.inf).astype(stack.dtype), axis=0).astype(np.float64)
    idx = np.arange(n)[:, None]
    cols = np.arange(npx)
    lo = np.zeros(npx, dtype=np.int64)
    hi = nv.astype(np.int64)
    active = hi > lo
    have = np.zeros(npx, dtype=bool)
    frozen = None
    lower_f = np.zeros(npx)
    upper_f = np.zeros(npx)
    with np.errstate(invalid="ignore"):
        for _ in range(max_iters):
            m = hi - lo
            active &= m > 0
            if not active.any():
                break
            med = 0.5 * (s[np.maximum(lo + (m - 1) // 2, 0), cols] + s[lo + m // 2, cols])
            inside = (idx >= lo) & (idx < hi)
            if mode in (MODE_MAD, MODE_NOISE_MAD):
                dev = np.where(inside, np.abs(s - med), np.inf)
                dev.sort(axis=0)
                mm = np.maximum(m, 1)
                mad = 0.5 * (dev[(mm - 1) // 2, cols] + dev[mm // 2, cols])
            if mode == MODE_MAD:
                scale = MAD_TO_STD * mad
            elif mode == MODE_STD:
                acc = np.zeros(npx)
                for k in range(n):
                    acc += np.where(inside[k], s[k], 0.0)
                mean = acc / np.maximum(m, 1)
                acc = np.zeros(npx)
                for k in range(n):
                    d = np.where(inside[k], s[k] - mean, 0.0)
                    acc += d * d
                scale = np.sqrt(acc / np.maximum(m, 1))
            elif mode == MODE_NOISE:
                scale = np.sqrt(sig0_sq + np.maximum(med - level0, 0.0) * inv_gain)
            else:
                if frozen is None:
                    frozen = np.maximum(np.sqrt(sig0_sq), MAD_TO_STD * mad)
                scale = frozen
            lower = med - scale * sigma_low
            upper = med + scale * sigma_high
            nlo = lo + (inside & (s < lower)).sum(axis=0)
            nhi = hi - (inside & (s > upper)).sum(axis=0)
            ok = active & (nhi > nlo)
            have |= ok
            lower_f = np.where(ok, lower, lower_f)
            upper_f = np.where(ok, upper, upper_f)
            change = ok & ((nlo != lo) | (nhi != hi))
            lo = np.where(change, nlo, lo)
            hi = np.where(change, nhi, hi)
            active = change
        valid_s = idx < nv
        lo = np.where(have, (valid_s & (s < lower_f)).sum(axis=0), lo)
        hi = np.where(have, nv - (valid_s & (s > upper_f)).sum(axis=0), hi)
    m = hi - lo
    inside = (idx >= lo) & (idx < hi)
    shift = np.where(m > 0, s[np.maximum(lo + (m - 1) // 2, 0), cols], 0.0)
    a1 = np.zeros(npx)
    a2 = np.zeros(npx)
    for k in range(n):
        d = np.where(inside[k], s[k] - shift, 0.0)
        a1 += d
        a2 += d * d
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(m > 0, shift + a1 / m, np.nan)
        var = (a2 - a1 * a1 / m) / (m - 1)
        unc_many = np.sqrt(np.maximum(var, 0.0) / m)
        unc_one = np.sqrt(sig0_sq + np.maximum(mean - level0, 0.0) * inv_gain)
        unc = np.where(m > 1, unc_many, np.where(m == 1, unc_one, np.nan))
        hot = np.where(nv > 0, nhot / np.maximum(nv, 1), 0.0)
    shape = (rows, nx)
    return {
        "mean": mean.astype(np.float32).reshape(shape),
        "uncertainty": unc.astype(np.float32).reshape(shape),
        "n_used": m.astype(np.uint16).reshape(shape),
        "n_low": lo.astype(np.uint16).reshape(shape),
        "n_high": (nv - hi).astype(np.uint16).reshape(shape),
        "hot": hot.astype(np.float32).reshape(shape),
        "saturated": ((nv > 0) & (nsat == nv)).reshape(shape),
    }
