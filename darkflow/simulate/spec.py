"""What a simulated night is made of: sites, sessions, exposure blocks, breakages and faults.

A :class:`NightSpec` lists the cameras (``{key: SensorModel}``) and the sessions of one night.
A :class:`SessionSpec` is one camera driven by one capture program: a sequence of
:class:`Block` s (runs of lights, darks, biases) taken one after the other from ``start_h``,
with the cooler set-point, the ambient temperature, the sky of the target, the frames to break
(:class:`BrokenFrame`) and the faults to inject (:class:`Fault`).

Specs are frozen dataclasses: derive variants with ``spec.replace(...)`` or
:func:`dataclasses.replace`, which keeps new scenario presets a few lines long.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import numpy as np

from darkflow.exceptions import ConfigError
from darkflow.simulate._serial import omitted
from darkflow.simulate.physics import FRAME_KINDS
from darkflow.simulate.sensors import SensorModel
from darkflow.simulate.sky import SkySpec
from darkflow.simulate.thermal import AmbientSpec

__all__ = [
    "Block",
    "Breakage",
    "BrokenFrame",
    "Fault",
    "FramePlan",
    "LightLeak",
    "NightSpec",
    "Program",
    "SessionSpec",
    "Site",
    "TemperatureOffset",
    "TemperatureReadout",
]


class Program(StrEnum):
    """Capture programs whose header and folder conventions the simulator reproduces."""

    NINA = "nina"
    SGP = "sgp"
    MAXIM = "maxim"
    SHARPCAP = "sharpcap"
    EKOS = "ekos"
    ASIAIR = "asiair"


class Breakage(StrEnum):
    """Deliberate defects of a written file (the ``broken`` column of ``frames.csv``)."""

    MISSING_TEMPERATURE = "missing_temperature"  # CCD-TEMP removed
    TEMPERATURE_SENTINEL = "temperature_sentinel"  # CCD-TEMP = -1.79769313486232E+308
    MISSING_FRAME_TYPE = "missing_frame_type"  # IMAGETYP (and FRAME) removed
    TRUNCATED = "truncated"  # file cut in the middle of the data unit
    NAN_DATA = "nan_data"  # float32 data (BITPIX=-32) with NaN pixels
    WRONG_BINNING_HEADER = "wrong_binning_header"  # XBINNING=YBINNING=2, 1x1-sized array
    BINNED_FRAME = "binned_2x2_in_1x1_set"  # a real 2x2 (half-size) frame among 1x1 frames


@dataclass(frozen=True)
class Site:
    """Observing site; ``utc_offset_h`` is the local clock offset (DATE-LOC = UTC + offset)."""

    name: str = "Backyard Observatory"
    latitude_deg: float = 48.137
    longitude_deg: float = 11.575
    elevation_m: float = 520.0
    utc_offset_h: float = 1.0


@dataclass(frozen=True)
class Block:
    """A run of ``count`` frames of one kind and exposure, taken back to back.

    ``set_temp_c`` overrides the session set-point for this block (darks at several
    temperatures); the sequence then waits ``settle_s`` (default 300 s) for the cooler. A
    ``gap_before_s`` leaves the camera idle first (e.g. darks at the end of the night).
    ``interval_s`` is the dead time between frames (download, dither); ``None`` picks a
    realistic default per kind. ``xbin`` is the binning of every frame of the block.
    """

    kind: str
    exptime_s: float
    count: int
    set_temp_c: float | None = None
    target: str | None = None
    filter: str | None = None
    gap_before_s: float = 0.0
    settle_s: float | None = None
    interval_s: float | None = None
    xbin: int = 1

    def __post_init__(self) -> None:
        if self.kind not in FRAME_KINDS:
            raise ConfigError(f"block kind must be one of {FRAME_KINDS}, got {self.kind!r}")
        if self.count < 0 or self.exptime_s < 0:
            raise ConfigError("block count and exptime_s must be >= 0")
        if self.xbin not in (1, 2, 3, 4):
            raise ConfigError(f"block xbin must be 1-4, got {self.xbin}")


@dataclass(frozen=True)
class BrokenFrame:
    """Break frame ``index`` (0-based) of block ``block`` of a session in the given way."""

    block: int
    index: int
    breakage: Breakage


@dataclass(frozen=True)
class FramePlan:
    """Everything decided about one frame before its pixels are drawn.

    Times: ``start_utc`` is the true exposure start; ``t_session_s`` the same, in seconds since
    the session start. Temperatures: ``true_temp_c`` is the mean sensor temperature over the
    exposure (what the physics uses), ``measured_temp_c`` the reading at exposure start
    rounded like the camera reports it (``None`` for cameras without a sensor).
    """

    session: str
    camera: str
    program: Program
    block: int
    index: int
    number: int  # 1-based counter of this kind in the session (file numbering)
    kind: str
    exptime_s: float
    start_utc: datetime
    t_session_s: float
    true_temp_c: float
    measured_temp_c: float | None
    set_temp_c: float | None
    ambient_c: float
    target: str | None
    filter: str | None
    xbin: int
    progress: float  # position in its block, 0..1 (sky gradient)
    gain_setting: float | None
    offset_setting: float | None
    breakage: Breakage | None = None
    calibrated: bool = False
    faults: tuple[str, ...] = ()
    relpath: str = ""
    seed_key: tuple[int, ...] = ()

    def replace(self, **changes: Any) -> FramePlan:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


class Fault:
    """Base class of per-frame fault injections (the ``faults=`` hook of a session).

    Subclasses override any of the three hooks; each is called for every frame for which
    :meth:`applies` is true, in this order: :meth:`plan` (change what is decided before
    exposure: temperature, gain, exposure time...), :meth:`electrons` (add signal, e.g. a light
    leak) and :meth:`header` (alter the written header). Applied faults are listed by ``code``
    in the ``faults`` column of ``frames.csv``.
    """

    code: str = "fault"

    def applies(self, frame: FramePlan) -> bool:
        """Whether the fault acts on this frame (default: every frame)."""
        return True

    def plan(self, frame: FramePlan) -> FramePlan:
        """The frame's plan changed before exposure (default: unchanged)."""
        return frame

    def electrons(
        self, frame: FramePlan, shape: tuple[int, int], rng: np.random.Generator
    ) -> np.ndarray | None:
        """Extra expected electrons (noiseless; shot noise is added by the exposure)."""
        return None

    def header(self, header: Any, frame: FramePlan) -> Any:
        """The written header changed (default: unchanged)."""
        return header

    def to_dict(self) -> dict[str, Any]:
        """The fault's code, class and parameters as JSON values."""
        out = {"code": self.code, "class": type(self).__name__}
        if dataclasses.is_dataclass(self):
            out.update(dataclasses.asdict(self))
        return out


