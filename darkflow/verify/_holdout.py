"""Hold-out validation of a master: held-out darks against the training darks, like with like.

Every frame ``f`` of the set, the training frames the master ``M`` was combined from and the
held-out ones, gives a residual ``r_f = x_f - P`` per pixel, ``P`` the plain mean of the
``n_p`` training frames (the clipped mean ``M`` is a slightly less efficient estimator: its
residuals would not follow the simple law below). Under "all is well" a held-out residual has
variance ``sigma_p² (1 + 1/n_p)`` and a training residual ``sigma_p² (1 - 1/n_p)``, whatever the
pixel's own noise ``sigma_p`` (hot pixels, flickering pixels, a non-Gaussian shape): normalised
by ``a_f = sqrt(1 +- 1/n_p)`` both follow the same distribution. So the held-out frames are
judged against the training frames measured the same way, not against a noise model:

* **width**: the standard deviation of ``r_f / a_f`` (ADU) within 5 of its own sigmas (a MAD of
  integer data saved in steps of 4 or 16 ADU jumps between lattice values) per frame; the
  statistic is ``mean_held(W) / mean_train(W)``, 1 when all is well. (Weighting pixels by a
  smooth noise-by-level curve ``s(M)`` would expose populations whose noise the curve misses;
  ``u_f = r_f / (a_f s(M))`` only sets the thresholds below.) Each frame's
  width has a sampling variance measured from the scatter of the widths of 16 horizontal
  strips (row-correlated noise included), at least ``W² / 2N``; training frames whose widths
  differ beyond that add their scatter (Student t);
* **shift**: the mean residual ``m_f`` (ADU, values beyond 5 widths left out). Frames' levels
  jitter on real sensors (bias
  level, offset): the training medians measure it, ``s² = sum_t m_t² / (T - 1)``, and a held-out
  frame is tested with Student's t on ``T - 1`` degrees of freedom (``sqrt(1 + 1/T)`` for its
  own distance from the training mean), Bonferroni over the held-out frames;
* **outliers**: pixels with ``u_f > 6 W_f``. ``u`` of a training frame equals its
  leave-one-out residual ``x_t - P_(-t)`` normalised the same way, so a pixel whose noise the
  smooth curve understates exceeds the threshold as often in either kind of frame, and a cosmic
  ray of a training frame (absent from ``P_(-t)``) counts as it does in a held-out frame (a
  ``sqrt(1 - 1/n²)`` difference of scale, 0.5 % at 10 frames). Outlying pixels are counted
  as events (8-connected groups: a cosmic ray's track is one event). The training frames
  show the camera's own rate of cosmic rays and flickering pixels; given the total count
  ``C``, the held-out count is binomial ``(C, N_held / N_all)`` under "all is well".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from darkflow.verify._gate import z_threshold
from darkflow.verify._metrics import Metric, VerifyReason, not_measured, significance_gate
from darkflow.verify._nulls import binomial_upper_spread

__all__ = [
    "FrameResidual",
    "frame_residual",
    "frame_residual_reference",
    "holdout_gates",
    "transient_gate",
]

OUTLIER_SIGMA = 6.0
# transient events against the clipped master: far enough out that the Poisson tail of a few
# electrons (glow, warm pixels; up to 2x their noise understated by the smooth curve) never
# reaches it, while a cosmic ray's core (hundreds of electrons and more) does
TRANSIENT_SIGMA = 10.0
LEVEL_CLIP = 5.0
WIDTH_CLIP = 5.0
N_STRIPS = 16


@dataclass(frozen=True)
class FrameResidual:
    """Residual statistics of one frame against the master (see the module docstring)."""

    held: bool
    width: float
    width_var: float
    level_adu: float
    n: int
    outliers: int
    up: int = 0  # events above the clipped master (cosmic rays, flicker "on")
    down: int = 0  # events below it (flicker "off", noise tails)
    level_var: float = 0.0  # sampling variance of level_adu (from its strips: row noise in)
    # flat indices (in the band) of the pixels above / below the clipped master (training)
    up_at: np.ndarray | None = field(default=None, compare=False, repr=False)
    down_at: np.ndarray | None = field(default=None, compare=False, repr=False)


def _width(values: np.ndarray) -> float:
    """Standard deviation of the values within 5 of their own standard deviations of their
    median, iterated (cosmic rays out). Not a MAD: on integer data a few ADU apart (12- and 14-bit cameras save steps of 16
    or 4 ADU) a MAD jumps between lattice values and differs between held-out and training
    residuals; a variance is additive whatever the distribution (quantisation included)."""
    from darkflow.stats._clip import clipped_width

    # iterated from the plain standard deviation (a MAD start would itself be quantised and
    # could clip the noise); cosmic rays fall out within a few rounds (numba kernel; numpy
    # twin: darkflow.stats._clip.clipped_width_reference)
    return clipped_width(values, WIDTH_CLIP, 6)


def _events(mask: np.ndarray) -> int:
    """Connected groups of outlying pixels (8-connected): one cosmic ray lights up several
    adjacent pixels, so pixels are not independent events but tracks are."""
    if not mask.any():
        return 0
    from scipy.ndimage import label

    return int(label(mask, structure=np.ones((3, 3), dtype=bool))[1])


def _width_var(width: float, n_pix: int, strips: list[tuple[float, int]]) -> float:
    """Sampling variance of a frame's width: the scatter of its strips' widths (row-correlated
    noise in) scaled by strip size / all pixels, at least a Gaussian standard deviation's."""
    floor = width**2 / (2.0 * n_pix)
    if len(strips) < 4:
        return floor
    w = np.array([s for s, _ in strips])
    m = np.array([c for _, c in strips], dtype=np.float64)
    strip_var = float(np.sum(m * (w - np.average(w, weights=m)) ** 2)) / (len(w) - 1)
    return max(floor, strip_var / n_pix)


