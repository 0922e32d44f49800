"""e-/ADU from two consecutive lights: photon transfer on their difference.

A single light's pixel-to-pixel variance holds its sky's shot noise and everything fixed in the
scene or the sensor (nebulosity, the response non-uniformity, the dark model's pattern), which
:func:`darkflow.subtract.gain.gain_from_light` can only partly cancel. Two lights of one session
and configuration (same exposure, sky levels close) see the same fixed pattern: their
difference keeps their noise and little else.

The inputs are the two lights less their dark models (the calibrated lights without their
pedestal): ``a = sky_a + n_a``, ``b = sky_b + n_b``. Per tile, with the sources of either frame
left out, ``b`` is scaled to ``a``'s level (``k = S_a / S_b``, the tiles' sky levels: clipped
means, :func:`_level`), so
a fixed pattern that follows the level (response non-uniformity, nebulosity dimmed by
transparency) cancels; a quadratic surface fitted to ``a - k b`` in the tile takes away what
follows neither (a sky gradient growing between the frames, the slight shift of smooth
nebulosity by a dither). Then

    var(a - k b) = (S_a + k² S_b) / g + (1 + k²) R + (1 - k)² M

``R`` is the per-frame variance of everything but the sky's shot noise: the read noise and the
dark current's shot noise at the lights' exposure. ``M`` is the subtracted dark model's own
noise. Two lights calibrated with the same model carry the same model noise, which cancels in
their difference exactly as it does in the difference of the raw lights (``a - b`` is the raw
difference when ``k = 1``): ``R`` must *not* hold the model's noise, unlike the floor of a
single calibrated light. Only the ``(1 - k)`` part of the model that the level scaling leaves
is added back. The gain is ``sum (S_a + k² S_b) / sum (V - (1 + k²) R - (1 - k)² M)`` over the
tiles (and pairs), its uncertainty a jackknife over the tiles. A colour (Bayer) frame is
measured per colour phase (each phase's tiles join the sums).

Tiles whose raw level is within :data:`SATURATION_MARGIN` sigmas of the clip are left out
(``clip``); the quantization of the stored values adds a systematic (:func:`lattice_rel`); a
dark model whose level is off shows as the intercept of the tiles' excess against their
signal, and then the slope gives the gain (:func:`_offset_fit`).

The estimate is *not measured* (``None`` with a reason) when the pair has too few usable tiles
or the sky's shot noise is less than half the difference's variance (a faint sky: the result
would hang on ``R``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from darkflow.model import GainEstimate
from darkflow.subtract.gain import _clipped_var

__all__ = [
    "LIGHT_PAIRS",
    "PairGainCheck",
    "PairTiles",
    "check_header_gain",
    "gain_from_light_pairs",
    "pair_tiles",
]

LIGHT_PAIRS = "light_pairs"

MIN_TILES = 16
"""Fewest tiles behind an estimate: the jackknife's own spread (``m - 1`` degrees of freedom)
enters the gate through Student's t."""

SYSTEMATIC_REL = 0.01
"""Relative systematic uncertainty added to the jackknife's: what a difference cannot cancel
biases the gain low (more variance than shot noise). In simulations with 2 % PRNU, a bright
nebula (blobs of 500-3000 e- against a 3000 e- sky, 25-60 px wide) dithered by up to 6 px
between the frames and 30 stars, the estimate is ~1 % low (the response pattern times the
moved nebulosity; ``tests/test_lightpair.py``); without the nebula it is unbiased."""

MIN_SHOT_SHARE = 0.5
"""Least share of the difference's variance that must be the sky's shot noise: below it the
estimate is mostly a statement about ``R``."""

MIN_CFA_TILE = 8
"""Smallest tile edge (pixels of a colour plane) of a Bayer pair: a pair with fewer than
:data:`MIN_TILES` usable tiles is measured again with tiles half the size, down to this (64
pixels, 6 of them spent on the tile's quadratic surface)."""

MAX_TILES = 512
"""Tiles measured per colour plane and pair, evenly spread over the frame."""

SATURATION_MARGIN = 4.0
"""A tile whose raw level plus this many of its pixels' sigmas reaches the light's clip level
(the ADC's full scale, ``SATURATE``) is left out: its top is cut, its variance too low (a
sky near full scale read 0.058 e-/ADU against a true 0.020). Above 4 sigma less than 3e-5 of
a Gaussian's pixels are cut, a variance loss under 1e-3."""

