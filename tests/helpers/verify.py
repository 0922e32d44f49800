"""Helpers of the verification tests: synthetic dark stacks, masters and lights with known truth.

The sensor is :mod:`darkflow.simulate`'s physics (:func:`~darkflow.simulate.make_sensor_truth`
and :func:`~darkflow.simulate.expose`) with a model of its own: 0.5 e-/ADU, 3 e- read noise, a
bias of 500 ADU with a fixed column and pixel pattern, a log-normal dark current with 1 % hot
pixels, and nothing else (no glow, banding, flicker or cosmic rays unless asked), so a test
sees each effect it injects alone. Import explicitly: ``from helpers.verify import ...``.
Everything is drawn from seeded generators; the frames are small so every test stays fast.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from darkflow.master import combine_arrays
from darkflow.model import FrameType, MasterDark, MasterMeta
from darkflow.simulate import SensorModel, SensorTruth, expose, make_sensor_truth

SHAPE = (160, 200)
GAIN = 0.5  # e-/ADU
READ_E = 3.0
BIAS_ADU = 500.0
EXPTIME = 300.0
TEMP_C = -10.0  # the darks' and lights' sensor temperature (the model's reference)


def sensor_model(shape: tuple[int, int] = SHAPE) -> SensorModel:
    """The verification tests' camera: 20 e- of dark signal per exposure, 1 % hot pixels."""
    return SensorModel(
        name="synthetic",
        ny=shape[0],
        nx=shape[1],
        gain_setting=None,
        offset_setting=None,
        egain_e_per_adu=GAIN,
        read_noise_e=READ_E,
        bias_adu=BIAS_ADU,
        full_well_e=1e7,
        column_pattern_adu=1.5,
        pixel_pattern_adu=0.5,
        row_banding_adu=0.0,
        dark_current_e_per_s=20.0 / EXPTIME,
        dark_sigma_log=0.3,
        ref_temp_c=TEMP_C,
        hot_fraction=0.01,
        hot_factor=40.0,
        hot_sigma_log=0.6,
        amp_glow_e_per_s=0.0,
        cosmic_rate_per_cm2_s=0.0,
        flicker_pixels=0,
    )


@dataclass(frozen=True)
class Sensor:
    """Fixed maps of a synthetic sensor (ADU unless noted) and the simulator's truth."""

    truth: SensorTruth

    @property
    def bias(self) -> np.ndarray:
        """Bias level with a fixed column pattern and pixel pattern."""
        return self.truth.bias_adu.astype(np.float64)

    @property
    def dark_e(self) -> np.ndarray:
        """Dark electrons per exposure (log-normal, hot pixels included)."""
        return self.truth.dark_electrons(EXPTIME, TEMP_C)

    @property
    def hot(self) -> np.ndarray:
        """Bool map of the hot pixels."""
        hot = np.zeros(self.truth.shape, bool)
        hot[tuple(self.truth.hot_pixels.T)] = True
        return hot


def make_sensor(seed: int = 0, shape: tuple[int, int] = SHAPE) -> Sensor:
    return Sensor(make_sensor_truth(sensor_model(shape), np.random.default_rng(seed)))


def dark_frames(
    sensor: Sensor,
    n: int,
    *,
    seed: int,
    gain: float = GAIN,
    read_e: float = READ_E,
    dark_scale: float = 1.0,
    offset_adu: float = 0.0,
    extra_e: np.ndarray | float = 0.0,
    column_adu: np.ndarray | float = 0.0,
    cosmic_frac: float = 0.0,
) -> list[np.ndarray]:
    """``n`` uint16 darks exposed by the simulator, with the faults a test asks for.

    ``gain``/``read_e``: the camera's real conversion and read noise (the header keeps
    :data:`GAIN`); ``dark_scale`` multiplies the dark signal, ``extra_e`` adds electrons (a
    light leak), ``offset_adu``/``column_adu`` shift the bias, and ``cosmic_frac`` is about the
    fraction of pixels hit by cosmic rays in each frame.
    """
    model = sensor.truth.model.replace(egain_e_per_adu=gain, read_noise_e=read_e)
    if cosmic_frac:  # hits of ~3 pixels each during the exposure and the readout
        window = EXPTIME + model.cosmic_readout_s
        rate = cosmic_frac * model.ny * model.nx / 3 / (model.area_cm2 * window)
        model = model.replace(cosmic_rate_per_cm2_s=rate)
    truth = dataclasses.replace(
        sensor.truth, model=model, bias_adu=sensor.truth.bias_adu + offset_adu + column_adu
    )
    extra = sensor.dark_e * (dark_scale - 1.0) + extra_e  # on top of the dark signal
    rng = np.random.default_rng(seed)
    return [expose(truth, "dark", EXPTIME, TEMP_C, rng, extra) for _ in range(n)]


def master_of(
    frames: list[np.ndarray],
    *,
    kind: FrameType = FrameType.DARK,
    exptime: float = EXPTIME,
    temp_c: float | None = -10.0,
    gain: float = GAIN,
) -> MasterDark:
    meta = MasterMeta(
        config_signature="synthetic",
        instrument="synthetic",
        exptime_s=exptime if kind == FrameType.DARK else 0.0,
        temp_c=temp_c,
        set_temp_c=-10.0,
        n_frames=len(frames),
        egain_e_per_adu=gain,
        frame_kind=kind,
    )
    return combine_arrays(frames, meta=meta, allow_few=True)


def bias_master(sensor: Sensor, *, seed: int = 99, n: int = 15) -> MasterDark:
    frames = dark_frames(sensor, n, seed=seed, dark_scale=0.0)
    return master_of(frames, kind=FrameType.BIAS, temp_c=None)


def sky_scene(
    shape: tuple[int, int] = SHAPE, *, seed: int = 5, background_e: float = 200.0, n_stars: int = 40
) -> np.ndarray:
    """Noiseless sky in electrons: a background with a gradient and isolated Gaussian stars."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    yy, xx = np.mgrid[:ny, :nx]
    sky = background_e * (1.0 + 0.2 * xx / nx)
    placed: list[tuple[float, float]] = []
    while len(placed) < n_stars:
        y0, x0 = rng.uniform(14, ny - 14), rng.uniform(14, nx - 14)
        if all(np.hypot(y0 - y, x0 - x) > 18 for y, x in placed):
            placed.append((y0, x0))
    for y0, x0 in placed:
        flux = rng.uniform(3e3, 4e4)
        sigma = 1.3
        sky += (
            flux
            / (2 * np.pi * sigma**2)
            * np.exp(-((yy - y0) ** 2 + (xx - x0) ** 2) / (2 * sigma**2))
        )
    return sky


def light_frame(sensor: Sensor, sky_e: np.ndarray, *, seed: int, gain: float = GAIN) -> np.ndarray:
    """A light of ``sky_e`` electrons (noiseless scene) exposed by the simulator."""
    truth = dataclasses.replace(
        sensor.truth, model=sensor.truth.model.replace(egain_e_per_adu=gain)
    )
    return expose(truth, "light", EXPTIME, TEMP_C, np.random.default_rng(seed), sky_e)
