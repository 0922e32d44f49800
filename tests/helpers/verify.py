"""Helpers of the verification tests: synthetic dark stacks, masters and lights with known truth.

Import explicitly: ``from conftest_verify import ...``. Everything is drawn from seeded
generators; the frames are small so every test stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from darkflow.master import combine_arrays
from darkflow.model import FrameType, MasterDark, MasterMeta

SHAPE = (160, 200)
GAIN = 0.5  # e-/ADU
READ_E = 3.0
BIAS_ADU = 500.0
EXPTIME = 300.0


@dataclass(frozen=True)
class Sensor:
    """Fixed maps of a synthetic sensor (ADU unless noted)."""

    bias: np.ndarray  # bias level with a fixed column pattern and pixel pattern
    dark_e: np.ndarray  # dark electrons per exposure (lognormal + 1% hot pixels)
    hot: np.ndarray  # bool map of the hot pixels


def make_sensor(seed: int = 0, shape: tuple[int, int] = SHAPE) -> Sensor:
    rng = np.random.default_rng(seed)
    _ny, nx = shape
    bias = BIAS_ADU + rng.normal(0, 1.5, nx)[None, :] + rng.normal(0, 0.5, shape)
    dark = rng.lognormal(np.log(20.0), 0.3, shape)
    hot = rng.random(shape) < 0.01
    dark[hot] *= rng.lognormal(np.log(40.0), 0.6, int(hot.sum()))
    return Sensor(bias, dark, hot)


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
    """``n`` uint16 darks: bias (+ offset, + column pattern) + Poisson(dark * scale + extra) / gain."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        e = rng.poisson(sensor.dark_e * dark_scale + extra_e).astype(np.float64)
        e += rng.normal(0.0, read_e, e.shape)
        if cosmic_frac:
            hit = rng.random(e.shape) < cosmic_frac
            e[hit] += rng.uniform(500.0, 5000.0, int(hit.sum()))
        adu = sensor.bias + offset_adu + column_adu + e / gain
        out.append(np.clip(np.rint(adu), 0, 65535).astype(np.uint16))
    return out


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
    zero = Sensor(sensor.bias, np.zeros_like(sensor.dark_e), sensor.hot)
    return master_of(dark_frames(zero, n, seed=seed), kind=FrameType.BIAS, temp_c=None)


def sky_scene(shape: tuple[int, int] = SHAPE, *, seed: int = 5, background_e: float = 200.0,
              n_stars: int = 40) -> np.ndarray:  # fmt: skip
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
    rng = np.random.default_rng(seed)
    e = rng.poisson(sensor.dark_e + sky_e).astype(np.float64) + rng.normal(0.0, READ_E, sky_e.shape)
    return np.clip(np.rint(sensor.bias + e / gain), 0, 65535).astype(np.uint16)
