"""Sampling spreads of the robust estimators, under "all is well" (normal values).

The gates (:mod:`darkflow.verify`) compare a statistic with these spreads; the exposure laws
(:mod:`darkflow.exposure`) weigh their fits with them. They live here, below both.
"""

from __future__ import annotations

import math

__all__ = ["MAD_SIGMA_REL_SD", "MEDIAN_SD_FACTOR", "mad_sigma_rel_sd", "median_sd"]

# Large-sample spreads of robust estimators of a normal sample of size n (sigma = 1):
# sd(median) = sqrt(pi / 2) / sqrt(n); sd(MAD_TO_STD * MAD) / sigma = 1.1664 / sqrt(n)
# (asymptotic relative efficiency of the MAD: 36.8 %).
MEDIAN_SD_FACTOR = math.sqrt(math.pi / 2.0)
MAD_SIGMA_REL_SD = 1.1664


def median_sd(sigma: float, n: int | float) -> float:
    """Sampling spread of the median of ``n`` normal values of spread ``sigma``."""
    return MEDIAN_SD_FACTOR * sigma / math.sqrt(n) if n > 0 else math.inf


def mad_sigma_rel_sd(n: int | float) -> float:
    """Relative sampling spread of ``MAD_TO_STD * MAD`` as an estimate of sigma (``n`` values)."""
    return MAD_SIGMA_REL_SD / math.sqrt(n) if n > 0 else math.inf
