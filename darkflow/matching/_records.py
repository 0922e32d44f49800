"""Records of matching: reason codes, index entries, candidates, model terms and decisions."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from darkflow.model import MasterMeta, MasterStatus, ReasonCode, ScaleMode
from darkflow.thermal import DarkCurrentLaw, TempEstimate

__all__ = [
    "DEGRADING_REASONS",
    "LOST_CONFIG",
    "LOST_EXPOSURE",
    "LOST_HARM",
    "LOST_INVALID",
    "LOST_LINEARITY",
    "LOST_NOT_SCALABLE",
    "LOST_SCORE",
    "LOST_STATUS",
    "LOST_TEMPERATURE",
    "LOST_TIME",
    "Candidate",
    "LostReason",
    "MasterEntry",
    "MatchDecision",
    "MatchReason",
    "ModelTerm",
    "dark_current_ratio",
    "mid_time",
    "temperature_gate_c",
]


class MatchReason(ReasonCode):
    NO_MASTER_FOR_CONFIG = (
        "no_master_for_config",
        "No master exists for this light's sensor configuration (instrument, binning, gain, "
        "offset, readout mode, shape).",
    )
    NO_CANDIDATE = (
        "no_candidate",
        "Masters exist for the configuration, but none passes the exposure, temperature and "
        "time constraints, even after widening the search.",
    )
    EXPANDED_SEARCH = (
        "expanded_search",
        "No master passed the configured gates; one was found after widening them (lower "
        "confidence).",
    )
    LIGHT_NO_TEMPERATURE = (
        "light_no_temperature",
        "The light has no usable sensor temperature reading.",
    )
    MASTER_NO_TEMPERATURE = (
        "master_no_temperature",
        "The master's darks have no sensor temperature; the thermal match cannot be checked.",
    )
    EXPOSURE_SCALED = (
        "exposure_scaled",
        "No master at the light's exposure; the dark current was scaled by the exposure ratio.",
    )
    EXPOSURE_UNSCALED = (
        "exposure_unscaled",
        "The exposures differ and the master cannot be scaled (no bias separation, or the "
        "exposure law forbids it): subtracted as is, the dark signal is off by the exposure "
        "ratio (inside the mismatch gate).",
    )
    LOW_CONFIDENCE_MASTER = (
        "low_confidence_master",
        "The chosen master did not pass all acceptance gates.",
    )
    INVALID_EXPOSURE = (
        "invalid_exposure",
        "The light's exposure is missing, zero, negative or not a number.",
    )
    # --- thermal and exposure decisions (docs/matching.md)
    TEMPERATURE_SCALED = (
        "temperature_scaled",
        "The master's dark current (not its bias or amp glow) was scaled to the light's "
        "temperature with the fitted dark-current law.",
    )
    EXPOSURE_INTERPOLATED = (
        "exposure_interpolated",
        "No master at the light's exposure; interpolated between the two bracketing exposure "
        "bins (linear behaviour between them).",
    )
    THERMAL_INTERPOLATED = (
        "thermal_interpolated",
        "Interpolated between two masters at the light's exposure whose temperatures bracket "
        "the light's (weights from the dark-current law).",
    )
    DARK_LAW_ASSUMED = (
        "dark_law_assumed",
        "The master was scaled to the light's temperature with the configured dark-current "
        "law (matching.doubling_temp_c and its prior uncertainty), not one fitted on this "
        "sensor: the darks of the configuration were taken at a single temperature.",
    )
    THERMAL_EXTRAPOLATED = (
        "thermal_extrapolated",
        "The light's temperature lies slightly outside the two masters' temperatures; the "
        "per-pixel temperature law was extrapolated (within max_thermal_extrapolation).",
    )
    TIME_INTERPOLATED = (
        "timing_interpolated",
        "The light's temperature is unknown; interpolated between the masters taken before "
        "and after it, weighted by acquisition time.",
    )
    LIGHT_TEMPERATURE_ESTIMATED = (
        "light_temperature_estimated",
        "The light's temperature was taken from the session's drift fit (reading missing, "
        "noisy or an outlier).",
    )
    LIGHT_TEMPERATURE_FROM_PROFILE = (
        "light_temperature_from_profile",
        "The light's temperature was estimated from the instrument's drift profiles of earlier "
        "sessions (lower confidence).",
    )
    LIGHT_TEMPERATURE_FROM_SETPOINT = (
        "light_temperature_from_setpoint",
        "The light's temperature was taken as the cooler set-point (lower confidence).",
    )
    NOISY_TEMPERATURE_READINGS = (
        "noisy_temperature_readings",
        "The session's temperature readings scatter more than matching.noisy_reading_c around "
        "the drift fit; the fit was used instead of the reading.",
    )
    TEMPERATURE_READING_OUTLIER = (
        "temperature_reading_outlier",
        "The light's temperature reading is far from the session's drift fit; the fit was used.",
    )
    EXPOSURE_LINEARITY_UNPROVEN = (
        "exposure_linearity_unproven",
        "Exposure scaling was used although the data do not demonstrate a linear dark signal "
        "(a single exposure bin, or no bias): degraded expectation.",
    )
    INTERPOLATION_UNPROVEN = (
        "interpolation_unproven",
        "Interpolation between exposure bins was used although linear behaviour between them "
        "is not demonstrated: degraded expectation.",
    )
    NONLINEAR_DARK = (
        "nonlinear_dark",
        "The exposure law of this configuration is not proportional (offset or non-linear): "
        "exposure scaling was disabled.",
    )
    EXPOSURE_FITTED = (
        "exposure_fitted",
        "No master at the light's exposure; per pixel, an intercept and a rate were fitted on "
        "two or more exposure bins (weighted least squares) and evaluated at the light's "
        "exposure: no bias needed, the fit's variance is in the light's uncertainty.",
    )
    EXPOSURE_EXTRAPOLATED = (
        "exposure_extrapolated",
        "The light's exposure lies outside the masters' exposures: the per-pixel linear model "
        "was extrapolated (within the range its fit uncertainty allows); the expected error is "
        "stated in predicted_dark_error and in the light's uncertainty.",
    )
    EXPOSURE_LAW_NONLINEAR = (
        "exposure_law_nonlinear",
        "The exposure law is not proportional (statistically rejected on the hot/warm pixels "
        "or the glow), and no better model exists: the master was scaled anyway, with the "
        "measured deviation carried as the model's error (degraded expectation).",
    )
    BIAS_OTHER_NIGHT = (
        "bias_other_night",
        "The light's night has no bias of its set-point: the nearest night's was used, the bias "
        "level difference between the nights (measured on the darks, or the scatter of the "
        "nights' bias levels) carried as a uniform uncertainty of the dark model.",
    )
    BIAS_LEVEL_UNKNOWN = (
        "bias_level_unknown",
        "The light's dark model uses the bias of another night whose level difference could "
        "not be measured (no darks on the light's night, a single night of biases).",
    )
    DARK_MODEL_NOISY = (
        "dark_model_noisy",
        "The per-pixel dark model adds more noise than the dark structure it removes, but no "
        "bias exists for the configuration: it is the only estimate of the offset the light "
        "must lose, so it is used, its noise in the light's uncertainty (degraded expectation; "
        "more darks at the light's exposure, or biases, fix it).",
    )
    SETPOINT_NOT_REACHED = (
        "setpoint_not_reached",
        "The master's measured temperature differs from its set-point keyword; the measured "
        "temperature was used.",
    )


DEGRADING_REASONS = frozenset(
    {
        MatchReason.EXPANDED_SEARCH,
        MatchReason.EXPOSURE_UNSCALED,
        MatchReason.DARK_LAW_ASSUMED,
        MatchReason.LOW_CONFIDENCE_MASTER,
        MatchReason.EXPOSURE_LINEARITY_UNPROVEN,
        MatchReason.INTERPOLATION_UNPROVEN,
        MatchReason.EXPOSURE_EXTRAPOLATED,
        MatchReason.EXPOSURE_LAW_NONLINEAR,
        MatchReason.BIAS_LEVEL_UNKNOWN,
        MatchReason.DARK_MODEL_NOISY,
    }
)
"""Reasons after which a calibrated light should be reported as ``degraded``."""


class LostReason(StrEnum):
    """Why a candidate lost (one or more; strings in the decision log, stable names)."""

    CONFIG = "config_mismatch"
    EXPOSURE = "exposure_out_of_range"
    NOT_SCALABLE = "exposure_differs_not_scalable"
    LINEARITY = "exposure_law_not_linear"
    TEMPERATURE = "temperature_gate"
    TIME = "time_window"
    STATUS = "master_unusable"
    INVALID = "master_invalid_exposure"
    SCORE = "higher_score"
    HARM = "model_noise_exceeds_signal"  # subtracting it would add more noise than it removes


# The names the matching code and its callers use.
LOST_CONFIG = LostReason.CONFIG
LOST_EXPOSURE = LostReason.EXPOSURE
LOST_NOT_SCALABLE = LostReason.NOT_SCALABLE
LOST_LINEARITY = LostReason.LINEARITY
LOST_TEMPERATURE = LostReason.TEMPERATURE
LOST_TIME = LostReason.TIME
LOST_STATUS = LostReason.STATUS
LOST_INVALID = LostReason.INVALID
LOST_SCORE = LostReason.SCORE
LOST_HARM = LostReason.HARM


def mid_time(meta: MasterMeta) -> datetime | None:
    """The middle of a master's acquisition (its start or end when only one is known)."""
    start, end = meta.date_start_utc, meta.date_end_utc
    if start is None or end is None:
        return start or end
    return start + (end - start) / 2


