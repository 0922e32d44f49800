"""The camera zoo: randomized, seeded families of simulated nights with their expected verdicts.

Gates must be right on every camera, not on the demo night. The zoo draws nights from families
(:data:`FAMILIES`) whose cameras, programs, headers, exposure grids, scenes and faults vary at
random, deterministically from ``(family, seed)``, and writes beside the frames what a correct
pipeline should conclude (``zoo_truth.json``, see :func:`load_zoo_truth`)::

    from darkflow.simulate.zoo import zoo_night, sample_zoo
    night = zoo_night("out", family="colour_cmos", seed=7)   # frames + out/zoo_truth.json
    night.truth["lights"][0]["expected_status"]              # e.g. ["calibrated"]
    for params in sample_zoo(200, seed=0):                   # a benchmark's draw
        zoo_night(f"zoo/{params.name}", params=params)

Named scenarios (:data:`SCENARIOS`) reproduce the measurements of the colour-camera, unknown
gain, multi-night CCD and slit-spectra nights: ``zoo_night(out, family="ccd-three-nights")``.

Layout: ``OUT/night-<k>/`` is one simulated night (frames under ``<date>/<session>/`` and its
simulator truth under ``_truth/``, skipped by the scanner); several nights make one input tree.
``OUT/zoo_truth.json`` holds the expectations (a JSON file: never scanned as a frame).
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from darkflow.exceptions import ConfigError
from darkflow.io.atomic import atomic_write
from darkflow.simulate._zoo_spec import ZooNightDesign, ZooParams, cosmic_rate, zoo_specs
from darkflow.simulate._zoo_truth import DARK_FAULTS, TRUTH_FILE, build_truth, load_zoo_truth
from darkflow.simulate.faults import plan_faulted, simulate_faulted_night
from darkflow.simulate.night import NightManifest
from darkflow.simulate.sensors import SENSOR_PRESETS, SensorKind, SensorModel
from darkflow.simulate.sky import SkyColour, SkySpec, SpectrumSpec
from darkflow.triage import Cause

__all__ = [
    "BAYER_PATTERNS",
    "EXPECTED_CAUSE",
    "FAMILIES",
    "FAULTS",
    "SCENARIOS",
    "TRUTH_FILE",
    "ZooNight",
    "ZooNightDesign",
    "ZooParams",
    "load_zoo_truth",
    "sample_zoo",
    "zoo_night",
    "zoo_params",
    "zoo_specs",
]

FAMILIES = ("mono_cmos", "colour_cmos", "ccd", "dslr", "multi_night", "nebula", "spectra")
"""Randomized families: the camera family, or the structure of the night (several nights, a
nebula-filled field, slit spectra) with a camera drawn among the others."""

BAYER_PATTERNS = ("RGGB", "GRBG", "GBRG", "BGGR")

EXPECTED_CAUSE: dict[str, str] = {
    "wrong_gain": Cause.GAIN_MISMATCH.value,
    "wrong_gain_recorded": Cause.GAIN_MISMATCH.value,
    "warm_darks": Cause.THERMAL_MISMATCH.value,
    "warm_darks_recorded": Cause.THERMAL_MISMATCH.value,
    "light_leak": Cause.LIGHT_LEAK.value,
    "cosmic_rays": Cause.COSMIC_RAYS.value,
    "bias_drift": Cause.BIAS_DRIFT.value,
    "readout_mode": Cause.READOUT_MODE.value,
    "bias_jump": Cause.BIAS_DRIFT.value,
    "wrong_egain": Cause.NOISE_MODEL.value,
}
"""The triage cause that should come first for each injected fault."""

FAULTS = tuple(EXPECTED_CAUSE)
"""Faults the zoo injects: the dark faults of ``benchmarks/bench_faults.py`` (``*_recorded``: the
header tells the truth), a level jump inside a bias set and a wrong ``EGAIN``."""

_EGAIN_WRITERS = ("nina", "sgp", "maxim", "sharpcap")  # ekos and asiair write no EGAIN
_PROGRAMS = {
    "cmos_mono": ("nina", "sgp", "sharpcap", "ekos", "asiair"),
    "cmos_colour": ("nina", "sharpcap", "ekos", "asiair"),  # the programs writing BAYERPAT
    "ccd": ("maxim", "nina", "sgp"),
    "dslr": ("ekos",),
}
_EXPOSURES = {
    "cmos": (10.0, 30.0, 60.0, 120.0, 180.0, 300.0),
    "ccd": (30.0, 60.0, 120.0, 300.0, 600.0),
    "dslr": (30.0, 60.0, 120.0, 180.0, 240.0),
}
_MAX_DARK_H = 6.0  # a dark sequence fits between the lights and the morning
_MAX_LIGHT_H = 3.0


def _rng(family: str, seed: int) -> np.random.Generator:
    key = [int(seed) & 0xFFFFFFFF, zlib.crc32(family.encode("utf-8"))]
    return np.random.default_rng(np.random.SeedSequence(key))


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _pick(rng: np.random.Generator, items, p=None):
    return items[int(rng.choice(len(items), p=p))]


def _shape(rng: np.random.Generator, large: bool) -> tuple[int, int]:
    if large:
        n = int(_pick(rng, (1024, 1536, 2048)))
        return n, n
    ny = int(_pick(rng, (128, 160, 192, 256, 320, 384, 512)))
    nx = 2 * round(ny * float(_pick(rng, (1.0, 1.0, 1.25, 1.5))) / 2)
    return ny, nx


_NAMES = {
    "cmos_mono": ("ZWO ASI2600MM Pro", "ZWO ASI1600MM Pro", "ZWO ASI183MM Pro", "QHY268M"),
    "cmos_colour": (
        "ZWO ASI2600MC Pro",
        "ZWO ASI294MC Pro",
        "ZWO ASI533MC Pro",
        "QHY268C",
        "Player One Poseidon-C",
    ),
    "ccd": ("SBIG STF-8300M", "SBIG STL-1001E", "SBIG ST-402ME", "Apogee Alta U16M"),
    "dslr": ("Canon EOS 6D", "Canon EOS 600D", "Canon EOS Ra"),
}


def _camera(kind: str, colour: bool, rng: np.random.Generator, shape) -> SensorModel:
    """A camera of ``kind`` with every parameter drawn within realistic ranges."""
    ny, nx = shape
    if kind == "cmos":
        group = "cmos_colour" if colour else "cmos_mono"
        base = SENSOR_PRESETS["zwo-asi2600mc-pro" if colour else "zwo-asi2600mm-pro"]
        bits = int(_pick(rng, (16, 14, 12), p=(0.5, 0.4, 0.1)))
        step = 2 ** (16 - bits)
        egain_adc = {16: (0.2, 1.0), 14: (0.25, 4.0), 12: (0.3, 3.5)}[bits]
        offset = float(_pick(rng, (10.0, 30.0, 50.0, 70.0)))
        model = base.replace(
            adc_bits=bits,
            egain_e_per_adu=_loguniform(rng, *egain_adc) / step,
            gain_setting=float(_pick(rng, (0.0, 100.0, 120.0, 139.0, 200.0, 300.0))),
            offset_setting=offset,
            bias_adu=max(100.0, offset * float(rng.uniform(8.0, 16.0))),
            read_noise_e=float(rng.uniform(1.0, 3.5)),
            full_well_e=float(rng.uniform(15_000.0, 80_000.0)),
            dark_current_e_per_s=_loguniform(rng, 0.005, 0.06),
            doubling_temp_c=float(rng.uniform(5.5, 6.5)),
            hot_fraction=float(rng.uniform(5e-4, 5e-3)),
            hot_factor=float(rng.uniform(20.0, 100.0)),
            amp_glow_e_per_s=0.0 if rng.random() < 0.35 else _loguniform(rng, 0.02, 1.0),
            amp_glow_corner=str(
                _pick(rng, ("top-left", "top-right", "bottom-left", "bottom-right"))
            ),
            amp_glow_scale=float(rng.uniform(0.08, 0.2)),
            column_pattern_adu=float(rng.uniform(0.2, 2.0)),
            pixel_pattern_adu=float(rng.uniform(0.2, 1.0)),
            row_banding_adu=float(rng.uniform(0.2, 1.5)),
            pixel_size_um=float(rng.uniform(2.4, 4.6)),
        )
    elif kind == "ccd":
        group = "ccd"
        model = SENSOR_PRESETS["sbig-stf-8300m"].replace(
            egain_e_per_adu=float(rng.uniform(0.3, 2.5)),
            read_noise_e=float(rng.uniform(5.0, 15.0)),
            bias_adu=float(rng.uniform(100.0, 2000.0)),
            full_well_e=float(rng.uniform(25_000.0, 100_000.0)),
            nonlinearity_start=float(rng.uniform(0.8, 0.95)),
            dark_current_e_per_s=_loguniform(rng, 0.03, 0.4),
            doubling_temp_c=float(rng.uniform(5.5, 6.5)),
            hot_fraction=float(rng.uniform(1e-3, 6e-3)),
            hot_factor=float(rng.uniform(20.0, 60.0)),
            column_defects=int(rng.integers(0, 4)),
            column_pattern_adu=float(rng.uniform(0.5, 3.0)),
            pixel_pattern_adu=float(rng.uniform(0.3, 1.2)),
            row_banding_adu=float(rng.uniform(0.1, 0.5)),
            pixel_size_um=float(rng.uniform(5.4, 24.0)),
            readout_mode=_pick(rng, (None, "Monochrome")),
            max_delta_c=float(rng.uniform(38.0, 45.0)),
        )
    elif kind == "dslr":
        group = "dslr"
        iso = float(_pick(rng, (400.0, 800.0, 1600.0, 3200.0)))
        model = SENSOR_PRESETS["canon-eos-6d"].replace(
            gain_setting=iso,
            egain_e_per_adu=float(rng.uniform(0.4, 0.7)) * 1600.0 / iso,
            read_noise_e=float(rng.uniform(1.5, 4.0)),
            bias_adu=float(_pick(rng, (512.0, 1024.0, 2048.0))),
            dark_current_e_per_s=_loguniform(rng, 0.03, 0.15),
            hot_fraction=float(rng.uniform(1e-3, 5e-3)),
            amp_glow_e_per_s=float(rng.uniform(0.0, 0.3)),
            row_banding_adu=float(rng.uniform(0.5, 1.5)),
        )
    else:
        raise ConfigError(f"unknown zoo camera kind {kind!r}")
    name = str(_pick(rng, _NAMES[group]))
    serial = f"ZOO{int(rng.integers(10**8, 10**9))}"
    model = model.replace(
        name=name,
        serial=serial,
        ny=int(ny),
        nx=int(nx),
        cosmic_rate_per_cm2_s=cosmic_rate(float(rng.uniform(0.5, 5.0)), model.pixel_size_um),
    )
    if colour:
        model = model.replace(
            bayer_pattern=str(_pick(rng, BAYER_PATTERNS)),
            cfa_response=(float(rng.uniform(0.45, 0.75)), 1.0, float(rng.uniform(0.55, 0.85))),
        )
    return model


def _sky(scene: str, rng: np.random.Generator) -> SkySpec:
    colour = SkyColour(
        background_rgb=(float(rng.uniform(1.0, 1.6)), 1.0, float(rng.uniform(0.6, 1.0))),
        nebula_rgb=(
            float(rng.uniform(1.2, 2.5)),
            float(rng.uniform(0.5, 1.0)),
            float(rng.uniform(0.4, 0.9)),
        ),
    )
    if scene == "spectra":
        spectrum = SpectrumSpec(
            n_traces=int(rng.integers(1, 5)),
            trace_e_per_s=_loguniform(rng, 100.0, 2000.0),
            sky_e_per_s=_loguniform(rng, 0.01, 0.2),
            sky_lines=int(rng.integers(4, 13)),
            sky_line_e_per_s=_loguniform(rng, 0.5, 10.0),
            slit_fraction=float(rng.uniform(0.6, 0.95)),
        )
        return SkySpec(
            fwhm_px=float(rng.uniform(2.0, 4.0)), dither_px=1.0, spectrum=spectrum, colour=colour
        )
    if scene == "nebula":
        return SkySpec(
            background_e_per_s=_loguniform(rng, 0.2, 2.0),
            nebula_e_per_s=float(rng.uniform(2.0, 8.0)),
            nebula_blobs=int(rng.integers(10, 17)),
            star_density_per_mpx=float(rng.uniform(100.0, 800.0)),
            fwhm_px=float(rng.uniform(1.8, 4.5)),
            gradient=float(rng.uniform(0.0, 0.3)),
            colour=colour,
        )
    return SkySpec(
        background_e_per_s=_loguniform(rng, 0.05, 3.0),
        nebula_e_per_s=float(rng.uniform(0.0, 1.0)),
        star_density_per_mpx=_loguniform(rng, 300.0, 5000.0),
        star_flux_max_e_per_s=_loguniform(rng, 1e4, 2e5),
        fwhm_px=float(rng.uniform(1.8, 4.5)),
        gradient=float(rng.uniform(0.0, 0.4)),
        colour=colour,
    )


def _grid(kind: str, rng: np.random.Generator, large: bool):
    """Light and dark exposures: exact, bracketing, mixed, or one scaled dark exposure."""
    menu = _EXPOSURES[kind]
    grid = str(_pick(rng, ("exact", "bracket", "mixed", "scaled"), p=(0.5, 0.2, 0.15, 0.15)))
    n_light = 1 if large else int(rng.integers(1, 3))
    if grid == "exact":
        lights = tuple(sorted(rng.choice(menu, n_light, replace=False).tolist()))
        return grid, lights, lights
    if grid == "bracket":
        i = int(rng.integers(0, len(menu) - 2))
        j = int(rng.integers(i + 2, len(menu)))
        inner = list(menu[i + 1 : j])
        lights = tuple(sorted(rng.choice(inner, min(n_light, len(inner)), replace=False).tolist()))
        return grid, lights, (menu[i], menu[j])
    if grid == "mixed":
        pair = sorted(rng.choice(menu, 2, replace=False).tolist())
        other = [t for t in menu if t not in pair]
        darks = tuple(sorted([pair[int(rng.integers(2))], float(_pick(rng, other))]))
        return grid, tuple(pair), darks
    dark, light = rng.choice(menu, 2, replace=False).tolist()
    return grid, (float(light),), (float(dark),)


def zoo_params(
    family: str,
    seed: int = 0,
    *,
    fault: str | None = None,
    fault_probability: float = 0.3,
) -> ZooParams:
    """Draw the parameters of one zoo night, deterministically from ``(family, seed)``.

    ``family`` is one of :data:`FAMILIES` or a named scenario (:data:`SCENARIOS`).
    ``fault``: ``None`` draws one with probability ``fault_probability`` among the faults the
    camera allows, ``"clean"`` forces a clean night, a name of :data:`FAULTS` forces that fault
    (:class:`~darkflow.exceptions.ConfigError` when the camera cannot have it).
    """
    if family in SCENARIOS:
        params = SCENARIOS[family](int(seed))
        return (
            params if fault in (None, "clean") else _with_fault(params, fault, _rng(family, seed))
        )
    if family not in FAMILIES:
        known = ", ".join((*FAMILIES, *SCENARIOS))
        raise ConfigError(f"unknown zoo family {family!r}; known: {known}")
    rng = _rng(family, seed)
    kind, colour, scene, n_nights = {
        "mono_cmos": ("cmos", False, None, 1),
        "colour_cmos": ("cmos", True, None, 1),
        "ccd": ("ccd", False, None, 1),
        "dslr": ("dslr", True, None, 1),
        "multi_night": (None, None, "stars", int(rng.integers(2, 5))),
        "nebula": (None, None, "nebula", 1),
        "spectra": (None, False, "spectra", 1),
    }[family]
    if kind is None:
        options = (
            ("cmos", "ccd") if family in ("spectra", "multi_night") else ("cmos", "ccd", "dslr")
        )
        kind = str(_pick(rng, options))
    if colour is None:
        colour = kind == "dslr" or (kind == "cmos" and rng.random() < 0.5)
    if scene is None:
        scene = "stars" if rng.random() < 0.8 else "nebula"
        if kind == "ccd" and rng.random() < 0.15:
            scene = "spectra"
    large = rng.random() < 0.07
    shape = _shape(rng, large)
    group = (
        "dslr"
        if kind == "dslr"
        else ("ccd" if kind == "ccd" else ("cmos_colour" if colour else "cmos_mono"))
    )
    program = str(_pick(rng, _PROGRAMS[group]))
    camera = _camera(kind, colour, rng, shape)
    if colour and program in ("nina", "ekos") and rng.random() < 0.25:
        camera = camera.replace(bayer_offset=_pick(rng, ((1, 0), (0, 1), (1, 1))))
    sky = _sky(scene, rng)
    grid, lights, darks = _grid(kind, rng, large)
    n_darks = round(_loguniform(rng, 3.0, 40.0)) if not large else int(rng.integers(3, 13))
    n_darks = max(3, min(n_darks, int(_MAX_DARK_H * 3600 / sum(darks))))
    n_lights = int(rng.integers(3, 11)) if not large else int(rng.integers(3, 5))
    n_lights = max(2, min(n_lights, int(_MAX_LIGHT_H * 3600 / sum(lights))))
    n_bias = 0 if rng.random() < 0.3 else (int(rng.integers(8, 26)) if not large else 8)
    if grid == "scaled" and n_bias == 0 and rng.random() < 0.85:
        n_bias = 12  # a single scaled dark exposure is usually taken with biases
    egain = "absent"
    if program in _EGAIN_WRITERS and rng.random() < 0.6:
        egain = "present"
    set_temp = None
    air0 = float(rng.uniform(2.0, 14.0))
    air1 = air0 - float(rng.uniform(2.0, 8.0))
    if kind != "dslr":
        set_temp = float(_pick(rng, (-20.0, -15.0, -10.0, -5.0, 0.0)))
        set_temp = max(set_temp, 5.0 * math.ceil((air0 - camera.max_delta_c + 5.0) / 5.0))
    start = date(2026, 1, 1) + timedelta(days=int(rng.integers(0, 365)))
    nights = []
    for k in range(n_nights):
        night_darks = darks
        night_lights = lights
        if n_nights > 1:  # each night: one light exposure, a subset of the darks (a library)
            night_lights = (float(_pick(rng, lights)),)
            keep = [t for t in darks if rng.random() < 0.6]
            night_darks = tuple(keep) if keep or k else darks
        nights.append(
            ZooNightDesign(
                date=(start + timedelta(days=k)).isoformat(),
                light_exposures=night_lights,
                dark_exposures=night_darks,
                n_bias=n_bias if (n_nights == 1 or rng.random() < 0.75) else 0,
                bias_offset_adu=0.0 if k == 0 else round(float(rng.normal(0.0, 3.0)), 2),
                darks_first=bool(rng.random() < 0.3),
                ambient_c=(air0, air1),
            )
        )
    is_mono_filter = not colour and scene != "spectra"
    params = ZooParams(
        family=family,
        seed=int(seed),
        camera_key=f"zoo-{kind}",
        camera=camera,
        program=program,
        scene=scene,
        sky=sky,
        egain=egain,
        set_temp_c=set_temp,
        n_darks=n_darks,
        n_lights=n_lights,
        nights=tuple(nights),
        target="HD 17081"
        if scene == "spectra"
        else str(_pick(rng, ("M 31", "NGC 7000", "M 42", "IC 1805", "M 101"))),
        filter=("Ha" if sky.background_e_per_s < 0.2 else "L") if is_mono_filter else None,
        grid=grid,
        description=f"{family}: {kind}{' colour' if colour else ''} {shape[0]}x{shape[1]}, "
        f"{program}, {scene}, {grid} grid, {n_nights} night(s)",
    )
    if fault is None:
        if rng.random() >= fault_probability:
            return params
        options = _allowed_faults(params)
        fault = str(_pick(rng, options))
    elif fault == "clean":
        return params
    return _with_fault(params, fault, rng)


def _allowed_faults(params: ZooParams) -> tuple[str, ...]:
    cam = params.camera
    out = []
    for f in FAULTS:
        if f.startswith("wrong_gain") and (
            cam.kind is not SensorKind.CMOS or cam.gain_setting is None
        ):
            continue
        if f == "warm_darks_recorded" and not cam.cooled:
            continue
        if f == "bias_jump" and not any(n.n_bias for n in params.nights):
            continue
        if f == "wrong_egain" and params.program not in _EGAIN_WRITERS:
            continue
        if f in DARK_FAULTS and not any(n.dark_exposures for n in params.nights):
            continue
        out.append(f)
    return tuple(out)


def _with_fault(params: ZooParams, fault: str, rng: np.random.Generator) -> ZooParams:
    if fault not in FAULTS:
        raise ConfigError(f"unknown zoo fault {fault!r}; known: {', '.join(FAULTS)}")
    if fault not in _allowed_faults(params):
        raise ConfigError(f"fault {fault!r} is not possible for {params.description}")
    changes: dict[str, Any] = {"fault": fault}
    if fault in DARK_FAULTS:  # the dark set used by most lights
        best = (-1, 0, None)
        for k, night in enumerate(params.nights):
            for t in night.dark_exposures:
                users = sum(t in n.light_exposures for n in params.nights)
                best = max(best, (users, -k, t), key=lambda b: (b[0], b[1]))
        changes.update(fault_night=-best[1], fault_exposure=best[2])
    elif fault == "bias_jump":
        changes["fault_night"] = max(k for k, n in enumerate(params.nights) if n.n_bias)
    magnitude = {
        "wrong_gain": lambda: params.camera.gain_setting + float(rng.uniform(60.0, 150.0)),
        "warm_darks": lambda: float(rng.uniform(5.0, 10.0)),
        "light_leak": lambda: float(rng.uniform(0.1, 0.5)),
        "cosmic_rays": lambda: float(rng.uniform(60.0, 150.0)),
        "bias_drift": lambda: float(rng.choice((-1, 1)) * rng.uniform(8.0, 20.0)),
        "readout_mode": lambda: float(rng.uniform(15.0, 40.0)),
        "bias_jump": lambda: float(rng.uniform(10.0, 20.0)),
        "wrong_egain": lambda: float(rng.uniform(1.6, 2.5) ** rng.choice((-1, 1))),
    }[fault.removesuffix("_recorded")]()
    changes["fault_magnitude"] = round(magnitude, 4)
    if fault == "wrong_egain":
        changes.update(egain="wrong", egain_factor=round(magnitude, 4))
    return params.replace(**changes)


def sample_zoo(
    n: int,
    seed: int = 0,
    *,
    families: tuple[str, ...] | list[str] | None = None,
    fault_probability: float = 0.3,
) -> list[ZooParams]:
    """``n`` zoo nights: families in turn (all of :data:`FAMILIES` by default), each with its own
    seed derived from ``(seed, index)``, so the same call always gives the same nights."""
    fams = tuple(families or FAMILIES)
    out = []
    for i in range(int(n)):
        sub = int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, i]).generate_state(1)[0])
        out.append(zoo_params(fams[i % len(fams)], sub, fault_probability=fault_probability))
    return out


# ----------------------------------------------------------------------------- named scenarios
def _osc(shape: tuple[int, int], egain: str, name: str):
    def make(seed: int) -> ZooParams:
        camera = SENSOR_PRESETS["zwo-asi2600mc-pro"].replace(
            ny=shape[0],
            nx=shape[1],
            cfa_response=(0.6, 1.0, 0.7),
            cosmic_rate_per_cm2_s=cosmic_rate(2.0, 3.76),
        )
        night = ZooNightDesign("2026-11-23", (300.0,), (300.0,), n_bias=20, ambient_c=(6.0, 1.0))
        return ZooParams(
            family=name,
            seed=seed,
            camera_key="zwo-asi2600mc-pro",
            camera=camera,
            program="nina",
            scene="stars",
            sky=SkySpec(background_e_per_s=0.8, nebula_e_per_s=0.6, gradient=0.3),
            egain=egain,
            set_temp_c=-10.0,
            n_darks=20,
            n_lights=13,
            nights=(night,),
            target="NGC 7000",
            description=f"One-shot-colour ASI2600MC (RGGB) at {shape[0]}x{shape[1]}: 13 x 300 s "
            f"lights, 20 exact darks, 20 biases, EGAIN {egain}: a clean night.",
        )

    return make


def _ccd_three_nights(jump: bool, name: str):
    def make(seed: int) -> ZooParams:
        camera = SENSOR_PRESETS["sbig-stf-8300m"].replace(
            name="SBIG STL-1001E",
            ny=1024,
            nx=1024,
            pixel_size_um=24.0,
            egain_e_per_adu=1.5,
            read_noise_e=14.0,
            bias_adu=110.0,
            dark_current_e_per_s=0.3,
            max_delta_c=40.0,
            cosmic_rate_per_cm2_s=cosmic_rate(2.0, 24.0),
        )
        nights = (
            ZooNightDesign("2026-02-10", (30.0,), (30.0, 60.0), 15, 0.0, ambient_c=(4.0, -2.0)),
            ZooNightDesign("2026-02-11", (60.0,), (60.0,), 15, 4.0, ambient_c=(6.0, 0.0)),
            ZooNightDesign("2026-02-12", (600.0,), (300.0,), 16, -3.0, ambient_c=(3.0, -3.0)),
        )
        params = ZooParams(
            family=name,
            seed=seed,
            camera_key="sbig-stl-1001e",
            camera=camera,
            program="maxim",
            scene="stars",
            sky=SkySpec(
                background_e_per_s=2.0, nebula_e_per_s=0.5, star_density_per_mpx=800.0, fwhm_px=2.2
            ),
            egain="absent",
            set_temp_c=-10.0,
            n_darks=10,
            n_lights=5,
            nights=nights,
            target="M 42",
            filter="L",
            grid="mixed",
            description="CCD, three nights in one tree (1024x1024, no EGAIN): darks at 30/60 s, "
            "60 s and 300 s, lights at 30, 60 and 600 s; bias level +4 and -3 ADU on nights 2 "
            "and 3" + ("; night 3's biases jump 15 ADU half-way" if jump else "") + ".",
        )
        if jump:
            params = params.replace(fault="bias_jump", fault_night=2, fault_magnitude=15.0)
        return params

    return make


def _spectra(light_exps, dark_exps, n_bias: int, name: str, text: str):
    def make(seed: int) -> ZooParams:
        camera = SENSOR_PRESETS["sbig-stf-8300m"].replace(
            name="SBIG ST-402ME",
            ny=510,
            nx=765,
            pixel_size_um=9.0,
            egain_e_per_adu=1.4,
            read_noise_e=15.0,
            bias_adu=105.0,
            dark_current_e_per_s=0.2,
            column_defects=1,
            cosmic_rate_per_cm2_s=cosmic_rate(2.0, 9.0),
        )
        night = ZooNightDesign(
            "2026-03-05", tuple(light_exps), tuple(dark_exps), n_bias, ambient_c=(8.0, 3.0)
        )
        sky = SkySpec(
            fwhm_px=2.5,
            dither_px=1.0,
            spectrum=SpectrumSpec(n_traces=2, trace_e_per_s=600.0, sky_lines=8),
        )
        return ZooParams(
            family=name,
            seed=seed,
            camera_key="sbig-st-402me",
            camera=camera,
            program="maxim",
            scene="spectra",
            sky=sky,
            egain="present",
            set_temp_c=-10.0,
            n_darks=11,
            n_lights=5 if len(light_exps) == 1 else 3,
            nights=(night,),
            target="HD 17081",
            grid="exact" if tuple(light_exps) == tuple(dark_exps) else "bracket",
            description=text,
        )

    return make


SCENARIOS = {
    "osc-rggb-384": _osc((384, 384), "present", "osc-rggb-384"),
    "osc-rggb-256": _osc((256, 256), "present", "osc-rggb-256"),
    "osc-rggb-384-no-egain": _osc((384, 384), "absent", "osc-rggb-384-no-egain"),
    "osc-rggb-256-no-egain": _osc((256, 256), "absent", "osc-rggb-256-no-egain"),
    "ccd-three-nights": _ccd_three_nights(False, "ccd-three-nights"),
    "ccd-three-nights-bias-jump": _ccd_three_nights(True, "ccd-three-nights-bias-jump"),
    "spectra-120": _spectra(
        (120.0,),
        (120.0,),
        0,
        "spectra-120",
        "CCD slit spectra: 5 x 120 s lights, 11 x 120 s darks, EGAIN, no bias.",
    ),
    "spectra-300-900": _spectra(
        (600.0, 1200.0),
        (300.0, 900.0),
        0,
        "spectra-300-900",
        "CCD slit spectra at 600 and 1200 s with darks only at 300 and "
        "900 s (11 each), no bias: a two-point per-pixel model.",
    ),
}
"""Named scenarios: ``name -> (seed -> ZooParams)``; the seed only changes noise and maps."""


# ----------------------------------------------------------------------------- writing
@dataclass(frozen=True, eq=False)
class ZooNight:
    """What :func:`zoo_night` wrote: the tree, its parameters and its truth (a dict)."""

    out_dir: Path
    params: ZooParams
    truth: dict[str, Any]
    manifests: tuple[NightManifest, ...] = field(default=())

    @property
    def n_files(self) -> int:
        """The number of files of every night of the family."""
        return sum(m.n_files for m in self.manifests)

    def __repr__(self) -> str:
        return (
            f"<ZooNight {self.params.name} nights={len(self.manifests)} files={self.n_files} "
            f"fault={self.params.fault} out={self.out_dir}>"
        )


def zoo_night(
    out_dir: str | Path,
    family: str | None = None,
    seed: int = 0,
    *,
    params: ZooParams | None = None,
    fault: str | None = None,
) -> ZooNight:
    """Write one zoo night (one or several nights in one tree) and its ``zoo_truth.json``.

    Parameters
    ----------
    out_dir
        A missing or empty directory.
    family, seed
        Draw the night with :func:`zoo_params` (``family`` may name a scenario).
    params
        Use these parameters instead (from :func:`sample_zoo` or :func:`zoo_params`).
    fault
        Passed to :func:`zoo_params` (``"clean"``, a fault name, or ``None`` to draw).

    Raises
    ------
    ConfigError
        Unknown family or fault, or ``out_dir`` is not empty.
    OutputError
        A file cannot be written.
    """
    if params is None:
        if family is None:
            raise ConfigError("zoo_night needs a family (or params)")
        params = zoo_params(family, seed, fault=fault)
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} must be a missing or empty directory")
    specs = zoo_specs(params, with_faults=True)
    clean_specs = zoo_specs(params, with_faults=False)
    manifests, plans, clean_plans = [], [], []
    for k, (spec, clean) in enumerate(zip(specs, clean_specs, strict=True)):
        manifests.append(simulate_faulted_night(out / f"night-{k + 1}", spec, params.seed))
        plans.append(plan_faulted(spec, params.seed))
        clean_plans.append(plan_faulted(clean, params.seed))
    truth = build_truth(params, plans, clean_plans, expected_cause=EXPECTED_CAUSE)
    with atomic_write(out / TRUTH_FILE) as fh:
        fh.write(json.dumps(truth, indent=1, sort_keys=True) + "\n")
    return ZooNight(out, params, truth, tuple(manifests))
