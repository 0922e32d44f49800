"""The light's own noise as darkflow models it: the signal whose Poisson noise a calibrated pixel
carries, and the uncertainty plane rebuilt from the header cards a calibrated light stores it
as (``DFUMODE = 'scalar'``). :mod:`darkflow.subtract` computes with them; :mod:`darkflow.io.fits`
reads calibrated lights back with them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from darkflow.stats.maps import background_map, neighbour_median

__all__ = ["local_levels", "rebuild_uncertainty", "shot_signal"]


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
    take the same two levels of the same calibrated values, so a light computes them once."""
    if cfa:
        from darkflow.stats.cfa import per_plane

        smooth = per_plane(lambda d: background_map(d, tile=16), calibrated)
        local = per_plane(neighbour_median, calibrated)
        return smooth, local
    return background_map(calibrated), neighbour_median(calibrated)


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
