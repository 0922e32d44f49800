"""Two masters of one configuration against each other: does the dark signal scale with exposure?

A master dark holds its night's bias plus dark signal, and the dark signal of every pixel (amp
glow and the fixed dark-current pattern included) grows in proportion to the exposure. Two
masters ``a`` and ``b`` of one configuration and temperature, each with the master bias of its
own night, therefore satisfy, pixel by pixel,

    E = (M_a - B_a) - k (M_b - B_b) = 0 + noise,   k = t_a / t_b

when all is well. Whatever one set holds that does not follow the exposure leaves ``E != 0``:
stray light that reached the sensor while one set was taken (a light leak: a smooth pattern,
the light's own vignetting or a gradient), or a bias level that moved between a dark set and
its bias (a uniform offset). The hot pixels' own scale cannot see either (they add a few
electrons to thousands); the typical pixels can.

Statistics, on the pixels typical in both masters (hot-free, fully combined):

* ``level``: the mean of ``E``. Its spread when all is well combines each set's frame-level
  jitter over its frame count (a level common to one set's frames: ``k`` times for ``b``'s
  sets), and the sampling spread of the mean of the pixels. The gate fails two-sided at
  :func:`~darkflow.verify.z_threshold` of ``false_alarm``, beyond the materiality of the
  master's own per-pixel noise (as :mod:`darkflow.verify._level`): an offset smaller than it
  hides inside the uncertainty every light already carries. ``level > 0``: ``a`` holds more
  than ``b``'s rate predicts (or ``b`` less).
* ``structure``: whether the excess is uniform. The pixels are split into ``blocks x blocks``
  tiles; ``chi2 = sum((mean_tile - level)^2 / s_tile^2)`` with ``s_tile`` the robust standard
  deviation of ``E`` over the tile's pixel count, ``blocks^2 - 1`` degrees of freedom; its
  deviate (:func:`~darkflow.verify._gate.chi2_deviate`) against the one-sided threshold of
  ``false_alarm``; ``s_tile`` also holds the column and row patterns' own variance (half the
  robust variance of neighbouring lines' mean differences, less the pixels' noise) over the
  tile's columns and rows: another readout mode's own column pattern, white from line to
  line, is no large-scale structure. Structure tells stray light (a pattern) from a bias offset (uniform); it
  is evidence for the cause, not a gate of its own.

Temperatures: the comparison holds at one temperature. With both masters' temperatures
recorded the dark law's change over their difference (``2^(dT/doubling) - 1`` of the smaller
of the two dark levels, ``a``'s and ``b``'s scaled by ``k``) must lie within the level's spread;
otherwise not measured. When all is well both levels measure one dark signal; the excess the
gate looks for inflates one of them, and bounding the dark law by that one would let the fault
it looks for exempt itself from the test. Without a temperature
(an uncooled camera: its dark sets differ by whatever the night's temperature did) ``k`` is the
dark current's scale between the sets read on their common hot pixels (the median ratio of
their excesses over their neighbourhoods, whose level neither stray light nor an offset moves),
its standard error carried into the level's spread (times ``b``'s mean level) and each tile's
(times the tile's departure from it: amp glow); ``thermal_fitted`` says so. Amp glow that does
not follow the sensor's temperature like the dark current leaves a share of its pattern the
fit cannot see: such a comparison names the cause of a failure the master's own gates found
(:mod:`darkflow.pipeline.crosscheck`), it lowers no status by itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from darkflow.model import MasterDark
from darkflow.stats import mad_std
from darkflow.verify._gainpair import GAIN, GainOrThermal, gain_or_thermal
from darkflow.verify._gate import chi2_deviate, combine_spread, z_threshold
from darkflow.verify._stability import frame_jitter

__all__ = ["PairExcess", "PairInputs", "exposure_pair_excess", "pair_inputs"]


@dataclass(frozen=True)
class PairExcess:
    """The outcome of :func:`exposure_pair_excess` (``measured=False``: ``why`` says why)."""

    measured: bool
    why: str = ""
    level: float = math.nan  # mean of E (ADU)
    spread: float = math.nan  # its 1-sigma when all is well (ADU)
    z: float = math.nan
    threshold: float = math.nan
    materiality: float = 0.0
    failed: bool = False
    structure_z: float = math.nan  # deviate of the tiles' chi-square
    structured: bool = False
    k: float = math.nan
    n_pixels: int = 0
    thermal_fitted: bool = False  # no temperature: ``k`` read on the hot pixels
    # a failed comparison that a scale of ``b``'s dark signal explains: that scale over ``k``
    scale: float = math.nan
    # uncooled (:mod:`darkflow.verify._uncooled`): k's standard error, b's mean dark level
    # (ADU), the exposure-ratio comparison's deviate, and whether the pair failed both
    k_sd: float = 0.0
    mean_b: float = math.nan
    exposure_z: float = math.nan
    verdict: bool = False  # uncooled: both comparisons failed in one direction
    # what the hot pixels' scale is (:mod:`darkflow.verify._gainpair`): "gain", "thermal" or
    # "" (not measured); "gain" also when the typical pixels do not follow it (``scale`` NaN)
    scale_cause: str = ""
    scale_cause_why: str = ""

    @property
    def scaled(self) -> bool:
        """Whether a scale of the dark signal explains the failure (not a level, not light),
        or the hot pixels' photon transfer shows another gain."""
        return self.failed and (math.isfinite(self.scale) or self.scale_cause == GAIN)


