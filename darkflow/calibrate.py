"""Calibrate one light: the single owner of every rule between a match decision and a verdict.

:func:`calibrate_light` is a pure step (no file or registry access): it takes the light's
pixels and normalised header, the match decision, a master loader, the master bias, the
calibration index and the configuration, and returns a :class:`LightCalibration`. The pipeline's
light job (:mod:`darkflow.pipeline.jobs`), the explorer's residual metrics (:mod:`widgets`),
the fault benchmark and the tests all call it, so a rule changed here changes everywhere.

The rules, in order:

1. the dark model of the decision (:func:`darkflow.subtract.dark_model_for`); a recipe that
   needs a bias without one quarantines the light (``no_bias_for_scaling``); the conservative
   alternative limits the model's dark amplitude (:func:`limit_dark_amplitude`);
2. the light must have the model's shape (``shape_mismatch``);
3. e-/ADU with its uncertainty (:class:`~darkflow.model.GainEstimate`, :mod:`darkflow.subtract.gain`):
   the header's ``EGAIN``, else the night's measurement (``gain``: frame pairs, flats) combined
   with photon transfer on the dark stack (:func:`gain_from_darks`) and, when those are absent
   or loose, on the light itself; ``egain_estimated`` or ``no_gain``;
4. the noise model (read noise, the dark's shot noise) and what it is made of
   (:func:`darkflow.verify.noise_budget`), subtraction with the configured pedestal and the
   light checks (:func:`darkflow.verify.check_light`);
5. one corrective response (rescale the dark, or add a pedestal), then the checks again; the
   first findings stay on record (after a rescale, those of another gate than the scale's that
   the re-check measured again and passed were the scale error, and are dropped); the rescaled
   model carries the hot-pixel fit's error of the factor. A light that holds no dark signal
   (``no_dark_signal``: most likely dark-subtracted already) gets no response;
6. the status: :func:`darkflow.verify.light_status` (quarantined only where subtraction does
   more harm than good), degraded by non-finite pixels, an applied response, the amplitude
   limit, or a degraded match whose risk no measured check covered (the dark scale not
   measured); a light that passes every measured check is calibrated. The confidence is the
   checks' (:func:`darkflow.verify.overall_confidence`: the weakest measured gate's), at most
   the decision's for the amplitude-limited alternative.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from darkflow.config import Config
from darkflow.exceptions import CalibrationError
from darkflow.model import FrameMeta, GainEstimate, LightStatus, MasterDark, MasterStatus
from darkflow.stats import mad_std
from darkflow.stats._robust import median as _median
from darkflow.stats._robust import nanmedian as _nanmedian
from darkflow.stats.cfa import is_cfa

if TYPE_CHECKING:
    from darkflow.matching import CalibrationIndex, MatchDecision
    from darkflow.subtract import CalibratedFrame, DarkModel
    from darkflow.verify import AppliedResponse, LightAssessment, MasterAssessment

__all__ = ["LightCalibration", "calibrate_light", "gain_from_darks", "limit_dark_amplitude"]

log = logging.getLogger(__name__)

# a measured gain looser than this (relative 1-sigma) is combined with the light's own estimate
LOOSE_GAIN_REL_SIGMA = 0.05


@dataclass(frozen=True, eq=False)
class LightCalibration:
    """The outcome of :func:`calibrate_light` for one light.

    ``fields`` are the frame-report fields of the light (``status``, ``reasons`` and, once the
    light was subtracted, ``confidence``, the residual and check values, the gain and its
    source, the scale mode and the response); ``calibrated`` (pixels and 1-sigma uncertainty)
    and ``check`` are ``None`` when the light was quarantined before subtraction.
    ``first_check`` holds the checks before the corrective response (the same object as
    ``check`` when none was applied). ``delivered`` says whether a calibrated frame is to be
    written (not for a quarantined light).
    """

    status: LightStatus
    confidence: float | None
    reasons: tuple[str, ...]
    fields: dict[str, Any]
    calibrated: CalibratedFrame | None = field(default=None, repr=False)
    check: LightAssessment | None = field(default=None, repr=False)
    first_check: LightAssessment | None = field(default=None, repr=False)
    model: DarkModel | None = field(default=None, repr=False)
    egain_e_per_adu: float | None = None
    egain_source: str | None = None
    response: str = "none"
    gain: GainEstimate | None = None
    applied: AppliedResponse | None = None  # ``response`` as a record (None before subtraction)

    @property
    def delivered(self) -> bool:
        """Whether the light gets a calibrated file: not quarantined, and subtraction ran."""
        return self.status != LightStatus.QUARANTINED and self.calibrated is not None

    @property
    def hist_counts(self) -> list[int] | None:
        """Histogram of the normalised background residuals (``None`` before subtraction)."""
        res = None if self.check is None else self.check.residuals
        return None if res is None else res.hist_counts


def gain_from_darks(
    master: MasterDark, *, clip_sigma: float | None, bias: MasterDark | None = None
) -> GainEstimate | None:
    """e-/ADU by photon transfer on a dark master, with its uncertainty (``None`` without a
    lever arm): :func:`darkflow.subtract.gain.gain_from_dark_stack`; ``bias`` (the master bias) lets a
    common per-frame change of the dark signal be told from shot noise."""
    from darkflow.subtract.gain import dark_bias_level, gain_from_dark_stack

    return gain_from_dark_stack(
        master, clip_sigma=clip_sigma, bias_level=dark_bias_level(master, bias), bias=bias
    )


def _light_noise_parts(
    masters: Sequence[MasterDark], bias: MasterDark | None, model: DarkModel, exptime_s: float
) -> tuple[float, float]:
    """Every variance of a dark-subtracted light's pixel but its sky's shot noise, for photon
    transfer on the light (:func:`darkflow.subtract.gain.gain_from_light`).

    The read noise and the dark current's shot noise at the light's exposure come from the
    darks' own per-frame variance at the typical pixel (a median: the light's differences are
    judged by their MAD, which warm pixels do not move), so no bias level enters and a bias
    of another night cannot bias it (less the frames' level jitter): interpolated linearly in exposure between the model's
    masters, or, for one master scaled by ``s``, ``R + s (V - R)`` with the bias's read
    variance ``R``. The subtracted model's own noise (its masters' typical variance, by their
    weights) is the second number: it is in one calibrated light's noise, and cancels in the
    difference of two lights calibrated with the same model
    (:mod:`darkflow.subtract.lightpair`).
    """
    from darkflow.subtract import median_frame_variance, read_variance
    from darkflow.verify._stability import frame_jitter

    points = []
    for m in masters:
        v, _, _ = median_frame_variance(m)
        if not math.isfinite(v):
            v = read_variance(m)
        # a whole frame's level moving between the darks is in each pixel's temporal variance
        # but not in a light's pixel-to-pixel noise
        points.append((float(m.meta.exptime_s or 0.0), max(v - frame_jitter(m) ** 2, 0.0)))
    times = {t for t, _ in points}
    if len(times) >= 2 and exptime_s > 0:
        t, v = np.array(points).T
        slope, intercept = np.polyfit(t, v, 1)
        floor = float(intercept + slope * exptime_s)
    else:
        floor = points[0][1]
        s = float(model.scale_factor or 1.0)
        if bias is not None and abs(s - 1.0) > 1e-6:
            r = read_variance(bias)
            floor = r + s * (floor - r)
    # the model's own noise (its masters' uncertainty), not its systematic terms (a scale or
    # level error moves the whole pattern, it is not pixel-to-pixel noise of the light)
    weights = model.weights if len(model.weights) == len(masters) else (model.scale_factor,)
    model_var = 0.0
    for w, m in zip(weights, masters, strict=False):
        model_var += float(w) ** 2 * _typical_uncertainty_variance(m)
    return max(floor, 0.0), model_var


_UNCERTAINTY_VARIANCE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _typical_uncertainty_variance(master: MasterDark) -> float:
    """The median of a master's squared uncertainty (0 without finite values), once per
    master object."""
    cached = _UNCERTAINTY_VARIANCE.get(master)
    if cached is None:
        unc = master.uncertainty[np.isfinite(master.uncertainty)]
        cached = float(_median(np.square(unc, dtype=np.float64))) if unc.size else 0.0
        _UNCERTAINTY_VARIANCE[master] = cached
    return cached


def _as_estimate(value: GainEstimate | float | None, source: str) -> GainEstimate | None:
    """A caller's gain (an estimate, or a bare number of unknown precision)."""
    if value is None or isinstance(value, GainEstimate):
        return value
    g = float(value)
    return GainEstimate(g, g, source, 0) if g > 0 else None  # a bare number: 100 % uncertain


