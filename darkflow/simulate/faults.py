"""Calibration faults for the simulated observatory, and the fault-benchmark nights.

The simulator's ``faults=`` hook (:class:`~darkflow.simulate.spec.Fault`) changes a frame's
plan, adds electrons before the shot noise, or edits the header. This module adds the faults of
the verification benchmark (``benchmarks/bench_faults.py``):

===========================  ==========================================================
:class:`WrongGain`           frames taken at another gain setting (e-/ADU, read noise)
:class:`CosmicRayShower`     extra cosmic-ray hits (heavy contamination)
:class:`BiasDrift`           the bias level of some frames shifted by a constant (ADU)
:class:`ReadoutModeChange`   another readout mode: bias level, column pattern, read noise
:class:`EgainKeyword`        the header's e-/ADU (``EGAIN``) removed or wrong (all frames)
``TemperatureOffset``        (spec) frames taken warmer than the cooler trace says
``LightLeak``                (spec) stray light on the sensor
===========================  ==========================================================

and :func:`fault_night` / :func:`library_night`: a small night of one camera with a dark set,
a session bias and lights, with one fault injected into the darks, plus the "dark library"
of the previous night (same sensor, other noise) that serves as the previous verified master.

Pixel-level faults
------------------
:class:`BiasDrift` and :class:`ReadoutModeChange` act on the digitised frame (a pure ADU
offset has no shot noise, so it cannot be expressed as extra electrons). They are
:class:`AduFault` s, planned by :func:`plan_faulted` and applied by :func:`render_faulted`
and :func:`simulate_faulted_night` (which otherwise render exactly like
:func:`~darkflow.simulate.simulate_night`). ``plan_night``/``simulate_night`` have no ADU hook
yet: given an ``AduFault`` they raise :class:`~darkflow.exceptions.ConfigError` before anything
is written, instead of silently producing clean frames.

:class:`WrongGain` works through the electron hook and needs the camera's fixed maps
(``truth=sensor_truth(spec, seed, camera)``, which :func:`fault_night` fills in): the extra
electrons ``(k - 1) D`` plus zero-mean Gaussian noise make the mean and the variance of the
frame those of a frame read at ``k`` times the ADU per electron (``k = egain / egain'``), with
the read noise of the new gain. The mean is exact; the variance is exact where the dark signal
is large against the noise (hot pixels) and ~10% low where it is a few electrons (the simulator
draws Poisson noise of ``max(signal, 0)``, which clips the added noise). This needs
``k >= 1`` (darks at a higher gain than the lights); for ``k < 1`` the variance is too large.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from darkflow.exceptions import ConfigError
from darkflow.simulate.night import (
    NightManifest,
    NightPlan,
    RenderedFrame,
    SessionManifest,
    iter_rendered,
    keyed_rng,
    plan_night,
    sensor_truth,
    write_frame,
)
from darkflow.simulate.physics import SensorTruth
from darkflow.simulate.sensors import SENSOR_PRESETS, SensorModel
from darkflow.simulate.sky import SkySpec
from darkflow.simulate.spec import (
    Block,
    Fault,
    FramePlan,
    LightLeak,
    NightSpec,
    Program,
    SessionSpec,
    TemperatureOffset,
)
from darkflow.simulate.thermal import AmbientSpec
from darkflow.simulate.truth import TruthWriter

__all__ = [
    "FAULT_KINDS",
    "AduFault",
    "BiasDrift",
    "CosmicRayShower",
    "EgainKeyword",
    "ReadoutModeChange",
    "WrongGain",
    "fault_night",
    "library_night",
    "plan_faulted",
    "render_faulted",
    "simulate_faulted_night",
]

_ADU_PURPOSE = 101  # keyed random stream of the ADU hook (night.py uses 1..7)
_ALLOW_ADU = threading.local()


@contextlib.contextmanager
def _adu_planning() -> Iterator[None]:
    previous = getattr(_ALLOW_ADU, "on", False)
    _ALLOW_ADU.on = True
    try:
        yield
    finally:
        _ALLOW_ADU.on = previous


def _jsonable_fault(fault: Fault, skip: tuple[str, ...] = ("truth",)) -> dict[str, Any]:
    out: dict[str, Any] = {"code": fault.code, "class": type(fault).__name__}
    for f in dataclasses.fields(fault):  # type: ignore[arg-type]
        if f.name not in skip:
            value = getattr(fault, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def _requantise(values: np.ndarray, model: SensorModel, like: np.ndarray) -> np.ndarray:
    """Back to the camera's ADC steps and range, in the dtype of ``like``."""
    if like.dtype.kind == "f":  # a float frame (nan_data breakage) stays float
        return values.astype(like.dtype)
    step = model.adc_step_adu
    codes = np.clip(np.rint(values / step), 0, 2**model.adc_bits - 1)
    return (codes * step).astype(like.dtype)