def _typical_both(a: MasterDark, b: MasterDark) -> np.ndarray:
    ok = np.isfinite(a.data) & np.isfinite(b.data)
    for m in (a, b):
        ok &= m.n_used >= max(2, 0.8 * m.meta.n_frames)
        if m.saturated is not None:
            ok &= ~m.saturated.astype(bool)
    if not ok.any():
        return ok
    for m in (a, b):  # hot-free in both: the 20th-80th level percentiles of each
        lo, hi = np.percentile(m.data[ok], [20, 80])
        ok &= (m.data >= lo) & (m.data <= hi)
    return ok


@dataclass(frozen=True, eq=False)
class PairInputs:
    """What both of :func:`exposure_pair_excess`'s comparisons of one pair start from
    (:func:`pair_inputs`): the typical pixels and each master's dark signal (read-only)."""

    typical: np.ndarray
    n: int
    d_a: np.ndarray
    d_b: np.ndarray
    mean_b: float


def pair_inputs(
    a: MasterDark, b: MasterDark, bias_a: MasterDark, bias_b: MasterDark, *, blocks: int = 4
) -> PairInputs | PairExcess:
    """The inputs of :func:`exposure_pair_excess` for one pair, computed once for several of its
    comparisons; a :class:`PairExcess` (not measured) when the pair cannot be compared."""
    shapes = {m.data.shape for m in (a, b, bias_a, bias_b)}
    if len(shapes) != 1:
        return PairExcess(False, "shapes differ")
    t_a, t_b = float(a.meta.exptime_s or 0.0), float(b.meta.exptime_s or 0.0)
    if not (t_a > 0 and t_b > 0) or not (a.meta.includes_bias and b.meta.includes_bias):
        return PairExcess(False, "no exposure or bias-free masters")
    typical = _typical_both(a, b)
    n = int(np.count_nonzero(typical))
    if n < 100 * blocks * blocks:
        return PairExcess(False, f"{n} typical pixels", k=t_a / t_b, n_pixels=n)
    d_a = (a.data - bias_a.data).astype(np.float64)
    d_b = (b.data - bias_b.data).astype(np.float64)
    for plane in (typical, d_a, d_b):
        plane.flags.writeable = False
    return PairInputs(typical, n, d_a, d_b, float(np.mean(d_b[typical])))


