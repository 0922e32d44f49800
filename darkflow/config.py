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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from darkflow.exceptions import ConfigError

__all__ = [
    "CombineConfig",
    "Config",
    "IngestConfig",
    "MatchingConfig",
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
    infer_type_from_path: bool = True
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
    sigma_low: float = 3.0
    sigma_high: float = 3.0
    max_iters: int = 5
    scale: str = "noise"  # "noise" (read + shot noise through the gain) or "mad" (robust)
    memory_limit: str = "1GB"
    min_frames: int = 3
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
        return parse_size(self.memory_limit)


@dataclass(frozen=True)
class MatchingConfig:
    doubling_temp_c: float = 6.0  # default dark-current doubling temperature
    max_dark_mismatch: float = 0.15  # temperature gate: accepted dark-current mismatch fraction
    max_exptime_ratio: float = 4.0  # exposure deviation limit for scaling (either direction)
    exptime_rel_tol: float = 0.01  # exposures within 1% count as equal
    max_time_h: float = 24.0 * 30  # darks older than this are not candidates
    # expansion steps when nothing passes: each multiplies the gates and lowers the confidence
    expansion_mismatch: tuple[float, ...] = (0.3, 0.6)
    expansion_time_h: tuple[float, ...] = (24.0 * 90, 24.0 * 365)
    expansion_confidence_penalty: float = 0.2


@dataclass(frozen=True)
class ScalingConfig:
    allow_exposure_scaling: bool = True
    allow_interpolation: bool = True
    allow_temperature_scaling: bool = True
    linearity_tolerance: float = 0.05  # relative deviation from a linear dark-signal law


@dataclass(frozen=True)
class VerifyConfig:
    holdout_fraction: float = 0.2
    max_residual_width_ratio: float = 1.25  # measured / predicted residual width
    max_variance_ratio: float = 1.3  # light background variance / predicted
    max_fpn_ratio: float = 2.0


@dataclass(frozen=True)
class SubtractConfig:
    pedestal_adu: float = 0.0  # added after subtraction (keeps noise above zero)
    clip_negative: bool = False  # never clip by default: clipping biases the background
    output_dtype: str = "float32"


@dataclass(frozen=True)
class PipelineConfig:
    executor: str = "local"  # "local" or "dask"
    workers: int = 1
    scheduler: str | None = None


@dataclass(frozen=True)
class Config:
    ingest: IngestConfig = field(default_factory=IngestConfig)
    combine: CombineConfig = field(default_factory=CombineConfig)
    matching: MatchingConfig = field(default_factory=MatchingConfig)
    scaling: ScalingConfig = field(default_factory=ScalingConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    subtract: SubtractConfig = field(default_factory=SubtractConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Config:
        data = dict(data or {})
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


def _build_section(section_type: type, name: str, values: dict[str, Any]) -> Any:
    hints = get_type_hints(section_type)
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
