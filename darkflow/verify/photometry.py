"""Small aperture photometry for integrity checks: star detection, centroids, annulus background.

Not a photometry package: just enough to prove that dark subtraction removed structured noise
without removing signal. :func:`detect_stars` finds isolated, unsaturated, extended sources;
:func:`measure` gives each one's centroid, annulus background (median and robust scatter) and
background-subtracted aperture flux on an image; :func:`compare_photometry` measures the same
stars before (raw) and after (calibrated) calibration, star by star, and
:func:`flux_change_test` / :func:`centroid_shift_test` turn the pairs into tests with their own
spread.

A correct dark model is smooth at the scale of a star once its hot pixels are gone, so the
centroids agree to a small fraction of a pixel and the fluxes to well under a percent; a master
holding stars (a light among the darks, light reaching the sensor through a gap) removes flux,
and one with wrongly scaled hot pixels moves the centroids of stars that sit on them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from darkflow.exceptions import ConfigError
from darkflow.stats import robust_std

__all__ = [
    "PairTest",
    "PhotometryComparison",
    "Star",
    "StarMeasurement",
    "centroid_shift_test",
    "compare_photometry",
    "detect_stars",
    "flux_change_test",
    "measure",
]


@dataclass(frozen=True)
class Star:
    """A detected star: position of its peak (pixels), peak and box signal above background."""

    y: float
    x: float
    peak: float
    signal: float
    npix: int


@dataclass(frozen=True)
class StarMeasurement:
    """One star measured on one image (NaN when it cannot be measured)."""

    y: float  # centroid
    x: float
    flux: float  # aperture sum minus annulus median times aperture area
    annulus_median: float
    annulus_sigma: float
    annulus_n: int


def _robust_sigma(values: np.ndarray) -> float:
    return robust_std(values, min_size=3)


def detect_stars(
    image: np.ndarray,
    *,
    background: np.ndarray | float | None = None,
    sigma: np.ndarray | float | None = None,
    threshold: float = 5.0,
    min_pixels: int = 5,
    border: int = 12,
    isolation_px: float = 12.0,
    saturation: float | None = None,
    raw: np.ndarray | None = None,
    max_stars: int = 200,
) -> list[Star]:
    """Isolated, unsaturated, extended sources of ``image``, brightest first.

    A 3x3 box-smoothed image ``threshold`` times its noise above ``background`` marks source
    regions (connected pixels, at least ``min_pixels``). A region is a star when its peak pixel
    holds less than half the 3x3 signal around it (hot pixels and most cosmic rays hold all of
    it), it lies ``border`` pixels inside the frame, no other region peaks within
    ``isolation_px`` and no pixel of it (in ``raw`` when given) reaches ``saturation``.

    Parameters
    ----------
    image
        Frame to search (NaN allowed).
    background
        Background level (scalar or map); the median by default.
    sigma
        Per-pixel noise (scalar or map); the robust scatter of ``image - background`` by default.
    """
    img = np.asarray(image)
    if img.ndim != 2:
        raise ConfigError(f"detect_stars needs a 2-D image, got shape {img.shape}")
    bg, sig = background, sigma
    if bg is None or sig is None:
        img = img.astype(np.float64)
        finite = np.isfinite(img)
        if not finite.any():
            return []
        bg = np.nanmedian(img) if bg is None else bg
        if sig is None:
            sig = _robust_sigma(np.where(finite, img - bg, 0.0)[finite])
    from darkflow.stats._detect import detection_maps

    # the residual, its 3x3 box mean and the threshold in one pass (numba; the twin is the
    # former numpy/scipy code, the same values)
    resid, box, det, n_finite = detection_maps(img, bg, sig, threshold)
    if n_finite == 0:
        return []
    labels, n = ndimage.label(det)
    if n == 0:
        return []
    # only regions big enough to be a star are looked at (a light holds thousands of hot-pixel
    # singletons): their slices, peak (first maximum in raster order) and saturation
    from darkflow.stats._stars import local_max5_at, region_peaks

    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    # per region: its peak (first maximum of the box signal in raster order) and the highest
    # finite value of its pixels in ``raw`` (numba, one pass; twin: find_objects and argmax)
    ny, nx = img.shape
    sat_src = None
    if saturation is not None:
        sat_src = raw if raw is not None else np.asarray(img, dtype=np.float64)
    peak_y, peak_x, sat_max = region_peaks(labels, box, sat_src, n)
    # the candidates' tests on arrays (the former per-region loop's comparisons, elementwise)
    labs = np.flatnonzero(sizes[1:] >= min_pixels) + 1
    py = np.asarray(peak_y[labs - 1], dtype=np.int64)
    px = np.asarray(peak_x[labs - 1], dtype=np.int64)
    keep = (border <= py) & (py < ny - border) & (border <= px) & (px < nx - border)
    if saturation is not None:
        keep &= ~(sat_max[labs - 1] >= saturation)
    labs, py, px = labs[keep], py[keep], px[keep]
    signal = box[py, px] * 9.0
    peak_value = resid[py, px]
    with np.errstate(invalid="ignore"):
        # not a single hot pixel or a cosmic-ray hit (NaN fails both, as before)
        keep = (signal > 0) & ~(peak_value >= 0.5 * signal)
    py, px, peak_value, signal, labs = (a[keep] for a in (py, px, peak_value, signal, labs))
    if not py.size:
        return []
    # isolation against every local maximum above the threshold (blends have two in one
    # region; rejected sources such as saturated neighbours count too)
    from scipy.spatial import cKDTree

    # det & (box == ndimage.maximum_filter(box, 5, mode="nearest")), looked at on det only
    ys, xs = np.nonzero(det)
    peak = local_max5_at(box, ys, xs)
    tree = cKDTree(np.column_stack([ys[peak], xs[peak]]).astype(np.float64))
    near = tree.query_ball_point(
        np.column_stack([py, px]).astype(np.float64),
        r=np.nextafter(isolation_px, 0.0),
        return_length=True,
    )  # strictly closer than isolation_px
    # the isolated candidates only become stars, the brightest ``max_stars`` of them (a
    # stable sort of the signals, which are positive and not NaN: the order among equal
    # signals is the candidates' raster order, as the former sort of every candidate gave)
    alone = np.asarray(near) <= 1
    py, px, peak_value, signal, labs = (a[alone] for a in (py, px, peak_value, signal, labs))
    first = np.argsort(-signal, kind="stable")[:max_stars]
    return [
        Star(
            float(py[i]), float(px[i]), float(peak_value[i]), float(signal[i]), int(sizes[labs[i]])
        )
        for i in first
    ]


def _fill(cut: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """``cut`` with ``bad`` pixels replaced by the median of their good 3x3 neighbours."""
    from darkflow.verify._photkernels import fill_bad  # numba; twin: the former numpy code

    return fill_bad(cut, bad)


def measure(
    image: np.ndarray,
    stars: list[Star],
    *,
    r_aperture: float = 4.0,
    r_inner: float = 7.0,
    r_outer: float = 11.0,
    bad: np.ndarray | None = None,
) -> list[StarMeasurement]:
    """Centroid, annulus background and aperture flux of each star on ``image``.

    The annulus (``r_inner`` .. ``r_outer`` around the detected peak) gives the local
    background: median and robust sigma. The centroid is the first moment of the
    background-subtracted values (negative ones set to 0) within ``r_aperture``, iterated once
    around the new centre; the flux sums background-subtracted values within ``r_aperture`` of
    the detected peak (the same pixels for every image, so fluxes compare directly). Pixels
    flagged in ``bad`` (e.g. hot pixels) are replaced by the median of their good neighbours
    first, so they weigh the same in every image measured with the same mask.
    """
    if not 0 < r_aperture < r_inner < r_outer:
        raise ConfigError("need 0 < r_aperture < r_inner < r_outer")
    img = np.asarray(image)  # float64 cut-outs: the whole frame is never converted
    if bad is not None and bad.shape != img.shape:
        raise ConfigError(f"bad-pixel mask shape {bad.shape} != image shape {img.shape}")
    half = math.ceil(r_outer)
    dy, dx = np.mgrid[-half : half + 1, -half : half + 1]
    rr = np.hypot(dy, dx)
    ann = (rr >= r_inner) & (rr <= r_outer)
    ap = rr <= r_aperture
    from darkflow.stats._common import MAD_TO_STD
    from darkflow.verify._photkernels import measure_windows

    # every star's window in one numba call (the twin below is the former loop: the same
    # medians, numpy's pairwise sums, the same values)
    rows = measure_windows(
        img,
        bad,
        np.array([round(s.y) for s in stars], dtype=np.int64),
        np.array([round(s.x) for s in stars], dtype=np.int64),
        half,
        r_aperture,
        ann,
        ap,
        MAD_TO_STD,
    )
    if rows is None:
        return _measure_reference(img, stars, r_aperture, ann, ap, half, bad)
    return [
        StarMeasurement(float(y), float(x), float(f), float(m), float(s), int(n))
        for y, x, f, m, s, n in rows
    ]


def _measure_reference(
    img: np.ndarray,
    stars: list[Star],
    r_aperture: float,
    ann: np.ndarray,
    ap: np.ndarray,
    half: int,
    bad: np.ndarray | None,
) -> list[StarMeasurement]:
    """numpy twin of :func:`measure`'s kernel (its former loop over the stars)."""
    ny, nx = img.shape
    dy, dx = np.mgrid[-half : half + 1, -half : half + 1]
    out = []
    for s in stars:
        cy, cx = round(s.y), round(s.x)
        if not (half <= cy < ny - half and half <= cx < nx - half):
            out.append(StarMeasurement(math.nan, math.nan, math.nan, math.nan, math.nan, 0))
            continue
        cut = img[cy - half : cy + half + 1, cx - half : cx + half + 1].astype(np.float64)
        if bad is not None:
            bad_cut = bad[cy - half : cy + half + 1, cx - half : cx + half + 1]
            if bad_cut.any():
                cut = _fill(cut, bad_cut)
        av = cut[ann]
        av = av[np.isfinite(av)]
        med = float(np.median(av)) if av.size else math.nan
        sig = _robust_sigma(av)
        flux = float(np.nansum(cut[ap] - med))
        yc, xc = float(cy), float(cx)
        for _ in range(2):
            w = np.where(np.hypot(dy + cy - yc, dx + cx - xc) <= r_aperture, cut - med, 0.0)
            w = np.where(np.isfinite(w) & (w > 0), w, 0.0)
            total = float(w.sum())
            if total <= 0:
                yc = xc = math.nan
                break
            yc = cy + float((w * dy).sum()) / total
            xc = cx + float((w * dx).sum()) / total
        out.append(StarMeasurement(yc, xc, flux, med, sig, int(av.size)))
    return out


