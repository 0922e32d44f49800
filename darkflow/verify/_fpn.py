"""Spatial-frequency bands of fixed-pattern noise, and hot-pixel scale fits.

An image (a master's dark signal, the difference of two masters, the background residual of a
calibrated light) is split into the frequency bands where calibration errors live:

* **row band** (power on the ``k_x = 0`` axis): structure constant along rows, i.e. the row
  profile. Its white part is measured robustly: the interquartile mean of every row (as robust
  as a median, but continuous on integer data saved in steps of a few ADU, where a median snaps
  to the lattice), then the variance of first differences of that profile (smooth trends
  cancel), from the MAD so a few defect rows do not dominate. Its noise expectation comes from
  the same image: the profiles of the even and of the odd columns of each row share any row
  pattern, so a quarter of the variance of their difference is what the row profile scatters
  by noise alone (whatever the distribution of the values in a row);
* **column band** (``k_y = 0``): the same on columns (bias column pattern, readout mode);
* **low-frequency band** (``|k| < 1 / tile``): medians of ``tile x tile`` tiles (glow, stray
  light, gradients); reported as a peak-to-peak (5th to 95th percentile) amplitude in ADU,
  optionally after removing a scaled reference structure;
* **high band** (pixel scale): each pixel minus the median of its 8 neighbours (hot pixels,
  pixel noise), summarised by its robust sigma.

The row/column energies are ratios to that noise expectation: 1 for a pattern-free image. Medians make every band robust to hot
pixels and cosmic rays, which stay in the high band.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from darkflow.stats import robust_std
from darkflow.verify._residuals import NEIGHBOUR_VAR_FACTOR, nanmedian_along, neighbour_median

__all__ = [
    "BandEnergies",
    "band_energies",
    "fit_candidates",
    "hot_scale_fit",
    "iq_mean",
    "row_window",
    "tile_medians",
]


def row_window(shape: tuple[int, int], max_pixels: int) -> slice:
    """A deterministic central band of rows holding at most ``max_pixels`` pixels."""
    ny, nx = shape
    rows = max(8, min(ny, max_pixels // max(nx, 1)))
    start = (ny - rows) // 2
    return slice(start, start + rows)


def _mad_sigma(values: np.ndarray) -> float:
    return robust_std(values, min_size=3)


def _nanmedian(a: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    if axis is None:
        return float(nanmedian_along(np.ravel(a), 0))
    return nanmedian_along(a, axis)


def iq_mean(a: np.ndarray, axis: int) -> np.ndarray:
    """Interquartile mean along ``axis`` (NaN-aware; all-NaN slices give NaN): the mean of the
    central half of the values. As robust as a median to hot pixels and cosmic rays, but
    continuous: a median of integer data saved in steps of 4 or 16 ADU (or of a master from
    them) snaps to their lattice, and profiles of such medians show a pattern that is not there.
    """
    s = np.sort(np.moveaxis(np.asarray(a, dtype=np.float64), axis, -1), axis=-1)
    n = np.count_nonzero(~np.isnan(s), axis=-1)
    lo, hi = n // 4, n - n // 4
    csum = np.concatenate([np.zeros((*s.shape[:-1], 1)), np.nancumsum(s, axis=-1)], axis=-1)
    top = np.take_along_axis(csum, hi[..., None], axis=-1)[..., 0]
    bottom = np.take_along_axis(csum, lo[..., None], axis=-1)[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (top - bottom) / (hi - lo)
    return np.where(hi > lo, out, np.nan)


@dataclass(frozen=True)
class BandEnergies:
    """Fixed-pattern content of an image by spatial-frequency band (see module docstring)."""

    level: float  # median (ADU): the zero-frequency term
    pixel_sigma: float  # robust sigma of the pixel-scale (high) band, ADU
    row_ratio: float  # white variance of the row profile / white-noise expectation
    column_ratio: float  # the same for the column profile
    row_sigma: float  # robust white rms of the row profile, ADU
    column_sigma: float
    low_amplitude: float  # p95 - p5 of the tile-median map, ADU
    tile: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _profile_white(profile: np.ndarray) -> float:
    """Robust variance of the white part of a 1-D profile (first differences, MAD)."""
    d = np.diff(profile[np.isfinite(profile)])
    s = _mad_sigma(d)
    return s * s / 2.0 if math.isfinite(s) else math.nan


def _split_noise(img: np.ndarray) -> float:
    """Noise variance of the row profile of ``img``: from even- vs odd-column profiles."""
    diff = iq_mean(img[:, 0::2], axis=1) - iq_mean(img[:, 1::2], axis=1)
    s = _mad_sigma(diff)
    return s * s / 4.0 if math.isfinite(s) else math.nan


def tile_medians(image: np.ndarray, tile: int = 32) -> np.ndarray:
    """Median of every whole ``tile x tile`` tile (NaN-aware): the low-frequency band."""
    img = np.asarray(image, dtype=np.float32)
    ny, nx = img.shape
    ty, tx = max(1, ny // tile), max(1, nx // tile)
    t = min(tile, ny, nx)
    grid = img[: ty * t, : tx * t].reshape(ty, t, tx, t).transpose(0, 2, 1, 3)
    return np.asarray(_nanmedian(grid.reshape(ty, tx, t * t), axis=2))


def _low_amplitude(tiles: np.ndarray, reference: np.ndarray | None) -> float:
    """p95 - p5 of the tile map, after removing ``c + g * reference`` (least squares)."""
    ok = np.isfinite(tiles)
    if reference is not None:
        ok &= np.isfinite(reference)
    if np.count_nonzero(ok) < 4:
        return 0.0
    y = tiles[ok].astype(np.float64)
    if reference is not None:
        a = np.column_stack([np.ones(y.size), reference[ok].astype(np.float64)])
        coef, *_ = np.linalg.lstsq(a, y, rcond=None)
        y = y - a @ coef
    return float(np.percentile(y, 95) - np.percentile(y, 5))


def band_energies(
    image: np.ndarray, *, tile: int = 32, low_reference: np.ndarray | None = None
) -> BandEnergies:
    """Fixed-pattern energy of ``image`` (NaN = masked) in the row, column, low and high bands.

    ``low_reference``: an image whose smooth structure may legitimately appear in ``image``
    with any scale (e.g. a previous master's amp glow when the temperature differs): its tile
    map, scaled by least squares (plus a constant), is removed before the low-band amplitude.
    """
    img = np.asarray(image, dtype=np.float32)
    hf = img - neighbour_median(img)
    pix = _mad_sigma(hf)
    pix_var = pix * pix / NEIGHBOUR_VAR_FACTOR if math.isfinite(pix) else math.nan
    row_var = _profile_white(iq_mean(img, axis=1))
    col_var = _profile_white(iq_mean(img, axis=0))
    expect_row = _split_noise(img)
    expect_col = _split_noise(img.T)
    ref = None if low_reference is None else tile_medians(low_reference, tile)
    low = _low_amplitude(tile_medians(img, tile), ref)
    with np.errstate(invalid="ignore", divide="ignore"):
        return BandEnergies(
            level=float(_nanmedian(img)),
            pixel_sigma=math.sqrt(pix_var) if math.isfinite(pix_var) else math.nan,
            row_ratio=float(row_var / expect_row) if expect_row > 0 else math.nan,
            column_ratio=float(col_var / expect_col) if expect_col > 0 else math.nan,
            row_sigma=math.sqrt(row_var) if math.isfinite(row_var) else math.nan,
            column_sigma=math.sqrt(col_var) if math.isfinite(col_var) else math.nan,
            low_amplitude=low,
            tile=tile,
        )


@dataclass(frozen=True)
class ScaleFit:
    """``target_hf ~ alpha * template_hf`` over hot pixels: ``alpha``, its 1-sigma, pixels used.

    ``chi2_red``: the fit's reduced chi-square (scatter of the kept pixels about the fit in
    units of their predicted noise); above 1 the pixels scatter more than predicted (flickering
    hot pixels) and ``sigma`` understates the error of ``alpha`` by its square root.
    ``pixel_rel_noise``: the median over the kept pixels of each pixel's own noise over its
    template excess, i.e. the scale error that moves the typical fitted hot pixel by one
    standard deviation of its noise (NaN when nothing was fitted).
    """

    alpha: float
    sigma: float
    n: int
    chi2_red: float = math.nan
    pixel_rel_noise: float = math.nan

    @property
    def red_chi2(self) -> float:
        """The same as :attr:`chi2_red` (the master gates' name for it)."""
        return self.chi2_red


def fit_candidates(
    template_hf: np.ndarray, sigma: np.ndarray | float, select_sigma: float = 3.0
) -> tuple[np.ndarray, np.ndarray]:
    """The pixels :func:`hot_scale_fit` may select, and the noise of a high-passed pixel.

    ``template_hf``: the template less its neighbours' median; ``sigma``: the target's noise
    per pixel (or one value). A pixel is a candidate where its template excess is finite and
    above ``select_sigma`` times ``sigma x sqrt(NEIGHBOUR_VAR_FACTOR)`` (the high pass's noise).
    """
    s = np.broadcast_to(np.asarray(sigma, dtype=np.float32), template_hf.shape)
    s = s * np.float32(math.sqrt(NEIGHBOUR_VAR_FACTOR))
    with np.errstate(invalid="ignore"):
        return np.isfinite(template_hf) & (s > 0) & (template_hf > select_sigma * s), s


def hot_scale_fit(
    target: np.ndarray,
    template: np.ndarray,
    sigma: np.ndarray | float,
    *,
    mask: np.ndarray | None = None,
    select_sigma: float = 3.0,
    clip: float = 5.0,
    iters: int = 3,
    target_local: np.ndarray | None = None,
    template_local: np.ndarray | None = None,
    robust_start: bool = False,
) -> ScaleFit:
    """How much of the template's pixel-scale pattern (hot pixels) is present in the target.

    Both images are high-passed (minus the median of the 8 neighbours); pixels where the
    template's high band exceeds ``select_sigma`` times the target's noise ``sigma`` (and
    ``mask`` allows) enter a weighted least-squares fit ``target_hf = alpha * template_hf``
    with ``clip``-sigma rejection of outliers (cosmic rays, stars). ``alpha = 0`` means the
    target holds none of the template's hot-pixel pattern. ``target_local`` and
    ``template_local``: their neighbour medians, when the caller already has them.
    ``robust_start``: begin from the median ratio instead of the first weighted fit.
    """
    if target_local is None:
        target_local = neighbour_median(target)
    if template_local is None:
        template_local = neighbour_median(template)
    t_hf = np.asarray(target, np.float32) - target_local
    h_hf = np.asarray(template, np.float32) - template_local
    candidates, s = fit_candidates(h_hf, sigma, select_sigma)
    sel = np.isfinite(t_hf) & candidates
    if mask is not None:
        sel &= mask
    y, x, w = t_hf[sel].astype(np.float64), h_hf[sel].astype(np.float64), s[sel].astype(np.float64)
    keep = np.ones(y.size, dtype=bool)
    if robust_start and y.size >= 5:
        # start from the median ratio: a few very bright template pixels that the target lacks
        # (cosmic rays left in a master of one dark) would otherwise pull the first weighted fit
        # to themselves and clip the real hot pixels as outliers
        start = float(np.median(y / x))
        keep = np.abs(y - start * x) / w <= clip
        if np.count_nonzero(keep) < 5:
            keep = np.ones(y.size, dtype=bool)
    alpha, err = math.nan, math.nan
    for _ in range(iters + 1):
        if np.count_nonzero(keep) < 5:
            return ScaleFit(math.nan, math.nan, int(np.count_nonzero(keep)))
        xx, yy, ww = x[keep], y[keep], 1.0 / w[keep] ** 2
        sxx = float(np.sum(ww * xx * xx))
        alpha = float(np.sum(ww * xx * yy)) / sxx
        err = 1.0 / math.sqrt(sxx)
        resid = np.abs(y - alpha * x) / w
        new_keep = resid <= clip
        if np.array_equal(new_keep, keep):
            break
        keep = new_keep
    n_kept = int(np.count_nonzero(keep))
    chi2 = float(np.sum(resid[keep] ** 2)) / (n_kept - 1) if n_kept > 1 else math.nan
    # ``w`` is the noise of a high-passed pixel; the pixel's own noise is that less the
    # neighbour median's share
    rel = float(np.median(w[keep] / x[keep])) / math.sqrt(NEIGHBOUR_VAR_FACTOR)
    return ScaleFit(alpha, err, n_kept, chi2, rel)
