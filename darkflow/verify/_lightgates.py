"""The light checks as statistical tests: each statistic with its spread when all is well.

Every function here takes the arrays of one calibrated light (already cut to the analysed rows)
and returns :class:`~darkflow.verify.Metric` gates built by
:func:`~darkflow.verify.significance_gate`, plus the numbers for the frame report. What each
statistic is, what it is when the calibration is right, and how much it scatters then, for the
actual numbers of pixels, columns and stars and the uncertainty of the inputs (gain, read noise,
the master's noise, the levels of the frames): ``docs/verification.md``, "Light gates".

:class:`NoiseBudget` carries what the predicted uncertainty of the light is made of and how well
each part is known; :func:`noise_budget` builds it from the masters the light was calibrated
with.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from darkflow.model import GainEstimate, MasterDark
from darkflow.stats import cfa, mad_std, robust_std
from darkflow.stats._image import ContentCache, centre_rows_where
from darkflow.stats._robust import median as _median
from darkflow.stats._robust import nanmedian as _nanmedian
from darkflow.stats._shares import noise_share_medians
from darkflow.stats._tails import deep_negative_terms
from darkflow.subtract.gain import frame_level_variance
from darkflow.verify._gate import (
    chi2_deviate,
    combine_spread,
    poisson_deviate,
    t_inflation,
    z_threshold,
)
from darkflow.verify._metrics import (
    Metric,
    VerifyReason,
    not_measured,
    significance_gate,
)
from darkflow.verify._residuals import (
    NEIGHBOUR_VAR_FACTOR,
    batch_log_variance,
    neighbour_median,
    vertical_residual,
)

__all__ = ["NoiseBudget", "noise_budget"]

R = VerifyReason
_NORMAL = NormalDist()
HOLE_SIGMA = 5.0  # a background pixel this far below its same-colour neighbours is a hole
MIN_BATCH = 50  # values per batch of the batch-means standard errors
# Pixel response non-uniformity of astronomical sensors (flat-field structure), an upper bound:
# the sky's pixel-to-pixel pattern is in a dark-calibrated light, in no noise model, and one
# light cannot tell it from noise; the noise gate allows it
PRNU_MAX = 0.01
STABLE_PERSISTENCE = 0.9  # a master's pixel high in this share of its darks is a stable hot pixel
MIN_PROVABLE_FRAMES = 2  # one dark: a cosmic ray of its frame looks like a stable hot pixel


@dataclass(frozen=True)
class NoiseBudget:
    """What a calibrated light's predicted uncertainty is made of, and how well it is known.

    ``read_var``: the read variance (ADU²) in the uncertainty, with its relative 1-sigma
    ``read_rel_sigma``; ``common_var``: the part of it that is the frame-to-frame level jitter
    of the frames it was measured on (no local residual can see it); ``gain``: e-/ADU with its
    uncertainty (``None``: no shot noise in the prediction); ``master_frames``: frames behind
    the master's per-pixel variance; ``frame_variance``: per-pixel variance of one dark frame,
    scaled like the model (flickering hot pixels scatter more than their shot noise);
    ``scale_rel_sigma``: the relative uncertainty the match states for the model's dark signal;
    ``scale_assumed_rel_sigma``: the part of it that no measurement stands behind (a dark-current
    mismatch assumed for a temperature that is not known: ``matching.unknown_temp_error``); the
    light's hot pixels measure that mismatch, so the dark-scale gate replaces it by what they
    can resolve (:func:`scale_gates`);
    ``level_sigma``: 1-sigma (ADU) of the light's level against the model's (frame-level
    jitter of the light, the master and the bias); ``stable_hot``: the master's pixels that were
    high in nearly every dark (``hot_persistence >= 0.9``), the only ones a light must hold too
    (a pixel high in some darks only is a cosmic ray, a flickering pixel or a defect of a few
    frames, in each master of the recipe); ``None`` from a single dark: its hot pixels cannot
    be told from the cosmic rays of its frame, and whether the light holds the dark signal is
    then provable only when the fitted pixels follow one scale (no ``no_dark_signal``, no
    rescaling otherwise); ``clip_tail``: per pixel, the smallest over the recipe's masters and
    the bias of :func:`clip_tail` (how improbable the share of the pixel's frames the combine
    clipped is for one population: a random-telegraph pixel's frames hold two levels, the
    master one of them).
    """

    read_var: float = 0.0
    read_rel_sigma: float = 0.0
    common_var: float = 0.0
    gain: GainEstimate | None = None
    master_frames: int | None = None
    frame_variance: np.ndarray | None = None
    scale_rel_sigma: float = 0.0
    level_sigma: float = 0.0
    stable_hot: np.ndarray | None = None
    scale_assumed_rel_sigma: float = 0.0
    clip_tail: np.ndarray | None = None

    @property
    def scale_measured_rel_sigma(self) -> float:
        """The model's scale uncertainty without its assumed part (a measured law's, an
        exposure scaling's)."""
        rest = (
            self.scale_rel_sigma**2 - min(self.scale_assumed_rel_sigma, self.scale_rel_sigma) ** 2
        )
        return math.sqrt(max(rest, 0.0))

    def to_dict(self) -> dict[str, Any]:
        g = self.gain
        return {
            "read_var": self.read_var,
            "read_rel_sigma": self.read_rel_sigma,
            "common_var": self.common_var,
            "gain": None if g is None else {"value": g.value, "sigma": g.sigma, "source": g.source},
            "master_frames": self.master_frames,
            "scale_rel_sigma": self.scale_rel_sigma,
            "scale_assumed_rel_sigma": self.scale_assumed_rel_sigma,
            "level_sigma": self.level_sigma,
        }


def _read_rel_sigma(source: MasterDark | None, read_var: float) -> float:
    """How well the read variance is known: the disagreement of two consistent estimators.

    ``read_var`` is a trimmed mean of per-pixel sample variances; their median, corrected by the
    median of ``chi2(n-1) / (n-1)``, estimates the same number when every pixel has the same read
    noise. The relative difference measures the pixel-to-pixel spread of the read noise (and of
    any other per-pixel term) that one number stands for, plus the sampling of both.
    """
    if source is None or not read_var > 0:
        return 0.0
    from darkflow.subtract import median_frame_variance

    median_est, count, k = median_frame_variance(source)
    if count == 0 or not k > 1:
        return 0.0
    sampling = math.sqrt(2.0 / ((k - 1.0) * count))
    if not (math.isfinite(median_est) and median_est > 0):
        # most pixels read the same value in every frame (coarse steps of the raw data): the
        # median says nothing about the read variance, only the sampling is stated
        return sampling
    return math.hypot(abs(math.log(median_est / read_var)), sampling)