@dataclass(frozen=True)
class TemperatureOffset(Fault):
    """Frames of ``kinds`` taken ``delta_c`` warmer than the cooler trace says.

    With ``recorded=True`` the header shows the warmer reading (darks taken on a warm
    afternoon); with ``False`` only the truth knows (a lying sensor).
    """

    delta_c: float = 8.0
    kinds: tuple[str, ...] = ("dark",)
    recorded: bool = True
    code: str = "temperature_offset"

    def applies(self, frame: FramePlan) -> bool:
        """Whether the frame is of one of the faulted kinds."""
        return frame.kind in self.kinds

    def plan(self, frame: FramePlan) -> FramePlan:
        """The frame taken ``delta_c`` warmer; the header reading too when the fault is recorded."""
        measured = frame.measured_temp_c
        if self.recorded and measured is not None:
            measured = round(measured + self.delta_c, 6)
        return frame.replace(true_temp_c=frame.true_temp_c + self.delta_c, measured_temp_c=measured)


@dataclass(frozen=True)
class TemperatureReadout(Fault):
    """A sensor-temperature reading for a camera without a cooler.

    Uncooled astro cameras (uncooled ZWO models, for example) report a sensor temperature but
    the simulator writes one only for cooled cameras. With this hook, every frame of ``kinds``
    that has no reading gets the true (exposure-mean) temperature plus Gaussian noise of
    ``noise_c``, rounded to ``resolution_c``; the noise is seeded by the frame, so it is
    deterministic.
    """

    resolution_c: float = 0.5
    noise_c: float = 0.3
    kinds: tuple[str, ...] = ("light", "dark", "bias", "flat")
    code: str = "temperature_readout"

    def applies(self, frame: FramePlan) -> bool:
        """Whether the frame is of one of the kinds and has no reading yet."""
        return frame.kind in self.kinds and frame.measured_temp_c is None

    def plan(self, frame: FramePlan) -> FramePlan:
        """A noisy, quantised reading of the sensor's true temperature (seeded per frame)."""
        rng = np.random.default_rng(np.random.SeedSequence([*frame.seed_key, 0x7E6D]))
        value = frame.true_temp_c + rng.normal(0.0, self.noise_c)
        step = self.resolution_c if self.resolution_c > 0 else 1e-6
        return frame.replace(measured_temp_c=round(round(value / step) * step, 6))


