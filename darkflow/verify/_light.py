"""Checks on every calibrated light, the stacking weight and the corrective response.

See :func:`check_light` and ``docs/verification.md``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import numpy as np

from darkflow.config import VerifyConfig
from darkflow.exceptions import CalibrationError, IncompatibleFramesError
from darkflow.model import (
    FrameMeta,
    GainEstimate,
    LightStatus,
    MasterDark,
    MasterMeta,
    MasterStatus,
)
from darkflow.stats._robust import finite_squared_median
from darkflow.stats._robust import nanmedian as _nanmedian
from darkflow.stats._tails import raw_floor_terms
from darkflow.stats.cfa import is_cfa
from darkflow.subtract import FLAG_LIMITED, FLAG_NONLINEAR, DarkModel
from darkflow.verify._fpn import hot_scale_fit, row_window
from darkflow.verify._gate import z_threshold
from darkflow.verify._lightgates import (
    NoiseBudget,
    banding_gate,
    count_gate,
    deep_negative_gate,
    fit_sigma,
    hole_gate,
    level_gate,
    photometry_gates,
    pileup_gate,
    scale_gates,
    template_levels,
    variance_gate,
)
from darkflow.verify._master import MasterAssessment
from darkflow.verify._metrics import (
    LIGHT_VALUE_COLUMNS,
    Metric,
    VerifyReason,
    not_measured,
    overall_confidence,
)
from darkflow.verify._photonless import photonless_gate
from darkflow.verify._residuals import (
    ResidualStats,
    _dilate,
    neighbour_median,
    residual_parts,
    stats_from_parts,
)
from darkflow.verify.photometry import PhotometryComparison

__all__ = [
    "HARMFUL",
    "AppliedResponse",
    "LightAssessment",
    "Response",
    "ResponseAction",
    "apply_response",
    "check_light",
    "config_differences",
    "frame_weight",
    "light_status",
]

R = VerifyReason


class CalibratedLike(Protocol):
    data: np.ndarray
    uncertainty: np.ndarray


class ResponseAction(StrEnum):
    """What the pipeline may do once about a failing light (then check again)."""

    NONE = "none"
    RESCALE_DARK = "rescale_dark"  # multiply the model's dark signal by ``factor``
    USE_PREVIOUS_MASTER = "use_previous_master"  # the prior verified master of the config
    ADD_PEDESTAL = "add_pedestal"  # keep over-subtracted values above zero (no clipping)


@dataclass(frozen=True)
class Response:
    """The suggested corrective action, with its parameters and what it answers."""

    action: ResponseAction = ResponseAction.NONE
    factor: float | None = None
    pedestal_adu: float | None = None
    reason: VerifyReason | None = None
    alternative: ResponseAction = ResponseAction.NONE
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": str(self.action),
            "factor": self.factor,
            "pedestal_adu": self.pedestal_adu,
            "reason": None if self.reason is None else str(self.reason),
            "alternative": str(self.alternative),
            "note": self.note,
        }


@dataclass(frozen=True)
class AppliedResponse:
    """The corrective response a light got: its action, whether it was applied or only
    suggested, and its parameter (the dark's factor or the added pedestal, ADU).

    ``str()`` is the recorded form (``frame_report.csv`` ``response``): ``none``,
    ``rescale_dark x<factor>``, ``add_pedestal <ADU>`` or ``suggested: <action>``.
    """

    action: ResponseAction = ResponseAction.NONE
    applied: bool = False
    value: float | None = None

    def __str__(self) -> str:
        if self.action == ResponseAction.NONE:
            return "none"
        if not self.applied:
            return f"suggested: {self.action}"
        if self.action == ResponseAction.RESCALE_DARK:
            return f"rescale_dark x{self.value:.4g}"
        return f"add_pedestal {self.value:.4g}"


@dataclass(frozen=True)
class LightAssessment:
    """Verdict on one calibrated light.

    ``values`` holds every measured number flat (for ``frame_report.csv``), ``metrics`` the
    gated checks, ``weight`` the stacking weight (:func:`frame_weight`), ``response`` what to
    do once about a failure.
    """

    confidence: float
    metrics: tuple[Metric, ...]
    reasons: tuple[VerifyReason, ...]
    weight: float
    response: Response
    values: dict[str, float | None] = field(default_factory=dict)
    residuals: ResidualStats | None = None
    photometry: PhotometryComparison | None = None

    @property
    def passed(self) -> bool:
        return not any(m.failed for m in self.metrics)

    @property
    def failed_reasons(self) -> tuple[VerifyReason, ...]:
        return tuple(dict.fromkeys(m.reason for m in self.metrics if m.failed))  # type: ignore[misc]

    def metric(self, name: str) -> Metric:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "confidence": self.confidence,
            "weight": self.weight,
            "reasons": [str(r) for r in self.reasons],
            "response": self.response.to_dict(),
            "metrics": [m.to_dict() for m in self.metrics],
            "values": dict(self.values),
        }

    def __repr__(self) -> str:
        why = ",".join(self.reasons) or "-"
        return f"<LightAssessment conf={self.confidence:.2f} weight={self.weight:.3g} [{why}]>"


def frame_weight(uncertainty: np.ndarray, background: np.ndarray, noise_ratio: float) -> float:
    """Stacking weight of a calibrated light: inverse background variance.

    ``weight = 1 / (median(uncertainty**2 over background pixels) * max(1, noise_ratio**2))``
    in ADU⁻²: the propagated per-pixel variance (shot + read + master + scale-factor terms)
    of the sky background, inflated when the measured background noise exceeds it. Frames of
    one target and exposure are weighted relative to each other; the absolute scale is
    irrelevant to a weighted mean.
    """
    typical = float(finite_squared_median(uncertainty[background]))
    if math.isnan(typical):  # no finite value
        return 0.0
    excess = noise_ratio**2 if math.isfinite(noise_ratio) else 1.0
    return float(1.0 / (typical * max(1.0, excess)))


PILE_UP_MIN_PIXELS = 16  # pixels at the frame's maximum that mark it as the clip level


def _saturation(
    meta: FrameMeta, raw: np.ndarray, saturation_adu: float | None, sample: np.ndarray
) -> float | None:
    """The raw level at which the light clips.

    The given level, else the storage type's maximum, lowered to the sample's maximum when
    pixels pile up there: an ADC of fewer bits scaled to 16 (a 12-bit value times 16 clips
    at 65520) or a camera's own full-well clip never reaches the type's maximum, and a
    distribution cut at the clip would read as too little noise.
    """
    if saturation_adu is not None:
        return float(saturation_adu)
    name = meta.dtype or raw.dtype.name
    try:
        dtype = np.dtype(name)
    except TypeError:
        return None
    if dtype.kind not in "ui":
        return None
    sat = float(np.iinfo(dtype).max)
    if sample.size:
        top = float(np.max(sample))
        if top < sat and np.count_nonzero(sample >= top) >= PILE_UP_MIN_PIXELS:
            sat = top
    return sat


def _analysis_rows(shape: tuple[int, int], max_pixels: int, colour: bool) -> slice:
    rows = row_window(shape, max_pixels)
    if colour and rows.start % 2:  # keep the colour phases of the full frame
        rows = slice(rows.start - 1, rows.stop - 1)
    return rows


def _known_levels(
    calibrated: CalibratedLike,
    rows: slice,
    pedestal_adu: float,
    colour: bool,
    data: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The background and neighbours' median the subtraction measured on the calibrated values
    (``CalibratedFrame.levels``), when they are those of the analysed pixels: every row, no
    pedestal in between (``x + p - p`` may round), the same colour handling. A band of rows
    gets its own from what was measured on the frame (``CalibratedFrame.band_levels``);
    ``data``: the band's float32 values, when the caller has them."""
    levels = getattr(calibrated, "levels", None)
    ny = calibrated.data.shape[0]
    if pedestal_adu or rows.step not in (None, 1):
        return None
    whole = (rows.start or 0) == 0 and (rows.stop if rows.stop is not None else ny) >= ny
    if whole and levels is not None and levels[2] == colour:
        return levels[0], levels[1]
    band = getattr(calibrated, "band_levels", None)
    if band is None or band.cfa != colour or band.local.shape != calibrated.data.shape:
        return None
    if data is None:
        data = calibrated.data[rows].astype(np.float32)
    return band.band(rows, data)


def _rows32(a: np.ndarray, rows: slice) -> np.ndarray:
    """``a[rows]`` as float32: a view when ``a`` is float32 (C order kept), else a copy."""
    return np.asarray(a[rows]).astype(np.float32, copy=False)


def _header_gain(meta: FrameMeta) -> GainEstimate | None:
    g = meta.egain_e_per_adu
    return GainEstimate(float(g), 0.0, "header") if g and g > 0 else None


def check_light(
    raw: np.ndarray,
    calibrated: CalibratedLike,
    model: DarkModel,
    *,
    meta: FrameMeta,
    config: VerifyConfig | None = None,
    bias: MasterDark | None = None,
    pedestal_adu: float = 0.0,
    saturation_adu: float | None = None,
    noise: NoiseBudget | None = None,
) -> LightAssessment:
    """Check one calibrated light: noise level, dark scale, tails, banding, level, photometry.

    Every check is a statistical test (``docs/verification.md``, "Light gates"): its statistic
    against the value it takes when the calibration is right, in units of its spread then, at
    the false-alarm probability ``config.gate_false_alarm``. A check that cannot be measured
    (no stars, too few background pixels or hot pixels) is ``not_measured`` and changes nothing.
    A colour frame (``meta.bayer_pattern``) is analysed per colour phase, its stars on
    superpixel luminance (:mod:`darkflow.stats.cfa`).

    Parameters
    ----------
    raw
        The light as read (ADU); never modified.
    calibrated
        ``raw - model`` (plus ``pedestal_adu``) with its propagated ``uncertainty``.
    model
        The dark model that was subtracted (bias included).
    meta
        The light's normalised header (gain, storage type, Bayer pattern).
    config
        ``gate_false_alarm``, ``min_stars``, ``max_analysis_pixels``.
    bias
        The master bias, when one was used (sharpens the dark-scale fit and the rescaling).
    pedestal_adu
        Pedestal added after subtraction (removed before the plausibility checks).
    saturation_adu
        ADC saturation of the raw data; by default the maximum of its integer type.
    noise
        What the uncertainty is made of and how well each part is known
        (:func:`~darkflow.verify.noise_budget`); by default the header's gain, taken as exact,
        and nothing else known.

    Returns
    -------
    LightAssessment

    Raises
    ------
    IncompatibleFramesError
        Raw, calibrated, uncertainty and model shapes differ.
    """
    config = config or VerifyConfig()
    p = config.gate_false_alarm
    raw = np.asarray(raw)
    shapes = {raw.shape, calibrated.data.shape, calibrated.uncertainty.shape, model.data.shape}
    if len(shapes) != 1 or raw.ndim != 2:
        raise IncompatibleFramesError(f"light check: shapes differ or not 2-D: {sorted(shapes)}")
    colour = is_cfa(meta.bayer_pattern)
    budget = noise if noise is not None else NoiseBudget(gain=_header_gain(meta))
    rows = _analysis_rows(raw.shape, config.max_analysis_pixels, colour)
    # float32 views of the analysed rows where the frames are float32 already (no check writes
    # into its inputs); the pedestal's removal is a new array only when there is one
    c = _rows32(calibrated.data, rows)
    if pedestal_adu or math.copysign(1.0, pedestal_adu) < 0:  # x - 0.0 is x, x + 0.0 is not
        c = c - np.float32(pedestal_adu)
    u = _rows32(calibrated.uncertainty, rows)
    r = _rows32(raw, rows)
    mdl = _rows32(model.data, rows)
    mvar = _rows32(model.variance, rows)
    sat = _saturation(meta, raw, saturation_adu, r)
    parts = residual_parts(
        c, u, cfa=colour, levels=_known_levels(calibrated, rows, pedestal_adu, colour, c)
    )
    res = stats_from_parts(parts)
    valid = parts.valid
    unclipped = None if sat is None else r < sat  # raw below the clip (three checks use it)
    if unclipped is not None:
        valid = valid & unclipped
        # a pixel whose expected raw level lies within 3 sigma of the clip has a cut
        # distribution (too little noise, a biased mean): not background for any gate. Only
        # looked for when some pixel reads within 6 sigma of the clip (otherwise every such
        # pixel would have fallen 3 sigma or more below its level): most lights skip the pass
        if r.size and float(np.nanmax(r)) >= sat - 6.0 * float(np.nanmax(u)):
            with np.errstate(invalid="ignore"):
                valid &= parts.background + (r - c) + 3.0 * u < sat
    metrics: list[Metric] = []
    values: dict[str, float | None] = {}
    values.update(noise_ratio=res.noise_ratio, source_frac=res.source_frac)

    # the model's dark signal (bias removed when known): the hot-pixel template
    signal = getattr(model, "dark_signal", None)
    if signal is not None and signal.shape == model.data.shape:
        template = _rows32(signal, rows)
    elif bias is not None:
        template = mdl - bias.data[rows].astype(np.float32)
    else:
        template = mdl
    known_signal = template if (signal is not None or bias is not None) else None

    # 1. background noise against the propagated uncertainty
    sys_var = getattr(model, "systematic_variance", None)
    metric, found = variance_gate(
        c,
        u,
        valid,
        mvar,
        budget,
        colour=colour,
        false_alarm=p,
        dark_signal=known_signal,
        systematic_var=None if sys_var is None else sys_var[rows],
        sky_adu=res.background_adu if math.isfinite(res.background_adu) else None,
    )
    metrics.append(metric)
    values.update(found)
    variance_metric = metric
    ratio = values.get("light_variance_ratio")

    # 2. dark scale: the light's hot pixels against the model's. Sources are masked from the
    #    neighbour median, so an under-subtracted hot pixel (a lone bright pixel) stays in.
    local = parts.local if parts.local is not None else neighbour_median(c)
    template_local, near, level = template_levels(template, colour)  # shared: equal models
    with np.errstate(invalid="ignore"):
        extended = (local - parts.background) > 2.5 * u
    scale_mask = np.isfinite(c) & np.isfinite(u) & ~_dilate(extended, 2)
    flags = getattr(model, "flags", None)
    if flags is not None and flags.shape == model.data.shape:
        scale_mask &= (flags[rows] & FLAG_LIMITED) == 0  # deliberately under-corrected
    if unclipped is not None:
        scale_mask &= unclipped
    if budget.stable_hot is not None and budget.stable_hot.shape == model.data.shape:
        scale_mask &= budget.stable_hot[rows]  # hot in (nearly) every dark: a light holds it too
    fit = hot_scale_fit(
        c,
        template,
        u,
        mask=scale_mask,
        target_local=local,
        template_local=template_local,
        robust_start=True,
    )
    # whether the fitted pixels are hot pixels of the sensor: stable in the master's darks, or
    # (a master of one or two darks, where a cosmic ray looks stable) one population following
    # one scale (a chi-square within its own sampling spread)
    homogeneous = fit.n >= 5 and fit.chi2_red <= 1.0 + z_threshold(p, sides=1) * math.sqrt(
        2.0 / max(fit.n - 1, 1)
    )
    provable = noise is None or budget.stable_hot is not None or bool(homogeneous)
    scale_metrics, scale_sigma = scale_gates(fit, budget, false_alarm=p, provable=provable)
    metrics.extend(scale_metrics)
    values.update(
        dark_scale_error=fit.alpha,
        dark_scale_error_sigma=scale_sigma,
        dark_scale_fit_sigma=fit_sigma(fit) if fit.n else math.nan,
        dark_scale_pixels=float(fit.n),
        dark_scale_chi2=fit.chi2_red,
        dark_scale_pixel_noise=fit.pixel_rel_noise,
    )

    # 3. isolated holes and the deep negative tail
    extra = None
    if budget.frame_variance is not None and budget.frame_variance.shape == model.data.shape:
        shot = np.float32(0.0)
        g = budget.gain
        if g is not None and g.value > 0 and signal is not None:
            shot = np.maximum(signal[rows], 0.0) / np.float32(g.value)
        extra = np.maximum(budget.frame_variance[rows] - np.float32(budget.read_var) - shot, 0)
    with np.errstate(invalid="ignore"):  # where the model removed a pixel-scale excess
        model_hot = (template - template_local) > 3.0 * u
    frames = budget.master_frames
    settled = None  # a two-level (random-telegraph) pixel's scatter is in no recorded plane
    if budget.clip_tail is not None and budget.clip_tail.shape == model.data.shape:
        settled = budget.clip_tail[rows] >= np.float32(p)
    metric, found = hole_gate(
        parts.z,
        valid,
        u,
        res.noise_ratio,
        extra,
        false_alarm=p,
        model_hot=model_hot,
        dof=frames - 1 if frames and frames > 1 else None,
        settled=settled,
    )
    metrics.append(metric)
    values.update(found)
    metric, deep = deep_negative_gate(
        c,
        u,
        local,
        parts.background,
        valid,
        res.noise_ratio,
        false_alarm=p,
        model_hot=model_hot,
        extra_var=extra,
    )
    metrics.append(metric)
    # a pixel saturated in the raw light (a hot pixel full in light and darks reads exactly 0)
    # holds no value that could have been clipped
    pile, piled = pileup_gate(
        c if unclipped is None else np.where(unclipped, c, np.float32(np.nan)), false_alarm=p
    )
    if pile is not None:
        metrics.append(pile)
    values.update(negative_frac=deep, floor_pileup_frac=piled)

    # 4. fixed-pattern banding left in the background (columns; rows as a value)
    ratio = values.get("light_variance_ratio")
    metric, found = banding_gate(
        c,
        parts.background,
        u,
        valid,
        colour=colour,
        false_alarm=p,
        noise_ratio=math.sqrt(ratio) if ratio else 1.0,
        sources=parts.sources,
        model=mdl,
        model_var=mvar if sys_var is None else np.maximum(mvar - sys_var[rows], 0.0),
        scale_rel_sigma=budget.scale_rel_sigma,
    )
    metrics.append(metric)
    values.update(found)

    # 5. plausibility: no sky is negative, nothing sits at the ADC zero or above its range
    metric, found = level_gate(
        c, u, valid, budget, colour=colour, false_alarm=p, dark_signal=known_signal
    )
    metrics.append(metric)
    values.update(found)
    if bias is None:
        # without a bias of the night nothing anchors the model's level to the light's but the
        # sky's sign: a level offset of the darks that leaves the sky positive is sky to any
        # statistic of the light (the one-sided gate above is all that can be said)
        metrics.append(
            not_measured(
                "dark_level_offset",
                R.LEVEL_UNMEASURED,
                "no bias: an offset is seen only where it drives the sky negative",
            )
        )
    width = res.noise_ratio if math.isfinite(res.noise_ratio) and res.noise_ratio > 0 else 1.0
    # the raw level a pixel expects is the model plus a sky of at least zero; sources sit far
    # above it (their own noise would otherwise make the floor look reachable). One pass
    # (numba; the numpy twin is the former code, the same values)
    n_finite, at_zero, mu_zero, above = raw_floor_terms(
        c, u, r, mdl, parts.background, parts.sources, width, sat
    )
    metrics.append(
        count_gate("raw_floor_frac", at_zero, mu_zero, n_finite, R.RAW_AT_FLOOR, false_alarm=p)
    )
    values["raw_floor_frac"] = at_zero / max(n_finite, 1)
    if sat is not None and above is not None:
        from scipy.special import ndtr

        mu_above = n_finite * float(ndtr(-5.0))
        metrics.append(
            count_gate(
                "above_range_frac", above, mu_above, n_finite, R.IMPLAUSIBLE_VALUES, false_alarm=p
            )
        )
        values["above_range_frac"] = above / max(n_finite, 1)

    # 6. photometric integrity: the same real stars before and after calibration
    # the model's hot pixels (their removal is calibration, so both measurements fill them
    # alike): above the sky's noise (not each pixel's own, which a star's shot noise raises)
    # and isolated, i.e. their 8 neighbours hold less than half of their excess (a star in the
    # model is not a hot pixel: it is what the flux gate looks for)
    u_sky = float(values["pixel_sigma_adu"] or 0.0) if valid.any() else np.inf  # level gate's
    with np.errstate(invalid="ignore"):
        excess = template - near
        hot = (excess > np.float32(3.0 * u_sky)) & ((near - np.float32(level)) < 0.5 * excess)
    phot_metrics, found, phot = photometry_gates(
        r,
        c,
        mdl,
        mvar,
        u,
        parts.background,
        hot,
        sat,
        colour=colour,
        min_stars=config.min_stars,
        false_alarm=p,
    )
    metrics.extend(phot_metrics)
    values.update(found)

    # over-subtraction with well-matched hot pixels: not dark current (thermal, gain, exposure)
    failing = {m.reason for m in metrics if m.failed}
    scale_ok = math.isfinite(scale_sigma) and not (failing & _SCALE_REASONS)
    if scale_ok and failing & {R.NEGATIVE_BACKGROUND, R.NEGATIVE_CLIPPING}:
        metrics.append(
            Metric(
                "oversubtraction_kind",
                round(fit.alpha, 6),
                "",
                None,
                R.SMOOTH_OVERSUBTRACTION,
                "hot-pixel scale matches; the excess is smooth",
            )
        )
        if bias is None and known_signal is None:
            # the model's read variance is its darks' own: does the excess carry photons?
            kind = photonless_gate(
                variance_metric,
                background_adu=values.get("background_adu"),
                pixel_sigma_adu=values.get("pixel_sigma_adu"),
                n_pixels=values.get("variance_pixels"),
                budget=budget,
                false_alarm=p,
            )
            if kind is not None:
                metrics.append(kind)

    noise_ratio = math.sqrt(ratio) if ratio is not None and math.isfinite(ratio) else math.nan
    weight = frame_weight(u, valid, noise_ratio if math.isfinite(noise_ratio) else 1.0)
    values["weight"] = weight
    pix = values.get("pixel_sigma_adu")
    if pix is not None and math.isfinite(pix):
        excess = max(ratio, 1.0) if ratio is not None and math.isfinite(ratio) else 1.0
        values["expected_noise_adu"] = pix * math.sqrt(excess)
    if math.isfinite(scale_sigma):
        values["dark_residual_frac"] = abs(fit.alpha)
    failing = {m.reason for m in metrics if m.failed}
    response = _response(failing, fit.alpha, values.get("background_adu"), pix, provable)
    reasons = tuple(dict.fromkeys(m.reason for m in metrics if m.reason is not None))
    clean = dict.fromkeys(LIGHT_VALUE_COLUMNS)
    clean.update(
        {
            k: (None if v is None or not math.isfinite(v) else round(float(v), 6))
            for k, v in values.items()
        }
    )
    return LightAssessment(
        confidence=overall_confidence(metrics),
        metrics=tuple(metrics),
        reasons=reasons,
        weight=weight,
        response=response,
        values=clean,
        residuals=res,
        photometry=phot,
    )


_SCALE_REASONS = frozenset(
    {R.DARK_OVERSCALED, R.DARK_UNDERSCALED, R.NO_DARK_SIGNAL, R.HARMFUL_SUBTRACTION}
)


def _response(
    failing: set,
    alpha: float,
    bg_level: float | None,
    pix_sigma: float | None,
    provable: bool = True,
) -> Response:
    bg_level = math.nan if bg_level is None else bg_level
    pix_sigma = math.nan if pix_sigma is None else pix_sigma
    if VerifyReason.NO_DARK_SIGNAL in failing:
        return Response(
            ResponseAction.NONE,
            reason=VerifyReason.NO_DARK_SIGNAL,
            note="the light holds none of the model's dark signal (most likely dark-subtracted "
            "already, e.g. by the capture program): it is not calibrated again",
        )
    scale = {VerifyReason.DARK_OVERSCALED, VerifyReason.DARK_UNDERSCALED} & failing
    if scale and not provable:
        return Response(
            ResponseAction.USE_PREVIOUS_MASTER,
            reason=scale.pop(),
            note="the master has too few darks to tell its hot pixels from cosmic rays: no "
            "rescaling; use the previous verified master",
        )
    if scale and not 0.0 < 1.0 + alpha < 100.0:
        return Response(
            ResponseAction.USE_PREVIOUS_MASTER,
            reason=scale.pop(),
            note=f"the light holds {1.0 + alpha:.3g}x the model's dark signal: beyond any "
            "rescaling; use the previous verified master",
        )
    if scale:
        factor = round(1.0 + alpha, 4)
        return Response(
            ResponseAction.RESCALE_DARK,
            factor=factor,
            reason=scale.pop(),
            alternative=ResponseAction.USE_PREVIOUS_MASTER,
            note=f"rescale the dark signal of the model by {factor:g} (hot-pixel fit), check again",
        )
    negative = {VerifyReason.NEGATIVE_BACKGROUND, VerifyReason.NEGATIVE_CLIPPING} & failing
    if negative and not math.isfinite(bg_level + pix_sigma):
        # no background measured (a saturated or blank frame): no pedestal can be derived
        return Response(
            ResponseAction.USE_PREVIOUS_MASTER,
            reason=negative.pop(),
            note="over-subtracted, background not measurable: use the previous verified master",
        )
    if negative:
        pedestal = float(math.ceil(max(-bg_level, 0.0) + 3.0 * pix_sigma))
        return Response(
            ResponseAction.USE_PREVIOUS_MASTER,
            pedestal_adu=pedestal,
            reason=negative.pop(),
            alternative=ResponseAction.ADD_PEDESTAL,
            note="over-subtracted without a hot-pixel scale error (stray light or a bias offset "
            f"in the darks): use the previous verified master, else add a {pedestal:g} ADU "
            "pedestal so nothing clips",
        )
    if VerifyReason.LIGHT_BANDING in failing:
        return Response(
            ResponseAction.USE_PREVIOUS_MASTER,
            reason=VerifyReason.LIGHT_BANDING,
            note="the master's bias pattern does not match the light: use the previous "
            "verified master of the configuration",
        )
    return Response()


def _unbiased_base(data: np.ndarray) -> np.ndarray:
    """What a dark model without a known bias holds besides its dark signal: each column's
    median level. A dark's column pattern is the readout's (the bias's fixed column offsets),
    which no dark current moves; scaled with the dark signal it would leave ``1 - factor`` of
    it in the light as banding. Each column's typical dark level stays as it was, as the frame's
    median level did (a column without a finite pixel takes the frame's)."""
    level = np.float32(_nanmedian(data))
    finite = np.isfinite(data)
    columns = np.full(data.shape[1], level, np.float32)
    has = finite.any(axis=0)
    if has.any():
        columns[has] = np.nanmedian(data[:, has], axis=0)
    return np.broadcast_to(columns[None, :], data.shape)


def apply_response(
    model: DarkModel,
    response: Response,
    *,
    bias: MasterDark | None = None,
    scale_rel_sigma: float | None = None,
) -> DarkModel:
    """A new dark model with a :attr:`ResponseAction.RESCALE_DARK` response applied.

    The dark signal (model minus the master bias, or minus each column's median level when
    no bias is known (:func:`_unbiased_base`): the typical dark level and the bias's column
    pattern then stay as they were) is multiplied by ``response.factor``; its variance by
    ``factor**2``. Other actions need the pipeline (another master, a pedestal in
    ``subtract_dark``): the model is returned unchanged.
    :func:`check_light` only suggests a factor significantly above 0 (a light without dark
    signal gets ``no_dark_signal`` instead); a factor outside ``(0, 100)`` given by hand raises
    :class:`~darkflow.exceptions.CalibrationError`.

    ``scale_rel_sigma``: the relative 1-sigma of the rescaled dark signal, measured (the
    hot-pixel fit's error of the factor, over the factor). The model's stated scale uncertainty
    (:attr:`~darkflow.subtract.DarkModel.systematic_variance`: a temperature assumed or a law
    fitted, an exposure scaling) described how far its dark signal might be from the light's;
    the light's hot pixels have now measured that scale, so the term becomes
    ``(scale_rel_sigma x rescaled dark signal)²``, in the variance and the systematic part
    alike. Pixels above the measured linear range (:data:`FLAG_NONLINEAR`) keep their own
    per-pixel error (the larger of the two): a scale measured on the hot pixels says nothing
    about them. ``None``: the stated term is only multiplied by ``factor**2``.
    """
    if response.action != ResponseAction.RESCALE_DARK or response.factor is None:
        return model
    f = np.float32(response.factor)
    if not (0.0 < f < 100.0):
        raise CalibrationError(f"implausible dark rescaling factor {response.factor!r}")
    if bias is not None:
        if bias.data.shape != model.data.shape:
            raise CalibrationError("master bias shape differs from the dark model")
        base = bias.data.astype(np.float32)
    else:
        base = _unbiased_base(model.data)
    data = (base + f * (model.data - base)).astype(np.float32)
    changes: dict[str, Any] = {
        "data": data,
        "variance": (f * f * model.variance).astype(np.float32),
        "scale_factor": model.scale_factor * float(f),
    }
    stated = getattr(model, "systematic_variance", None)
    if stated is not None:
        changes["systematic_variance"] = (f * f * stated).astype(np.float32)
    if getattr(model, "dark_signal", None) is not None:
        changes["dark_signal"] = (f * model.dark_signal).astype(np.float32)
    if scale_rel_sigma is not None and math.isfinite(scale_rel_sigma) and scale_rel_sigma >= 0:
        signal = changes.get("dark_signal", data - base)
        measured = np.square(np.float32(scale_rel_sigma) * np.nan_to_num(signal))
        old = np.zeros_like(measured) if stated is None else f * f * stated
        if model.flags is not None:
            own = (model.flags & FLAG_NONLINEAR) != 0
            measured = np.where(own, np.maximum(measured, old), measured)
        variance = np.maximum(changes["variance"] - old, 0.0) + measured
        changes["variance"] = variance.astype(np.float32)
        changes["systematic_variance"] = measured.astype(np.float32)
    return dataclasses.replace(model, **changes)


def light_status(
    light: LightAssessment,
    *,
    master: MasterAssessment | MasterStatus | str | None = None,
    config: VerifyConfig | None = None,
) -> tuple[LightStatus, tuple[VerifyReason, ...]]:
    """Recommended final state of a light from its checks (and its master's verdict).

    ``quarantined`` only where subtracting the dark model does more harm than good: the light
    holds none of its dark signal (``no_dark_signal``) or stays over-subtracted by more than
    half of it (``harmful_subtraction``); ``degraded`` when a measured check failed or the
    master (its assessment or registry status) is not verified; ``calibrated`` otherwise (a
    check that was not measured changes nothing). Returns the failing reasons. ``config`` is
    accepted for compatibility; no threshold of it is used.
    """
    del config
    reasons = light.failed_reasons
    status = master.status if isinstance(master, MasterAssessment) else master
    if set(reasons) & HARMFUL:
        return LightStatus.QUARANTINED, reasons
    if reasons or (status is not None and status != MasterStatus.VERIFIED):
        return LightStatus.DEGRADED, reasons
    return LightStatus.CALIBRATED, reasons


HARMFUL = frozenset({VerifyReason.NO_DARK_SIGNAL, VerifyReason.HARMFUL_SUBTRACTION})
"""Reasons that mean subtraction did more harm than good: the light is quarantined."""


def config_differences(
    light: FrameMeta,
    masters: Iterable[MasterMeta],
    *,
    unmatched: bool = False,
    exptime_rel_tol: float | None = None,
) -> tuple[VerifyReason, ...]:
    """Why masters of the light's camera do not fit its configuration (gain, offset, mode...).

    Only masters of the same instrument are considered; empty when none is of the same
    instrument or, unless ``unmatched``, when one of them has the light's configuration
    signature. A light that found no dark model (``unmatched``) learns what differs in the
    masters of another configuration even when its own configuration has some masters (those
    of other exposures): darks of its exposure taken at another gain are the likely reason.
    With ``exptime_rel_tol``, a matched light whose configuration has masters, but none at its
    exposure (within that relative tolerance), learns what differs in the masters of another
    configuration that are at its exposure: its model was scaled, interpolated or borrowed
    because the darks taken for it are of another setting.
    """
    same = [m for m in masters if m.instrument == (light.instrument or "unknown")]
    if not same:
        return ()
    if any(m.config_signature == light.config_signature for m in same):
        own = light.config_signature
        if unmatched:
            same = [m for m in same if m.config_signature != own]
        elif exptime_rel_tol is not None and light.exptime_s:

            def at_exposure(m) -> bool:
                e = m.exptime_s
                return bool(e) and abs(e - light.exptime_s) <= exptime_rel_tol * light.exptime_s

            if any(m.config_signature == own and at_exposure(m) for m in same):
                return ()
            same = [m for m in same if m.config_signature != own and at_exposure(m)]
        else:
            return ()
    out: list[VerifyReason] = []
    for m in same:
        if m.gain_setting != light.gain_setting:
            out.append(VerifyReason.CONFIG_GAIN_DIFFERS)
        if m.offset != light.offset:
            out.append(VerifyReason.CONFIG_OFFSET_DIFFERS)
        if (m.readout_mode or None) != (light.readout_mode or None):
            out.append(VerifyReason.CONFIG_READOUT_DIFFERS)
        if (
            m.gain_setting == light.gain_setting
            and m.offset == light.offset
            and (m.readout_mode or None) == (light.readout_mode or None)
        ):
            out.append(VerifyReason.CONFIG_OTHER_DIFFERS)
    return tuple(dict.fromkeys(out))
