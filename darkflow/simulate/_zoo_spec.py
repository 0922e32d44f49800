"""Zoo nights as simulator specs: the parameters of a zoo night and the sessions they make.

:class:`ZooParams` (drawn by :func:`darkflow.simulate.zoo.zoo_params` or fixed by a scenario)
says everything about a zoo night; :func:`zoo_specs` turns it into one
:class:`~darkflow.simulate.NightSpec` per night of the tree, with the fault injected into the
right frames.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from darkflow.exceptions import ConfigError
from darkflow.simulate._zoo_truth import DARK_FAULTS
from darkflow.simulate.faults import (
    BiasDrift,
    CosmicRayShower,
    EgainKeyword,
    ReadoutModeChange,
    WrongGain,
)
from darkflow.simulate.night import sensor_truth
from darkflow.simulate.sensors import SensorKind, SensorModel
from darkflow.simulate.sky import SkySpec
from darkflow.simulate.spec import (
    Block,
    Fault,
    LightLeak,
    NightSpec,
    Program,
    SessionSpec,
    TemperatureOffset,
)
from darkflow.simulate.thermal import AmbientSpec

__all__ = ["ZooNightDesign", "ZooParams", "cosmic_rate", "zoo_specs"]

_ZWO_BIAS_S = 0.000032


@dataclass(frozen=True)
class ZooNightDesign:
    """One night of a zoo tree: what is taken, in exposure seconds and frame counts."""

    date: str
    light_exposures: tuple[float, ...]
    dark_exposures: tuple[float, ...]
    n_bias: int
    bias_offset_adu: float = 0.0  # the camera's bias level this night, relative to night 1
    darks_first: bool = False  # darks at dusk instead of after the lights
    ambient_c: tuple[float, float] = (8.0, 2.0)  # air at 17 h local, and late in the night


@dataclass(frozen=True)
class ZooParams:
    """Everything that defines a zoo night; :func:`zoo_params` draws them, scenarios fix them."""

    family: str
    seed: int
    camera_key: str
    camera: SensorModel
    program: str
    scene: str  # stars | nebula | spectra
    sky: SkySpec
    egain: str  # present | absent | wrong
    set_temp_c: float | None
    n_darks: int
    n_lights: int
    nights: tuple[ZooNightDesign, ...]
    egain_factor: float = 1.0  # header EGAIN / true e-/ADU when egain == "wrong"
    fault: str | None = None
    fault_night: int = 0
    fault_exposure: float | None = None
    fault_magnitude: float = 0.0
    target: str = "M 31"
    filter: str | None = None
    grid: str = "exact"  # exact | bracket | mixed | scaled: how dark and light exposures relate
    description: str = ""

    @property
    def name(self) -> str:
        """A folder-friendly name: ``<family>-<seed>``."""
        return f"{self.family}-{self.seed}"

    @property
    def clean(self) -> bool:
        return self.fault is None

    @property
    def shape(self) -> tuple[int, int]:
        return self.camera.shape

    def replace(self, **changes: Any) -> ZooParams:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        from darkflow.simulate.spec import _jsonable

        out = {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}
        out["camera"] = self.camera.to_dict()
        return out


def cosmic_rate(rate_at_3_76um: float, pixel_size_um: float) -> float:
    """Cosmic-ray rate (/cm²/s) giving every camera the hits per pixel of a 3.76 µm sensor.

    The simulator's default (5 /cm²/s, ~300x sea level so small frames show hits) would bury a
    24 µm-pixel CCD's 900 s dark under hits on 5 % of its pixels; scaled by the pixel area a
    clean zoo night keeps a few hits per thousand pixels, as real long darks do.
    """
    return rate_at_3_76um * (3.76 / pixel_size_um) ** 2


def _fault_object(params: ZooParams, spec: NightSpec, seed: int) -> Fault:
    kind, mag, cam = params.fault, params.fault_magnitude, params.camera
    recorded = bool(kind and kind.endswith("_recorded"))
    if kind in ("wrong_gain", "wrong_gain_recorded"):
        truth = sensor_truth(spec, seed, params.camera_key)
        return WrongGain(mag, recorded=recorded, truth=truth)
    if kind in ("warm_darks", "warm_darks_recorded"):
        return TemperatureOffset(mag, recorded=recorded)
    if kind == "light_leak":
        return LightLeak(e_per_s=max(mag, 10.0 / float(params.fault_exposure or 1.0)))
    if kind == "cosmic_rays":
        rate = cosmic_rate(mag, cam.pixel_size_um)  # 12-300x the camera's own hits
        return CosmicRayShower(rate, pixel_size_um=cam.pixel_size_um)
    if kind == "bias_drift":
        return BiasDrift(max(abs(mag), 2.0 * cam.adc_step_adu) * math.copysign(1.0, mag))
    if kind == "readout_mode":
        return ReadoutModeChange(bias_offset_adu=max(mag, 2.0 * cam.adc_step_adu))
    if kind == "bias_jump":
        return BiasDrift(max(mag, 2.0 * cam.adc_step_adu), kinds=("bias",))
    raise ConfigError(f"no dark/bias fault object for {kind!r}")


def _bias_s(model: SensorModel) -> float:
    if model.kind is SensorKind.DSLR:
        return model.bias_exptime_s
    return 0.0 if model.kind is SensorKind.CCD else _ZWO_BIAS_S


def _hours(blocks: tuple[Block, ...]) -> float:
    return sum(b.count * (b.exptime_s + 12.0) for b in blocks) / 3600.0 + 0.1


def _session(
    params: ZooParams, k: int, name: str, start_h: float, blocks, faults: tuple[Fault, ...]
) -> SessionSpec:
    air0, air1 = params.nights[k].ambient_c
    # the night's air at this session's start: falling from air0 at 17 h local towards air1
    t0 = air1 + (air0 - air1) * math.exp(-max(start_h - 17.0, 0.0) / 4.0)
    return SessionSpec(
        name=f"n{k + 1}_{name}",
        camera=params.camera_key,
        program=Program(params.program),
        blocks=tuple(blocks),
        start_h=start_h,
        set_temp_c=params.set_temp_c,
        ambient=AmbientSpec(start_c=t0, end_c=air1, tau_h=4.0, wobble_c=0.2),
        target=params.target,
        filter=params.filter,
        sky=params.sky,
        cooldown_s=1800.0,
        faults=faults,
    )


def _night_spec(params: ZooParams, k: int, with_faults: bool) -> NightSpec:
    night = params.nights[k]
    model = params.camera.replace(bias_adu=params.camera.bias_adu + night.bias_offset_adu)
    cameras = {params.camera_key: model}
    here = params.fault is not None and params.fault_night == k
    dark_fault = here and params.fault in DARK_FAULTS
    jump = here and params.fault == "bias_jump"  # the same sessions with or without the fault
    common: tuple[Fault, ...] = ()
    if params.egain == "absent":
        common = (EgainKeyword(None),)
    elif params.egain == "wrong" and with_faults:
        common = (EgainKeyword(params.egain_factor),)
    injected: tuple[Fault, ...] = ()
    if with_faults and (dark_fault or jump):
        probe = NightSpec(name="probe", date=night.date, cameras=cameras, sessions=())
        injected = (_fault_object(params, probe, params.seed),)
    lights = tuple(
        Block("light", t, params.n_lights, filter=params.filter) for t in night.light_exposures
    )
    n_first = night.n_bias - night.n_bias // 2 if jump else night.n_bias
    calib = [Block("bias", _bias_s(model), n_first)] if n_first else []
    calib += [
        Block("dark", t, params.n_darks)
        for t in night.dark_exposures
        if not (dark_fault and t == params.fault_exposure)
    ]
    faulty = (Block("dark", float(params.fault_exposure), params.n_darks),) if dark_fault else ()
    second = (Block("bias", _bias_s(model), night.n_bias // 2),) if jump else ()
    t_lights = 20.0
    t = t_lights + _hours(lights) + 0.2
    if night.darks_first:  # at dusk, if the sequence fits after noon
        t = max(t_lights - _hours(tuple(calib)) - _hours(faulty) - _hours(second) - 0.5, 0.0)
        t = t if t >= 12.5 else t_lights + _hours(lights) + 0.2
    sessions = [_session(params, k, "lights", t_lights, lights, common)]
    for name, blocks, faults in (
        ("calib", tuple(calib), common),
        ("faulty", faulty, common + injected),
        ("bias_b", second, common + injected),
    ):
        if blocks and any(b.count for b in blocks):
            sessions.append(_session(params, k, name, t, blocks, faults))
            t += _hours(blocks) + 0.05
    return NightSpec(
        name=f"zoo-{params.name}-n{k + 1}",
        date=night.date,
        cameras=cameras,
        sessions=tuple(sessions),
        write_sky_truth=False,
        description=params.description,
    )


def zoo_specs(params: ZooParams, *, with_faults: bool = True) -> tuple[NightSpec, ...]:
    """The :class:`NightSpec` of every night of the tree (with or without the injected fault).

    Sessions of night ``k``: ``n<k>_lights`` (one block per light exposure); ``n<k>_calib``
    (biases, darks); ``n<k>_faulty`` (the dark exposure that receives a dark fault);
    ``n<k>_bias_b`` (the second half of a bias set with a level jump). Calibration runs after
    the lights (or at dusk with ``darks_first``). Without faults the frames are the same files
    except for the fault's effect (noise is keyed by session, block and index).
    """
    return tuple(_night_spec(params, k, with_faults) for k in range(len(params.nights)))