def exposure_pair_excess(
    a: MasterDark,
    b: MasterDark,
    bias_a: MasterDark,
    bias_b: MasterDark,
    *,
    false_alarm: float,
    doubling_c: float = 6.3,
    blocks: int = 4,
    fit_scale: bool = True,
    inputs: PairInputs | PairExcess | None = None,
    attribute: bool = True,
) -> PairExcess:
    """``E = (a - bias_a) - (t_a / t_b) (b - bias_b)`` on the typical pixels: level and pattern.

    ``bias_a``/``bias_b``: the master biases of each master's own night (the same object when
    the two share a night). See the module docstring for the statistics and their spreads.
    ``inputs``: :func:`pair_inputs` of the same pair and ``blocks``, when another comparison of
    the pair already computed them. ``attribute=False`` leaves a failure's scale and its cause
    unmeasured (``scale`` NaN, ``scale_cause`` empty).
    """
    if inputs is None:
        inputs = pair_inputs(a, b, bias_a, bias_b, blocks=blocks)
    if isinstance(inputs, PairExcess):
        return inputs
    typical, n, d_a, d_b, mean_b = (
        inputs.typical,
        inputs.n,
        inputs.d_a,
        inputs.d_b,
        inputs.mean_b,
    )
    t_a, t_b = float(a.meta.exptime_s or 0.0), float(b.meta.exptime_s or 0.0)
    temp_a, temp_b = a.meta.temp_c, b.meta.temp_c
    k, k_sd = t_a / t_b, 0.0
    fitted = (temp_a is None or temp_b is None) and fit_scale
    thermal = 0.0
    if fitted:
        # an uncooled camera without a sensor temperature: its dark sets are taken at whatever
        # temperature the night had. The dark current's scale between them (exposure and
        # temperature together) is read on the hot pixels, whose own level no offset or stray
        # light moves; its uncertainty joins the level's spread and the tiles'
        ratio = _hot_pixel_ratio(a, b, d_a, d_b)
        if ratio is None:
            return PairExcess(False, "no temperature and too few hot pixels", k=k, n_pixels=n)
        k, k_sd = ratio
    elif temp_a is not None and temp_b is not None:
        d_t = float(temp_a) - float(temp_b)
        dark = min(abs(float(np.mean(d_a[typical]))), abs(k * mean_b))
        thermal = abs(2.0 ** (d_t / doubling_c) - 1.0) * dark
    e = d_a - k * d_b
    values = e[typical]
    level = float(np.mean(values))
    sd = float(mad_std(values))
    n_a, n_b = max(a.meta.n_frames, 2), max(b.meta.n_frames, 2)
    same_bias = bias_a is bias_b

    def spread_of(k: float, sd: float, k_sd: float) -> float:
        bias_terms = (
            (abs(1.0 - k) * frame_jitter(bias_a) / math.sqrt(max(bias_a.meta.n_frames, 2)),)
            if same_bias
            else (
                frame_jitter(bias_a) / math.sqrt(max(bias_a.meta.n_frames, 2)),
                k * frame_jitter(bias_b) / math.sqrt(max(bias_b.meta.n_frames, 2)),
            )
        )
        return combine_spread(
            frame_jitter(a) / math.sqrt(n_a),
            k * frame_jitter(b) / math.sqrt(n_b),
            *bias_terms,
            sd / math.sqrt(n),
            k_sd * abs(mean_b),
        )

    spread = spread_of(k, sd, k_sd)
    if not fitted and thermal > spread:
        return PairExcess(
            False,
            f"temperatures differ by {d_t:.2g} C ({thermal:.2g} ADU of dark law)",
            k=k,
            n_pixels=n,
        )
    thr = z_threshold(false_alarm)
    # the holding master's own per-pixel noise (its frames over their count), in E's units:
    # below it the offset hides inside the uncertainty every light carries for that master.
    # ``a`` holds a positive excess as it is; ``b`` a negative one, ``k`` times its own: its
    # noise counts ``k`` times as well, so the verdict does not depend on which master is
    # ``a`` (with ``a``'s noise for both, a short master's excess seen on a 6x longer one's
    # scale passed for six times what it is)
    frame_sd = sd / math.sqrt(1.0 / n_a + k * k / n_b)
    materiality = frame_sd / math.sqrt(n_a) if level >= 0 else k * frame_sd / math.sqrt(n_b)
    z = level / spread if spread > 0 else math.inf * np.sign(level)
    failed = bool(abs(level) > thr * spread + materiality)
    thr_1 = z_threshold(false_alarm, sides=1)
    structure_z = _structure_z(e, typical, d_b, level, sd, k_sd, blocks)
    structured = bool(failed and math.isfinite(structure_z) and structure_z > thr_1)
    scale, cause = math.nan, None
    ratio = _hot_pixel_ratio(a, b, d_a, d_b) if failed and not fitted and attribute else None
    if ratio is not None and abs(ratio[0] - k) > thr * ratio[1] and (ratio[0] - k) * level > 0:
        # the hot pixels' scale departs from the exposures' in the excess's direction: does
        # that scale of b's dark signal (a gain, a temperature the headers do not show) leave
        # no level and no pattern beyond their spread?
        r, r_sd = ratio
        rest = d_a - r * d_b
        r_level = float(np.mean(rest[typical]))
        r_sd_pix = float(mad_std(rest[typical]))
        r_spread = spread_of(r, r_sd_pix, r_sd)
        # a pattern it leaves counts beyond the master's per-pixel noise, as the level does
        r_z = _structure_z(rest, typical, d_b, r_level, r_sd_pix, r_sd, blocks, materiality)
        if abs(r_level) <= thr * r_spread + materiality and not (
            math.isfinite(r_z) and r_z > thr_1
        ):
            scale = r / k
        # gain or temperature? Another gain shows in the hot pixels' photon transfer whatever
        # else the typical pixels hold (a camera's offset in ADU often moves with its gain):
        # a scale the typical pixels do not follow is named only when it is a gain
        cause = _scale_cause(a, b, d_a, d_b, r / k, ratio, false_alarm)
        if not math.isfinite(scale) and cause.cause != GAIN:
            cause = None
    return PairExcess(
        True,
        "",
        level=level,
        spread=spread,
        z=float(z),
        threshold=thr,
        materiality=materiality,
        failed=failed,
        structure_z=float(structure_z),
        structured=structured,
        k=k,
        n_pixels=n,
        thermal_fitted=fitted,
        scale=scale,
        k_sd=k_sd,
        mean_b=mean_b,
        scale_cause=cause.cause if cause is not None else "",
        scale_cause_why=cause.why if cause is not None else "",
    )


