"""The light checks' expected tail counts (deep negatives, raw floor) as one numba pass each,
with their numpy twins.

Both gates compare a count of pixels with its expectation under "all is well", a sum of
normal tail probabilities ``ndtr`` over every background pixel. numpy computes the arguments
from boolean gathers, ``nan_to_num``, ``maximum`` and a dozen full-frame temporaries; the
kernels gather the background pixels in raster order and compute the same arguments with the
same IEEE operations in the same order and dtypes (float32 where numpy keeps float32 under
NEP 50, float64 elsewhere), so every argument is bit-identical. ``scipy.special.ndtr`` and
``np.sum`` (pairwise summation of the same contiguous array) are then applied as before:
the counts and expectations are equal, not just close (tests/test_tail_kernels.py).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from darkflow.stats._common import in_threads
from darkflow.stats._robust import median as _median

__all__ = [
    "deep_negative_terms",
    "deep_negative_terms_reference",
    "raw_floor_terms",
    "raw_floor_terms_reference",
]

DEEP_SIGMA = 5.0  # a pixel this far below zero (in a negative neighbourhood) is deep


@nb.njit(cache=True, nogil=True)
def nan_to_num64(v):  # pragma: no cover (numba)
    """``np.nan_to_num`` of one float64: NaN to 0, infinities to the largest finite values."""
    if math.isnan(v):
        return 0.0
    if v == math.inf:
        return 1.7976931348623157e308
    if v == -math.inf:
        return -1.7976931348623157e308
    return v


@nb.njit(cache=True, nogil=True)
def _deep_gather(c, u, local, bg, valid, hot, extra, deep, uv, bv, ev):  # pragma: no cover
    """Background pixels (``valid`` and not ``hot``) in raster order: ``uv`` their
    uncertainty, ``bv`` the sky ``max(nan_to_num(bg), 0)``, ``ev`` the finite excess variance
    (0 elsewhere), all float64. Returns ``(n, k)``: the pixels and the deep negatives among
    them (``c < -deep u`` under a negative neighbour median)."""
    ny, nx = c.shape
    use_hot = hot.shape[0] == ny
    use_extra = extra.shape[0] == ny
    n = 0
    k = 0
    for y in range(ny):
        for x in range(nx):
            if not valid[y, x] or (use_hot and hot[y, x]):
                continue
            ui = np.float64(u[y, x])
            if np.float64(c[y, x]) < -deep * ui and local[y, x] < 0:
                k += 1
            b = nan_to_num64(np.float64(bg[y, x]))
            uv[n] = ui
            bv[n] = b if b >= 0.0 else 0.0
            if use_extra:
                e = np.float64(extra[y, x])
                ev[n] = e if math.isfinite(e) else 0.0
            n += 1
    return n, k


@nb.njit(cache=True, nogil=True)
def _deep_arguments(uv, bv, ev, med, w, deep, kn, use_extra, a1, a2):  # pragma: no cover
    """The two ``ndtr`` arguments of every background pixel, numpy's operations in order."""
    for i in range(uv.shape[0]):
        su = w * uv[i]
        if use_extra:
            e = ev[i] - med
            if not (e >= 0.0 or math.isnan(e)):
                e = 0.0
            su = np.sqrt(su * su + e)
        if not (su >= 1e-12 or math.isnan(su)):
            su = 1e-12
        b = bv[i]
        a1[i] = -(deep * uv[i] + b) / su
        a2[i] = -b / (kn * su)


def _deep_ok(c, u, local, bg, valid, hot, extra) -> bool:
    arrays = [c, u, local, bg, valid] + [a for a in (hot, extra) if a is not None]
    shape = c.shape
    return c.ndim == 2 and all(isinstance(a, np.ndarray) and a.shape == shape for a in arrays)


