"""Background residuals of a calibrated frame against the predicted noise model.

``residual_analysis`` masks sources (stars, nebulosity knots, saturated cores: everything well
above a smooth background model, dilated), takes each remaining pixel against the median of its
neighbours and normalises by the predicted per-pixel uncertainty. For a correct calibration the
result is close to a unit Gaussian: ``noise_ratio`` (its robust width) near 1 and almost no
pixels in the far negative tail (over-subtracted hot pixels leave isolated holes there).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from darkflow.stats import robust_std
from darkflow.stats._robust import nanmedian as _nanmedian
from darkflow.stats._robust import nanmedian_along
from darkflow.stats.maps import background_map, neighbour_median

__all__ = [
    "HIST_EDGES",
    "NEIGHBOUR_VAR_FACTOR",
    "VERTICAL_VAR_FACTOR",
    "ResidualStats",
    "background_map",
    "batch_log_variance",
    "neighbour_median",
    "residual_analysis",
    "robust_std",
    "vertical_residual",
]

HIST_EDGES = np.linspace(-6.0, 6.0, 61)


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` dilated by a square of ``2 radius + 1`` pixels (numba, two separable passes;
    the numpy twin is the former code: the OR of shifted copies, the same mask)."""
    from darkflow.stats._masks import dilate

    return dilate(mask, radius)


@dataclass(frozen=True)
class ResidualStats:
    noise_ratio: float  # robust width of (data - background) / predicted sigma; ~1 is ideal
    neg_tail_frac: float  # fraction of background pixels more than 6 sigma below their neighbours
    source_frac: float  # fraction of pixels masked as sources (stars, nebulosity, hot residuals)
    background_frac: float  # fraction of pixels used as background
    background_adu: float
    hist_counts: list[int] = field(default_factory=list)  # over HIST_EDGES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# var(x - median of its 8 neighbours) / var(x) for independent Gaussian pixels
# (tests/test_verify.py measures it on 4 million pixels).
NEIGHBOUR_VAR_FACTOR = 1.1673

# var(x - (4 (x[-1] + x[+1]) - (x[-2] + x[+2])) / 6) / var(x) for independent pixels of equal
# variance: 1 + (16 + 16 + 1 + 1) / 36 (exact; the residual of Gaussian pixels is Gaussian).
VERTICAL_VAR_FACTOR = 1.0 + 34.0 / 36.0


# Batcher's odd-even merge sort of 8 values (19 compare-exchanges); positions 3 and 4 of the
# sorted values give the median of the 8 neighbours
SORT8 = (
    (0, 1),
    (2, 3),
    (4, 5),
    (6, 7),
    (0, 2),
    (1, 3),
    (4, 6),
    (5, 7),
    (1, 2),
    (5, 6),
    (0, 4),
    (1, 5),
    (2, 6),
    (3, 7),
    (2, 4),
    (3, 5),
    (1, 2),
    (3, 4),
    (5, 6),
)


def neighbour_median_reference(data: np.ndarray) -> np.ndarray:
    """numpy version of :func:`neighbour_median` (sorting network; one sort when NaN)."""
    arr = np.asarray(data, dtype=np.float32)
    padded = np.pad(arr, 1, mode="reflect")
    ny, nx = arr.shape
    shifted = [
        padded[1 + dy : 1 + dy + ny, 1 + dx : 1 + dx + nx]
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
        if (dy, dx) != (0, 0)
    ]
    if np.isnan(arr).any():
        return nanmedian_along(np.stack(shifted), 0)
    v = [np.array(x) for x in shifted]
    for i, j in SORT8:
        low = np.minimum(v[i], v[j])
        np.maximum(v[i], v[j], out=v[j])
        v[i] = low
    return ((v[3] + v[4]) / np.float32(2)).astype(np.float32, copy=False)