# ----------------------------------------------------------------------------- faults
@dataclass(frozen=True)
class WrongGain(Fault):
    """Frames of ``kinds`` read out at ``gain_setting`` instead of the camera's setting.

    ``recorded=False`` (default) is the dangerous case: the header still shows the camera's
    gain and EGAIN, so nothing in the metadata tells the frames apart. With ``recorded=True``
    GAIN and EGAIN show the real values (the configuration signature then differs).
    ``truth`` must hold the camera's fixed maps for the night's seed.
    """

    gain_setting: float = 200.0
    kinds: tuple[str, ...] = ("dark",)
    recorded: bool = False
    truth: SensorTruth | None = field(default=None, compare=False, repr=False)
    code: str = "wrong_gain"

    def applies(self, frame: FramePlan) -> bool:
        """Whether the frame is of one of the faulted kinds."""
        return frame.kind in self.kinds

    def _models(self) -> tuple[SensorModel, SensorModel]:
        if self.truth is None:
            raise ConfigError(
                "WrongGain needs the camera's fixed maps: WrongGain(truth=sensor_truth(spec, "
                "seed, camera)) (fault_night does this)"
            )
        model = self.truth.model
        return model, model.at_gain(self.gain_setting)

    def plan(self, frame: FramePlan) -> FramePlan:
        """Record the wrong gain setting in the frame's plan when the header shows it."""
        self._models()  # fail at planning time, not in the middle of writing
        return frame.replace(gain_setting=self.gain_setting) if self.recorded else frame

    @property
    def adu_factor(self) -> float:
        """``k``: ADU per electron at the wrong gain over ADU per electron at the right one."""
        model, other = self._models()
        return model.egain_e_per_adu / other.egain_e_per_adu

    def electrons(
        self, frame: FramePlan, shape: tuple[int, int], rng: np.random.Generator
    ) -> np.ndarray | None:
        """The extra electrons, and the extra noise, that make the frame read as the other gain would
        digitise it."""
        model, other = self._models()
        if shape != self.truth.shape:  # type: ignore[union-attr]
            raise ConfigError(f"WrongGain truth has shape {self.truth.shape}, frame {shape}")  # type: ignore[union-attr]
        k = self.adu_factor
        dark = self.truth.dark_electrons(frame.exptime_s, frame.true_temp_c)  # type: ignore[union-attr]
        extra = (k - 1.0) * dark
        # variance wanted (in electrons at the recorded gain): k^2 (D + r'^2); Poisson gives
        # k D and the exposure adds r^2: the rest is zero-mean Gaussian noise
        missing = (k * k - k) * dark + (k * other.read_noise_e) ** 2 - model.read_noise_e**2
        missing = np.maximum(missing, 0.0)
        if np.any(missing > 0):
            extra = extra + rng.standard_normal(shape) * np.sqrt(missing)
        return extra

    def header(self, header: Any, frame: FramePlan) -> Any:
        """Write the other gain's e-/ADU in the header when the fault is recorded."""
        if self.recorded and "EGAIN" in header:
            _, other = self._models()
            header["EGAIN"] = (round(other.egain_e_per_adu, 6), "[e-/ADU] Electrons per A/D unit")
        return header

    def to_dict(self) -> dict[str, Any]:
        """The fault's parameters as JSON values (``frames.csv`` and the truth files)."""
        return _jsonable_fault(self)


