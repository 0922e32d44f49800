"""Build the dark model for a light and subtract it, propagating uncertainty.

Pure functions on arrays plus small result objects; the pipeline resolves masters first and passes
them in (no IO here).

A dark model is a linear recipe of masters ``M_k`` (each with weight ``w_k``, exposure factor
``e_k`` and temperature factor ``f_k``, see :class:`darkflow.matching.ModelTerm`), the master
bias ``B`` and the amp glow ``G_k`` contained in each master (bias removed)::

    model = B + sum_k w_k e_k [G_k + f_k (M_k - b_k B - G_k)]
          = c_B B + sum_k a_k M_k + sum_k g_k G_k
    a_k = w_k e_k f_k,   g_k = w_k e_k (1 - f_k),   c_B = 1 - sum_k a_k b_k

with ``b_k = 1`` when ``M_k`` still holds the bias (0 for a bias-subtracted master). The bias
is neither scaled nor interpolated, the glow scales with exposure only, the dark current
``C_k = M_k - b_k B - G_k`` with exposure and temperature. A recipe needs the bias only when
``c_B != 0`` or some ``g_k != 0``: a plain interpolation ``(1 - w) M_1 + w M_2`` does not.

Model variance (ADU², per pixel)::

    var = c_B² var_B + sum_k a_k² var_k                    (master and bias uncertainties)
        + (s_dark * C)²                                    (dark-current factor uncertainty)
        + (s_exp * (model - B))²                           (exposure-law uncertainty)
        + (0.1 * (model - B))²   on pixels flagged non-linear

with ``C = sum_k a_k C_k`` the dark current in the model, ``s_dark`` the decision's
``dark_rel_sigma`` (temperature and doubling-temperature uncertainties, the residual mismatch
of an untreated temperature difference) and ``s_exp`` its ``exposure_rel_sigma`` (measured
deviation from linearity, the mismatch of an unscaled exposure). The special cases of
:func:`build_dark_model`::

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from darkflow.exceptions import CalibrationError
from darkflow.model import MasterDark, ScaleMode
from darkflow.stats import mad_std

if TYPE_CHECKING:
    from darkflow.matching import CalibrationIndex, MatchDecision

__all__ = [
    "FLAG_GLOW",
    "FLAG_LIMITED",
    "FLAG_NONLINEAR",
    "FLAG_SATURATED",
    "CalibratedFrame",
    "DarkModel",
    "build_dark_model",
    "dark_model_for",
    "dark_shot_variance",
    "estimate_gain",
    "estimate_gain_from_dark",
    "noise_model_variance",
    "rebuild_uncertainty",
    "subtract_dark",
    "uncertainty_cards",
]

FLAG_SATURATED = 1  # saturated in a master used by the model
FLAG_NONLINEAR = 2  # predicted dark signal above the measured linear range (not trusted)
FLAG_GLOW = 4  # amp-glow region (glow kept out of the temperature scaling)
FLAG_LIMITED = 8  # dark signal capped by the conservative alternative (left under-corrected)


@dataclass(frozen=True, eq=False)
class DarkModel:
    """The dark signal (bias included) expected in a light, with its variance.

    ``flags`` (uint8, optional) marks pixels with :data:`FLAG_SATURATED`,
    :data:`FLAG_NONLINEAR`, :data:`FLAG_GLOW`, :data:`FLAG_LIMITED`; ``dark_signal`` is the model minus the bias
    (when a bias was used); ``weights`` the recipe weights of ``master_ids``.
    """

    data: np.ndarray  # float32, ADU, bias included
    variance: np.ndarray  # float32, ADU^2
    scale_mode: ScaleMode
    scale_factor: float
    master_ids: tuple[str, ...]
    flags: np.ndarray | None = None
    dark_signal: np.ndarray | None = None
    weights: tuple[float, ...] = ()
    notes: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"<DarkModel {self.scale_mode} x{self.scale_factor:.4g} masters={self.master_ids} "
            f"shape={self.data.shape}>"
        )


@dataclass(frozen=True, eq=False)
class CalibratedFrame:
    data: np.ndarray  # float32
    uncertainty: np.ndarray  # float32, 1-sigma ADU
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Term:
    master: MasterDark
    weight: float
    exposure_factor: float
    temp_factor: float
    glow: np.ndarray | None = None


def _linear_model(
    terms: Sequence[_Term],
    bias: MasterDark | None,
    *,
    scale_mode: ScaleMode,
    scale_factor: float,
    master_ids: tuple[str, ...],
    dark_rel_sigma: float = 0.0,
    exposure_rel_sigma: float = 0.0,
    nonlinear_above_adu: float | None = None,
) -> DarkModel:
    """The recipe of the module docstring, evaluated (float32, inputs untouched)."""
    shape = terms[0].master.data.shape
    for t in terms:
        if t.master.data.shape != shape:
            raise CalibrationError(f"masters of one model differ in shape: {t.master.data.shape} "
                                   f"!= {shape}")  # fmt: skip
    a = [t.weight * t.exposure_factor * t.temp_factor for t in terms]
    g = [t.weight * t.exposure_factor * (1.0 - t.temp_factor) for t in terms]
    beta = [1.0 if t.master.meta.includes_bias else 0.0 for t in terms]
    c_b = 1.0 - sum(ak * bk for ak, bk in zip(a, beta, strict=True))
    needs_bias = abs(c_b) > 1e-9 or any(abs(x) > 1e-9 for x in g)
    if needs_bias and bias is None:
        raise CalibrationError(
            f"scale mode {scale_mode} needs a master bias of the configuration "
            "(bias/dark separation), none was given"
        )
    if bias is not None and bias.data.shape != shape:
        raise CalibrationError(f"master bias shape {bias.data.shape} != master shape {shape}")
    b = np.asarray(bias.data, dtype=np.float32) if bias is not None else None
    model = np.zeros(shape, np.float32)
    var = np.zeros(shape, np.float32)
    dark = np.zeros(shape, np.float32)
    flags = np.zeros(shape, np.uint8)
    for t, ak, gk, bk in zip(terms, a, g, beta, strict=True):
        m = np.asarray(t.master.data, dtype=np.float32)
        model += np.float32(ak) * m
        var += np.float32(ak * ak) * np.square(t.master.uncertainty, dtype=np.float32)
        if b is not None:
            cur = m - np.float32(bk) * b
        else:
            cur = m - np.float32(np.nanmedian(m))  # no bias: the structure above the level
        if t.glow is not None:
            cur = cur - t.glow
            flags |= np.where(t.glow > 0, FLAG_GLOW, 0).astype(np.uint8)
            if gk:
                model += np.float32(gk) * t.glow
        dark += np.float32(ak) * cur
        if t.master.saturated is not None:
            flags |= np.where(t.master.saturated.astype(bool), FLAG_SATURATED, 0).astype(np.uint8)
    signal = None
    if b is not None:
        if c_b:
            model += np.float32(c_b) * b
            var += np.float32(c_b * c_b) * np.square(bias.uncertainty, dtype=np.float32)
        signal = model - b
    above = signal if signal is not None else dark
    if dark_rel_sigma:
        var += np.square(np.float32(dark_rel_sigma) * dark)
    if exposure_rel_sigma:
        var += np.square(np.float32(exposure_rel_sigma) * above)
    scaled = any(abs(t.exposure_factor - 1.0) > 1e-9 for t in terms)
    if nonlinear_above_adu is not None and scaled:
        nonlinear = above > np.float32(nonlinear_above_adu)
        flags |= np.where(nonlinear, FLAG_NONLINEAR, 0).astype(np.uint8)
        var += np.where(nonlinear, np.square(np.float32(0.1) * above), 0).astype(np.float32)
    return DarkModel(
        model,
        var.astype(np.float32),
        scale_mode,
        float(scale_factor),
        master_ids,
        flags=flags,
        dark_signal=signal,
        weights=tuple(float(t.weight) for t in terms),
        notes={"bias_coefficient": c_b, "needs_bias": needs_bias},
    )


def build_dark_model(
    master: MasterDark,
    *,
    scale_mode: ScaleMode,
    scale_factor: float = 1.0,
    bias: MasterDark | None = None,
    master_id: str = "",
    temp_factor: float = 1.0,
    glow: np.ndarray | None = None,
) -> DarkModel:
    """The dark signal (bias included) expected in a light, from one master (and a master bias).

    ``scale_factor`` is the exposure factor for ``exposure`` and ``exposure+temperature``;
    ``temp_factor`` the dark-current factor for ``temperature`` and ``exposure+temperature``
    (for ``temperature`` alone ``scale_factor`` is taken as the temperature factor when
    ``temp_factor`` is left at 1). ``glow`` (ADU, bias removed) is kept out of the temperature
    scaling; without it the whole dark signal is scaled. Two-master modes need
    :func:`dark_model_for`.
    """
    if scale_mode in (ScaleMode.NONE, ScaleMode.UNSCALED):
        f_e, f_t = 1.0, 1.0
    elif scale_mode == ScaleMode.EXPOSURE:
        f_e, f_t = float(scale_factor), 1.0
    elif scale_mode == ScaleMode.TEMPERATURE:
        f_e, f_t = 1.0, float(temp_factor if temp_factor != 1.0 else scale_factor)
    elif scale_mode == ScaleMode.EXPOSURE_TEMPERATURE:
        f_e, f_t = float(scale_factor), float(temp_factor)
    else:
        raise CalibrationError(
            f"scale mode {scale_mode} combines two masters: use darkflow.subtract.dark_model_for"
        )
    if scale_mode != ScaleMode.NONE and scale_mode != ScaleMode.UNSCALED and bias is None:
        raise CalibrationError(f"{scale_mode} scaling needs a master bias (bias/dark separation)")
    model = _linear_model(
        [_Term(master, 1.0, f_e, f_t, glow if f_t != 1.0 else None)],
        bias,
        scale_mode=scale_mode,
        scale_factor=f_e * f_t,
        master_ids=(master_id,),
    )
    return model


def dark_model_for(
    decision: MatchDecision,
    *,
    load_master: Callable[[str], MasterDark],
    bias: MasterDark | None,
    index: CalibrationIndex,
) -> DarkModel:
    """The dark model of a :class:`~darkflow.matching.MatchDecision`, for every scale mode.

    Parameters
    ----------
    decision
        A matched decision (``decision.matched``); its ``terms`` give the recipe.
    load_master
        ``master_id -> MasterDark`` (each master of the recipe is loaded once).
    bias
        The configuration's master bias (the one the index was built with), or ``None``:
        recipes that scale the dark current or the glow need it.
    index
        The calibration index (glow model and exposure-law limits of the configuration).

    Returns
    -------
    DarkModel
        ``data`` and ``variance`` per the module docstring, ``flags``, ``dark_signal``.

    Raises
    ------
    CalibrationError
        The decision is unmatched, the recipe needs a bias and none is given, or shapes differ.
    """
    from darkflow.matching import ModelTerm
    from darkflow.scaling import glow_map

    if not decision.matched or decision.scale_mode is None:
        raise CalibrationError(f"{decision.light_path}: no master was matched, no dark model")
    terms = decision.terms or (
        ModelTerm(decision.master_id, 1.0, decision.exposure_factor, decision.temp_factor),
    )
    sig = decision.config_signature
    glow_model = index.glow.get(sig)
    block = getattr(index, "block_px", 16)
    lin = index.linearity.get(sig)
    built = []
    loaded: dict[str, MasterDark] = {}
    for term in terms:
        if term.master_id not in loaded:
            loaded[term.master_id] = load_master(term.master_id)
        master = loaded[term.master_id]
        glow = None
        if abs(term.temp_factor - 1.0) > 1e-9 and bias is not None:
            glow = glow_map(master, bias, glow_model=glow_model,
                            bias_exptime_s=index.bias_exptime(sig), block=block)  # fmt: skip
        built.append(_Term(master, term.weight, term.exposure_factor, term.temp_factor, glow))
    model = _linear_model(
        built,
        bias,
        scale_mode=decision.scale_mode,
        scale_factor=decision.scale_factor,
        master_ids=tuple(t.master_id for t in terms),
        dark_rel_sigma=decision.dark_rel_sigma,
        exposure_rel_sigma=decision.exposure_rel_sigma,
        nonlinear_above_adu=lin.nonlinear_above_adu if lin is not None else None,
    )
    model.notes.update(
        glow="model" if glow_model is not None else "measured",
        confidence=decision.confidence,
    )
    return model


def dark_shot_variance(model: DarkModel, egain_e_per_adu: float | None) -> np.ndarray | float:
    """Poisson variance (ADU²) of the dark signal the light itself collected: ``max(S, 0) / g``.

    ``S`` is ``model.dark_signal`` (the model minus the bias); 0 without a gain or without a
    bias-separated model. For models from :func:`dark_model_for` this replaces the
    ``dark_shot_variance_adu2`` of :func:`noise_model_variance` (which assumes one master).
    """
    if model.dark_signal is None or not egain_e_per_adu or egain_e_per_adu <= 0:
        return 0.0
    return (np.maximum(model.dark_signal, 0.0) / np.float32(egain_e_per_adu)).astype(np.float32)


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
    if master.provenance.get("planes", {}).get("uncertainty") == "scalar":
        return None  # its uncertainty is rebuilt from a noise model: photon transfer is circular
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
            var = mad_std(d) ** 2 / 2.0
            excess = var - read_variance_adu2
            if level > floor and excess > 0.1 * var:
                gains.append(level / excess)
    if len(gains) < min_tiles:
        return None
    return float(np.median(gains))


def shot_signal(
    calibrated: np.ndarray, base_variance: np.ndarray | float, egain_e_per_adu: float
) -> np.ndarray:
    """The signal (ADU) whose Poisson noise a calibrated pixel carries, estimated without bias.

    ``max(pixel, 0)`` of a noisy pixel overstates the signal where there is little of it (the
    positive half of the noise counts as signal: +30% variance on a frame without sky). The
    smooth background (sigma-clipped tile levels, interpolated) estimates the local signal
    without that bias; a pixel more than 3 sigma above it (stars, bright nebulosity) keeps its
    own value.
    """
    from darkflow.verify import background_map

    smooth = background_map(calibrated)
    smooth = np.where(np.isfinite(smooth), smooth, calibrated)
    # the pixel's expected noise if it held only the smooth signal (its shot noise included)
    noise = np.sqrt(np.maximum(base_variance + np.maximum(smooth, 0.0) / egain_e_per_adu, 1e-12))
    own = calibrated - smooth > 3.0 * noise
    return np.maximum(np.where(own, calibrated, smooth), 0.0).astype(np.float32)


def read_variance(master: MasterDark) -> float:
    """Per-frame variance of a master's inputs (ADU²) at its typical pixel: the read noise.

    The trimmed mean (top 0.5% of pixels, hot and flickering, removed) of the unbiased per-pixel
    sample variances, corrected for the variance that sigma clipping took away.
    """
    var = np.square(per_frame_sigma(master), dtype=np.float64)
    var = var[np.isfinite(var) & (master.n_used >= 2)]
    if var.size == 0:
        return 0.0
    var = np.sort(var)[: max(1, int(var.size * 0.995))]
    params = master.provenance.get("params", {}) if master.provenance else {}
    k = min(params.get("sigma_low", math.inf), params.get("sigma_high", math.inf))
    factor = _clip_variance_factor(k) if math.isfinite(k) else 1.0
    return float(np.mean(var)) / factor


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

    The read variance is the typical per-frame variance of the bias frames
    (:func:`read_variance`). The dark shot variance is the dark signal (master minus bias) over
    the gain: the median level for typical pixels, a pixel's own level where it deviates from the
    median by more than 3 sigma (hot pixels) — a noisy per-pixel value would bias the variance up.
    Without a bias, the dark master's typical variance stands in for the read noise (it then
    includes the typical dark shot noise) and only hot pixels' excess adds to it. Scaled models
    scale the dark shot variance by ``scale_factor``.
    """

    with_bias = bias is not None and master.meta.includes_bias
    read_var = read_variance(bias) if bias is not None else read_variance(master)
    if not egain_e_per_adu or egain_e_per_adu <= 0:
        return read_var, 0.0
    if with_bias:
        signal = master.data - bias.data
        sigma = np.sqrt(np.square(master.uncertainty) + np.square(bias.uncertainty))
    else:
        signal = master.data  # bias-free master: dark signal; bias-including: level unknown
        sigma = master.uncertainty
    finite = signal[np.isfinite(signal)]
    level = float(np.median(finite)) if finite.size else 0.0  # the typical pixel
    deviation = signal - np.float32(level)
    # typical pixels: the mean dark level (their own noisy value would bias the variance up);
    # a pixel far from it (> 3 sigma, hot pixels) keeps its own level
    significant = np.abs(deviation) > 3.0 * sigma
    if with_bias or not master.meta.includes_bias:
        estimate = np.float32(level) + np.where(significant, deviation, 0.0)
    else:  # no bias: the typical dark shot noise is already in read_var; hot excess only
        estimate = np.where(significant & (deviation > 0), deviation, 0.0)
    shot = np.maximum(estimate, 0.0) * np.float32(scale_factor / egain_e_per_adu)
    return read_var, shot.astype(np.float32)


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
    gain = egain_e_per_adu if egain_e_per_adu and egain_e_per_adu > 0 else None
    var = np.float32(read_variance_adu2) + model.variance + dark_shot_variance_adu2
    if gain is not None:
        var = var + shot_signal(calibrated, var, gain) / np.float32(gain)
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


