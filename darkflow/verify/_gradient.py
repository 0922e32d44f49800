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

A night without a bias of its own: a master's plane mixes the bias's with the dark signal's.
Two dark masters of the night and configuration at different exposures cancel the bias
(:func:`pair_gradient_gate`): ``M_long - M_short`` holds dark current ``rate x (t_long -
t_short)``, flat, and the plane of stray light in one set (``+`` in the long, ``-`` in the
short); the same tests judge it (tiles halved until the frame holds :data:`MIN_TILES`), and a
difference below 0 at a corner, beyond its noise, is no dark current at all: light in the
short set. A single set without a bias is not measured.
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
from darkflow.verify._stability import TILE, _hot_free, _tile_levels, _tile_split

__all__ = ["PairGradient", "dark_gradient_gate", "pair_gradient_gate"]

NAME = "dark_gradient"
# the plane test must see structure of twice the tiles' noise (RMS): a glow whose tilt reaches the
# materiality (~30 tile sigmas) curves by several tile sigmas; about 70 tiles are needed
MAX_PLANE_LIMIT = 2.0
MIN_TILES = 72  # tiles for MAX_PLANE_LIMIT (the pair's gate halves its tile to reach them)


def _plane(tiles: np.ndarray, rows: slice, shape: tuple[int, int], tile: int = TILE):
    """Least-squares plane of the finite tiles: coefficients, their unit covariance
    ``(AᵀA)⁻¹``, the residuals and the count."""
    ty, tx = tiles.shape
    ny, nx = shape
    yy, xx = np.mgrid[:ty, :tx]
    ok = np.isfinite(tiles)
    x = ((xx[ok] + 0.5) * tile) / nx - 0.5
    y = (rows.start + (yy[ok] + 0.5) * tile) / ny - 0.5
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
    if not frame_var > 0:
        return not_measured(NAME, None, "no frame noise (fewer than two frames)"), {}
    materiality = math.sqrt(frame_var / max(master.meta.n_frames, 1))
    return _gradient_gate(signal, rows, master.shape, materiality, config.gate_false_alarm, raw)


def _gradient_gate(
    signal: np.ndarray,
    rows: slice,
    shape: tuple[int, int],
    materiality: float,
    p: float,
    raw: np.ndarray | None,
    tile: int = TILE,
    difference: bool = False,
) -> tuple[Metric, dict[str, float | None]]:
    """:func:`dark_gradient_gate` on a dark signal (a master less its bias, or with
    ``difference`` the difference of two masters, long less short) with the materiality of
    its per-pixel noise."""
    from darkflow.stats._dist import f_isf  # scipy.stats' f.isf, without its import

    tiles = _tile_levels(signal, tile)
    split = _tile_split(signal, tile)
    split = split[np.isfinite(split)]
    if tiles.ndim != 2 or min(tiles.shape) < 3 or split.size < 9:
        return not_measured(NAME, None, f"{tiles.size} tiles of {tile} pixels: too few"), {}
    sd = robust_std(split) / 2.0  # the noise of one tile's level
    coef, unit_cov, resid, n = _plane(tiles, rows, shape, tile)
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
    # the covariance's larger axis (conservative), its scale estimated on the tiles' noise
    # (``0.37 x tiles`` degrees of freedom: ``radius² / 2`` is F-distributed, Hotelling's
    # T² of two coefficients): as an equivalent spread of the one-sided normal threshold
    sigma = math.sqrt(float(np.max(np.linalg.eigvalsh(cov))))
    radius = math.sqrt(2.0 * f_isf(p, 2, 0.37 * split.size))
    spread = sigma * radius / z_threshold(p, sides=1)
    amplitude = float(math.hypot(*beta))
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
    if difference:  # dark current is not negative: a corner below 0 is the short set's light
        low, low_sd = _lowest_corner(coef, sd * sd * unit_cov)
        values["dark_gradient_low_corner_adu"] = low
        if low + z_threshold(p, sides=1) * low_sd + materiality < 0:
            values["dark_gradient_short_light"] = 1.0
            return dataclasses.replace(
                metric,
                detail=detail + f"; the difference falls to {low:.3g} +- {low_sd:.2g} ADU at a "
                "corner: below the dark current's 0, the short set holds light",
            ), values
    # stray light or a temperature gradient across the sensor: the hot pixels tell
    thermal = None if raw is None else _thermal_test(raw, signal, coef, rows, shape, p)
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


@dataclasses.dataclass(frozen=True)
class PairGradient:
    """The outcome of :func:`pair_gradient_gate`: the gate, its values, and when it fails the
    set holding the stray light: ``"long"``, ``"short"`` or ``"pair"`` (not decidable)."""

    metric: Metric
    values: dict[str, float | None]
    holder: str | None = None


