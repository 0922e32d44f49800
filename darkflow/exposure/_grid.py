"""Generic image tools of the exposure laws: the smooth level of an image (medians of blocks,
bilinear back to full size), a master's dark signal, the flat level and the glow cells.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from darkflow.model import MasterDark
from darkflow.stats import mad_std


# ----------------------------------------------------------------------------- smooth levels
def block_grid(image: np.ndarray, block: int) -> np.ndarray:
    """Median of each full ``block x block`` block (partial edge blocks are left out)."""
    ny, nx = image.shape
    b = max(1, min(block, ny, nx))
    gy, gx = ny // b, nx // b
    cut = np.asarray(image[: gy * b, : gx * b], dtype=np.float32)
    cells = cut.reshape(gy, b, gx, b).transpose(0, 2, 1, 3).reshape(gy, gx, b * b)
    if np.isfinite(cells).all():
        return np.median(cells, axis=-1).astype(np.float64)
    with warnings.catch_warnings():  # all-NaN blocks are filled below
        warnings.simplefilter("ignore", RuntimeWarning)
        out = np.nanmedian(np.where(np.isfinite(cells), cells, np.nan), axis=-1)
    return np.where(np.isfinite(out), out, np.nanmedian(out) if np.isfinite(out).any() else 0.0)


def _axis_weights(n_cells: int, block: int, coords: np.ndarray, extrapolate: bool = False):
    centers = np.arange(n_cells) * block + (block - 1) / 2.0
    if n_cells == 1:
        zeros = np.zeros(coords.shape, dtype=np.int64)
        return zeros, zeros, np.zeros(coords.shape)
    i0 = np.clip(np.searchsorted(centers, coords) - 1, 0, n_cells - 2)
    lo, hi = (-1.0, 2.0) if extrapolate else (0.0, 1.0)
    w = np.clip((coords - centers[i0]) / block, lo, hi)
    return i0, i0 + 1, w


def upsample_grid(
    grid: np.ndarray, shape: tuple[int, int], block: int, *, extrapolate: bool = False
) -> np.ndarray:
    """Bilinear interpolation of a block grid back to ``shape``.

    Beyond the outermost block centres the value is held constant, or continued linearly with
    ``extrapolate=True`` (a steep amp-glow corner is otherwise flattened).
    """
    ny, nx = shape
    b = max(1, min(block, ny, nx))
    y0, y1, wy = _axis_weights(grid.shape[0], b, np.arange(ny, dtype=np.float64), extrapolate)
    x0, x1, wx = _axis_weights(grid.shape[1], b, np.arange(nx, dtype=np.float64), extrapolate)
    rows = grid[:, x0] * (1.0 - wx) + grid[:, x1] * wx  # (gy, nx)
    out = rows[y0, :] * (1.0 - wy)[:, None] + rows[y1, :] * wy[:, None]
    return out.astype(np.float32)


def sample_grid(grid: np.ndarray, block: int, shape: tuple[int, int], flat_index: np.ndarray):
    """:func:`upsample_grid` evaluated only at some pixels (flat indices)."""
    ny, nx = shape
    b = max(1, min(block, ny, nx))
    yy, xx = np.divmod(np.asarray(flat_index, dtype=np.int64), nx)
    y0, y1, wy = _axis_weights(grid.shape[0], b, yy.astype(np.float64))
    x0, x1, wx = _axis_weights(grid.shape[1], b, xx.astype(np.float64))
    top = grid[y0, x0] * (1 - wx) + grid[y0, x1] * wx
    bottom = grid[y1, x0] * (1 - wx) + grid[y1, x1] * wx
    return top * (1 - wy) + bottom * wy


def dark_signal(master: MasterDark, bias: MasterDark | None) -> tuple[np.ndarray, bool]:
    """The master with the bias removed when possible: ``(array, bias_removed)``."""
    data = np.asarray(master.data, dtype=np.float32)
    if not master.meta.includes_bias:
        return data, True
    if bias is not None and bias.data.shape == data.shape:
        return data - np.asarray(bias.data, dtype=np.float32), True
    return data, False


def _mean(values: np.ndarray, mask: np.ndarray) -> float:
    return float(np.mean(values[mask], dtype=np.float64)) if mask.any() else math.nan


def _robust_sigma(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0
    if values.size > 200_000:  # a regular subsample is plenty for a scale estimate
        values = values[:: values.size // 200_000]
    return mad_std(values)


def _flat_level(grid: np.ndarray) -> tuple[float, float]:
    """Flat (non-glow) level of a grid and the scatter of its cells."""
    level = float(np.percentile(grid, 10))
    low = grid[grid <= np.median(grid)]
    scatter = mad_std(low, center=level) if low.size else 0.0
    return level, max(scatter, 1e-6)


def glow_block(block: int) -> int:
    """Block size of the glow maps: half the level-map block (a glow corner is steep)."""
    return max(2, block // 2)


def _glow_cells(grid: np.ndarray, bias_removed: bool) -> np.ndarray:
    level, scatter = _flat_level(grid)
    thr = 5.0 * scatter + (0.05 * abs(level) if bias_removed else 0.0)
    return (grid - level) > thr