def limit_dark_amplitude(model: DarkModel, bias: MasterDark | None, k: float) -> DarkModel:
    """The conservative alternative's model: its dark signal kept within ``k`` robust sigmas
    of the typical level, so a master whose hot pixels do not fit the light cannot over-subtract
    them by much (they are left partly uncorrected instead). Capped pixels are flagged
    :data:`~darkflow.subtract.FLAG_LIMITED` and kept out of the hot-pixel scale check."""
    from darkflow.subtract import FLAG_LIMITED

    base = bias.data.astype(np.float32) if bias is not None else np.float32(_nanmedian(model.data))
    signal = model.data - base
    finite = signal[np.isfinite(signal)]
    if finite.size == 0:
        return model
    level = float(_median(finite))
    spread = mad_std(finite, center=level)
    lo, hi = level - k * spread, level + k * spread
    with np.errstate(invalid="ignore"):
        capped = (signal < lo) | (signal > hi)
    limited = np.clip(signal, lo, hi)
    flags = np.zeros(signal.shape, np.uint8) if model.flags is None else model.flags.copy()
    flags |= np.where(capped, FLAG_LIMITED, 0).astype(np.uint8)
    dark_signal = None
    if model.dark_signal is not None:
        dark_signal = (model.dark_signal - (signal - limited)).astype(np.float32)
    notes = {
        **model.notes,
        "amplitude_limit": {
            "sigma": k,
            "level": level,
            "spread": spread,
            "n_capped": int(np.count_nonzero(capped)),
        },
    }
    return dataclasses.replace(
        model,
        data=(base + limited).astype(np.float32),
        flags=flags,
        dark_signal=dark_signal,
        notes=notes,
    )


