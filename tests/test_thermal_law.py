"""The dark-current temperature law: fit, quality gates, uncertainty, serialisation."""

import math

import numpy as np
import pytest

from darkflow.thermal import DarkCurrentLaw, default_law, fit_dark_current_law


def _points(temps, td=6.0, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    y = np.log(2) / td * np.asarray(temps) + rng.normal(0, noise, len(temps))
    return list(temps), list(y), [max(noise, 1e-3)] * len(temps)


def test_fit_recovers_the_doubling_temperature():
    law = fit_dark_current_law(*_points([-20, -15, -10, -5, 0], td=5.8, noise=0.005))
    assert law.source == "fitted" and law.supports_scaling and not law.reasons
    assert law.doubling_temp_c == pytest.approx(5.8, rel=0.02)
    assert 0 < law.sigma_doubling_c < 0.3 and law.rms_c < 0.1
    assert (law.temp_min_c, law.temp_max_c, law.n_points) == (-20, 0, 5)
    assert law.factor(5.8) == pytest.approx(2.0, rel=0.03)
    assert law.covers(2.0, 3.0) and not law.covers(4.0, 3.0)
    assert DarkCurrentLaw.from_dict(law.to_dict()) == law


def test_two_points_fit_exactly_with_a_propagated_uncertainty():
    law = fit_dark_current_law(*_points([-10, -4]), temp_sigma_c=0.2)
    assert law.doubling_temp_c == pytest.approx(6.0, rel=1e-3) and law.rms_c is None
    # two readings each uncertain by 0.2 °C over 6 °C: sigma(T_d) ~ T_d * 0.28 / 6
    assert law.sigma_doubling_c == pytest.approx(6.0 * math.hypot(0.2, 0.2) / 6.0, rel=0.1)


@pytest.mark.parametrize(
    ("temps", "kw", "reason"),
    [
        ([-10, -10, -10], {}, "single_temperature"),
        ([-10, -9], {}, "span_too_small"),
        ([-10, -9.5, -9], {"td": 60.0}, "implausible_doubling"),
    ],
)
def test_quality_gates(temps, kw, reason):
    law = fit_dark_current_law(*_points(temps, **kw))
    assert not law.supports_scaling and reason in law.reasons


def test_poor_or_imprecise_fits_and_outliers():
    temps, y, s = _points([-20, -16, -12, -8, -4, 0], noise=0.05, seed=2)
    law = fit_dark_current_law(temps, y, s)
    assert not law.supports_scaling and {"poor_fit", "imprecise"} & set(law.reasons)
    temps, y, s = _points([-20, -16, -12, -8, -4, 0])
    y[2] += 1.0  # one master whose temperature reading is wrong by ~9 °C
    law = fit_dark_current_law(temps, y, s)
    assert law.n_rejected == 1 and law.supports_scaling
    assert law.doubling_temp_c == pytest.approx(6.0, rel=0.01)


def test_degenerate_input_gives_the_default():
    d = default_law(6.3, 0.8)
    assert d.source == "default" and not d.supports_scaling
    assert fit_dark_current_law([], [], []).reasons == ("no_temperatures",)
    law = fit_dark_current_law([float("nan"), None, -10.0], [0.0, 0.1, 0.2], [0.01] * 3)
    assert law.source == "default" and law.n_points == 1
    flat = fit_dark_current_law([-10, -5, 0], [0.0, 0.0, 0.0], [0.01] * 3)
    assert flat.source == "default" and "non_positive_slope" in flat.reasons
    f = default_law(6.0, 1.0)
    assert f.factor_rel_sigma(0.0, 0.0) == 0.0
    assert f.factor_rel_sigma(6.0, 0.0) == pytest.approx(math.log(2) * 6 * 1 / 36)
