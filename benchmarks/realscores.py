"""Scores of a calibrated light on real frames: hot-pixel residual, noise, answer keys.

Plain-array functions, shared by ``bench_real.py`` and ``tests/test_real_frames.py``; they know
nothing of the tools compared and score every tool on the same pixels. Definitions and their
reasons: ``docs/real-data.md`` ("How the benchmark scores a light").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from darkflow.verify import neighbour_median, robust_std


def _local_background(image: np.ndarray) -> np.ndarray:
    return np.asarray(neighbour_median(np.ascontiguousarray(image, dtype=np.float32)), float)


def _robust_std(values: np.ndarray) -> float:
    return float(robust_std(np.asarray(values, dtype=float)))


def _interior(shape: tuple[int, int], border: int) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[border : shape[0] - border, border : shape[1] - border] = True
    return mask


def stable_hot_pixels(
    darks: Sequence[np.ndarray], *, nsigma: float = 5.0, border: int = 2
) -> np.ndarray:
    """Pixels above their 8 neighbours' median by ``nsigma`` robust sigmas in *every* dark.

    Tool-independent: it looks at the raw darks only, so every tool is scored on the same
    pixels. Cosmic rays and flickering pixels are excluded by requiring every frame; pixels
    within ``border`` of the edge are ignored.
    """
    if not darks:
        raise ValueError("no darks")
    inside = _interior(np.shape(darks[0]), border)
    hot = inside.copy()
    for frame in darks:
        resid = np.asarray(frame, float) - _local_background(frame)
        hot &= resid > nsigma * _robust_std(resid[inside])
    return hot


def quiet_pixels(raw: np.ndarray, hot: np.ndarray, *, nsigma: float = 5.0) -> np.ndarray:
    """Pixels whose 3x3 neighbourhood in the raw light shows no structure but hot pixels.

    A hot pixel on a star or a spectral line cannot be scored against its neighbours' median
    (the scene dominates the residual): pixels that are not hot yet stand ``nsigma`` robust
    sigmas off their neighbours' median (stars, lines, cosmic rays) are dilated by one pixel and
    excluded.
    """
    resid = np.asarray(raw, float) - _local_background(raw)
    sigma = _robust_std(resid[~hot])
    busy = (np.abs(resid) > nsigma * sigma) & ~hot
    padded = np.pad(busy, 1)
    ny, nx = busy.shape
    near = np.zeros_like(busy)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            near |= padded[dy : dy + ny, dx : dx + nx]
    return ~near


SATURATION_ADU = 59000.0  # 90% of the 16-bit range: above it no dark model can be checked


def scored_hot_pixels(
    hot: np.ndarray, raw: np.ndarray, *, saturation: float = SATURATION_ADU
) -> np.ndarray:
    """The hot pixels a light can be scored on: quiet neighbourhood, not saturated in the light."""
    return hot & quiet_pixels(raw, hot) & (np.asarray(raw, float) < saturation)


@dataclass(frozen=True)
class HotResidual:
    rms: float  # RMS over the hot pixels of (frame - 8-neighbour median), ADU
    median: float  # median of the same (signed: + means dark under-subtracted)
    p90: float  # 90th percentile of its absolute value (robust to a few wild pixels)
    n: int


def hot_pixel_residual(image: np.ndarray, hot: np.ndarray) -> HotResidual:
    """What is left of the hot pixels: ``image - local background`` over ``hot``.

    Zero when every hot pixel's dark signal was removed exactly (up to the noise); the raw light
    scored the same way gives the scale of what there was to remove.
    """
    resid = np.asarray(image, float) - _local_background(image)
    vals = resid[hot & np.isfinite(resid)]
    if vals.size == 0:
        return HotResidual(float("nan"), float("nan"), float("nan"), 0)
    return HotResidual(
        float(np.sqrt(np.mean(vals**2))),
        float(np.median(vals)),
        float(np.percentile(np.abs(vals), 90)),
        int(vals.size),
    )


def background_noise(image: np.ndarray, hot: np.ndarray | None = None, *, border: int = 2) -> float:
    """Robust sigma of ``image - 8-neighbour median`` over non-hot pixels (ADU).

    The neighbour median removes the scene and gradients, so the value is pixel-to-pixel noise
    (times ~1.06, the same factor for every tool).
    """
    resid = np.asarray(image, float) - _local_background(image)
    keep = _interior(resid.shape, border) & np.isfinite(resid)
    if hot is not None:
        keep &= ~hot
    return _robust_std(resid[keep])


def dark_signal_fraction(light: np.ndarray, expected: np.ndarray, hot: np.ndarray) -> float:
    """How much of the expected hot-pixel dark signal a light holds (1: all of it, 0: none).

    Least-squares slope, over ``hot``, of the light's excess above its 8 neighbours on
    ``expected``, the excess the light should hold (e.g. a dark master's excess scaled to the
    light's exposure). Near 0 the light was dark-subtracted before it was saved.
    """
    r = (np.asarray(light, float) - _local_background(light))[hot]
    e = np.asarray(expected, float)[hot]
    keep = np.isfinite(r) & np.isfinite(e)
    denom = float(np.sum(e[keep] ** 2))
    return float(np.sum(r[keep] * e[keep]) / denom) if denom > 0 else float("nan")


def excess(image: np.ndarray) -> np.ndarray:
    """``image`` minus the median of each pixel's 8 neighbours (what a hot pixel adds)."""
    return np.asarray(image, float) - _local_background(image)


@dataclass(frozen=True)
class Difference:
    median: float
    rms: float
    n: int


def answer_key_difference(
    image: np.ndarray,
    key: np.ndarray,
    *,
    pedestal: float = 0.0,
    raw: np.ndarray | None = None,
    saturation: float = 65535.0,
) -> Difference:
    """``image + pedestal - key`` over the pixels where the key is informative.

    Excluded: pixels the key clipped at 0, pixels saturated in the raw light, non-finite values.
    """
    img = np.asarray(image, float)
    ref = np.asarray(key, float)
    keep = np.isfinite(img) & np.isfinite(ref) & (ref > 0)
    if raw is not None:
        keep &= np.asarray(raw, float) < saturation
    return _difference(img[keep] + pedestal - ref[keep])


def image_difference(a: np.ndarray, b: np.ndarray) -> Difference:
    """``a - b`` over the pixels finite in both (e.g. darkflow against ccdproc)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    keep = np.isfinite(a) & np.isfinite(b)
    return _difference(a[keep] - b[keep])


def _difference(d: np.ndarray) -> Difference:
    if d.size == 0:
        return Difference(float("nan"), float("nan"), 0)
    return Difference(float(np.median(d)), float(np.sqrt(np.mean(d**2))), int(d.size))