@dataclass(frozen=True)
class CosmicRayShower(Fault):
    """Extra cosmic-ray hits on frames of ``kinds`` (``rate_per_cm2_s`` on top of the camera's).

    Hits are single-pixel blobs with a 4-neighbour halo or 2-6 pixel straight tracks of
    300 e- to tens of ke- per pixel, like the camera's own cosmics. ``pixel_size_um`` sets the
    sensor area (the camera's pixel size by default in :func:`fault_night`).
    """

    rate_per_cm2_s: float = 100.0
    pixel_size_um: float = 3.76
    kinds: tuple[str, ...] = ("dark",)
    code: str = "cosmic_ray_shower"

    def applies(self, frame: FramePlan) -> bool:
        """Whether the frame is of one of the faulted kinds."""
        return frame.kind in self.kinds

    def electrons(
        self, frame: FramePlan, shape: tuple[int, int], rng: np.random.Generator
    ) -> np.ndarray | None:
        """The expected electrons of the extra hits (seeded by ``rng``)."""
        ny, nx = shape
        area = ny * nx * (self.pixel_size_um * 1e-4) ** 2
        n_hits = int(rng.poisson(self.rate_per_cm2_s * area * (frame.exptime_s + 2.0)))
        if n_hits == 0:
            return None
        out = np.zeros(shape)
        y0 = rng.uniform(0, ny, n_hits)
        x0 = rng.uniform(0, nx, n_hits)
        lengths = rng.integers(1, 7, n_hits)
        angles = rng.uniform(0, np.pi, n_hits)
        for y, x, length, angle in zip(y0, x0, lengths, angles, strict=True):
            energy = np.maximum(rng.lognormal(np.log(2500.0), 0.6, length), 300.0)
            if length == 1:
                yc, xc = int(y), int(x)
                ys = np.array([yc, yc - 1, yc + 1, yc, yc])
                xs = np.array([xc, xc, xc, xc - 1, xc + 1])
                es = np.concatenate(
                    [energy, np.maximum(energy[0] * rng.uniform(0.08, 0.3, 4), 150)]
                )
            else:
                steps = np.arange(length)
                ys = (y + steps * np.sin(angle)).astype(int)
                xs = (x + steps * np.cos(angle)).astype(int)
                es = energy
            inside = (ys >= 0) & (ys < ny) & (xs >= 0) & (xs < nx)
            np.add.at(out, (ys[inside], xs[inside]), es[inside])
        return out


@dataclass(frozen=True)
class EgainKeyword(Fault):
    """The e-/ADU keywords of frames of ``kinds`` removed (``factor=None``) or scaled by ``factor``.

    Many drivers write no ``EGAIN`` (ASIAIR, INDI); a wrong one comes from a copied header
    template or a driver reporting the value of another gain. SharpCap's ``EGAIN`` (ADC depth)
    and ``EGAINSAV`` (saved depth) are changed together; the pixels are not touched.
    """

    factor: float | None = None
    kinds: tuple[str, ...] = ("light", "dark", "bias", "flat")
    code: str = "egain_keyword"

    def applies(self, frame: FramePlan) -> bool:
        """Whether the frame is of one of the faulted kinds."""
        return frame.kind in self.kinds

    def header(self, header: Any, frame: FramePlan) -> Any:
        """Remove or scale the e-/ADU keywords of the header."""
        for key in ("EGAIN", "EGAINSAV"):
            if key not in header:
                continue
            if self.factor is None:
                del header[key]
            else:
                value = float(header[key]) * self.factor
                header[key] = (float(f"{value:.6g}"), header.comments[key])
        return header


class AduFault(Fault):
    """A fault acting on the digitised frame (ADU), after the exposure.

    Subclasses implement :meth:`adu` (and call ``super().plan(frame)`` if they override
    :meth:`plan`). Planned by :func:`plan_faulted` and applied by :func:`render_faulted` and
    :func:`simulate_faulted_night`; ``plan_night``/``simulate_night`` refuse them, before
    anything is written (see the module docstring).
    """

    def plan(self, frame: FramePlan) -> FramePlan:
        """Refuse a night rendered without ADU faults enabled (see the error's message), else leave the
        plan as it is."""
        if not getattr(_ALLOW_ADU, "on", False):
            raise ConfigError(
                f"{type(self).__name__} acts on ADU values: plan and render the night with "
                "darkflow.simulate.faults (plan_faulted + render_faulted, or "
                "simulate_faulted_night); simulate_night has no ADU hook"
            )
        return frame

    def adu(
        self, frame: FramePlan, data: np.ndarray, truth: SensorTruth, rng: np.random.Generator
    ) -> np.ndarray:
        """Return the faulted frame (same shape and dtype); ``data`` is never modified."""
        return data

    def to_dict(self) -> dict[str, Any]:
        """The fault's parameters as JSON values (``frames.csv`` and the truth files)."""
        return _jsonable_fault(self)


