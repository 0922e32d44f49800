"""Clean simulated lights for the light gates' false-alarm tests (import explicitly).

A night here is one simulated camera (``darkflow.simulate`` physics: hot pixels, flickering
pixels, cosmic rays, per-frame row banding, bias pattern, quantisation), a master bias and a
master dark of the lights' exposure and temperature (exact darks), and a few lights of a sky
with a gradient, faint nebulosity and (optionally) stars, seen through the colour filter array
when the camera has one. Each light is calibrated by :func:`darkflow.calibrate.calibrate_light`
exactly as the pipeline does, so the gates see what they see in a run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from darkflow.calibrate import LightCalibration, calibrate_light
from darkflow.config import Config, VerifyConfig
from darkflow.master import combine_arrays
from darkflow.matching import CalibrationIndex, MatchDecision
from darkflow.model import FrameMeta, FrameType, MasterMeta, ScaleMode
from darkflow.simulate import SENSOR_PRESETS, expose, make_sensor_truth

EXPTIME = 120.0
TEMP = -10.0
# R, G, B response of a colour camera and the sky's colour (relative to green)
CFA_RESPONSE = (0.6, 1.0, 0.7)
SKY_RGB = (1.3, 1.0, 0.8)


@dataclass(frozen=True)
class NightSpec:
    seed: int
    shape: tuple[int, int] = (96, 128)
    pattern: str | None = None  # a Bayer pattern for a colour camera
    egain_known: bool = True
    stars: bool = True
    n_darks: int = 10
    n_lights: int = 3
    sky_e_per_s: float = 0.5
    camera: str = "zwo-asi2600mm-pro"
    scene: str = "field"  # "field" (gradient, faint nebula, stars), "spectrum", "nebula"

    @property
    def label(self) -> str:
        colour = self.pattern or "mono"
        gain = "egain" if self.egain_known else "no-egain"
        stars = "stars" if self.stars else "no-stars"
        return f"{colour}-{self.shape[0]}x{self.shape[1]}-{gain}-{stars}-s{self.seed}"


def _cfa_factor(pattern: str, shape: tuple[int, int]) -> np.ndarray:
    table = {c: CFA_RESPONSE[i] * SKY_RGB[i] for i, c in enumerate("RGB")}
    cell = np.array(
        [[table[pattern[0]], table[pattern[1]]], [table[pattern[2]], table[pattern[3]]]]
    )
    reps = ((shape[0] + 1) // 2, (shape[1] + 1) // 2)
    return np.tile(cell, reps)[: shape[0], : shape[1]]


def _spectrum(spec: NightSpec) -> np.ndarray:
    """A long-slit spectrum (electrons): a slit band, sky lines crossing it, two traces."""
    ny, nx = spec.shape
    yy, xx = np.mgrid[:ny, :nx].astype(np.float64)
    slit = (yy > 0.1 * ny) & (yy < 0.9 * ny)
    sky = np.where(slit, spec.sky_e_per_s * EXPTIME * 0.2, 0.0)
    for k, x0 in enumerate(np.linspace(0.1 * nx, 0.9 * nx, 7)):  # sky lines along the slit
        line = 40.0 * EXPTIME * (1 + k % 3) * np.exp(-((xx - x0) ** 2) / 2.0)
        sky += np.where(slit, line, 0.0)
    for y0, level in ((0.35 * ny, 30.0), (0.62 * ny, 8.0)):  # object traces along the rows
        continuum = level * EXPTIME * (1.0 + 0.5 * np.sin(xx / nx * 6.0))
        sky += continuum * np.exp(-((yy - y0) ** 2) / (2 * 1.5**2))
    return sky


def _nebula(spec: NightSpec, rng: np.random.Generator) -> np.ndarray:
    """Nebulosity filling the field on every scale (electrons)."""
    ny, nx = spec.shape
    f2 = np.fft.fftfreq(ny)[:, None] ** 2 + np.fft.fftfreq(nx)[None, :] ** 2
    amp = 1.0 / np.maximum(f2, 1.0 / (ny * nx)) ** 0.8
    shaped = np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=(ny, nx))) * amp))
    shaped = (shaped - shaped.min()) / np.ptp(shaped)
    return spec.sky_e_per_s * EXPTIME * (0.5 + 6.0 * shaped**2)


def _stars(spec: NightSpec, rng: np.random.Generator) -> np.ndarray:
    ny, nx = spec.shape
    sky = np.zeros(spec.shape)
    n = max(8, round(3000 * ny * nx / 1e6))
    ys, xs = rng.uniform(6, ny - 6, n), rng.uniform(6, nx - 6, n)
    flux = 400.0 * rng.uniform(0.0, 1.0, n) ** (-1.0 / 1.2)
    flux = np.minimum(flux, 3e4) * EXPTIME / 10.0
    sigma = 1.4
    for y0, x0, f in zip(ys, xs, flux, strict=True):
        y1, y2 = int(max(y0 - 8, 0)), int(min(y0 + 9, ny))
        x1, x2 = int(max(x0 - 8, 0)), int(min(x0 + 9, nx))
        py, px = np.mgrid[y1:y2, x1:x2]
        r2 = (py - y0) ** 2 + (px - x0) ** 2
        sky[y1:y2, x1:x2] += f / (2 * math.pi * sigma**2) * np.exp(-r2 / (2 * sigma**2))
    return sky


def _sky(spec: NightSpec, rng: np.random.Generator) -> np.ndarray:
    """Noiseless sky (electrons) of one light, through the colour filters of a colour camera."""
    ny, nx = spec.shape
    if spec.scene == "spectrum":
        sky = _spectrum(spec)
    else:
        yy, xx = np.mgrid[:ny, :nx].astype(np.float64)
        rate = spec.sky_e_per_s * (1.0 + 0.3 * (xx / nx - 0.5) + 0.2 * (yy / ny - 0.5))
        rate = rate + 0.3 * spec.sky_e_per_s * np.exp(
            -((yy - 0.4 * ny) ** 2 + (xx - 0.6 * nx) ** 2) / (2 * (0.25 * min(ny, nx)) ** 2)
        )
        sky = rate * EXPTIME
        if spec.scene == "nebula":
            sky = sky + _nebula(spec, rng)
        if spec.stars:
            sky = sky + _stars(spec, rng)
    if spec.pattern:
        sky = sky * _cfa_factor(spec.pattern, spec.shape)
    return sky


def _adu(frame: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(frame), 0, 65535).astype(np.uint16)


def _master(frames: list[np.ndarray], kind: FrameType, exptime: float, gain: float):
    meta = MasterMeta(
        config_signature="clean",
        instrument="clean",
        exptime_s=exptime,
        temp_c=TEMP,
        set_temp_c=TEMP,
        n_frames=len(frames),
        egain_e_per_adu=gain,
        frame_kind=kind,
    )
    return combine_arrays(frames, meta=meta, allow_few=True)


def clean_night(
    spec: NightSpec,
    *,
    false_alarm: float = 1e-4,
    dark_hook: Callable[[np.ndarray, int], np.ndarray] | None = None,
    dark_temp_offset: float = 0.0,
    light_hook: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    egain_factor: float = 1.0,
) -> list[LightCalibration]:
    """The night's lights, each calibrated by ``calibrate_light`` with exact darks.

    Faults for the gates to find: ``dark_hook(frame, k)`` changes the k-th dark (float64 ADU),
    ``dark_temp_offset`` warms the darks, ``light_hook(raw, sky_adu)`` changes a light (float64
    ADU; ``sky_adu`` its noiseless sky), ``egain_factor`` multiplies the header's EGAIN.
    """
    rng = np.random.default_rng(spec.seed)
    model = SENSOR_PRESETS[spec.camera].replace(
        ny=spec.shape[0], nx=spec.shape[1], bayer_pattern=spec.pattern
    )
    truth = make_sensor_truth(model, rng)
    gain = model.egain_e_per_adu
    biases = [expose(truth, "bias", 0.0, TEMP, rng) for _ in range(15)]
    bias = _master(biases, FrameType.BIAS, 0.0, gain)
    warm = TEMP + dark_temp_offset
    darks = [expose(truth, "dark", EXPTIME, warm, rng) for _ in range(spec.n_darks)]
    if dark_hook is not None:
        darks = [_adu(dark_hook(d.astype(np.float64), k)) for k, d in enumerate(darks)]
    dark = _master(darks, FrameType.DARK, EXPTIME, gain)
    meta = FrameMeta(
        path="light.fits",
        frame_type=FrameType.LIGHT,
        exptime_s=EXPTIME,
        ccd_temp_c=TEMP,
        egain_e_per_adu=gain * egain_factor if spec.egain_known else None,
        dtype="uint16",
        bayer_pattern=spec.pattern,
        shape=spec.shape,
    )
    decision = MatchDecision(
        light_path="light.fits",
        config_signature="clean",
        master_id="m",
        scale_mode=ScaleMode.NONE,
        scale_factor=1.0,
        exposure_factor=1.0,
        confidence=1.0,
    )
    config = Config(verify=VerifyConfig(gate_false_alarm=false_alarm))
    out = []
    for _ in range(spec.n_lights):
        sky = _sky(spec, rng)
        raw = expose(truth, "light", EXPTIME, TEMP, rng, sky_e=sky)
        if light_hook is not None:
            raw = _adu(light_hook(raw.astype(np.float64), sky / gain))
        out.append(
            calibrate_light(
                raw,
                meta,
                decision,
                load_master={"m": dark}.__getitem__,
                bias=bias,
                index=CalibrationIndex(),
                config=config,
            )
        )
    return out