@dataclass(frozen=True, eq=False)
class ResidualParts:
    """What :func:`residual_analysis` computes on the way (reused by the light checks).

    With ``cfa`` (a colour sensor) the background, the neighbour median ``local`` and ``z`` were
    computed per colour phase (:mod:`darkflow.stats.cfa`): every pixel against pixels of its own
    colour only; the source mask is their union over each 2x2 cell.
    """

    background: np.ndarray  # smooth background model (ADU)
    sources: np.ndarray  # bool: masked as source (dilated)
    valid: np.ndarray  # bool: background pixel with finite values
    z: np.ndarray  # neighbour-median residual / predicted sigma (unit Gaussian when right)
    local: np.ndarray | None = None  # the neighbour median of the data (reused by the checks)
    cfa: bool = False


def residual_parts(
    data: np.ndarray,
    uncertainty: np.ndarray,
    *,
    tile: int = 32,
    source_sigma: float = 4.0,
    cfa: bool = False,
    levels: tuple[np.ndarray, np.ndarray] | None = None,
) -> ResidualParts:
    """Background model, source mask and normalised residuals (see :func:`residual_analysis`).

    ``cfa``: a colour (Bayer) frame, analysed per colour phase (same-colour neighbours, a
    background per colour on tiles of the same size in sensor pixels). ``levels``: the
    background and neighbours' median of ``data`` as :func:`darkflow.stats.noise.local_levels`
    gives them (the same maps as computed here with the default ``tile``), when known.
    """
    if levels is not None and tile != 32:
        raise ValueError("levels are those of tiles of 32 pixels")
    if cfa:
        return _cfa_residual_parts(
            data, uncertainty, tile=tile, source_sigma=source_sigma, levels=levels
        )
    bg, local = levels if levels is not None else (background_map(data, tile=tile), None)
    if local is None:
        local = neighbour_median(data)
    with np.errstate(invalid="ignore", divide="ignore"):
        z_bg = (data - bg) / uncertainty
        z = (data - local) / (uncertainty * np.float32(math.sqrt(NEIGHBOUR_VAR_FACTOR)))
    finite = np.isfinite(z) & np.isfinite(z_bg)
    sources = _dilate(finite & (z_bg > source_sigma), 2)
    return ResidualParts(bg, sources, finite & ~sources, z, local)