def _unchecked_risk(decision: MatchDecision, check: LightAssessment) -> bool:
    """A degraded match whose risk no measured check covered.

    The match's degrading reasons (an unproven exposure law or interpolation, an unscaled
    exposure, a widened search) are risks to the dark scale, which the light's hot-pixel fit
    measures: when that gate was measured and passed, the risk did not materialise. A master
    that is not verified always degrades the light.
    """
    from darkflow.matching import MatchReason

    if not decision.degraded:
        return False
    if MatchReason.LOW_CONFIDENCE_MASTER in decision.reasons:
        return True
    try:
        scale = check.metric("dark_scale_error")
    except KeyError:
        return True
    return scale.value is None or scale.confidence is None


def _assumed_thermal_rel_sigma(decision: MatchDecision) -> float:
    """The dark-current mismatch the match assumed, not measured: with the light's or the
    master's temperature unknown (no temperature difference to the chosen master) its thermal
    term is ``matching.unknown_temp_error`` (a guess the light's hot pixels replace,
    :func:`darkflow.verify._lightgates.scale_gates`); 0 when the difference is known."""
    chosen = decision.chosen
    if chosen is None or chosen.delta_temp_c is not None:
        return 0.0
    return float(decision.dark_rel_sigma)


def _quarantined(reasons: list[object], extra: object) -> LightCalibration:
    codes = (*map(str, reasons), str(extra))
    return LightCalibration(
        LightStatus.QUARANTINED,
        None,
        codes,
        {"status": LightStatus.QUARANTINED, "reasons": list(codes)},
    )