def _scale_cause(
    a: MasterDark,
    b: MasterDark,
    d_a: np.ndarray,
    d_b: np.ndarray,
    scale: float,
    ratio: tuple[float, float],
    false_alarm: float,
) -> GainOrThermal:
    """Another gain or a warmer sensor behind ``scale`` (:func:`~darkflow.verify._gainpair.
    gain_or_thermal` on the common hot pixels of :func:`_hot_pixel_ratio`, ``ratio`` its
    outcome)."""
    hot = _common_hot(a, b, d_a, d_b)
    if hot is None:
        return GainOrThermal(why="too few common hot pixels")
    return gain_or_thermal(a, b, *hot, scale, scale * ratio[1] / ratio[0], false_alarm=false_alarm)


def _structure_z(
    e: np.ndarray,
    typical: np.ndarray,
    d_b: np.ndarray,
    level: float,
    sd: float,
    k_sd: float,
    blocks: int,
    materiality: float = 0.0,
) -> float:
    """The deviate of the chi-square of ``e``'s ``blocks x blocks`` tiles' means about
    ``level``, each departure less ``materiality`` (NaN with no tile of 100 typical pixels)."""
    mean_b = float(np.mean(d_b[typical]))
    # the pattern of the excess: tiles' means against their own sampling spread, which holds
    # the column and row patterns' scatter (another readout mode's own column pattern, white
    # from line to line, is no large-scale structure; stray light's gradient or vignetting is)
    col_var = _line_variance(e, typical, 0, sd)
    row_var = _line_variance(e, typical, 1, sd)
    ny, nx = e.shape
    ys = np.linspace(0, ny, blocks + 1).astype(int)
    xs = np.linspace(0, nx, blocks + 1).astype(int)
    chi2, dof = 0.0, -1
    for i in range(blocks):
        for j in range(blocks):
            tile = e[ys[i] : ys[i + 1], xs[j] : xs[j + 1]][
                typical[ys[i] : ys[i + 1], xs[j] : xs[j + 1]]
            ]
            if tile.size < 100:
                continue
            # the fitted scale's error leaves its share of b's own pattern (amp glow)
            glow = k_sd * (float(np.mean(d_b[ys[i] : ys[i + 1], xs[j] : xs[j + 1]])) - mean_b)
            s = math.sqrt(
                sd * sd / tile.size
                + col_var / max(xs[j + 1] - xs[j], 1)
                + row_var / max(ys[i + 1] - ys[i], 1)
                + glow * glow
            )
            chi2 += (max(abs(float(np.mean(tile)) - level) - materiality, 0.0) / s) ** 2
            dof += 1
    return chi2_deviate(chi2, 1.0, dof) if dof >= 1 else math.nan