def pair_gradient_gate(long: MasterDark, short: MasterDark, config: VerifyConfig) -> PairGradient:
    """``dark_gradient`` of a night without a bias: on ``long - short``, two masters of one
    configuration at different exposures (``long`` the longer), where the bias cancels.

    Dark current leaves ``rate x (t_long - t_short)``, flat across the frame, hot pixels
    scaled by the exposures' difference; stray light in one set leaves its plane (``+`` in the
    long set, ``-`` in the short one). The gate is :func:`dark_gradient_gate`'s on that
    difference (same tiles, noise, plane and hot-pixel tests, the same false-alarm
    probability), its materiality the larger of the two masters' per-pixel noise. Which set
    holds the light (:func:`_holder`): the one whose own gradient along the difference's
    carries it with the difference's sign (``+`` long, ``-`` short) while the other's is flat;
    else the pair.
    """
    p = config.gate_false_alarm
    t_l, t_s = float(long.meta.exptime_s or 0.0), float(short.meta.exptime_s or 0.0)
    if long.shape != short.shape:
        return PairGradient(not_measured(NAME, None, "the two masters' shapes differ"), {})
    if not t_l > t_s:
        return PairGradient(
            not_measured(NAME, None, "equal exposures: no dark signal left for the hot pixels"),
            {},
        )
    if long.meta.includes_bias != short.meta.includes_bias:
        return PairGradient(not_measured(NAME, None, "one master holds the bias"), {})
    raw = long.data.astype(np.float32) - short.data.astype(np.float32)
    for m in (long, short):
        if m.saturated is not None:
            raw[m.saturated.astype(bool)] = np.nan
    noise = [_pixel_noise(m) for m in (long, short)]
    if not all(math.isfinite(s) and s > 0 for s in noise):
        return PairGradient(not_measured(NAME, None, "no master noise (fewer than two frames)"), {})
    rows = slice(0, long.shape[0])
    tile = pair_tile(long.shape)
    metric, values = _gradient_gate(
        _hot_free(raw), rows, long.shape, max(noise), p, raw, tile, difference=True
    )
    pair = f"{t_l:g} s - {t_s:g} s masters (no bias of the night): "
    metric = dataclasses.replace(metric, detail=pair + metric.detail)
    if not metric.failed:
        return PairGradient(metric, values)
    if values.get("dark_gradient_short_light"):
        return PairGradient(metric, values, "short")
    gx, gy = values["dark_gradient_x_adu"], values["dark_gradient_y_adu"]
    holder, note = _holder(long, short, np.array([gx, gy]) / math.hypot(gx, gy), p, tile)
    return PairGradient(dataclasses.replace(metric, detail=metric.detail + note), values, holder)


def _lowest_corner(coef: np.ndarray, cov: np.ndarray) -> tuple[float, float]:
    """The plane's lowest value at a corner of the frame and its standard error."""
    corners = [np.array([1.0, sx, sy]) for sx in (-0.5, 0.5) for sy in (-0.5, 0.5)]
    v = min(corners, key=lambda c: float(c @ coef))
    return float(v @ coef), math.sqrt(float(v @ cov @ v))


def pair_tile(shape: tuple[int, int]) -> int:
    """The tile of the pair's gate: :data:`TILE`, halved (down to 8) while the frame holds fewer
    than :data:`MIN_TILES` (the plane test's own limit, :data:`MAX_PLANE_LIMIT`, needs about 70)."""
    tile = TILE
    while tile > 8 and (shape[0] // tile) * (shape[1] // tile) < MIN_TILES:
        tile //= 2
    return tile


def _pixel_noise(master: MasterDark) -> float:
    """The master's typical per-pixel standard error (ADU)."""
    u = master.uncertainty[np.isfinite(master.uncertainty)]
    return float(np.median(u)) if u.size and master.meta.n_frames >= 2 else math.nan


def _holder(
    long: MasterDark, short: MasterDark, u: np.ndarray, p: float, tile: int
) -> tuple[str, str]:
    """Which set holds the stray light of ``long - short``'s gradient (unit direction ``u``).

    Each master alone holds its bias's gradient ``g_B`` plus its stray light's: ``long``
    holds the light when its own gradient along ``u`` is positive beyond the noise and
    ``short``'s is flat (``g_B`` then is, too); ``short`` when its own is negative beyond the
    noise and ``long``'s flat. Beyond the one-sided threshold of ``p`` and within it, on each
    master's own tile noise; else (a bias with a gradient of its own, both tilted, a plane
    that does not fit one master alone) the pair."""
    z = z_threshold(p, sides=1)
    zs = []
    for m in (long, short):
        own = _hot_free(m.data.astype(np.float32))
        tiles = _tile_levels(own, tile)
        split = _tile_split(own, tile)
        sd = robust_std(split[np.isfinite(split)]) / 2.0
        coef, unit_cov, _, _ = _plane(tiles, slice(0, m.shape[0]), m.shape, tile)
        se = sd * math.sqrt(float(u @ unit_cov[1:, 1:] @ u))
        zs.append(float(coef[1:] @ u) / se if se > 0 else math.nan)
    z_l, z_s = zs
    note = f"; along it the long master alone {z_l:+.3g} sigma, the short {z_s:+.3g}"
    if z_l > z and abs(z_s) <= z:
        return "long", note + ": the long set holds the light"
    if z_s < -z and abs(z_l) <= z:
        return "short", note + ": the short set holds the light"
    return "pair", note + ": either set may hold it"