def calibrate_light(
    data: np.ndarray,
    meta: FrameMeta,
    decision: MatchDecision,
    *,
    load_master: Callable[[str], MasterDark],
    bias: MasterDark | None,
    index: CalibrationIndex,
    config: Config,
    master_status: MasterAssessment | MasterStatus | str | None = None,
    amplitude_limit_sigma: float | None = None,
    dark_gain: Callable[[MasterDark], GainEstimate | float | None] | None = None,
    gain: GainEstimate | None = None,
    master_biases: Mapping[str, MasterDark | None] | None = None,
    bias_level_sigma_adu: float = 0.0,
) -> LightCalibration:
    """Subtract the decision's dark model from one light, check it, respond once, judge it.

    Parameters
    ----------
    data
        The light's pixels as read (ADU); never modified.
    meta
        Its normalised header (``egain_e_per_adu``, storage type for the saturation level).
    decision
        A matched :class:`~darkflow.matching.MatchDecision` (its recipe, reasons, confidence).
    load_master
        ``master_id -> MasterDark`` for every master of the recipe (the caller does the IO).
    bias
        The configuration's master bias, or ``None``; dropped when its shape differs from the
        primary master's.
    index
        The configuration's calibration index (glow model, linearity); a metadata-only
        ``CalibrationIndex()`` is exact for unscaled single-master recipes.
    config
        The run's configuration (``subtract``, ``verify``, and ``combine.sigma_high`` for the
        photon-transfer gain on the darks).
    master_status
        The primary master's verdict (registry status or assessment): a master that is not
        verified leaves the light at best ``degraded``.
    amplitude_limit_sigma
        Limit the dark amplitude (the conservative alternative, see
        ``subtract.conservative_amplitude_sigma``); the light is then at best ``degraded``.
    dark_gain
        ``master -> GainEstimate or None``: the photon-transfer gain on the darks, for callers
        that cache it per master or measure it on more masters (the pipeline combines every
        dark master of the light's configuration and night, each with its own bias; default:
        :func:`gain_from_darks` on the primary master with ``combine.sigma_high``).
    gain
        The night's own gain measurement (frame pairs, flats: :mod:`darkflow.subtract.gain`), used when
        the header has no usable EGAIN.
    master_biases, bias_level_sigma_adu
        Passed to :func:`darkflow.subtract.dark_model_for`: the own bias of masters of
        another night, and the level uncertainty of biases borrowed from other nights.

    Returns
    -------
    LightCalibration
    """
    from darkflow.subtract import (
        dark_model_for,
        dark_shot_variance,
        noise_model_variance,
        read_variance,
        subtract_dark,
    )
    from darkflow.triage import rank_causes
    from darkflow.triage.reasons import LightReason
    from darkflow.verify import (
        AppliedResponse,
        ResponseAction,
        apply_response,
        check_light,
        light_status,
        noise_budget,
    )

    reasons: list[object] = list(decision.reasons)
    master = load_master(decision.master_id)
    if bias is not None and bias.data.shape != master.data.shape:
        bias = None
    try:
        model = dark_model_for(
            decision,
            load_master=load_master,
            bias=bias,
            index=index,
            master_biases=master_biases,
            bias_level_sigma_adu=bias_level_sigma_adu,
        )
    except CalibrationError as err:
        log.warning("%s: %s", meta.path, err)
        return _quarantined(reasons, LightReason.NO_BIAS_FOR_SCALING)
    if amplitude_limit_sigma is not None:
        model = limit_dark_amplitude(model, bias, amplitude_limit_sigma)
    if data.shape != model.data.shape:
        return _quarantined(reasons, LightReason.SHAPE_MISMATCH)

    others = tuple(
        load_master(i) for i in dict.fromkeys(decision.master_ids) if i != decision.master_id
    )
    scale_rel = math.hypot(decision.dark_rel_sigma, decision.exposure_rel_sigma)
    estimate = _light_gain(
        data, meta, master, bias, model, config, dark_gain, gain, others, scale_rel
    )
    egain = None if estimate is None else estimate.value
    source = None if estimate is None else estimate.source
    if estimate is None or estimate.source != "header":
        reasons.append(LightReason.GAIN_ESTIMATED if egain else LightReason.NO_GAIN)
    colour = is_cfa(meta.bayer_pattern)
    assumed_rel = _assumed_thermal_rel_sigma(decision)

    # the checks analyse the whole frame (not a central band of rows): they take the noise
    # model's background and neighbours' median of it (otherwise not worth keeping in memory);
    # a band of rows (the checks', the uncertainty cards') takes its levels from the frame's
    # neighbours' median and tile levels (``band_levels``)
    from darkflow.verify._fpn import row_window

    band = row_window(data.shape, config.verify.max_analysis_pixels)
    whole_frame = band.start == 0 and band.stop >= data.shape[0]

    def subtract_and_check(model: DarkModel, pedestal: float):
        if model.dark_signal is not None and egain:
            # the model's own dark signal gives the shot variance: only the read variance of
            # noise_model_variance is needed (its per-pixel shot estimate would be discarded)
            read_var = read_variance(bias) if bias is not None else read_variance(master)
            shot = dark_shot_variance(model, egain)
        else:
            read_var, shot = noise_model_variance(
                master, bias=bias, egain_e_per_adu=egain, scale_factor=model.scale_factor
            )
        cal = subtract_dark(
            data,
            model,
            egain_e_per_adu=egain,
            read_variance_adu2=read_var,
            dark_shot_variance_adu2=shot,
            pedestal_adu=pedestal,
            cfa=colour,
            keep_levels=whole_frame,
            keep_band_levels=True,
        )
        budget = noise_budget(
            master,
            bias=bias,
            read_var=read_var,
            gain=estimate,
            scale_factor=model.scale_factor,
            scale_rel_sigma=scale_rel,
            others=others,
            scale_assumed_rel_sigma=assumed_rel,
        )
        borrowed = float(model.notes.get("level_sigma_adu", 0.0) or 0.0)
        if borrowed > 0:
            # the level of biases borrowed from other nights: a uniform error of the light's
            # level against the model's, like the frames' jitter
            budget = dataclasses.replace(
                budget, level_sigma=math.hypot(budget.level_sigma, borrowed)
            )
        check = check_light(
            data,
            cal,
            model,
            meta=meta,
            config=config.verify,
            bias=bias,
            pedestal_adu=pedestal,
            noise=budget,
        )
        return cal, check

    pedestal = config.subtract.pedestal_adu
    calibrated, check = subtract_and_check(model, pedestal)
    first_check = check
    response = check.response
    applied = AppliedResponse()
    first_findings = check.failed_reasons  # the evidence behind a response stays on record
    # one corrective response, then check again (recorded either way)
    if response.action == ResponseAction.RESCALE_DARK and response.factor:
        # the light's hot pixels measured the dark's scale: the rescaled model, its variance
        # and the re-check's budget carry that measurement's error, not the match's stated
        # (or assumed) scale uncertainty
        scale_rel = _rescaled_rel_sigma(check, float(response.factor), scale_rel)
        assumed_rel = 0.0
        model = apply_response(model, response, bias=bias, scale_rel_sigma=scale_rel)
        if estimate is None or estimate.source != "header":
            # the light's own photon transfer judged its variance against the noise floor of
            # the model it was given (a wrong dark scale moves both): measured again on the
            # rescaled model, or the re-check sees the first model's error as a noise error
            estimate = _light_gain(
                data, meta, master, bias, model, config, dark_gain, gain, others, scale_rel
            )
            egain = None if estimate is None else estimate.value
            source = None if estimate is None else estimate.source
        calibrated, check = subtract_and_check(model, pedestal)
        applied = AppliedResponse(ResponseAction.RESCALE_DARK, True, response.factor)
        reasons.append(LightReason.DARK_RESCALED)
    elif response.action == ResponseAction.ADD_PEDESTAL and response.pedestal_adu:
        pedestal += float(response.pedestal_adu)
        calibrated, check = subtract_and_check(model, pedestal)
        applied = AppliedResponse(ResponseAction.ADD_PEDESTAL, True, response.pedestal_adu)
        reasons.append(LightReason.PEDESTAL_ADDED)
    elif response.action != ResponseAction.NONE:
        applied = AppliedResponse(response.action)
    if egain is None and LightReason.NO_GAIN in reasons and _noise_without_shot(check):
        reasons = [LightReason.GAIN_NOT_NEEDED if r == LightReason.NO_GAIN else r for r in reasons]
    status, _failed = light_status(check, master=master_status)
    if applied.applied and applied.action == ResponseAction.RESCALE_DARK:
        first_findings = _rescale_evidence(first_check, check)
    if applied.action != ResponseAction.NONE:
        reasons.extend(first_findings)
    reasons.extend(check.reasons)
    if calibrated.stats["n_nonfinite"]:
        reasons.append(LightReason.NONFINITE_PIXELS)
        if status == LightStatus.CALIBRATED:
            status = LightStatus.DEGRADED
    if status == LightStatus.CALIBRATED and (
        _unchecked_risk(decision, check) or applied.applied or amplitude_limit_sigma is not None
    ):
        status = LightStatus.DEGRADED  # calibrated, with a degraded expectation (reasons say why)
    confidence = float(check.confidence)
    if amplitude_limit_sigma is not None:  # the configured alternative's stated ceiling
        confidence = min(confidence, float(decision.confidence))
    confidence = round(confidence, 4)
    causes = rank_causes(reasons)
    res = check.residuals
    codes = tuple(dict.fromkeys(str(r) for r in reasons))  # each once, in order
    # the light's noise but its sky's shot noise, split into the per-frame part and the
    # model's: photon transfer on pairs of lights (pipeline/lightpairs.py) needs them apart
    floor, model_var = _light_noise_parts(
        [master, *(m for m in others if m.data.shape == master.data.shape)],
        bias,
        model,
        float(meta.exptime_s or 0.0),
    )
    fields: dict[str, Any] = {
        "status": status,
        "confidence": confidence,
        "reasons": list(codes),
        "noise_ratio": None if res is None else round(res.noise_ratio, 4),
        "neg_tail_frac": None if res is None else round(res.neg_tail_frac, 6),
        "background_adu": None if res is None else round(res.background_adu, 3),
        "egain_e_per_adu": None if egain is None else round(float(egain), 4),
        "egain_source": source if egain else None,
        "egain_sigma": None if estimate is None else round(float(estimate.sigma), 4),
        "scale_mode": str(model.scale_mode),
        "dark_level_sigma_adu": round(float(model.notes.get("level_sigma_adu", 0.0)), 4),
        "response": str(applied),
        "top_cause": str(causes[0][0]) if causes else None,
        "read_dark_variance_adu2": round(floor, 6),
        "model_variance_adu2": round(model_var, 6),
        **{k: (None if v is None else round(float(v), 6)) for k, v in check.values.items()},
    }
    return LightCalibration(
        status=status,
        confidence=confidence,
        reasons=codes,
        fields=fields,
        calibrated=calibrated,
        check=check,
        first_check=first_check,
        model=model,
        egain_e_per_adu=None if egain is None else float(egain),
        egain_source=source if egain else None,
        response=str(applied),
        gain=estimate,
        applied=applied,
    )


