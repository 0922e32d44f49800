"""Shared pieces of matching: the per-master facts and the option records that get scored."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from darkflow.matching._records import MasterEntry, MatchReason, ModelTerm
from darkflow.model import ScaleMode

LN2 = math.log(2.0)
R = MatchReason
EXPOSURE_ERROR_FLOOR = 0.005  # exposure-law error assumed even when linearity is demonstrated

_MODE_CONFIDENCE = {
    ScaleMode.NONE: 1.0,
    ScaleMode.TEMPERATURE: 0.97,
    ScaleMode.EXPOSURE: 0.95,
    ScaleMode.EXPOSURE_TEMPERATURE: 0.93,
    ScaleMode.INTERPOLATE: 0.97,
    ScaleMode.INTERPOLATE_TEMPERATURE: 0.95,
    ScaleMode.THERMAL_INTERPOLATE: 0.98,
    ScaleMode.UNSCALED: 0.7,
    ScaleMode.PIXEL_FIT: 0.95,
}
_SOURCE_CONFIDENCE = {
    "header": 1.0,
    "session_fit": 0.95,
    "profile": 0.8,
    "setpoint": 0.8,
    "none": 0.8,
}
_SOURCE_REASON = {
    "session_fit": R.LIGHT_TEMPERATURE_ESTIMATED,
    "profile": R.LIGHT_TEMPERATURE_FROM_PROFILE,
    "setpoint": R.LIGHT_TEMPERATURE_FROM_SETPOINT,
}
_NOTE_REASON = {
    "noisy_readings": R.NOISY_TEMPERATURE_READINGS,
    "reading_outlier": R.TEMPERATURE_READING_OUTLIER,
}


@dataclass(frozen=True)
class _Step:
    max_mismatch: float
    max_time_h: float
    max_ratio: float
    label: str | None
    assume_law: bool = False  # the last resort: scale by the configured dark-current law


@dataclass(frozen=True)
class _Master:
    """Per-master facts for one light (independent of the treatment)."""

    entry: MasterEntry
    temp_c: float | None
    temp_sigma_c: float
    delta_temp_c: float | None
    delta_time_h: float | None
    hard_lost: tuple[str, ...]  # status, invalid exposure, time window
    same_exposure: bool
    ratio: float  # t_light / t_master
    delta_exptime_s: float  # t_light - t_master
    noise_adu: float | None
    notes: tuple[str, ...]


@dataclass(frozen=True)
class _Option:
    mode: ScaleMode
    terms: tuple[ModelTerm, ...]
    e_thermal: float
    e_sigma: float
    e_exposure: float
    e_noise: float
    e_time: float
    penalty: float
    reasons: tuple[MatchReason, ...]
    confidence_factor: float
    scale_factor: float
    exposure_factor: float
    temp_factor: float
    passed: bool
    lost: tuple[str, ...] = ()
    level_sigma_adu: float = 0.0  # uniform level uncertainty the recipe carries (ADU)

    @property
    def error(self) -> float:
        return math.sqrt(
            self.e_thermal**2
            + self.e_sigma**2
            + self.e_exposure**2
            + self.e_noise**2
            + self.e_time**2
        )

    @property
    def systematic_error(self) -> float:
        """The predicted error without the noise term (what the confidence reflects)."""
        return math.sqrt(self.e_thermal**2 + self.e_sigma**2 + self.e_exposure**2 + self.e_time**2)

    @property
    def score(self) -> float:
        return self.error + self.penalty

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(t.master_id for t in self.terms)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scale_mode": str(self.mode),
            "terms": [t.to_dict() for t in self.terms],
            "score": _r(self.score),
            "predicted_error": _r(self.error),
            "components": {
                k: _r(getattr(self, k))
                for k in ("e_thermal", "e_sigma", "e_exposure", "e_noise", "e_time")
            },
            "passed": self.passed,
            "lost_because": list(self.lost),
        }


def _r(x: float | None, nd: int = 6) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, nd)
