"""The noiseless sky seen by a light frame: stars, nebulosity and a background gradient.

A :class:`TargetField` is drawn once per (camera, target): star positions and fluxes (a power
law, the brightest star fixed at ``star_flux_max_e_per_s`` so some stars saturate), and a few
smooth Gaussian nebula blobs. :func:`render_sky` renders it for one frame in electrons, with a
per-frame dither offset, seeing (Moffat FWHM), transparency and a sky gradient whose amplitude
grows through the sequence (the target sinks into the light dome).

Colour sensors (a :class:`ColourFilter` passed to :func:`render_sky`) see each source through
their filter array: every pixel's electrons are multiplied by its filter's response and by the
source's colour in that band (:class:`SkyColour`: a warm light-polluted background, red
emission nebulae, stars from blue to red). A :class:`SpectrumSpec` replaces the star field by a
long-slit spectrum: a few bright dispersed traces, sky emission lines across the slit, no stars.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from darkflow.simulate._serial import OMIT_AT_DEFAULT

__all__ = [
    "ColourFilter",
    "SkyColour",
    "SkySpec",
    "SpectrumSpec",
    "TargetField",
    "make_target_field",
    "render_sky",
]


@dataclass(frozen=True)
class SkyColour:
    """Colours of the sources in the R, G, B bands of a colour sensor, relative to green.

    ``background_rgb`` is the sky background (light pollution is warm: more red, less blue),
    ``nebula_rgb`` the nebulosity (emission nebulae: H-alpha makes them red). Each star gets a
    colour index ``c`` drawn around ``star_colour_mean`` (width ``star_colour_sigma``, a B-V-like
    index, clipped to [-0.3, 2.0]); its R/G is ``10**(0.25 (c - 0.65))`` and its B/G
    ``10**(-0.35 (c - 0.65))``, so a hot blue star has B/G ~2 and a red one R/G ~2.
    """

    background_rgb: tuple[float, float, float] = (1.3, 1.0, 0.8)
    nebula_rgb: tuple[float, float, float] = (1.8, 0.7, 0.6)
    star_colour_mean: float = 0.65
    star_colour_sigma: float = 0.35


@dataclass(frozen=True)
class SpectrumSpec:
    """A long-slit spectrum instead of a star field (dispersion along x, slit along y).

    The slit covers the central ``slit_fraction`` of the rows (no light outside it). Inside it:
    a faint sky continuum (``sky_e_per_s`` per pixel), ``sky_lines`` emission lines across the
    whole slit (Gaussian in x, peak ``sky_line_e_per_s`` per pixel, varying by ±15 % from frame
    to frame) and ``n_traces`` object traces (Gaussian across the slit with the seeing of the
    frame, ``trace_e_per_s`` electrons per second per column at the brightest, a smooth
    continuum with a few absorption lines). Wavelength runs from ``wavelength_nm[0]`` at
    column 0 to ``wavelength_nm[1]`` (used for the colour of a colour sensor's pixels).
    """

    n_traces: int = 3
    trace_e_per_s: float = 400.0
    slit_fraction: float = 0.85
    sky_e_per_s: float = 0.05
    sky_lines: int = 8
    sky_line_e_per_s: float = 3.0
    line_sigma_px: float = 1.2
    wavelength_nm: tuple[float, float] = (400.0, 700.0)


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
    # added after truth format 1: written to the truth only when they differ from the default
    colour: SkyColour = field(default_factory=SkyColour, metadata=OMIT_AT_DEFAULT)
    spectrum: SpectrumSpec | None = field(default=None, metadata=OMIT_AT_DEFAULT)


@dataclass(frozen=True, eq=False)
class ColourFilter:
    """A colour sensor's filter array as :func:`render_sky` needs it.

    ``channels`` is the ``(ny, nx)`` colour of every pixel (0 red, 1 green, 2 blue: see
    :meth:`darkflow.simulate.SensorModel.cfa_channels`), ``response`` the R, G, B factors
    (:attr:`~darkflow.simulate.SensorModel.cfa_response`).
    """

    channels: np.ndarray
    response: tuple[float, float, float]

    def weights(self, rgb: tuple[float, float, float] | np.ndarray) -> np.ndarray:
        """Per-pixel factor for a source of colour ``rgb`` (R, G, B relative to green)."""
        table = np.asarray(self.response, dtype=np.float64) * np.asarray(rgb, dtype=np.float64)
        return table[self.channels]


def star_rgb(colour_index: np.ndarray) -> np.ndarray:
    """``(n, 3)`` R, G, B of stars of B-V-like ``colour_index`` (see :class:`SkyColour`)."""
    c = np.asarray(colour_index, dtype=np.float64) - 0.65
    return np.column_stack([10.0 ** (0.25 * c), np.ones_like(c), 10.0 ** (-0.35 * c)])


@dataclass(frozen=True, eq=False)
class SpectrumField:
    """Fixed content of a slit spectrum: trace rows, continua, sky-line positions."""

    slit_rows: tuple[int, int]  # first row, last row + 1
    trace_y: np.ndarray
    trace_scale: np.ndarray  # relative brightness of each trace (brightest 1)
    continuum: np.ndarray  # (n_traces, nx) relative continuum with absorption lines
    line_x: np.ndarray
    line_amp: np.ndarray  # relative peak of each sky line (0.2-1)


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
    star_colour: np.ndarray | None = None  # B-V-like colour index of each star
    spectrum: SpectrumField | None = None


def _spectrum_field(shape: tuple[int, int], spec: SpectrumSpec, rng: np.random.Generator):
    ny, nx = shape
    height = max(4, round(spec.slit_fraction * ny))
    y0 = (ny - height) // 2
    n = max(1, spec.n_traces)
    # traces spread along the slit, never closer than ~8 seeing widths when there is room
    slots = np.linspace(y0 + 0.15 * height, y0 + 0.85 * height, n)
    trace_y = slots + rng.uniform(-0.04, 0.04, n) * height
    trace_scale = rng.uniform(0.3, 1.0, n)
    trace_scale[int(rng.integers(n))] = 1.0
    x = np.linspace(-1.0, 1.0, nx)
    continuum = np.empty((n, nx))
    for i in range(n):
        a, b, c = rng.normal(0.0, 0.3, 3)
        shape_x = np.clip(1.0 + a * x + b * x * x + c * x**3, 0.2, None)
        for _ in range(int(rng.integers(2, 6))):  # absorption lines
            xc, depth, width = rng.uniform(0, nx), rng.uniform(0.2, 0.7), rng.uniform(1.0, 3.0)
            shape_x *= 1.0 - depth * np.exp(-0.5 * ((np.arange(nx) - xc) / width) ** 2)
        continuum[i] = shape_x / shape_x.max()
    n_lines = max(0, spec.sky_lines)
    return SpectrumField(
        slit_rows=(y0, y0 + height),
        trace_y=trace_y,
        trace_scale=trace_scale,
        continuum=continuum,
        line_x=rng.uniform(0.03 * nx, 0.97 * nx, n_lines),
        line_amp=rng.uniform(0.2, 1.0, n_lines),
    )


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
        # drawn after everything above, so fields of truth format 1 keep their stars and blobs
        star_colour=np.clip(
            rng.normal(spec.colour.star_colour_mean, spec.colour.star_colour_sigma, n_stars),
            -0.3,
            2.0,
        ),
        spectrum=_spectrum_field(shape, spec.spectrum, rng) if spec.spectrum else None,
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


def _band_response(wavelength_nm: np.ndarray, cfa: ColourFilter) -> np.ndarray:
    """``(3, n)`` R, G, B filter transmission at each wavelength (Gaussian bands, peak 1)."""
    centres, widths = np.array([610.0, 530.0, 460.0]), np.array([40.0, 40.0, 35.0])
    bands = np.exp(-0.5 * ((wavelength_nm[None, :] - centres[:, None]) / widths[:, None]) ** 2)
    return bands * np.asarray(cfa.response, dtype=np.float64)[:, None]


def _render_spectrum(
    field: TargetField,
    exptime_s: float,
    rng: np.random.Generator,
    dy: float,
    fwhm: float,
    transparency: float,
    cfa: ColourFilter | None,
) -> np.ndarray:
    spec = field.spec.spectrum
    sf = field.spectrum
    assert spec is not None and sf is not None
    ny, nx = field.shape
    y0, y1 = sf.slit_rows
    x = np.arange(nx, dtype=np.float64)
    yy = np.arange(ny, dtype=np.float64)[:, None]
    # sky inside the slit: continuum and emission lines (their strength varies per frame)
    sky_x = np.full(nx, spec.sky_e_per_s)
    line_var = rng.uniform(0.85, 1.15, len(sf.line_x))
    for xc, amp, v in zip(sf.line_x, sf.line_amp, line_var, strict=True):
        sky_x += (
            spec.sky_line_e_per_s * amp * v * np.exp(-0.5 * ((x - xc) / spec.line_sigma_px) ** 2)
        )
    rate = np.zeros((ny, nx))
    rate[y0:y1, :] = sky_x[None, :]
    # object traces: Gaussian across the slit (seeing), guiding jitter of a tenth of the dither
    sigma = fwhm / 2.3548
    for ty, scale, cont in zip(sf.trace_y, sf.trace_scale, sf.continuum, strict=True):
        yc = ty + 0.1 * dy
        profile = np.exp(-0.5 * ((yy - yc) / sigma) ** 2) / (math.sqrt(2 * math.pi) * sigma)
        profile[:y0] = 0.0
        profile[y1:] = 0.0
        rate += spec.trace_e_per_s * scale * transparency * profile * cont[None, :]
    if cfa is not None:
        wl = np.linspace(spec.wavelength_nm[0], spec.wavelength_nm[1], nx)
        bands = _band_response(wl, cfa)  # (3, nx)
        rate *= np.take_along_axis(bands, cfa.channels.astype(np.intp), axis=0)
    return rate * float(exptime_s)


def render_sky(
    field: TargetField,
    exptime_s: float,
    rng: np.random.Generator,
    *,
    progress: float = 0.0,
    cfa: ColourFilter | None = None,
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
    cfa
        The filter array of a colour sensor: each pixel sees each source through its filter
        (:class:`ColourFilter`). ``None``: every pixel sees the same (colour-blind) sky.
    """
    spec = field.spec
    ny, nx = field.shape
    dy, dx = rng.uniform(-spec.dither_px, spec.dither_px, 2)
    fwhm = spec.fwhm_px * rng.uniform(0.85, 1.2)
    transparency = rng.uniform(0.85, 1.0)
    if field.spectrum is not None:
        return _render_spectrum(field, exptime_s, rng, dy, fwhm, transparency, cfa)
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    # background with a gradient growing through the sequence
    ramp = (xx / max(nx - 1, 1) - 0.5) * math.cos(field.gradient_angle) + (
        yy / max(ny - 1, 1) - 0.5
    ) * math.sin(field.gradient_angle)
    grad = spec.gradient * (1.0 + 0.6 * float(np.clip(progress, 0.0, 1.0)))
    rate = spec.background_e_per_s * (1.0 + grad * ramp)
    nebula_w = None
    if cfa is not None:
        rate = rate * cfa.weights(spec.colour.background_rgb)
        nebula_w = cfa.weights(spec.colour.nebula_rgb)
    # nebulosity (moves with the dither)
    for y0, x0, s, a in zip(
        field.blob_y, field.blob_x, field.blob_sigma, field.blob_amp_e_per_s, strict=True
    ):
        blob = a * np.exp(-((yy - y0 - dy) ** 2 + (xx - x0 - dx) ** 2) / (2.0 * s * s))
        rate += blob if nebula_w is None else blob * nebula_w
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
    if cfa is not None:  # each stamp pixel through its filter, in the star's colour
        colours = star_rgb(field.star_colour) * np.asarray(cfa.response)[None, :]
        ch = cfa.channels[np.clip(py, 0, ny - 1), np.clip(px, 0, nx - 1)]
        stamps = stamps * colours[np.arange(len(colours))[:, None, None], ch]
    flat = rate.ravel()
    np.add.at(flat, py[inside] * nx + px[inside], stamps[inside])
    return flat.reshape(ny, nx) * float(exptime_s)