def dark_current_ratio(delta_temp_c: float, doubling_temp_c: float) -> float:
    """Ratio of dark currents for a temperature difference (light minus master)."""
    return 2.0 ** (delta_temp_c / doubling_temp_c)


def temperature_gate_c(max_dark_mismatch: float, doubling_temp_c: float) -> float:
    """Largest temperature difference (either sign) whose dark-current mismatch stays under the gate.

    A master colder than the light is the stricter side: ``2**(|ΔT| / T_d) - 1 <= m``.
    """
    return doubling_temp_c * math.log2(1.0 + max_dark_mismatch)


@dataclass(frozen=True)
class MasterEntry:
    """One master of the calibration index (what matching needs to know about it)."""

    master_id: str
    meta: MasterMeta
    path: str | None = None
    status: MasterStatus = MasterStatus.VERIFIED
    confidence: float = 1.0
    scalable: bool = False  # dark current separated from bias (exposure scaling possible)

    @property
    def mid_time(self) -> datetime | None:
        return mid_time(self.meta)


@dataclass(frozen=True)
class Candidate:
    """One master considered for a light, with its best single-master treatment or why it lost."""

    master_id: str
    exptime_s: float
    temp_c: float | None
    delta_exptime_s: float
    delta_temp_c: float | None
    delta_time_h: float | None
    dark_mismatch: float | None  # |D_master / D_light - 1| before any temperature scaling
    score: float | None
    lost_because: tuple[str, ...] = ()
    scale_mode: ScaleMode | None = None
    exposure_factor: float | None = None
    temp_factor: float | None = None
    predicted_error: float | None = None
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.lost_because

    def to_dict(self) -> dict[str, Any]:
        return {
            "master_id": self.master_id,
            "exptime_s": self.exptime_s,
            "temp_c": self.temp_c,
            "delta_exptime_s": self.delta_exptime_s,
            "delta_temp_c": self.delta_temp_c,
            "delta_time_h": self.delta_time_h,
            "dark_mismatch": self.dark_mismatch,
            "score": self.score,
            "lost_because": list(self.lost_because),
            "scale_mode": str(self.scale_mode) if self.scale_mode else None,
            "exposure_factor": self.exposure_factor,
            "temp_factor": self.temp_factor,
            "predicted_error": self.predicted_error,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class ModelTerm:
    """One master's share of a dark model (see :func:`darkflow.subtract.dark_model_for`).

    The term contributes ``weight * exposure_factor * (glow + temp_factor * dark_current)``
    of the master (bias removed); the bias is added once for the whole model.
    """

    master_id: str
    weight: float
    exposure_factor: float = 1.0
    temp_factor: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "master_id": self.master_id,
            "weight": self.weight,
            "exposure_factor": self.exposure_factor,
            "temp_factor": self.temp_factor,
        }