def _rescaled_rel_sigma(check: LightAssessment, factor: float, stated: float) -> float:
    """The relative 1-sigma of a dark signal rescaled by ``factor`` from the light's hot
    pixels: the fit's own error of the factor over the factor (``stated``, the match's, when
    the fit reports none)."""
    fit = check.values.get("dark_scale_fit_sigma")
    if fit is None or not math.isfinite(fit) or factor <= 0:
        return stated
    return float(fit) / factor


def _rescale_evidence(first: LightAssessment, again: LightAssessment) -> tuple[object, ...]:
    """The first check's findings that stay on record after the dark was rescaled.

    The scale gates' findings are the evidence behind the response and always stay. Every
    other gate of the first check judged the light against a model whose dark pattern the
    scale gate found off by many of its sigmas: the pattern left in the light (a share of
    every hot and warm pixel, of the dark's column structure) shows there as excess noise,
    holes or banding, the one scale error seen through another statistic. Where the re-check
    on the rescaled model measured that gate again and it passed, the finding was that
    error, not a second symptom, and is dropped; where it still fails or could not be
    measured again, it stays.
    """
    from darkflow.verify import GateStatus
    from darkflow.verify._light import _SCALE_REASONS

    kept = []
    for m in first.metrics:
        if not m.failed:
            continue
        if m.reason not in _SCALE_REASONS:
            try:
                if again.metric(m.name).status == GateStatus.PASS:
                    continue
            except KeyError:
                pass
        kept.append(m.reason)
    return tuple(dict.fromkeys(kept))


