"""One frozen configuration tree, loaded from TOML.

Each stage reads only its own section. ``Config.section_hash(*names)`` hashes the sections a job
depends on, so a change to a light-only parameter never invalidates a master (see
``darkflow.pipeline``). Unknown keys are an error, not a silent no-op.

Example ``darkflow.toml``::

    [combine]
    sigma_low = 3.0
    sigma_high = 3.0
    memory_limit = "512MB"

    [matching]
    doubling_temp_c = 6.3
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from darkflow.exceptions import ConfigError, DarkflowWarning

__all__ = [
    "DARK_LAW_KEYS",
    "CombineConfig",
    "Config",
    "DeprecatedSettingWarning",
    "IngestConfig",
    "MatchingConfig",
    "OutputConfig",
    "PipelineConfig",
    "ScalingConfig",
    "SubtractConfig",
    "VerifyConfig",
    "parse_size",
]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def parse_size(text: str | int | float) -> int:
    """Parse a memory size such as ``"64MB"``, ``"1GB"``, ``"512MiB"`` or ``1000000`` into bytes.

    Decimal suffixes (kB, MB, GB) are powers of 1000, binary ones (KiB, MiB, GiB) powers of 1024.
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        if text <= 0:
            raise ConfigError(f"memory size must be positive, got {text!r}")
        return int(text)
    m = _SIZE.match(str(text))
    if not m:
        raise ConfigError(f"cannot parse memory size {text!r} (use e.g. 64MB, 1GB, 512MiB)")
    number, unit = float(m.group(1)), (m.group(2) or "").lower()
    binary = "i" in unit
    unit = unit.replace("i", "").rstrip("b") if unit not in ("b",) else ""
    factor = (1024 ** "kmgt".index(unit) * 1024) if binary and unit else _UNITS[unit]
    size = int(number * factor)
    if size <= 0:
        raise ConfigError(f"memory size must be positive, got {text!r}")
    return size


@dataclass(frozen=True)
class IngestConfig:
    """Settings of ingestion (``darkflow scan``): frame types from paths, nights, sessions, what GAIN
    means."""

    infer_type_from_path: bool = True  # no IMAGETYP: take the frame type from folder/file names
    night_offset_h: float = -12.0  # night = date of (local solar time + offset)
    session_gap_h: float = 4.0  # lights of one instrument further apart start a new session
    # what GAIN means when the capture program does not say: "auto" (decide per program and
    # from EGAIN/comments), "setting" (camera gain setting) or "e_per_adu" (observatory style)
    gain_keyword: str = "auto"
    # Which *isolated* frames the pipeline uses (the explicit choice isolation asks for):
    # "none"; "systemic" (default): frames whose isolation reasons are shared by every frame of
    # their configuration group that night, i.e. a property of the camera or program (an uncooled
    # camera without a temperature sensor, a program that never writes IMAGETYP), not an anomaly
    # of one frame; "all".
    use_isolated: str = "systemic"

    def __post_init__(self) -> None:
        if self.use_isolated not in ("none", "systemic", "all"):
            raise ConfigError(
                f"ingest.use_isolated must be 'none', 'systemic' or 'all', got {self.use_isolated!r}"
            )
        if self.gain_keyword not in ("auto", "setting", "e_per_adu"):
            raise ConfigError(
                f"ingest.gain_keyword must be 'auto', 'setting' or 'e_per_adu', "
                f"got {self.gain_keyword!r}"
            )
        if self.session_gap_h <= 0:
            raise ConfigError("ingest.session_gap_h must be positive")


