"""Thermal behaviour of a sensor: drift through a session, dark current against temperature.

* :func:`fit_temperature_drift` / :class:`DriftFit` — sensor temperature against time (lag
  behind the set-point, drift, cooler at its limit), per session and sensor group;
* :func:`fit_dark_current_law` / :class:`DarkCurrentLaw` — the exponential dark-current law
  with its doubling temperature fitted from masters at several temperatures (or the configured
  default), with the fit quality and whether it supports temperature scaling;
* :func:`session_context` / :class:`SessionContext` / :class:`TempEstimate` — the temperature
  to use for a light whose reading is missing, noisy or an outlier;
* :class:`ThermalProfileStore` — drift profiles and laws learned per instrument from earlier
  sessions, persisted as JSON;
* :func:`thermal_groups` — split calibration frames by time gaps and measured temperature.

See ``docs/matching.md``.
"""

from darkflow.thermal._drift import DriftFit, fit_temperature_drift
from darkflow.thermal._law import DarkCurrentLaw, default_law, fit_dark_current_law
from darkflow.thermal._session import (
    SessionContext,
    TempEstimate,
    session_context,
    thermal_groups,
)
from darkflow.thermal._store import ThermalProfileStore

__all__ = [
    "DarkCurrentLaw",
    "DriftFit",
    "SessionContext",
    "TempEstimate",
    "ThermalProfileStore",
    "default_law",
    "fit_dark_current_law",
    "fit_temperature_drift",
    "session_context",
    "thermal_groups",
]