def deep_negative_terms(
    c: np.ndarray,
    u: np.ndarray,
    local: np.ndarray,
    background: np.ndarray,
    valid: np.ndarray,
    width: float,
    neighbour_factor: float,
    *,
    model_hot: np.ndarray | None = None,
    extra_var: np.ndarray | None = None,
) -> tuple[int, int, float]:
    """``(n, k, mu)`` of the deep-negative gate: background pixels (``valid``, not
    ``model_hot``), deep negatives among them and their expected count
    ``sum Phi(-(5 u + b) / s) Phi(-b / (sqrt(f - 1) s))`` (``s = w u``, widened by the excess
    scatter of ``extra_var``; ``f`` the neighbour-median variance factor). ``mu`` is NaN when
    fewer than 50 pixels are background (not measured). Equal to
    :func:`deep_negative_terms_reference`."""
    if not _deep_ok(c, u, local, background, valid, model_hot, extra_var):
        return deep_negative_terms_reference(
            c,
            u,
            local,
            background,
            valid,
            width,
            neighbour_factor,
            model_hot=model_hot,
            extra_var=extra_var,
        )

    size = c.size
    uv = np.empty(size, np.float64)
    bv = np.empty(size, np.float64)
    ev = np.empty(size if extra_var is not None else 0, np.float64)
    none = np.zeros((0, 0), np.bool_)
    hot = none if model_hot is None else np.asarray(model_hot, dtype=np.bool_)
    extra = np.zeros((0, 0), np.float32) if extra_var is None else extra_var
    n, k = _deep_gather(
        c, u, local, background, np.asarray(valid, np.bool_), hot, extra, DEEP_SIGMA, uv, bv, ev
    )
    if n < 50:
        return n, k, math.nan
    uv, bv = uv[:n], bv[:n]
    med = 0.0
    if extra_var is not None:
        ev = ev[:n]
        med = float(_median(ev))
    w = width if math.isfinite(width) and width > 0 else 1.0
    # the arguments overwrite the gathered values (each pixel's own, read before written):
    # no fresh arrays of every background pixel
    a1, a2 = uv, bv
    _deep_arguments(
        uv,
        bv,
        ev,
        med,
        float(w),
        DEEP_SIGMA,
        math.sqrt(neighbour_factor - 1.0),
        extra_var is not None,
        a1,
        a2,
    )

    # a pixel whose sky lies far above its spread has ``ndtr(a2) = +0.0`` exactly, and so its
    # term (``ndtr(a1) >= 0`` unless ``a1`` is NaN): only the others are evaluated, the terms
    # array (and so its sum) the same bit for bit
    zero = (a2 < NDTR_ZERO_BELOW) & (a1 == a1)
    if np.count_nonzero(zero) > n // 4:
        keep = np.flatnonzero(~zero)
        t1, t2 = a1[keep], a2[keep]
        _ndtr_product(t1, t2)
        a1[:] = 0.0
        a1[keep] = t1
    else:
        _ndtr_product(a1, a2)
    return n, k, float(np.sum(a1))


NDTR_ZERO_BELOW = -38.5
"""``scipy.special.ndtr(x)`` is ``+0.0`` for every ``x`` below this (cephes' ``erfc``
underflows for ``x² / 2`` above ``MAXLOG``, at ``|x|`` about 37.7; tests/test_tails.py)."""


def _ndtr_product(a1: np.ndarray, a2: np.ndarray) -> None:
    """``a1 <- ndtr(a1) * ndtr(a2)`` (``a2`` overwritten), in threads over ranges (elementwise
    ufuncs without the GIL: the values of one call)."""
    from scipy.special import ndtr

    def terms(lo: int, hi: int) -> None:
        ndtr(a1[lo:hi], out=a1[lo:hi])
        ndtr(a2[lo:hi], out=a2[lo:hi])
        np.multiply(a1[lo:hi], a2[lo:hi], out=a1[lo:hi])

    in_threads(terms, a1.size, min_items=1 << 16)


def deep_negative_terms_reference(
    c: np.ndarray,
    u: np.ndarray,
    local: np.ndarray,
    background: np.ndarray,
    valid: np.ndarray,
    width: float,
    neighbour_factor: float,
    *,
    model_hot: np.ndarray | None = None,
    extra_var: np.ndarray | None = None,
) -> tuple[int, int, float]:
    """numpy twin of :func:`deep_negative_terms` (the gate's former code)."""
    from scipy.special import ndtr

    if model_hot is not None:
        valid = valid & ~model_hot
    n = int(np.count_nonzero(valid))
    cv, uv, lv = c[valid], u[valid].astype(np.float64), local[valid]
    with np.errstate(invalid="ignore"):
        k = int(np.count_nonzero((cv < -DEEP_SIGMA * uv) & (lv < 0)))
    if n < 50:
        return n, k, math.nan
    w = width if math.isfinite(width) and width > 0 else 1.0
    bv = np.maximum(np.nan_to_num(background[valid].astype(np.float64), nan=0.0), 0.0)
    su = w * uv
    if extra_var is not None:
        ev = np.asarray(extra_var[valid], dtype=np.float64)
        ev = np.where(np.isfinite(ev), ev, 0.0)
        ev = np.maximum(ev - float(_median(ev)), 0.0)
        su = np.sqrt(su * su + ev)
    su = np.maximum(su, 1e-12)
    mu = float(
        np.sum(
            ndtr(-(DEEP_SIGMA * uv + bv) / su)
            * ndtr(-bv / (math.sqrt(neighbour_factor - 1.0) * su))
        )
    )
    return n, k, mu


