"""Helpers of the master/kernel/band tests: small dark frames with known truth, in several formats.

The frames are exposed by :mod:`darkflow.simulate` (:func:`~darkflow.simulate.expose`) on a
plain sensor (a flat bias, a log-normal dark current, shot and read noise, quantisation; no
pattern, glow, banding, flicker or random cosmic rays) with hot pixels, cosmic-ray hits and a
saturated pixel planted at known places, so each test can find them. Import explicitly:
``from helpers.darks import ...``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from darkflow.simulate import SensorModel, expose, make_sensor_truth

PLANE_ATTRS = ("data", "uncertainty", "n_used", "n_low", "n_high", "hot_persistence", "saturated")
EXPTIME_S = 60.0  # the exposure of the default header
TEMP_C = -10.0


@dataclass
class DarkSet:
    """Frames written to disk plus the truth they were drawn from."""

    paths: list[Path]
    frames: np.ndarray  # (n, ny, nx) the stored values (after clipping to the dtype range)
    truth: np.ndarray  # noiseless level per pixel (ADU)
    hot: list[tuple[int, int]] = field(default_factory=list)
    cosmics: list[tuple[int, int, int]] = field(default_factory=list)  # (frame, y, x)
    saturated: list[tuple[int, int]] = field(default_factory=list)


def make_frames(
    n: int = 8,
    shape: tuple[int, int] = (40, 50),
    *,
    seed: int = 1,
    bias: float = 500.0,
    read_noise: float = 3.0,
    egain: float = 1.0,
    dark: float = 5.0,
    n_hot: int = 4,
    hot_level: float = 3000.0,
    n_cosmics: int = 5,
    saturate: bool = True,
    truth_seed: int | None = None,
) -> tuple[np.ndarray, np.ndarray, list, list, list]:
    """Float frames ``(n, ny, nx)``: bias + dark current (with hot pixels) + shot + read noise.

    ``read_noise``, ``dark`` and ``hot_level`` are in ADU (``dark``: the median pixel's dark
    signal per frame). The dark-current map comes from ``truth_seed`` (default ``seed``), the
    noise from ``seed``. Cosmic-ray hits are added after readout and the saturated pixel is set
    to 70000 (beyond the 16-bit range, clipped when written as integers).
    """
    ny, nx = shape
    model = SensorModel(
        name="darks",
        ny=ny,
        nx=nx,
        egain_e_per_adu=egain,
        read_noise_e=read_noise * egain,
        bias_adu=bias,
        full_well_e=1e7,
        column_pattern_adu=0.0,
        pixel_pattern_adu=0.0,
        row_banding_adu=0.0,
        dark_current_e_per_s=dark * egain / EXPTIME_S,
        dark_sigma_log=0.5,
        ref_temp_c=TEMP_C,
        hot_fraction=0.0,
        amp_glow_e_per_s=0.0,
        cosmic_rate_per_cm2_s=0.0,
        flicker_pixels=0,
    )
    map_seed = seed if truth_seed is None else truth_seed
    truth = make_sensor_truth(model, np.random.default_rng((map_seed, 1)))
    rate = truth.dark_current_e_per_s.copy()
    hot = []
    for i in range(n_hot):
        y, x = 3 + 7 * i % (ny - 6), 5 + 11 * i % (nx - 10)
        rate[y, x] = hot_level * (1 + i) * egain / EXPTIME_S
        hot.append((y, x))
    truth = dataclasses.replace(truth, dark_current_e_per_s=rate)
    rng = np.random.default_rng(seed)
    frames = np.array([expose(truth, "dark", EXPTIME_S, TEMP_C, rng) for _ in range(n)], float)
    level = truth.true_dark_adu(EXPTIME_S, TEMP_C)
    cosmics = []
    for i in range(n_cosmics):
        k, y, x = i % n, 1 + 5 * i % (ny - 2), 2 + 13 * i % (nx - 4)
        if (y, x) in hot:
            continue
        frames[k, y, x] += 8000.0 + 1000 * i
        cosmics.append((k, y, x))
    sat = []
    if saturate:
        frames[:, ny - 2, nx - 3] = 70000.0
        sat.append((ny - 2, nx - 3))
    return frames, level, hot, cosmics, sat


def header(exptime: float = 60.0, temp: float = -10.0, **extra) -> fits.Header:
    h = fits.Header()
    h["IMAGETYP"] = extra.pop("imagetyp", "Dark Frame")
    h["EXPTIME"] = exptime
    h["CCD-TEMP"] = temp
    h["SET-TEMP"] = extra.pop("set_temp", -10.0)
    h["INSTRUME"] = extra.pop("instrument", "TestCam")
    h["GAIN"] = extra.pop("gain", 100)
    h["OFFSET"] = extra.pop("offset", 50)
    h["XBINNING"] = extra.pop("xbin", 1)
    h["YBINNING"] = extra.pop("ybin", 1)
    egain = extra.pop("egain", 1.0)
    if egain is not None:
        h["EGAIN"] = egain
    for key, value in extra.items():
        h[key.upper().replace("_", "-")] = value
    return h


def write_u16(path: Path, frame: np.ndarray, hdr: fits.Header | None = None) -> Path:
    """Unsigned 16-bit file (BITPIX=16, BZERO=32768), as capture programs write them."""
    data = np.clip(np.round(frame), 0, 65535).astype(np.uint16)
    fits.PrimaryHDU(data, hdr if hdr is not None else header()).writeto(path)
    return path


def write_darks(
    tmp: Path,
    n: int = 8,
    shape: tuple[int, int] = (40, 50),
    *,
    seed: int = 1,
    prefix: str = "dark",
    headers: list[fits.Header] | None = None,
    **kw,
) -> DarkSet:
    """``n`` uint16 dark files with truth in ``tmp``."""
    frames, truth, hot, cosmics, sat = make_frames(n, shape, seed=seed, **kw)
    tmp.mkdir(parents=True, exist_ok=True)
    paths = []
    stored = np.clip(np.round(frames), 0, 65535)
    for k in range(n):
        h = (
            headers[k]
            if headers
            else header(temp=-10.0 + 0.05 * k, date_obs=f"2024-03-01T01:{k:02d}:00")
        )
        paths.append(write_u16(tmp / f"{prefix}_{k:03d}.fits", stored[k], h))
    return DarkSet(paths, stored, truth, hot, cosmics, sat)


def planes_bytes(master) -> dict[str, bytes]:
    out = {}
    for attr in PLANE_ATTRS:
        value = getattr(master, attr)
        out[attr] = None if value is None else value.tobytes()
    return out