@dataclass(frozen=True)
class CombineConfig:
    """Settings of the master combine: sigma clipping, noise scale, memory budget, saturation."""

    sigma_low: float = 3.0  # clip pixels this many noise sigmas below the robust level
    sigma_high: float = 3.0  # clip pixels this many noise sigmas above it (cosmic rays)
    max_iters: int = 5  # clipping iterations at most
    scale: str = "noise"  # "noise" (read + shot noise through the gain) or "mad" (robust)
    memory_limit: str = "1GB"  # memory budget of one combine ("512MB", "2GiB")
    min_frames: int = 3  # fewer frames: no master (darkflow combine --allow-few overrides)
    hot_sigma: float = 5.0  # a pixel is "high" in a frame above frame level + hot_sigma * noise
    read_noise_e: float | None = None  # None: estimated from the data
    # added for darkflow.master (see docs/master.md): "std" = classical (ccdproc/astropy) scale
    saturation_adu: float | None = None  # None: the largest value of the stored integer type
    merge_temp_tol_c: float = 1.0  # update_master: merge only within this temperature difference
    merge_max_z_offset: float = 0.5  # update_master: |median z| of new vs existing master
    merge_max_z_spread: float = 1.5  # update_master: robust spread of z (1 when consistent)

    def __post_init__(self) -> None:
        if self.scale not in ("noise", "mad", "std"):
            raise ConfigError(f"combine.scale must be 'noise', 'mad' or 'std', got {self.scale!r}")
        if self.sigma_low <= 0 or self.sigma_high <= 0:
            raise ConfigError("combine.sigma_low and combine.sigma_high must be positive")
        if self.max_iters < 0:
            raise ConfigError("combine.max_iters must be >= 0")
        if self.min_frames < 1:
            raise ConfigError("combine.min_frames must be >= 1")
        parse_size(self.memory_limit)

    @property
    def memory_limit_bytes(self) -> int:
        """``memory_limit`` in bytes."""
        return parse_size(self.memory_limit)


# The dark-current law's prior and the noise of a temperature reading: owned by [matching],
# read by matching, thermal grouping and the previous-master gate of verify alike.
DARK_LAW_KEYS = ("doubling_temp_c", "doubling_temp_sigma_c", "temp_reading_sigma_c")


@dataclass(frozen=True)
class MatchingConfig:
    """Settings of matching: the temperature and exposure gates, the dark-current law's prior and the
    scoring of candidate masters (``docs/matching.md``)."""

    # default dark-current doubling temperature (matching, thermal groups, and the scaling of a
    # previous master to a new one's temperature in verify)
    doubling_temp_c: float = 6.0
    max_dark_mismatch: float = 0.15  # temperature gate: accepted dark-current mismatch fraction
    max_exptime_ratio: float = 4.0  # exposure deviation limit for scaling (either direction)
    exptime_rel_tol: float = 0.01  # exposures within 1% count as equal
    max_time_h: float = 24.0 * 30  # darks older than this are not candidates
    # expansion steps when nothing passes: each multiplies the gates and lowers the confidence
    expansion_mismatch: tuple[float, ...] = (0.3, 0.6)
    expansion_time_h: tuple[float, ...] = (24.0 * 90, 24.0 * 365)
    expansion_confidence_penalty: float = 0.2
    # --- thermal drift and exposure decisions (docs/matching.md)
    doubling_temp_sigma_c: float = 1.0  # 1-sigma of the default doubling temperature
    temp_reading_sigma_c: float = 0.2  # 1-sigma of one sensor temperature reading
    noisy_reading_c: float = 0.5  # session drift-fit RMS above this: readings are noisy
    setpoint_sigma_c: float = 1.5  # a set-point standing in for a missing reading
    profile_min_sigma_c: float = 0.5  # floor of a temperature taken from stored profiles
    unknown_temp_error: float = 0.15  # dark mismatch assumed when a temperature is unknown
    time_error_per_day: float = 0.002  # score: relative dark error per day master <-> light
    max_temp_scaling_c: float = 10.0  # a master is never scaled further than this
    temp_model_error_per_c: float = 0.01  # score: law model risk per °C of scaling
    law_extrapolation_c: float = 3.0  # scaling beyond the law's fitted range by at most this
    law_min_span_c: float = 2.0  # a fitted law needs masters spanning this many degrees
    law_max_rel_sigma: float = 0.15  # ... a doubling temperature this precise
    law_max_rms_c: float = 0.5  # ... and residuals this small to support scaling
    min_thermal_pair_span_c: float = 1.0  # thermal interpolation needs masters this far apart
    max_thermal_extrapolation: float = 0.25  # thermal weights allowed in [-x, 1 + x]
    thermal_group_gap_h: float = 1.0  # darks further apart in time form separate masters
    # widening of max_exptime_ratio by the expansion steps: a scaled model with its stated
    # error (degraded) rather than no output, while its noise stays below the signal it removes
    expansion_exptime_ratio: tuple[float, ...] = (10.0, 30.0)
    advisory_n_frames: int = 20  # darks to take, in an acquisition advisory
    # the last resort before no output: a master of the light's configuration at another
    # temperature, scaled by the configured law (doubling_temp_c +- doubling_temp_sigma_c in
    # its stated error) when the darks give no fitted law; the light ends `degraded` unless
    # its own dark-scale check passes
    assume_dark_law: bool = True

    def __post_init__(self) -> None:
        positive = (
            "doubling_temp_c",
            "max_dark_mismatch",
            "max_exptime_ratio",
            "max_time_h",
            "doubling_temp_sigma_c",
            "temp_reading_sigma_c",
            "noisy_reading_c",
            "setpoint_sigma_c",
            "profile_min_sigma_c",
            "unknown_temp_error",
            "max_temp_scaling_c",
            "law_min_span_c",
            "law_max_rel_sigma",
            "law_max_rms_c",
            "thermal_group_gap_h",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"matching.{name} must be positive, got {getattr(self, name)!r}")
        if self.max_exptime_ratio < 1:
            raise ConfigError("matching.max_exptime_ratio must be >= 1")
        if (
            self.exptime_rel_tol < 0
            or self.time_error_per_day < 0
            or self.temp_model_error_per_c < 0
        ):
            raise ConfigError(
                "matching.exptime_rel_tol, time_error_per_day, temp_model_error_per_c must be >= 0"
            )
        if self.law_extrapolation_c < 0 or self.max_thermal_extrapolation < 0:
            raise ConfigError("matching.law_extrapolation_c/max_thermal_extrapolation >= 0")
        if not 0 <= self.expansion_confidence_penalty <= 1:
            raise ConfigError("matching.expansion_confidence_penalty must be in [0, 1]")
        if self.advisory_n_frames < 1:
            raise ConfigError("matching.advisory_n_frames must be >= 1")