@dataclass(frozen=True)
class BiasDrift(AduFault):
    """The bias level of frames of ``kinds`` is ``delta_adu`` higher (negative: lower).

    A pure offset of the read-out electronics: no shot noise, the same for every pixel.
    """

    delta_adu: float = 12.0
    kinds: tuple[str, ...] = ("dark",)
    code: str = "bias_drift"

    def applies(self, frame: FramePlan) -> bool:
        """Whether the frame is of one of the faulted kinds."""
        return frame.kind in self.kinds

    def adu(
        self, frame: FramePlan, data: np.ndarray, truth: SensorTruth, rng: np.random.Generator
    ) -> np.ndarray:
        """The digitised frame ``delta_adu`` higher, requantised to the camera's ADU steps."""
        return _requantise(data.astype(np.float64) + self.delta_adu, truth.model, data)


@dataclass(frozen=True)
class ReadoutModeChange(AduFault):
    """Frames of ``kinds`` read out in another readout mode.

    The other mode has its own bias level (``bias_offset_adu`` higher), its own fixed column
    pattern (an extra Gaussian column offset of rms ``column_pattern_adu``, fixed by
    ``pattern_seed`` for every frame) and ``read_noise_factor`` times the read noise. With
    ``recorded=True`` the header's READOUTM names ``mode`` (the configuration signature then
    differs); by default the header does not say (many programs never write READOUTM).
    """

    mode: str = "High Gain Mode"
    bias_offset_adu: float = 30.0
    column_pattern_adu: float = 3.0
    read_noise_factor: float = 1.4
    pattern_seed: int = 7
    kinds: tuple[str, ...] = ("dark",)
    recorded: bool = False
    code: str = "readout_mode_change"

    def applies(self, frame: FramePlan) -> bool:
        """Whether the frame is of one of the faulted kinds."""
        return frame.kind in self.kinds

    def adu(
        self, frame: FramePlan, data: np.ndarray, truth: SensorTruth, rng: np.random.Generator
    ) -> np.ndarray:
        """The digitised frame with the other mode's bias level and column pattern."""
        model = truth.model
        nx = data.shape[1]
        columns = np.random.default_rng(self.pattern_seed).normal(
            0.0, self.column_pattern_adu, model.nx
        )[:nx]
        read_adu = model.read_noise_e / model.egain_e_per_adu
        extra_sigma = read_adu * math.sqrt(max(self.read_noise_factor**2 - 1.0, 0.0))
        out = data.astype(np.float64) + self.bias_offset_adu + columns[None, :]
        if extra_sigma > 0:
            out = out + rng.normal(0.0, extra_sigma, data.shape)
        return _requantise(out, model, data)

    def header(self, header: Any, frame: FramePlan) -> Any:
        """Write the other readout mode in the header when the fault is recorded."""
        if self.recorded:
            header["READOUTM"] = (self.mode, "Sensor readout mode")
        return header


# ----------------------------------------------------------------------------- rendering
def _apply_adu(plan: NightPlan, rendered: RenderedFrame, truth: SensorTruth) -> RenderedFrame:
    frame = rendered.plan
    session = plan.session(frame.session)
    data = rendered.data
    for fault in session.faults:
        if isinstance(fault, AduFault) and fault.code in frame.faults:
            rng = keyed_rng(plan.seed, _ADU_PURPOSE, frame.session, frame.block, frame.index)
            data = fault.adu(frame, data, truth, rng)
    if data is rendered.data:
        return rendered
    return dataclasses.replace(rendered, data=data)