def _cfa_residual_parts(
    data: np.ndarray,
    uncertainty: np.ndarray,
    *,
    tile: int,
    source_sigma: float,
    levels: tuple[np.ndarray, np.ndarray] | None = None,
) -> ResidualParts:
    from darkflow.stats import cfa

    data = np.asarray(data, dtype=np.float32)
    unc = np.asarray(uncertainty, dtype=np.float32)
    half = max(tile // 2, 4)
    if levels is not None:
        bg, local = levels
    else:
        bg = cfa.per_plane(lambda d: background_map(d, tile=half), data)
        local = cfa.per_plane(neighbour_median, data)
    with np.errstate(invalid="ignore", divide="ignore"):
        z_bg = (data - bg) / unc
        z = (data - local) / (unc * np.float32(math.sqrt(NEIGHBOUR_VAR_FACTOR)))
    finite = np.isfinite(z) & np.isfinite(z_bg)
    # a source in any colour masks its whole 2x2 cell (a red star is still a star in green),
    # dilated by one cell and by the mono path's 2 pixels
    cells = _dilate(cfa.superpixel_any(finite & (z_bg > source_sigma)), 1)
    sources = _dilate(cfa.upsample_superpixel(cells, data.shape), 1)
    return ResidualParts(bg, sources, finite & ~sources, z, local, cfa=True)


def vertical_residual(
    data: np.ndarray, uncertainty: np.ndarray, valid: np.ndarray, *, cfa: bool = False
) -> np.ndarray:
    """Each pixel minus its prediction from the pixels 1 and 2 rows above and below, over the
    predicted spread of that difference; NaN where the pixel or one of those 4 is not ``valid``
    (near the edges, sources, non-finite values).

    The prediction ``(4 (x[-1] + x[+1]) - (x[-2] + x[+2])) / 6`` is exact for any cubic along
    the column, so gradients and the curvature of nebulosity cancel; its spread is
    ``sqrt(u² + (16 (u[-1]² + u[+1]²) + u[-2]² + u[+2]²) / 36)``, exact for independent pixels.
    Why vertical only: the pixels of one column are independent of each other even when every
    row of a frame carries its own random offset (the row noise of CMOS readout), so row noise
    enters this residual exactly as white noise does and the predicted uncertainty (which holds
    it, from the per-pixel scatter of the calibration frames) is compared like for like; two of
    a pixel's 8 neighbours share its row. ``cfa``: the same colour's rows, 2 and 4 rows away.
    """
    from darkflow.stats._vertical import vertical_residual_of  # numba; twin: the former code

    return vertical_residual_of(data, uncertainty, valid, 2 if cfa else 1)


def batch_log_variance(
    z: np.ndarray, *, n_batches: int = 32, min_per_batch: int = 50
) -> tuple[float, float, int, int]:
    """``log`` of the squared robust width of the finite values of ``z`` and its standard error.

    Returns ``(log_var, se, n, batches)``. The standard error comes from batch means: the finite
    values in raster order are cut into up to ``n_batches`` equal groups (contiguous rows), the
    statistic is computed in each, and ``se = sd(batch values) / sqrt(batches)``. Unlike the
    large-sample ``2 * 1.1664 / sqrt(n)`` it holds whatever the correlation between pixels
    (row noise shared along a row, neighbouring residuals sharing pixels). NaN when fewer than
    two batches of ``min_per_batch`` values exist.
    """
    from darkflow.stats._masks import finite_float64  # numba; twin: the former code

    v = finite_float64(z)
    n = v.size
    batches = min(n_batches, n // max(min_per_batch, 1))
    if batches < 2:
        return math.nan, math.nan, n, batches
    total = robust_std(v)
    logs = [2.0 * math.log(robust_std(part)) for part in np.array_split(v, batches)]
    se = float(np.std(logs, ddof=1)) / math.sqrt(batches)
    return 2.0 * math.log(total) if total > 0 else math.nan, se, n, batches


def stats_from_parts(parts: ResidualParts) -> ResidualStats:
    """:class:`ResidualStats` of precomputed :class:`ResidualParts`."""
    from darkflow.stats._image import residual_summary

    # the background's residuals, their far negative tail and histogram in one pass (numba;
    # the twin is the former numpy code, the same values)
    zb, below, counts = residual_summary(parts.z, parts.valid, HIST_EDGES, -6.0)
    n = max(zb.size, 1)
    size = parts.z.size
    return ResidualStats(
        noise_ratio=robust_std(zb),
        neg_tail_frac=float(below) / n,
        source_frac=float(np.count_nonzero(parts.sources)) / size,
        background_frac=float(zb.size) / size,
        background_adu=float(_nanmedian(parts.background)),
        hist_counts=counts.astype(int).tolist(),
    )


def residual_analysis(
    data: np.ndarray, uncertainty: np.ndarray, *, tile: int = 32, source_sigma: float = 4.0
) -> ResidualStats:
    """Normalised residuals of a calibrated frame on its background pixels.

    Sources are masked from a smooth background model (tile medians, ``source_sigma`` above it,
    dilated). The residual of each remaining pixel is taken against the median of its 8
    neighbours, which cancels gradients and nebulosity, and divided by the predicted sigma
    times ``sqrt(NEIGHBOUR_VAR_FACTOR)``: pure noise gives a unit Gaussian. An over-subtracted
    hot pixel is an isolated hole, far in the negative tail.
    """
    return stats_from_parts(residual_parts(data, uncertainty, tile=tile, source_sigma=source_sigma))
