"""Gates as statistical tests: a statistic, its spread under "all is well", a false-alarm rate.

Every acceptance gate and light check is built with :func:`significance_gate`: it compares a
statistic with the value expected when nothing is wrong, in units of that statistic's spread
under the same hypothesis (its sampling spread for the actual numbers of pixels, frames, hold-out
darks or stars, combined in quadrature with the uncertainty the inputs carry: gain, read noise,
bias level). The gate fails when the departure exceeds the two- (or one-) sided normal quantile
of its false-alarm probability ``p``, plus an optional *materiality* (the smallest departure
that matters to a user, in the statistic's own units; zero by default).

A gate whose spread cannot be computed, or whose statistic is undefined (too few pixels, no
stars, an estimate noisier than the effect it looks for) is *not measured*
(:func:`not_measured`): it records its reason and changes neither the status nor the
confidence.

The spread helpers below are the large-sample sampling spreads of the estimators darkflow uses;
``docs/verification.md`` derives each gate's statistic and spread.
"""

from __future__ import annotations

import math
from enum import StrEnum
from statistics import NormalDist

from darkflow.stats.spread import MAD_SIGMA_REL_SD, MEDIAN_SD_FACTOR, mad_sigma_rel_sd, median_sd

__all__ = [
    "MAD_SIGMA_REL_SD",
    "MEDIAN_SD_FACTOR",
    "GateStatus",
    "chi2_deviate",
    "combine_spread",
    "deviate_of_p",
    "gate_confidence",
    "log_variance_sd",
    "mad_sigma_rel_sd",
    "median_sd",
    "poisson_deviate",
    "t_inflation",
    "z_threshold",
]


class GateStatus(StrEnum):
    """Outcome of one gate."""

    PASS = "pass"
    FAIL = "fail"
    NOT_MEASURED = "not_measured"


def z_threshold(false_alarm: float, *, sides: int = 2) -> float:
    """The standard-normal quantile exceeded with probability ``false_alarm`` under the null.

    ``sides=2`` for a two-sided test (``|z| > z*``), ``1`` for a one-sided one (``z > z*``).
    """
    if not 0.0 < false_alarm < 1.0:
        raise ValueError(f"false-alarm probability must be in (0, 1), got {false_alarm!r}")
    if sides not in (1, 2):
        raise ValueError(f"sides must be 1 or 2, got {sides!r}")
    return NormalDist().inv_cdf(1.0 - false_alarm / sides)


def combine_spread(*terms: float | None) -> float:
    """Quadrature sum of independent spread terms (``None`` terms are ignored; NaN propagates)."""
    total = 0.0
    for t in terms:
        if t is None:
            continue
        total += float(t) * float(t)
    return math.sqrt(total)


def log_variance_sd(dof: int | float) -> float:
    """Spread of ``log(s^2 / sigma^2)`` for a normal sample variance with ``dof`` degrees of
    freedom: ``sqrt(2 / dof)`` (large-sample; ``dof = n - 1``)."""
    return math.sqrt(2.0 / dof) if dof > 0 else math.inf


def t_inflation(dof: int | float, false_alarm: float, *, sides: int = 2) -> float:
    """Factor on a spread estimated with ``dof`` degrees of freedom so that the normal threshold
    keeps the false-alarm probability: ``t_dof quantile / normal quantile`` (>= 1; 1 for
    ``dof = inf``)."""
    if not math.isfinite(dof):
        return 1.0
    if dof < 1:
        return math.inf
    from darkflow.stats._dist import t_ppf  # scipy.stats' t.ppf, without its import

    q = 1.0 - false_alarm / sides
    return t_ppf(q, dof) / z_threshold(false_alarm, sides=sides)


def deviate_of_p(p: float) -> float:
    """The standard-normal deviate exceeded with one-sided probability ``p`` (exact tests:
    a count's or a chi-square's p-value on the scale of :func:`z_threshold`)."""
    from darkflow.stats._dist import norm_isf  # scipy.stats' norm.isf, without its import

    p = min(max(float(p), 1e-300), 1.0)
    return norm_isf(p)


def poisson_deviate(observed: int | float, expected: float) -> float:
    """One-sided (excess) deviate of a count: ``P(X >= observed)`` for ``X ~ Poisson(expected)``
    as a normal deviate (:func:`deviate_of_p`). A count at or below its expectation is not an
    excess: the deviate is then at most 0."""
    from darkflow.stats._dist import poisson_sf  # scipy.stats' poisson.sf, without its import

    k = round(float(observed))
    if expected <= 0:
        return 0.0 if k <= 0 else 40.0
    if k <= expected:
        return min(0.0, deviate_of_p(poisson_sf(k - 1, expected)))
    return deviate_of_p(poisson_sf(k - 1, expected))


def chi2_deviate(q: float, scale: float, dof: float) -> float:
    """Deviate of a quadratic form ``q ~ scale * chi2(dof)`` (Satterthwaite), upper tail."""
    from darkflow.stats._dist import chi2_sf  # scipy.stats' chi2.sf, without its import

    if not (scale > 0 and dof > 0 and math.isfinite(q)):
        return math.nan
    # chi2.sf is 1 below 0, as at 0
    return deviate_of_p(chi2_sf(max(q / scale, 0.0), dof))


def gate_confidence(excess: float) -> float:
    """Confidence of a gate from its departure in units of the allowed departure.

    ``excess = |statistic - expected| / (z* * spread + materiality)``: 1 up to half the allowed
    departure, 0.5 at the threshold, ``0.5 / excess**2`` beyond it; NaN gives 0.
    """
    if not math.isfinite(excess):
        return 0.0
    excess = abs(excess)
    if excess <= 0.5:
        return 1.0
    if excess <= 1.0:
        return 1.0 - (excess - 0.5)
    return 0.5 / (excess * excess)