def plan_faulted(spec: NightSpec, seed: int = 0) -> NightPlan:
    """:func:`~darkflow.simulate.plan_night` that accepts :class:`AduFault` s."""
    with _adu_planning():
        return plan_night(spec, seed)


def render_faulted(
    plan: NightPlan, frames: Iterable[FramePlan] | None = None
) -> Iterator[RenderedFrame]:
    """Like :func:`~darkflow.simulate.iter_rendered`, with :class:`AduFault` s applied.

    ``plan`` comes from :func:`plan_faulted` (or ``plan_night`` when the spec has no
    :class:`AduFault`).
    """
    frames = list(plan.frames if frames is None else frames)
    truths = {key: sensor_truth(plan.spec, plan.seed, key) for key in {f.camera for f in frames}}
    for rendered in iter_rendered(plan, frames):
        yield _apply_adu(plan, rendered, truths[rendered.plan.camera])


def simulate_faulted_night(
    out_dir: str | Path, spec: NightSpec, seed: int = 0, *, fsync: bool = False
) -> NightManifest:
    """Write a night (frames and truth) like ``simulate_night``, with ADU faults applied.

    ``out_dir`` must be missing or empty. Without :class:`AduFault` s the files are byte for byte
    those of ``simulate_night(out_dir, spec, seed)``.

    Raises
    ------
    ConfigError
        ``out_dir`` is not empty or the spec is invalid.
    OutputError
        A file cannot be written.
    """
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} must be a missing or empty directory")
    plan = plan_faulted(spec, seed)
    folders = [f"{spec.date}/{s.name}" for s in spec.sessions]
    writer = TruthWriter(out, spec, spec.name, int(seed), folders, fsync=fsync)
    writer.start()
    paths = []
    for rendered in render_faulted(plan):
        path = out / rendered.plan.relpath
        write_frame(path, rendered, fsync=fsync)
        writer.add_frame(rendered)
        paths.append(path)
    writer.finish({key: sensor_truth(spec, seed, key) for key in {s.camera for s in spec.sessions}})
    sessions = []
    for s in spec.sessions:
        own = [f for f in plan.frames if f.session == s.name]
        sessions.append(
            SessionManifest(
                name=s.name,
                camera=s.camera,
                program=str(s.program),
                folder=f"{spec.date}/{s.name}",
                n_files=len(own),
                first_utc=min((f.start_utc for f in own), default=None),
                last_utc=max((f.start_utc for f in own), default=None),
            )
        )
    return NightManifest(
        out_dir=out,
        preset=spec.name,
        seed=int(seed),
        night_date=spec.date,
        sessions=tuple(sessions),
        paths=tuple(paths),
        truth_dir=out / "_truth",
        spec=spec,
    )


# ----------------------------------------------------------------------------- scenarios
FAULT_KINDS = (
    "clean",
    "wrong_gain",
    "wrong_gain_recorded",
    "warm_darks",
    "warm_darks_recorded",
    "light_leak",
    "cosmic_rays",
    "too_few_darks",
    "bias_drift",
    "readout_mode",
)
"""Scenarios of :func:`fault_night` (``*_recorded``: the header tells the truth)."""

CAMERA = "zwo-asi2600mm-pro"
_AMBIENT = AmbientSpec(start_c=6.0, end_c=2.0, tau_h=4.0, wobble_c=0.2)
_SKY_BROAD = SkySpec(background_e_per_s=1.2, nebula_e_per_s=0.6, star_density_per_mpx=1500.0)
_SKY_NARROW = SkySpec(
    background_e_per_s=0.05,
    nebula_e_per_s=0.3,
    star_density_per_mpx=1500.0,
    star_flux_max_e_per_s=3.0e4,
)
BIAS_S = 0.000032


def _session(name: str, start_h: float, blocks: tuple[Block, ...], **kw: Any) -> SessionSpec:
    return SessionSpec(
        name=name,
        camera=CAMERA,
        program=Program.NINA,
        start_h=start_h,
        set_temp_c=-10.0,
        ambient=_AMBIENT,
        blocks=blocks,
        target="M 31",
        **{"filter": "L", **kw},
    )


def _cameras(shape: tuple[int, int]) -> dict[str, SensorModel]:
    return {CAMERA: SENSOR_PRESETS[CAMERA].replace(ny=int(shape[0]), nx=int(shape[1]))}


