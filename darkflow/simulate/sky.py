"""The noiseless sky seen by a light frame: stars, nebulosity and a background gradient.

A :class:`TargetField` is drawn once per (camera, target): star positions and fluxes (a power
law, the brightest star fixed at ``star_flux_max_e_per_s`` so some stars saturate), and a few
smooth Gaussian nebula blobs. :func:`render_sky` renders it for one frame in electrons, with a
per-frame dither offset, seeing (Moffat FWHM), transparency and a sky gradient whose amplitude
grows through the sequence (the target sinks into the light dome).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["SkySpec", "TargetField", "make_target_field", "render_sky"]


@dataclass(frozen=True)
class SkySpec:
    """How bright and busy the sky of a target is (rates in e-/s per pixel or per star)."""

    background_e_per_s: float = 1.0
    star_density_per_mpx: float = 2500.0
    star_flux_min_e_per_s: float = 30.0
    star_flux_max_e_per_s: float = 2.0e5
    star_flux_slope: float = 0.8  # N(>F) ~ F**-slope
    fwhm_px: float = 3.0
    moffat_beta: float = 3.0
    nebula_e_per_s: float = 0.8  # peak of the brightest blob
    nebula_blobs: int = 4
    gradient: float = 0.2  # background change across the frame, as a fraction
    dither_px: float = 4.0


@dataclass(frozen=True, eq=False)
class TargetField:
    """Fixed content of a field of view (positions in pixels of the undithered frame)."""

    shape: tuple[int, int]
    spec: SkySpec
    star_y: np.ndarray
    star_x: np.ndarray
    star_flux_e_per_s: np.ndarray
    blob_y: np.ndarray
    blob_x: np.ndarray
    blob_sigma: np.ndarray
    blob_amp_e_per_s: np.ndarray
    gradient_angle: float


def make_target_field(
    shape: tuple[int, int], spec: SkySpec, rng: np.random.Generator
) -> TargetField:
    """Draw the stars and nebula blobs of one field."""
    ny, nx = shape
    n_stars = max(3, round(spec.star_density_per_mpx * ny * nx / 1e6))
    # stars may lie a little outside the frame so dithering brings them in and out
    margin = spec.dither_px + 2
    sy = rng.uniform(-margin, ny + margin, n_stars)
    sx = rng.uniform(-margin, nx + margin, n_stars)
    u = rng.uniform(0.0, 1.0, n_stars)
    flux = spec.star_flux_min_e_per_s * u ** (-1.0 / spec.star_flux_slope)
    flux = np.minimum(flux, spec.star_flux_max_e_per_s)
    brightest = int(np.argmax(flux))
    flux[brightest] = spec.star_flux_max_e_per_s
    sy[brightest] = rng.uniform(0.25 * ny, 0.75 * ny)  # keep one saturated star on the chip
    sx[brightest] = rng.uniform(0.25 * nx, 0.75 * nx)
    nb = spec.nebula_blobs
    diag = math.hypot(ny, nx)
    return TargetField(
        shape=(ny, nx),
        spec=spec,
        star_y=sy,
        star_x=sx,
        star_flux_e_per_s=flux,
        blob_y=rng.uniform(0.1 * ny, 0.9 * ny, nb),
        blob_x=rng.uniform(0.1 * nx, 0.9 * nx, nb),
        blob_sigma=rng.uniform(0.06, 0.2, nb) * diag,
        blob_amp_e_per_s=spec.nebula_e_per_s * rng.uniform(0.3, 1.0, nb),
        gradient_angle=float(rng.uniform(0, 2 * np.pi)),
    )


def _moffat_stamps(
    dy: np.ndarray, dx: np.ndarray, fwhm: float, beta: float, radius: int
) -> np.ndarray:
    """Moffat profiles (unit integral over the stamp) centred at sub-pixel offsets."""
    alpha = fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))
    off = np.arange(-radius, radius + 1, dtype=np.float64)
    ry = off[None, :, None] - dy[:, None, None]
    rx = off[None, None, :] - dx[:, None, None]
    prof = (1.0 + (ry * ry + rx * rx) / (alpha * alpha)) ** (-beta)
    return prof / prof.sum(axis=(1, 2), keepdims=True)


def render_sky(
    field: TargetField,
    exptime_s: float,
    rng: np.random.Generator,
    *,
    progress: float = 0.0,
) -> np.ndarray:
    """Noiseless sky of one light frame in electrons (``float64``).

    Parameters
    ----------
    field
        The target field.
    exptime_s
        Exposure time (s).
    rng
        Draws this frame's dither offset, seeing and transparency.
    progress
        Position of the frame in its sequence, 0 (first) to 1 (last): scales the gradient.
    """
    spec = field.spec
    ny, nx = field.shape
    dy, dx = rng.uniform(-spec.dither_px, spec.dither_px, 2)
    fwhm = spec.fwhm_px * rng.uniform(0.85, 1.2)
    transparency = rng.uniform(0.85, 1.0)
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    # background with a gradient growing through the sequence
    ramp = (xx / max(nx - 1, 1) - 0.5) * math.cos(field.gradient_angle) + (
        yy / max(ny - 1, 1) - 0.5
    ) * math.sin(field.gradient_angle)
    grad = spec.gradient * (1.0 + 0.6 * float(np.clip(progress, 0.0, 1.0)))
    rate = spec.background_e_per_s * (1.0 + grad * ramp)
    # nebulosity (moves with the dither)
    for y0, x0, s, a in zip(
        field.blob_y, field.blob_x, field.blob_sigma, field.blob_amp_e_per_s, strict=True
    ):
        rate += a * np.exp(-((yy - y0 - dy) ** 2 + (xx - x0 - dx) ** 2) / (2.0 * s * s))
    rate *= transparency
    # stars
    radius = int(min(12, max(3, math.ceil(2.5 * fwhm))))
    sy = field.star_y + dy
    sx = field.star_x + dx
    iy = np.rint(sy).astype(np.int64)
    ix = np.rint(sx).astype(np.int64)
    stamps = _moffat_stamps(sy - iy, sx - ix, fwhm, spec.moffat_beta, radius)
    stamps *= (field.star_flux_e_per_s * transparency)[:, None, None]
    off = np.arange(-radius, radius + 1)
    py = iy[:, None, None] + off[None, :, None]
    px = ix[:, None, None] + off[None, None, :]
    py, px = np.broadcast_to(py, stamps.shape), np.broadcast_to(px, stamps.shape)
    inside = (py >= 0) & (py < ny) & (px >= 0) & (px < nx)
    flat = rate.ravel()
    np.add.at(flat, py[inside] * nx + px[inside], stamps[inside])
    return flat.reshape(ny, nx) * float(exptime_s)