@nb.njit(cache=True, nogil=True)
def _floor_pass(c, u, r, mdl, bg, sources, width, sat, use_sat, args):  # pragma: no cover
    """One pass over the frame: finite pixels, raw values at or below 0 among them, values
    above the range (``c > sat - mdl + 5 u``, float32 as numpy), and for the finite pixels
    outside sources the argument ``-level / spread`` of their floor probability."""
    ny, nx = c.shape
    zero32 = np.float32(0.0)
    five32 = np.float32(5.0)
    f32max = np.float32(3.4028234663852886e38)
    n_finite = 0
    at_zero = 0
    above = 0
    m = 0
    for y in range(ny):
        for x in range(nx):
            cv = c[y, x]
            uv = u[y, x]
            if not (math.isfinite(cv) and math.isfinite(uv)):
                continue
            n_finite += 1
            if r[y, x] <= 0:
                at_zero += 1
            if use_sat and cv > (sat - mdl[y, x]) + five32 * uv:
                above += 1
            if sources[y, x]:
                continue
            s = bg[y, x]
            if math.isnan(s):
                s = zero32
            elif s == np.inf:
                s = f32max
            elif s == -np.inf:
                s = -f32max
            if not s >= zero32:
                s = zero32
            level = np.float64(mdl[y, x] + s)
            spread = width * np.float64(uv)
            if not (spread >= 1e-12 or math.isnan(spread)):
                spread = 1e-12
            args[m] = -level / spread
            m += 1
    return n_finite, at_zero, above, m


def _floor_ok(c, u, r, mdl, bg, sources) -> bool:
    arrays = (c, u, r, mdl, bg, sources)
    return (
        c.ndim == 2
        and all(isinstance(a, np.ndarray) and a.shape == c.shape for a in arrays)
        and all(a.dtype == np.float32 for a in (c, u, r, mdl, bg))
    )


def raw_floor_terms(
    c: np.ndarray,
    u: np.ndarray,
    r: np.ndarray,
    mdl: np.ndarray,
    background: np.ndarray,
    sources: np.ndarray,
    width: float,
    saturation: float | None,
) -> tuple[int, int, float, int | None]:
    """``(n_finite, at_zero, mu_zero, above)`` of the plausibility counts of a light.

    ``n_finite``: pixels with finite ``c`` and ``u``; ``at_zero``: those whose raw value ``r``
    is at or below 0; ``mu_zero``: its expectation ``sum Phi(-(mdl + sky) / (w u))`` over the
    finite pixels outside ``sources`` (``sky = max(background, 0)``); ``above``: finite pixels
    above the ADC range, ``c > saturation - mdl + 5 u`` (``None`` without a saturation).
    float32 inputs (the light check's); other dtypes go to :func:`raw_floor_terms_reference`,
    which gives the same values.
    """
    if not _floor_ok(c, u, r, mdl, background, sources):
        return raw_floor_terms_reference(c, u, r, mdl, background, sources, width, saturation)
    from scipy.special import ndtr

    args = np.empty(c.size, np.float64)
    n_finite, at_zero, above, m = _floor_pass(
        c,
        u,
        r,
        mdl,
        background,
        np.asarray(sources, np.bool_),
        float(width),
        np.float32(0.0 if saturation is None else saturation),
        saturation is not None,
        args,
    )
    args = args[:m]
    # most pixels' floor lies far below their level (ndtr exactly 0): only the others are
    # evaluated, the terms (and so their sum) the same bit for bit
    zero = args < NDTR_ZERO_BELOW
    if np.count_nonzero(zero) > m // 4:
        keep = np.flatnonzero(~zero)
        terms = ndtr(args[keep])
        args[:] = 0.0
        args[keep] = terms
    else:
        ndtr(args, out=args)
    return n_finite, at_zero, float(np.sum(args)), None if saturation is None else above


def raw_floor_terms_reference(
    c: np.ndarray,
    u: np.ndarray,
    r: np.ndarray,
    mdl: np.ndarray,
    background: np.ndarray,
    sources: np.ndarray,
    width: float,
    saturation: float | None,
) -> tuple[int, int, float, int | None]:
    """numpy twin of :func:`raw_floor_terms` (the light check's former code)."""
    from scipy.special import ndtr

    finite = np.isfinite(c) & np.isfinite(u)
    n_finite = int(np.count_nonzero(finite))
    with np.errstate(invalid="ignore", divide="ignore"):
        quiet = finite & ~sources
        sky = np.maximum(np.nan_to_num(background, nan=0.0), 0.0)
        level = (mdl + sky)[quiet].astype(np.float64)
        spread = np.maximum(width * u[quiet].astype(np.float64), 1e-12)
        at_zero = int(np.count_nonzero(r[finite] <= 0))
        mu_zero = float(np.sum(ndtr(-level / spread)))
    above = None
    if saturation is not None:
        with np.errstate(invalid="ignore"):
            above = int(np.count_nonzero(finite & (c > saturation - mdl + 5.0 * u)))
    return n_finite, at_zero, mu_zero, above
