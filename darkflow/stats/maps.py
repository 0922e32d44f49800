"""Smooth background and neighbour median of an image: the two local levels the noise model
(:mod:`darkflow.subtract`) and the residual checks (:mod:`darkflow.verify`) both need."""

from __future__ import annotations

import numpy as np

from darkflow.stats._robust import nanmedian as _nanmedian

__all__ = ["background_map", "neighbour_median"]


def background_map(
    data: np.ndarray, *, tile: int = 32, grid: np.ndarray | None = None
) -> np.ndarray:
    """Smooth background: sigma-clipped modes on a tile grid, bilinearly interpolated.

    The tile levels (sigma-clipped, then the SExtractor mode ``2.5 median - 1.5 mean``) come
    from the numba kernel :func:`darkflow.stats._image.tile_levels` (its numpy reference:
    :func:`~darkflow.stats._image.tile_levels_reference`). ``grid``: those tile levels of
    ``data``, when the caller has them (the rows of tiles a larger frame's grid holds).
    """
    from darkflow.stats._image import grid_interp, tile_levels

    ny, nx = data.shape
    if grid is None:
        grid = tile_levels(data, tile)
    if np.isnan(grid).all():
        return np.full(data.shape, np.nan, dtype=np.float32)
    fill = _nanmedian(grid)
    grid = np.where(np.isnan(grid), fill, grid)
    # bilinear between tile centres: a numba kernel (numpy twin: grid_interp_reference)
    return grid_interp(grid, tile, (ny, nx))


def neighbour_median(data: np.ndarray) -> np.ndarray:
    """Median of the 8 neighbours of every pixel (edges reflected); NaN-aware.

    A numba kernel (:func:`darkflow.stats._image.neighbour_median8`), one pixel per thread;
    :func:`neighbour_median_reference` is the numpy version the tests compare it with.
    """
    from darkflow.stats._image import neighbour_median8

    return neighbour_median8(data)
