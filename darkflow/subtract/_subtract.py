"""Subtraction of a dark model with propagated uncertainty, and the scalar summary of a light's
uncertainty written as header cards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from darkflow.exceptions import CalibrationError
from darkflow.stats._robust import finite_median, median_and_squared
from darkflow.stats._robust import median as _median
from darkflow.stats.noise import FrameLevels, frame_levels, shot_signal
from darkflow.subtract._model import DarkModel, plane_median

if TYPE_CHECKING:
    pass


@dataclass(frozen=True, eq=False)
class CalibratedFrame:
    """A calibrated frame: the light minus its dark model, its 1-sigma uncertainty and the
    subtraction's statistics."""

    data: np.ndarray  # float32
    uncertainty: np.ndarray  # float32, 1-sigma ADU
    stats: dict[str, Any] = field(default_factory=dict)
    # (smooth background, neighbours' median, cfa) of ``data`` as the noise model measured them
    # (:func:`darkflow.stats.noise.local_levels`), for the light checks; None when not measured
    # or when a pedestal was added after them
    levels: tuple[np.ndarray, np.ndarray, bool] | None = field(default=None, repr=False)
    # the same measurement kept for a band of rows (the light checks' and the uncertainty
    # cards'): :meth:`darkflow.stats.noise.FrameLevels.band`; None as ``levels``
    band_levels: FrameLevels | None = field(default=None, repr=False)


def subtract_dark(
    light: np.ndarray,
    model: DarkModel,
    *,
    egain_e_per_adu: float | None,
    read_variance_adu2: float,
    dark_shot_variance_adu2: np.ndarray | float = 0.0,
    pedestal_adu: float = 0.0,
    cfa: bool = False,
    keep_levels: bool = False,
    keep_band_levels: bool = False,
) -> CalibratedFrame:
    """Subtract the dark model from a light; the light array is not modified.

    ``cfa``: a colour (Bayer) light: the sky's shot noise is estimated per colour phase.
    ``keep_levels``: the result keeps the background and neighbours' median the noise model
    measured (``CalibratedFrame.levels``, two more planes) for light checks of the whole frame.
    ``keep_band_levels``: the result keeps what bands of its rows need of them
    (``CalibratedFrame.band_levels``: the neighbours' median plane and the tile levels).
    """
    if light.shape != model.data.shape:
        raise CalibrationError(f"light shape {light.shape} != dark model shape {model.data.shape}")
    light32 = np.asarray(light, dtype=np.float32)
    calibrated = light32 - model.data
    gain = egain_e_per_adu if egain_e_per_adu and egain_e_per_adu > 0 else None
    var = np.float32(read_variance_adu2) + model.variance + dark_shot_variance_adu2
    levels = band_levels = None
    if gain is not None:
        measured = frame_levels(calibrated, cfa=cfa)
        smooth, local = measured.smooth, measured.local
        signal = shot_signal(calibrated, var, gain, cfa=cfa, levels=(smooth, local))
        var = var + signal / np.float32(gain)
        if keep_levels and not pedestal_adu:  # the levels of the values as returned
            levels = (smooth, local, cfa)
        if keep_band_levels and not pedestal_adu:
            band_levels = FrameLevels(local, measured.grids, cfa, smooth if keep_levels else None)
    if pedestal_adu:
        calibrated += np.float32(pedestal_adu)
    level, n_finite = finite_median(calibrated)
    stats = {
        "n_nonfinite": int(calibrated.size - n_finite),
        "median_adu": float(level),
        "dark_model_median_adu": float(plane_median(model.data)),
        "shot_noise_included": gain is not None,
    }
    # ``var`` is this call's own array (a sum): a float32 one takes its square root in place
    own = isinstance(var, np.ndarray) and var.dtype == np.float32 and var.ndim
    return CalibratedFrame(
        calibrated.astype(np.float32, copy=False),
        np.sqrt(var, out=var) if own else np.sqrt(var).astype(np.float32),
        stats,
        levels,
        band_levels,
    )


# ----------------------------------------------------------------------------- scalar uncertainty
# A calibrated light written with ``[output] light_uncertainty = "scalar"`` keeps its uncertainty
# as header cards; the plane is rebuilt from them with the noise model of subtract_dark.


#: the summary of a light's uncertainty is measured on a central band of at most this many pixels
UNCERTAINTY_SAMPLES = 1 << 20


def uncertainty_cards(
    calibrated: np.ndarray,
    uncertainty: np.ndarray,
    *,
    egain_e_per_adu: float | None,
    pedestal_adu: float,
    cfa: bool = False,
    levels: FrameLevels | None = None,
) -> dict[str, tuple[Any, str]]:
    """Header cards that summarise a calibrated light's uncertainty plane.

    ``DFUNCMED``: the median uncertainty; ``DFUNV0``: the median of ``uncertainty^2`` less the
    light's own shot noise (:func:`shot_signal` over the gain, as :func:`subtract_dark` adds
    it): read noise, the dark's shot noise and the dark model's variance at a typical pixel;
    ``DFUNGAIN``: the e-/ADU of the noise model; ``DFPEDEST``: the pedestal added after
    subtraction. Measured on a central band of rows of at most :data:`UNCERTAINTY_SAMPLES`
    pixels, so its cost does not grow with the frame. ``cfa``: a colour (Bayer) frame, whose
    shot signal is estimated per colour phase (``DFUNCFA``, as :func:`subtract_dark` did).
    ``levels``: the noise model's :class:`~darkflow.stats.noise.FrameLevels` of ``calibrated``
    (``CalibratedFrame.band_levels``), whose band gives the shot signal's local levels (used
    without a pedestal, with the same colour handling).
    """
    cards: dict[str, tuple[Any, str]] = {
        "DFPEDEST": (float(f"{pedestal_adu:.6g}"), "[adu] pedestal added after subtraction"),
    }
    if cfa:
        cards["DFUNCFA"] = (True, "shot signal estimated per colour phase")
    cal = np.asarray(calibrated)
    ny, nx = cal.shape
    rows = min(ny, max(16, UNCERTAINTY_SAMPLES // max(nx, 1)))
    top = (ny - rows) // 2 // 2 * 2  # even: the band keeps the Bayer phase of the frame
    cal = cal[top : top + rows].astype(np.float32)
    unc = np.asarray(uncertainty)[top : top + rows]
    var = np.square(unc, dtype=np.float64)
    ok = np.isfinite(var) & np.isfinite(cal)
    if not ok.any():
        return cards
    # the median of var = unc**2 (float64) comes with the median of unc: one selection
    unc_median, var_median = median_and_squared(unc[ok])
    cards["DFUNCMED"] = (float(f"{unc_median:.6g}"), "[adu] median 1-sigma uncertainty")
    base = var
    if egain_e_per_adu and egain_e_per_adu > 0:
        data = cal - np.float32(pedestal_adu)
        known = None
        if levels is not None and not pedestal_adu and levels.cfa == cfa:
            known = levels.band(slice(top, top + rows), data)
        signal = shot_signal(data, float(var_median), egain_e_per_adu, cfa=cfa, levels=known)
        base = var - signal / egain_e_per_adu
        cards["DFUNGAIN"] = (float(f"{egain_e_per_adu:.6g}"), "[e-/adu] gain of the noise model")
    cards["DFUNV0"] = (float(f"{_median(base[ok]):.6g}"), "[adu2] uncertainty^2 less shot noise")
    return cards
