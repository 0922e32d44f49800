"""Another gain or a warmer sensor? Photon transfer of two masters on their common hot pixels.

When two masters of one configuration do not scale with exposure and a scale ``s`` of one's
dark signal explains the difference (:func:`darkflow.verify._crossset.exposure_pair_excess`:
``scale``), two causes remain:

* **another gain**: the ADU per electron ``G`` of one set is ``s`` times the other's. Every
  pixel's dark signal (in ADU) is ``s`` times larger, its shot variance ``s²`` times: the
  photon transfer ``var / level`` of the hot pixels is ``s`` times the other master's;
* **a warmer sensor** than its header says: the dark current in electrons is ``s`` times
  larger, ``G`` unchanged: ``var / level`` of the hot pixels is the same in both masters.

Per master and common hot pixel ``i`` (hot in every dark of both sets, 10 sigma above their
5x5 neighbourhood in both masters) ``x_i`` is the pixel's dark signal above its
neighbourhood's median and ``y_i`` its per-frame variance (``uncertainty² × n_used`` over the
share sigma clipping keeps) less the neighbourhood's median per-frame variance (read noise
and the typical dark shot noise): ``y_i = G x_i`` plus noise. The ratio estimator
``G = sum(y) / sum(x)`` has the standard error ``sqrt(sum((y - G x)²) n / (n - 1)) / sum(x)``
from the pixels' own scatter (flickering pixels and the variances' sampling spread both in
it). Under a common cause the two sets' frames are independent:

    L = ln(G_a / G_b),   sd_L² = (se_a / G_a)² + (se_b / G_b)²

(a pixel whose variance is off in both sets, a flickering one, correlates the two errors
positively: ``sd_L`` is then too large, the test conservative). Two two-sided tests at the
false-alarm probability ``p`` (:func:`~darkflow.verify.z_threshold`):

* the thermal null ``L = 0``: ``z_T = L / sd_L``;
* the gain null ``L = ln s``: ``z_G = (L - ln s) / sqrt(sd_L² + (sd_s / s)²)``, the scale's
  own error in its spread.

``gain`` when the thermal null is rejected and the gain null is not, ``thermal`` the other way
round: each verdict wrongly given with probability at most ``p``. When both fit (``|ln s|``
within the two spreads: the uncertainties are too large) or neither does, or with fewer than
``min_pixels`` common hot pixels or no per-pixel variance (a master stored with a scalar
uncertainty plane) the cause is ``not measured`` and the comparison keeps naming both.

Read noise is not used: a CMOS sensor's read noise in electrons falls as its gain rises, so in
ADU it grows by less than ``s`` under another gain (``sqrt(s)`` in the simulator's model), and
the dark sets' typical-pixel variance moves with temperature through their shot noise: no
fixed expectation under either cause.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from darkflow.model import MasterDark
from darkflow.verify._gate import z_threshold

__all__ = ["GAIN", "THERMAL", "GainOrThermal", "gain_or_thermal"]

GAIN = "gain"
THERMAL = "thermal"


@dataclass(frozen=True)
class GainOrThermal:
    """Outcome of :func:`gain_or_thermal`: ``cause`` is ``"gain"``, ``"thermal"`` or ``""``
    (not measured; ``why`` says why)."""

    cause: str = ""
    why: str = ""
    ratio: float = math.nan  # G_a / G_b
    ratio_sd: float = math.nan  # sd of ln(G_a / G_b)
    z_thermal: float = math.nan
    z_gain: float = math.nan
    threshold: float = math.nan
    n_pixels: int = 0

    @property
    def measured(self) -> bool:
        """Whether the test named a cause."""
        return bool(self.cause)


def _clip_share(master: MasterDark, hot: np.ndarray) -> float:
    """The share of the hot pixels' variance the master's sigma clipping kept (1 unclipped).

    The combine clips at ``sigma_low``/``sigma_high`` times its noise model's sigma, which holds
    the header's gain: darks at another gain are clipped at another multiple of their true
    sigma. The share of values clipped low on the hot pixels (cosmic rays only hit high) gives
    that multiple, ``Phi^-1(1 - f_low)``, bounded above by the configured one.
    """
    from darkflow.stats._dist import norm_isf
    from darkflow.subtract.gain import clip_variance_factor

    params = (master.provenance or {}).get("params", {})
    clip = min(params.get("sigma_low", math.inf), params.get("sigma_high", math.inf))
    if not math.isfinite(clip):
        return 1.0
    low = float(np.sum(master.n_low[hot]))
    total = low + float(np.sum(master.n_used[hot])) + float(np.sum(master.n_high[hot]))
    if low > 0 and total > 0:
        clip = min(clip, float(norm_isf(low / total)))
    return clip_variance_factor(clip)


def _frame_variance(master: MasterDark, hot: np.ndarray) -> np.ndarray:
    """Per-pixel per-frame variance of the values the combine kept, clipping restored."""
    n = np.maximum(master.n_used, 1).astype(np.float64)
    return np.square(master.uncertainty.astype(np.float64)) * n / _clip_share(master, hot)


def _transfer(x: np.ndarray, var: np.ndarray, ok: np.ndarray) -> tuple[float, float] | None:
    """``G = sum(y) / sum(x)`` on ``ok`` (``y`` the variance above the neighbourhood's median)
    and its relative standard error; ``None`` when ``G`` is not positive."""
    from scipy.ndimage import median_filter

    y = (var - median_filter(var, size=5, mode="nearest"))[ok]
    xs = x[ok]
    total = float(np.sum(xs))
    g = float(np.sum(y)) / total
    if not (g > 0 and total > 0):
        return None
    n = xs.size
    se = math.sqrt(float(np.sum(np.square(y - g * xs))) * n / (n - 1)) / total
    return g, se / g


def gain_or_thermal(
    a: MasterDark,
    b: MasterDark,
    hot: np.ndarray,
    ex_a: np.ndarray,
    ex_b: np.ndarray,
    scale: float,
    scale_sd: float,
    *,
    false_alarm: float,
    min_pixels: int = 20,
) -> GainOrThermal:
    """Whether ``a``'s dark signal is ``scale`` times ``b``'s (beyond the exposures) because
    of another gain or another temperature (see the module docstring).

    ``hot``: the common hot pixels; ``ex_a``/``ex_b``: each master's dark signal above its
    neighbourhood; ``scale_sd``: the scale's standard error.
    """
    n = int(np.count_nonzero(hot))
    if n < min_pixels:
        return GainOrThermal(why=f"{n} common hot pixels", n_pixels=n)
    for m in (a, b):
        if m.provenance.get("planes", {}).get("uncertainty") == "scalar":
            return GainOrThermal(why="no per-pixel variance", n_pixels=n)
    if not (scale > 0 and math.isfinite(scale_sd)):
        return GainOrThermal(why="no scale", n_pixels=n)
    fit_a = _transfer(ex_a, _frame_variance(a, hot), hot)
    fit_b = _transfer(ex_b, _frame_variance(b, hot), hot)
    if fit_a is None or fit_b is None:
        return GainOrThermal(why="no shot noise above the neighbourhood", n_pixels=n)
    (g_a, rel_a), (g_b, rel_b) = fit_a, fit_b
    log_ratio = math.log(g_a / g_b)
    sd = math.hypot(rel_a, rel_b)
    thr = z_threshold(false_alarm)
    z_t = log_ratio / sd if sd > 0 else math.inf
    sd_g = math.hypot(sd, scale_sd / scale)
    z_g = (log_ratio - math.log(scale)) / sd_g if sd_g > 0 else math.inf
    thermal_fits, gain_fits = abs(z_t) <= thr, abs(z_g) <= thr
    cause, why = "", ""
    if gain_fits and not thermal_fits:
        cause = GAIN
    elif thermal_fits and not gain_fits:
        cause = THERMAL
    else:
        why = "both causes fit" if gain_fits else "neither cause fits"
    return GainOrThermal(
        cause=cause,
        why=why,
        ratio=g_a / g_b,
        ratio_sd=sd,
        z_thermal=z_t,
        z_gain=z_g,
        threshold=thr,
        n_pixels=n,
    )