def _level_var(levels: list[tuple[float, int]]) -> float:
    """Sampling variance of a frame's level from its strips' levels (0 with fewer than 4)."""
    if len(levels) < 4:
        return 0.0
    lv = np.array([v for v, _ in levels])
    c = np.array([k for _, k in levels], dtype=np.float64)
    centre = float(np.average(lv, weights=c))
    return float(np.sum(c**2 * (lv - centre) ** 2) / c.sum() ** 2) * len(lv) / (len(lv) - 1)


def frame_residual(
    frame: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    n_mean: np.ndarray,
    valid: np.ndarray,
    *,
    held: bool,
    master: np.ndarray | None = None,
    event_scale: np.ndarray | None = None,
) -> FrameResidual | None:
    """Residual statistics of one frame against the plain mean ``mean`` of ``n_mean`` training
    frames; all arrays: one band of rows. With the clipped ``master`` (training frames), also
    the transient events above and below it (cosmic rays: only above), in units of
    ``event_scale`` (default ``scale``): the larger of the curve and the pixel's own clipped
    scatter, as the mean's extreme values are judged, so a hot pixel whose signal follows a
    warming sensor from frame to frame (hundreds of ADU, in its own scatter) is no event.

    The valid pixels' residuals are gathered in one pass (raster order, so a strip of rows is a
    slice) and the events counted in another (numba, ``darkflow.stats._residual``); the numpy
    twin :func:`frame_residual_reference` gives the same result."""
    from darkflow.stats._residual import compact_residuals, outlier_events

    x = np.asarray(frame, dtype=np.float32)
    plain, u, resid, row_counts = compact_residuals(x, mean, scale, n_mean, valid, held=held)
    n_pix = int(plain.size)
    if n_pix < 100:
        return None
    # the width is judged on the plain residuals (ADU): weighting pixels by a smooth
    # noise-by-level curve exposes populations whose noise the curve misses, and a clipped
    # width of those differs between the two kinds of frame; thresholds use the weighted u
    width = _width(plain)
    w_u = _width(u)
    limit = LEVEL_CLIP * w_u
    core = np.abs(u) <= limit
    # strips of rows: their spread of widths includes row-correlated noise
    rows = np.nonzero(row_counts)[0]
    offsets = np.concatenate(([0], np.cumsum(row_counts)))
    strips, levels = [], []
    for chunk in np.array_split(rows, min(N_STRIPS, max(2, rows.size // 4))):
        if chunk.size == 0:
            continue
        lo, hi = int(offsets[chunk[0]]), int(offsets[chunk[-1] + 1])
        if hi - lo >= 50:
            strips.append((_width(plain[lo:hi]), hi - lo))
            core_part = resid[lo:hi][core[lo:hi]]
            if core_part.size:
                levels.append((float(np.mean(core_part, dtype=np.float64)), core_part.size))
    width_var = _width_var(width, n_pix, strips)
    # outlying pixels as events; against the clipped master (which rejected this frame's
    # cosmic rays), in the training frames' own units: a symmetric noise (flicker, tails)
    # gives as many events each way
    where: list = []
    outliers, up, down = outlier_events(
        x,
        mean,
        scale,
        n_mean,
        valid,
        held=held,
        t_out=OUTLIER_SIGMA * w_u,
        master=master,
        t_up=TRANSIENT_SIGMA * w_u,
        t_down=-TRANSIENT_SIGMA * w_u,
        event_scale=event_scale,
        where=where if master is not None else None,
    )
    # the level: a mean (a median of skewed Poisson residuals sits below it, and by a different
    # amount for training and held-out frames), outliers beyond LEVEL_CLIP widths left out
    level = float(np.mean(resid[core], dtype=np.float64)) if core.any() else math.nan
    level_var = _level_var(levels)
    at = (where[0], where[1]) if where else (None, None)
    return FrameResidual(held, width, width_var, level, n_pix, outliers, up, down, level_var, *at)


def frame_residual_reference(
    frame: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    n_mean: np.ndarray,
    valid: np.ndarray,
    *,
    held: bool,
    master: np.ndarray | None = None,
    event_scale: np.ndarray | None = None,
) -> FrameResidual | None:
    """numpy twin of :func:`frame_residual` (full-band temporaries; the same result)."""
    x = np.asarray(frame, dtype=np.float32)
    ok = valid & np.isfinite(x)
    n_pix = int(np.count_nonzero(ok))
    if n_pix < 100:
        return None
    n = np.maximum(n_mean, 2).astype(np.float32)  # invalid pixels (fewer) are masked out
    a = np.sqrt(1.0 + 1.0 / n) if held else np.sqrt(np.maximum(1.0 - 1.0 / n, 1e-6))
    resid = x - mean
    # the width is judged on the plain residuals (ADU): weighting pixels by a smooth
    # noise-by-level curve exposes populations whose noise the curve misses, and a clipped
    # width of those differs between the two kinds of frame; thresholds use the weighted u
    plain = resid / a
    u = plain / scale
    width = _width(plain[ok])
    w_u = _width(u[ok])
    # strips of rows: their spread of widths includes row-correlated noise
    rows = np.nonzero(ok.any(axis=1))[0]
    strips, levels = [], []
    limit = LEVEL_CLIP * w_u
    for chunk in np.array_split(rows, min(N_STRIPS, max(2, rows.size // 4))):
        if chunk.size == 0:
            continue
        part = plain[chunk][ok[chunk]]
        if part.size >= 50:
            strips.append((_width(part), part.size))
            core_part = resid[chunk][ok[chunk] & (np.abs(u[chunk]) <= limit)]
            if core_part.size:
                levels.append((float(np.mean(core_part, dtype=np.float64)), core_part.size))
    width_var = _width_var(width, n_pix, strips)
    outliers = _events(ok & (u > OUTLIER_SIGMA * w_u))
    # the level: a mean (a median of skewed Poisson residuals sits below it, and by a different
    # amount for training and held-out frames), outliers beyond LEVEL_CLIP widths left out
    core = ok & (np.abs(u) <= limit)
    level = float(np.mean(resid[core], dtype=np.float64)) if core.any() else math.nan
    level_var = _level_var(levels)
    up = down = 0
    at: tuple = (None, None)
    if master is not None:
        # against the clipped master (which rejected this frame's cosmic rays), in the training
        # frames' own units: a symmetric noise (flicker, tails) gives as many events each way
        v = (x - master) / (a * (scale if event_scale is None else event_scale))
        above = ok & (v > TRANSIENT_SIGMA * w_u)
        below = ok & (v < -TRANSIENT_SIGMA * w_u)
        up, down = _events(above), _events(below)
        at = (np.flatnonzero(above), np.flatnonzero(below))
    return FrameResidual(held, width, width_var, level, n_pix, outliers, up, down, level_var, *at)


def _jitter_advisory(
    train: list[FrameResidual], false_alarm: float, sigma_frame: float, materiality: float
) -> tuple[Metric | None, dict[str, float | None]]:
    """The training frames' levels against their own sampling noise: under "no jitter"
    ``sum m_t² / floor²`` is chi-square with ``T - 1`` dof. A significant jitter is real (a
    bias level jumping, stray light in some frames, an uncooled sensor warming) and the user
    should know it when it
    matters: when its variance exceeds ``materiality`` (``verify.max_noise_inflation - 1``,
    a quarter) of a frame's pixel variance, the master's level error (``jitter / sqrt(T)``)
    weighs in its error budget as much as the noise a user tolerates from it. It is an
    expected error, not a fault of the master (the lights share the jitter): an advisory."""
    from darkflow.stats._dist import chi2_sf  # scipy.stats' chi2.sf, without its import

    t = len(train)
    if t < 3:
        return None, {}
    floor2 = float(np.mean([f.level_var for f in train]))
    if not floor2 > 0:
        return None, {}
    q = sum(f.level_adu**2 for f in train) / floor2
    excess = math.sqrt(max(sum(f.level_adu**2 for f in train) / (t - 1) - floor2, 0.0))
    values = {"frame_jitter_adu": excess, "master_level_sigma_adu": excess / math.sqrt(t)}
    if chi2_sf(q, t - 1) >= false_alarm or excess**2 <= materiality * sigma_frame**2:
        return None, values
    levels = ", ".join(f"{f.level_adu:+.3g}" for f in train)
    metric = Metric(
        "frame_level_jitter",
        round(excess, 6),
        "advisory",
        1.0,
        VerifyReason.LEVEL_JITTER,
        f"expected error: frame levels differ by {excess:.3g} ADU rms beyond their noise "
        f"({levels} ADU in the training frames); the master's level is uncertain by "
        f"{excess / math.sqrt(t):.3g} ADU and the lights share the jitter",
    )
    return metric, values


def transient_gate(
    frames: list[FrameResidual], *, allowance: float, false_alarm: float
) -> tuple[Metric, dict[str, float | None]] | None:
    """One-sided transients in the training frames: events above the clipped master minus
    events below it, per pixel and frame, against zero with a Poisson spread; the materiality
    ``allowance`` is the cosmic-ray rate of a healthy sensor for the exposure. ``None`` without
    training frames.

    A pixel outlying in more training frames than transients striking at random would make it
    is a property of the pixel (a flickering, random-telegraph pixel whose "on" state the
    clipped master left out), not a transient. With ``r`` the outlying pixels' share per pixel
    and frame, a pixel is outlying in ``k`` or more of ``T`` frames by chance with the binomial
    probability ``P(>= k; T, r)``; ``k`` is the least count (at least 2) at which the expected
    number of such pixels among the ``N`` is below :data:`RECUR_EXPECTED` (at a healthy
    cosmic-ray rate, 1e-4 of 16k pixels in 19 frames: ``k = 2``; at 2 % of the pixels in 12
    frames: ``k = 5``). Those pixels' events are left out of both counts (each counted as one
    event per frame: flickering pixels are single pixels)."""
    train = [f for f in frames if not f.held]
    if not train:
        return None
    up, down = sum(f.up for f in train), sum(f.down for f in train)
    n_pix = min(f.n for f in train)
    flicker_up = _recurring_hits([f.up_at for f in train], n_pix)
    flicker_down = _recurring_hits([f.down_at for f in train], n_pix)
    up, down = max(up - flicker_up[1], 0), max(down - flicker_down[1], 0)
    n = sum(f.n for f in train)
    rate = (up - down) / n
    spread = math.sqrt(max(up + down, 1)) / n
    gate = significance_gate(
        "transient_excess",
        rate,
        expected=0.0,
        spread=spread,
        materiality=allowance,
        reason=VerifyReason.HIGH_REJECTIONS,
        false_alarm=false_alarm,
        side="upper",
        detail=f"{up} events above, {down} below the master in {len(train)} training frames; "
        f"cosmic-ray allowance {allowance:.2g} per pixel and frame"
        + (
            f"; {flicker_up[0] + flicker_down[0]} flickering pixel(s) outlying in more frames "
            f"than chance allows left out ({flicker_up[1]} above, {flicker_down[1]} below)"
            if flicker_up[0] or flicker_down[0]
            else ""
        ),
    )
    return gate, {
        "transient_excess": rate,
        "transient_up": float(up),
        "transient_down": float(down),
        "transient_flicker_pixels": float(flicker_up[0] + flicker_down[0]),
        "cosmic_allowance": allowance,
    }


#: expected number of pixels outlying in ``k`` or more frames by chance, below which ``k``
#: counts as a pixel's own recurrence (:func:`transient_gate`)
RECUR_EXPECTED = 0.1


def _recurring_hits(positions: list[np.ndarray | None], n_pix: int) -> tuple[int, int]:
    """Pixels (flat indices in the band) among ``positions`` (one array per frame, ``T`` frames
    of ``n_pix`` pixels) outlying in more frames than random hits explain
    (:func:`transient_gate`), and the number of their occurrences."""
    t = len(positions)
    found = [p for p in positions if p is not None and p.size]
    if len(found) < 2 or n_pix <= 0:
        return 0, 0
    _, counts = np.unique(np.concatenate(found), return_counts=True)
    r = min(float(counts.sum()) / (n_pix * t), 1.0)
    k = 2
    while k <= t and n_pix * _binomial_sf(k, t, r) >= RECUR_EXPECTED:
        k += 1
    again = counts >= k
    return int(np.count_nonzero(again)), int(counts[again].sum())


def _binomial_sf(k: int, n: int, p: float) -> float:
    """``P(X >= k)`` for ``X ~ Binomial(n, p)`` (log-space terms: no overflow)."""
    if p <= 0.0:
        return 0.0 if k > 0 else 1.0
    if p >= 1.0:
        return 1.0 if k <= n else 0.0
    lp, lq = math.log(p), math.log1p(-p)
    total = 0.0
    for j in range(max(k, 0), n + 1):
        total += math.exp(
            math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1) + j * lp + (n - j) * lq
        )
    return min(total, 1.0)


def holdout_gates(
    frames: list[FrameResidual],
    *,
    sigma_frame: float,
    false_alarm: float,
    jitter_materiality: float = 0.25,
) -> tuple[list[Metric], dict[str, float | None]]:
    """The three hold-out gates from the frames' residual statistics."""
    held = [f for f in frames if f.held]
    train = [f for f in frames if not f.held]
    values: dict[str, float | None] = {"holdout_n": float(len(held)), "train_n": float(len(train))}
    metrics: list[Metric] = []
    jitter_metric, jitter_values = _jitter_advisory(
        train, false_alarm, sigma_frame, jitter_materiality
    )
    values.update(jitter_values)
    if jitter_metric is not None:
        metrics.append(jitter_metric)
    if not held or len(train) < 2:
        why = "no held-out frames" if not held else "fewer than 2 training frames read"
        return [
            not_measured("holdout_width_ratio", VerifyReason.HOLDOUT_UNAVAILABLE, why),
            *metrics,
        ], values
    k, t = len(held), len(train)
    p = false_alarm

    # width: held-out against training, each frame's sampling variance measured; frames whose
    # noise differs beyond that (the training frames show it: real sensors' frames are not all
    # alike) are all-is-well too, that part with Student's t on T - 1 dof
    w_h = float(np.mean([f.width for f in held]))
    w_t = float(np.mean([f.width for f in train]))
    var_h = sum(f.width_var for f in held) / k**2
    var_t = sum(f.width_var for f in train) / t**2
    between = max(
        float(np.var([f.width for f in train], ddof=1))
        - float(np.mean([f.width_var for f in train])),
        0.0,
    )
    from darkflow.stats._dist import t_isf  # scipy.stats' t.isf, without its import

    t_between = t_isf(p / 2.0, t - 1) / z_threshold(p, sides=2)
    ratio = w_h / w_t
    spread_w = ratio * math.sqrt(
        var_h / w_h**2 + var_t / w_t**2 + t_between**2 * between * (1.0 / k + 1.0 / t) / w_t**2
    )
    width = significance_gate(
        "holdout_width_ratio",
        ratio,
        expected=1.0,
        spread=spread_w,
        reason=VerifyReason.HOLDOUT_WIDTH,
        false_alarm=p,
        detail=f"{k} held-out vs {t} training frames",
    )

    # shift: each held-out frame's mean residual against the training frames' level jitter
    n_mean = float(np.mean([f.n for f in frames]))
    jitter2 = sum(f.level_adu**2 for f in train) / (t - 1)
    floor = math.sqrt(max(float(np.mean([f.level_var for f in frames])), 0.0))
    floor = max(floor, sigma_frame / math.sqrt(n_mean))
    jitter = math.sqrt(jitter2 + floor**2)
    scale = jitter * math.sqrt(1.0 + 1.0 / t)
    worst = max(held, key=lambda f: abs(f.level_adu))
    t_crit = t_isf(p / (2.0 * k), t - 1)  # Bonferroni over the held-out frames
    shift = significance_gate(
        "holdout_shift_sigma",
        worst.level_adu / scale,
        expected=0.0,
        spread=t_crit / z_threshold(p, sides=2),
        reason=VerifyReason.HOLDOUT_SHIFT,
        false_alarm=p,
        detail=f"{worst.level_adu:+.3g} ADU; frame level jitter {jitter:.3g} ADU from {t} "
        f"training frames (Student t, {t - 1} dof)",
    )

    # outliers: held-out count against the rate the training frames show (binomial)
    c_h = sum(f.outliers for f in held)
    c_t = sum(f.outliers for f in train)
    n_h = sum(f.n for f in held)
    n_t = sum(f.n for f in train)
    share = n_h / (n_h + n_t)
    mean, spread_c = binomial_upper_spread(c_h + c_t, share, p)
    if c_h + c_t == 0:
        spread_c = 1.0 / z_threshold(p, sides=1)
    # frames whose rates differ beyond Poisson (a warming uncooled camera brightens its hot
    # pixels frame by frame) are all-is-well too: the training frames' dispersion (Pearson
    # chi-square per dof) widens the spread, with Student's t on T - 1 dof
    rate_t = c_t / n_t
    dispersion = 1.0
    if c_t > 0 and t >= 3:
        chi2_t = sum((f.outliers - rate_t * f.n) ** 2 / (rate_t * f.n) for f in train)
        dispersion = max(chi2_t / (t - 1), 1.0)
    if dispersion > 1.0:
        t_fac = t_isf(p, t - 1) / z_threshold(p, sides=1)
        spread_c *= math.sqrt(dispersion) * t_fac
    outliers = significance_gate(
        "holdout_outlier_frac",
        c_h / n_h,
        expected=mean / n_h,
        spread=spread_c / n_h,
        reason=VerifyReason.HOLDOUT_OUTLIERS,
        false_alarm=p,
        side="upper",
        detail=f"{c_h} outlier events held out, {c_t} in training ({c_t / n_t:.2g} per pixel; "
        f"dispersion between frames {dispersion:.3g})",
    )
    values.update(
        holdout_width_ratio=ratio,
        holdout_width_spread=spread_w,
        frame_width_scatter=math.sqrt(between) / w_t,
        holdout_shift_sigma=worst.level_adu / scale,
        holdout_shift_adu=worst.level_adu,
        frame_level_jitter_adu=jitter,
        holdout_outlier_frac=c_h / n_h,
        train_outlier_frac=c_t / n_t,
        outlier_dispersion=dispersion,
    )
    return [width, shift, outliers, *metrics], values
