"""ThermalProfileStore: persistence (atomic JSON), estimates from earlier sessions, laws."""

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from darkflow.exceptions import ConfigError
from darkflow.thermal import ThermalProfileStore, fit_dark_current_law, fit_temperature_drift

T0 = datetime(2026, 11, 20, 20, 0, tzinfo=UTC)
H = timedelta(hours=1)


def night(day, offset=0.0, set_temp=-10.0, n=30):
    t0 = T0 + day * timedelta(days=1)
    hours = np.linspace(0, 3, n)
    return fit_temperature_drift(
        [t0 + h * H for h in hours], list(-9.0 + offset + 1.0 * hours), set_temp_c=set_temp
    )


def test_update_estimate_and_persist(tmp_path):
    path = tmp_path / "work" / "thermal_profiles.json"
    store = ThermalProfileStore(path)
    assert store.estimate("Cam", T0) is None and not path.exists()
    assert store.update("Cam", [night(0), night(1, offset=0.4)], session="s") == 2
    assert store.update("Cam", night(1, offset=0.4)) == 1  # same start: replaced, not added
    again = ThermalProfileStore(path)
    assert again.instruments == ["Cam"] and len(again.profiles("Cam")) == 2
    start = T0 + timedelta(days=5)
    temp, sigma = again.estimate("Cam", start + 2 * H, session_start=start, set_temp_c=-10.0)
    assert temp == pytest.approx(-9.0 + 0.2 + 2.0, abs=0.05) and sigma >= 0.5
    settled, _ = again.estimate("Cam", start, set_temp_c=-10.0)  # no start: the end level
    assert settled == pytest.approx(-9.0 + 0.2 + 3.0, abs=0.05)
    assert again.estimate("Cam", start, set_temp_c=-20.0) is None  # other set-point
    assert again.estimate("Cam", start) is None  # uncooled asked, cooled profiles stored
    assert not list(path.parent.glob("*.tmp*"))  # atomic writes leave nothing behind
    assert json.loads(path.read_text())["version"] == 1


def test_single_profile_is_uncertain_and_bad_fits_are_skipped(tmp_path):
    store = ThermalProfileStore(tmp_path / "p.json", max_profiles=2)
    store.update("Cam", night(0))
    _, sigma = store.estimate("Cam", T0, set_temp_c=-10.0)
    assert sigma >= 1.0
    bad = fit_temperature_drift([T0], [-10.0])
    assert store.update("Cam", bad) == 0
    for day in range(1, 4):
        store.update("Cam", night(day))
    assert len(store.profiles("Cam")) == 2  # the most recent ones


def test_deterministic_bytes_and_corrupt_files(tmp_path):
    a, b = ThermalProfileStore(tmp_path / "a.json"), ThermalProfileStore(tmp_path / "b.json")
    for store in (a, b):
        store.update("Cam", [night(0), night(1)])
    assert a.path.read_bytes() == b.path.read_bytes()
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot be read"):
        ThermalProfileStore(bad)
    bad.write_text(json.dumps({"version": 99}))
    with pytest.raises(ConfigError, match="not a darkflow thermal profile store"):
        ThermalProfileStore(bad)


def test_laws_are_kept_only_when_they_support_scaling(tmp_path):
    store = ThermalProfileStore(tmp_path / "p.json")
    temps = [-20.0, -10.0, 0.0]
    good = fit_dark_current_law(temps, [np.log(2) / 6 * t for t in temps], [1e-3] * 3)
    poor = fit_dark_current_law([-10.0, -9.5], [0.0, 0.06], [1e-3] * 2)
    assert store.update_law("sig", good) and not store.update_law("sig2", poor)
    law = ThermalProfileStore(store.path).law("sig")
    assert law.source == "stored" and law.doubling_temp_c == pytest.approx(6.0)
    assert store.law("sig2") is None