@dataclass(frozen=True)
class ScalingConfig:
    """Settings of the exposure laws: which scalings are allowed and how linearity is tested."""

    allow_exposure_scaling: bool = True  # scale a master to a light's exposure
    allow_interpolation: bool = True  # interpolate between two masters
    allow_temperature_scaling: bool = True  # scale a master along the thermal law
    linearity_tolerance: float = 0.05  # relative deviation from a linear dark-signal law
    # --- exposure laws (docs/matching.md)
    unproven_linearity: str = "degrade"  # "degrade" (use, lower confidence) or "reject"
    unproven_error: float = 0.05  # relative error assumed for an exposure law not demonstrated
    allow_unscaled: bool = True  # an exposure mismatch inside the gate may be subtracted as is
    max_interpolation_ratio: float = 10.0  # longest / shortest bracketing exposure
    block_px: int = 16  # block size of the smooth (amp-glow) level map
    hot_sigma: float = 20.0  # hot-pixel set: excess over the local level above this many sigma
    max_hot_pixels: int = 20000  # at most this many hot pixels per configuration

    def __post_init__(self) -> None:
        if self.unproven_linearity not in ("degrade", "reject"):
            raise ConfigError(
                "scaling.unproven_linearity must be 'degrade' or 'reject', "
                f"got {self.unproven_linearity!r}"
            )
        for name in ("linearity_tolerance", "unproven_error", "hot_sigma"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"scaling.{name} must be positive")
        if self.max_interpolation_ratio <= 1:
            raise ConfigError("scaling.max_interpolation_ratio must be > 1")
        if self.block_px < 2 or self.max_hot_pixels < 10:
            raise ConfigError("scaling.block_px must be >= 2 and max_hot_pixels >= 10")