def _line_variance(e: np.ndarray, typical: np.ndarray, axis: int, sd: float) -> float:
    """The variance of a line pattern of ``e`` (columns: ``axis=0``; rows: 1) beyond the
    pixels' noise: half the robust variance of the differences of neighbouring lines' means
    (a smooth gradient barely moves them), less the pixels' share of each mean (``sd²`` over
    its typical pixels)."""
    count = typical.sum(axis=axis)
    total = np.where(typical, e, 0.0).sum(axis=axis)
    use = count >= 10
    if np.count_nonzero(use) < 10:
        return 0.0
    mean = total[use] / count[use]
    diff_var = float(mad_std(np.diff(mean))) ** 2 / 2.0
    noise = sd * sd * float(np.mean(1.0 / count[use]))
    return max(diff_var - noise, 0.0)


def _hot_pixel_ratio(
    a: MasterDark, b: MasterDark, d_a: np.ndarray, d_b: np.ndarray, min_pixels: int = 20
) -> tuple[float, float] | None:
    """The dark-current scale of ``a`` against ``b`` on their common hot pixels: the median of
    the ratio of each one's excess over its 5x5 neighbourhood, and that median's standard
    error (``1.2533`` robust sigmas over the root of the count); ``None`` with fewer than
    ``min_pixels`` pixels hot in every dark of both sets and 10 sigmas above their
    neighbourhoods in both masters (a selection on both sides, far above the noise, that
    leaves the ratio unbiased)."""
    hot = _common_hot(a, b, d_a, d_b, min_pixels)
    if hot is None:
        return None
    ok, ex_a, ex_b = hot
    ratios = ex_a[ok] / ex_b[ok]
    k = float(np.median(ratios))
    k_sd = 1.2533 * float(mad_std(ratios)) / math.sqrt(ratios.size)
    return k, k_sd


def _common_hot(
    a: MasterDark, b: MasterDark, d_a: np.ndarray, d_b: np.ndarray, min_pixels: int = 20
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The hot pixels of :func:`_hot_pixel_ratio` (a mask) and each master's excess over its
    5x5 neighbourhood's median; ``None`` with fewer than ``min_pixels``."""
    from scipy.ndimage import median_filter

    ok = np.isfinite(d_a) & np.isfinite(d_b)
    for m in (a, b):
        ok &= m.n_used >= max(2, 0.8 * m.meta.n_frames)
        ok &= np.asarray(m.hot_persistence) >= 0.9
        if m.saturated is not None:
            ok &= ~m.saturated.astype(bool)
    if np.count_nonzero(ok) < min_pixels:
        return None
    ex_a = d_a - median_filter(d_a, size=5, mode="nearest")
    ex_b = d_b - median_filter(d_b, size=5, mode="nearest")
    with np.errstate(invalid="ignore"):
        ok &= (ex_a > 10.0 * a.uncertainty) & (ex_b > 10.0 * b.uncertainty)
    if np.count_nonzero(ok) < min_pixels:
        return None
    return ok, ex_a, ex_b
