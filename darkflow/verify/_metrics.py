"""Reason codes, per-metric records and the tolerance-band confidence of ``darkflow.verify``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

from darkflow.model import ReasonCode
from darkflow.verify._gate import GateStatus, gate_confidence, z_threshold

__all__ = [
    "ADVISORY",
    "LIGHT_VALUE_COLUMNS",
    "MASTER_GATES",
    "MASTER_VALUE_COLUMNS",
    "MasterGate",
    "Metric",
    "VerifyReason",
    "band_confidence",
    "not_measured",
    "overall_confidence",
    "significance_gate",
]


class VerifyReason(ReasonCode):
    """Why a master or a light failed (or could not run) a verification check."""

    # ---- masters: hold-out validation
    HOLDOUT_WIDTH = (
        "holdout_residual_excess",
        "Held-out darks minus the master scatter more than the master's own frame-to-frame "
        "noise predicts: the dark set is not stationary (temperature or light changing).",
    )
    HOLDOUT_SHIFT = (
        "holdout_level_shift",
        "The held-out darks sit at another level than the master: the dark set drifted "
        "(temperature, bias level or stray light changed during the sequence).",
    )
    HOLDOUT_OUTLIERS = (
        "holdout_outliers",
        "Many held-out dark pixels lie far above the master: frequent cosmic-ray hits or "
        "flickering pixels in the darks.",
    )
    LEVEL_JITTER = (
        "frame_level_jitter",
        "Advisory: the darks' levels differ between frames beyond their noise (a bias level "
        "that is not stable, stray light in some frames, or a sensor warming during the "
        "sequence): the master's level carries that uncertainty and the lights share it.",
    )
    HOLDOUT_UNAVAILABLE = (
        "holdout_unavailable",
        "No held-out darks (too few frames for a validation split): the master is not "
        "validated against independent frames.",
    )
    # ---- masters: combine statistics and noise model
    HIGH_REJECTIONS = (
        "high_rejection_rate",
        "The combine clipped many values high: the darks are contaminated by cosmic rays "
        "(or flickering pixels) well above the usual rate.",
    )
    NOISE_INFLATION = (
        "master_noise_inflation",
        "Advisory: the master's own noise adds a large share of a dark frame's variance to "
        "every calibrated light (an expected error, not a fault): take more darks.",
    )
    VARIANCE_EXCESS = (
        "variance_excess",
        "The darks' frame-to-frame variance is above read noise + shot noise of their level "
        "(from the master bias and the header gain): another gain or readout mode, or extra "
        "noise in the darks.",
    )
    LEVEL_EXCESS = (
        "level_excess",
        "The darks sit above the master bias by more than their shot noise allows: an offset "
        "without photons (bias drift, another readout mode or offset).",
    )
    DARK_BELOW_BIAS = (
        "dark_below_bias",
        "The darks' typical pixels sit below the master bias of their night by more than the "
        "levels' noise and the master's own: dark current is never negative, the bias level "
        "moved between the bias frames and the darks (bias drift, reset, another offset).",
    )
    EXCESS_PATTERNED = (
        "exposure_excess_patterned",
        "Against another master of the configuration (exposure-scaled, each less its night's "
        "bias) the master holds a signal that does not follow the exposure and varies across "
        "the frame: stray light reached the sensor while its darks were taken.",
    )
    EXCESS_UNIFORM = (
        "exposure_excess_uniform",
        "Against another master of the configuration (exposure-scaled, each less its night's "
        "bias) the master holds a uniform level that does not follow the exposure: the bias "
        "level moved between its darks and their bias (bias drift, reset, another offset).",
    )
    EXCESS_SCALED = (
        "exposure_excess_scaled",
        "Against another master of the configuration (exposure-scaled, each less its night's "
        "bias) the master holds an excess proportional to its own dark signal, hot pixels and "
        "amp glow included: its darks were taken at another gain, or warmer, than the headers "
        "say (the hot pixels' photon transfer could not tell which).",
    )
    EXCESS_GAIN = (
        "exposure_excess_gain",
        "Against another master of the configuration (exposure-scaled, each less its night's "
        "bias) the master holds an excess proportional to its own dark signal, and its hot "
        "pixels' photon transfer (variance over level: ADU per electron) differs from the other "
        "master's by the same scale: its darks were taken at another gain.",
    )
    EXCESS_THERMAL = (
        "exposure_excess_thermal",
        "Against another master of the configuration (exposure-scaled, each less its night's "
        "bias) the master holds an excess proportional to its own dark signal, while its hot "
        "pixels' photon transfer (variance over level: ADU per electron) agrees with the other "
        "master's: more electrons at one gain, its darks were taken warmer than the headers say.",
    )
    GAIN_MISMATCH = (
        "gain_mismatch",
        "Photon transfer on the dark stack gives an e-/ADU different from the header's EGAIN: "
        "the darks were taken at another gain (or the header is wrong).",
    )
    # ---- masters: fixed-pattern stability (vs the previous verified master or the bias)
    DARK_SCALE_CHANGED = (
        "dark_scale_changed",
        "The hot-pixel pattern is stronger or weaker than in the previous verified master, "
        "beyond what exposure and temperature explain.",
    )
    LEVEL_SHIFT = (
        "dark_level_shift",
        "The master's level changed from the previous verified master by more than its "
        "hot-pixel scale explains: an offset (bias drift) or uniform stray light.",
    )
    LOW_FREQUENCY_CHANGED = (
        "low_frequency_changed",
        "Smooth large-scale structure appeared or changed relative to the previous verified "
        "master (a gradient or glow): stray light reaching the sensor.",
    )
    DARK_GRADIENT = (
        "dark_gradient",
        "The master's dark signal changes across the frame along a plane, beyond its noise and "
        "its own per-pixel uncertainty: dark current does not depend on where a pixel is and "
        "amp glow curves near its amplifier; stray light reached the sensor.",
    )
    BANDING_CHANGED = (
        "banding_changed",
        "Row or column banding differs from the master bias or the previous verified master: "
        "another readout mode or gain.",
    )
    HOT_PIXELS_CHANGED = (
        "hot_pixels_changed",
        "The stable hot pixels overlap little with the previous verified master's.",
    )
    NO_PREVIOUS = (
        "no_previous_master",
        "No previous verified master of this configuration to compare the fixed pattern with.",
    )
    PREVIOUS_NOT_COMPARABLE = (
        "previous_not_comparable",
        "The previous master differs in exposure or temperature and no master bias is "
        "available to scale it: fixed-pattern stability not checked.",
    )
    # ---- lights
    LIGHT_VARIANCE_EXCESS = (
        "light_variance_excess",
        "Background noise of the calibrated light is above the propagated uncertainty.",
    )
    LIGHT_VARIANCE_LOW = (
        "light_variance_low",
        "Background noise is well below the propagated uncertainty: the uncertainty (and the "
        "stacking weight) is too pessimistic (gain or read noise wrong).",
    )
    DARK_OVERSCALED = (
        "dark_overscaled",
        "The light's hot pixels were over-subtracted: the dark model is too strong (darks "
        "warmer, longer or at a higher gain than the light).",
    )
    DARK_UNDERSCALED = (
        "dark_underscaled",
        "The light's hot pixels were under-subtracted: the dark model is too weak (darks "
        "colder, shorter or at a lower gain than the light).",
    )
    HOT_PIXEL_HOLES = (
        "hot_pixel_holes",
        "Isolated background pixels far below their neighbours: over-subtracted hot pixels "
        "or cosmic rays left in the master.",
    )
    LIGHT_BANDING = (
        "light_banding",
        "Row or column banding remains in the calibrated background: the dark model's bias "
        "pattern does not match the light (readout mode or gain).",
    )
    NEGATIVE_BACKGROUND = (
        "negative_background",
        "The calibrated sky background is below zero, which no sky can be: over-subtraction.",
    )
    NEGATIVE_CLIPPING = (
        "negative_clipping",
        "Many background pixels far below zero, or values piled up at a floor: "
        "over-subtraction that clips (or would clip) the faint signal.",
    )
    SMOOTH_OVERSUBTRACTION = (
        "smooth_oversubtraction",
        "Over-subtracted although the hot pixels match the dark model: the darks hold a "
        "smooth excess that is not dark current (stray light, or a bias offset).",
    )
    PHOTONLESS_OVERSUBTRACTION = (
        "photonless_oversubtraction",
        "Over-subtracted, yet the light's noise has not lost the shot noise the excess would "
        "carry if it were light: the darks' noise (the model's read variance, without a bias) "
        "holds no photons for the excess, which is an offset (the bias level moved).",
    )
    RAW_AT_FLOOR = (
        "raw_at_floor",
        "Raw light pixels at the ADC zero: the offset is too low and the noise floor is clipped.",
    )
    IMPLAUSIBLE_VALUES = (
        "implausible_values",
        "Calibrated values above what the ADC range minus the dark model allows.",
    )
    CENTROID_SHIFT = (
        "centroid_shift",
        "Star centroids moved between the raw and the calibrated frame: the dark model has "
        "structure at the stars (hot pixels, stars in the darks).",
    )
    FLUX_CHANGE = (
        "flux_change",
        "Star fluxes (annulus background removed) changed with calibration: the dark model "
        "removed signal (stars or light in the darks).",
    )
    FEW_STARS = (
        "few_stars",
        "Too few isolated, unsaturated stars for the photometric integrity check.",
    )
    SCALE_UNMEASURED = (
        "dark_scale_unmeasured",
        "Too few hot pixels above the light's noise to measure the dark model's scale.",
    )
    LEVEL_UNMEASURED = (
        "dark_level_unmeasured",
        "No bias of the light's night: the dark model's level against the light's is seen only "
        "where it drives the sky below zero; an offset that leaves the sky positive cannot be "
        "told from sky.",
    )
    NO_DARK_SIGNAL = (
        "no_dark_signal",
        "The light holds none of the dark model's hot-pixel signal: it was most likely "
        "dark-subtracted already (by the capture program, without a header saying so). "
        "Subtracting a dark again only adds error: the light is not calibrated.",
    )
    HARMFUL_SUBTRACTION = (
        "harmful_subtraction",
        "After subtraction the light's hot pixels are over-subtracted by more than half their "
        "dark signal: the subtraction leaves a larger error than it removes.",
    )
    FEW_BACKGROUND_PIXELS = (
        "few_background_pixels",
        "Too few background pixels (the frame is filled by sources, or too small) to measure "
        "a background statistic: that check is not measured.",
    )
    # ---- configuration diagnostics (why no master of the light's configuration exists)
    CONFIG_GAIN_DIFFERS = (
        "config_gain_differs",
        "Masters of this camera exist, but at another gain setting.",
    )
    CONFIG_OFFSET_DIFFERS = (
        "config_offset_differs",
        "Masters of this camera exist, but at another offset.",
    )
    CONFIG_READOUT_DIFFERS = (
        "config_readout_differs",
        "Masters of this camera exist, but in another readout mode.",
    )
    CONFIG_OTHER_DIFFERS = (
        "config_other_differs",
        "Masters of this camera exist, but with another binning or image shape.",
    )


class MasterGate(NamedTuple):
    """One acceptance gate of a master, as the tools around ``verify`` see it.

    ``metric`` is the name of its :class:`Metric` in ``MasterAssessment.metrics``; ``column``
    the key of its value in ``MasterAssessment.values`` and its ``masters.csv`` column;
    ``better`` which way is good (``"lower"``, ``"higher"``, ``"unity"``, or ``None`` for a
    signed deviation whose ideal is 0); ``description`` one line for tables and widgets.
    """

    metric: str
    column: str
    better: str | None
    description: str


# The master acceptance gates in their masters.csv column order: the one list a new gate is
# added to (the CSV columns, viz's acceptance table and the explorer's gate metrics follow it).
MASTER_GATES: tuple[MasterGate, ...] = (
    MasterGate(
        "holdout_width_ratio",
        "holdout_width_ratio",
        "unity",
        "held-out darks minus the master: width / predicted",
    ),
    MasterGate(
        "holdout_shift_sigma",
        "holdout_shift_sigma",
        None,
        "held-out darks minus the master: median / frame noise",
    ),
    MasterGate(
        "holdout_outlier_frac",
        "holdout_outlier_frac",
        "lower",
        "held-out pixels > 6 sigma above the master",
    ),
    MasterGate(
        "high_reject_excess",
        "high_reject_excess",
        "lower",
        "pixel-frames clipped high minus clipped low (cosmics)",
    ),
    MasterGate(
        "transient_excess",
        "transient_excess",
        "lower",
        "events above minus below the master per pixel and frame",
    ),
    MasterGate(
        "noise_inflation", "noise_inflation", "lower", "(frame var + master var) / frame var"
    ),
    MasterGate(
        "master_variance_ratio",
        "master_variance_ratio",
        "unity",
        "per-frame variance / (bias var + signal / egain)",
    ),
    MasterGate(
        "gain_deviation", "gain_deviation", None, "header e-/ADU / photon-transfer e-/ADU - 1"
    ),
    MasterGate(
        "bias_column_ratio", "bias_column_ratio", "lower", "column banding of master - master bias"
    ),
    MasterGate(
        "dark_scale_change",
        "dark_scale_change",
        None,
        "hot-pixel scale vs the previous verified master - 1",
    ),
    MasterGate(
        "level_shift_sigma",
        "level_shift_sigma",
        None,
        "unexplained level change vs previous / frame noise",
    ),
    MasterGate(
        "low_freq_change_sigma",
        "low_freq_change_adu",
        "lower",
        "smooth structure change vs previous / frame noise",
    ),
    MasterGate(
        "column_change_ratio",
        "column_change_ratio",
        "lower",
        "column banding change vs the previous master",
    ),
    MasterGate(
        "hot_overlap",
        "hot_overlap",
        "higher",
        "overlap of stable hot pixels with the previous master",
    ),
)

# Keys of MasterAssessment.values / LightAssessment.values recommended as CSV columns
# (masters.csv / frame_report.csv); every key is always present (None when not measured).
MASTER_VALUE_COLUMNS = tuple(g.column for g in MASTER_GATES)
LIGHT_VALUE_COLUMNS = (
    "weight",
    "light_variance_ratio",
    "dark_scale_error",
    "column_ratio",
    "column_pattern_z",
    "background_sigma",
    "negative_frac",
    "raw_floor_frac",
    "n_stars",
    "centroid_shift_px",
    "flux_ratio",
    "expected_noise_adu",
    "dark_residual_frac",
)


# Advisories: a stated expected error (recorded with the value), never a failure; they lower
# neither the status nor the confidence, but name something the user can improve.
ADVISORY = frozenset({VerifyReason.NOISE_INFLATION, VerifyReason.LEVEL_JITTER})

# Reasons that describe missing evidence rather than a failure: they never fail a gate.
INFORMATIONAL = frozenset(
    {
        VerifyReason.HOLDOUT_UNAVAILABLE,
        VerifyReason.NO_PREVIOUS,
        VerifyReason.PREVIOUS_NOT_COMPARABLE,
        VerifyReason.FEW_STARS,
        VerifyReason.SCALE_UNMEASURED,
        VerifyReason.LEVEL_UNMEASURED,
        VerifyReason.FEW_BACKGROUND_PIXELS,
    }
)


def band_confidence(deviation: float, limit: float) -> float:
    """Confidence of a metric from its deviation from ideal and its tolerance ``limit``.

    ``1`` up to half the limit, falling linearly to ``0.5`` at the limit, then as
    ``0.5 * (limit / deviation)**2`` beyond it. A deviation of NaN gives 0.
    """
    if not math.isfinite(deviation):
        return 0.0
    deviation = abs(deviation)
    if limit <= 0:
        return 1.0 if deviation == 0 else 0.0
    if deviation <= 0.5 * limit:
        return 1.0
    if deviation <= limit:
        return 1.0 - (deviation - 0.5 * limit) / limit
    return 0.5 * (limit / deviation) ** 2


@dataclass(frozen=True)
class Metric:
    """One verification metric: its value, tolerance, confidence and reason when failing.

    ``value`` is ``None`` when the metric could not be computed (``reason`` then says why, an
    informational code): its :attr:`status` is ``not_measured``. ``limit`` is the tolerance as
    shown to people (e.g. ``"|z| <= 3.89"``). Gates built by :func:`significance_gate` also
    record the statistic's value ``expected`` under "all is well", its ``spread`` there, the
    departure ``z`` in units of that spread, the ``threshold`` on ``|z|`` and the gate's
    ``false_alarm`` probability.
    """

    name: str
    value: float | None
    limit: str
    confidence: float | None
    reason: VerifyReason | None = None
    detail: str = ""
    expected: float | None = None
    spread: float | None = None
    z: float | None = None
    threshold: float | None = None
    false_alarm: float | None = None

    @property
    def failed(self) -> bool:
        return (
            self.reason is not None
            and self.reason not in INFORMATIONAL
            and self.reason not in ADVISORY
        )

    @property
    def advisory(self) -> bool:
        """The metric carries an advisory: an expected error stated, not a failure."""
        return self.reason is not None and self.reason in ADVISORY

    @property
    def status(self) -> GateStatus:
        if self.failed:
            return GateStatus.FAIL
        if self.value is None or self.confidence is None:
            return GateStatus.NOT_MEASURED
        return GateStatus.PASS

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "limit": self.limit,
            "confidence": self.confidence,
            "reason": None if self.reason is None else str(self.reason),
            "detail": self.detail,
            "status": str(self.status),
            "expected": self.expected,
            "spread": self.spread,
            "z": self.z,
            "threshold": self.threshold,
            "false_alarm": self.false_alarm,
        }


def gated(
    name: str,
    value: float,
    deviation: float,
    limit: float,
    reason: VerifyReason,
    shown_limit: str,
    detail: str = "",
) -> Metric:
    """A metric whose ``deviation`` (>= 0, 0 ideal) is judged against a fixed ``limit``.

    Prefer :func:`significance_gate`: a fixed limit does not know the statistic's own noise.
    """
    conf = band_confidence(deviation, limit)
    failing = not (deviation <= limit)  # NaN fails
    return Metric(
        name, _num(value), shown_limit, round(conf, 4), reason if failing else None, detail
    )


def significance_gate(
    name: str,
    value: float,
    *,
    expected: float,
    spread: float,
    reason: VerifyReason,
    false_alarm: float,
    side: str = "both",
    reason_low: VerifyReason | None = None,
    materiality: float = 0.0,
    not_measured_reason: VerifyReason | None = None,
    detail: str = "",
    deviate: float | None = None,
) -> Metric:
    """A gate as a test: ``value`` against ``expected`` in units of its null ``spread``.

    Parameters
    ----------
    value, expected, spread
        The statistic, its value when all is well, and its spread then (sampling spread for the
        actual sample sizes combined with the uncertainty of the inputs, see
        :func:`darkflow.verify.combine_spread`).
    reason
        Reason code when the statistic is too high (``side="both"``/``"upper"``) or too low
        (``side="lower"``).
    false_alarm
        Probability of failing when all is well (Gaussian null); the threshold on ``|z|`` is
        :func:`darkflow.verify.z_threshold` of it (one-sided for ``"upper"``/``"lower"``).
    side
        ``"both"``, ``"upper"`` (only high values fail) or ``"lower"`` (only low values fail).
    reason_low
        For ``side="both"``: the reason when the statistic is too low (default ``reason``).
    materiality
        Smallest departure (statistic units) that matters; a departure must exceed
        ``z* * spread + materiality`` to fail. Zero: pure significance.
    not_measured_reason
        Informational reason recorded when the gate cannot be evaluated (value or spread not
        finite, spread not positive); the metric is then ``not_measured``.
    deviate
        For an exact test (a count against its Poisson expectation, a chi-square): the
        statistic's tail probability as a standard-normal deviate (:func:`~darkflow.verify.
        poisson_deviate`, :func:`~darkflow.verify.chi2_deviate`); it replaces
        ``(value - expected) / spread`` as ``z`` (``value``, ``expected`` and ``spread`` are
        then shown as they are, for people).
    """
    if side not in ("both", "upper", "lower"):
        raise ValueError(f"side must be 'both', 'upper' or 'lower', got {side!r}")
    value, expected, spread = float(value), float(expected), float(spread)
    if not (math.isfinite(value) and math.isfinite(expected) and math.isfinite(spread)) or not (
        spread > 0.0 or materiality > 0.0
    ):
        why = f"statistic {value:.4g}, spread {spread:.4g}"
        return not_measured(name, not_measured_reason, f"{detail}; {why}" if detail else why)
    thr = z_threshold(false_alarm, sides=2 if side == "both" else 1)
    delta = value - expected
    z = delta / spread if spread > 0 else math.copysign(math.inf, delta) if delta else 0.0
    allowed = thr * spread + materiality
    if deviate is not None and math.isfinite(deviate):
        # the exact test's deviate, in the statistic's units for the excess below
        z = float(deviate)
        delta = z * spread if spread > 0 else z
        allowed = thr * (spread if spread > 0 else 1.0) + materiality
    if side == "upper":
        excess = max(delta, 0.0) / allowed
    elif side == "lower":
        excess = max(-delta, 0.0) / allowed
    else:
        excess = abs(delta) / allowed
    failing = excess > 1.0
    why = reason
    if failing and side == "both" and delta < 0 and reason_low is not None:
        why = reason_low
    arrow = {"both": "|z|", "upper": "z", "lower": "-z"}[side]
    shown = f"{arrow} <= {thr:.2f}" + (f" (+{materiality:g})" if materiality else "")
    return Metric(
        name,
        _num(value),
        shown,
        round(gate_confidence(excess), 4),
        why if failing else None,
        detail,
        expected=_num(expected),
        spread=_num(spread),
        z=_num(z),
        threshold=round(thr, 4),
        false_alarm=false_alarm,
    )


def not_measured(name: str, reason: VerifyReason | None, detail: str = "") -> Metric:
    """A gate that could not be evaluated: recorded with its (informational) reason; it lowers
    neither the status nor the confidence."""
    return Metric(name, None, "", None, reason, detail)


def unavailable(name: str, reason: VerifyReason | None, detail: str = "") -> Metric:
    return not_measured(name, reason, detail)


def overall_confidence(metrics: list[Metric], penalty: float = 1.0) -> float:
    """The weakest measured metric's confidence (1 when none is measured), times ``penalty``."""
    confs = [m.confidence for m in metrics if m.confidence is not None]
    return round((min(confs) if confs else 1.0) * penalty, 4)


def _num(value: float) -> float | None:
    value = float(value)
    return round(value, 6) if math.isfinite(value) else None
