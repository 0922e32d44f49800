"""A few ``scipy.stats`` distribution functions as the ``scipy.special`` functions they call.

``import scipy.stats`` takes ~0.8 s (it builds every distribution's docstring), paid by the
driver of every night for a handful of tail probabilities of the master checks. Each function
here is the one ``scipy.stats`` evaluates for the same arguments (its ``_sf``, ``_isf``,
``_cdf``, ``_ppf``, ``_pdf`` with ``loc = 0``, ``scale = 1``), inside the domain noted; the
values are equal (tests/test_dist.py compares them with ``scipy.stats``).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "binom_isf",
    "binom_sf",
    "chi2_cdf",
    "chi2_isf",
    "chi2_ppf",
    "chi2_sf",
    "f_isf",
    "f_sf",
    "norm_isf",
    "norm_pdf",
    "norm_sf",
    "poisson_sf",
    "t_cdf",
    "t_isf",
    "t_ppf",
    "t_sf",
]


def norm_sf(x):
    """``scipy.stats.norm.sf(x)`` (floats or arrays)."""
    from scipy.special import ndtr

    return ndtr(-np.asarray(x, dtype=np.float64))


def norm_isf(q: float) -> float:
    """``scipy.stats.norm.isf(q)`` for ``0 < q < 1``."""
    from scipy.special import ndtri

    return float(-ndtri(q))


def norm_pdf(x: float) -> float:
    """``scipy.stats.norm.pdf(x)`` of one float."""
    v = np.asarray([x], dtype=np.float64)
    return float((np.exp(-(v**2) / 2.0) / np.sqrt(2 * np.pi))[0])


def chi2_sf(x: float, dof: float) -> float:
    """``scipy.stats.chi2.sf(x, dof)`` for ``x >= 0``, ``dof > 0``."""
    from scipy.special import chdtrc

    return float(chdtrc(dof, x))


def chi2_cdf(x, dof):
    """``scipy.stats.chi2.cdf(x, dof)`` for ``x >= 0``, ``dof > 0`` (floats or arrays)."""
    from scipy.special import chdtr

    return chdtr(dof, x)


def chi2_isf(q: float, dof: float) -> float:
    """``scipy.stats.chi2.isf(q, dof)`` for ``0 < q < 1``, ``dof > 0``."""
    from scipy.special import chdtri

    return float(chdtri(dof, q))


def chi2_ppf(q, dof):
    """``scipy.stats.chi2.ppf(q, dof)`` for ``0 < q < 1``, ``dof > 0``."""
    from scipy.special import gammaincinv

    return 2 * gammaincinv(dof / 2, q)


def t_cdf(x, dof: float):
    """``scipy.stats.t.cdf(x, dof)`` for ``dof > 0`` (floats or arrays; float64 like scipy.stats)."""
    from scipy.special import stdtr

    return stdtr(dof, np.asarray(x, dtype=np.float64))


def t_sf(x, dof: float):
    """``scipy.stats.t.sf(x, dof)`` for ``dof > 0`` (floats or arrays)."""
    from scipy.special import stdtr

    return stdtr(dof, -np.asarray(x, dtype=np.float64))


def f_sf(x: float, dfn: float, dfd: float) -> float:
    """``scipy.stats.f.sf(x, dfn, dfd)`` for ``dfn, dfd > 0`` (1 at ``x <= 0``)."""
    from scipy.special import fdtrc

    return 1.0 if x <= 0 else float(fdtrc(dfn, dfd, x))


def f_isf(q: float, dfn: float, dfd: float) -> float:
    """``scipy.stats.f.isf(q, dfn, dfd)`` for ``0 < q < 1``, ``dfn, dfd > 0``."""
    from scipy.special import fdtri

    return float(fdtri(dfn, dfd, 1.0 - q))


def t_isf(q: float, dof: float) -> float:
    """``scipy.stats.t.isf(q, dof)`` for ``0 < q < 1``, ``dof > 0``."""
    from scipy.special import stdtrit

    return float(-stdtrit(dof, q))


def t_ppf(q: float, dof: float) -> float:
    """``scipy.stats.t.ppf(q, dof)`` for ``0 < q < 1``, ``dof > 0``."""
    from scipy.special import stdtrit

    return float(stdtrit(dof, q))


def poisson_sf(k: float, mu: float) -> float:
    """``scipy.stats.poisson.sf(k, mu)`` for ``mu > 0`` and finite ``k`` (1 below 0)."""
    from scipy.special import pdtrc

    k = math.floor(k)
    return 1.0 if k < 0 else float(pdtrc(k, mu))


def binom_isf(q: float, n: int, p: float) -> float:
    """``scipy.stats.binom.isf(q, n, p)`` for ``0 < q < 1``, integer ``n >= 0``,
    ``0 <= p <= 1``."""
    from scipy.special import _ufuncs

    if not (0.0 < q < 1.0 and n >= 0 and 0.0 <= p <= 1.0 and math.isfinite(p)):
        raise ValueError(f"binom_isf({q!r}, {n!r}, {p!r}) outside its domain")
    return float(_ufuncs._binom_isf(q, n, p))


def binom_sf(k: float, n: int, p):
    """``scipy.stats.binom.sf(k, n, p)`` for integer ``n >= 0`` and ``0 <= p <= 1`` (``p`` a
    float or an array): 1 below 0, 0 from ``n`` on."""
    from scipy.special import _ufuncs

    k = math.floor(k)
    p = np.asarray(p, dtype=np.float64)
    if k < 0:
        out = np.ones_like(p)
    elif k >= n:
        out = np.zeros_like(p)
    else:
        out = np.asarray(_ufuncs._binom_sf(k, n, p), dtype=np.float64)
    return out if out.ndim else float(out)