@dataclass(frozen=True)
class PhotometryComparison:
    """The same stars measured before and after calibration.

    Summaries over the stars (medians) and, per star kept (``n_stars``, in the order of the
    star list), the pairs the tests use: ``dy``/``dx`` (centroid after minus before, px),
    ``flux_before`` (ADU), ``flux_change`` (after minus before, ADU) and ``flux_change_sigma``
    (its 1-sigma spread from the dark model's noise; NaN without a model variance).
    """

    n_stars: int
    centroid_shift_px: float  # median |centroid after - centroid before|
    centroid_shift_p90_px: float
    flux_ratio: float  # median flux after / flux before
    flux_ratio_scatter: float  # robust sigma of the flux ratios
    annulus_level_before: float  # median annulus background, ADU
    annulus_level_after: float
    annulus_noise_ratio: float  # median annulus sigma after / before (< 1: structure removed)
    negative_annulus_frac: float  # stars whose annulus background is below zero after
    dy: tuple[float, ...] = ()
    dx: tuple[float, ...] = ()
    flux_before: tuple[float, ...] = ()
    flux_change: tuple[float, ...] = ()
    flux_change_sigma: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict of JSON values."""
        return asdict(self)


@dataclass(frozen=True)
class _ModelEffect:
    flux: float  # the star's flux change: minus what the model holds above its local plane
    flux_sigma: float
    dy: float  # the centroid shift that subtracting the model causes (px)
    dx: float


def _model_effect(
    raw: np.ndarray,
    model: np.ndarray,
    variance: np.ndarray | None,
    stars: list[Star],
    before: list[StarMeasurement],
    bad: np.ndarray | None,
    r_aperture: float = 4.0,
    r_inner: float = 7.0,
    r_outer: float = 11.0,
) -> list[_ModelEffect | None]:
    """What subtracting ``model`` does to each star, from the model alone (linearised).

    The model in the star's window, bad pixels filled as in :func:`measure`, minus the plane
    fitted to it in the annulus (a level and a gradient such as amp glow: removing them is
    calibration, not a change of the star): ``m``. Flux change ``-sum(m in aperture)``, spread
    ``sqrt(sum(var in aperture) + n_aperture**2 * mean(var in annulus) / n_annulus)``;
    centroid shift ``-sum((r - c) m) / F`` over the aperture pixels where the raw star is above
    its annulus median (its weights, ``F`` their sum, ``c`` its centroid before). The light's
    own noise is in both measurements alike and cancels.

    Two numba passes around numpy's ``lstsq`` of each star's plane (the windows and the
    annulus values; then the sums, numpy's pairwise ones): equal to
    :func:`_model_effect_reference`, the former loop (tests/test_photometry.py).
    """
    from darkflow.verify._photkernels import model_effects

    img, src = np.asarray(model), np.asarray(raw)
    var = None if variance is None else np.asarray(variance)
    arrays = [img, src] + [a for a in (var, bad) if a is not None]
    if any(a.ndim != 2 or a.shape != img.shape or a.dtype.kind not in "fiub" for a in arrays):
        radii = {"r_aperture": r_aperture, "r_inner": r_inner, "r_outer": r_outer}
        return _model_effect_reference(raw, model, variance, stars, before, bad, **radii)
    ny, nx = img.shape
    half = math.ceil(r_outer)
    dy, dx = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float64)
    rr = np.hypot(dy, dx)
    ann, ap = (rr >= r_inner) & (rr <= r_outer), rr <= r_aperture
    cys = np.array([round(s.y) for s in stars], dtype=np.int64)
    cxs = np.array([round(s.x) for s in stars], dtype=np.int64)
    ok = np.array(
        [
            half <= cy < ny - half and half <= cx < nx - half and math.isfinite(mb.y)
            for cy, cx, mb in zip(cys, cxs, before, strict=True)
        ],
        dtype=np.bool_,
    )
    design = np.column_stack([np.ones(np.count_nonzero(ann)), dy[ann], dx[ann]])
    levels = np.array([[mb.y, mb.x, mb.annulus_median] for mb in before], np.float64)
    found = model_effects(
        (img, src, var, bad), (cys, cxs, ok), (half, ann, ap, design), levels.reshape(-1, 3)
    )
    return [
        _ModelEffect(float(f), float(sg), float(sy), float(sx)) if kept else None
        for kept, (f, sg, sy, sx) in zip(ok, found, strict=True)
    ]


def _model_effect_reference(
    raw: np.ndarray, model: np.ndarray, variance: np.ndarray | None, *args: Any, **radii: float
) -> list[_ModelEffect | None]:
    """numpy twin of :func:`_model_effect` (its former loop over the stars), the same
    arguments."""
    stars, before, bad = args
    r_aperture, r_inner, r_outer = (
        radii.get(k, d) for k, d in (("r_aperture", 4.0), ("r_inner", 7.0), ("r_outer", 11.0))
    )
    # float64 cut-outs: the whole frames are never converted
    img, src = np.asarray(model), np.asarray(raw)
    var = None if variance is None else np.asarray(variance)
    ny, nx = img.shape
    half = math.ceil(r_outer)
    dy, dx = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float64)
    rr = np.hypot(dy, dx)
    ann, ap = (rr >= r_inner) & (rr <= r_outer), rr <= r_aperture
    n_ap = int(np.count_nonzero(ap))
    out: list[_ModelEffect | None] = []
    for s, mb in zip(stars, before, strict=True):
        cy, cx = round(s.y), round(s.x)
        if not (half <= cy < ny - half and half <= cx < nx - half) or not math.isfinite(mb.y):
            out.append(None)
            continue
        win = (slice(cy - half, cy + half + 1), slice(cx - half, cx + half + 1))
        cut, raw_cut = img[win].astype(np.float64), src[win].astype(np.float64)
        if bad is not None and bad[win].any():
            cut, raw_cut = _fill(cut, bad[win]), _fill(raw_cut, bad[win])
        a_ok = ann & np.isfinite(cut)
        p_ok = ap & np.isfinite(cut) & np.isfinite(raw_cut)
        if np.count_nonzero(a_ok) < 4 or not p_ok.any():
            out.append(None)
            continue
        design = np.column_stack([np.ones(np.count_nonzero(a_ok)), dy[a_ok], dx[a_ok]])
        coef, *_ = np.linalg.lstsq(design, cut[a_ok], rcond=None)
        m = cut - (coef[0] + coef[1] * dy + coef[2] * dx)
        flux = -float(m[p_ok].sum())
        sigma = math.nan
        if var is not None:
            v = var[win].astype(np.float64)
            sigma = math.sqrt(
                float(np.nansum(v[ap])) + n_ap * n_ap * float(np.nanmean(v[ann])) / a_ok.sum()
            )
        w = np.where(p_ok, raw_cut - mb.annulus_median, 0.0)
        sel = p_ok & (w > 0)
        total = float(w[sel].sum())
        if total <= 0:
            out.append(_ModelEffect(flux, sigma, math.nan, math.nan))
            continue
        ry, rx = cy + dy - mb.y, cx + dx - mb.x
        shift_y = -float((ry[sel] * m[sel]).sum()) / total
        shift_x = -float((rx[sel] * m[sel]).sum()) / total
        out.append(_ModelEffect(flux, sigma, shift_y, shift_x))
    return out


def compare_photometry(
    before: np.ndarray,
    after: np.ndarray,
    stars: list[Star],
    *,
    after_sigma: float | None = None,
    bad: np.ndarray | None = None,
    model: np.ndarray | None = None,
    model_variance: np.ndarray | None = None,
    **radii: float,
) -> PhotometryComparison:
    """Measure ``stars`` on the raw (``before``) and calibrated (``after``) frame and compare.

    The *same* stars are measured on both frames, star by star. ``bad`` masks pixels (hot
    pixels of the dark model) in both measurements: dark structure that calibration is *meant*
    to remove then does not count as a change, while structure at the scale of a star (stars or
    light in the darks) still does. ``after_sigma`` (the typical per-pixel uncertainty after
    calibration; the annulus scatter by default) sets what "below zero" means for an annulus
    background: more than three standard errors of its median.

    With ``model`` (the dark model subtracted, ``before - after``) each star's flux and
    centroid changes are computed from the model alone (:func:`_model_effect`, linearised: what
    the model holds in the aperture beyond its local level and gradient); the light's own noise
    is the same in both measurements and cancels. ``model_variance`` gives the flux change's
    spread. Without a model the changes are ``after - before`` as measured.
    """
    b = measure(before, stars, bad=bad, **radii)
    a = measure(after, stars, bad=bad, **radii)
    effects = (
        _model_effect(before, model, model_variance, stars, b, bad, **radii)
        if model is not None
        else None
    )
    shifts, ratios, noise, lev_b, lev_a, negative = [], [], [], [], [], []
    dys, dxs, fb, dfs, sds = [], [], [], [], []
    for k, (mb, ma) in enumerate(zip(b, a, strict=True)):
        if not all(math.isfinite(v) for v in (mb.y, mb.x, ma.y, ma.x, mb.flux, ma.flux)):
            continue
        if mb.flux <= 0:
            continue
        if effects is None:
            change, sigma, sy, sx = ma.flux - mb.flux, math.nan, ma.y - mb.y, ma.x - mb.x
        elif effects[k] is None:
            continue
        else:
            e = effects[k]
            change, sigma, sy, sx = e.flux, e.flux_sigma, e.dy, e.dx
        if not all(math.isfinite(v) for v in (change, sy, sx)):
            continue
        dys.append(sy)
        dxs.append(sx)
        fb.append(mb.flux)
        dfs.append(change)
        sds.append(sigma)
        shifts.append(math.hypot(sy, sx))
        ratios.append((mb.flux + change) / mb.flux)
        if mb.annulus_sigma > 0:
            noise.append(ma.annulus_sigma / mb.annulus_sigma)
        lev_b.append(mb.annulus_median)
        lev_a.append(ma.annulus_median)
        # below zero by more than 3 standard errors of the annulus median
        err = 1.2533 * (after_sigma or ma.annulus_sigma) / math.sqrt(max(ma.annulus_n, 1))
        negative.append(ma.annulus_median < -3.0 * err)
    n = len(shifts)
    if n == 0:
        nan = math.nan
        return PhotometryComparison(0, nan, nan, nan, nan, nan, nan, nan, nan)
    return PhotometryComparison(
        n_stars=n,
        centroid_shift_px=float(np.median(shifts)),
        centroid_shift_p90_px=float(np.percentile(shifts, 90)),
        flux_ratio=float(np.median(ratios)),
        flux_ratio_scatter=_robust_sigma(np.array(ratios)),
        annulus_level_before=float(np.median(lev_b)),
        annulus_level_after=float(np.median(lev_a)),
        annulus_noise_ratio=float(np.median(noise)) if noise else math.nan,
        negative_annulus_frac=float(np.count_nonzero(negative)) / n,
        dy=tuple(dys),
        dx=tuple(dxs),
        flux_before=tuple(fb),
        flux_change=tuple(dfs),
        flux_change_sigma=tuple(sds),
    )


@dataclass(frozen=True)
class PairTest:
    """A test on the star pairs: ``value`` (the statistic), ``spread`` (its 1-sigma spread when
    all is well), ``deviate`` (its tail probability as a standard-normal deviate, upper side),
    ``n`` (stars used) and ``dof`` (degrees of freedom of the spread)."""

    value: float
    spread: float
    deviate: float
    n: int
    dof: float


def flux_change_test(comparison: PhotometryComparison, *, clip: float = 5.0) -> PairTest:
    """Weighted mean relative flux change of the stars, with its spread (two-sided deviate).

    Each star's ``delta = flux_change / flux_before`` has the spread ``sigma`` of its flux
    change over its flux (the dark model's noise in its aperture and annulus); without that
    spread (no model variance), ``1 / flux`` weights and the scatter alone. The weighted mean's
    spread is ``1 / sqrt(sum w)`` scaled by the Birge ratio ``sqrt(chi2 / (n - 1))`` when the
    stars scatter more than their errors say (fixed-pattern structure of the model that the
    raw light held too), with ``n - 1`` degrees of freedom; stars beyond ``clip`` of those
    spreads are left out (one pass). ``value`` is ``1 + mean``: the flux ratio after/before.
    """
    fb = np.asarray(comparison.flux_before, dtype=np.float64)
    df = np.asarray(comparison.flux_change, dtype=np.float64)
    sd = np.asarray(comparison.flux_change_sigma, dtype=np.float64)
    ok = np.isfinite(fb) & np.isfinite(df) & (fb > 0)
    if sd.size == fb.size and np.isfinite(sd[ok]).all() and (sd[ok] > 0).all():
        weights_known = True
    else:
        weights_known = False
        sd = 1.0 / np.where(fb > 0, np.sqrt(fb), np.inf)
    delta, sig = df[ok] / fb[ok], sd[ok] / fb[ok]
    keep = np.ones(delta.size, dtype=bool)
    mean = spread = math.nan
    for _ in range(2):
        n = int(np.count_nonzero(keep))
        if n < 2:
            return PairTest(math.nan, math.nan, math.nan, n, 0.0)
        w = 1.0 / sig[keep] ** 2
        mean = float(np.sum(w * delta[keep]) / np.sum(w))
        chi2 = float(np.sum(w * (delta[keep] - mean) ** 2))
        birge = chi2 / (n - 1)
        scale = max(birge, 1.0) if weights_known else birge
        spread = math.sqrt(scale / float(np.sum(w)))
        new = np.abs(delta - mean) <= clip * sig * math.sqrt(max(scale, 1e-300))
        if np.array_equal(new, keep) or np.count_nonzero(new) < 2:
            break
        keep = new
    n = int(np.count_nonzero(keep))
    dev = _t_deviate(abs(mean) / spread, n - 1) if spread > 0 else math.nan
    return PairTest(1.0 + mean, spread, dev, n, float(n - 1))


def _t_deviate(t_abs: float, dof: float) -> float:
    """Two-sided Student-t tail of ``|t|`` as the deviate of the same two-sided normal tail."""
    from darkflow.stats._dist import norm_isf, t_sf  # scipy.stats' forms, without its import

    if not math.isfinite(t_abs):
        return math.inf
    p = 2.0 * float(t_sf(t_abs, dof))
    return norm_isf(max(p, 1e-300) / 2.0)


def centroid_shift_test(comparison: PhotometryComparison) -> PairTest:
    """Whether the centroids moved *together*: Hotelling's T² of the mean shift vector.

    The centroid shifts a correct dark model causes are the noise and fixed pattern it holds at
    each star: zero on average, in no common direction. A model holding a dithered copy of the
    field (a light among the darks) moves every star the same way. ``T² = n m^T S^-1 m`` (``m``
    the mean shift vector, ``S`` the stars' shift covariance) gives
    ``F = T² (n - 2) / (2 (n - 1)) ~ F(2, n - 2)``; ``value`` is ``|m|`` in pixels, ``spread``
    its 1-sigma scale ``sqrt(trace(S) / (2 n))``, ``deviate`` the normal deviate of the F tail.
    """
    d = np.column_stack([comparison.dy, comparison.dx]).astype(np.float64)
    d = d[np.isfinite(d).all(axis=1)] if d.size else np.zeros((0, 2))
    n = d.shape[0]
    if n < 4:
        return PairTest(math.nan, math.nan, math.nan, n, 0.0)
    m = d.mean(axis=0)
    cov = np.cov(d, rowvar=False)
    spread = math.sqrt(max(float(np.trace(cov)), 0.0) / (2.0 * n))
    try:
        t2 = float(n * m @ np.linalg.solve(cov, m))
    except np.linalg.LinAlgError:
        return PairTest(float(np.hypot(*m)), spread, math.nan, n, float(n - 2))
    from darkflow.stats._dist import f_sf, norm_isf  # scipy.stats' forms, without its import

    stat = t2 * (n - 2) / (2.0 * (n - 1))
    p = f_sf(stat, 2, n - 2) if math.isfinite(stat) else 0.0
    return PairTest(float(np.hypot(*m)), spread, norm_isf(max(p, 1e-300)), n, float(n - 2))