def _light_frame_variance(
    master: MasterDark, bias: MasterDark | None, scale: float, per_frame_sigma
) -> np.ndarray:
    """Per-pixel variance of one light frame at the model's scale, from the darks' scatter.

    A raw dark frame's variance is the readout's (read noise, a flickering pixel's telegraph
    states) plus the dark current's shot noise. With a master bias of the master's shape the
    readout part is the bias frames' own scatter and stays what it is at any exposure, while
    the shot part grows with the exposure: ``V_b + k max(V_d - V_b, 0)`` (a 10 s light from a
    30 s master keeps its flickering pixels' full scatter, which ``k² V_d`` cut ninefold).
    Without a bias (or with a master stored bias-subtracted) the dark's scatter is scaled
    like the model, ``k² V_d``."""
    pf = np.square(per_frame_sigma(master))
    if (
        bias is not None
        and bias.data.shape == master.data.shape
        and not master.meta.bias_subtracted
        and scale > 0
    ):
        pb = np.square(per_frame_sigma(bias))
        return pb + np.float32(scale) * np.maximum(pf - pb, np.float32(0.0))
    return pf * np.float32(scale * scale)


def noise_budget(
    master: MasterDark,
    *,
    bias: MasterDark | None,
    read_var: float,
    gain: GainEstimate | None,
    scale_factor: float = 1.0,
    scale_rel_sigma: float = 0.0,
    others: tuple[MasterDark, ...] = (),
    scale_assumed_rel_sigma: float = 0.0,
) -> NoiseBudget:
    """The :class:`NoiseBudget` of a light calibrated with ``master`` (and ``bias``).

    The read variance comes from the bias when there is one (else from the dark master, as
    :func:`darkflow.subtract.noise_model_variance` does); its frame-level jitter from the
    masters' recorded frame levels (``provenance["frame_levels"]``). ``others``: the recipe's
    other masters (an interpolation's second master): a stable hot pixel is stable in each of
    them, and their frames count towards the 2 independent darks that tell a hot pixel from a
    cosmic ray. ``scale_assumed_rel_sigma``: the part of ``scale_rel_sigma`` that is assumed,
    not measured (see :class:`NoiseBudget`).
    """
    from darkflow.subtract import per_frame_sigma

    source = bias if bias is not None else master
    common, _ = frame_level_variance(source)
    dark_jitter, n_dark = frame_level_variance(master)
    bias_jitter, n_bias = frame_level_variance(bias)
    light_jitter = dark_jitter if n_dark >= 2 else bias_jitter
    level_var = light_jitter
    level_var += dark_jitter / n_dark if n_dark else 0.0
    level_var += bias_jitter / n_bias if n_bias else 0.0
    frames = int(np.median(master.n_used)) if master.n_used.size else None
    pf = _light_frame_variance(master, bias, scale_factor, per_frame_sigma)
    read_rel = _read_rel_sigma(source, read_var)
    if bias is None and scale_rel_sigma > 0:
        # without a bias the "read" variance is the darks' temporal variance: their dark
        # current's shot noise at their temperature is in it, and the light's dark signal is
        # known only to the model's stated scale uncertainty (at most all of it is dark shot)
        read_rel = math.hypot(read_rel, float(scale_rel_sigma))
    return NoiseBudget(
        read_var=float(read_var),
        read_rel_sigma=read_rel,
        common_var=min(common, 0.9 * read_var) if read_var > 0 else 0.0,
        gain=gain,
        master_frames=frames,
        frame_variance=pf.astype(np.float32),
        scale_rel_sigma=float(scale_rel_sigma),
        level_sigma=math.sqrt(level_var),
        stable_hot=_stable_hot((master, *others)),
        scale_assumed_rel_sigma=float(scale_assumed_rel_sigma),
        clip_tail=_recipe_clip_tail((master, *others, *(() if bias is None else (bias,)))),
    )


_CLIP_TAIL: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def clip_tail(master: MasterDark) -> np.ndarray | None:
    """Per pixel, ``P(X >= R)`` for ``X ~ Binomial(N, q)``: ``R`` of the pixel's ``N`` values
    the combine clipped (``n_low + n_high``), ``q`` the share a pixel of one population loses.

    The clip alone takes ``Q(k_low) + Q(k_high)`` of a Gaussian pixel's values; transients
    (cosmic rays) and the frames' level jitter take more, in every pixel alike: ``q`` is the
    larger of that and the master's clipped share over all its pixels. A pixel far beyond it is
    not one population: a random-telegraph pixel, whose frames hold two levels (the master
    keeps the majority's, its per-frame scatter is that state's alone). ``None`` when the
    master records no counts. Computed once per master object (every light asks).
    """
    cached = _CLIP_TAIL.get(master)
    if cached is not None:
        return cached
    n_used = np.asarray(master.n_used)
    if n_used.shape != master.data.shape or master.n_low.shape != n_used.shape:
        return None
    clipped = master.n_low.astype(np.int64) + master.n_high.astype(np.int64)
    total = n_used.astype(np.int64) + clipped
    params = (master.provenance or {}).get("params") or {}
    from darkflow.stats._dist import norm_sf

    k_lo = float(params.get("sigma_low", 3.0))
    k_hi = float(params.get("sigma_high", 3.0))
    values = float(total.sum())
    share = float(clipped.sum()) / values if values > 0 else 0.0
    q = min(max(share, float(norm_sf(k_lo)) + float(norm_sf(k_hi))), 1.0)
    out = np.ones(n_used.shape, np.float32)
    some = clipped > 0
    if some.any():
        from scipy.special import bdtrc  # P(X > k) of a binomial, vectorised

        out[some] = bdtrc(clipped[some] - 1, total[some], q)
    out.setflags(write=False)
    _CLIP_TAIL[master] = out
    return out


def _recipe_clip_tail(masters: tuple[MasterDark, ...]) -> np.ndarray | None:
    """The smallest :func:`clip_tail` over the masters of one shape (the first one's)."""
    shape = masters[0].data.shape
    tails = [clip_tail(m) for m in masters if m.data.shape == shape]
    tails = [t for t in tails if t is not None]
    if not tails:
        return None
    return tails[0] if len(tails) == 1 else np.minimum.reduce(tails)


def _stable_hot(masters: tuple[MasterDark, ...]) -> np.ndarray | None:
    """Pixels high in nearly every dark of every master; ``None`` from fewer than 2 darks."""
    shape = masters[0].data.shape
    use = [m for m in masters if m.hot_persistence.shape == shape]
    if sum(m.meta.n_frames for m in use) < MIN_PROVABLE_FRAMES:
        return None
    stable = np.ones(shape, dtype=bool)
    for m in use:
        stable &= np.asarray(m.hot_persistence) >= STABLE_PERSISTENCE
    return stable


def _phase_masks(shape: tuple[int, int], colour: bool) -> list[np.ndarray]:
    if not colour:
        return [np.ones(shape, dtype=bool)]
    out = []
    for dy, dx in cfa.PHASES:
        m = np.zeros(shape, dtype=bool)
        m[dy::2, dx::2] = True
        out.append(m)
    return out