@dataclass(frozen=True)
class LightLeak(Fault):
    """Stray light reaching the sensor in frames of ``kinds`` (a leaky cap or filter wheel)."""

    e_per_s: float = 0.5
    kinds: tuple[str, ...] = ("dark",)
    code: str = "light_leak"

    def applies(self, frame: FramePlan) -> bool:
        """Whether the frame is of one of the faulted kinds."""
        return frame.kind in self.kinds

    def electrons(
        self, frame: FramePlan, shape: tuple[int, int], rng: np.random.Generator
    ) -> np.ndarray | None:
        """The stray light's expected electrons: ``e_per_s`` times the exposure, across a left-to-right
        ramp (0.5 to 1.5)."""
        ny, nx = shape
        ramp = np.linspace(0.5, 1.5, nx)[None, :] * np.ones((ny, 1))
        return self.e_per_s * frame.exptime_s * ramp


@dataclass(frozen=True)
class SessionSpec:
    """One camera, one capture program, one sequence of blocks on one night."""

    name: str
    camera: str
    program: Program
    blocks: tuple[Block, ...]
    start_h: float = 19.0  # local clock hours after midnight starting the night date (>24 ok)
    set_temp_c: float | None = -10.0  # None: cooler off / uncooled
    ambient: AmbientSpec = field(default_factory=AmbientSpec)
    site: Site | None = None  # None: the night's site
    target: str = "M 31"
    target_ra_deg: float = 10.6847
    target_dec_deg: float = 41.2690
    filter: str | None = None
    telescope: str = "Esprit 100ED"
    focal_length_mm: float = 550.0
    aperture_mm: float = 100.0
    sky: SkySpec = field(default_factory=SkySpec)
    cooldown_s: float = 600.0  # cooler on this long before the first frame
    cooler_drift_c_per_h: float = 0.0
    broken: tuple[BrokenFrame, ...] = ()
    calibrated_lights: tuple[tuple[int, int], ...] = ()  # (block, index) saved as calibrated
    quirks: tuple[str, ...] = ()  # style quirks, e.g. "exptime_string" (see styles.py)
    program_version: str | None = None
    faults: tuple[Fault, ...] = ()

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "program", Program(self.program))
        except ValueError as err:
            known = ", ".join(p.value for p in Program)
            raise ConfigError(
                f"session {self.name}: unknown program {self.program!r}; known: {known}"
            ) from err
        object.__setattr__(self, "blocks", tuple(self.blocks))
        for b in self.broken:
            if not (0 <= b.block < len(self.blocks) and 0 <= b.index < self.blocks[b.block].count):
                raise ConfigError(f"session {self.name}: broken frame {b} does not exist")
        for bi, fi in self.calibrated_lights:
            if not (0 <= bi < len(self.blocks) and 0 <= fi < self.blocks[bi].count):
                raise ConfigError(f"session {self.name}: calibrated light {(bi, fi)} missing")
            if self.blocks[bi].kind != "light":
                raise ConfigError(f"session {self.name}: only lights can be pre-calibrated")

    def replace(self, **changes: Any) -> SessionSpec:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    @property
    def n_frames(self) -> int:
        """The number of frames of the session."""
        return sum(b.count for b in self.blocks)


@dataclass(frozen=True)
class NightSpec:
    """A whole simulated night: cameras, sessions and what truth to write."""

    name: str
    date: str  # local date of the evening the night starts, YYYY-MM-DD
    cameras: Mapping[str, SensorModel]
    sessions: tuple[SessionSpec, ...]
    site: Site = field(default_factory=Site)
    write_sky_truth: bool = True
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "sessions", tuple(self.sessions))
        object.__setattr__(self, "cameras", dict(self.cameras))
        try:
            datetime.strptime(self.date, "%Y-%m-%d")
        except (TypeError, ValueError) as err:
            raise ConfigError(f"night date must be YYYY-MM-DD, got {self.date!r}") from err
        names = [s.name for s in self.sessions]
        if len(set(names)) != len(names):
            raise ConfigError(f"session names must be unique, got {names}")
        for s in self.sessions:
            if s.camera not in self.cameras:
                raise ConfigError(
                    f"session {s.name} uses camera {s.camera!r}, not among {sorted(self.cameras)}"
                )

    def replace(self, **changes: Any) -> NightSpec:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def with_shape(self, ny: int, nx: int) -> NightSpec:
        """The same night with every camera resized to ``(ny, nx)``."""
        cams = {k: m.replace(ny=int(ny), nx=int(nx)) for k, m in self.cameras.items()}
        return self.replace(cameras=cams)

    @property
    def n_frames(self) -> int:
        """The number of frames of the night."""
        return sum(s.n_frames for s in self.sessions)

    def to_dict(self) -> dict[str, Any]:
        """The full spec as JSON-friendly data (written to ``_truth/manifest.json``)."""
        return _jsonable(self)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, SensorModel):
        return obj.to_dict()
    if isinstance(obj, Fault):
        return obj.to_dict()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: _jsonable(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if not omitted(f, getattr(obj, f.name))
        }
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, StrEnum):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
