"""Drift profiles and dark-current laws learned per instrument, persisted as one JSON file.

The pipeline points a store at ``<workdir>/thermal_profiles.json``. After a session it calls
:meth:`ThermalProfileStore.update` with the session's drift fits (sensor temperature against the
time since the session's first light); a later session whose readings are missing asks
:meth:`ThermalProfileStore.estimate` for the temperature at the same time since its own first
light. Fitted dark-current laws can be kept too (:meth:`update_law`), so a configuration whose
darks of the night are all at one temperature still gets a law measured on earlier nights.

Layout (``version`` 1)::

    {"version": 1,
     "instruments": {"<instrument>": [{"session": ..., "t0_utc": ..., "set_temp_c": ...,
                                       "fit": {DriftFit.to_dict()}}, ...]},
     "laws": {"<config signature>": {DarkCurrentLaw.to_dict()}}}

Every write is atomic (:func:`darkflow.io.atomic.atomic_write`); the output is deterministic
(sorted keys, no timestamps of its own).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from darkflow.exceptions import ConfigError
from darkflow.io.atomic import atomic_write
from darkflow.thermal._drift import DriftFit
from darkflow.thermal._law import DarkCurrentLaw

__all__ = ["ThermalProfileStore"]

log = logging.getLogger(__name__)

VERSION = 1
SETPOINT_TOL_C = 0.5


class ThermalProfileStore:
    """Per-instrument drift profiles from earlier sessions (see the module docs).

    Parameters
    ----------
    path
        The JSON file (created on the first update; a missing file is an empty store).
    max_profiles
        Profiles kept per instrument (the most recent by start time).

    Raises
    ------
    ConfigError
        The file exists but is not a store (invalid JSON, wrong layout or version).
    """

    def __init__(self, path: str | os.PathLike[str], *, max_profiles: int = 50):
        self.path = Path(path)
        self.max_profiles = int(max_profiles)
        self._data = self._load()
        self._readonly = False

    def earlier_than(self, when: datetime) -> ThermalProfileStore:
        """A read-only view with only the profiles of sessions that started before ``when``.

        Planning a session with it keeps the session's own profile (stored after a first run)
        from changing its decisions on a rerun: profiles are learned from *earlier* sessions.
        """
        view = object.__new__(ThermalProfileStore)
        view.path, view.max_profiles, view._readonly = self.path, self.max_profiles, True
        cutoff = when.isoformat()
        view._data = {
            "version": VERSION,
            "laws": dict(self._data["laws"]),
            "instruments": {
                inst: [p for p in profs if p["t0_utc"] < cutoff]
                for inst, profs in self._data["instruments"].items()
            },
        }
        return view

    def fingerprint(self) -> str:
        """Hash of the store's contents (laws and profiles)."""
        import hashlib

        blob = json.dumps(self._data, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        n = sum(len(v) for v in self._data["instruments"].values())
        return (
            f"<ThermalProfileStore {self.path} instruments={len(self._data['instruments'])} "
            f"profiles={n} laws={len(self._data['laws'])}>"
        )

    # ------------------------------------------------------------------ persistence
    def _load(self) -> dict[str, Any]:
        empty: dict[str, Any] = {"version": VERSION, "instruments": {}, "laws": {}}
        if not self.path.exists():
            return empty
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ConfigError(f"thermal profile store {self.path} cannot be read: {err}") from err
        if (
            not isinstance(data, dict)
            or data.get("version") != VERSION
            or not isinstance(data.get("instruments"), dict)
            or not isinstance(data.get("laws", {}), dict)
        ):
            raise ConfigError(
                f"{self.path} is not a darkflow thermal profile store (version {VERSION})"
            )
        data.setdefault("laws", {})
        return data

    def save(self) -> Path:
        """Write the store atomically (done by every update; a read-only view writes nothing)."""
        if getattr(self, "_readonly", False):
            return self.path
        with atomic_write(self.path) as fh:
            json.dump(self._data, fh, indent=1, sort_keys=True, allow_nan=False)
            fh.write("\n")
        return self.path

    # ------------------------------------------------------------------ profiles
    @property
    def instruments(self) -> list[str]:
        return sorted(self._data["instruments"])

    def profiles(self, instrument: str) -> list[tuple[str | None, DriftFit]]:
        """``(session, DriftFit)`` of an instrument, oldest first."""
        return [
            (p.get("session"), DriftFit.from_dict(p["fit"]))
            for p in self._data["instruments"].get(instrument, [])
        ]

    def update(
        self,
        instrument: str,
        fits: DriftFit | Iterable[DriftFit],
        *,
        session: str | None = None,
    ) -> int:
        """Add (or replace, same start time) usable drift fits of ``instrument`` and save.

        Fits that are not ``ok`` or have no start time are skipped. Returns how many were
        stored.
        """
        if isinstance(fits, DriftFit):
            fits = [fits]
        bucket: list[dict[str, Any]] = self._data["instruments"].setdefault(str(instrument), [])
        stored = 0
        for fit in fits:
            if not fit.ok or fit.t0_utc is None or not math.isfinite(fit.rms_c):
                continue
            record = {
                "session": session,
                "t0_utc": fit.t0_utc.isoformat(),
                "set_temp_c": fit.set_temp_c,
                "fit": _finite(fit.to_dict()),
            }
            bucket[:] = [p for p in bucket if p["t0_utc"] != record["t0_utc"]]
            bucket.append(record)
            stored += 1
        bucket.sort(key=lambda p: p["t0_utc"])
        del bucket[: max(0, len(bucket) - self.max_profiles)]
        if not bucket:
            del self._data["instruments"][str(instrument)]
        if stored:
            self.save()
        return stored

    def estimate(
        self,
        instrument: str,
        when: datetime,
        *,
        session_start: datetime | None = None,
        set_temp_c: float | None = None,
        min_sigma_c: float = 0.5,
    ) -> tuple[float, float] | None:
        """Sensor temperature of ``instrument`` at ``when`` from the stored profiles.

        Each profile with the same set-point (within 0.5 °C; ``None`` matches uncooled
        profiles) is evaluated at the same time since its session start as ``when`` since
        ``session_start`` (clamped to the profile's span; without ``session_start``: the end
        of the profile, i.e. the settled level). Returns ``(median, sigma)`` with ``sigma`` the
        spread between profiles combined with their residual RMS (at least ``min_sigma_c``,
        at least 1 °C with a single profile), or ``None`` when no profile applies.
        """
        preds, rmss = [], []
        for _, fit in self.profiles(instrument):
            if (fit.set_temp_c is None) != (set_temp_c is None):
                continue
            if set_temp_c is not None and abs(fit.set_temp_c - set_temp_c) > SETPOINT_TOL_C:
                continue
            if session_start is not None:
                hours = (when - session_start).total_seconds() / 3600.0
            else:
                hours = fit.span_h
            hours = min(max(hours, 0.0), fit.span_h)
            value = float(fit.predict(np.array([hours]))[0])
            if math.isfinite(value):
                preds.append(value)
                rmss.append(fit.rms_c)
        if not preds:
            return None
        spread = float(np.std(preds, ddof=1)) if len(preds) > 1 else 0.0
        sigma = math.hypot(spread, float(np.median(rmss)))
        floor = min_sigma_c if len(preds) > 1 else max(min_sigma_c, 1.0)
        return float(np.median(preds)), max(sigma, floor)

    # ------------------------------------------------------------------ laws
    def law(self, config_signature: str) -> DarkCurrentLaw | None:
        """The stored dark-current law of a configuration (``source="stored"``), or ``None``."""
        data = self._data["laws"].get(config_signature)
        if not data:
            return None
        law = DarkCurrentLaw.from_dict(data)
        from dataclasses import replace

        return replace(law, source="stored")

    def update_law(self, config_signature: str, law: DarkCurrentLaw) -> bool:
        """Keep a fitted law that supports scaling (others are ignored); returns whether kept."""
        if law.source != "fitted" or not law.supports_scaling:
            return False
        self._data["laws"][config_signature] = _finite(law.to_dict())
        self.save()
        return True


def _finite(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf become None (``DriftFit.from_dict`` reads them back)."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
