"""Thermal behaviour of a sensor through a session.

``fit_temperature_drift`` fits the measured sensor temperature against time with a first-order
cooler model plus a slow drift::

    T(t) = T_inf + (T_0 - T_inf) * exp(-(t - t_0) / tau) + beta * (t - t_0)

``tau`` (the lag behind the set-point) is found on a logarithmic grid, the linear parameters by
least squares for each ``tau``; ``tau = inf`` (no settling, just a line) is always one of the
candidates so a cooler that was already settled is not forced into an exponential.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
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
    drift_c_per_h: float
    rms_c: float  # residual RMS of the fit
    r2: float | None
    set_temp_c: float | None
    setpoint_offset_c: float | None  # settled temperature minus set-point
    reaches_setpoint: bool | None
    ok: bool  # enough points and a sane fit

    def predict(self, hours: np.ndarray) -> np.ndarray:
        hours = np.asarray(hours, dtype=float)
        decay = np.zeros_like(hours) if math.isinf(self.tau_h) else np.exp(-hours / self.tau_h)
        return self.t_inf_c + (self.t_start_c - self.t_inf_c) * decay + self.drift_c_per_h * hours

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

    def solve(tau: float) -> tuple[float, np.ndarray, np.ndarray]:
        if math.isinf(tau):
            basis = np.column_stack([np.ones(n), hours])
        else:
            basis = np.column_stack([np.ones(n), np.exp(-hours / tau), hours])
        coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
        resid = y - basis @ coef
        return float(resid @ resid), coef, resid

    # Coarse grid in log(tau), then golden-section refinement around the best grid point.
    scores = [solve(tau)[0] for tau in _TAU_GRID_H]
    k = int(np.argmin(scores))
    lo = math.log(_TAU_GRID_H[max(k - 1, 0)])
    hi = math.log(_TAU_GRID_H[min(k + 1, len(_TAU_GRID_H) - 1)])
    g = (math.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = solve(math.exp(a))[0], solve(math.exp(b))[0]
    for _ in range(40):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = solve(math.exp(a))[0]
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = solve(math.exp(b))[0]
    tau_exp = math.exp((lo + hi) / 2)
    rss_exp, coef_exp, resid_exp = solve(tau_exp)
    rss_line, coef_line, resid_line = solve(math.inf)
    # The exponential has one more parameter: it must beat the straight line by a BIC margin.
    penalty = math.log(n) * max(rss_exp / n, 1e-12) * 2.0
    if rss_exp + penalty < rss_line:
        best = (rss_exp, tau_exp, coef_exp, resid_exp)
    else:
        best = (rss_line, math.inf, coef_line, resid_line)
    _, tau, coef, resid = best
    if math.isinf(tau):
        t_inf, amp, drift = coef[0], 0.0, coef[1]
    else:
        t_inf, amp, drift = coef
    return _finish(
        n,
        t0,
        tau,
        float(t_inf),
        float(t_inf + amp),
        float(drift),
        resid,
        y,
        set_temp_c,
        setpoint_tolerance_c,
        ok=True,
    )


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
