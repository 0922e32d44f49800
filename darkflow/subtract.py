"""Build the dark model for a light and subtract it, propagating uncertainty.

Pure functions on arrays plus small result objects; the pipeline resolves masters first and passes
them in (no IO here).

Dark model for exposure scaling by factor ``f = t_light / t_master``::

    master holds bias:     model = B + f * (D - B)        var = (1-f)^2 var_B + f^2 var_D
    master is bias-free:   model = B + f * D              var = var_B + f^2 var_D

Per-pixel uncertainty of the calibrated light (ADU)::

    var = read_var + dark_shot_var + max(light - model, 0) / egain + var_model

``read_var`` is the read noise of one frame (from the master bias's per-frame scatter, else the
dark master's), ``dark_shot_var`` the Poisson noise of the dark current the light itself
collected (the dark model scaled, bias removed, over the gain): see :func:`noise_model_variance`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from darkflow.exceptions import CalibrationError
from darkflow.model import MasterDark, ScaleMode

__all__ = [
    "CalibratedFrame",
    "DarkModel",
    "build_dark_model",
    "estimate_gain",
    "estimate_gain_from_dark",
    "noise_model_variance",
    "subtract_dark",
]


@dataclass(frozen=True, eq=False)
class DarkModel:
    data: np.ndarray  # float32, ADU, bias included
    variance: np.ndarray  # float32, ADU^2
    scale_mode: ScaleMode
    scale_factor: float
    master_ids: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class CalibratedFrame:
    data: np.ndarray  # float32
    uncertainty: np.ndarray  # float32, 1-sigma ADU
    stats: dict[str, Any] = field(default_factory=dict)


def build_dark_model(
    master: MasterDark,
    *,
    scale_mode: ScaleMode,
    scale_factor: float = 1.0,
    bias: MasterDark | None = None,
    master_id: str = "",
) -> DarkModel:
    """The dark signal (bias included) expected in a light, from a master (and a master bias)."""
    d = master.data.astype(np.float32, copy=False)
    var_d = np.square(master.uncertainty, dtype=np.float32)
    if scale_mode in (ScaleMode.NONE, ScaleMode.UNSCALED):
        if not master.meta.includes_bias:
            if bias is None:
                raise CalibrationError("a bias-free master needs a master bias to subtract")
            return DarkModel(
                d + bias.data,
                var_d + np.square(bias.uncertainty),
                scale_mode,
                1.0,
                (master_id,),
            )
        return DarkModel(d, var_d, scale_mode, 1.0, (master_id,))
    if scale_mode != ScaleMode.EXPOSURE:
        raise CalibrationError(f"scale mode {scale_mode} is not supported by build_dark_model")
    if bias is None:
        raise CalibrationError("exposure scaling needs a master bias (bias/dark separation)")
    if bias.data.shape != d.shape:
        raise CalibrationError(f"master bias shape {bias.data.shape} != master shape {d.shape}")
    f = np.float32(scale_factor)
    b = bias.data.astype(np.float32, copy=False)
    var_b = np.square(bias.uncertainty, dtype=np.float32)
    if master.meta.includes_bias:
        model = b + f * (d - b)
        var = (1 - f) ** 2 * var_b + f**2 * var_d
    else:
        model = b + f * d
        var = var_b + f**2 * var_d
    return DarkModel(
        model.astype(np.float32), var.astype(np.float32), scale_mode, float(f), (master_id,)
    )


def _clip_variance_factor(k: float) -> float:
    """Fraction of a Gaussian's variance kept by symmetric clipping at +-k sigma."""
    phi = math.exp(-0.5 * k * k) / math.sqrt(2 * math.pi)
    inside = math.erf(k / math.sqrt(2))
    return 1.0 - 2.0 * k * phi / inside