@dataclass(frozen=True)
class MatchDecision:
    """The answer for one light: which master(s), how they are combined, how sure we are.

    ``scale_factor`` is the dark-signal multiplier relative to the primary master
    (``exposure_factor * temp_factor`` for one master); ``terms`` give the exact recipe, and
    ``dark_rel_sigma`` / ``exposure_rel_sigma`` the relative 1-sigma errors of the recipe's
    dark-current and exposure factors that :func:`~darkflow.subtract.dark_model_for` adds to
    the model variance, ``level_sigma_adu`` a uniform level uncertainty the model states
    beside its per-pixel variance (the normal pixels' level offset an exposure scaling
    carries). ``predicted_error`` is the winning option's predicted RMS error
    relative to the light's dark signal (the score without the confidence penalty).
    """

    light_path: str
    config_signature: str
    master_id: str | None
    scale_mode: ScaleMode | None
    scale_factor: float
    confidence: float
    candidates: tuple[Candidate, ...] = ()
    reasons: tuple[MatchReason, ...] = ()
    expansions: tuple[str, ...] = ()
    advisory: dict[str, Any] | None = None
    chosen: Candidate | None = None
    temperature_gate_c: float | None = None
    # --- decisions between two masters, and the scale factors applied
    secondary_master_id: str | None = None
    exposure_factor: float = 1.0
    temp_factor: float = 1.0
    terms: tuple[ModelTerm, ...] = ()
    dark_rel_sigma: float = 0.0
    exposure_rel_sigma: float = 0.0
    predicted_error: float | None = None
    temperature: TempEstimate | None = None
    dark_law: DarkCurrentLaw | None = None
    linearity_status: str | None = None
    options: tuple[dict[str, Any], ...] = ()
    level_sigma_adu: float = 0.0  # uniform level uncertainty of the model (ADU, 1 sigma)

    @property
    def matched(self) -> bool:
        return self.master_id is not None

    @property
    def degraded(self) -> bool:
        """Calibration is possible, but with a degraded expectation (see DEGRADING_REASONS)."""
        return self.matched and any(r in DEGRADING_REASONS for r in self.reasons)

    @property
    def master_ids(self) -> tuple[str, ...]:
        if self.terms:
            return tuple(t.master_id for t in self.terms)
        return (self.master_id,) if self.master_id else ()

    @property
    def secondary_weight(self) -> float | None:
        """Weight of the secondary master (interpolations), else ``None``."""
        return self.terms[1].weight if len(self.terms) > 1 else None

    def to_dict(self) -> dict[str, Any]:
        temp = self.temperature
        return {
            "light_path": self.light_path,
            "config_signature": self.config_signature,
            "master_id": self.master_id,
            "secondary_master_id": self.secondary_master_id,
            "scale_mode": str(self.scale_mode) if self.scale_mode else None,
            "scale_factor": self.scale_factor,
            "exposure_factor": self.exposure_factor,
            "temp_factor": self.temp_factor,
            "confidence": self.confidence,
            "degraded": self.degraded,
            "predicted_error": self.predicted_error,
            "temperature_gate_c": self.temperature_gate_c,
            "temp_c": temp.temp_c if temp else None,
            "temp_sigma_c": temp.sigma_c if temp else None,
            "temp_source": temp.source if temp else None,
            "dark_law": self.dark_law.to_dict() if self.dark_law else None,
            "linearity_status": self.linearity_status,
            "terms": [t.to_dict() for t in self.terms],
            "dark_rel_sigma": self.dark_rel_sigma,
            "exposure_rel_sigma": self.exposure_rel_sigma,
            "level_sigma_adu": self.level_sigma_adu,
            "reasons": [str(r) for r in self.reasons],
            "expansions": list(self.expansions),
            "advisory": self.advisory,
            "chosen": self.chosen.to_dict() if self.chosen else None,
            "candidates": [c.to_dict() for c in self.candidates],
            "options": list(self.options),
        }