def _noise_without_shot(check: LightAssessment) -> bool:
    """Without a gain the noise gate judges only a too low noise; the uncertainty (no shot
    term) is complete when the light's noise is within one standard deviation (the gate's own
    spread) of it or below: no sign of a missing shot term."""
    try:
        metric = check.metric("log_variance_ratio")
    except KeyError:
        return False
    if metric.z is None or not math.isfinite(metric.z):
        return False  # not measured: nothing tells whether shot noise is missing
    # "not needed" is a claim, not the absence of an alarm: the noise within one standard
    # deviation of the prediction without shot noise, not merely below the alarm threshold
    return metric.z <= 1.0


def _light_gain(
    data: np.ndarray,
    meta: FrameMeta,
    master: MasterDark,
    bias: MasterDark | None,
    model: DarkModel,
    config: Config,
    dark_gain: Callable[[MasterDark], GainEstimate | float | None] | None,
    night: GainEstimate | None,
    others: Sequence[MasterDark] = (),
    scale_rel_sigma: float = 0.0,
) -> GainEstimate | None:
    """The light's gain: the header's EGAIN (trusted to ``verify.header_gain_rel_sigma``), else
    the night's and the darks' measurements; the light's own estimate joins them when they are
    absent or looser than :data:`LOOSE_GAIN_REL_SIGMA`. Its noise floor's dark part (the floor
    less the bias's read variance; all of it without a bias, a bound) is known to the model's
    stated scale uncertainty ``scale_rel_sigma`` (a light of unknown temperature: 15 %), and
    the light's estimate states what that does to it."""
    from darkflow.subtract import read_variance
    from darkflow.subtract.gain import combine_gains, gain_for_light, gain_from_light, header_gain

    rel = config.verify.header_gain_rel_sigma
    if header_gain(meta, rel_sigma=rel) is not None:
        return gain_for_light(meta, header_rel_sigma=rel)
    if dark_gain is None:
        darks = gain_from_darks(master, clip_sigma=config.combine.sigma_high, bias=bias)
    else:
        darks = _as_estimate(dark_gain(master), "darks")
    measured = combine_gains([night, darks])
    if measured is None or measured.rel_sigma > LOOSE_GAIN_REL_SIGMA:
        masters = [master, *(m for m in others if m.data.shape == master.data.shape)]
        floor, model_var = _light_noise_parts(masters, bias, model, float(meta.exptime_s or 0.0))
        base = floor + model_var
        dark_part = max(base - (read_variance(bias) if bias is not None else 0.0), 0.0)
        light = gain_from_light(
            data - model.data,
            base,
            cfa=is_cfa(meta.bayer_pattern),
            read_variance_sigma=scale_rel_sigma * dark_part,
            model=model.data,
            model_variance=model_var,
        )
        if _scene_biased(light, measured, config.verify.gate_false_alarm):
            return measured
        measured = combine_gains([measured, light])
    return measured


def _scene_biased(
    light: GainEstimate | None, measured: GainEstimate | None, false_alarm: float
) -> bool:
    """Is the light's own gain significantly below the darks' and the night's?

    Structure of the scene (a slit's edges, spectral lines, nebulosity) adds variance to the
    light's pixel differences that no shot noise explains, so it can only bias that estimate
    low; the darks hold no scene. A light estimate below the measured one by more than the
    one-sided gate at ``false_alarm`` (their uncertainties combined) is scene, not gain, and is
    left out rather than averaged in.
    """
    from darkflow.verify._gate import z_threshold

    if light is None or measured is None:
        return False
    spread = math.hypot(light.sigma, measured.sigma)
    if not (spread > 0 and math.isfinite(spread)):
        return False
    return (measured.value - light.value) / spread > z_threshold(false_alarm, sides=1)
