"""The temperature of a light when its reading is missing, noisy or an outlier.

A :class:`SessionContext` holds what the lights of one session and sensor configuration tell
about the sensor temperature (a :class:`~darkflow.thermal.DriftFit` of their readings against
time, readings that are outliers of it) plus, optionally, the instrument's drift profiles
learned on earlier sessions (:class:`~darkflow.thermal.ThermalProfileStore`).
:meth:`SessionContext.estimate` gives the temperature to use for one light with its
uncertainty and its source, in this order:

1. ``header`` — the light's own reading (uncertainty ``temp_reading_sigma_c``, or the session
   fit's residual RMS when larger);
2. ``session_fit`` — the session's drift fit at the light's time, when the reading is absent,
   an outlier of the fit (more than ``max(5 rms, 1.5 °C)`` away) or when the session's readings
   are noisy (fit RMS above ``noisy_reading_c``);
3. ``profile`` — the median of the instrument's stored profiles at the same time since the
   session's first light (and the same set-point);
4. ``setpoint`` — the cooler set-point (uncertainty ``setpoint_sigma_c``);
5. ``none`` — unknown: matching then falls back on acquisition timing.

:func:`thermal_groups` splits calibration frames by time gaps and measured-temperature clusters,
so that darks taken at dusk and at dawn with the same set-point but a drifting (or overwhelmed)
cooler become two masters at two temperatures instead of one blurred master.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from darkflow.model import FrameMeta
from darkflow.stats import mad_std
from darkflow.thermal._drift import DriftFit, fit_temperature_drift

if TYPE_CHECKING:
    from darkflow.config import MatchingConfig
    from darkflow.thermal._store import ThermalProfileStore

__all__ = ["SessionContext", "TempEstimate", "session_context", "thermal_groups"]

OUTLIER_MIN_C = 1.5


@dataclass(frozen=True)
class TempEstimate:
    """Temperature to use for a frame: value, 1-sigma uncertainty and where it comes from."""

    temp_c: float | None
    sigma_c: float | None
    source: str  # header | session_fit | profile | setpoint | none
    note: str | None = None  # missing_reading | reading_outlier | noisy_readings

    @property
    def known(self) -> bool:
        return self.temp_c is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "temp_c": self.temp_c,
            "sigma_c": self.sigma_c,
            "source": self.source,
            "note": self.note,
        }


@dataclass(frozen=True, eq=False)
class SessionContext:
    """Thermal knowledge about one session of one sensor configuration (see module docs)."""

    instrument: str | None = None
    config_signature: str | None = None
    start_utc: datetime | None = None
    set_temp_c: float | None = None
    drift: DriftFit | None = None
    outliers: frozenset[str] = field(default_factory=frozenset)
    profiles: ThermalProfileStore | None = None
    readings: tuple[tuple[float, float], ...] = ()  # (unix time, °C) of the non-outliers

    def _local(self, when: datetime | None) -> tuple[float, float] | None:
        """Local linear regression of the readings at ``when`` (tricube weights).

        Uses the ``k = max(15, n / 3)`` readings nearest in time: it follows a curved night
        where the global drift model would be a line, and averages the noise of the readings.
        Returns ``(value, sigma)`` or ``None`` outside the readings' time range.
        """
        if len(self.readings) < 5 or when is None:
            return None
        t = np.array([r[0] for r in self.readings])
        y = np.array([r[1] for r in self.readings])
        x = when.timestamp()
        span = t.max() - t.min()
        if not t.min() - 0.05 * span - 900 <= x <= t.max() + 0.05 * span + 900:
            return None
        k = min(t.size, max(15, t.size // 3))
        dist = np.abs(t - x)
        near = np.argsort(dist, kind="stable")[:k]
        h = max(float(dist[near].max()) * 1.0001, 1.0)
        w = (1 - (dist[near] / h) ** 3) ** 3
        tt, yy = (t[near] - x) / 3600.0, y[near]
        basis = np.column_stack([np.ones(k), tt]) * np.sqrt(w)[:, None]
        coef, *_ = np.linalg.lstsq(basis, yy * np.sqrt(w), rcond=None)
        resid = yy - (coef[0] + coef[1] * tt)
        rms = float(np.sqrt(np.sum(w * resid**2) / np.sum(w)))
        sigma = rms * float(np.sqrt(np.sum(w**2))) / float(np.sum(w))
        value = float(coef[0])
        return (value, max(sigma, 0.05)) if math.isfinite(value) else None

    @property
    def fit_usable(self) -> bool:
        return self.drift is not None and self.drift.ok and self.drift.n >= 5

    def _predict(self, when: datetime | None) -> float | None:
        fit = self.drift
        if not self.fit_usable or when is None or fit.t0_utc is None:
            return None
        hours = (when - fit.t0_utc).total_seconds() / 3600.0
        if not -0.25 <= hours <= fit.span_h + 0.5:  # no extrapolation beyond the readings
            return None
        value = float(fit.predict(np.array([min(max(hours, 0.0), fit.span_h)]))[0])
        return value if math.isfinite(value) else None

    def estimate(self, light: FrameMeta, config: MatchingConfig | None = None) -> TempEstimate:
        """The temperature to use for ``light`` (never raises; see the module docs)."""
        from darkflow.config import MatchingConfig

        cfg = config or MatchingConfig()
        reading = light.ccd_temp_c
        if reading is not None and not math.isfinite(reading):
            reading = None
        pred = self._predict(light.date_obs_utc)
        rms = self.drift.rms_c if self.fit_usable and math.isfinite(self.drift.rms_c) else 0.0
        local = self._local(light.date_obs_utc) if pred is not None else None
        if reading is not None:
            if pred is not None and light.path in self.outliers:
                value, sigma = local or (pred, rms)
                return TempEstimate(
                    value, max(sigma, cfg.temp_reading_sigma_c), "session_fit", "reading_outlier"
                )
            if pred is not None and rms > cfg.noisy_reading_c:
                value, sigma = local or (pred, 0.5 * rms)
                return TempEstimate(value, max(sigma, 0.1), "session_fit", "noisy_readings")
            return TempEstimate(float(reading), max(cfg.temp_reading_sigma_c, rms), "header")
        if pred is not None:
            value, _ = local or (pred, rms)
            return TempEstimate(
                value, max(rms, cfg.temp_reading_sigma_c), "session_fit", "missing_reading"
            )
        instrument = light.instrument or self.instrument
        if self.profiles is not None and instrument and light.date_obs_utc is not None:
            est = self.profiles.estimate(
                instrument,
                light.date_obs_utc,
                session_start=self.start_utc,
                set_temp_c=light.set_temp_c if light.set_temp_c is not None else self.set_temp_c,
                min_sigma_c=cfg.profile_min_sigma_c,
            )
            if est is not None:
                return TempEstimate(est[0], est[1], "profile", "missing_reading")
        set_temp = light.set_temp_c if light.set_temp_c is not None else self.set_temp_c
        if set_temp is not None and (
            self.drift is None or self.drift.reaches_setpoint is not False
        ):
            return TempEstimate(
                float(set_temp), cfg.setpoint_sigma_c, "setpoint", "missing_reading"
            )
        return TempEstimate(None, None, "none", "missing_reading")


def session_context(
    lights: Sequence[FrameMeta],
    *,
    profiles: ThermalProfileStore | None = None,
    config_signature: str | None = None,
) -> SessionContext:
    """Fit the drift of one session's light readings and find the outliers.

    ``lights`` are the lights of one session and configuration (frames without time or
    reading are ignored by the fit but may be estimated later).
    """
    pts = [
        m
        for m in lights
        if m.date_obs_utc is not None and m.ccd_temp_c is not None and math.isfinite(m.ccd_temp_c)
    ]
    times = [m.date_obs_utc for m in lights if m.date_obs_utc is not None]
    sets = [m.set_temp_c for m in lights if m.set_temp_c is not None]
    set_temp = float(np.median(sets)) if sets else None
    instrument = next((m.instrument for m in lights if m.instrument), None)
    start = min(times) if times else None
    drift = outliers = None
    if pts:
        drift = fit_temperature_drift(
            [m.date_obs_utc for m in pts], [m.ccd_temp_c for m in pts], set_temp_c=set_temp
        )
        outliers = _outliers(pts, drift)
        if outliers:
            kept = [m for m in pts if m.path not in outliers]
            drift = fit_temperature_drift(
                [m.date_obs_utc for m in kept], [m.ccd_temp_c for m in kept], set_temp_c=set_temp
            )
    kept = [m for m in pts if m.path not in (outliers or ())]
    return SessionContext(
        readings=tuple(sorted((m.date_obs_utc.timestamp(), float(m.ccd_temp_c)) for m in kept)),
        instrument=instrument,
        config_signature=config_signature or (lights[0].config_signature if lights else None),
        start_utc=start,
        set_temp_c=set_temp,
        drift=drift,
        outliers=frozenset(outliers or ()),
        profiles=profiles,
    )


def _outliers(pts: Sequence[FrameMeta], drift: DriftFit) -> set[str]:
    if not drift.ok or drift.n < 6 or drift.t0_utc is None:
        return set()
    hours = np.array([(m.date_obs_utc - drift.t0_utc).total_seconds() / 3600.0 for m in pts])
    resid = np.array([m.ccd_temp_c for m in pts]) - drift.predict(hours)
    mad = mad_std(resid)
    limit = max(5.0 * max(mad, 0.05), OUTLIER_MIN_C)
    return {m.path for m, r in zip(pts, resid, strict=True) if abs(r) > limit}


def thermal_groups(
    metas: Sequence[FrameMeta], *, gate_c: float, max_gap_h: float = 1.0, min_size: int = 3
) -> list[list[FrameMeta]]:
    """Split frames of one qualified set by time gaps, then by measured temperature.

    Frames further apart in time than ``max_gap_h``, or at another set-point than the frame
    before, start a new group. A group whose
    readings, smoothed by a running median of five, span more than ``gate_c`` (the matching
    temperature gate) is cut into ``ceil(span / gate_c)`` consecutive runs of equal size (never
    smaller than ``min_size`` frames), so a drifting series becomes several masters at distinct
    temperatures while noisy readings of a steady sensor never split a set (a split by noisy
    readings would also bias each part's mean temperature); frames without a reading stay
    together. Groups come out in time order,
    frames inside a group sorted by time.
    """

    def when(m: FrameMeta) -> float:
        return m.date_obs_utc.timestamp() if m.date_obs_utc is not None else -math.inf

    ordered = sorted(range(len(metas)), key=lambda i: (when(metas[i]), i))
    time_groups: list[list[int]] = []
    last = last_set = None
    for i in ordered:
        t = when(metas[i])
        set_temp = metas[i].set_temp_c
        gap = (
            last is not None
            and math.isfinite(t)
            and math.isfinite(last)
            and t - last > max_gap_h * 3600.0
        )
        new_set = (
            time_groups
            and set_temp is not None
            and last_set is not None
            and (abs(set_temp - last_set) > 0.25)
        )
        if not time_groups or gap or new_set:
            time_groups.append([])
        time_groups[-1].append(i)
        last = t
        last_set = set_temp if set_temp is not None else last_set
    out: list[list[FrameMeta]] = []
    for group in time_groups:
        with_t = [i for i in group if metas[i].ccd_temp_c is not None]  # in time order
        clusters: list[list[int]] = []
        if with_t:
            # the span of the smoothed series: noisy readings alone must not split a set
            temps = np.array([metas[i].ccd_temp_c for i in with_t], dtype=float)
            half = 2 if temps.size >= 5 else temps.size // 2
            smooth = np.array(
                [np.median(temps[max(0, j - half) : j + half + 1]) for j in range(temps.size)]
            )
            span = float(smooth.max() - smooth.min())
            k = math.ceil(span / max(gate_c, 0.1) - 1e-9)
            k = max(1, min(k, len(with_t) // max(min_size, 1)))
            clusters = [[int(i) for i in c] for c in np.array_split(np.array(with_t), k)]
        without = [i for i in group if metas[i].ccd_temp_c is None]
        if without:
            clusters.append(without)
        for members in sorted(clusters, key=lambda c: (min(when(metas[i]) for i in c), c[0])):
            out.append([metas[i] for i in sorted(members, key=lambda i: (when(metas[i]), i))])
    return out
