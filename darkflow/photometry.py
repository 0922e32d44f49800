"""Small aperture photometry for integrity checks: star detection, centroids, annulus background.

Not a photometry package: just enough to prove that dark subtraction removed structured noise
without removing signal. :func:`detect_stars` finds isolated, unsaturated, extended sources;
:func:`measure` gives each one's centroid, annulus background (median and robust scatter) and
background-subtracted aperture flux on an image; :func:`compare_photometry` measures the same
stars before (raw) and after (calibrated) calibration.

A correct dark model is smooth at the scale of a star once its hot pixels are gone, so the
centroids agree to a small fraction of a pixel and the fluxes to well under a percent; a master
holding stars (a light among the darks, light reaching the sensor through a gap) removes flux,
and one with wrongly scaled hot pixels moves the centroids of stars that sit on them.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from darkflow.exceptions import ConfigError
from darkflow.stats import robust_std

__all__ = [
    "PhotometryComparison",
    "Star",
    "StarMeasurement",
    "compare_photometry",
    "detect_stars",
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
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise ConfigError(f"detect_stars needs a 2-D image, got shape {img.shape}")
    finite = np.isfinite(img)
    if not finite.any():
        return []
    bg = np.nanmedian(img) if background is None else background
    resid = np.where(finite, img - bg, 0.0)
    if sigma is None:
        sigma = _robust_sigma(resid[finite])
    sig = np.broadcast_to(np.asarray(sigma, dtype=np.float64), img.shape)
    box = ndimage.uniform_filter(resid, size=3, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        det = box / (sig / 3.0) > threshold
    labels, n = ndimage.label(det)
    if n == 0:
        return []
    # only regions big enough to be a star are looked at (a light holds thousands of hot-pixel
    # singletons): their slices, peak (first maximum in raster order) and saturation
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    objects = ndimage.find_objects(labels)
    ny, nx = img.shape
    sat_src = np.asarray(raw, dtype=np.float64) if raw is not None else img
    cands = []
    for lab in np.flatnonzero(sizes[1:] >= min_pixels) + 1:
        sl = objects[lab - 1]
        region = labels[sl] == lab
        k = int(np.argmax(np.where(region, box[sl], -np.inf)))
        py, px = divmod(k, region.shape[1])
        py, px = py + sl[0].start, px + sl[1].start
        if not (border <= py < ny - border and border <= px < nx - border):
            continue
        if saturation is not None:
            sat_vals = sat_src[sl][region]
            sat_vals = sat_vals[np.isfinite(sat_vals)]
            if sat_vals.size and sat_vals.max() >= saturation:
                continue
        signal = float(box[py, px] * 9.0)
        peak = float(resid[py, px])
        if not signal > 0 or peak >= 0.5 * signal:  # a single hot pixel or a cosmic-ray hit
            continue
        cands.append(Star(float(py), float(px), peak, signal, int(sizes[lab])))
    if not cands:
        return []
    # isolation against every local maximum above the threshold (blends have two in one
    # region; rejected sources such as saturated neighbours count too)
    from scipy.spatial import cKDTree

    local_max = det & (box == ndimage.maximum_filter(box, size=5, mode="nearest"))
    tree = cKDTree(np.argwhere(local_max).astype(np.float64))
    near = tree.query_ball_point(
        [(s.y, s.x) for s in cands], r=np.nextafter(isolation_px, 0.0), return_length=True
    )  # strictly closer than isolation_px
    stars = [s for s, k in zip(cands, near, strict=True) if k <= 1]
    stars.sort(key=lambda s: -s.signal)
    return stars[:max_stars]


def _fill(cut: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """``cut`` with ``bad`` pixels replaced by the median of their good 3x3 neighbours."""
    out = cut.copy()
    ny, nx = cut.shape
    padded = np.full((ny + 2, nx + 2), np.nan)
    padded[1:-1, 1:-1] = np.where(bad, np.nan, cut)
    ys, xs = np.nonzero(bad)
    window = np.stack([padded[ys + 1 + dy, xs + 1 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # no good neighbour: NaN
        out[ys, xs] = np.nanmedian(window, axis=0)
    return out


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
    img = np.asarray(image, dtype=np.float64)
    ny, nx = img.shape
    if bad is not None and bad.shape != img.shape:
        raise ConfigError(f"bad-pixel mask shape {bad.shape} != image shape {img.shape}")
    half = math.ceil(r_outer)
    dy, dx = np.mgrid[-half : half + 1, -half : half + 1]
    rr = np.hypot(dy, dx)
    ann = (rr >= r_inner) & (rr <= r_outer)
    ap = rr <= r_aperture
    out = []
    for s in stars:
        cy, cx = round(s.y), round(s.x)
        if not (half <= cy < ny - half and half <= cx < nx - half):
            out.append(StarMeasurement(math.nan, math.nan, math.nan, math.nan, math.nan, 0))
            continue
        cut = img[cy - half : cy + half + 1, cx - half : cx + half + 1]
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
    """The same stars measured before and after calibration (medians over stars)."""

    n_stars: int
    centroid_shift_px: float  # median |centroid after - centroid before|
    centroid_shift_p90_px: float
    flux_ratio: float  # median flux after / flux before
    flux_ratio_scatter: float  # robust sigma of the flux ratios
    annulus_level_before: float  # median annulus background, ADU
    annulus_level_after: float
    annulus_noise_ratio: float  # median annulus sigma after / before (< 1: structure removed)
    negative_annulus_frac: float  # stars whose annulus background is below zero after

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_photometry(
    before: np.ndarray,
    after: np.ndarray,
    stars: list[Star],
    *,
    after_sigma: float | None = None,
    bad: np.ndarray | None = None,
    **radii: float,
) -> PhotometryComparison:
    """Measure ``stars`` on the raw (``before``) and calibrated (``after``) frame and compare.

    ``bad`` masks pixels (hot pixels of the dark model) in both measurements: dark structure
    that calibration is *meant* to remove then does not count as a change, while structure at
    the scale of a star (stars or light in the darks) still does. ``after_sigma`` (the typical
    per-pixel uncertainty after calibration; the annulus scatter by default) sets what "below
    zero" means for an annulus background: more than three standard errors of its median.
    """
    b = measure(before, stars, bad=bad, **radii)
    a = measure(after, stars, bad=bad, **radii)
    shifts, ratios, noise, lev_b, lev_a, negative = [], [], [], [], [], []
    for mb, ma in zip(b, a, strict=True):
        if not all(math.isfinite(v) for v in (mb.y, mb.x, ma.y, ma.x, mb.flux, ma.flux)):
            continue
        if mb.flux <= 0:
            continue
        shifts.append(math.hypot(ma.y - mb.y, ma.x - mb.x))
        ratios.append(ma.flux / mb.flux)
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
    )