# ----------------------------------------------------------------------------- noise level
def variance_gate(
    c: np.ndarray,
    u: np.ndarray,
    valid: np.ndarray,
    model_var: np.ndarray,
    budget: NoiseBudget,
    *,
    colour: bool,
    false_alarm: float,
    dark_signal: np.ndarray | None = None,
    systematic_var: np.ndarray | None = None,
    sky_adu: float | None = None,
) -> tuple[Metric, dict[str, float]]:
    """Measured background noise against the propagated uncertainty (log of the variance ratio).

    Statistic ``T = log(w²)``, ``w`` the robust width of the vertical residuals
    (:func:`~darkflow.verify._residuals.vertical_residual`) over the background pixels.
    Expected ``log(1 - (common_var + (s S)²) / u²)`` (median over the pixels): the frame-level
    jitter in the read variance and the model's stated scale uncertainty ``s`` times its dark
    signal ``S`` are in ``u`` but common to all pixels, so no local residual sees them. Spread: batch-means standard error (Student-t widened for the
    number of batches), plus the shares of the prediction times their relative uncertainty:
    shot noise x gain, read noise x its estimate, and the master's per-pixel variance estimated
    from ``n`` frames (``sqrt(2 / (n - 1))``). Without a gain the prediction holds no shot noise:
    only a too *low* noise is judged. ``systematic_var``: the model's own record of that scale
    term per pixel (:attr:`~darkflow.subtract.DarkModel.systematic_variance`, also known
    without a bias); when given it replaces ``(s S)²`` and leaves the master's share.
    ``sky_adu``: the background's level (the signal behind its shot noise), known to
    ``budget.level_sigma``: ``shot share x level_sigma / sky_adu`` joins the spread.
    """
    zv = _without_structured_rows(vertical_residual(c, u, valid, cfa=colour))
    log_var, se, n, batches = batch_log_variance(zv, min_per_batch=MIN_BATCH)
    values: dict[str, float] = {"variance_pixels": float(n)}
    if not math.isfinite(log_var) or not math.isfinite(se):
        return not_measured("log_variance_ratio", R.FEW_BACKGROUND_PIXELS, f"{n} pixels"), values
    gain = budget.gain
    # the median of each share over the background pixels, without the shares' rows (numba:
    # a bracket from a sample, one counting pass; the former rows and medians its twin, the
    # same values)
    shares = noise_share_medians(
        u,
        valid,
        model_var,
        read_var=budget.read_var,
        common_var=budget.common_var,
        dark_signal=dark_signal,
        scale_rel_sigma=budget.scale_rel_sigma,
        prnu=PRNU_MAX,
        gain=None if gain is None else gain.value,
        systematic_var=systematic_var,
    )
    shot_share, read_share, master_share, common = shares[:4]
    expected = math.log(1.0 - common)
    n_m = budget.master_frames or 0
    terms = [
        se * t_inflation(batches - 1, false_alarm),
        read_share * budget.read_rel_sigma,
        master_share * math.sqrt(2.0 / (n_m - 1)) if n_m > 1 else master_share,
    ]
    side = "both"
    if gain is None:
        side = "lower"  # the prediction lacks the shot noise: an excess is not evidence
    else:
        terms.append(shot_share * gain.rel_sigma)
        # the signal behind the shot noise is the light's level above the model's, known to
        # the level's own uncertainty (a bias of another night: its offset reads as sky)
        if budget.level_sigma > 0 and shot_share > 0 and sky_adu is not None and sky_adu > 0:
            terms.append(shot_share * min(budget.level_sigma / sky_adu, 1.0))
        # the sky's pixel response non-uniformity is in every light and in no noise model
        prnu_share = shares[4]
        terms.append(math.log1p(prnu_share))
    spread = combine_spread(*terms)
    values.update(
        light_variance_ratio=math.exp(log_var),
        variance_expected=math.exp(expected),
        shot_share=shot_share,
        read_share=read_share,
        master_share=master_share,
    )
    detail = (
        f"{n} px in {batches} batches; shares shot {shot_share:.2f} read {read_share:.2f} "
        f"master {master_share:.2f}"
    )
    metric = significance_gate(
        "log_variance_ratio",
        log_var,
        expected=expected,
        spread=spread,
        reason=R.LIGHT_VARIANCE_EXCESS,
        reason_low=R.LIGHT_VARIANCE_LOW,
        side=side,
        false_alarm=false_alarm,
        not_measured_reason=R.FEW_BACKGROUND_PIXELS,
        detail=detail,
    )
    if side == "lower" and metric.failed:
        metric = significance_gate(
            "log_variance_ratio",
            log_var,
            expected=expected,
            spread=spread,
            reason=R.LIGHT_VARIANCE_LOW,
            side="lower",
            false_alarm=false_alarm,
            detail=detail,
        )
    return metric, values


def _without_structured_rows(z: np.ndarray, limit: float = 5.0) -> np.ndarray:
    """``z`` without the rows whose mean residual is an outlier among the rows' means.

    A sharp edge of the scene along a row (the edge of a slit, a spectral line across the
    frame) shifts the vertical residuals of the rows next to it all together, like no noise
    does: row noise shifts rows too, but by a Gaussian amount that the other rows share.
    Rows whose mean lies more than ``limit`` robust sigmas from the median of the row means
    hold structure of the scene, not noise, and are left out.
    """
    finite = np.isfinite(z)
    n = np.count_nonzero(finite, axis=1)
    rows = n >= 8
    if np.count_nonzero(rows) < 8:
        return z
    with np.errstate(invalid="ignore"):
        means = np.where(rows, np.nansum(np.where(finite, z, 0.0), axis=1) / np.maximum(n, 1), 0)
    centre = float(_median(means[rows]))
    spread = mad_std(means[rows], center=centre)
    if not spread > 0:
        return z
    odd = rows & (np.abs(means - centre) > limit * spread)
    if not odd.any():
        return z
    out = z.copy()
    out[odd] = np.nan
    return out


# ----------------------------------------------------------------------------- dark scale
def fit_sigma(fit) -> float:
    """The hot-pixel fit's own 1-sigma of ``alpha``: its formal error scaled by the Birge ratio
    ``sqrt(max(1, chi2_red))`` (pixels scattering more than their noise widen it)."""
    return fit.sigma * math.sqrt(max(1.0, fit.chi2_red if math.isfinite(fit.chi2_red) else 1.0))


