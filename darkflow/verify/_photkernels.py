"""Photometry's bad-pixel filling (:func:`darkflow.verify.photometry.measure`) as a numba
kernel, with its numpy twin.

Each star window's hot pixels are replaced by the median of their good 3x3 neighbours before
it is measured, three or four times per star (raw and calibrated frames, the model); the twin
(the former ``_fill``) does it with a padded copy, nine gathers and a sort per call, mostly
Python overhead on windows of 23x23 pixels. The kernel sorts each bad pixel's good, not-NaN
neighbours and takes numpy's median of them (the mean of the two middle values, in float64),
so the filled windows are equal bit for bit (tests/test_fill_kernel.py).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

__all__ = ["fill_bad", "fill_bad_reference", "measure_windows", "model_effects"]


@nb.njit(cache=True, nogil=True)
def _fill_bad(cut, bad, out):  # pragma: no cover
    ny, nx = cut.shape
    vals = np.empty(8, np.float64)
    for y in range(ny):
        for x in range(nx):
            if not bad[y, x]:
                continue
            n = 0
            for yy in range(y - 1, y + 2):
                for xx in range(x - 1, x + 2):
                    if 0 <= yy < ny and 0 <= xx < nx and not bad[yy, xx]:
                        v = cut[yy, xx]
                        if not np.isnan(v):
                            vals[n] = v
                            n += 1
            if n == 0:
                out[y, x] = np.nan
                continue
            s = np.sort(vals[:n])
            out[y, x] = (s[(n - 1) // 2] + s[n // 2]) / 2


def fill_bad(cut: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """``cut`` (float64) with its ``bad`` pixels replaced by the median of their good, not-NaN
    3x3 neighbours (NaN without one), as :func:`fill_bad_reference` does."""
    if not (
        isinstance(cut, np.ndarray)
        and cut.dtype == np.float64
        and cut.ndim == 2
        and bad.shape == cut.shape
    ):
        return fill_bad_reference(cut, bad)
    out = cut.copy()
    _fill_bad(cut, np.asarray(bad, dtype=np.bool_), out)
    return out


def fill_bad_reference(cut: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """numpy twin of :func:`fill_bad` (the photometry's former ``_fill``)."""
    from darkflow.verify._residuals import nanmedian_along  # one sort; no good neighbour: NaN

    out = cut.copy()
    ny, nx = cut.shape
    padded = np.full((ny + 2, nx + 2), np.nan)
    padded[1:-1, 1:-1] = np.where(bad, np.nan, cut)
    ys, xs = np.nonzero(bad)
    window = np.stack([padded[ys + 1 + dy, xs + 1 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
    out[ys, xs] = nanmedian_along(window, 0)
    return out


@nb.njit(cache=True, nogil=True)
def _pairwise_block(a, lo, n):  # pragma: no cover (numba)
    """numpy's pairwise sum of at most 128 values ``a[lo:lo + n]``: fewer than 8 added in
    order, else 8 accumulators combined as a tree, the rest added in order."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    m = n - n % 8
    while i < m:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@nb.njit(cache=True, nogil=True)
def _pairwise(a, n):  # pragma: no cover (numba)
    """numpy's pairwise summation of ``a[:n]`` (float64, contiguous): ranges of more than 128
    values halved at a multiple of 8, the halves' sums added left + right. Without recursion
    (numba's cache does not keep recursive functions): an explicit stack of the ranges."""
    if n <= 128:
        return _pairwise_block(a, 0, n)
    depth = 64
    los = np.empty(depth, np.int64)
    ns = np.empty(depth, np.int64)
    state = np.empty(depth, np.int64)
    left = np.empty(depth, np.float64)
    los[0], ns[0], state[0] = 0, n, 0
    sp = 1
    ret = 0.0
    while sp > 0:
        t = sp - 1
        lo, m = los[t], ns[t]
        if m <= 128:
            ret = _pairwise_block(a, lo, m)
            sp -= 1
            continue
        half = m // 2
        half -= half % 8
        if state[t] == 0:  # the left half first
            state[t] = 1
            los[sp], ns[sp], state[sp] = lo, half, 0
            sp += 1
        elif state[t] == 1:  # the left half's sum is in ret: now the right half
            left[t] = ret
            state[t] = 2
            los[sp], ns[sp], state[sp] = lo + half, m - half, 0
            sp += 1
        else:
            ret = left[t] + ret
            sp -= 1
    return ret


@nb.njit(cache=True, nogil=True)
def _np_sum(a, n):  # pragma: no cover (numba)
    """``np.sum(a[:n])`` of a contiguous float64 array: the identity 0.0 plus the pairwise sum."""
    return 0.0 + _pairwise(a, n)


@nb.njit(cache=True, nogil=True)
def _median_sorted(s, n):  # pragma: no cover (numba)
    """numpy's median of ``n`` sorted values: the middle one, or the mean of the two."""
    k = n // 2
    if n % 2:
        return s[k]
    return (s[k - 1] + s[k]) / 2.0


@nb.njit(cache=True, nogil=True)
def _measure(img, bad, cys, cxs, half, r_ap, ann, ap, mad_to_std, out):  # pragma: no cover
    """Each star's window as :func:`darkflow.verify.photometry.measure` measures it; ``out``
    rows: centroid y, x, flux, annulus median, annulus sigma, annulus pixels."""
    ny, nx = img.shape
    size = 2 * half + 1
    use_bad = bad.shape[0] == ny
    cut = np.empty((size, size), np.float64)
    filled = np.empty((size, size), np.float64)
    bad_cut = np.zeros((size, size), np.bool_)
    av = np.empty(size * size, np.float64)
    dev = np.empty(size * size, np.float64)
    buf = np.empty(size * size, np.float64)
    w = np.empty(size * size, np.float64)
    wy = np.empty(size * size, np.float64)
    wx = np.empty(size * size, np.float64)
    for s in range(cys.size):
        cy, cx = cys[s], cxs[s]
        if not (half <= cy < ny - half and half <= cx < nx - half):
            out[s, :5] = np.nan
            out[s, 5] = 0.0
            continue
        any_bad = False
        for j in range(size):
            for i in range(size):
                cut[j, i] = np.float64(img[cy - half + j, cx - half + i])
                b = use_bad and bad[cy - half + j, cx - half + i]
                bad_cut[j, i] = b
                any_bad = any_bad or b
        if any_bad:
            filled[:, :] = cut
            _fill_bad(cut, bad_cut, filled)
            cut[:, :] = filled
        n_av = 0
        for j in range(size):
            for i in range(size):
                v = cut[j, i]
                if ann[j, i] and np.isfinite(v):
                    av[n_av] = v
                    n_av += 1
        med = np.nan
        sig = np.nan
        if n_av:
            srt = np.sort(av[:n_av])
            med = _median_sorted(srt, n_av)
        if n_av >= 3:
            for k in range(n_av):
                dev[k] = abs(av[k] - med)
            sig = mad_to_std * _median_sorted(np.sort(dev[:n_av]), n_av)
        n_ap = 0
        for j in range(size):
            for i in range(size):
                if ap[j, i]:
                    v = cut[j, i] - med
                    buf[n_ap] = 0.0 if np.isnan(v) else v
                    n_ap += 1
        flux = _np_sum(buf, n_ap)
        yc = np.float64(cy)
        xc = np.float64(cx)
        for _ in range(2):
            k = 0
            for j in range(size):
                for i in range(size):
                    d = math.hypot(np.float64(j - half + cy) - yc, np.float64(i - half + cx) - xc)
                    v = cut[j, i] - med if d <= r_ap else 0.0
                    if not (np.isfinite(v) and v > 0):
                        v = 0.0
                    w[k] = v
                    wy[k] = v * np.float64(j - half)
                    wx[k] = v * np.float64(i - half)
                    k += 1
            total = _np_sum(w, k)
            if total <= 0:
                yc = np.nan
                xc = np.nan
                break
            yc = cy + _np_sum(wy, k) / total
            xc = cx + _np_sum(wx, k) / total
        out[s, 0] = yc
        out[s, 1] = xc
        out[s, 2] = flux
        out[s, 3] = med
        out[s, 4] = sig
        out[s, 5] = n_av


def measure_windows(
    image: np.ndarray,
    bad: np.ndarray | None,
    cys: np.ndarray,
    cxs: np.ndarray,
    half: int,
    r_aperture: float,
    ann: np.ndarray,
    ap: np.ndarray,
    mad_to_std: float,
) -> np.ndarray | None:
    """Rows ``(y, x, flux, annulus median, annulus sigma, annulus pixels)`` of the star windows
    centred on ``cys``, ``cxs`` (numba); ``None`` for an image the kernel does not take (not a
    2-D float32/float64/integer array): the caller measures with numpy then."""
    img = np.asarray(image)
    if img.ndim != 2 or img.dtype.kind not in "fiu" or (bad is not None and bad.shape != img.shape):
        return None
    out = np.empty((cys.size, 6), np.float64)
    no_bad = np.zeros((0, 0), np.bool_)
    _measure(
        img,
        no_bad if bad is None else np.asarray(bad, np.bool_),
        np.asarray(cys, np.int64),
        np.asarray(cxs, np.int64),
        int(half),
        float(r_aperture),
        ann,
        ap,
        float(mad_to_std),
        out,
    )
    return out


# ----------------------------------------------------------------------------- model effect
@nb.njit(cache=True, nogil=True)
def _effect_windows(img, src, bad, cys, cxs, half, ann, ap, ok, cuts, raws, rhs, n_ann, full):
    """Pass 1 of :func:`model_effects`: each kept star's (``ok``) float64 windows of the
    model (``cuts``) and the raw light (``raws``), bad pixels filled; the model's finite
    annulus values in raster order (``rhs``), their number and whether the annulus is whole.
    A star whose plane cannot be fitted (fewer than 4 annulus values, no aperture pixel
    finite in both windows) is no longer ``ok``."""  # pragma: no cover (numba)
    w = 2 * half + 1
    use_bad = bad.shape[0] > 0
    for s in range(cys.size):
        if not ok[s]:
            continue
        y0, x0 = cys[s] - half, cxs[s] - half
        for i in range(w):
            for j in range(w):
                cuts[s, i, j] = np.float64(img[y0 + i, x0 + j])
                raws[s, i, j] = np.float64(src[y0 + i, x0 + j])
        if use_bad:
            window = bad[y0 : y0 + w, x0 : x0 + w]
            _fill_bad(cuts[s].copy(), window, cuts[s])
            _fill_bad(raws[s].copy(), window, raws[s])
        n = 0
        aperture = False
        whole = True
        for i in range(w):
            for j in range(w):
                c = cuts[s, i, j]
                if ann[i, j]:
                    if np.isfinite(c):
                        rhs[s, n] = c
                        n += 1
                    else:
                        whole = False
                if ap[i, j] and np.isfinite(c) and np.isfinite(raws[s, i, j]):
                    aperture = True
        n_ann[s] = n
        full[s] = whole
        if n < 4 or not aperture:
            ok[s] = False


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _effect_sums(var, cys, cxs, half, ann, ap, ok, cuts, raws, coefs, n_ann, mby, mbx, mbl, out):
    """Pass 2 of :func:`model_effects`: each kept star's flux change, its spread and the
    centroid shift, from the model minus its fitted plane (``coefs``); numpy's operations in
    numpy's order, its pairwise sums."""  # pragma: no cover (numba)
    w = 2 * half + 1
    use_var = var.shape[0] > 0
    n_ap = 0
    for i in range(w):
        for j in range(w):
            n_ap += ap[i, j]
    m = np.empty((w, w), np.float64)
    buf = np.empty(w * w, np.float64)
    buf2 = np.empty(w * w, np.float64)
    for s in range(cys.size):
        if not ok[s]:
            continue
        c0, c1, c2 = coefs[s, 0], coefs[s, 1], coefs[s, 2]
        k = 0
        for i in range(w):
            for j in range(w):
                plane = (c0 + c1 * np.float64(i - half)) + c2 * np.float64(j - half)
                m[i, j] = cuts[s, i, j] - plane
                if ap[i, j] and np.isfinite(cuts[s, i, j]) and np.isfinite(raws[s, i, j]):
                    buf[k] = m[i, j]
                    k += 1
        out[s, 0] = -_np_sum(buf, k)
        sigma = np.nan
        if use_var:
            y0, x0 = cys[s] - half, cxs[s] - half
            k = 0
            k2 = 0
            good = 0
            for i in range(w):
                for j in range(w):
                    v = np.float64(var[y0 + i, x0 + j])
                    finite = not np.isnan(v)
                    if ap[i, j]:
                        buf[k] = v if finite else 0.0
                        k += 1
                    if ann[i, j]:
                        buf2[k2] = v if finite else 0.0
                        k2 += 1
                        good += finite
            mean = _np_sum(buf2, k2) / good
            sigma = math.sqrt(_np_sum(buf, k) + np.float64(n_ap * n_ap) * mean / n_ann[s])
        out[s, 1] = sigma
        k = 0
        for i in range(w):
            for j in range(w):
                if not (ap[i, j] and np.isfinite(cuts[s, i, j]) and np.isfinite(raws[s, i, j])):
                    continue
                wv = raws[s, i, j] - mbl[s]
                if wv > 0:
                    buf[k] = wv
                    k += 1
        total = _np_sum(buf, k)
        if total <= 0:
            out[s, 2] = np.nan
            out[s, 3] = np.nan
            continue
        for axis in range(2):
            k = 0
            for i in range(w):
                for j in range(w):
                    if not (ap[i, j] and np.isfinite(cuts[s, i, j]) and np.isfinite(raws[s, i, j])):
                        continue
                    if raws[s, i, j] - mbl[s] > 0:
                        if axis == 0:
                            r = (np.float64(cys[s]) + np.float64(i - half)) - mby[s]
                        else:
                            r = (np.float64(cxs[s]) + np.float64(j - half)) - mbx[s]
                        buf[k] = r * m[i, j]
                        k += 1
            out[s, 2 + axis] = -_np_sum(buf, k) / total


def model_effects(frames: tuple, stars: tuple, windows: tuple, before: np.ndarray) -> np.ndarray:
    """Rows ``(flux change, its sigma, dy, dx)`` of the stars: the windows and their annulus
    values (numba), numpy's ``lstsq`` of each star's plane, then the sums (numba).

    ``frames``: ``(model, raw, variance or None, bad or None)``; ``stars``: ``(cys, cxs,
    ok)``, the window centres and the stars inside the frame with a centroid before (``ok`` is
    cleared for those whose effect cannot be computed; their rows are meaningless);
    ``windows``: ``(half, annulus mask, aperture mask, design)``, ``design`` the whole
    annulus's ``[1, dy, dx]`` (a star with non-finite annulus values gets its own);
    ``before``: each star's ``(y, x, annulus median)`` measured on the raw light.
    """
    img, src, var, bad = frames
    cys, cxs, ok = stars
    half, ann, ap, design = windows
    n, w = cys.size, 2 * half + 1
    cuts = np.empty((n, w, w), np.float64)
    raws = np.empty((n, w, w), np.float64)
    rhs = np.empty((n, design.shape[0]), np.float64)
    n_ann = np.zeros(n, np.int64)
    full = np.zeros(n, np.bool_)
    bad = np.zeros((0, 0), np.bool_) if bad is None else np.asarray(bad, np.bool_)
    _effect_windows(img, src, bad, cys, cxs, half, ann, ap, ok, cuts, raws, rhs, n_ann, full)
    coefs = np.zeros((n, 3), np.float64)
    dy, dx = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float64)
    for s in np.flatnonzero(ok):
        a = design
        if not full[s]:
            a_ok = ann & np.isfinite(cuts[s])
            a = np.column_stack([np.ones(n_ann[s]), dy[a_ok], dx[a_ok]])
        coefs[s] = np.linalg.lstsq(a, rhs[s, : n_ann[s]], rcond=None)[0]
    out = np.full((n, 4), np.nan)
    var = np.zeros((0, 0), np.float32) if var is None else var
    y, x, level = before[:, 0], before[:, 1], before[:, 2]
    _effect_sums(var, cys, cxs, half, ann, ap, ok, cuts, raws, coefs, n_ann, y, x, level, out)
    return out