@dataclass(frozen=True)
class VerifyConfig:
    """Settings of ``darkflow.verify`` (see ``docs/verification.md``).

    Every gate is a statistical test at the false-alarm probability ``gate_false_alarm``; the
    other keys are physical inputs of the gates' null hypotheses (how far a header EGAIN is
    trusted, the cosmic-ray rate of a healthy sensor) or light-check tolerances. The dark-current
    law that scales a previous master to a new one's temperature is ``[matching]``'s
    (``DARK_LAW_KEYS``).
    """

    holdout_fraction: float = 0.2  # darks held out of a master to check it against
    max_fpn_ratio: float = 2.0  # not read by any gate any more (the gates are statistical tests)
    # --- added for the acceptance gates and light checks (darkflow.verify)
    min_train_frames: int = 3  # hold-out split: never leave fewer frames to combine
    # advisory (never a failure): the master's noise adds more than this to a light's variance
    max_noise_inflation: float = 1.25
    # 1-sigma relative trust of a header EGAIN (per-model value; units differ by a few %)
    header_gain_rel_sigma: float = 0.05
    # highest cosmic-ray hit rate per pixel and second of a healthy sensor on the ground:
    # 0.4 /cm²/s (~25x the sea-level muon flux: altitude, radioactive window glass) x a 25 µm
    # pixel (docs/verification.md)
    cosmic_rate_px_s: float = 2.5e-6
    cosmic_readout_s: float = 10.0  # exposure to cosmic rays during a readout (biases)
    min_stars: int = 5  # fewer real stars (at least 4): photometric gates not measured
    max_analysis_pixels: int = 2_000_000  # larger frames: a central band of rows is analysed
    # False-alarm probability of each statistical gate (darkflow.verify.significance_gate):
    # the chance that one gate fails a master or light when all is well.
    gate_false_alarm: float = 1e-4

    def __post_init__(self) -> None:
        if not 0.0 < self.gate_false_alarm < 0.5:
            raise ConfigError("verify.gate_false_alarm must be in (0, 0.5)")
        if not 0.0 <= self.holdout_fraction < 1.0:
            raise ConfigError("verify.holdout_fraction must be in [0, 1)")
        if self.min_train_frames < 1 or self.min_stars < 0:
            raise ConfigError("verify.min_train_frames must be >= 1 and min_stars >= 0")
        if self.max_analysis_pixels < 10_000:
            raise ConfigError("verify.max_analysis_pixels must be >= 10000")
        if self.header_gain_rel_sigma < 0 or self.cosmic_rate_px_s < 0 or self.cosmic_readout_s < 0:
            raise ConfigError(
                "verify.header_gain_rel_sigma, cosmic_rate_px_s and cosmic_readout_s must be >= 0"
            )
        if not self.max_noise_inflation > 1.0:
            raise ConfigError("verify.max_noise_inflation must be above 1")


@dataclass(frozen=True)
class SubtractConfig:
    """Settings of subtraction: the pedestal and the conservative fallback for lights no master passes."""

    pedestal_adu: float = 0.0  # added after subtraction (keeps noise above zero; never clipped)
    # The conservative alternative for lights no master passes the gates for: the latest
    # verified master of the configuration (proven fixed-pattern stability), its dark signal
    # limited to `conservative_amplitude_sigma` robust sigmas around the typical level; the light
    # ends `degraded` with reason `conservative_fallback` at `conservative_confidence`.
    conservative_fallback: bool = False
    conservative_amplitude_sigma: float = 5.0
    conservative_confidence: float = 0.3

    def __post_init__(self) -> None:
        if not self.conservative_amplitude_sigma > 0:
            raise ConfigError("subtract.conservative_amplitude_sigma must be positive")
        if not 0.0 <= self.conservative_confidence <= 1.0:
            raise ConfigError("subtract.conservative_confidence must be in [0, 1]")


PLANE_MODES = ("full", "compressed", "scalar")


