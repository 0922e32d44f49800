"""The light's own noise as darkflow models it: the signal whose Poisson noise a calibrated pixel
carries, and the uncertainty plane rebuilt from the header cards a calibrated light stores it
as (``DFUMODE = 'scalar'``). :mod:`darkflow.subtract` computes with them; :mod:`darkflow.io.fits`
reads calibrated lights back with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from darkflow.stats.maps import background_map, neighbour_median

__all__ = ["FrameLevels", "frame_levels", "local_levels", "rebuild_uncertainty", "shot_signal"]


def shot_signal(
    calibrated: np.ndarray,
    base_variance: np.ndarray | float,
    egain_e_per_adu: float,
    *,
    cfa: bool = False,
    levels: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """The signal (ADU) whose Poisson noise a calibrated pixel carries, estimated without bias.

    ``max(pixel, 0)`` of a noisy pixel overstates the signal where there is little of it (the
    positive half of the noise counts as signal: +30% variance on a frame without sky). The
    smooth background (sigma-clipped tile levels, interpolated) estimates the local signal
    without that bias; a pixel more than 3 sigma above it (stars, bright nebulosity) keeps its
    own value. Between the two, where the median of the pixel's 8 neighbours (which holds no
    noise of the pixel itself) lies significantly above the smooth background (3 of its own
    sigmas, ``0.41`` of a pixel's), that median is the signal: the wings of stars and spectral
    lines, the edge of a slit, nebulosity finer than the background tiles. ``cfa``: a colour
    (Bayer) frame, whose background and neighbours are per colour phase (a red pixel under a
    green sky collects less than its green neighbours). ``levels``: :func:`local_levels` of
    ``calibrated`` (with the same ``cfa``), when the caller has them.
    """
    from darkflow.stats._shot import shot_signal_of  # numba: compiled on first use

    smooth, local = local_levels(calibrated, cfa=cfa) if levels is None else levels
    # the pixel's expected noise if it held only the smooth signal (its shot noise included),
    # then the choice between its own value, the neighbours' median and the background: one
    # numba pass (numpy twin: darkflow.stats._shot.shot_signal_of_reference)
    return shot_signal_of(
        calibrated, smooth, local, base_variance, egain_e_per_adu, _NEIGHBOUR_MEDIAN_SD
    )


def local_levels(calibrated: np.ndarray, *, cfa: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(smooth background, median of the 8 neighbours)`` of an image, as :func:`shot_signal`
    takes them: tiles of 32 pixels, or per colour phase (``cfa``) tiles of 16 and same-colour
    neighbours. The light checks' residuals (``darkflow.verify._residuals.residual_parts``)
    take the same two levels of the same calibrated values, so a light computes them once
    (:func:`frame_levels`, whose :meth:`FrameLevels.band` gives them for a band of rows)."""
    levels = frame_levels(calibrated, cfa=cfa)
    return levels.smooth, levels.local  # type: ignore[return-value]


_TILE, _CFA_TILE = 32, 16  # local_levels' tiles (sensor pixels; colour: per phase)


@dataclass(frozen=True, eq=False)
class FrameLevels:
    """:func:`local_levels` of a whole frame, kept so that a band of its rows gets its own.

    ``local``: the neighbours' median of the frame; ``grids``: its tile levels (one grid, or
    one per colour phase in :data:`darkflow.stats.cfa.PHASES` order); ``smooth``: the frame's
    background (``None`` when not kept). :meth:`band` gives ``local_levels`` of a band of rows
    of the same values, bit for bit, from what was measured on the frame: the neighbours'
    median of the band's inner rows is the frame's (only its first and last rows, reflected at
    the band's edges, are computed again), and a band whose edges fall on tile edges has the
    frame's tiles (their levels are taken, only the interpolation is done again).
    """

    local: np.ndarray
    grids: tuple[np.ndarray, ...]
    cfa: bool
    smooth: np.ndarray | None = None

    def band(self, rows: slice, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``local_levels(data, cfa=self.cfa)`` of ``data``, the frame's values in ``rows``
        (contiguous rows, all columns: the caller's to ensure)."""
        ny = self.local.shape[0]
        start, stop, step = rows.indices(ny)
        if step != 1 or data.shape != (stop - start, self.local.shape[1]):
            raise ValueError("a band of contiguous rows of the whole frame")
        if start == 0 and stop == ny and self.smooth is not None:
            return self.smooth, self.local
        if self.cfa and start % 2:  # the band's colour phases are not the frame's
            return local_levels(data, cfa=True)
        return self._smooth_band(start, stop, data), self._local_band(start, stop, data)

    def _smooth_band(self, start: int, stop: int, data: np.ndarray) -> np.ndarray:
        ny = self.local.shape[0]
        unit = 2 * _CFA_TILE if self.cfa else _TILE  # sensor rows of one row of tiles
        if start % unit or (stop % unit and stop != ny):  # other tiles than the frame's
            return _smooth_of(data, self.cfa)
        if not self.cfa:
            grid = self.grids[0][start // _TILE : -(-stop // _TILE)]
            return background_map(data, tile=_TILE, grid=grid)
        from darkflow.stats import cfa

        lo, hi = start // 2 // _CFA_TILE, -(-stop // 2 // _CFA_TILE)
        parts = [
            np.asarray(background_map(np.ascontiguousarray(plane), tile=_CFA_TILE, grid=g[lo:hi]))
            for plane, g in zip(cfa.planes(data), self.grids, strict=True)
        ]
        return cfa.merge_planes(parts, data.shape)

    def _local_band(self, start: int, stop: int, data: np.ndarray) -> np.ndarray:
        n = stop - start
        # the band's rows whose neighbours' median reflects at its edges: the first and last
        # (of each colour phase), computed again on a few rows at each edge (a slice starting
        # on an even row keeps the colour phases)
        k = 2 if self.cfa else 1
        if n <= 8 * k:
            return _local_of(data, self.cfa)
        local = self.local[start:stop].copy()
        local[:k] = _local_of(data[: 4 * k], self.cfa)[:k]
        tail = n - 4 * k
        tail -= tail % 2 if self.cfa else 0
        local[n - k :] = _local_of(data[tail:], self.cfa)[-k:]
        return local


def _smooth_of(data: np.ndarray, cfa_frame: bool) -> np.ndarray:
    if not cfa_frame:
        return background_map(data, tile=_TILE)
    from darkflow.stats.cfa import per_plane

    return per_plane(lambda d: background_map(d, tile=_CFA_TILE), data)


def _local_of(data: np.ndarray, cfa_frame: bool) -> np.ndarray:
    if not cfa_frame:
        return neighbour_median(data)
    from darkflow.stats.cfa import per_plane

    return per_plane(neighbour_median, data)


def frame_levels(calibrated: np.ndarray, *, cfa: bool = False) -> FrameLevels:
    """:class:`FrameLevels` of a frame: :func:`local_levels` (``smooth`` included) with the
    tile levels they came from."""
    from darkflow.stats._image import tile_levels

    if cfa:
        from darkflow.stats.cfa import merge_planes, per_plane, planes

        phase_planes = [np.ascontiguousarray(p) for p in planes(calibrated)]
        grids = tuple(tile_levels(p, _CFA_TILE) for p in phase_planes)
        parts = [
            np.asarray(background_map(p, tile=_CFA_TILE, grid=g))
            for p, g in zip(phase_planes, grids, strict=True)
        ]
        smooth = merge_planes(parts, calibrated.shape)
        local = per_plane(neighbour_median, calibrated)
        return FrameLevels(local, grids, True, smooth)
    grid = tile_levels(calibrated, _TILE)
    return FrameLevels(
        neighbour_median(calibrated), (grid,), False, background_map(calibrated, grid=grid)
    )


# spread of the median of a pixel's 8 neighbours, in units of one pixel's (white noise):
# sqrt(NEIGHBOUR_VAR_FACTOR - 1) of darkflow.verify
_NEIGHBOUR_MEDIAN_SD = 0.409


def rebuild_uncertainty(calibrated: np.ndarray, cards: Any) -> np.ndarray:
    """The 1-sigma plane of a light whose uncertainty was written as header cards.

    ``sqrt(DFUNV0 + shot_signal(calibrated - DFPEDEST) / DFUNGAIN)``: the light's own read and
    shot noise as :func:`darkflow.subtract.subtract_dark` computed them; the dark's shot noise and the dark
    model's variance at their typical value, so hot pixels get too small an uncertainty.
    ``DFUNCMED`` everywhere when there was no gain; per colour phase when ``DFUNCFA``.
    """
    data = np.asarray(calibrated, dtype=np.float32)
    gain, v0 = cards.get("DFUNGAIN"), cards.get("DFUNV0")
    if not gain or v0 is None:
        unc = np.full(data.shape, float(cards.get("DFUNCMED", np.nan)), np.float32)
    else:
        signal = shot_signal(
            data - np.float32(cards.get("DFPEDEST", 0.0)),
            float(v0),
            float(gain),
            cfa=bool(cards.get("DFUNCFA", False)),
        )
        unc = np.sqrt(np.maximum(float(v0) + signal / np.float32(gain), 0.0)).astype(np.float32)
    unc[~np.isfinite(data)] = np.nan
    return unc
