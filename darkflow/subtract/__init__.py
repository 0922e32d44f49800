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

import math
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from darkflow.exceptions import CalibrationError
from darkflow.model import MasterDark, ScaleMode
from darkflow.stats._robust import median as _median
from darkflow.stats._robust import nanmedian as _nanmedian
from darkflow.stats.noise import rebuild_uncertainty, shot_signal
from darkflow.subtract.gain import clip_variance_factor

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
    """A calibrated frame: the light minus its dark model, its 1-sigma uncertainty and the
    subtraction's statistics."""

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
    bias: MasterDark | None = None  # the master's own bias (its night), when not the model's


# master -> the median of its data (float32), the same for every light of the master
_MASTER_LEVEL: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _master_level(master: MasterDark) -> np.float32:
    level = _MASTER_LEVEL.get(master)
    if level is None:
        level = _MASTER_LEVEL[master] = np.float32(
            _nanmedian(np.asarray(master.data, dtype=np.float32))
        )
    return level


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
    level_sigma_adu: float = 0.0,
    bias_level_sigma_adu: float = 0.0,
) -> DarkModel:
    """The recipe of the module docstring, evaluated (float32, inputs untouched).

    Each bias-holding master loses its own bias (``_Term.bias``, the model's ``bias`` when
    not given) and the model gains ``bias`` once: a master of another night keeps the level
    of its own night out of the light's. Coefficients of one bias object add up, so a single
    bias with weights summing to one cancels (a plain interpolation needs no bias).
    ``level_sigma_adu`` and ``bias_level_sigma_adu`` (the level uncertainty of biases
    borrowed from other nights, their coefficients included) are a *uniform* error, the same
    for every pixel: stated in ``notes["level_sigma_adu"]``, not added to the per-pixel
    variance (which the light's checks compare with the pixel-to-pixel scatter).
    """
    shape = terms[0].master.data.shape
    for t in terms:
        if t.master.data.shape != shape:
            raise CalibrationError(f"masters of one model differ in shape: {t.master.data.shape} "
                                   f"!= {shape}")  # fmt: skip
    a = [t.weight * t.exposure_factor * t.temp_factor for t in terms]
    g = [t.weight * t.exposure_factor * (1.0 - t.temp_factor) for t in terms]
    beta = [1.0 if t.master.meta.includes_bias else 0.0 for t in terms]
    uses: dict[int | None, list] = {}  # bias object -> [bias, coefficient]

    def use(obj: MasterDark | None, c: float) -> None:
        key = None if obj is None else id(obj)
        if key in uses:
            uses[key][1] += c
        else:
            uses[key] = [obj, c]

    use(bias, 1.0)
    own_bias = []
    for t, ak, bk in zip(terms, a, beta, strict=True):
        own = t.bias if (t.bias is not None and bias is not None) else bias
        own_bias.append(own)
        if bk:
            use(own, -ak)
    c_b = uses[None if bias is None else id(bias)][1]
    needs_bias = any(
        abs(c) > 1e-9 for key, (_, c) in uses.items() if key is not None or bias is None
    ) or any(abs(x) > 1e-9 for x in g)
    if bias is None and (abs(c_b) > 1e-9 or any(abs(x) > 1e-9 for x in g)):
        raise CalibrationError(
            f"scale mode {scale_mode} needs a master bias of the configuration "
            "(bias/dark separation), none was given"
        )
    for obj, _ in uses.values():
        if obj is not None and obj.data.shape != shape:
            raise CalibrationError(f"master bias shape {obj.data.shape} != master shape {shape}")
    b = np.asarray(bias.data, dtype=np.float32) if bias is not None else None
    model = np.zeros(shape, np.float32)
    var = np.zeros(shape, np.float32)
    dark = np.zeros(shape, np.float32)
    flags = np.zeros(shape, np.uint8)
    for t, ak, gk, bk, own in zip(terms, a, g, beta, own_bias, strict=True):
        m = np.asarray(t.master.data, dtype=np.float32)
        model += np.float32(ak) * m
        var += np.float32(ak * ak) * np.square(t.master.uncertainty, dtype=np.float32)
        if own is not None:
            cur = m - np.float32(bk) * np.asarray(own.data, dtype=np.float32)
        else:
            cur = m - _master_level(t.master)  # no bias: the structure above the level
        if t.glow is not None:
            cur = cur - t.glow
            flags |= np.where(t.glow > 0, FLAG_GLOW, 0).astype(np.uint8)
            if gk:
                model += np.float32(gk) * t.glow
        dark += np.float32(ak) * cur
        if t.master.saturated is not None:
            flags |= np.where(t.master.saturated.astype(bool), FLAG_SATURATED, 0).astype(np.uint8)
    level_var = float(level_sigma_adu) ** 2 + float(bias_level_sigma_adu) ** 2
    for obj, c in uses.values():
        if obj is None or abs(c) <= 1e-12:
            continue
        model += np.float32(c) * np.asarray(obj.data, dtype=np.float32)
        var += np.float32(c * c) * np.square(obj.uncertainty, dtype=np.float32)
    signal = model - b if b is not None else None
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
        notes={
            "bias_coefficient": c_b,
            "needs_bias": needs_bias,
            "level_sigma_adu": math.sqrt(level_var),
        },
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
    master_biases: Mapping[str, MasterDark | None] | None = None,
    bias_level_sigma_adu: float = 0.0,
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
    master_biases
        ``master_id -> bias`` of each master's own night, when it is not ``bias`` (the
        light's): the master's dark signal is measured against its own bias, the light's bias
        is added once.
    bias_level_sigma_adu
        The uniform level uncertainty (ADU) of the model from biases borrowed from other
        nights (their level differences times their coefficients in the recipe).

    Returns
    -------
    DarkModel
        ``data`` and ``variance`` per the module docstring, ``flags``, ``dark_signal``.

    Raises
    ------
    CalibrationError
        The decision is unmatched, the recipe needs a bias and none is given, or shapes differ.
    """
    from darkflow.exposure.laws import glow_map
    from darkflow.matching import ModelTerm

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
        own = (master_biases or {}).get(term.master_id)
        if own is not None and own.data.shape != master.data.shape:
            own = None
        glow = None
        if abs(term.temp_factor - 1.0) > 1e-9 and bias is not None:
            glow = glow_map(master, own if own is not None else bias, glow_model=glow_model,
                            bias_exptime_s=index.bias_exptime(sig), block=block)  # fmt: skip
        built.append(_Term(master, term.weight, term.exposure_factor, term.temp_factor, glow,
                           own))  # fmt: skip
    model = _linear_model(
        built,
        bias,
        scale_mode=decision.scale_mode,
        scale_factor=decision.scale_factor,
        master_ids=tuple(t.master_id for t in terms),
        dark_rel_sigma=decision.dark_rel_sigma,
        exposure_rel_sigma=decision.exposure_rel_sigma,
        nonlinear_above_adu=lin.nonlinear_above_adu if lin is not None else None,
        level_sigma_adu=getattr(decision, "level_sigma_adu", 0.0),
        bias_level_sigma_adu=bias_level_sigma_adu,
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


# per master object (immutable, loaded once per process and kept): every light calibrated with
# a master asks for the same full-frame statistics of it
_READ_VARIANCE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def read_variance(master: MasterDark) -> float:
    """Per-frame variance of a master's inputs (ADU²) at its typical pixel: the read noise.

    The trimmed mean (top 0.5% of pixels, hot and flickering, removed) of the unbiased per-pixel
    sample variances, corrected for the variance that sigma clipping took away. Computed once
    per master object.
    """
    cached = _READ_VARIANCE.get(master)
    if cached is None:
        cached = _READ_VARIANCE[master] = _read_variance(master)
    return cached


def _read_variance(master: MasterDark) -> float:
    var = np.square(per_frame_sigma(master), dtype=np.float64)
    var = var[np.isfinite(var) & (master.n_used >= 2)]
    if var.size == 0:
        return 0.0
    var = np.sort(var)[: max(1, int(var.size * 0.995))]
    params = master.provenance.get("params", {}) if master.provenance else {}
    k = min(params.get("sigma_low", math.inf), params.get("sigma_high", math.inf))
    factor = clip_variance_factor(k) if math.isfinite(k) else 1.0
    return float(np.mean(var)) / factor


_MEDIAN_FRAME_VARIANCE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def median_frame_variance(master: MasterDark) -> tuple[float, int, float]:
    """Per-frame variance of a master's inputs at its typical pixel, robust to warm and
    flickering pixels: the median of the per-pixel sample variances over the median of
    ``chi2(n-1) / (n-1)`` (times the share of variance sigma clipping keeps).

    Returns ``(variance, pixels, frames)``; ``(nan, 0, 0)`` with fewer than 100 pixels of two
    frames or more. Computed once per master object.
    """
    cached = _MEDIAN_FRAME_VARIANCE.get(master)
    if cached is None:
        cached = _MEDIAN_FRAME_VARIANCE[master] = _median_frame_variance(master)
    return cached


def _median_frame_variance(master: MasterDark) -> tuple[float, int, float]:
    from scipy.stats import chi2

    n = np.asarray(master.n_used)
    var = np.square(per_frame_sigma(master), dtype=np.float64)
    ok = np.isfinite(var) & (n >= 2)
    count = int(np.count_nonzero(ok))
    if count < 100:
        return math.nan, 0, 0.0
    k = float(np.median(n[ok]))
    factor = float(chi2.ppf(0.5, k - 1.0)) / (k - 1.0)
    params = (master.provenance or {}).get("params", {})
    clip = min(params.get("sigma_low", math.inf), params.get("sigma_high", math.inf))
    if math.isfinite(clip):
        factor *= clip_variance_factor(clip)
    return float(_median(var[ok])) / factor, count, k


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

    read_var = read_variance(bias) if bias is not None else read_variance(master)
    if not egain_e_per_adu or egain_e_per_adu <= 0:
        return read_var, 0.0
    shot = _dark_shot_signal(master, bias) * np.float32(scale_factor / egain_e_per_adu)
    return read_var, shot.astype(np.float32)


# master -> (its bias (weak) or None, the dark signal of noise_model_variance): the same for
# every light of the master
_DARK_SHOT_SIGNAL: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _dark_shot_signal(master: MasterDark, bias: MasterDark | None) -> np.ndarray:
    """The dark signal (ADU, >= 0) whose shot noise :func:`noise_model_variance` adds."""
    cached = _DARK_SHOT_SIGNAL.get(master)
    if cached is not None and (cached[0]() if cached[0] is not None else None) is bias:
        return cached[1]
    with_bias = bias is not None and master.meta.includes_bias
    if with_bias:
        signal = master.data - bias.data
        sigma = np.sqrt(np.square(master.uncertainty) + np.square(bias.uncertainty))
    else:
        signal = master.data  # bias-free master: dark signal; bias-including: level unknown
        sigma = master.uncertainty
    finite = signal[np.isfinite(signal)]
    level = float(_median(finite)) if finite.size else 0.0  # the typical pixel
    deviation = signal - np.float32(level)
    # typical pixels: the mean dark level (their own noisy value would bias the variance up);
    # a pixel far from it (> 3 sigma, hot pixels) keeps its own level
    significant = np.abs(deviation) > 3.0 * sigma
    if with_bias or not master.meta.includes_bias:
        estimate = np.float32(level) + np.where(significant, deviation, 0.0)
    else:  # no bias: the typical dark shot noise is already in read_var; hot excess only
        estimate = np.where(significant & (deviation > 0), deviation, 0.0)
    signal = np.maximum(estimate, 0.0)
    signal.flags.writeable = False  # shared by the lights of the master
    _DARK_SHOT_SIGNAL[master] = (None if bias is None else weakref.ref(bias), signal)
    return signal


def subtract_dark(
    light: np.ndarray,
    model: DarkModel,
    *,
    egain_e_per_adu: float | None,
    read_variance_adu2: float,
    dark_shot_variance_adu2: np.ndarray | float = 0.0,
    pedestal_adu: float = 0.0,
    cfa: bool = False,
) -> CalibratedFrame:
    """Subtract the dark model from a light; the light array is not modified.

    ``cfa``: a colour (Bayer) light: the sky's shot noise is estimated per colour phase.
    """
    if light.shape != model.data.shape:
        raise CalibrationError(f"light shape {light.shape} != dark model shape {model.data.shape}")
    light32 = np.asarray(light, dtype=np.float32)
    calibrated = light32 - model.data
    gain = egain_e_per_adu if egain_e_per_adu and egain_e_per_adu > 0 else None
    var = np.float32(read_variance_adu2) + model.variance + dark_shot_variance_adu2
    if gain is not None:
        var = var + shot_signal(calibrated, var, gain, cfa=cfa) / np.float32(gain)
    if pedestal_adu:
        calibrated += np.float32(pedestal_adu)
    finite = np.isfinite(calibrated)
    stats = {
        "n_nonfinite": int(calibrated.size - np.count_nonzero(finite)),
        "median_adu": float(_median(calibrated[finite])) if finite.any() else math.nan,
        "dark_model_median_adu": float(_median(model.data)),
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
    cfa: bool = False,
) -> dict[str, tuple[Any, str]]:
    """Header cards that summarise a calibrated light's uncertainty plane.

    ``DFUNCMED``: the median uncertainty; ``DFUNV0``: the median of ``uncertainty^2`` less the
    light's own shot noise (:func:`shot_signal` over the gain, as :func:`subtract_dark` adds
    it): read noise, the dark's shot noise and the dark model's variance at a typical pixel;
    ``DFUNGAIN``: the e-/ADU of the noise model; ``DFPEDEST``: the pedestal added after
    subtraction. Measured on a central band of rows of at most :data:`UNCERTAINTY_SAMPLES`
    pixels, so its cost does not grow with the frame. ``cfa``: a colour (Bayer) frame, whose
    shot signal is estimated per colour phase (``DFUNCFA``, as :func:`subtract_dark` did).
    """
    cards: dict[str, tuple[Any, str]] = {
        "DFPEDEST": (float(f"{pedestal_adu:.6g}"), "[adu] pedestal added after subtraction"),
    }
    if cfa:
        cards["DFUNCFA"] = (True, "shot signal estimated per colour phase")
    cal = np.asarray(calibrated)
    ny, nx = cal.shape
    rows = min(ny, max(16, UNCERTAINTY_SAMPLES // max(nx, 1)))
    top = (ny - rows) // 2 // 2 * 2  # even: the band keeps the Bayer phase of the frame
    cal = cal[top : top + rows].astype(np.float32)
    unc = np.asarray(uncertainty)[top : top + rows]
    var = np.square(unc, dtype=np.float64)
    ok = np.isfinite(var) & np.isfinite(cal)
    if not ok.any():
        return cards
    cards["DFUNCMED"] = (float(f"{_median(unc[ok]):.6g}"), "[adu] median 1-sigma uncertainty")
    base = var
    if egain_e_per_adu and egain_e_per_adu > 0:
        signal = shot_signal(cal - np.float32(pedestal_adu), float(_median(var[ok])),
                             egain_e_per_adu, cfa=cfa)  # fmt: skip
        base = var - signal / egain_e_per_adu
        cards["DFUNGAIN"] = (float(f"{egain_e_per_adu:.6g}"), "[e-/adu] gain of the noise model")
    cards["DFUNV0"] = (float(f"{_median(base[ok]):.6g}"), "[adu2] uncertainty^2 less shot noise")
    return cards
