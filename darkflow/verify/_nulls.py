"""Null distributions of the master gates that are not normal, as equivalent spreads.

:func:`darkflow.verify.significance_gate` fails a statistic beyond ``z* x spread`` (``z*`` the
normal quantile of the gate's false-alarm probability). Where the statistic's null distribution
is known but not normal — a Student t (a spread estimated from few frames), a binomial count,
a chi-square, a log-normal ratio — its exact critical value ``c`` is computed here and handed
to the gate as the *equivalent spread* ``(c - expected) / z*``: the gate then fails exactly
beyond ``c``, with the stated false-alarm probability, and its recorded ``z`` is in units of
that equivalent spread.
"""

from __future__ import annotations

import math

from darkflow.verify._gate import z_threshold

__all__ = [
    "BAND_LOG_SD",
    "band_ratio_spread",
    "binomial_upper_spread",
    "chi2_upper_spread",
    "f_upper_spread",
    "student_spread",
]

# sd of log(row or column ratio) of band_energies on white noise, times sqrt(profile length):
# the ratio of two MAD-based variance estimates (first differences of the interquartile-mean
# profile / even-odd split), Monte Carlo over 3000 white-noise images of 64..384 pixels: 3.5
# (mean 0.08); above 2.33 and 3.09 of 3.7 lie 0.7 % and 0.07 % (docs/verification.md).
BAND_LOG_SD = 3.7


def student_spread(scale: float, dof: float, false_alarm: float, *, sides: int = 2) -> float:
    """Equivalent spread of ``t x scale`` with ``t`` Student-distributed (``dof`` degrees of
    freedom): ``scale x t_q / z_q`` at the quantile of ``false_alarm``."""
    from darkflow.stats._dist import t_ppf  # scipy.stats' t.ppf, without its import

    if not dof > 0 or not math.isfinite(scale):
        return math.inf
    q = 1.0 - false_alarm / sides
    return scale * t_ppf(q, dof) / z_threshold(false_alarm, sides=sides)


def binomial_upper_spread(trials: int, p: float, false_alarm: float) -> tuple[float, float]:
    """Expected count and equivalent spread of a one-sided binomial excess test.

    The critical count ``c`` is the smallest with ``P(X >= c) <= false_alarm`` for
    ``X ~ Binomial(trials, p)``; the spread is ``(c - 0.5 - mean) / z*`` (continuity: a count of
    ``c`` fails, ``c - 1`` passes).
    """
    from darkflow.stats._dist import binom_isf  # scipy.stats' binom.isf, without its import

    mean = trials * p
    if trials <= 0:
        return mean, math.inf
    c = int(binom_isf(false_alarm, trials, p)) + 1  # P(X > c - 1) <= false_alarm
    z = z_threshold(false_alarm, sides=1)
    return mean, max(c - 0.5 - mean, 0.5) / z


def chi2_upper_spread(dof: int, false_alarm: float) -> float:
    """Equivalent spread of ``sqrt(chi2(dof) / dof)`` (an RMS in units of its expected noise)
    around 1, one-sided."""
    from darkflow.stats._dist import chi2_isf  # scipy.stats' chi2.isf, without its import

    if dof <= 0:
        return math.inf
    crit = math.sqrt(chi2_isf(false_alarm, dof) / dof)
    return (crit - 1.0) / z_threshold(false_alarm, sides=1)


def f_upper_spread(dof_num: float, dof_den: float, false_alarm: float) -> float:
    """Equivalent spread around 1 of ``sqrt(F(dof_num, dof_den))`` (an RMS over a noise
    estimated with ``dof_den`` degrees of freedom), one-sided."""
    from darkflow.stats._dist import f_isf  # scipy.stats' f.isf, without its import

    if dof_num <= 0 or dof_den <= 0:
        return math.inf
    crit = math.sqrt(f_isf(false_alarm, dof_num, dof_den))
    return (crit - 1.0) / z_threshold(false_alarm, sides=1)


def band_ratio_spread(length: int, false_alarm: float) -> float:
    """Equivalent spread around 1 of a row/column band ratio of a profile of ``length`` values,
    one-sided: the ratio is log-normal with ``sd(log) = BAND_LOG_SD / sqrt(length)``."""
    if length < 8:
        return math.inf
    z = z_threshold(false_alarm, sides=1)
    crit = math.exp(z * BAND_LOG_SD / math.sqrt(length))
    return (crit - 1.0) / z