LATTICE_STEPS = (64, 32, 16, 8, 4, 2)
"""Quantization steps looked for in a pair's difference (an ADC of 10 to 15 bits scaled to
16: its stored values are multiples of the step, and so is the raw difference)."""

OFFSET_SIGMA = 3.0
"""An intercept of the tiles' excess against their signal beyond this many of its sigmas
shows an offset of the dark-subtracted sky level (:func:`_offset_fit`)."""

JACKKNIFE_GROUPS = 32
"""Groups of tiles of the slope's jackknife (delete one group)."""

_LINE_TERMS = 2

LEVEL_CLIP = 5.0
"""Half-width (sigmas) of the symmetric clip of a tile's level (:func:`_level`)."""

_FIT_TERMS = 6  # quadratic surface per tile
_DETECT = 5.0


@dataclass(frozen=True)
class PairTiles:
    """Per-tile sums of one pair: ``signal`` (``S_a + k² S_b``), ``excess`` (the variance of
    the difference less the read and model terms) and ``variance`` (the difference's);
    ``saturated``: tiles left out for their raw level's nearness to the clip
    (:data:`SATURATION_MARGIN`); ``lattice_rel``: the relative systematic uncertainty of the
    gain from the quantization of the stored values (:func:`lattice_rel`)."""

    signal: np.ndarray
    excess: np.ndarray
    variance: np.ndarray
    saturated: int = 0
    lattice_rel: float = 0.0

    @classmethod
    def empty(cls) -> PairTiles:
        """No tiles."""
        z = np.zeros(0)
        return cls(z, z, z)

    def __add__(self, other: PairTiles) -> PairTiles:
        return PairTiles(
            np.concatenate([self.signal, other.signal]),
            np.concatenate([self.excess, other.excess]),
            np.concatenate([self.variance, other.variance]),
            self.saturated + other.saturated,
            max(self.lattice_rel, other.lattice_rel),
        )


def _quadratic_design(n: int) -> np.ndarray:
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    yy = (yy - (n - 1) / 2.0) / n
    xx = (xx - (n - 1) / 2.0) / n
    cols = [np.ones_like(yy), yy, xx, yy * yy, xx * xx, yy * xx]
    return np.stack([c.ravel() for c in cols], axis=1)


def _sources(plane: np.ndarray, tiles: list[tuple[int, int]], tile: int) -> np.ndarray:
    """Sources of one colour plane, told from the noise without favouring a pixel's own noise.

    A mask chosen from a frame's own pixels (above the level by ``k`` sigma) takes out that
    frame's upward noise excursions with the sources, which makes the difference's variance too
    low (a gain too high). Here the frame is smoothed (3x3 mean: a pixel weighs 1/9 of its own
    test), a quadratic surface per tile takes the sky's gradient and smooth nebulosity out, and
    pixels more than 5 of the smoothed residual's sigmas above it are sources (noise alone:
    ~3e-7 of the pixels), grown by 3 pixels.
    """
    from scipy.ndimage import binary_dilation, uniform_filter

    from darkflow.stats import mad_std

    finite = np.isfinite(plane)
    fill = float(np.median(plane[finite])) if finite.any() else 0.0
    filled = np.where(finite, plane, fill)
    smooth = uniform_filter(filled, size=3, mode="nearest")
    design = _quadratic_design(tile)
    source = np.zeros(plane.shape, dtype=bool)
    for y0, x0 in tiles:
        sl = np.s_[y0 : y0 + tile, x0 : x0 + tile]
        # the pixels' noise from differences of neighbouring rows (structure cancels), a 3x3
        # mean's a third of it: nebulosity that the surface does not follow must not raise
        # the threshold and hide the faint stars on it
        rows = np.diff(filled[sl], axis=0)
        s = mad_std(rows.ravel()) / math.sqrt(2.0) / 3.0
        if not s > 0:
            continue
        v = smooth[sl].ravel()
        use = np.ones(v.size, dtype=bool)
        for _ in range(2):  # a fit, then again without what stands out of it
            coef = _fit(design, v, use)
            r = v - design @ coef
            use = np.abs(r) < 3.0 * s
            if np.count_nonzero(use) < _FIT_TERMS * 4:
                break
        source[sl] = (r > _DETECT * s).reshape(tile, tile)
    return binary_dilation(source, iterations=3) | ~finite


