"""Small, frozen model objects shared by every stage.

Statuses and kinds are ``StrEnum`` members: they compare equal to their string values, which are
what CSV files, the registry and reports show. Reason codes live beside the stage that raises them
(``darkflow.ingest.headers.IngestReason`` ...); every reason enum subclasses :class:`ReasonCode` so a
code carries its one-line description and the reports can explain it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

import numpy as np

__all__ = [
    "ArtifactKind",
    "Eligibility",
    "FrameMeta",
    "FrameType",
    "GainEstimate",
    "LightStatus",
    "MasterDark",
    "MasterMeta",
    "MasterStatus",
    "ReasonCode",
    "ScaleMode",
    "SensorConfig",
    "slug",
]


class FrameType(StrEnum):
    """What a frame is, from its header or (inferred) its path."""

    LIGHT = "light"
    DARK = "dark"
    BIAS = "bias"
    FLAT = "flat"
    DARKFLAT = "darkflat"
    UNKNOWN = "unknown"


class Eligibility(StrEnum):
    """Ingestion outcome of one file."""

    ELIGIBLE = "eligible"
    ISOLATED = "isolated"  # usable only by explicit choice (inferred type, missing temperature...)
    REJECTED = "rejected"  # unusable (unreadable, missing exposure, inconsistent keys...)


class LightStatus(StrEnum):
    """Final state of every light: exactly one of these, never silently dropped."""

    CALIBRATED = "calibrated"
    DEGRADED = "degraded"
    QUARANTINED = "quarantined"


class MasterStatus(StrEnum):
    """State of a master in the registry: verified, low confidence, superseded, quarantined or failed."""

    VERIFIED = "verified"
    LOW_CONFIDENCE = "low_confidence"
    SUPERSEDED = "superseded"
    QUARANTINED = "quarantined"
    FAILED = "failed"  # could not be built (masters.csv row with the reason; never registered)


class ArtifactKind(StrEnum):
    """What a registry artifact is (the registry's ``kind`` column)."""

    MASTER_DARK = "master_dark"
    MASTER_BIAS = "master_bias"
    CALIBRATED_LIGHT = "calibrated_light"


class ScaleMode(StrEnum):
    """How a master was turned into the dark model subtracted from a light."""

    NONE = "none"  # same exposure (within tolerance): subtract as is
    EXPOSURE = "exposure"  # dark current scaled by exposure ratio (bias kept)
    INTERPOLATE = "interpolate"  # interpolated between two bracketing exposure bins
    TEMPERATURE = "temperature"  # dark current scaled to the light's temperature
    EXPOSURE_TEMPERATURE = "exposure+temperature"
    UNSCALED = "unscaled"  # exposures differ but scaling is not supported: subtracted as is
    # interpolations and temperature scaling chosen by darkflow.matching (docs/matching.md)
    INTERPOLATE_TEMPERATURE = "interpolate+temperature"  # both bins scaled to the light's T
    THERMAL_INTERPOLATE = "thermal-interpolate"  # between two masters bracketing the light's T
    # per pixel, intercept and rate fitted on two or more exposure bins (no bias needed)
    PIXEL_FIT = "pixel-fit"


class ReasonCode(StrEnum):
    """Base of the reason enums. Subclasses define members as ``NAME = ("code", "description")``."""

    def __new__(cls, value: str, description: str = ""):
        """A member with its one-line ``description`` (shown in reports and ``darkflow quarantine``)."""
        obj = str.__new__(cls, value)
        obj._value_ = value
        obj.description = description
        return obj


_SLUG = re.compile(r"[^a-z0-9.+]+")


def slug(text: object) -> str:
    """Lower-case, filesystem-safe form of ``text`` (``"ZWO ASI2600MM Pro"`` → ``zwo-asi2600mm-pro``)."""
    out = _SLUG.sub("-", str(text).strip().lower()).strip("-")
    return out or "unknown"


def _fmt_num(value: float | None) -> str:
    if value is None:
        return "na"
    return f"{value:g}"


@dataclass(frozen=True)
class FrameMeta:
    """Normalised header of one frame, whatever program wrote it.

    ``None`` means "absent or unusable" (a sentinel such as -1.8e308 is normalised to ``None``).
    Times are timezone-aware UTC ``datetime`` objects.
    """

    path: str
    frame_type: FrameType = FrameType.UNKNOWN
    frame_type_inferred: bool = False
    exptime_s: float | None = None
    darktime_s: float | None = None
    ccd_temp_c: float | None = None
    set_temp_c: float | None = None
    gain_setting: float | None = None  # camera gain setting (or ISO for DSLRs)
    egain_e_per_adu: float | None = None  # e-/ADU of the saved values
    offset: float | None = None
    xbin: int = 1
    ybin: int = 1
    readout_mode: str | None = None
    instrument: str | None = None
    camera_id: str | None = None
    date_obs_utc: datetime | None = None
    shape: tuple[int, int] | None = None  # (ny, nx) of the image HDU
    dtype: str | None = None  # numpy dtype name of the stored (scaled) data, e.g. "uint16"
    bayer_pattern: str | None = None
    source_program: str | None = None
    hdu_index: int = 0
    calibrated: bool = False  # already calibrated by another tool (CALSTAT, ...): never recalibrate
    pedestal: float | None = None
    site_longitude_deg: float | None = None
    object_name: str | None = None
    filter_name: str | None = None

    @property
    def config(self) -> SensorConfig:
        """The sensor configuration the frame was taken in (camera, binning, gain, offset, mode,
        shape)."""
        return SensorConfig.from_meta(self)

    @property
    def config_signature(self) -> str:
        """The configuration's readable signature: frames of one signature can share masters."""
        return self.config.signature

    def replace(self, **changes: Any) -> FrameMeta:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict (values unchanged)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class SensorConfig:
    """The grouping key: frames with equal ``SensorConfig`` may calibrate each other."""

    instrument: str
    camera_id: str | None
    xbin: int
    ybin: int
    gain_setting: float | None
    offset: float | None
    readout_mode: str | None
    shape: tuple[int, int] | None

    @classmethod
    def from_meta(cls, meta: FrameMeta) -> SensorConfig:
        """The sensor configuration of a frame's normalised header."""
        return cls(
            instrument=meta.instrument or "unknown",
            camera_id=meta.camera_id,
            xbin=meta.xbin,
            ybin=meta.ybin,
            gain_setting=meta.gain_setting,
            offset=meta.offset,
            readout_mode=meta.readout_mode,
            shape=meta.shape,
        )

    @property
    def instrument_slug(self) -> str:
        """Filesystem-safe name of the instrument (and camera id when known)."""
        inst = slug(self.instrument)
        return f"{inst}-{slug(self.camera_id)}" if self.camera_id else inst

    @property
    def signature(self) -> str:
        """Readable, filesystem-safe signature, e.g. ``zwo-asi2600mm-pro_b1x1_g100_o50_rm-default_4176x6248``."""
        shape = f"{self.shape[0]}x{self.shape[1]}" if self.shape else "noshape"
        mode = slug(self.readout_mode) if self.readout_mode else "default"
        return (
            f"{self.instrument_slug}_b{self.xbin}x{self.ybin}_g{_fmt_num(self.gain_setting)}"
            f"_o{_fmt_num(self.offset)}_rm-{mode}_{shape}"
        )


@dataclass(frozen=True)
class MasterMeta:
    """What a master dark is a model of."""

    config_signature: str
    instrument: str
    exptime_s: float
    temp_c: float | None  # mean measured sensor temperature of the inputs
    set_temp_c: float | None
    n_frames: int
    egain_e_per_adu: float | None = None
    gain_setting: float | None = None
    offset: float | None = None
    readout_mode: str | None = None
    date_start_utc: datetime | None = None
    date_end_utc: datetime | None = None
    temp_min_c: float | None = None
    temp_max_c: float | None = None
    includes_bias: bool = True  # the master still holds the bias/offset level
    bias_subtracted: bool = False  # a master bias was removed: the planes are dark current only
    frame_kind: FrameType = FrameType.DARK  # DARK or BIAS
    # exposure of the bias (0 for a true bias, > 0 for short darks used as a bias proxy) that was
    # subtracted from a bias-subtracted master: its planes hold exptime_s - bias_exptime_s of
    # dark current (darkflow.master.make_dark_current_master)
    bias_exptime_s: float | None = None


@dataclass(frozen=True, eq=False)
class MasterDark:
    """A combined master with its per-pixel planes.

    ``data`` (float32) is the clipped mean, ``uncertainty`` its standard error, ``n_used`` the
    frames kept per pixel, ``n_low``/``n_high`` the frames clipped below/above, and
    ``hot_persistence`` the fraction of input frames in which the pixel was high (1.0 for a stable
    hot pixel, small for a pixel hit once by a cosmic ray). ``saturated`` flags pixels at the ADC
    limit in every frame. ``stats`` holds summary statistics, ``provenance`` what was done to what.
    """

    data: np.ndarray
    uncertainty: np.ndarray
    n_used: np.ndarray
    n_low: np.ndarray
    n_high: np.ndarray
    hot_persistence: np.ndarray
    meta: MasterMeta
    saturated: np.ndarray | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)`` of the master."""
        return self.data.shape

    def __repr__(self) -> str:
        m = self.meta
        return (
            f"<MasterDark {m.config_signature} exptime={m.exptime_s:g}s temp={m.temp_c} "
            f"n={m.n_frames} shape={self.data.shape}>"
        )


@dataclass(frozen=True)
class GainEstimate:
    """e-/ADU of the saved values with its 1-sigma uncertainty and where it came from.

    ``source`` is ``"header"`` (EGAIN; ``sigma`` then expresses how far a header is trusted),
    or the estimator that measured it (``"bias_dark_pairs"``, ``"darks"``, ``"flats"``,
    ``"light"``...); ``n`` the number of independent measurements behind it. Every noise-model
    test carries ``rel_sigma`` into the spread of its statistic.
    """

    value: float
    sigma: float
    source: str
    n: int = 0

    @property
    def rel_sigma(self) -> float:
        """The relative 1-sigma uncertainty (infinite for a non-positive value)."""
        return self.sigma / self.value if self.value > 0 else float("inf")

    def __repr__(self) -> str:
        return f"<GainEstimate {self.value:.4g} +- {self.sigma:.2g} e-/ADU ({self.source})>"
