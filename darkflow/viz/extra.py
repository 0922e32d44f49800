"""More dashboard builders for the teaching notebooks and the explorer widgets.

Same three layers as :mod:`darkflow.viz`: ``prepare_*`` / plain helpers return numbers and tidy
DataFrames (numpy and pandas only), ``make_*`` build holoviews elements from them (holoviews is
imported lazily), and notebooks and widgets lay them out.

Fixed-pattern spectra
---------------------
A fixed pattern (column offsets, row banding) shows in the *profiles* of an image: the mean of
every column (or row), after clipping outliers (cosmic rays, hot pixels) at 4 robust sigma
per line. For pure pixel noise of variance ``s²`` the column profile has white noise
of variance ``s² / ny``, so its power spectrum (``|rfft|² / n``) is flat at that level, the
**white floor**. A column pattern lifts the whole spectrum (random offsets) or adds peaks
(periodic ones). :func:`pattern_excess` is the ratio of the profile's variance to the floor: ~1
for a frame without a pattern. The per-pixel noise comes from the double difference of
neighbouring pixels, which cancels both row and column offsets (:func:`pixel_noise`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from darkflow.exceptions import IncompatibleFramesError
from darkflow.stats import mad_std, robust_std
from darkflow.viz._common import _hv

__all__ = [
    "Difference",
    "block_mean",
    "fixed_pattern_spectra",
    "make_difference_view",
    "make_image",
    "make_spectra",
    "make_z_histogram",
    "pattern_excess",
    "pixel_noise",
    "prepare_difference",
    "robust_limits",
]


# ----------------------------------------------------------------------------- numbers
def _robust_std(values: np.ndarray) -> float:
    return robust_std(values)


def pixel_noise(image: np.ndarray) -> float:
    """Per-pixel white noise (robust), free of row and column offsets.

    The double difference ``x[y+1,x+1] - x[y+1,x] - x[y,x+1] + x[y,x]`` cancels any offset shared
    by a row or a column and has four times the pixel variance.
    """
    a = np.asarray(image, dtype=np.float64)
    if a.ndim != 2 or min(a.shape) < 2:
        raise IncompatibleFramesError(
            f"pixel_noise needs a 2-D image of at least 2x2, got {a.shape}"
        )
    dd = a[1:, 1:] - a[1:, :-1] - a[:-1, 1:] + a[:-1, :-1]
    return _robust_std(dd) / 2.0


def _profile(
    image: np.ndarray, axis: int, mask: np.ndarray | None, clip: float = 4.0
) -> np.ndarray:
    """Mean along ``axis`` after masking and clipping outliers (cosmics, hot pixels) per line."""
    a = np.asarray(image, dtype=np.float64)
    if mask is not None:
        a = np.where(mask, np.nan, a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-masked line stays NaN
        med = np.nanmedian(a, axis=axis, keepdims=True)
        sig = mad_std(a, center=med, axis=axis, ignore_nan=True, keepdims=True)
        a = np.where(np.abs(a - med) > clip * np.maximum(sig, 1e-12), np.nan, a)
        prof = np.nanmean(a, axis=axis)
    if np.isnan(prof).any():
        fill = np.nanmedian(prof) if np.isfinite(prof).any() else 0.0
        prof = np.where(np.isnan(prof), fill, prof)
    return prof


def _spectrum(profile: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = profile - profile.mean()
    power = np.abs(np.fft.rfft(p)) ** 2 / p.size
    freq = np.fft.rfftfreq(p.size)
    return freq[1:], power[1:]  # drop the mean


def fixed_pattern_spectra(
    image: np.ndarray, *, mask: np.ndarray | None = None, label: str = ""
) -> pd.DataFrame:
    """Power spectra of the column and row profiles of ``image``, with their white floors.

    Parameters
    ----------
    image
        2-D frame (a bias, a master, a calibrated light); not modified.
    mask
        Pixels to leave out of the profiles (stars, saturated cores), same shape.
    label
        Stored in the ``label`` column, to overlay several images.

    Returns
    -------
    pandas.DataFrame
        ``label, axis ("column"|"row"), freq (cycles/pixel), power (ADU²), floor (ADU²)``.
    """
    a = np.asarray(image, dtype=np.float64)
    if a.ndim != 2 or min(a.shape) < 4:
        raise IncompatibleFramesError(f"spectra need a 2-D image of at least 4x4, got {a.shape}")
    if mask is not None and np.shape(mask) != a.shape:
        raise IncompatibleFramesError(f"mask shape {np.shape(mask)} != image shape {a.shape}")
    s2 = pixel_noise(a) ** 2
    ny, nx = a.shape
    rows = []
    for axis_name, axis, n_avg in (("column", 0, ny), ("row", 1, nx)):
        freq, power = _spectrum(_profile(a, axis, mask))
        rows.append(
            pd.DataFrame(
                {
                    "label": label,
                    "axis": axis_name,
                    "freq": freq,
                    "power": power,
                    "floor": s2 / n_avg,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def pattern_excess(image: np.ndarray, *, mask: np.ndarray | None = None) -> dict[str, float]:
    """Variance of the column and row profiles over their white floor (1 = no fixed pattern)."""
    spectra = fixed_pattern_spectra(image, mask=mask)
    out = {}
    for axis_name in ("column", "row"):
        sub = spectra[spectra["axis"] == axis_name]
        floor = float(sub["floor"].iloc[0])
        out[axis_name] = float(sub["power"].mean() / floor) if floor > 0 else math.inf
    return out


def robust_limits(image: np.ndarray, lo: float = 1.0, hi: float = 99.0) -> tuple[float, float]:
    """Colour limits from percentiles of the finite pixels (hot pixels do not wash out the map)."""
    v = np.asarray(image, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0, 1.0
    a, b = np.percentile(v, [lo, hi])
    if not b > a:
        b = a + 1.0
    return float(a), float(b)


def block_mean(image: np.ndarray, max_size: int = 400) -> tuple[np.ndarray, int]:
    """Downsample by block means so the longest side is at most ``max_size``; (img, factor)."""
    a = np.asarray(image, dtype=np.float64)
    factor = max(1, math.ceil(max(a.shape) / max_size))
    if factor == 1:
        return a, 1
    ny, nx = (a.shape[0] // factor) * factor, (a.shape[1] // factor) * factor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(
            a[:ny, :nx].reshape(ny // factor, factor, nx // factor, factor), axis=(1, 3)
        ), factor


@dataclass(frozen=True, eq=False)
class Difference:
    """``a - b`` of two images with its significance against their uncertainties."""

    diff: np.ndarray  # a - b (ADU)
    z: np.ndarray | None  # (a - b) / sqrt(ua² + ub²), None without uncertainties
    stats: dict[str, float] = field(default_factory=dict)
    spectra: pd.DataFrame = field(default_factory=pd.DataFrame)


def prepare_difference(
    a: np.ndarray,
    b: np.ndarray,
    *,
    ua: np.ndarray | None = None,
    ub: np.ndarray | None = None,
    labels: tuple[str, str] = ("a", "b"),
) -> Difference:
    """Difference image, its statistics and the fixed-pattern spectra of both and of the difference.

    ``stats``: ``mean_adu``, ``median_adu``, ``robust_std_adu`` of the difference, and with
    uncertainties ``expected_std_adu`` (median of ``sqrt(ua² + ub²)``), ``z_width`` (robust width
    of the normalised difference: ~1 when the two agree within their noise) and
    ``frac_z_gt_5`` (pixels that disagree by more than 5 sigma).
    """
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a64.shape != b64.shape:
        raise IncompatibleFramesError(
            f"cannot compare images of shapes {a64.shape} and {b64.shape}"
        )
    diff = a64 - b64
    stats = {
        "mean_adu": float(np.nanmean(diff)),
        "median_adu": float(np.nanmedian(diff)),
        "robust_std_adu": _robust_std(diff),
    }
    z = None
    if ua is not None and ub is not None:
        sigma = np.hypot(np.asarray(ua, dtype=np.float64), np.asarray(ub, dtype=np.float64))
        with np.errstate(invalid="ignore", divide="ignore"):
            z = np.where(sigma > 0, diff / sigma, np.nan)
        finite = np.isfinite(z)
        stats["expected_std_adu"] = float(np.nanmedian(sigma))
        stats["z_width"] = _robust_std(z)
        n_finite = max(int(finite.sum()), 1)
        stats["frac_z_gt_5"] = float(np.count_nonzero(np.abs(z[finite]) > 5)) / n_finite
    spectra = pd.concat(
        [
            fixed_pattern_spectra(a64, label=labels[0]),
            fixed_pattern_spectra(b64, label=labels[1]),
            fixed_pattern_spectra(diff, label=f"{labels[0]} − {labels[1]}"),
        ],
        ignore_index=True,
    )
    return Difference(diff=diff, z=z, stats=stats, spectra=spectra)


# ----------------------------------------------------------------------------- elements
def make_image(
    image: np.ndarray,
    *,
    title: str = "",
    cmap: str = "gray",
    clim: tuple[float, float] | None = None,
    label: str = "ADU",
    width: int = 420,
    max_size: int = 400,
    logz: bool = False,
):
    """An image with robust colour limits (block-mean downsampled for big frames)."""
    hv = _hv()
    img, factor = block_mean(image, max_size)
    ny, nx = np.shape(image)
    if clim is None:
        clim = robust_limits(img[img > 0] if logz else img)
    if factor > 1:
        title = f"{title} (mean of {factor}×{factor})"
    return hv.Image(img[::-1], bounds=(0, 0, nx, ny), kdims=["x", "y"], vdims=[label]).opts(
        cmap=cmap,
        clim=clim,
        colorbar=True,
        width=width,
        height=int(width * ny / max(nx, 1)) + 30,
        title=title,
        tools=["hover"],
        logz=logz,
        fontsize={"title": 10},
    )


_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")


def make_spectra(spectra: pd.DataFrame, *, title: str = "Fixed-pattern spectra", width: int = 440):
    """Column and row profile spectra (one panel each), every label overlaid.

    Each spectrum's white floor (the level pure pixel noise gives) is the dashed line of the
    same colour; a spectrum well above its floor is a fixed pattern.
    """
    hv = _hv()
    panels = []
    for axis_name in ("column", "row"):
        sub = spectra[spectra["axis"] == axis_name]
        if sub.empty:
            continue
        curves = []
        for i, (label, part) in enumerate(sub.groupby("label", sort=False)):
            name, colour = str(label) or "image", _PALETTE[i % len(_PALETTE)]
            curves.append(
                hv.Curve(part, "freq", "power", label=name).opts(
                    tools=["hover"], line_width=1.5, color=colour
                )
            )
            curves.append(
                hv.Curve(part, "freq", "floor", label=f"{name} white floor").opts(
                    line_dash="dashed", line_width=1.5, color=colour, show_legend=False
                )
            )
        panels.append(
            hv.Overlay(curves).opts(
                title=f"{title}: {axis_name} profile (dashed: white floor)",
                logy=True,
                width=width,
                height=340,
                xlabel="frequency (cycles / pixel)",
                ylabel="power (ADU²)",
                legend_position="bottom",  # below the axes: a spectrum fills its whole frame
                fontsize={"title": 10, "legend": 8},
            )
        )
    if not panels:
        return hv.Div("<p>No spectra.</p>")
    return hv.Layout(panels).opts(shared_axes=False)


def make_difference_view(
    prep: Difference, *, title: str = "difference", width: int = 420, show_z: bool = True
):
    """Difference image (symmetric colour scale) and the histogram of its significance."""
    lim = 5 * (prep.stats.get("robust_std_adu") or 1.0)
    image = make_image(prep.diff, title=title, cmap="RdBu_r", clim=(-lim, lim), width=width)
    if prep.z is None or not show_z:
        return image
    z = prep.z[np.isfinite(prep.z)]
    edges = np.linspace(-8, 8, 81)
    counts, _ = np.histogram(np.clip(z, edges[0], edges[-1]), bins=edges)
    return (
        image + make_z_histogram(edges, counts, title=f"z width {prep.stats['z_width']:.2f}")
    ).opts(shared_axes=False)


def make_z_histogram(
    edges: np.ndarray,
    counts: np.ndarray | Mapping[str, Any],
    *,
    title: str = "Normalised residuals against N(0, 1)",
    width: int = 420,
    legend_position: str = "top_right",
):
    """Density of normalised values (one or several labelled histograms) against the unit Gaussian."""
    hv = _hv()
    edges = np.asarray(edges, dtype=float)
    series = counts if isinstance(counts, Mapping) else {"data": counts}
    centres = 0.5 * (edges[:-1] + edges[1:])
    width_bins = np.diff(edges)
    curves = []
    for label, c in series.items():
        c = np.asarray(c, dtype=float)
        if c.sum() <= 0:
            continue
        dens = c / c.sum() / width_bins
        curves.append(
            hv.Curve(
                (centres, np.where(dens > 0, dens, np.nan)), "z", "density", label=str(label)
            ).opts(interpolation="steps-mid", line_width=2, tools=["hover"])
        )
    zz = np.linspace(edges[0], edges[-1], 300)
    curves.append(
        hv.Curve(
            (zz, np.exp(-0.5 * zz**2) / math.sqrt(2 * math.pi)), "z", "density", label="N(0,1)"
        ).opts(color="black", line_dash="dashed")
    )
    return hv.Overlay(curves).opts(
        logy=True,
        ylim=(1e-5, 1),
        width=width,
        height=300,
        title=title,
        legend_position=legend_position,
        fontsize={"title": 10},
    )