def _fit(design: np.ndarray, v: np.ndarray, use: np.ndarray | None = None) -> np.ndarray:
    """Least-squares coefficients of ``v ~ design`` (rows ``use``), by the normal equations
    (the design's centred, scaled terms keep them well conditioned; a LAPACK least-squares
    call per tile costs more than the tile's arithmetic)."""
    if use is not None:
        design, v = design[use], v[use]
    try:
        return np.linalg.solve(design.T @ design, design.T @ v)
    except np.linalg.LinAlgError:  # a degenerate set of pixels
        return np.linalg.lstsq(design, v, rcond=None)[0]


def _level(values: np.ndarray, k: float = LEVEL_CLIP) -> float:
    """A tile's sky level: the mean after a symmetric ``k``-sigma clip around the mean.

    Not the median: on coarsely quantized pixels (an ADC of 12 or 14 bits scaled to 16, a
    faint sky of a few steps) the median sits on the lattice of the stored values, off the
    level by up to half a step; the mean of the quantized values is the level (the noise
    dithers the lattice, see :func:`lattice_bias`). The clip is symmetric and wide, so a
    Poisson sky loses nothing of its mean and a cosmic-ray hit or hot pixel left unmasked
    does not move it.
    """
    v = values
    for _ in range(2):
        centre = float(np.mean(v))
        s = float(np.std(v))
        if not s > 0:
            return centre
        kept = v[np.abs(v - centre) <= k * s]
        if kept.size == v.size:
            break
        v = kept
    return float(np.mean(v))


