"""Which dark model calibrates this light? Constrained nearest-neighbour matching, explained.

For each light the matcher looks at every master of the calibration index and records, for each
one, whether it passes the hard constraints and why not:

* same configuration signature (instrument/camera, binning, gain setting, offset, readout mode,
  shape): a different configuration is never a candidate;
* exposure: equal within ``exptime_rel_tol``, or scalable within ``max_exptime_ratio`` when the
  master can be scaled (a bias-separated dark current);
* temperature gate: the dark-current mismatch implied by the temperature difference
  ``ΔT = T_light - T_master``, i.e. the error of the subtracted dark current relative to the
  light's own, ``|D_master / D_light - 1| = |2**(-ΔT / T_d) - 1|`` with the doubling temperature
  ``T_d``, must stay under ``max_dark_mismatch``;
* time: the master's inputs must be within ``max_time_h`` of the light.

Among the candidates that pass, the lowest **score** wins::

    score = mismatch / max_dark_mismatch            # thermal mismatch, in units of the gate
          + 0.5 * |ln(t_light / t_master)|          # scaling risk (0 for equal exposures)
          + 0.1 * Δtime_h / 24                      # time proximity (a day costs 0.1)
          + 0.5 * (1 - master confidence)           # prefer verified masters

When nothing passes, the gates are widened step by step (``expansion_mismatch`` /
``expansion_time_h``); every step is recorded and costs ``expansion_confidence_penalty`` of
confidence. When even the widest step fails, the light is quarantined with an acquisition
advisory saying which darks to take.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from darkflow.config import MatchingConfig
from darkflow.model import FrameMeta, MasterMeta, MasterStatus, ReasonCode, ScaleMode

__all__ = [
    "CalibrationIndex",
    "Candidate",
    "MasterEntry",
    "MatchDecision",
    "MatchReason",
    "dark_current_ratio",
    "match_light",
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
        "The light has no sensor temperature; the thermal match cannot be checked.",
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
        "The exposures differ and the master cannot be scaled (no bias separation): subtracted "
        "as is, the dark current is wrong by the exposure ratio.",
    )
    LOW_CONFIDENCE_MASTER = (
        "low_confidence_master",
        "The chosen master did not pass all acceptance gates.",
    )
    INVALID_EXPOSURE = (
        "invalid_exposure",
        "The light's exposure is missing, zero or negative.",
    )


# A candidate loses for one or more of these (strings in the decision log, stable names).
LOST_CONFIG = "config_mismatch"
LOST_EXPOSURE = "exposure_out_of_range"
LOST_NOT_SCALABLE = "exposure_differs_not_scalable"
LOST_TEMPERATURE = "temperature_gate"
LOST_TIME = "time_window"
LOST_STATUS = "master_unusable"
LOST_SCORE = "higher_score"


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
    def mid_time(self):
        start, end = self.meta.date_start_utc, self.meta.date_end_utc
        if start is None or end is None:
            return start or end
        return start + (end - start) / 2


@dataclass(frozen=True)
class Candidate:
    master_id: str
    exptime_s: float
    temp_c: float | None
    delta_exptime_s: float
    delta_temp_c: float | None
    delta_time_h: float | None
    dark_mismatch: float | None
    score: float | None
    lost_because: tuple[str, ...] = ()

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
        }


@dataclass(frozen=True)
class MatchDecision:
    """The answer for one light: which master, how it is scaled, and how sure we are."""

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

    @property
    def matched(self) -> bool:
        return self.master_id is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "light_path": self.light_path,
            "config_signature": self.config_signature,
            "master_id": self.master_id,
            "scale_mode": str(self.scale_mode) if self.scale_mode else None,
            "scale_factor": self.scale_factor,
            "confidence": self.confidence,
            "temperature_gate_c": self.temperature_gate_c,
            "reasons": [str(r) for r in self.reasons],
            "expansions": list(self.expansions),
            "advisory": self.advisory,
            "candidates": [c.to_dict() for c in self.candidates],
        }


@dataclass
class CalibrationIndex:
    """Masters keyed by configuration signature."""

    entries: dict[str, list[MasterEntry]] = field(default_factory=dict)

    @classmethod
    def from_entries(cls, entries: Iterable[MasterEntry]) -> CalibrationIndex:
        index = cls()
        for entry in entries:
            index.add(entry)
        return index

    def add(self, entry: MasterEntry) -> None:
        bucket = self.entries.setdefault(entry.meta.config_signature, [])
        bucket.append(entry)
        bucket.sort(key=lambda e: (e.meta.exptime_s, e.meta.temp_c or 0.0, e.master_id))

    def for_config(self, signature: str) -> Sequence[MasterEntry]:
        return self.entries.get(signature, ())

    def __len__(self) -> int:
        return sum(len(v) for v in self.entries.values())


# ----------------------------------------------------------------------------- matching
def _evaluate(
    light: FrameMeta,
    entry: MasterEntry,
    *,
    config: MatchingConfig,
    max_mismatch: float,
    max_time_h: float,
) -> Candidate:
    lost: list[str] = []
    meta = entry.meta
    t_light = light.exptime_s or 0.0
    d_exp = t_light - meta.exptime_s
    same_exposure = abs(d_exp) <= config.exptime_rel_tol * max(t_light, meta.exptime_s)
    if not same_exposure:
        ratio = t_light / meta.exptime_s if meta.exptime_s > 0 else math.inf
        if not (1.0 / config.max_exptime_ratio <= ratio <= config.max_exptime_ratio):
            lost.append(LOST_EXPOSURE)
        elif not entry.scalable:
            lost.append(LOST_NOT_SCALABLE)
    d_temp = mismatch = None
    if light.ccd_temp_c is not None and meta.temp_c is not None:
        d_temp = light.ccd_temp_c - meta.temp_c
        mismatch = abs(1.0 / dark_current_ratio(d_temp, config.doubling_temp_c) - 1.0)
        if mismatch > max_mismatch:
            lost.append(LOST_TEMPERATURE)
    d_time = None
    if light.date_obs_utc is not None and entry.mid_time is not None:
        d_time = abs((light.date_obs_utc - entry.mid_time).total_seconds()) / 3600.0
        if d_time > max_time_h:
            lost.append(LOST_TIME)
    if entry.status in (MasterStatus.QUARANTINED, MasterStatus.SUPERSEDED):
        lost.append(LOST_STATUS)
    score = None
    if not lost:
        score = (
            (mismatch or 0.0) / config.max_dark_mismatch
            + (0.0 if same_exposure else 0.5 * abs(math.log(t_light / meta.exptime_s)))
            + 0.1 * (d_time or 0.0) / 24.0
            + 0.5 * (1.0 - entry.confidence)
        )
    return Candidate(
        master_id=entry.master_id,
        exptime_s=meta.exptime_s,
        temp_c=meta.temp_c,
        delta_exptime_s=d_exp,
        delta_temp_c=d_temp,
        delta_time_h=d_time,
        dark_mismatch=mismatch,
        score=score,
        lost_because=tuple(lost),
    )


def match_light(
    light: FrameMeta, index: CalibrationIndex, config: MatchingConfig | None = None
) -> MatchDecision:
    """Choose the master for ``light`` and explain the choice (never raises on bad metadata)."""
    config = config or MatchingConfig()
    signature = light.config_signature
    gate = temperature_gate_c(config.max_dark_mismatch, config.doubling_temp_c)
    base = dict(light_path=light.path, config_signature=signature, temperature_gate_c=gate)
    if light.exptime_s is None or not light.exptime_s > 0:
        return MatchDecision(
            **base,
            master_id=None,
            scale_mode=None,
            scale_factor=math.nan,
            confidence=0.0,
            reasons=(MatchReason.INVALID_EXPOSURE,),
        )
    entries = index.for_config(signature)
    if not entries:
        return MatchDecision(
            **base,
            master_id=None,
            scale_mode=None,
            scale_factor=math.nan,
            confidence=0.0,
            reasons=(MatchReason.NO_MASTER_FOR_CONFIG,),
            advisory=acquisition_advisory(light, config),
        )

    steps = [(config.max_dark_mismatch, config.max_time_h, None)]
    for i, (mm, th) in enumerate(
        zip(config.expansion_mismatch, config.expansion_time_h, strict=False), start=1
    ):
        steps.append((mm, th, f"step{i}: max_dark_mismatch={mm:g}, max_time_h={th:g}"))

    expansions: list[str] = []
    candidates: list[Candidate] = []
    for max_mismatch, max_time_h, label in steps:
        if label:
            expansions.append(label)
        candidates = [
            _evaluate(light, e, config=config, max_mismatch=max_mismatch, max_time_h=max_time_h)
            for e in entries
        ]
        passing = [c for c in candidates if c.passed]
        if passing:
            break
    else:
        return MatchDecision(
            **base,
            master_id=None,
            scale_mode=None,
            scale_factor=math.nan,
            confidence=0.0,
            candidates=tuple(candidates),
            reasons=(MatchReason.NO_CANDIDATE,),
            expansions=tuple(expansions),
            advisory=acquisition_advisory(light, config),
        )

    best = min(passing, key=lambda c: (c.score, c.master_id))
    candidates = [c if c is best or not c.passed else _lost(c, LOST_SCORE) for c in candidates]
    entry = next(e for e in entries if e.master_id == best.master_id)
    reasons: list[MatchReason] = []
    confidence = entry.confidence
    if expansions:
        reasons.append(MatchReason.EXPANDED_SEARCH)
        confidence -= config.expansion_confidence_penalty * len(expansions)
    if best.delta_temp_c is None:
        reasons.append(
            MatchReason.LIGHT_NO_TEMPERATURE
            if light.ccd_temp_c is None
            else MatchReason.MASTER_NO_TEMPERATURE
        )
        confidence *= 0.8
    else:
        confidence *= 1.0 - 0.1 * min(best.dark_mismatch / config.max_dark_mismatch, 1.0)
    same_exposure = abs(best.delta_exptime_s) <= config.exptime_rel_tol * light.exptime_s
    if same_exposure:
        mode, factor = ScaleMode.NONE, 1.0
    else:
        mode, factor = ScaleMode.EXPOSURE, light.exptime_s / best.exptime_s
        reasons.append(MatchReason.EXPOSURE_SCALED)
        confidence *= 0.9
    if entry.status == MasterStatus.LOW_CONFIDENCE:
        reasons.append(MatchReason.LOW_CONFIDENCE_MASTER)
    return MatchDecision(
        **base,
        master_id=best.master_id,
        scale_mode=mode,
        scale_factor=factor,
        confidence=max(0.0, min(1.0, confidence)),
        candidates=tuple(candidates),
        reasons=tuple(reasons),
        expansions=tuple(expansions),
        chosen=best,
    )


def _lost(candidate: Candidate, why: str) -> Candidate:
    from dataclasses import replace

    return replace(candidate, lost_because=(*candidate.lost_because, why))


def acquisition_advisory(light: FrameMeta, config: MatchingConfig) -> dict[str, Any]:
    """Which darks to take so that lights like this one can be calibrated."""
    return {
        "config_signature": light.config_signature,
        "instrument": light.instrument,
        "exptime_s": light.exptime_s,
        "temp_c": light.set_temp_c if light.set_temp_c is not None else light.ccd_temp_c,
        "temp_tolerance_c": round(
            temperature_gate_c(config.max_dark_mismatch, config.doubling_temp_c), 2
        ),
        "n_frames": 20,
        "text": (
            f"Take 20 darks with {light.instrument or 'this camera'} at "
            f"{light.exptime_s:g} s, gain {light.gain_setting}, offset {light.offset}, "
            f"binning {light.xbin}x{light.ybin}"
            + (
                f", sensor at {light.ccd_temp_c:.1f} °C"
                if light.ccd_temp_c is not None
                else ", at the same ambient temperature as the lights"
            )
            + "."
        ),
    }
