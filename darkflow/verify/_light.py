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
from darkflow.model import FrameMeta, LightStatus, MasterDark, MasterMeta, MasterStatus
from darkflow.photometry import PhotometryComparison, compare_photometry, detect_stars
from darkflow.subtract import FLAG_LIMITED, DarkModel
from darkflow.verify._fpn import band_energies, hot_scale_fit, row_window
from darkflow.verify._master import MasterAssessment
from darkflow.verify._metrics import (
    LIGHT_VALUE_COLUMNS,
    Metric,
    VerifyReason,
    gated,
    overall_confidence,
    unavailable,
)
from darkflow.verify._residuals import (
    ResidualStats,
    _dilate,
    neighbour_median,
    residual_parts,
    stats_from_parts,
)

__all__ = [
    "LightAssessment",
    "Response",
    "ResponseAction",
    "apply_response",
    "check_light",
    "config_differences",
    "frame_weight",
    "light_status",
]


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
    var = np.square(uncertainty[background].astype(np.float64))
    var = var[np.isfinite(var)]
    if var.size == 0:
        return 0.0
    excess = noise_ratio**2 if math.isfinite(noise_ratio) else 1.0
    return float(1.0 / (float(np.median(var)) * max(1.0, excess)))


def _saturation(meta: FrameMeta, raw: np.ndarray, saturation_adu: float | None) -> float | None:
    if saturation_adu is not None:
        return float(saturation_adu)
    name = meta.dtype or raw.dtype.name
    try:
        dtype = np.dtype(name)
    except TypeError:
        return None
    return float(np.iinfo(dtype).max) if dtype.kind in "ui" else None


