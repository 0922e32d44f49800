"""Per-pixel sensor physics: fixed maps of one camera and the exposure of one frame.

:func:`make_sensor_truth` draws the fixed properties of a physical camera (dark-current map with
a hot-pixel tail and defect columns, amp-glow map, bias frame with its column and pixel pattern,
flickering pixels). :func:`expose` turns those maps plus an exposure time, a sensor temperature
and an optional sky (in electrons) into a saved frame:

1. electrons: ``D0 * 2**((T - Tref)/Td) * t + glow * t + sky``, Poisson shot noise on all of it,
   flickering (random telegraph) pixels, cosmic-ray tracks;
2. response: clipped at full well, with a smooth roll-off above ``nonlinearity_start * full_well``;
3. readout: Gaussian read noise (e-), conversion with the gain (e-/ADU), the bias frame, a
   per-frame random row banding;
4. digitisation: quantised to the ADC step, clipped to ``[0, saturation]``, ``uint16``.

Everything is vectorised numpy; randomness only comes from the ``rng`` argument, so the same
generator state gives the same frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from darkflow.exceptions import ConfigError
from darkflow.simulate.sensors import SensorModel

__all__ = [
    "FRAME_KINDS",
    "Exposure",
    "SensorTruth",
    "apply_nonlinearity",
    "expose",
    "expose_detailed",
    "make_sensor_truth",
]

FRAME_KINDS = ("light", "dark", "bias", "flat")


@dataclass(frozen=True, eq=False)
class SensorTruth:
    """The fixed, noiseless maps of one physical camera (all ``float32``, shape ``(ny, nx)``).

    Attributes
    ----------
    model
        The sensor parameters.
    dark_current_e_per_s
        Dark current at ``model.ref_temp_c`` (e-/s), hot pixels and defect columns included.
    amp_glow_e_per_s
        Amp-glow rate (e-/s), independent of temperature.
    bias_adu
        Noiseless bias frame in saved ADU, fixed column and pixel pattern included.
    hot_pixels
        ``(n, 2)`` int array of ``(y, x)`` of the hot-pixel population.
    flicker_yx, flicker_amp_e, flicker_p_on
        Random-telegraph pixels: position, extra signal when "on" (e-), probability of "on".
    defect_columns
        ``(n, 2)`` int array of ``(x, y_start)``: hot from ``y_start`` to the last row.
    """

    model: SensorModel
    dark_current_e_per_s: np.ndarray
    amp_glow_e_per_s: np.ndarray
    bias_adu: np.ndarray
    hot_pixels: np.ndarray
    flicker_yx: np.ndarray
    flicker_amp_e: np.ndarray
    flicker_p_on: np.ndarray
    defect_columns: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)`` of the sensor."""
        return self.model.shape

    def dark_current_at(self, temp_c: float) -> np.ndarray:
        """Dark-current map (e-/s, float64) at sensor temperature ``temp_c``."""
        return self.dark_current_e_per_s.astype(np.float64) * self.model.dark_scale(temp_c)

    def dark_electrons(self, exptime_s: float, temp_c: float) -> np.ndarray:
        """Expected dark signal (dark current + amp glow) in electrons."""
        return (self.dark_current_at(temp_c) + self.amp_glow_e_per_s) * float(exptime_s)

    def true_dark_adu(self, exptime_s: float, temp_c: float) -> np.ndarray:
        """Expected noiseless dark frame in ADU, before clipping (bias + dark signal / gain)."""
        return self.bias_adu.astype(np.float64) + self.dark_electrons(exptime_s, temp_c) / float(
            self.model.egain_e_per_adu
        )

    def __repr__(self) -> str:
        return (
            f"<SensorTruth {self.model.name} {self.shape[0]}x{self.shape[1]} "
            f"hot={len(self.hot_pixels)} flicker={len(self.flicker_yx)}>"
        )


def _amp_glow_map(model: SensorModel) -> np.ndarray:
    ny, nx = model.shape
    if model.amp_glow_e_per_s <= 0:
        return np.zeros((ny, nx), dtype=np.float32)
    cy = 0 if model.amp_glow_corner.startswith("top") else ny - 1
    cx = 0 if model.amp_glow_corner.endswith("left") else nx - 1
    yy, xx = np.ogrid[:ny, :nx]
    r = np.hypot(yy - cy, xx - cx) / np.hypot(ny, nx)
    return (model.amp_glow_e_per_s * np.exp(-r / model.amp_glow_scale)).astype(np.float32)