def library_night(
    *, shape: tuple[int, int] = (300, 400), n_darks: int = 12, exptime_s: float = 300.0
) -> NightSpec:
    """The night before: a clean dark library (darks and biases) of the same camera.

    Simulate it with the same seed as :func:`fault_night` (same sensor maps); its session
    names differ, so its noise is independent.
    """
    calib = _session(
        "library", 17.0, (Block("bias", BIAS_S, 15), Block("dark", exptime_s, n_darks))
    )
    return NightSpec(
        name="fault-library",
        date="2026-11-22",
        cameras=_cameras(shape),
        sessions=(calib,),
        write_sky_truth=False,
        description="Dark library of the night before (clean).",
    )


def fault_night(
    kind: str,
    *,
    seed: int = 0,
    shape: tuple[int, int] = (300, 400),
    n_darks: int = 12,
    n_lights: int = 4,
    exptime_s: float = 300.0,
) -> NightSpec:
    """One camera, one night, one fault in the dark set (``kind`` from :data:`FAULT_KINDS`).

    Sessions: ``calib`` (15 biases, then ``n_darks`` darks of ``exptime_s`` at -10 °C; the
    fault is injected into these darks), ``lights_broad`` and ``lights_narrow`` (``n_lights``
    lights each, L under a 1.2 e-/s sky and Ha under a 0.05 e-/s sky, same exposure). The
    biases are taken with the lights' settings, so they are the reference a drifted or
    mis-configured dark set is compared with.

    Faults: ``wrong_gain`` darks at gain 200 instead of 100 (ADU per e- x3.16), header
    unchanged; ``warm_darks`` darks 8 °C warmer, header showing the set-point temperature;
    ``light_leak`` 0.2 e-/s of stray light (a ramp across the frame); ``cosmic_rays`` 100
    extra hits /cm²/s; ``too_few_darks`` 3 darks; ``bias_drift`` darks' bias +12 ADU;
    ``readout_mode`` darks in another readout mode (bias +30 ADU, new column pattern of
    3 ADU rms, read noise x1.4), header unchanged. ``*_recorded``: the header shows the real
    gain (EGAIN too) or temperature.
    """
    if kind not in FAULT_KINDS:
        raise ConfigError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
    cameras = _cameras(shape)
    darks = 3 if kind == "too_few_darks" else n_darks
    faults: tuple[Fault, ...] = ()
    if kind in ("wrong_gain", "wrong_gain_recorded"):
        base = NightSpec(name="probe", date="2026-11-23", cameras=cameras, sessions=())
        truth = sensor_truth(base, seed, CAMERA)
        faults = (WrongGain(200.0, recorded=kind.endswith("recorded"), truth=truth),)
    elif kind in ("warm_darks", "warm_darks_recorded"):
        faults = (TemperatureOffset(8.0, recorded=kind.endswith("recorded")),)
    elif kind == "light_leak":
        faults = (LightLeak(e_per_s=0.2),)
    elif kind == "cosmic_rays":
        faults = (CosmicRayShower(100.0, pixel_size_um=cameras[CAMERA].pixel_size_um),)
    elif kind == "bias_drift":
        faults = (BiasDrift(12.0),)
    elif kind == "readout_mode":
        faults = (ReadoutModeChange(),)
    calib = _session(
        "calib", 17.0, (Block("bias", BIAS_S, 15), Block("dark", exptime_s, darks)), faults=faults
    )
    broad = _session(
        "lights_broad", 19.0, (Block("light", exptime_s, n_lights, filter="L"),), sky=_SKY_BROAD
    )
    narrow = _session(
        "lights_narrow",
        19.0 + n_lights * (exptime_s + 10.0) / 3600.0 + 0.2,
        (Block("light", exptime_s, n_lights, filter="Ha"),),
        sky=_SKY_NARROW,
        filter="Ha",
    )
    return NightSpec(
        name=f"fault-{kind}",
        date="2026-11-23",
        cameras=cameras,
        sessions=(calib, broad, narrow),
        write_sky_truth=False,
        description=f"Fault benchmark night: {kind}.",
    )
