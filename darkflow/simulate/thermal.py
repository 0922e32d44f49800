"""Ambient temperature through a night and the sensor temperature that follows it.

Cooled cameras regulate towards a set-point with a first-order lag (time constant
``cooler_tau_s``); the regulated temperature carries a small random walk, a coupling to the
ambient change (imperfect regulation) and an optional slow drift (a "drifting cooler"). The
cooler can pull the sensor at most ``max_delta_c`` below ambient: on a warm night the sensor
sits above the set-point and follows the ambient. Uncooled cameras (DSLRs) sit a little above
ambient and warm up over a continuous sequence (self-heating).

Everything is sampled on a regular grid (``dt_s``, 10 s by default); :class:`ThermalTrace`
interpolates it for a frame (reading at exposure start, mean over the exposure).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from darkflow.simulate.sensors import SensorModel

__all__ = ["AmbientSpec", "ThermalTrace", "simulate_thermal"]


@dataclass(frozen=True)
class AmbientSpec:
    """Ambient air temperature through a session.

    The temperature falls from ``start_c`` towards ``end_c`` with time constant ``tau_h``
    (hours) and wobbles slowly by about ``wobble_c`` (a few random sinusoids of 20-90 min).
    """

    start_c: float = 8.0
    end_c: float = 2.0
    tau_h: float = 4.0
    wobble_c: float = 0.3


@dataclass(frozen=True, eq=False)
class ThermalTrace:
    """Sampled temperatures of one session (seconds since the session start)."""

    t_s: np.ndarray
    ambient_c: np.ndarray
    sensor_c: np.ndarray
    set_c: np.ndarray  # NaN where the cooler is off / absent

    def sensor_at(self, t_s: float) -> float:
        """True sensor temperature at ``t_s`` (linear interpolation)."""
        return float(np.interp(t_s, self.t_s, self.sensor_c))

    def ambient_at(self, t_s: float) -> float:
        """The ambient temperature at ``t_s`` seconds (interpolated in the trace)."""
        return float(np.interp(t_s, self.t_s, self.ambient_c))

    def sensor_mean(self, t0_s: float, t1_s: float) -> float:
        """Mean true sensor temperature over ``[t0_s, t1_s]`` (the effective exposure temperature)."""
        if t1_s <= t0_s:
            return self.sensor_at(t0_s)
        n = max(2, math.ceil((t1_s - t0_s) / 5.0) + 1)
        grid = np.linspace(t0_s, t1_s, n)
        return float(np.mean(np.interp(grid, self.t_s, self.sensor_c)))


def _ambient(spec: AmbientSpec, t_s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    t_h = t_s / 3600.0
    base = spec.end_c + (spec.start_c - spec.end_c) * np.exp(-t_h / max(spec.tau_h, 1e-6))
    wobble = np.zeros_like(t_s)
    if spec.wobble_c > 0:
        for _ in range(3):
            period = rng.uniform(20.0, 90.0) * 60.0
            phase = rng.uniform(0, 2 * np.pi)
            wobble += np.sin(2 * np.pi * t_s / period + phase)
        wobble *= spec.wobble_c / np.sqrt(1.5 * 3)
    return base + wobble


def simulate_thermal(
    model: SensorModel,
    ambient: AmbientSpec,
    setpoints: Sequence[tuple[float, float | None]],
    duration_s: float,
    rng: np.random.Generator,
    *,
    drift_c_per_h: float = 0.0,
    dt_s: float = 10.0,
) -> ThermalTrace:
    """Simulate ambient and sensor temperature of one camera over a session.

    Parameters
    ----------
    model
        The camera (cooler limits, time constant, regulation noise, self-heating).
    ambient
        Ambient profile.
    setpoints
        ``(t_s, set_c)`` changes of the cooler set-point, sorted by time; ``set_c=None``
        means cooler off. Ignored for uncooled cameras.
    duration_s
        Length of the session (the trace covers ``[0, duration_s]`` plus one step).
    rng
        Source of randomness (ambient wobble, regulation random walk).
    drift_c_per_h
        Slow drift of the regulated temperature away from the set-point (°C per hour).
    dt_s
        Sampling step.
    """
    n = math.ceil(max(duration_s, dt_s) / dt_s) + 2
    t = np.arange(n) * dt_s
    amb = _ambient(ambient, t, rng)
    noise = np.zeros(n)
    tau_noise = 300.0
    a = math.exp(-dt_s / tau_noise)
    kicks = rng.normal(0.0, model.regulation_noise_c * math.sqrt(1 - a * a), n)
    for k in range(1, n):
        noise[k] = noise[k - 1] * a + kicks[k]

    set_c = np.full(n, np.nan)
    changes = sorted(setpoints, key=lambda p: p[0])
    for t0, value in changes:
        set_c[t >= t0] = np.nan if value is None else value

    if not model.cooled:
        warm = model.electronics_warm_c + model.self_heating_c * (
            1.0 - np.exp(-t / max(model.self_heating_tau_s, 1e-6))
        )
        sensor = amb + warm + noise
        return ThermalTrace(t, amb, sensor, np.full(n, np.nan))

    free = amb + model.electronics_warm_c
    limit = amb - model.max_delta_c
    regulated = np.maximum(set_c, limit) + model.ambient_coupling * (amb - amb[0])
    regulated += drift_c_per_h * t / 3600.0
    target = np.where(np.isnan(set_c), free, regulated)
    sensor = np.empty(n)
    sensor[0] = free[0]
    alpha = 1.0 - math.exp(-dt_s / model.cooler_tau_s)
    for k in range(1, n):
        sensor[k] = sensor[k - 1] + (target[k] - sensor[k - 1]) * alpha
    return ThermalTrace(t, amb, sensor + noise, set_c)