def _tiles_of(shape: tuple[int, ...], tile: int) -> list[tuple[int, int]]:
    """The tiles of a plane, at most :data:`MAX_TILES` of them evenly spread (large frames: the
    estimate's precision does not need every tile, and the cost grows with them)."""
    ny, nx = shape
    tiles = [
        (y0, x0) for y0 in range(0, ny - tile + 1, tile) for x0 in range(0, nx - tile + 1, tile)
    ]
    step = -(-len(tiles) // MAX_TILES)
    return tiles[::step]


def _pair_sources(a: np.ndarray, b: np.ndarray, tile: int) -> np.ndarray:
    """Sources of either frame of a pair (one colour plane, or superpixels)."""
    tiles = _tiles_of(a.shape, tile)
    return _sources(a, tiles, tile) | _sources(b, tiles, tile)


def _plane_tiles(
    a: np.ndarray,
    b: np.ndarray,
    tile: int,
    read_variance: float,
    model_variance: float,
    mask: np.ndarray | None = None,
    clip: float | None = None,
) -> PairTiles:
    """:class:`PairTiles` of one colour plane of a pair (see the module docstring); ``mask``:
    the sources, when found elsewhere (on superpixels); ``clip``: the raw clip level on the
    scale of ``a`` and ``b`` (tiles near it are left out and counted)."""
    tiles = _tiles_of(a.shape, tile)
    if mask is None:
        mask = _pair_sources(a, b, tile)
    mask = mask | ~(np.isfinite(a) & np.isfinite(b))
    design = _quadratic_design(tile)
    sig, exc, var = [], [], []
    saturated = 0
    for y0, x0 in tiles:
        sl = np.s_[y0 : y0 + tile, x0 : x0 + tile]
        keep = ~mask[sl].ravel()
        n = int(np.count_nonzero(keep))
        if n < tile * tile // 2:
            continue
        ta, tb = a[sl].ravel()[keep], b[sl].ravel()[keep]
        sa, sb = _level(ta), _level(tb)
        if not (sa > 0 and sb > 0):
            continue
        if clip is not None and _near_clip(ta, tb, sa, sb, clip):
            saturated += 1
            continue
        k = sa / sb
        d = ta - k * tb
        coef = _fit(design[keep], d)
        v, kept = _clipped_var(d - design[keep] @ coef)
        if kept < tile * tile // 2 or not math.isfinite(v):
            continue
        v *= (kept - 1) / max(kept - _FIT_TERMS, 1)  # the surface's fitted terms
        sig.append(sa + k * k * sb)
        var.append(v)
        exc.append(v - (1.0 + k * k) * read_variance - (1.0 - k) ** 2 * model_variance)
    return PairTiles(np.array(sig), np.array(exc), np.array(var), saturated)


def _near_clip(ta: np.ndarray, tb: np.ndarray, sa: float, sb: float, clip: float) -> bool:
    """Whether either frame's tile level plus :data:`SATURATION_MARGIN` of its spread reaches
    the clip (the spread of the tile's pixels: its noise and what the sky's structure adds)."""
    top = max(
        sa + SATURATION_MARGIN * float(np.std(ta)), sb + SATURATION_MARGIN * float(np.std(tb))
    )
    return top >= clip or max(float(np.max(ta)), float(np.max(tb))) >= clip


def lattice_step(a: np.ndarray, b: np.ndarray) -> int:
    """The quantization step of a pair's stored values, read on their difference.

    Two lights less one dark model differ by their raw difference, a multiple of the step of
    the stored values (float32 rounding aside); the largest of :data:`LATTICE_STEPS` that 99 %
    of the finite differences are multiples of, else 1.
    """
    d = (a - b)[np.isfinite(a) & np.isfinite(b)]
    if d.size < 64:
        return 1
    d = d[:: max(d.size // 20000, 1)]  # a sample is enough
    tol = 1e-3 * (1.0 + np.abs(d))
    for step in LATTICE_STEPS:
        off = np.abs(d / step - np.rint(d / step)) * step
        if np.mean(off <= tol) >= 0.99:
            return step
    return 1


def lattice_rel(step: int, level: float, excess: float, light_var: float, read_var: float) -> float:
    """Relative uncertainty of the gain from a quantization step ``step`` (ADU).

    A Gaussian of width ``s`` quantized with step ``D`` has a mean and a variance off the
    analogue ones (``+ D²/12``) by at most ``(D/pi) exp(-2 pi² s² / D²)`` and
    ``(D²/pi²) exp(-2 pi² s² / D²)`` (the first Fourier term of the lattice; Widrow's
    quantization theorem): nothing once the noise is half a step wide, a bias when it is much
    narrower. The light's own noise (``light_var``, per frame) and the darks' (``read_var``)
    each carry their terms: the sky level (per frame ``level``) is off by both means' errors,
    the shot-noise excess of the difference (``excess``) by twice both variances'.
    """
    if step <= 1 or not (level > 0 and excess > 0):
        return 0.0
    q = step * step / 12.0
    terms = [
        math.exp(-2.0 * math.pi**2 * max(v - q, 0.0) / (step * step)) for v in (light_var, read_var)
    ]
    d_level = step / math.pi * sum(terms)
    d_excess = 2.0 * (step / math.pi) ** 2 * sum(terms)
    return math.hypot(d_level / level, d_excess / excess)


def pair_tiles(
    a: np.ndarray,
    b: np.ndarray,
    *,
    read_variance: float,
    model_variance: float = 0.0,
    cfa: bool = False,
    tile: int = 32,
    clip: float | None = None,
) -> PairTiles:
    """Per-tile photon-transfer sums of one pair of dark-subtracted lights (pedestal removed).

    ``read_variance``: per-frame variance of a pixel but its sky's shot noise (read noise and
    the dark current's shot noise at the lights' exposure, ADU²), *not* the subtracted model's
    noise, which cancels in the difference; ``model_variance``: that model noise (its
    ``(1 - k)²`` share is added back). ``cfa``: measured per colour phase, tiles of
    ``tile // 2`` (halved down to :data:`MIN_CFA_TILE` while fewer than :data:`MIN_TILES` are
    usable: a small frame crowded with sources). ``clip``: the raw clip level (saturation) on
    the scale of ``a`` and ``b`` (the clip less the dark model's level): tiles within
    :data:`SATURATION_MARGIN` sigmas of it are left out (``saturated`` counts them). The
    quantization step of the stored values (:func:`lattice_step`) gives the estimate a
    systematic uncertainty (``lattice_rel``) where the noise is narrower than the step.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        return PairTiles.empty()
    if not cfa:
        # at least ~36 tiles where the frame allows (the jackknife over a dozen tiles
        # understates the spread of a ratio: 9 % false alarms at a stated 5 % with 14 tiles)
        t = max(16, min(tile, math.isqrt(a.size // 36)))
        out = _plane_tiles(a, b, t, read_variance, model_variance, clip=clip)
    else:
        # a small colour frame crowded with stars (or nebulosity) leaves few tiles with half
        # their pixels free: smaller tiles fit between the sources. The size depends on how
        # many tiles are usable, never on the gain they give, so the estimate's spread is
        # what it states
        half = max(tile // 2, MIN_CFA_TILE)
        while True:
            out = _cfa_tiles(a, b, half, read_variance, model_variance, clip)
            if out.signal.size >= MIN_TILES or half // 2 < MIN_CFA_TILE:
                break
            half //= 2
    return _with_lattice(out, lattice_step(a, b), read_variance)


def _with_lattice(out: PairTiles, step: int, read_variance: float) -> PairTiles:
    """``out`` with the lattice's relative systematic of its tiles (pooled sums)."""
    if step <= 1 or out.signal.size == 0:
        return out
    n = out.signal.size
    rel = lattice_rel(
        step,
        float(np.sum(out.signal)) / (2.0 * n),
        float(np.sum(out.excess)) / n,
        float(np.sum(out.variance)) / (2.0 * n),
        read_variance,
    )
    return PairTiles(out.signal, out.excess, out.variance, out.saturated, rel)


def _cfa_tiles(
    a: np.ndarray,
    b: np.ndarray,
    half: int,
    read_variance: float,
    model_variance: float,
    clip: float | None = None,
) -> PairTiles:
    """:class:`PairTiles` of the four colour phases of a Bayer pair, tiles of ``half``."""
    # sources found on superpixels (the four colours summed): a faint star's light falls on
    # one or two pixels of a colour plane, below any per-plane detection, and its move
    # between the frames would count as noise
    ny, nx = (a.shape[0] // 2) * 2, (a.shape[1] // 2) * 2

    def superpixels(f: np.ndarray) -> np.ndarray:
        f = f[:ny, :nx]
        return f[0::2, 0::2] + f[0::2, 1::2] + f[1::2, 0::2] + f[1::2, 1::2]

    mask = _pair_sources(superpixels(a), superpixels(b), half)
    out = PairTiles.empty()
    for dy in (0, 1):
        for dx in (0, 1):
            out = out + _plane_tiles(
                a[dy:ny:2, dx:nx:2],
                b[dy:ny:2, dx:nx:2],
                half,
                read_variance,
                model_variance,
                mask,
                clip,
            )
    return out


def gain_from_light_pairs(
    pairs: Sequence[PairTiles],
    *,
    min_tiles: int = MIN_TILES,
    systematic_rel: float = SYSTEMATIC_REL,
) -> tuple[GainEstimate | None, str | None, int]:
    """The gain of the pooled tiles of ``pairs`` (:func:`pair_tiles`), its uncertainty (the
    jackknife over the tiles and ``systematic_rel`` in quadrature), and the number of tiles; or
    ``None`` with the reason it is not measured (``too_few_tiles``, ``sky_too_faint``). The
    quantization's systematic (``lattice_rel`` of the pairs, the largest) joins in quadrature."""
    tiles = PairTiles.empty()
    for p in pairs:
        tiles = tiles + p
    systematic_rel = math.hypot(systematic_rel, tiles.lattice_rel)
    s, e, v = tiles.signal, tiles.excess, tiles.variance
    ok = np.isfinite(s) & np.isfinite(e) & np.isfinite(v)
    s, e, v = s[ok], e[ok], v[ok]
    m = int(s.size)
    if m < min_tiles:
        return None, "too_few_tiles", m
    total_s, total_e = float(np.sum(s)), float(np.sum(e))
    if not (total_s > 0 and total_e > MIN_SHOT_SHARE * float(np.sum(v))):
        return None, "sky_too_faint", m
    jack = (total_s - s) / (total_e - e)
    sd = math.sqrt((m - 1) / m * float(np.sum((jack - jack.mean()) ** 2)))
    g = total_s / total_e
    offset = _offset_fit(s, e)
    if offset is not None:
        g, sd = offset
    sd = math.hypot(sd, systematic_rel * g)
    return GainEstimate(g, sd, LIGHT_PAIRS, 2 * len(pairs)), None, m


def _line(s: np.ndarray, e: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and intercept of ``e ~ s``."""
    sc = s - s.mean()
    slope = float(np.sum(sc * (e - e.mean())) / np.sum(sc * sc))
    return slope, float(e.mean() - slope * s.mean())


def _offset_fit(s: np.ndarray, e: np.ndarray) -> tuple[float, float] | None:
    """The gain from the slope of the tiles' excess against their signal, with its
    uncertainty (a grouped jackknife), where the intercept shows an offset of the sky level;
    ``None`` where it does not (the ratio of the sums stands).

    The ratio ``sum S / sum E`` takes the dark-subtracted level for the sky: a dark model whose
    level is off (another night's bias, a few ADU; dark current at another temperature) moves
    ``S`` and not ``E``, and under a faint sky the ratio then misses by far more than its
    spread (a zoo night's 30 s colour lights, bias 2-4 ADU off under a 38 ADU sky: 0.38
    against a true 0.43, 10 sigma). ``E = S / g + c`` with ``c = -(1 + k²) offset / g`` is
    what the tiles follow. The intercept is tested with the jackknife's spread (at
    :data:`OFFSET_SIGMA`); where it stands out, the slope's ``1 / g`` is the estimate, with
    the larger uncertainty that the sky's range of levels (gradient, colour phases, nebula)
    allows.
    """
    m = s.size
    groups = min(m, JACKKNIFE_GROUPS)
    if m < 2 * _LINE_TERMS or not float(np.ptp(s)) > 0:
        return None
    slope, intercept = _line(s, e)
    if not slope > 0:
        return None
    labels = np.arange(m) % groups
    parts = np.array([_line(s[labels != j], e[labels != j]) for j in range(groups)])
    scale = (groups - 1) / groups
    sd_c = math.sqrt(scale * float(np.sum((parts[:, 1] - parts[:, 1].mean()) ** 2)))
    if not (sd_c > 0 and abs(intercept) > OFFSET_SIGMA * sd_c):
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        gains = 1.0 / parts[:, 0]
    if not np.all(np.isfinite(gains) & (gains > 0)):
        return None
    sd = math.sqrt(scale * float(np.sum((gains - gains.mean()) ** 2)))
    return 1.0 / slope, sd


@dataclass(frozen=True)
class PairGainCheck:
    """The header's EGAIN against the light-pair gain: ``z = |ln(g_hdr / g_pair)| / sigma``
    (``sigma`` the pair estimate's relative uncertainty and the header's stated trust in
    quadrature), failed above ``threshold`` (Student's t quantile of the false-alarm
    probability with the jackknife's ``tiles - 1`` degrees of freedom, on the normal scale)."""

    measured: bool
    failed: bool = False
    z: float | None = None
    threshold: float | None = None
    pair: GainEstimate | None = None
    reason: str | None = None  # why not measured


def check_header_gain(
    header: GainEstimate | None,
    pair: GainEstimate | None,
    tiles: int,
    *,
    false_alarm: float,
    not_measured: str | None = None,
) -> PairGainCheck:
    """Two-sided test of the header's gain against the light-pair gain at ``false_alarm``."""
    # scipy.stats' t.isf and norm.isf, without its import (~0.8 s in every night's driver)
    from darkflow.stats._dist import norm_isf, t_isf

    if pair is None:
        return PairGainCheck(False, reason=not_measured or "no_pair_gain")
    if header is None or not header.value > 0:
        return PairGainCheck(False, pair=pair, reason="no_header_gain")
    sigma = math.hypot(pair.rel_sigma, header.rel_sigma)
    if not (sigma > 0 and math.isfinite(sigma)):
        return PairGainCheck(False, pair=pair, reason="no_spread")
    z = abs(math.log(header.value / pair.value)) / sigma
    # the jackknife's spread is itself estimated from the tiles: Student's t, on the normal
    # scale of the other gates
    dof = max(tiles - 1, 1)
    threshold = t_isf(false_alarm / 2.0, dof)
    threshold = max(threshold, norm_isf(false_alarm / 2.0))
    return PairGainCheck(True, z > threshold, round(z, 4), round(threshold, 4), pair)