def _variance_metric(ratio: float, limit: float) -> Metric:
    if ratio >= 1.0 or not math.isfinite(ratio):
        return gated("light_variance_ratio", ratio, ratio - 1.0, limit - 1.0,
                     VerifyReason.LIGHT_VARIANCE_EXCESS, f"1/{limit:g}..{limit:g}")  # fmt: skip
    return gated("light_variance_ratio", ratio, 1.0 / ratio - 1.0, limit - 1.0,
                 VerifyReason.LIGHT_VARIANCE_LOW, f"1/{limit:g}..{limit:g}")  # fmt: skip


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
) -> LightAssessment:
    """Check one calibrated light: noise model, dark scale, banding, plausibility, photometry.

    Parameters
    ----------
    raw
        The light as read (ADU); never modified.
    calibrated
        ``raw - model`` (plus ``pedestal_adu``) with its propagated ``uncertainty``.
    model
        The dark model that was subtracted (bias included).
    meta
        The light's normalised header (storage type for the saturation level).
    config
        Tolerance bands.
    bias
        The master bias, when one was used (sharpens the dark-scale fit and the rescaling).
    pedestal_adu
        Pedestal added after subtraction (removed before the plausibility checks).
    saturation_adu
        ADC saturation of the raw data; by default the maximum of its integer type.

    Returns
    -------
    LightAssessment

    Raises
    ------
    IncompatibleFramesError
        Raw, calibrated, uncertainty and model shapes differ.
    """
    config = config or VerifyConfig()
    raw = np.asarray(raw)
    shapes = {raw.shape, calibrated.data.shape, calibrated.uncertainty.shape, model.data.shape}
    if len(shapes) != 1 or raw.ndim != 2:
        raise IncompatibleFramesError(f"light check: shapes differ or not 2-D: {sorted(shapes)}")
    rows = row_window(raw.shape, config.max_analysis_pixels)
    c = calibrated.data[rows].astype(np.float32) - np.float32(pedestal_adu)
    u = calibrated.uncertainty[rows].astype(np.float32)
    r = raw[rows].astype(np.float32)
    mdl = model.data[rows].astype(np.float32)
    sat = _saturation(meta, raw, saturation_adu)
    parts = residual_parts(c, u)
    res = stats_from_parts(parts)
    valid = parts.valid
    if sat is not None:
        valid = valid & (r < sat)
    metrics: list[Metric] = []
    values: dict[str, float | None] = {}

    # 1. background noise against the propagated uncertainty; isolated holes
    ratio = res.noise_ratio**2
    metrics.append(_variance_metric(ratio, config.max_variance_ratio))
    metrics.append(gated("neg_tail_frac", res.neg_tail_frac, res.neg_tail_frac,
                         config.max_negative_frac, VerifyReason.HOT_PIXEL_HOLES,
                         f"<= {config.max_negative_frac:g}"))  # fmt: skip
    values.update(noise_ratio=res.noise_ratio, light_variance_ratio=ratio,
                  neg_tail_frac=res.neg_tail_frac, source_frac=res.source_frac)  # fmt: skip

    # 2. dark scale: the light's hot pixels against the model's. Sources are masked from the
    #    neighbour median, so an under-subtracted hot pixel (a lone bright pixel) stays in.
    signal = getattr(model, "dark_signal", None)
    if signal is not None and signal.shape == model.data.shape:
        template = signal[rows].astype(np.float32)
    elif bias is not None:
        template = mdl - bias.data[rows].astype(np.float32)
    else:
        template = mdl
    local = parts.local if parts.local is not None else neighbour_median(c)
    template_local = neighbour_median(template)
    with np.errstate(invalid="ignore"):
        extended = (local - parts.background) > 2.5 * u
    scale_mask = np.isfinite(c) & np.isfinite(u) & ~_dilate(extended, 2)
    flags = getattr(model, "flags", None)
    if flags is not None and flags.shape == model.data.shape:
        scale_mask &= (flags[rows] & FLAG_LIMITED) == 0  # deliberately under-corrected
    if sat is not None:
        scale_mask &= r < sat
    fit = hot_scale_fit(c, template, u, mask=scale_mask, target_local=local,
                        template_local=template_local)  # fmt: skip
    tol = config.max_dark_scale_error
    if math.isfinite(fit.alpha) and fit.sigma < tol / 2:
        significant = abs(fit.alpha) >= config.min_scale_significance * fit.sigma
        reason = VerifyReason.DARK_OVERSCALED if fit.alpha < 0 else VerifyReason.DARK_UNDERSCALED
        metrics.append(gated("dark_scale_error", fit.alpha, abs(fit.alpha) if significant else 0.0,
                             tol, reason, f"|x| <= {tol:g}",
                             f"{fit.n} hot pixels, sigma {fit.sigma:.3f}"))  # fmt: skip
    else:
        metrics.append(unavailable("dark_scale_error", VerifyReason.SCALE_UNMEASURED,
                                   f"{fit.n} hot pixels"))  # fmt: skip
    values.update(dark_scale_error=fit.alpha, dark_scale_error_sigma=fit.sigma,
                  dark_scale_pixels=float(fit.n))  # fmt: skip

    # 3. fixed-pattern energy left in the background
    resid = np.where(valid, c - parts.background, np.nan).astype(np.float32)
    bands = band_energies(resid)
    metrics.append(gated("column_ratio", bands.column_ratio, max(bands.column_ratio - 1.0, 0.0),
                         config.max_fpn_ratio - 1.0, VerifyReason.LIGHT_BANDING,
                         f"<= {config.max_fpn_ratio:g}"))  # fmt: skip
    values.update(row_ratio=bands.row_ratio, column_ratio=bands.column_ratio,
                  low_freq_adu=bands.low_amplitude)  # fmt: skip

    # 4. plausibility: no sky is negative, nothing piles up at a floor or exceeds the ADC
    n_valid = max(int(np.count_nonzero(valid)), 1)
    bg_level = float(np.median(parts.background[valid])) if valid.any() else math.nan
    pix_sigma = float(np.median(u[valid])) if valid.any() else math.nan
    bg_sigma = bg_level / pix_sigma if pix_sigma > 0 else math.nan
    lim = config.max_negative_background_sigma
    metrics.append(gated("background_sigma", bg_sigma, max(-bg_sigma, 0.0), lim,
                         VerifyReason.NEGATIVE_BACKGROUND, f">= -{lim:g}"))  # fmt: skip
    with np.errstate(invalid="ignore"):  # far below zero where the neighbourhood is too
        deep = float(np.count_nonzero(valid & (c < -5.0 * u) & (local < 0))) / n_valid
    finite_c = c[np.isfinite(c)]
    floor = float(finite_c.min()) if finite_c.size else math.nan
    piled = float(np.count_nonzero(c == floor)) / max(finite_c.size, 1) if floor <= 0 else 0.0
    piled = piled if piled > 1e-3 else 0.0  # a single minimum is no pile-up
    negative = max(deep, piled)
    metrics.append(gated("negative_frac", negative, negative, config.max_negative_frac,
                         VerifyReason.NEGATIVE_CLIPPING, f"<= {config.max_negative_frac:g}"))  # fmt: skip
    at_zero = float(np.count_nonzero(r <= 0)) / r.size
    metrics.append(gated("raw_floor_frac", at_zero, at_zero, config.max_negative_frac,
                         VerifyReason.RAW_AT_FLOOR, f"<= {config.max_negative_frac:g}"))  # fmt: skip
    values.update(background_adu=bg_level, background_sigma=bg_sigma, negative_frac=negative,
                  raw_floor_frac=at_zero, pixel_sigma_adu=pix_sigma)  # fmt: skip
    if sat is not None:
        with np.errstate(invalid="ignore"):
            above = float(np.count_nonzero(c > sat - mdl + 5.0 * u)) / c.size
        metrics.append(gated("above_range_frac", above, above, config.max_negative_frac,
                             VerifyReason.IMPLAUSIBLE_VALUES,
                             f"<= {config.max_negative_frac:g}"))  # fmt: skip
        values["above_range_frac"] = above

    # 5. photometric integrity: the same stars before and after calibration
    stars = detect_stars(c, background=parts.background, sigma=u, raw=r,
                         saturation=None if sat is None else 0.95 * sat)  # fmt: skip
    phot = None
    if len(stars) < max(config.min_stars, 1):
        metrics.append(unavailable("centroid_shift_px", VerifyReason.FEW_STARS,
                                   f"{len(stars)} stars"))  # fmt: skip
    else:
        # the model's hot pixels are meant to change: mask them in both measurements
        with np.errstate(invalid="ignore"):
            hot = (template - template_local) > 3.0 * u
        phot = compare_photometry(r, c, stars, bad=hot)
        lim = config.max_centroid_shift_px
        metrics.append(gated("centroid_shift_px", phot.centroid_shift_px, phot.centroid_shift_px,
                             lim, VerifyReason.CENTROID_SHIFT, f"<= {lim:g}",
                             f"{phot.n_stars} stars"))  # fmt: skip
        lim = config.max_flux_change
        metrics.append(gated("flux_ratio", phot.flux_ratio, abs(phot.flux_ratio - 1.0), lim,
                             VerifyReason.FLUX_CHANGE, f"1 +- {lim:g}"))  # fmt: skip
        values.update(n_stars=float(phot.n_stars), centroid_shift_px=phot.centroid_shift_px,
                      flux_ratio=phot.flux_ratio, annulus_noise_ratio=phot.annulus_noise_ratio,
                      negative_annulus_frac=phot.negative_annulus_frac)  # fmt: skip

    # over-subtraction with well-matched hot pixels: not dark current (thermal, gain, exposure)
    failing = {m.reason for m in metrics if m.failed}
    scale_ok = (
        math.isfinite(fit.alpha)
        and fit.sigma < tol / 2
        and not (failing & {VerifyReason.DARK_OVERSCALED, VerifyReason.DARK_UNDERSCALED})
    )
    if scale_ok and failing & {VerifyReason.NEGATIVE_BACKGROUND, VerifyReason.NEGATIVE_CLIPPING}:
        metrics.append(Metric("oversubtraction_kind", round(fit.alpha, 6), "", None,
                              VerifyReason.SMOOTH_OVERSUBTRACTION,
                              "hot-pixel scale matches; the excess is smooth"))  # fmt: skip

    weight = frame_weight(u, valid, res.noise_ratio)
    values["weight"] = weight
    failing = {m.reason for m in metrics if m.failed}
    response = _response(failing, fit.alpha, bg_level, pix_sigma)
    reasons = tuple(dict.fromkeys(m.reason for m in metrics if m.reason is not None))
    clean = dict.fromkeys(LIGHT_VALUE_COLUMNS)
    clean.update({k: (None if v is None or not math.isfinite(v) else round(float(v), 6))
                  for k, v in values.items()})  # fmt: skip
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


