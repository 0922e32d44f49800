from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from darkflow.thermal import DriftFit, fit_temperature_drift

T0 = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)


def series(hours, temps):
    return [T0 + timedelta(hours=h) for h in hours], list(temps)


def test_recovers_lag_and_drift():
    h = np.linspace(0, 6, 80)
    truth = -10 + 12 * np.exp(-h / 0.4) + 0.15 * h
    rng = np.random.default_rng(1)
    times, temps = series(h, truth + rng.normal(0, 0.05, h.size))
    fit = fit_temperature_drift(times, temps, set_temp_c=-10.0)
    assert fit.ok and fit.n == 80
    assert fit.tau_h == pytest.approx(0.4, rel=0.2)
    assert fit.drift_c_per_h == pytest.approx(0.15, abs=0.03)
    assert fit.rms_c < 0.08
    np.testing.assert_allclose(fit.predict(h), truth, atol=0.15)


def test_settled_cooler_is_a_line_and_warm_night_misses_setpoint():
    h = np.linspace(0, 5, 40)
    times, temps = series(h, -15.0 + 0.3 * h)  # set-point -20 never reached
    fit = fit_temperature_drift(times, temps, set_temp_c=-20.0)
    assert np.isinf(fit.tau_h)
    assert fit.reaches_setpoint is False and fit.setpoint_offset_c > 4


def test_degenerate_inputs_do_not_raise():
    assert not fit_temperature_drift([], []).ok
    times, temps = series([0, 1], [-10, -10])
    assert not fit_temperature_drift(times, temps).ok
    times, temps = series([0, 1, 2, 3], [None, float("nan"), -10, -10.1])
    assert fit_temperature_drift(times, temps).n == 2


def test_dict_round_trip():
    h = np.linspace(0, 3, 20)
    times, temps = series(h, -10 + 3 * np.exp(-h / 0.5))
    fit = fit_temperature_drift(times, temps, set_temp_c=-10)
    back = DriftFit.from_dict(fit.to_dict())
    np.testing.assert_allclose(back.predict(h), fit.predict(h))


def test_cooler_following_ambient_is_a_curve_not_a_long_exponential():
    h = np.linspace(0, 0.6, 9)
    times, temps = series(h, -6.4 - 0.5 * h - 1.5 * h**2)
    fit = fit_temperature_drift(times, temps, set_temp_c=-15.0)
    assert fit.model == "curved"
    assert fit.drift_c_per_h == pytest.approx(-0.5 - 1.5 * 0.6, abs=0.01)  # mean slope
    np.testing.assert_allclose(fit.predict(h), temps, atol=1e-6)
    assert fit.tau_h == float("inf") or fit.tau_h <= 0.6