def make_sensor_truth(model: SensorModel, rng: np.random.Generator) -> SensorTruth:
    """Draw the fixed maps of one physical camera from ``rng``."""
    ny, nx = model.shape
    n = ny * nx
    dark = model.dark_current_e_per_s * np.exp(rng.normal(0.0, model.dark_sigma_log, (ny, nx)))
    hot = rng.random((ny, nx)) < model.hot_fraction
    n_hot = int(hot.sum())
    dark[hot] = (
        model.dark_current_e_per_s
        * model.hot_factor
        * np.exp(rng.normal(0.0, model.hot_sigma_log, n_hot))
    )
    defects = np.zeros((0, 2), dtype=np.int64)
    if model.column_defects > 0:
        cols = rng.choice(nx, size=min(model.column_defects, nx), replace=False)
        starts = rng.integers(0, ny // 2, size=len(cols))
        for x, y0 in zip(cols, starts, strict=True):
            dark[y0:, x] *= model.column_defect_factor
        defects = np.column_stack([cols, starts]).astype(np.int64)
    column = rng.normal(0.0, model.column_pattern_adu, nx)
    pixel = rng.normal(0.0, model.pixel_pattern_adu, (ny, nx))
    bias = model.bias_adu + column[None, :] + pixel
    n_flicker = min(model.flicker_pixels, n - n_hot)
    candidates = np.flatnonzero(~hot.ravel())
    flat_idx = np.sort(rng.choice(candidates, size=n_flicker, replace=False))
    flicker_yx = np.column_stack(np.unravel_index(flat_idx, (ny, nx))).astype(np.int64)
    flicker_amp = model.flicker_amp_e * rng.uniform(0.7, 1.3, n_flicker)
    flicker_p = np.full(n_flicker, model.flicker_p_on)
    return SensorTruth(
        model=model,
        dark_current_e_per_s=dark.astype(np.float32),
        amp_glow_e_per_s=_amp_glow_map(model),
        bias_adu=bias.astype(np.float32),
        hot_pixels=np.argwhere(hot).astype(np.int64),
        flicker_yx=flicker_yx.reshape(-1, 2),
        flicker_amp_e=flicker_amp,
        flicker_p_on=flicker_p,
        defect_columns=defects,
    )


def apply_nonlinearity(electrons: np.ndarray, model: SensorModel) -> np.ndarray:
    """Response of the pixel: linear, then a smooth roll-off to the full well.

    Below ``knee = nonlinearity_start * full_well`` the response is the identity; above it
    ``knee + (fw - knee) * (1 - exp(-(e - knee) / (fw - knee)))``, which is continuous with
    slope 1 at the knee and tends to the full well. With ``nonlinearity_start == 1`` the
    response is a hard clip at the full well.
    """
    fw = float(model.full_well_e)
    knee = model.nonlinearity_start * fw
    out = np.minimum(electrons, fw) if knee >= fw else electrons.copy()
    if knee < fw:
        high = out > knee
        if np.any(high):
            span = fw - knee
            out[high] = knee + span * (1.0 - np.exp(-(out[high] - knee) / span))
    return out


def _cosmic_deposit(
    model: SensorModel, window_s: float, rng: np.random.Generator
) -> tuple[np.ndarray | None, int]:
    """Cosmic-ray tracks and blobs in electrons (``None`` when no hit)."""
    ny, nx = model.shape
    n_hits = int(rng.poisson(model.cosmic_rate_per_cm2_s * model.area_cm2 * window_s))
    if n_hits == 0:
        return None, 0
    ys, xs, es = [], [], []
    for _ in range(n_hits):
        y0, x0 = rng.uniform(0, ny), rng.uniform(0, nx)
        length = int(rng.integers(1, 7))
        energy = np.maximum(rng.lognormal(np.log(2500.0), 0.6, length), 300.0)
        if length == 1:  # a blob: the hit pixel and a halo in its 4 neighbours
            yc, xc = int(y0), int(x0)
            ys += [yc, yc - 1, yc + 1, yc, yc]
            xs += [xc, xc, xc, xc - 1, xc + 1]
            halo = np.maximum(energy[0] * rng.uniform(0.08, 0.3, 4), 150.0)
            es += [energy[0], *halo]
        else:  # a straight track
            angle = rng.uniform(0, np.pi)
            steps = np.arange(length)
            ys += list((y0 + steps * np.sin(angle)).astype(int))
            xs += list((x0 + steps * np.cos(angle)).astype(int))
            es += list(energy)
    y, x, e = np.asarray(ys), np.asarray(xs), np.asarray(es)
    inside = (y >= 0) & (y < ny) & (x >= 0) & (x < nx)
    deposit = np.zeros(ny * nx)
    np.add.at(deposit, y[inside] * nx + x[inside], e[inside])
    deposit = deposit.reshape(ny, nx)
    return deposit, int(np.count_nonzero(deposit))


@dataclass(frozen=True, eq=False)
class Exposure:
    """A simulated frame with what went into it.

    ``data`` is ``uint16`` (or ``float64`` expected values for a noiseless exposure),
    ``n_cosmic_pixels`` the pixels hit by cosmic rays, ``cosmic_e`` their deposit (e-),
    ``flicker_on`` which flickering pixels were "on", ``row_offsets_adu`` the row banding.
    """

    data: np.ndarray
    n_cosmic_pixels: int
    cosmic_e: np.ndarray | None
    flicker_on: np.ndarray
    row_offsets_adu: np.ndarray


def expose_detailed(
    truth: SensorTruth,
    kind: str,
    exptime_s: float,
    temp_c: float,
    rng: np.random.Generator,
    sky_e: np.ndarray | None = None,
    *,
    noiseless: bool = False,
) -> Exposure:
    """Simulate one frame and return it with its ingredients (see :func:`expose`)."""
    if kind not in FRAME_KINDS:
        raise ConfigError(f"unknown frame kind {kind!r}; expected one of {FRAME_KINDS}")
    if not np.isfinite(exptime_s) or exptime_s < 0:
        raise ConfigError(f"exposure time must be a finite number >= 0, got {exptime_s!r}")
    model = truth.model
    if sky_e is not None and np.shape(sky_e) != model.shape:
        raise ConfigError(f"sky_e has shape {np.shape(sky_e)}, the sensor {model.shape}")
    signal = truth.dark_electrons(exptime_s, temp_c)
    if sky_e is not None:
        signal = signal + np.asarray(sky_e, dtype=np.float64)
    gain = float(model.egain_e_per_adu)
    if noiseless:
        data = truth.bias_adu.astype(np.float64) + signal / gain
        empty = np.zeros(0, dtype=bool)
        return Exposure(data, 0, None, empty, np.zeros(model.ny))

    electrons = rng.poisson(np.maximum(signal, 0.0)).astype(np.float64)
    flicker_on = rng.random(len(truth.flicker_yx)) < truth.flicker_p_on
    if flicker_on.any():
        fy, fx = truth.flicker_yx[flicker_on].T
        electrons[fy, fx] += truth.flicker_amp_e[flicker_on]
    cosmic, n_cosmic = _cosmic_deposit(model, exptime_s + model.cosmic_readout_s, rng)
    if cosmic is not None:
        electrons += cosmic
    electrons = apply_nonlinearity(electrons, model)
    electrons += rng.normal(0.0, model.read_noise_e, model.shape)
    rows = rng.normal(0.0, model.row_banding_adu, model.ny)
    adu = truth.bias_adu + electrons / gain + rows[:, None]
    step = model.adc_step_adu
    codes = np.clip(np.rint(adu / step), 0, 2**model.adc_bits - 1)
    data = (codes * step).astype(np.uint16)
    return Exposure(data, n_cosmic, cosmic, flicker_on, rows)


def expose(
    truth: SensorTruth,
    kind: str,
    exptime_s: float,
    temp_c: float,
    rng: np.random.Generator,
    sky_e: np.ndarray | None = None,
    *,
    noiseless: bool = False,
) -> np.ndarray:
    """Simulate one frame of a camera.

    Parameters
    ----------
    truth
        Fixed maps of the camera (:func:`make_sensor_truth`).
    kind
        ``"light"``, ``"dark"``, ``"bias"`` or ``"flat"``. Only ``sky_e`` distinguishes a light
        from a dark; the kind is validated and recorded by callers.
    exptime_s
        Exposure time (s); dark current and amp glow grow linearly with it.
    temp_c
        Effective (true) sensor temperature during the exposure (°C).
    rng
        The only source of randomness.
    sky_e
        Optional noiseless photo-electrons from the sky (stars, nebula, background), same shape.
    noiseless
        Return the expected value instead (``float64`` ADU: bias + signal / gain), without
        noise, cosmics, flicker, banding, non-linearity, quantisation or clipping.

    Returns
    -------
    numpy.ndarray
        ``uint16`` frame in saved ADU (``float64`` when ``noiseless``).
    """
    return expose_detailed(truth, kind, exptime_s, temp_c, rng, sky_e, noiseless=noiseless).data