def _response(failing: set, alpha: float, bg_level: float, pix_sigma: float) -> Response:
    scale = {VerifyReason.DARK_OVERSCALED, VerifyReason.DARK_UNDERSCALED} & failing
    if scale:
        factor = round(1.0 + alpha, 4)
        return Response(
            ResponseAction.RESCALE_DARK, factor=factor, reason=scale.pop(),
            alternative=ResponseAction.USE_PREVIOUS_MASTER,
            note=f"rescale the dark signal of the model by {factor:g} (hot-pixel fit), check again",
        )  # fmt: skip
    negative = {VerifyReason.NEGATIVE_BACKGROUND, VerifyReason.NEGATIVE_CLIPPING} & failing
    if negative and not math.isfinite(bg_level + pix_sigma):
        # no background measured (a saturated or blank frame): no pedestal can be derived
        return Response(ResponseAction.USE_PREVIOUS_MASTER, reason=negative.pop(),
                        note="over-subtracted, background not measurable: use the previous "
                        "verified master")  # fmt: skip
    if negative:
        pedestal = float(math.ceil(max(-bg_level, 0.0) + 3.0 * pix_sigma))
        return Response(
            ResponseAction.USE_PREVIOUS_MASTER, pedestal_adu=pedestal, reason=negative.pop(),
            alternative=ResponseAction.ADD_PEDESTAL,
            note="over-subtracted without a hot-pixel scale error (stray light or a bias offset "
            f"in the darks): use the previous verified master, else add a {pedestal:g} ADU "
            "pedestal so nothing clips",
        )  # fmt: skip
    if VerifyReason.LIGHT_BANDING in failing:
        return Response(
            ResponseAction.USE_PREVIOUS_MASTER, reason=VerifyReason.LIGHT_BANDING,
            note="the master's bias pattern does not match the light: use the previous "
            "verified master of the configuration",
        )  # fmt: skip
    return Response()


