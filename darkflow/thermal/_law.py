"""Dark current against temperature: the exponential law and its fit from masters.

Dark current follows ``D(T) = D(T0) * 2**((T - T0) / T_d)`` with the doubling temperature
``T_d`` (about 5-7 °C for silicon sensors near room temperature and below). Masters of one
configuration at several sensor temperatures give points ``(T_k, ln D_k)`` on a straight line of
slope ``s = ln 2 / T_d``; :func:`fit_dark_current_law` fits it by weighted least squares and
records the quality of the fit. A law *supports scaling* (a master may be scaled to another
temperature) only when the fit is trustworthy: at least two distinct temperatures spanning
``min_span_c``, a plausible and precise ``T_d`` and small residuals. Otherwise the configured
default ``T_d`` (with its configured uncertainty) is used for gates and interpolation weights,
but never to scale a single master.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from darkflow.stats import mad_std

__all__ = ["DarkCurrentLaw", "default_law", "fit_dark_current_law"]

LN2 = math.log(2.0)


@dataclass(frozen=True)
class DarkCurrentLaw:
    """The dark-current temperature law of one sensor configuration.

    Attributes
    ----------
    doubling_temp_c
        ``T_d`` used by matching and scaling (°C per doubling).
    sigma_doubling_c
        Its 1-sigma uncertainty.
    source
        ``"fitted"`` (from this index's masters), ``"stored"`` (fitted on earlier sessions,
        from a :class:`~darkflow.thermal.ThermalProfileStore`) or ``"default"`` (configured).
    supports_scaling
        Whether a single master may be scaled to another temperature with this law.
    n_points, temp_min_c, temp_max_c
        Masters (with a temperature) given to the fit and the temperature range they cover.
    rms_c
        Residual RMS of the fit expressed in °C (``None`` with fewer than three points).
    fitted_doubling_c, fitted_sigma_c
        The fitted values even when they were not adopted (``None`` without a fit).
    reasons
        Why the law does not support scaling (empty when it does).
    n_rejected
        Masters left out as outliers (one pass, with four or more masters: residual from the
        median-of-pairwise-slopes line above ``max(4 robust sigma, 3 sigma of the point)``).
    """

    doubling_temp_c: float
    sigma_doubling_c: float
    source: str = "default"
    supports_scaling: bool = False
    n_points: int = 0
    temp_min_c: float | None = None
    temp_max_c: float | None = None
    rms_c: float | None = None
    fitted_doubling_c: float | None = None
    fitted_sigma_c: float | None = None
    reasons: tuple[str, ...] = field(default_factory=tuple)
    n_rejected: int = 0  # masters left out of the fit as outliers

    def factor(self, delta_c: float) -> float:
        """Dark-current ratio ``D(T + delta) / D(T)``."""
        return 2.0 ** (delta_c / self.doubling_temp_c)

    def factor_rel_sigma(self, delta_c: float, sigma_delta_c: float = 0.0) -> float:
        """Relative 1-sigma uncertainty of :meth:`factor` from ``sigma_delta_c`` and ``T_d``.

        ``d ln f = ln2 * (d(delta) / T_d - delta * dT_d / T_d**2)``.
        """
        td = self.doubling_temp_c
        return LN2 * math.hypot(sigma_delta_c / td, delta_c * self.sigma_doubling_c / td**2)

    def covers(self, temp_c: float, margin_c: float) -> bool:
        """Whether ``temp_c`` lies within the fitted range widened by ``margin_c``."""
        if self.temp_min_c is None or self.temp_max_c is None:
            return False
        return self.temp_min_c - margin_c <= temp_c <= self.temp_max_c + margin_c

    def to_dict(self) -> dict[str, Any]:
        return {
            "doubling_temp_c": self.doubling_temp_c,
            "sigma_doubling_c": self.sigma_doubling_c,
            "source": self.source,
            "supports_scaling": self.supports_scaling,
            "n_points": self.n_points,
            "temp_min_c": self.temp_min_c,
            "temp_max_c": self.temp_max_c,
            "rms_c": self.rms_c,
            "fitted_doubling_c": self.fitted_doubling_c,
            "fitted_sigma_c": self.fitted_sigma_c,
            "reasons": list(self.reasons),
            "n_rejected": self.n_rejected,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DarkCurrentLaw:
        values = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        values["reasons"] = tuple(values.get("reasons") or ())
        return cls(**values)


def default_law(doubling_temp_c: float, sigma_doubling_c: float) -> DarkCurrentLaw:
    """The configured law (never supports scaling a single master)."""
    return DarkCurrentLaw(
        float(doubling_temp_c), float(sigma_doubling_c), "default", False, reasons=("default",)
    )


def fit_dark_current_law(
    temps_c: Sequence[float],
    log_levels: Sequence[float],
    log_sigmas: Sequence[float],
    *,
    default_doubling_c: float = 6.0,
    default_sigma_c: float = 1.0,
    temp_sigma_c: float = 0.2,
    min_span_c: float = 2.0,
    max_rel_sigma: float = 0.15,
    max_rms_c: float = 0.5,
    plausible_c: tuple[float, float] = (2.0, 20.0),
) -> DarkCurrentLaw:
    """Fit ``ln D = a + T * ln2 / T_d`` to masters at several temperatures.

    Parameters
    ----------
    temps_c
        Sensor temperature of each master.
    log_levels
        Natural log of its dark-current level per second (any common unit: only the slope
        matters).
    log_sigmas
        1-sigma statistical uncertainty of each ``log_levels`` value.
    default_doubling_c, default_sigma_c
        The configured law, used when the fit is absent or not trustworthy.
    temp_sigma_c
        Uncertainty of a master's temperature; adds ``s * temp_sigma_c`` in quadrature to each
        point's uncertainty so that thousands of pixels do not make a 0.1 °C reading look exact.
    min_span_c, max_rel_sigma, max_rms_c, plausible_c
        Quality gates for ``supports_scaling``.

    Returns
    -------
    DarkCurrentLaw
        Never raises on degenerate input: NaN points are dropped and the default returned.
    """
    pts = [
        (float(t), float(y), float(s))
        for t, y, s in zip(temps_c, log_levels, log_sigmas, strict=True)
        if t is not None
        and y is not None
        and s is not None
        and math.isfinite(t)
        and math.isfinite(y)
        and math.isfinite(s)
    ]
    base = default_law(default_doubling_c, default_sigma_c)
    if not pts:
        return _with(base, reasons=("no_temperatures",))
    t = np.array([p[0] for p in pts])
    y = np.array([p[1] for p in pts])
    s0 = LN2 / default_doubling_c
    sig = np.sqrt(np.array([p[2] for p in pts]) ** 2 + (s0 * temp_sigma_c) ** 2)
    n = len(pts)
    tmin, tmax = float(t.min()), float(t.max())
    span = tmax - tmin
    distinct = len(np.unique(np.round(t, 1)))
    common = dict(n_points=n, temp_min_c=tmin, temp_max_c=tmax)
    if distinct < 2 or span <= 0:
        return _with(base, reasons=("single_temperature",), **common)

    def solve(keep: np.ndarray):
        w = 1.0 / sig[keep] ** 2
        tk, yk = t[keep], y[keep]
        tw = float(np.sum(w * tk) / np.sum(w))
        sxx = float(np.sum(w * (tk - tw) ** 2))
        slope = float(np.sum(w * (tk - tw) * yk) / sxx)
        return slope, float(np.sum(w * yk) / np.sum(w)) - slope * tw, sxx, w

    keep = np.ones(n, dtype=bool)
    slope, intercept, sxx, w = solve(keep)
    n_rejected = 0
    if n >= 4:  # one pass of outlier rejection (a master whose temperature reading is off)
        # against a robust line (median of pairwise slopes), not the least-squares one
        i, j = np.triu_indices(n, 1)
        dt = t[j] - t[i]
        ok = dt != 0
        if ok.any():
            robust = float(np.median((y[j] - y[i])[ok] / dt[ok]))
            resid = y - robust * t
            resid -= np.median(resid)
        else:
            resid = y - (intercept + slope * t)
        scale = mad_std(resid, center=0.0)
        bad = np.abs(resid) > np.maximum(4.0 * scale, 3.0 * sig)
        if 0 < bad.sum() <= (n - 3):
            keep = ~bad
            n_rejected = int(bad.sum())
            slope, intercept, sxx, w = solve(keep)
    t, y, sig, n = t[keep], y[keep], sig[keep], int(keep.sum())
    sigma_slope = math.sqrt(1.0 / sxx)
    resid = y - (intercept + slope * t)
    rms_c = None
    if n >= 3 and slope != 0:
        rms_c = float(np.sqrt(np.mean(resid**2)) / abs(slope))
        # with more points than parameters, inflate by the observed scatter (reduced chi2 > 1)
        chi2 = float(np.sum(w * resid**2) / (n - 2))
        sigma_slope *= math.sqrt(max(chi2, 1.0))
    reasons: list[str] = []
    common["n_rejected"] = n_rejected
    if slope <= 0:
        return _with(base, reasons=("non_positive_slope",), **common)
    td = LN2 / slope
    sigma_td = td * sigma_slope / slope
    if span < min_span_c:
        reasons.append("span_too_small")
    if not plausible_c[0] <= td <= plausible_c[1]:
        reasons.append("implausible_doubling")
    if sigma_td / td > max_rel_sigma:
        reasons.append("imprecise")
    if rms_c is not None and rms_c > max_rms_c:
        reasons.append("poor_fit")
    adopt = plausible_c[0] <= td <= plausible_c[1] and sigma_td / td <= 3 * max_rel_sigma
    return DarkCurrentLaw(
        doubling_temp_c=td if adopt else base.doubling_temp_c,
        sigma_doubling_c=sigma_td if adopt else base.sigma_doubling_c,
        source="fitted" if adopt else "default",
        supports_scaling=not reasons,
        rms_c=rms_c,
        fitted_doubling_c=td,
        fitted_sigma_c=sigma_td,
        reasons=tuple(reasons),
        **common,
    )


def _with(law: DarkCurrentLaw, **changes: Any) -> DarkCurrentLaw:
    from dataclasses import replace

    return replace(law, **changes)