def estimate_gain_from_dark(
    master: MasterDark, *, clip_sigma: float | None = 3.0, n_bins: int = 24
) -> tuple[float, float] | None:
    """e-/ADU by photon transfer on a dark stack: (gain, fit R^2), or None.

    Per pixel the master holds the mean dark level ``D`` and the per-frame variance
    ``uncertainty^2 * n_used``, which is ``read_var + (D - bias) / gain``. Pixels are binned by
    ``D`` over the upper half of the distribution (the hot-pixel tail gives the lever arm); a
    trimmed mean variance per bin (flickering pixels removed) is fitted by
    ``var = a + D / gain + c * D^2``: the quadratic term absorbs frame-to-frame changes of the
    dark level proportional to it (sensor temperature drifting during the dark sequence), so the
    linear term stays the shot noise. The variance lost to clipping at ``clip_sigma`` is restored. Needs a dark
    signal range of at least ~20x the read noise; no sky, no dithering, no bias frame involved.
    """
    n = master.n_used.astype(np.float64)
    d = master.data.astype(np.float64)
    var = np.square(master.uncertainty.astype(np.float64)) * n
    valid = np.isfinite(d) & np.isfinite(var) & (n >= max(5, 0.5 * master.meta.n_frames))
    if master.saturated is not None:
        valid &= ~master.saturated.astype(bool)
    if np.count_nonzero(valid) < 100:
        return None
    d, var = d[valid], var[valid]
    lo = np.percentile(d, 50.0)
    hi = np.percentile(d, 99.99)
    read_sigma = math.sqrt(float(np.median(var)))
    if not hi - lo > 20.0 * read_sigma:
        return None
    # bins equally spaced in log(D - lo) so the sparse hot tail gets bins of its own
    edges = lo + np.geomspace(read_sigma, hi - lo, n_bins + 1)
    xs, ys, ws = [], [], []
    for a, b in itertools.pairwise(edges):
        sel = (d >= a) & (d < b)
        if np.count_nonzero(sel) < 8:
            continue
        v = np.sort(var[sel])
        k = max(1, int(0.05 * v.size))
        trimmed = v[k:-k] if v.size > 2 * k + 2 else v
        xs.append(float(np.mean(d[sel])))
        ys.append(float(np.mean(trimmed)))
        ws.append(float(np.count_nonzero(sel)))
    if len(xs) < 4:
        return None
    x, y, m = np.array(xs) - lo, np.array(ys), np.array(ws)
    # statistical weight of a bin: its mean of m sample variances has sd y * sqrt(2 / (m (N-1)))
    frames = max(float(np.median(n[valid])), 2.0)
    w = 1.0 / (y * np.sqrt(2.0 / (m * (frames - 1.0))))

    def fit(deg: int) -> tuple[np.ndarray, float]:
        coef = np.polyfit(x, y, deg, w=w)
        chi2 = float(np.sum((w * (y - np.polyval(coef, x))) ** 2))
        return coef, chi2

    (slope, intercept), chi2_line = fit(1)
    quad_coef, chi2_quad = fit(2)
    # keep the quadratic term only when it is needed (a strong improvement, BIC-like margin)
    if chi2_line - chi2_quad > 2.0 * math.log(len(x)) + 10.0 and len(x) >= 6:
        _, slope, intercept = quad_coef
        pred = np.polyval(quad_coef, x)
    else:
        pred = intercept + slope * x
    if clip_sigma:
        slope /= _clip_variance_factor(clip_sigma)
    if not slope > 0:
        return None
    r2 = 1.0 - float(
        np.sum(w**2 * (y - pred) ** 2) / np.sum(w**2 * (y - np.average(y, weights=w**2)) ** 2)
    )
    return float(1.0 / slope), r2