def apply_response(
    model: DarkModel, response: Response, *, bias: MasterDark | None = None
) -> DarkModel:
    """A new dark model with a :attr:`ResponseAction.RESCALE_DARK` response applied.

    The dark signal (model minus the master bias, or minus the model's median level when no
    bias is known: the typical dark level then stays as it was) is multiplied by
    ``response.factor``; its variance by ``factor**2``. Other actions need the pipeline (another
    master, a pedestal in ``subtract_dark``): the model is returned unchanged.
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
        base = np.float32(np.nanmedian(model.data))
    data = (base + f * (model.data - base)).astype(np.float32)
    changes: dict[str, Any] = {
        "data": data,
        "variance": (f * f * model.variance).astype(np.float32),
        "scale_factor": model.scale_factor * float(f),
    }
    if getattr(model, "dark_signal", None) is not None:
        changes["dark_signal"] = (f * model.dark_signal).astype(np.float32)
    return dataclasses.replace(model, **changes)


def light_status(
    light: LightAssessment,
    *,
    master: MasterAssessment | MasterStatus | str | None = None,
    config: VerifyConfig | None = None,
) -> tuple[LightStatus, tuple[VerifyReason, ...]]:
    """Recommended final state of a light from its checks (and its master's verdict).

    ``quarantined`` below ``verify.quarantine_confidence``; ``degraded`` when any check failed
    or the master (its assessment or registry status) is not verified; ``calibrated``
    otherwise. Returns the failing reasons.
    """
    config = config or VerifyConfig()
    reasons = light.failed_reasons
    status = master.status if isinstance(master, MasterAssessment) else master
    if light.confidence < config.quarantine_confidence:
        return LightStatus.QUARANTINED, reasons
    if reasons or (status is not None and status != MasterStatus.VERIFIED):
        return LightStatus.DEGRADED, reasons
    return LightStatus.CALIBRATED, reasons


def config_differences(light: FrameMeta, masters: Iterable[MasterMeta]) -> tuple[VerifyReason, ...]:
    """Why masters of the light's camera do not fit its configuration (gain, offset, mode...).

    Only masters of the same instrument are considered; empty when one of them has the light's
    configuration signature or none is of the same instrument.
    """
    same = [m for m in masters if m.instrument == (light.instrument or "unknown")]
    if not same or any(m.config_signature == light.config_signature for m in same):
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