# ----------------------------------------------------------------------------- scalar uncertainty
# A calibrated light written with ``[output] light_uncertainty = "scalar"`` keeps its uncertainty
# as header cards; the plane is rebuilt from them with the noise model of subtract_dark.


#: the summary of a light's uncertainty is measured on a central band of at most this many pixels
UNCERTAINTY_SAMPLES = 1 << 20


def uncertainty_cards(
    calibrated: np.ndarray,
    uncertainty: np.ndarray,
    *,
    egain_e_per_adu: float | None,
    pedestal_adu: float,
) -> dict[str, tuple[Any, str]]:
    """Header cards that summarise a calibrated light's uncertainty plane.

    ``DFUNCMED``: the median uncertainty; ``DFUNV0``: the median of ``uncertainty^2`` less the
    light's own shot noise (:func:`shot_signal` over the gain, as :func:`subtract_dark` adds
    it): read noise, the dark's shot noise and the dark model's variance at a typical pixel;
    ``DFUNGAIN``: the e-/ADU of the noise model; ``DFPEDEST``: the pedestal added after
    subtraction. Measured on a central band of rows of at most :data:`UNCERTAINTY_SAMPLES`
    pixels, so its cost does not grow with the frame.
    """
    cards: dict[str, tuple[Any, str]] = {
        "DFPEDEST": (float(f"{pedestal_adu:.6g}"), "[adu] pedestal added after subtraction"),
    }
    cal = np.asarray(calibrated)
    ny, nx = cal.shape
    rows = min(ny, max(16, UNCERTAINTY_SAMPLES // max(nx, 1)))
    top = (ny - rows) // 2
    cal = cal[top : top + rows].astype(np.float32)
    unc = np.asarray(uncertainty)[top : top + rows]
    var = np.square(unc, dtype=np.float64)
    ok = np.isfinite(var) & np.isfinite(cal)
    if not ok.any():
        return cards
    cards["DFUNCMED"] = (float(f"{np.median(unc[ok]):.6g}"), "[adu] median 1-sigma uncertainty")
    base = var
    if egain_e_per_adu and egain_e_per_adu > 0:
        signal = shot_signal(cal - np.float32(pedestal_adu), float(np.median(var[ok])),
                             egain_e_per_adu)  # fmt: skip
        base = var - signal / egain_e_per_adu
        cards["DFUNGAIN"] = (float(f"{egain_e_per_adu:.6g}"), "[e-/adu] gain of the noise model")
    cards["DFUNV0"] = (float(f"{np.median(base[ok]):.6g}"), "[adu2] uncertainty^2 less shot noise")
    return cards


def rebuild_uncertainty(calibrated: np.ndarray, cards: Any) -> np.ndarray:
    """The 1-sigma plane of a light whose uncertainty was written as header cards.

    ``sqrt(DFUNV0 + shot_signal(calibrated - DFPEDEST) / DFUNGAIN)``: the light's own read and
    shot noise as :func:`subtract_dark` computed them; the dark's shot noise and the dark
    model's variance at their typical value, so hot pixels get too small an uncertainty.
    ``DFUNCMED`` everywhere when there was no gain.
    """
    data = np.asarray(calibrated, dtype=np.float32)
    gain, v0 = cards.get("DFUNGAIN"), cards.get("DFUNV0")
    if not gain or v0 is None:
        unc = np.full(data.shape, float(cards.get("DFUNCMED", np.nan)), np.float32)
    else:
        signal = shot_signal(data - np.float32(cards.get("DFPEDEST", 0.0)), float(v0), float(gain))
        unc = np.sqrt(np.maximum(float(v0) + signal / np.float32(gain), 0.0)).astype(np.float32)
    unc[~np.isfinite(data)] = np.nan
    return unc