def scale_gates(
    fit, budget: NoiseBudget, *, false_alarm: float, provable: bool = True
) -> tuple[list[Metric], float]:
    """The model's dark-signal scale from the light's hot pixels; whether it holds any.

    ``alpha`` (light's hot-pixel excess over the model's, minus 1) has the fit's 1-sigma scaled
    by the Birge ratio ``sqrt(max(1, chi2_red))``, combined with the relative uncertainty the
    match states for the model from measurements (a fitted thermal law, an exposure scaling).
    A mismatch the match only *assumed* (``budget.scale_assumed_rel_sigma``: the temperature of
    the light or of the darks is unknown) is no spread of the statistic: the hot pixels measure
    that mismatch. It becomes the gate's materiality instead, taken from the light itself: the
    scale error that moves its typical fitted hot pixel by one standard deviation of that
    pixel's own noise (``fit.pixel_rel_noise``), below which the error leaves nothing a user
    could see. The gate then fails when ``|alpha| > z* sigma + m`` (false-alarm probability at
    most ``false_alarm`` for any true error within ``m``).
    Not measured when even ``alpha = -1`` (no dark signal at all) would be within the
    threshold. When ``alpha`` fails low and the fraction of the model's dark signal present,
    ``1 + alpha``, is not significantly above 0 by the fit's own spread (the model's scale
    uncertainty multiplies the fraction; it is no spread of a zero), the light holds no dark
    signal (``no_dark_signal``); significantly below -1/2 (more over-subtracted than the dark signal
    it removes), ``harmful_subtraction``. Neither is concluded unless the hot pixels are
    ``provable`` (stable in the master's darks).
    Returns the gates and the fit's total 1-sigma (NaN when not measured).
    """
    thr = z_threshold(false_alarm)
    sigma = fit_sigma(fit)
    assumed = budget.scale_assumed_rel_sigma > 0
    total = combine_spread(
        sigma, budget.scale_measured_rel_sigma if assumed else budget.scale_rel_sigma
    )
    allowance = 0.0
    if assumed:
        rel = getattr(fit, "pixel_rel_noise", math.nan)
        allowance = rel if math.isfinite(rel) and rel > 0 else budget.scale_assumed_rel_sigma
    if not (math.isfinite(fit.alpha) and math.isfinite(total)) or thr * total + allowance >= 1.0:
        why = f"{fit.n} hot pixels" + (f", sigma {total:.3g}" if math.isfinite(total) else "")
        return [not_measured("dark_scale_error", R.SCALE_UNMEASURED, why)], math.nan
    detail = f"{fit.n} hot pixels, fit sigma {sigma:.3g}, model {budget.scale_rel_sigma:.3g}"
    if assumed:
        detail += (
            f" (assumed {budget.scale_assumed_rel_sigma:.3g}: the temperature is unknown; "
            f"allowance {allowance:.3g}, one sigma of the typical hot pixel)"
        )
    scale = significance_gate(
        "dark_scale_error",
        fit.alpha,
        expected=0.0,
        spread=total,
        reason=R.DARK_UNDERSCALED,
        reason_low=R.DARK_OVERSCALED,
        false_alarm=false_alarm,
        materiality=allowance,
        detail=detail,
    )
    out = [scale]
    fraction = 1.0 + fit.alpha
    if scale.failed and fit.alpha < 0 and provable:
        # one-sided: is any dark signal present at all? Under "none" the fraction is 0
        # whatever the model's scale: its stated scale uncertainty multiplies the fraction
        # (a model twice too strong halves it) and cannot make a present signal look absent,
        # so the null's spread is the fit's own (an extrapolated model, ~20 % uncertain,
        # read a light holding 0.45 +- 0.08 of its dark signal as holding none)
        none = significance_gate(
            "dark_signal_fraction",
            fraction,
            expected=0.0,
            spread=sigma,
            reason=R.NO_DARK_SIGNAL,
            side="upper",
            false_alarm=false_alarm,
            detail=detail,
        )
        present = none.failed  # significantly above zero
        out.append(
            Metric(
                "dark_signal_fraction",
                none.value,
                none.limit,
                1.0 if present else 0.0,
                None if present else R.NO_DARK_SIGNAL,
                detail,
                expected=0.0,
                spread=none.spread,
                z=none.z,
                threshold=none.threshold,
                false_alarm=false_alarm,
            )
        )
        if present:
            out.append(
                significance_gate(
                    "harmful_subtraction",
                    fit.alpha,
                    expected=-0.5,
                    spread=total,
                    reason=R.HARMFUL_SUBTRACTION,
                    side="lower",
                    false_alarm=false_alarm,
                    detail="over-subtraction beyond half the dark signal",
                )
            )
    return out, total


# ----------------------------------------------------------------------------- tails
def hole_gate(
    z: np.ndarray,
    valid: np.ndarray,
    u: np.ndarray,
    width: float,
    extra_var: np.ndarray | None,
    *,
    false_alarm: float,
    model_hot: np.ndarray | None = None,
    dof: int | None = None,
    settled: np.ndarray | None = None,
) -> tuple[Metric, dict[str, float]]:
    """Background pixels far below their same-colour neighbours, against the expected tail.

    Count ``K`` of background pixels with ``z < -5`` (``z``: neighbour-median residual over its
    predicted spread) among those where the dark model removed a pixel-scale excess
    (``model_hot``: its hot pixels, a cosmic ray left in a master): the holes a dark model
    makes. A pixel that responds less than its neighbours (a cold pixel, dust in a bright sky
    or a flat) is a hole too, but of the scene, wherever the model is smooth. Expected
    ``mu = sum_i Phi(-5 / s_i)``: ``s_i`` the measured width ``w`` of ``z``, widened where the
    darks show a pixel scattering more than its predicted noise (``extra_var``: flickering hot
    pixels; the light's pixel then scatters as much). A hot pixel's own scatter is known from
    the master's ``dof + 1`` darks only: its standardised residual then has the tails of a
    Student t with ``dof`` degrees of freedom (Gaussian without ``dof``), which ``mu`` uses.
    Under "all is well" ``K ~ Poisson(mu)``; the gate is the Poisson tail ``P(X >= K)``.
    ``neg_tail_frac`` (all background pixels) stays a value.

    ``settled``: pixels whose darks are one population (:func:`clip_tail` not significant at
    ``false_alarm``). Elsewhere the combine clipped more of the pixel's frames than chance
    does: a random-telegraph pixel, whose master holds one of its two levels and whose
    recorded scatter is that level's alone. A light may sit at the other level, by an amount
    nothing recorded states: such a pixel is not measured (left out of ``K`` and ``mu``,
    counted in ``hole_unsettled``).
    """
    zz_all = z[valid]
    n_all = zz_all.size
    if n_all < MIN_BATCH:
        return not_measured("hole_count", R.FEW_BACKGROUND_PIXELS, f"{n_all} pixels"), {}
    tail_frac = float(np.count_nonzero(zz_all < -HOLE_SIGMA)) / n_all
    if model_hot is not None:
        valid = valid & model_hot
    unsettled = 0
    if settled is not None:
        unsettled = int(np.count_nonzero(valid & ~settled))
        valid = valid & settled
    zz = z[valid]
    n = zz.size
    k = int(np.count_nonzero(zz < -HOLE_SIGMA))
    w = width if math.isfinite(width) and width > 0 else 1.0
    from scipy.special import ndtr

    from darkflow.stats._dist import t_cdf  # scipy.stats' t.cdf, without its import

    def tail(x: np.ndarray | float) -> np.ndarray | float:
        return t_cdf(x, dof) if dof is not None and dof >= 1 else ndtr(x)

    if n == 0:
        mu = 0.0
    elif extra_var is None:
        mu = n * float(tail(-HOLE_SIGMA / w))
    else:
        u2 = np.square(u[valid], dtype=np.float64)
        ev = _excess_scatter(extra_var, valid)
        with np.errstate(invalid="ignore", divide="ignore"):
            s = np.sqrt((w * w * u2 * NEIGHBOUR_VAR_FACTOR + ev) / (NEIGHBOUR_VAR_FACTOR * u2))
        s = np.where(np.isfinite(s) & (s > 0), s, w)
        mu = float(np.sum(tail(-HOLE_SIGMA / s)))
    metric = significance_gate(
        "hole_count",
        float(k),
        expected=mu,
        spread=math.sqrt(max(mu, 1e-12)),
        reason=R.HOT_PIXEL_HOLES,
        side="upper",
        false_alarm=false_alarm,
        deviate=poisson_deviate(k, mu),
        detail=f"{k} of {n} below -{HOLE_SIGMA:g} sigma"
        + (f"; {unsettled} two-level pixels not measured" if unsettled else ""),
    )
    found = {"hole_count": float(k), "hole_expected": mu, "neg_tail_frac": tail_frac}
    return metric, {**found, "hole_unsettled": float(unsettled)}