def estimate_gain(
    calibrated: np.ndarray, read_variance_adu2: float, *, tile: int = 16, min_tiles: int = 8
) -> float | None:
    """Estimate e-/ADU from one dark-subtracted frame (photon transfer within the frame).

    In each tile, the per-pixel variance comes from differences of pixels two columns apart
    (same colour on a Bayer sensor; smooth sky and nebulosity cancel), robustly (MAD), and the
    signal from the tile median: ``gain = signal / (variance - read variance)``. The median over
    tiles with enough signal is returned, or ``None`` when the frame holds too little signal.
    """
    data = np.asarray(calibrated, dtype=np.float64)
    ny, nx = data.shape
    if nx < 4:
        return None
    diff = data[:, 2:] - data[:, :-2]
    gains = []
    floor = 5.0 * np.sqrt(max(read_variance_adu2, 1e-12))
    for y0 in range(0, ny - tile + 1, tile):
        for x0 in range(0, nx - 2 - tile + 1, tile):
            block = data[y0 : y0 + tile, x0 : x0 + tile]
            dblock = diff[y0 : y0 + tile, x0 : x0 + tile]
            finite = np.isfinite(dblock)
            if finite.sum() < tile * tile // 2:
                continue
            level = float(np.nanmedian(block))
            d = dblock[finite]
            var = (1.4826 * float(np.median(np.abs(d - np.median(d))))) ** 2 / 2.0
            excess = var - read_variance_adu2
            if level > floor and excess > 0.1 * var:
                gains.append(level / excess)
    if len(gains) < min_tiles:
        return None
    return float(np.median(gains))


def per_frame_sigma(master: MasterDark) -> np.ndarray:
    """Per-pixel scatter of one input frame: standard error times sqrt(frames used)."""
    n = np.maximum(master.n_used, 1).astype(np.float32)
    return master.uncertainty.astype(np.float32) * np.sqrt(n)


def noise_model_variance(
    master: MasterDark,
    *,
    bias: MasterDark | None,
    egain_e_per_adu: float | None,
    scale_factor: float = 1.0,
) -> tuple[float, np.ndarray | float]:
    """Read-noise variance (ADU², scalar) and dark-current shot variance (ADU², per pixel).

    With a master bias, read noise is the median per-frame scatter of the bias frames and the
    dark signal is ``master - bias``; without one, the dark master's own median scatter stands in
    for the read noise (it then includes the typical dark shot noise) and only the excess over the
    master's median level counts as dark signal.
    """
    if bias is not None:
        read_sigma = float(np.nanmedian(per_frame_sigma(bias)))
        dark_signal = master.data - bias.data if master.meta.includes_bias else master.data
    else:
        read_sigma = float(np.nanmedian(per_frame_sigma(master)))
        dark_signal = master.data - np.float32(np.nanmedian(master.data))
    if not egain_e_per_adu or egain_e_per_adu <= 0:
        return read_sigma**2, 0.0
    shot = np.maximum(dark_signal, 0.0) * np.float32(scale_factor / egain_e_per_adu)
    return read_sigma**2, shot.astype(np.float32)


def subtract_dark(
    light: np.ndarray,
    model: DarkModel,
    *,
    egain_e_per_adu: float | None,
    read_variance_adu2: float,
    dark_shot_variance_adu2: np.ndarray | float = 0.0,
    pedestal_adu: float = 0.0,
) -> CalibratedFrame:
    """Subtract the dark model from a light; the light array is not modified."""
    if light.shape != model.data.shape:
        raise CalibrationError(f"light shape {light.shape} != dark model shape {model.data.shape}")
    light32 = np.asarray(light, dtype=np.float32)
    calibrated = light32 - model.data
    signal = np.maximum(calibrated, 0.0)
    gain = egain_e_per_adu if egain_e_per_adu and egain_e_per_adu > 0 else None
    var = np.float32(read_variance_adu2) + model.variance + dark_shot_variance_adu2
    if gain is not None:
        var = var + signal / np.float32(gain)
    if pedestal_adu:
        calibrated += np.float32(pedestal_adu)
    finite = np.isfinite(calibrated)
    stats = {
        "n_nonfinite": int(calibrated.size - np.count_nonzero(finite)),
        "median_adu": float(np.median(calibrated[finite])) if finite.any() else math.nan,
        "dark_model_median_adu": float(np.median(model.data)),
        "shot_noise_included": gain is not None,
    }
    return CalibratedFrame(
        calibrated.astype(np.float32, copy=False), np.sqrt(var).astype(np.float32), stats
    )
