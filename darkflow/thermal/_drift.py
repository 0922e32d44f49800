"""Sensor temperature against time through a session (cooler lag, drift, limits).

``fit_temperature_drift`` fits the measured sensor temperature against time with a first-order
cooler model plus a slow drift::

    settling:  T(t) = T_inf + (T_0 - T_inf) * exp(-(t - t_0) / tau) + beta * (t - t_0)
    line:      T(t) = T_0 + beta * (t - t_0)
    curved:    T(t) = T_0 + beta_0 * (t - t_0) + gamma * (t - t_0)^2

``tau`` (the lag behind the set-point) is searched between 1 minute and the span of the data (a
longer lag cannot be told from a drift), the linear parameters by least squares; the three
models compete by BIC, so a settled cooler is a line, and a cooler at its limit following the
ambient temperature through the night is a curve, not a nonsense exponential.
``drift_c_per_h`` is the mean slope over the session.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np

__all__ = ["DriftFit", "fit_temperature_drift"]

_TAU_GRID_H = np.geomspace(0.02, 6.0, 40)


@dataclass(frozen=True)
class DriftFit:
    """Sensor temperature against time for one session and sensor group."""

    n: int
    t0_utc: datetime | None
    tau_h: float  # lag of the cooler (inf: no settling seen)
    t_inf_c: float  # temperature the cooler settles to (before drift)
    t_start_c: float  # fitted temperature at t0
    drift_c_per_h: float  # mean slope over the session
    rms_c: float  # residual RMS of the fit
    r2: float | None
    set_temp_c: float | None
    setpoint_offset_c: float | None  # settled temperature minus set-point
    reaches_setpoint: bool | None
    ok: bool  # enough points and a sane fit
    curvature_c_per_h2: float = 0.0
    model: str = "line"  # "settling", "line" or "curved"
    span_h: float = 0.0

    def predict(self, hours: np.ndarray) -> np.ndarray:
        hours = np.asarray(hours, dtype=float)
        decay = np.zeros_like(hours) if math.isinf(self.tau_h) else np.exp(-hours / self.tau_h)
        # drift_c_per_h is the mean slope over the span: the slope at t0 is drift - gamma * span
        slope0 = self.drift_c_per_h - self.curvature_c_per_h2 * self.span_h
        return (
            self.t_inf_c
            + (self.t_start_c - self.t_inf_c) * decay
            + slope0 * hours
            + self.curvature_c_per_h2 * hours**2
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftFit:
        values = dict(data)
        t0 = values.get("t0_utc")
        values["t0_utc"] = datetime.fromisoformat(t0) if isinstance(t0, str) else t0
        values["tau_h"] = math.inf if values.get("tau_h") is None else float(values["tau_h"])
        for key in ("t_inf_c", "t_start_c", "drift_c_per_h", "rms_c"):
            values[key] = math.nan if values.get(key) is None else float(values[key])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["t0_utc"] = self.t0_utc.isoformat() if self.t0_utc else None
        out["tau_h"] = None if math.isinf(self.tau_h) else self.tau_h
        return out


def fit_temperature_drift(
    times: Sequence[datetime],
    temps_c: Sequence[float],
    *,
    set_temp_c: float | None = None,
    setpoint_tolerance_c: float = 1.0,
) -> DriftFit:
    """Fit the cooler model to (time, temperature) pairs; NaN/None temperatures are ignored."""
    pairs = [
        (t, float(v))
        for t, v in zip(times, temps_c, strict=True)
        if t is not None and v is not None and np.isfinite(v)
    ]
    pairs.sort(key=lambda p: p[0])
    n = len(pairs)
    if n == 0:
        return DriftFit(
            0,
            None,
            math.inf,
            math.nan,
            math.nan,
            0.0,
            math.nan,
            None,
            set_temp_c,
            None,
            None,
            False,
        )
    t0 = pairs[0][0]
    hours = np.array([(t - t0).total_seconds() / 3600.0 for t, _ in pairs])
    y = np.array([v for _, v in pairs])
    if n < 3 or np.ptp(hours) == 0:
        level = float(np.mean(y))
        return _finish(
            n,
            t0,
            math.inf,
            level,
            level,
            0.0,
            y - level,
            y,
            set_temp_c,
            setpoint_tolerance_c,
            ok=False,
        )

    span = float(hours.max())

    def solve(basis: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
        resid = y - basis @ coef
        return float(resid @ resid), coef, resid

    def settling(tau: float) -> np.ndarray:
        return np.column_stack([np.ones(n), np.exp(-hours / tau), hours])

    def bic(rss: float, k: int) -> float:
        return n * math.log(max(rss / n, 1e-12)) + k * math.log(n)

    candidates = []
    rss, coef, resid = solve(np.column_stack([np.ones(n), hours]))
    candidates.append((bic(rss, 2), "line", math.inf, coef, resid))
    if n >= 4:
        rss, coef, resid = solve(np.column_stack([np.ones(n), hours, hours**2]))
        candidates.append((bic(rss, 3), "curved", math.inf, coef, resid))
        grid = _TAU_GRID_H[(_TAU_GRID_H >= 1 / 60) & (_TAU_GRID_H <= span)]
        if grid.size:
            # coarse grid in log(tau), then golden-section refinement around the best point
            scores = [solve(settling(t))[0] for t in grid]
            k = int(np.argmin(scores))
            lo, hi = math.log(grid[max(k - 1, 0)]), math.log(grid[min(k + 1, grid.size - 1)])
            g = (math.sqrt(5) - 1) / 2
            a, b = hi - g * (hi - lo), lo + g * (hi - lo)
            fa, fb = solve(settling(math.exp(a)))[0], solve(settling(math.exp(b)))[0]
            for _ in range(40):
                if fa < fb:
                    hi, b, fb = b, a, fa
                    a = hi - g * (hi - lo)
                    fa = solve(settling(math.exp(a)))[0]
                else:
                    lo, a, fa = a, b, fb
                    b = lo + g * (hi - lo)
                    fb = solve(settling(math.exp(b)))[0]
            tau = math.exp((lo + hi) / 2)
            rss, coef, resid = solve(settling(tau))
            # tau is a fitted parameter too: 4 in all
            candidates.append((bic(rss, 4), "settling", tau, coef, resid))
    _, model, tau, coef, resid = min(candidates, key=lambda c: c[0])
    if model == "line":
        t_inf, t_start, drift, curv = coef[0], coef[0], coef[1], 0.0
    elif model == "curved":
        t_inf, t_start, curv = coef[0], coef[0], coef[2]
        drift = coef[1] + curv * span  # mean slope over [0, span]
    else:
        t_inf, amp, drift, curv = coef[0], coef[1], coef[2], 0.0
        t_start = t_inf + amp
    fit = _finish(
        n,
        t0,
        tau,
        float(t_inf),
        float(t_start),
        float(drift),
        resid,
        y,
        set_temp_c,
        setpoint_tolerance_c,
        ok=True,
    )
    return replace(fit, curvature_c_per_h2=float(curv), model=model, span_h=span)


def _finish(n, t0, tau, t_inf, t_start, drift, resid, y, set_temp_c, tol, *, ok) -> DriftFit:
    rms = float(np.sqrt(np.mean(resid**2))) if len(resid) else math.nan
    var = float(np.var(y)) if len(y) > 1 else 0.0
    r2 = None if var == 0 else 1.0 - float(np.mean(resid**2)) / var
    offset = reaches = None
    if set_temp_c is not None and np.isfinite(t_inf):
        # the settled level: the median of the last third of readings (robust to the approach)
        settled = float(np.median(y[-max(1, len(y) // 3) :]))
        offset = settled - set_temp_c
        reaches = abs(offset) <= tol
    return DriftFit(n, t0, tau, t_inf, t_start, drift, rms, r2, set_temp_c, offset, reaches, ok)
