"""A planar gradient across a master's dark signal: stray light in one dark set.

With one dark set and no other master to compare with, stray light in the darks (a leaky cap
or filter wheel) adds a level that the master's noise, hot pixels and hold-out frames all agree
with: its photons are Poisson like dark current. What can tell it is its shape. Dark current
of a pixel does not depend on where the pixel is, up to its pixel-to-pixel spread (white,
averaged out in tiles); amp glow is concentrated at its amplifier (it decays within a fraction
of the frame and curves); light reaching the sensor through the optics or a gap spreads across
the whole frame. A gradient across the frame that a plane describes, is stray light.

Statistic: ``master - bias`` (hot-free), the interquartile means of ``32 x 32`` tiles, a plane
``a + b x + c y`` fitted with ``x, y`` in frame widths and heights: ``b, c`` are the change of
the dark signal from edge to edge. Spread of one tile level: from the levels of each tile's even
and odd rows (pixel and row noise, no smooth structure; as for ``low_freq_change_sigma``);
``(b, c)`` then have covariance ``C = s² (AᵀA)⁻¹`` when the dark is flat. The gradient's size
``‖(b, c)‖`` fails one-sided at ``gate_false_alarm`` when it exceeds ``r* sigma`` (``r*² =
chi2_isf(p, 2)``, ``sigma²`` the larger eigenvalue of ``C``: conservative) plus the materiality of the master's own per-pixel noise ``sigma_frame / sqrt(N)`` (a
gradient below it hides in the uncertainty every calibrated light already carries, as for
``dark_level_above_bias``).

Not measured: fewer than 3 x 3 tiles; a plane test too weak to see structure of twice the tiles'
noise (its threshold, from a noise estimate of ``0.37 x tiles`` degrees of freedom, needs about 70
tiles: :data:`MAX_PLANE_LIMIT`); or a structure that a plane does not describe (the RMS of the
tiles about the plane against their noise, an F test at the same false-alarm probability):
amp glow, a vignetted or corner leak, a dark-current pattern of the sensor: one set cannot tell
these apart. A glow whose tilt exceeds the materiality is ~30x its tile noise (a tile averages
~1000 pixels), so its curvature fails the plane test and it is not measured.

A temperature gradient across the sensor (a warm amplifier side, a cold finger at one edge)
tilts the dark current too, but it scales every pixel's dark current alike, the hot pixels'
included, while stray light adds the same photons to a hot pixel as to its neighbours. So a
significant gradient is judged on the hot pixels (:func:`_thermal_test`): with ``T = L / a``
the typical level ``L`` of the plane at a hot pixel over the plane's centre level ``a``, a hot
pixel's excess above ``L`` is ``h T`` for a temperature gradient and ``h`` for stray light:
the slope ``beta`` of ``ln(excess)`` against ``ln T`` is 1 or 0. The gate fails (stray light)
when ``beta = 1`` is rejected at ``gate_false_alarm``; it passes when ``beta = 0`` is rejected
and ``beta = 1`` is not (a temperature gradient); neither rejected (too few hot pixels, too
small a gradient to resolve): not measured.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from darkflow.config import VerifyConfig
from darkflow.model import MasterDark
from darkflow.stats import robust_std
from darkflow.verify._gate import z_threshold
from darkflow.verify._metrics import Metric, VerifyReason, not_measured, significance_gate
from darkflow.verify._nulls import f_upper_spread
from darkflow.verify._stability import TILE, _tile_levels, _tile_split

__all__ = ["dark_gradient_gate"]

NAME = "dark_gradient"
# the plane test must see structure of twice the tiles' noise (RMS): a glow whose tilt reaches the
# materiality (~30 tile sigmas) curves by several tile sigmas; about 70 tiles are needed
MAX_PLANE_LIMIT = 2.0


def _plane(tiles: np.ndarray, rows: slice, shape: tuple[int, int]):
    """Least-squares plane of the finite tiles: coefficients, their unit covariance
    ``(AᵀA)⁻¹``, the residuals and the count."""
    ty, tx = tiles.shape
    ny, nx = shape
    yy, xx = np.mgrid[:ty, :tx]
    ok = np.isfinite(tiles)
    x = ((xx[ok] + 0.5) * TILE) / nx - 0.5
    y = (rows.start + (yy[ok] + 0.5) * TILE) / ny - 0.5
    a = np.column_stack([np.ones(x.size), x, y])
    z = tiles[ok].astype(np.float64)
    coef, *_ = np.linalg.lstsq(a, z, rcond=None)
    return coef, np.linalg.inv(a.T @ a), z - a @ coef, int(z.size)


def dark_gradient_gate(
    signal: np.ndarray,
    rows: slice,
    master: MasterDark,
    frame_var: float,
    config: VerifyConfig,
    raw: np.ndarray | None = None,
) -> tuple[Metric, dict[str, float | None]]:
    """Does the dark signal hold a planar gradient across the frame (``dark_gradient``)?

    ``signal``: ``master - bias`` in the analysed band of rows ``rows``, hot pixels set to NaN
    (:func:`darkflow.verify._stability._hot_free`); ``raw``: the same with its hot pixels (the
    temperature-gradient test; without it a significant gradient is not measured);
    ``frame_var``: one dark frame's pixel variance (ADU²) of the typical pixels. See the module
    docstring.
    """
    from darkflow.stats._dist import chi2_isf  # scipy.stats' chi2.isf, without its import

    p = config.gate_false_alarm
    tiles = _tile_levels(signal, TILE)
    split = _tile_split(signal, TILE)
    split = split[np.isfinite(split)]
    if not frame_var > 0:
        return not_measured(NAME, None, "no frame noise (fewer than two frames)"), {}
    if tiles.ndim != 2 or min(tiles.shape) < 3 or split.size < 9:
        return not_measured(NAME, None, f"{tiles.size} tiles of {TILE} pixels: too few"), {}
    sd = robust_std(split) / 2.0  # the noise of one tile's level
    coef, unit_cov, resid, n = _plane(tiles, rows, master.shape)
    if not (math.isfinite(sd) and sd > 0 and n > 6):
        return not_measured(NAME, None, "no tile noise"), {}
    # a plane must describe the structure: else glow, vignetting or a sensor pattern
    planar = math.sqrt(float(np.sum(resid**2)) / (n - 3)) / sd
    planar_spread = f_upper_spread(n - 3, 0.37 * split.size, p)
    values: dict[str, float | None] = {
        "dark_gradient_x_adu": float(coef[1]),
        "dark_gradient_y_adu": float(coef[2]),
        "dark_nonplanar_sigma": planar,
    }
    limit = 1.0 + planar_spread * z_threshold(p, sides=1)
    if limit > MAX_PLANE_LIMIT:
        return not_measured(
            NAME,
            None,
            f"{n} tiles: the plane test would see structure only at {limit:.3g} x the tiles' "
            f"noise (more than {MAX_PLANE_LIMIT:g}): amp glow could pass for a gradient",
        ), values
    if planar > limit:
        return not_measured(
            NAME,
            None,
            f"structure beyond a plane ({planar:.3g} x the tiles' noise): amp glow, a vignetted "
            "or corner leak and a sensor pattern cannot be told apart in one set",
        ), values
    beta = coef[1:]
    cov = sd * sd * unit_cov[1:, 1:]
    # the gradient's size against the radius a 2-d Gaussian exceeds with probability p, on
    # the covariance's larger axis (conservative): as an equivalent spread of the one-sided
    # normal threshold
    sigma = math.sqrt(float(np.max(np.linalg.eigvalsh(cov))))
    radius = math.sqrt(chi2_isf(p, 2))
    spread = sigma * radius / z_threshold(p, sides=1)
    amplitude = float(math.hypot(*beta))
    materiality = math.sqrt(frame_var / max(master.meta.n_frames, 1))
    values["dark_gradient_adu"] = amplitude
    detail = (
        f"gradient {coef[1]:+.3g} ADU across the width, {coef[2]:+.3g} across the height "
        f"(+- {sigma:.2g}) on a dark signal of {coef[0]:.3g} ADU, {n} tiles; master noise "
        f"{materiality:.2g} ADU"
    )
    metric = significance_gate(
        NAME,
        amplitude,
        expected=0.0,
        spread=spread,
        reason=VerifyReason.DARK_GRADIENT,
        false_alarm=p,
        side="upper",
        materiality=materiality,
        detail=detail,
    )
    if not metric.failed:
        return metric, values
    # stray light or a temperature gradient across the sensor: the hot pixels tell
    thermal = None if raw is None else _thermal_test(raw, signal, coef, rows, master.shape, p)
    if thermal is None:
        return not_measured(
            NAME,
            None,
            detail + "; too few hot pixels to tell stray light from a temperature gradient",
        ), values
    beta, beta_sd, n_hot = thermal
    values.update(dark_gradient_hot_beta=beta, dark_gradient_hot_beta_sigma=beta_sd)
    z = z_threshold(p, sides=1)
    hot = f"; {n_hot} hot pixels scale as the level to the power {beta:.2f} +- {beta_sd:.2f}"
    if (1.0 - beta) / beta_sd > z:  # not a temperature gradient: stray light
        return dataclasses.replace(metric, detail=detail + hot + " (stray light: 0)"), values
    if beta / beta_sd > z:  # the hot pixels follow the level: the sensor's temperature
        return dataclasses.replace(
            metric,
            reason=None,
            confidence=1.0,  # the gradient is the sensor's temperature: all is well
            detail=detail + hot + " (a temperature gradient: 1)",
        ), values
    return not_measured(
        NAME, None, detail + hot + ": stray light (0) and a temperature gradient (1) both fit"
    ), values


def _thermal_test(
    raw: np.ndarray,
    hot_free: np.ndarray,
    coef: np.ndarray,
    rows: slice,
    shape: tuple[int, int],
    p: float,
) -> tuple[float, float, int] | None:
    """``beta`` (module docstring), its standard error, and the hot pixels' count.

    The band's pixels are cut into :data:`N_STRIPS` strips of equal count across the gradient;
    in each, the ``k`` largest excesses above the plane (``k`` half the band's hot pixels per
    strip: hot pixels in every strip) give the mean ``ln(excess)``, regressed on the strip's
    mean ``ln T``. The same rank in every strip, not a threshold: a threshold would keep only
    the brightest hot pixels where the level is low and bias ``beta`` towards 0. The standard
    error is the regression's, inflated to Student's t on ``strips - 2`` degrees of freedom at
    the normal deviate of the gate. ``None`` with fewer than :data:`MIN_HOT` hot pixels per
    strip or a centre level not above 0."""
    from darkflow.stats._dist import t_isf  # scipy.stats' t.isf, without its import

    n_hot = int(np.count_nonzero(~np.isfinite(hot_free) & np.isfinite(raw)))
    k = n_hot // (2 * N_STRIPS)
    if k < MIN_HOT or not coef[0] > 0 or not math.hypot(coef[1], coef[2]) > 0:
        return None
    yy, xx = np.nonzero(np.isfinite(raw))
    ny, nx = shape
    x = (xx + 0.5) / nx - 0.5
    y = (rows.start + yy + 0.5) / ny - 0.5
    level = coef[0] + coef[1] * x + coef[2] * y
    excess = raw[yy, xx].astype(np.float64) - level
    along = coef[1] * x + coef[2] * y
    order = np.argsort(along, kind="stable")
    ts, vs = [], []
    for part in np.array_split(order, N_STRIPS):
        lv = level[part]
        top = np.partition(excess[part], part.size - k)[part.size - k :]
        if not (np.all(top > 0) and np.all(lv > 0)):
            return None
        ts.append(float(np.mean(np.log(lv / coef[0]))))
        vs.append(float(np.median(np.log(top))))
    t, v = np.array(ts), np.array(vs)
    t = t - t.mean()
    sxx = float(np.sum(t * t))
    if not sxx > 0:
        return None
    beta = float(np.sum(t * (v - v.mean())) / sxx)
    resid = v - v.mean() - beta * t
    dof = N_STRIPS - 2
    se = math.sqrt(float(np.sum(resid * resid)) / dof / sxx)
    # Student's t on ``dof`` degrees of freedom, as the normal deviate's equivalent spread
    return beta, se * t_isf(p, dof) / z_threshold(p, sides=1), n_hot


N_STRIPS = 16
MIN_HOT = 5  # hot pixels per strip (the k largest excesses)