def _excess_scatter(extra_var: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """What each valid pixel's darks scatter beyond the typical pixel's (ADU², >= 0): the
    typical pixel's part is in the measured width already, only the excess widens a pixel's
    own tail."""
    ev = np.asarray(extra_var[valid], dtype=np.float64)
    ev = np.where(np.isfinite(ev), ev, 0.0)
    return np.maximum(ev - float(_median(ev)), 0.0)


def deep_negative_gate(
    c: np.ndarray,
    u: np.ndarray,
    local: np.ndarray,
    background: np.ndarray,
    valid: np.ndarray,
    width: float,
    *,
    false_alarm: float,
    model_hot: np.ndarray | None = None,
    extra_var: np.ndarray | None = None,
) -> tuple[Metric, float]:
    """Pixels far below zero where their neighbourhood is below zero too: over-subtraction.

    Count of background pixels with ``c < -5 u`` and a negative same-colour neighbour median.
    No sky is negative: with the sky ``b_i = max(background, 0)`` the expected count is
    ``sum_i Phi(-(5 u_i + b_i) / (w u_i)) Phi(-b_i / (0.409 w u_i))`` (the neighbour median of 8
    scatters by ``sqrt(0.1673)`` of a pixel); Poisson tail. Pixels where the model removed a
    pixel-scale excess (``model_hot``: hot and flickering pixels, whose scatter is known only
    from the darks) are the hole gate's, with their own tails, and are not counted here.
    ``extra_var`` (ADU², what a pixel's darks scatter beyond its predicted noise, as in the
    hole gate: random-telegraph and flickering pixels of a real sensor) widens that pixel's
    expected scatter: ``w u_i`` becomes ``sqrt(w² u_i² + extra_i)``.
    """
    # the count and its expectation in one pass over the frame (numba; the numpy twin is the
    # former code, the same values)
    n, k, mu = deep_negative_terms(
        c,
        u,
        local,
        background,
        valid,
        width,
        NEIGHBOUR_VAR_FACTOR,
        model_hot=model_hot,
        extra_var=extra_var,
    )
    if n < MIN_BATCH:
        return not_measured("negative_frac", R.FEW_BACKGROUND_PIXELS, f"{n} pixels"), math.nan
    metric = significance_gate(
        "negative_frac",
        k / n,
        expected=mu / n,
        spread=math.sqrt(max(mu, 1e-12)) / n,
        reason=R.NEGATIVE_CLIPPING,
        side="upper",
        false_alarm=false_alarm,
        deviate=poisson_deviate(k, mu),
        detail=f"{k} deep negative pixels, {mu:.3g} expected",
    )
    return metric, k / n


def pileup_gate(c: np.ndarray, *, false_alarm: float) -> tuple[Metric | None, float]:
    """Values piled up at a floor at or below zero (clipped data): the count at the minimum
    against the count at the next value above it. A tail falls towards its end, so at most half
    of the two counts can be at the minimum; binomial tail ``P(X >= K_min | K_min + K_next, 1/2)``.
    """
    finite = c[np.isfinite(c)]
    if finite.size < 2:
        return None, 0.0
    floor = float(finite.min())
    if floor > 0:
        return None, 0.0
    k_min = int(np.count_nonzero(finite == floor))
    above = finite[finite > floor]
    k_next = int(np.count_nonzero(above == above.min())) if above.size else 0
    from darkflow.stats._dist import binom_sf  # scipy.stats' binom.sf, without its import
    from darkflow.verify._gate import deviate_of_p

    p = float(binom_sf(k_min - 1, k_min + k_next, 0.5))
    frac = k_min / finite.size
    metric = significance_gate(
        "floor_pileup_frac",
        frac,
        expected=0.0,
        spread=1.0 / finite.size,
        reason=R.NEGATIVE_CLIPPING,
        side="upper",
        false_alarm=false_alarm,
        deviate=deviate_of_p(p),
        detail=f"{k_min} values at the floor {floor:.4g}, {k_next} next",
    )
    return metric, frac


def count_gate(
    name: str, observed: int, expected: float, n: int, reason: VerifyReason, *, false_alarm: float
) -> Metric:
    """A count of impossible values against its Poisson expectation (fraction shown)."""
    n = max(n, 1)
    return significance_gate(
        name,
        observed / n,
        expected=expected / n,
        spread=math.sqrt(max(expected, 1e-12)) / n,
        reason=reason,
        side="upper",
        false_alarm=false_alarm,
        deviate=poisson_deviate(observed, expected),
        detail=f"{observed} pixels, {expected:.3g} expected",
    )


# ----------------------------------------------------------------------------- level
def _batch_median(
    values: np.ndarray, known: tuple[np.ndarray, float] | None = None
) -> tuple[float, float, int]:
    """Median of the finite ``values`` and its batch-means standard error. ``known``: an array
    and its median, taken when the finite values are that array (the same values, in order)."""
    finite = np.isfinite(values)
    whole = bool(finite.all())
    v = values if whole else values[finite]  # every value finite: the array itself
    batches = min(32, v.size // MIN_BATCH)
    if batches < 2:
        return math.nan, math.nan, batches
    meds = [float(_median(p)) for p in np.array_split(v, batches)]
    if known is not None and (
        (whole and known[0] is values)
        or (known[0].shape == v.shape and np.array_equal(known[0], v))
    ):
        level = known[1]
    else:
        level = float(_median(v))
    return level, float(np.std(meds, ddof=1)) / math.sqrt(batches), batches


def level_gate(
    c: np.ndarray,
    u: np.ndarray,
    valid: np.ndarray,
    budget: NoiseBudget,
    *,
    colour: bool,
    false_alarm: float,
    dark_signal: np.ndarray | None = None,
) -> tuple[Metric, dict[str, float]]:
    """No sky is negative: the background level of each colour against zero (one-sided).

    Statistic: median of the background pixels of each colour phase (one for mono). Spread:
    its batch-means standard error (Student-t widened), ``level_sigma``, the frame-to-frame
    level jitter that separates the light's level from the model's, and the model's stated
    scale uncertainty times its typical dark signal. The weakest colour is
    reported, each tested at ``p / colours``.
    """
    masks = _phase_masks(c.shape, colour)
    p = false_alarm / len(masks)
    # the model's stated scale uncertainty moves the level by that share of its dark signal
    scale_level = (
        budget.scale_rel_sigma * abs(float(_nanmedian(dark_signal[valid])))
        if dark_signal is not None and valid.any()
        else 0.0
    )
    worst: Metric | None = None
    background = c[valid]
    level_all = float(_median(background)) if valid.any() else math.nan
    pix = float(_median(u[valid])) if valid.any() else math.nan
    for m in masks:
        # one colour: its pixels are the background's, whose median is known
        level, se, batches = _batch_median(
            background if len(masks) == 1 else c[valid & m], known=(background, level_all)
        )
        if not math.isfinite(level):
            continue
        spread = combine_spread(
            se * t_inflation(batches - 1, p, sides=1), budget.level_sigma, scale_level
        )
        metric = significance_gate(
            "background_level_adu",
            level,
            expected=0.0,
            spread=spread,
            reason=R.NEGATIVE_BACKGROUND,
            side="lower",
            false_alarm=p,
            detail=f"level {level:.3g} ADU, spread {spread:.3g} ({len(masks)} colours)",
        )
        if worst is None or (metric.z is not None and (worst.z is None or metric.z < worst.z)):
            worst = metric
    values = {
        "background_adu": level_all,
        "pixel_sigma_adu": pix,
        "background_sigma": level_all / pix if pix > 0 else math.nan,
    }
    if worst is None:
        return not_measured("background_level_adu", R.FEW_BACKGROUND_PIXELS), values
    return worst, values


# ----------------------------------------------------------------------------- banding
def _column_profile(
    resid: np.ndarray, var: np.ndarray, min_rows: int = 8
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Column means of ``resid`` (NaN = masked), the variance of each from its pixels' noise
    variances ``var``, and which columns were kept; ``None`` with fewer than 5 columns.

    Columns with fewer than ``min_rows`` values are left out, and so are a few columns far
    outside the spread of all column means (with their neighbours): they hold structure of
    the scene (a spectral line along the columns, the edge of a slit), while a column pattern
    of the readout moves every column and stays in.
    """
    from darkflow.stats._columns import column_sums

    # counts, sums and noise variances of every column in one pass (numba; the numpy twin is
    # the former code: same values)
    n, sums, pix_var = column_sums(resid, var)
    keep = n >= min_rows
    if np.count_nonzero(keep) < 5:
        return None
    with np.errstate(invalid="ignore"):
        means = np.where(keep, sums / np.maximum(n, 1), np.nan)
    centre = float(_nanmedian(means))
    spread = mad_std(means[keep], center=centre)
    if spread > 0:
        odd = keep & (np.abs(means - centre) > 5.0 * spread)
        if odd.any():
            odd = np.convolve(odd, np.ones(5), mode="same") > 0
            keep &= ~odd
    if np.count_nonzero(keep) < 5:
        return None
    nk = n[keep].astype(np.float64)
    return means[keep].astype(np.float64), pix_var[keep] / (nk * nk), keep


def _second_differences(means: np.ndarray, s: np.ndarray):
    """Second differences of a column profile and their covariance under white noise: the
    diagonal ``c0``, the first and second off-diagonals ``c1``, ``c2`` (``s``: each column
    mean's variance)."""
    d = means[:-2] - 2.0 * means[1:-1] + means[2:]
    c0 = s[:-2] + 4.0 * s[1:-1] + s[2:]
    c1 = -2.0 * s[1:-2] - 2.0 * s[2:-1]  # cov(d_j, d_j+1)
    c2 = s[2:-2]  # cov(d_j, d_j+2)
    return d, c0, c1, c2


def _column_chi2(
    resid: np.ndarray, var: np.ndarray, min_rows: int = 8
) -> tuple[float, float, float, int]:
    """Second differences of the column means of ``resid`` (NaN = masked): ``Q = sum d²`` with
    ``tr(C)`` and ``tr(C²)`` of their covariance under white noise (each column mean's variance
    from its pixels' noise variances ``var``). Returns ``(Q, trC, trC2, columns)``."""
    profile = _column_profile(resid, var, min_rows)
    if profile is None:
        return 0.0, 0.0, 0.0, 0
    d, c0, c1, c2 = _second_differences(*profile[:2])
    q = float(np.sum(d * d))
    tr = float(np.sum(c0))
    tr2 = float(np.sum(c0 * c0) + 2.0 * np.sum(c1 * c1) + 2.0 * np.sum(c2 * c2))
    return q, tr, tr2, int(d.size)


def _lag_sum(a: np.ndarray, b: np.ndarray) -> float:
    """``sum_j a_j b_j + 2 sum_j a_j b_j+1 + 2 sum_j a_j b_j+2`` (a banded quadratic form)."""
    return float(
        np.sum(a * b)
        + np.sum(a[:-1] * b[1:])
        + np.sum(a[1:] * b[:-1])
        + np.sum(a[:-2] * b[2:])
        + np.sum(a[2:] * b[:-2])
    )


def _column_projection(
    resid: np.ndarray, model: np.ndarray, var: np.ndarray, model_var: np.ndarray
) -> tuple[float, float, float, int]:
    """How much of the subtracted model's column pattern is left in (or missing from) the light.

    ``T = sum d_c d_m`` over the second differences of the column profiles of the residual
    (``d_c``) and of the dark model (``d_m``, same pixels). When the model's pattern is the
    light's, ``d_c`` holds scene, the light's noise and minus the model's noise: ``E[T] =
    -tr(C_m)`` (the model's own column noise, from ``model_var``). Its variance: a sandwich
    over ``d_m e`` at lags 0-2, with ``e`` the residual of the regression of ``d_c`` on
    ``d_m`` (the scene's columns are not white noise; a strong pattern does not inflate its
    own spread), at least the white-noise value ``d_m' C d_m``. Returns ``(T, E[T], Var T,
    columns, sum d_m²)``.
    """
    profile = _column_profile(resid, var)
    if profile is None:
        return 0.0, 0.0, 0.0, 0, 0.0
    means, s, keep = profile
    from darkflow.stats._columns import column_sums

    counts, sums, mv = column_sums(model, model_var, mask=resid)
    n = counts[keep].astype(np.float64)
    with np.errstate(invalid="ignore"):
        m_means = sums[keep] / np.maximum(n, 1.0)
    s_m = mv[keep] / np.maximum(n * n, 1.0)
    d_c, c0, c1, c2 = _second_differences(means, s)
    d_m, c0_m, _, _ = _second_differences(m_means, s_m)
    t = float(np.sum(d_c * d_m))
    expected = -float(np.sum(c0_m))
    # the regression of d_c on d_m: its residual holds the scene and the noise whatever the
    # pattern's strength (a heteroskedasticity- and autocorrelation-consistent variance)
    mm = float(np.sum(d_m * d_m))
    beta = (t - expected) / mm if mm > 0 else 0.0
    g = d_m * (d_c - beta * d_m)
    sandwich = _lag_sum(g, g)
    white = float(
        np.sum(d_m * d_m * c0)
        + 2.0 * np.sum(d_m[:-1] * d_m[1:] * c1)
        + 2.0 * np.sum(d_m[:-2] * d_m[2:] * c2)
    )
    return t, expected, max(sandwich, white), int(d_c.size), mm


def banding_gate(
    c: np.ndarray,
    background: np.ndarray,
    u: np.ndarray,
    valid: np.ndarray,
    *,
    colour: bool,
    false_alarm: float,
    noise_ratio: float = 1.0,
    sources: np.ndarray | None = None,
    model: np.ndarray | None = None,
    model_var: np.ndarray | None = None,
    scale_rel_sigma: float = 0.0,
) -> tuple[Metric, dict[str, float]]:
    """Column banding the dark model left in the background (or put there).

    With the subtracted ``model`` (and its variance ``model_var``) the gate asks the question
    dark calibration answers for: is the model's column pattern the light's? It tests the
    projection of the residual's column profile on the model's (:func:`_column_projection`,
    summed over the colours): a pattern of another readout mode or gain in the darks leaves
    minus that pattern, a mis-scaled pattern a share of it, while the scene's columns (a
    spectrum's lines, a nebula) and the sky's flat-field pattern are not the dark's and do not
    correlate with it. ``column_pattern_z`` is that statistic in units of its spread. The
    chi-square of the column means under white noise (below) is recorded as ``column_ratio``;
    it is the gate only without a model. ``model_var`` is the model's noise; the scale of its
    pattern is known to ``scale_rel_sigma`` (the match's stated uncertainty, one error ``e``
    for the whole light): a share ``e`` of the pattern left adds ``(scale_rel_sigma * M)²`` to
    the variance of ``T``, ``M`` the pattern's power ``sum d_m²`` (a bound: without a bias
    the model's columns hold the bias's too, which no scale error moves).

    Per colour phase, the mean of each column's background residual (``c - background``;
    values beyond 5 sigma left out), its variance from its pixels' noise (``u²`` times the
    light's measured noise ratio ``w²``: a scene's structure is not noise), and the second
    differences of the column profile (smooth background errors and gradients cancel). Under
    white noise ``Q = sum d²`` has mean ``tr(C)`` and variance ``2 tr(C²)``; ``Q / a ~ chi2(nu)``
    with ``a = tr(C²) / tr(C)``, ``nu = tr(C)² / tr(C²)`` (summed over the colours). The rows get
    the same number (``row_ratio``) but no gate: the random row offsets of every readout (CMOS
    row noise) are noise, not a calibration error, and one light cannot tell them apart from a
    row pattern.
    """
    from darkflow.stats._banding import banding_inputs

    totals = {"col": [0.0, 0.0, 0.0, 0], "row": [0.0, 0.0, 0.0, 0]}
    w2 = noise_ratio * noise_ratio if math.isfinite(noise_ratio) and noise_ratio > 0 else 1.0
    # the background residuals within 5 sigma outside source columns, and their noise
    # variances, in one pass (numba; the numpy twin is the former code, the same values)
    columns = None if sources is None else _source_columns(sources, colour)
    resid, var = banding_inputs(c, background, u, valid, columns, w2)
    projection = [0.0, 0.0, 0.0, 0, 0.0]
    with_model = model is not None and model_var is not None
    models = _plane_views(model, colour) if with_model else None
    hots = model_hot_planes(model, colour) if with_model else None
    model_vars = _plane_views(model_var, colour) if with_model else None
    for i, (m, v) in enumerate(
        zip(_plane_views(resid, colour), _plane_views(var, colour), strict=True)
    ):
        # each row (column) centred on its own median: the background model's errors that
        # vary from row to row (the edge of a slit, sources masking some rows of a column but
        # not of the next) and the readout's random row offsets leave the column means
        centred = _centred(m)
        for key, arr, pv in (("col", centred, v), ("row", _centred(m.T), v.T)):
            q, tr, tr2, k = _column_chi2(arr, pv)
            t = totals[key]
            t[0] += q
            t[1] += tr
            t[2] += tr2
            t[3] += k
        if models is not None and model_vars is not None:
            # the model's hot pixels are the dark-scale check's: their shot noise and any
            # scale error would swamp the column pattern, so they are left out of both profiles
            kept = np.where(hots[i], np.nan, m)
            # the model's values where kept (float64), each row centred on its median
            mp = centre_rows_where(models[i], kept)
            # the model's variance as the light's: scaled by the measured noise ratio
            found = _column_projection(
                _centred(kept), mp, v, np.multiply(model_vars[i], w2, dtype=np.float64)
            )
            for j in range(5):
                projection[j] += found[j]
    values: dict[str, float] = {}
    q, tr, tr2, k = totals["row"]
    values["row_ratio"] = q / tr if tr > 0 else math.nan
    q, tr, tr2, k = totals["col"]
    if k < 5 or not (tr > 0 and tr2 > 0):
        values["column_ratio"] = math.nan
        return not_measured("column_ratio", R.FEW_BACKGROUND_PIXELS, f"{k} columns"), values
    a, nu = tr2 / tr, tr * tr / tr2
    values["column_ratio"] = q / tr
    if with_model:
        t, expected, var_t, k_p, power = projection
        var_t += (scale_rel_sigma * power) ** 2
        if k_p < 5 or not var_t > 0:
            values["column_pattern_z"] = math.nan
            return not_measured(
                "column_pattern_z", R.FEW_BACKGROUND_PIXELS, f"{k_p} columns"
            ), values
        z = (t - expected) / math.sqrt(var_t)
        values["column_pattern_z"] = z
        metric = significance_gate(
            "column_pattern_z",
            z,
            expected=0.0,
            spread=1.0,
            reason=R.LIGHT_BANDING,
            false_alarm=false_alarm,
            detail=f"{k_p} column differences; white-noise column ratio {q / tr:.3g}",
        )
        return metric, values
    metric = significance_gate(
        "column_ratio",
        q / tr,
        expected=1.0,
        spread=math.sqrt(2.0 / nu),
        reason=R.LIGHT_BANDING,
        side="upper",
        false_alarm=false_alarm,
        deviate=chi2_deviate(q, a, nu),
        detail=f"{k} column differences, {nu:.0f} dof",
    )
    return metric, values


def _source_columns(sources: np.ndarray, colour: bool) -> np.ndarray:
    """Columns (with 3 on each side) holding far more source pixels than the others: a spectral
    line or a lamp's emission along the columns, whose unmasked wings are scene, not pattern."""
    counts = np.count_nonzero(sources, axis=0).astype(np.float64)
    centre = float(np.median(counts))
    spread = max(mad_std(counts, center=centre), 1.0)
    odd = counts > centre + 5.0 * spread
    width = 7 if not colour else 9  # the colour phases' columns are 2 apart
    return np.convolve(odd, np.ones(width), mode="same") > 0


def _centred(a: np.ndarray) -> np.ndarray:
    """Each row of ``a`` (NaN = masked) minus the median of its values (numba, a selection
    per row; its numpy twin sorts every row: the same values)."""
    from darkflow.stats._image import centre_rows

    return centre_rows(a)


def _plane_views(a: np.ndarray, colour: bool) -> list[np.ndarray]:
    return cfa.planes(a) if colour else [a]


# the light checks' results that depend on the dark model alone, shared by the lights whose
# models are equal (the same masters and scales): found by content, the last model of each kind
# kept, and only up to 32 MiB (a 2048x2048 float64 plane; larger frames compute them each time,
# so a worker's memory grows by at most ~2 x (32 MiB + results), not with the frame size)
MODEL_CACHE_MAX_BYTES = 32 << 20
_MODEL_RESULTS = ContentCache(1, max_bytes=MODEL_CACHE_MAX_BYTES)


def _hot_planes(model: np.ndarray, colour: bool) -> list[np.ndarray | bool]:
    out: list[np.ndarray | bool] = []
    for plane in _plane_views(model, colour):
        plane = plane.astype(np.float64)
        hf = plane - neighbour_median(plane)
        spread = robust_std(hf)
        out.append(np.abs(hf) > 5.0 * spread if math.isfinite(spread) and spread > 0 else False)
    return out


def model_hot_planes(model: np.ndarray, colour: bool) -> list[np.ndarray | bool]:
    """The banding gate's hot pixels of the model, per colour phase (``False``: none found):
    beyond 5 robust sigmas of their plane's high band (the plane minus its neighbours'
    median). Computed once per distinct model (:class:`~darkflow.stats._image.ContentCache`)."""
    tag = f"hot_planes:{bool(colour)}"
    return _MODEL_RESULTS.get(tag, model, lambda m: _hot_planes(m, colour))


def _template_levels(template: np.ndarray, colour: bool) -> tuple[np.ndarray, np.ndarray, float]:
    near = neighbour_median(template)
    local = cfa.per_plane(neighbour_median, template) if colour else near
    return local, near, float(_nanmedian(template))


def template_levels(template: np.ndarray, colour: bool) -> tuple[np.ndarray, np.ndarray, float]:
    """``(same-colour, all)`` neighbours' medians of the model's dark signal ``template`` (one
    array for a monochrome frame; the dark-scale fit's and the photometry's hot pixels') and
    its median level. Computed once per distinct template
    (:class:`~darkflow.stats._image.ContentCache`)."""
    return _MODEL_RESULTS.get(
        f"template_levels:{bool(colour)}", template, lambda t: _template_levels(t, colour)
    )


# ----------------------------------------------------------------------------- photometry
def _cell_max(a: np.ndarray) -> np.ndarray:
    e = np.asarray(a, dtype=np.float64)
    e = e[: e.shape[0] - e.shape[0] % 2, : e.shape[1] - e.shape[1] % 2]
    return np.maximum(
        np.maximum(e[0::2, 0::2], e[0::2, 1::2]), np.maximum(e[1::2, 0::2], e[1::2, 1::2])
    )


def photometry_gates(
    raw: np.ndarray,
    c: np.ndarray,
    model: np.ndarray,
    model_var: np.ndarray,
    u: np.ndarray,
    background: np.ndarray,
    hot: np.ndarray,
    saturation: float | None,
    *,
    colour: bool,
    min_stars: int,
    false_alarm: float,
):
    """Flux and centroids of the same real stars before and after calibration.

    Stars are found on the calibrated frame (superpixel luminance for a colour sensor); a
    candidate that peaks on a hot pixel of the dark model is dark structure, not a star, and is
    left out. Each star's flux change is what the model removed from its aperture above
    the model's annulus mean, with its spread from the model's variance
    (:func:`~darkflow.verify.photometry.compare_photometry`). Gates: the weighted mean relative flux
    change (Birge-scaled spread, Student-t tail; :func:`~darkflow.verify.photometry.flux_change_test`)
    and a common centroid shift (Hotelling's T², :func:`~darkflow.verify.photometry.centroid_shift_test`).
    Fewer than ``max(min_stars, 4)`` stars: not measured (``few_stars``).
    Returns ``(metrics, values, comparison)``.
    """
    from darkflow.verify.photometry import (
        centroid_shift_test,
        compare_photometry,
        detect_stars,
        flux_change_test,
    )

    if colour:
        img_c, img_r = cfa.superpixel(c), cfa.superpixel(raw)
        img_m, var_m = cfa.superpixel(model), cfa.superpixel(model_var)
        bg = cfa.superpixel(background)
        sig = np.sqrt(cfa.superpixel(np.square(u, dtype=np.float64)))
        bad = cfa.superpixel_any(hot)
        raw_max = _cell_max(raw)
    else:
        img_c, img_r, img_m, var_m, bg, sig, bad, raw_max = (
            c,
            raw,
            model,
            model_var,
            background,
            u,
            hot,
            raw,
        )
    # superpixels are 2 sensor pixels wide: star sizes, borders and isolation halve
    geometry = {"border": 8, "isolation_px": 8.0} if colour else {}
    radii = {"r_aperture": 3.0, "r_inner": 5.0, "r_outer": 8.0} if colour else {}
    stars = detect_stars(
        img_c,
        background=bg,
        sigma=sig,
        raw=raw_max,
        saturation=None if saturation is None else 0.95 * saturation,
        **geometry,
    )
    real = [s for s in stars if not bad[round(s.y), round(s.x)]]
    need = max(min_stars, 4)
    values: dict[str, float] = {"n_stars": float(len(real)), "star_candidates": float(len(stars))}
    if len(real) < need:
        why = f"{len(real)} stars ({len(stars) - len(real)} candidates on hot pixels)"
        return [not_measured("flux_ratio", R.FEW_STARS, why)], values, None
    phot = compare_photometry(
        img_r, img_c, real, bad=bad, model=img_m, model_variance=var_m, **radii
    )
    values.update(
        n_stars=float(phot.n_stars),
        centroid_shift_px=phot.centroid_shift_px,
        annulus_noise_ratio=phot.annulus_noise_ratio,
        negative_annulus_frac=phot.negative_annulus_frac,
    )
    if phot.n_stars < need:
        return [not_measured("flux_ratio", R.FEW_STARS, f"{phot.n_stars} measured")], values, phot
    ft = flux_change_test(phot)
    ct = centroid_shift_test(phot)
    values.update(flux_ratio=ft.value, flux_ratio_sigma=ft.spread, centroid_mean_shift_px=ct.value)
    metrics = [
        significance_gate(
            "flux_ratio",
            ft.value,
            expected=1.0,
            spread=ft.spread,
            reason=R.FLUX_CHANGE,
            false_alarm=false_alarm,
            deviate=math.copysign(ft.deviate, ft.value - 1.0),
            not_measured_reason=R.FEW_STARS,
            detail=f"{ft.n} stars, weighted mean",
        ),
        significance_gate(
            "centroid_mean_shift_px",
            ct.value,
            expected=0.0,
            spread=ct.spread,
            reason=R.CENTROID_SHIFT,
            side="upper",
            false_alarm=false_alarm,
            deviate=ct.deviate,
            not_measured_reason=R.FEW_STARS,
            detail=f"{ct.n} stars, Hotelling T2",
        ),
    ]
    return metrics, values, phot