@dataclass(frozen=True)
class OutputConfig:
    """How the master's auxiliary planes and each light's uncertainty are written.

    Each is ``full`` (the plane as it is), ``compressed`` (a tile-compressed image HDU of the same
    name: lossless for the count, persistence and saturation planes; the uncertainty quantised
    to 1/``quantize_level`` of its own pixel-to-pixel scatter) or ``scalar`` (no plane: header
    values from which readers rebuild an approximate one). The master's own pixels are always
    written in full. Defaults: what stacking programs downstream read (the master image, and
    ccdproc's ``UNCERT`` extension), see ``docs/master.md``. These settings are part of the
    master's and the light's content keys.
    """

    uncertainty: str = "compressed"  # the master's UNCERT plane
    n_used: str = "compressed"  # the master's plane of frames used per pixel
    n_low: str = "compressed"  # ... of frames clipped low per pixel
    n_high: str = "compressed"  # ... of frames clipped high per pixel
    hot_persistence: str = "compressed"  # ... of how often each pixel was hot
    saturated: str = "compressed"  # ... of saturated frames per pixel
    light_uncertainty: str = "scalar"  # a calibrated light's UNCERT plane
    quantize_level: float = 16.0  # compressed uncertainty: steps per unit of its own scatter

    def __post_init__(self) -> None:
        for name in MASTER_PLANE_KEYS + LIGHT_PLANE_KEYS:
            if getattr(self, name) not in PLANE_MODES:
                raise ConfigError(
                    f"output.{name} must be one of {', '.join(PLANE_MODES)}, "
                    f"got {getattr(self, name)!r}"
                )
        if not self.quantize_level > 0:
            raise ConfigError("output.quantize_level must be positive")

    def master_planes(self) -> dict[str, str]:
        """Mode of each auxiliary master plane, by ``MasterDark`` attribute."""
        return {name: getattr(self, name) for name in MASTER_PLANE_KEYS}


MASTER_PLANE_KEYS = ("uncertainty", "n_used", "n_low", "n_high", "hot_persistence", "saturated")
LIGHT_PLANE_KEYS = ("light_uncertainty",)


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of a run: the executor, its workers and the Dask scheduler."""

    executor: str = "local"  # "local" or "dask"
    # local: processes calibrating lights in parallel (0: one per core, fewer when memory is
    # short; 1: everything in the driver process); dask: workers of a local cluster (0: 2)
    workers: int = 0
    scheduler: str | None = None  # address of a Dask scheduler ("tcp://host:8786")
    # seconds to reach a Dask scheduler, for a worker to join, and without any worker or
    # scheduler mid-run before the run stops with an error (never a hang)
    dask_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ConfigError(
                f"pipeline.workers must be >= 0 (0: one per core), got {self.workers}"
            )


@dataclass(frozen=True)
class Config:
    """The whole configuration, one frozen section per stage (each stage reads only its own)."""

    ingest: IngestConfig = field(default_factory=IngestConfig)
    combine: CombineConfig = field(default_factory=CombineConfig)
    matching: MatchingConfig = field(default_factory=MatchingConfig)
    scaling: ScalingConfig = field(default_factory=ScalingConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    subtract: SubtractConfig = field(default_factory=SubtractConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Config:
        """Build a configuration from nested dicts (a parsed TOML file); unknown sections and keys
        raise :class:`ConfigError`."""
        data = _move_keys(dict(data or {}))
        sections: dict[str, Any] = {}
        hints = get_type_hints(cls)
        for name, value in data.items():
            if name not in hints:
                raise ConfigError(
                    f"unknown configuration section [{name}]; known: {', '.join(sorted(hints))}"
                )
            if not isinstance(value, dict):
                raise ConfigError(f"configuration section [{name}] must be a table")
            sections[name] = _build_section(hints[name], name, value)
        return cls(**sections)

    @classmethod
    def from_toml(cls, path: str | Path) -> Config:
        """Read a TOML configuration file (see :meth:`from_dict`)."""
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as err:
            raise ConfigError(f"cannot read configuration file {path}: {err}") from err
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"invalid TOML in {path}: {err}") from err
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: dict[str, Any]) -> Config:
        """Load ``path`` (or the defaults) and apply per-section overrides."""
        cfg = cls.from_toml(path) if path else cls()
        return cfg.with_overrides(**overrides) if overrides else cfg

    def with_overrides(self, **sections: dict[str, Any]) -> Config:
        """Return a copy with some keys of some sections replaced, validated like TOML input."""
        merged = self.to_dict()
        for name, values in sections.items():
            if name not in merged:
                raise ConfigError(f"unknown configuration section [{name}]")
            merged[name].update({k: v for k, v in values.items() if v is not None})
        return Config.from_dict(merged)

    # ------------------------------------------------------------------ views
    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The configuration as plain nested dicts of JSON values, one per section."""
        return {
            f.name: _jsonable(dataclasses.asdict(getattr(self, f.name)))
            for f in dataclasses.fields(self)
        }

    def section_hash(self, *names: str) -> str:
        """Stable hash of the named sections (the part of the config a job depends on)."""
        full = self.to_dict()
        subset = {n: full[n] for n in sorted(names)}
        blob = json.dumps(subset, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj


class DeprecatedSettingWarning(DarkflowWarning, FutureWarning):
    """A configuration key that no longer has an effect where it is (kept loadable, ignored):
    gone, or moved to another section."""


_GATES = "the checks are statistical tests at verify.gate_false_alarm (docs/verification.md)"
# Keys that used to exist: a TOML file setting them still loads (with a warning), the value is
# ignored. The verify tolerances became statistical gates and the light status a rule
# (quarantined only where subtraction does more harm than good): docs/verification.md.
DEPRECATED_KEYS: dict[str, dict[str, str]] = {
    "verify": dict.fromkeys(
        (
            # master gates
            "max_residual_width_ratio",
            "max_holdout_shift_sigma",
            "max_holdout_outlier_frac",
            "max_high_reject_excess",
            "min_master_variance_ratio",
            "max_master_variance_ratio",
            "max_gain_deviation",
            "max_dark_scale_change",
            "max_level_shift_sigma",
            "max_low_freq_sigma",
            "min_hot_overlap",
            # light checks
            "max_variance_ratio",
            "max_dark_scale_error",
            "min_scale_significance",
            "max_negative_frac",
            "max_negative_background_sigma",
            "max_centroid_shift_px",
            "max_flux_change",
            "quarantine_confidence",
        ),
        _GATES,
    ),
}
# Keys that moved to another section: a TOML file setting them in the old one still loads (with
# a warning); the new section's value is the one used.
MOVED_KEYS: dict[str, dict[str, str]] = {"verify": dict.fromkeys(DARK_LAW_KEYS, "matching")}


def _move_keys(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` without the moved keys of their old sections, one warning per section."""
    out = dict(data)
    sections = get_type_hints(Config)
    for old, moved in MOVED_KEYS.items():
        values = out.get(old)
        if not isinstance(values, dict) or not set(values) & set(moved):
            continue
        keys = sorted(set(values) & set(moved))
        out[old] = {k: v for k, v in values.items() if k not in moved}
        notes = []
        for key in keys:
            new = moved[key]
            target = out.get(new) if isinstance(out.get(new), dict) else {}
            default = getattr(sections[new](), key)
            used = target.get(key, default)
            same = values[key] == used
            notes.append(
                f"{key} -> [{new}] {key}" + ("" if same else f" (its value {used!r} is used)")
            )
        warnings.warn(
            f"[{old}] {', '.join(keys)}: moved, ignored here ({'; '.join(notes)})",
            DeprecatedSettingWarning,
            stacklevel=4,
        )
    return out


def _build_section(section_type: type, name: str, values: dict[str, Any]) -> Any:
    hints = get_type_hints(section_type)
    gone = DEPRECATED_KEYS.get(name, {})
    old = sorted(set(values) & set(gone) - set(hints))
    if old:  # one warning for the file's section, every stale key named
        why = "; ".join(dict.fromkeys(gone[key] for key in old))
        warnings.warn(
            f"[{name}] {', '.join(old)}: no longer used, ignored ({why})",
            DeprecatedSettingWarning,
            stacklevel=4,
        )
    values = {k: v for k, v in values.items() if k in hints or k not in gone}
    unknown = set(values) - set(hints)
    if unknown:
        raise ConfigError(
            f"unknown key(s) in [{name}]: {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(hints))}"
        )
    kwargs = {}
    for key, value in values.items():
        kwargs[key] = _coerce(hints[key], value, f"{name}.{key}")
    try:
        return section_type(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:
        raise ConfigError(f"invalid [{name}]: {err}") from err


def _coerce(hint: Any, value: Any, where: str) -> Any:
    text = str(hint)
    if value is None:
        if "None" in text:
            return None
        raise ConfigError(f"{where} may not be empty")
    if text.startswith("tuple"):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return tuple(float(v) for v in value)
    if hint is bool or text == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if hint is int or text.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if hint is float or text.startswith("float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if hint is str or text.startswith("str"):
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    return value
