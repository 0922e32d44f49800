"""The statistical-gate framework: thresholds, false-alarm rates, not-measured semantics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from darkflow.stats import mad_std
from darkflow.verify import (
    GateStatus,
    Metric,
    VerifyReason,
    combine_spread,
    gate_confidence,
    log_variance_sd,
    mad_sigma_rel_sd,
    median_sd,
    not_measured,
    significance_gate,
    z_threshold,
)
from darkflow.verify._metrics import overall_confidence

R = VerifyReason.LIGHT_VARIANCE_EXCESS
R_LOW = VerifyReason.LIGHT_VARIANCE_LOW


def test_z_threshold_quantiles():
    assert z_threshold(0.05) == pytest.approx(1.959964, abs=1e-6)
    assert z_threshold(0.05, sides=1) == pytest.approx(1.644854, abs=1e-6)
    assert z_threshold(1e-4) == pytest.approx(3.890592, abs=1e-6)
    with pytest.raises(ValueError):
        z_threshold(0.0)
    with pytest.raises(ValueError):
        z_threshold(0.1, sides=3)


@pytest.mark.parametrize(("side", "sides"), [("both", 2), ("upper", 1), ("lower", 1)])
def test_false_alarm_rate_matches_its_statement(side, sides):
    """Under the null (statistic ~ N(expected, spread)) the gate fails at its stated rate."""
    rng = np.random.default_rng(7)
    pfa = 0.01
    expected, spread = 3.0, 0.2
    values = rng.normal(expected, spread, 40_000)
    fails = sum(
        significance_gate(
            "x", v, expected=expected, spread=spread, reason=R, false_alarm=pfa, side=side
        ).failed
        for v in values
    )
    # binomial 1-sigma for 40k draws at p=0.01 is 0.0005
    assert fails / values.size == pytest.approx(pfa, abs=0.0025)
    assert z_threshold(pfa, sides=sides) > 0


def test_direction_and_reasons():
    up = significance_gate(
        "v", 2.0, expected=1.0, spread=0.1, reason=R, reason_low=R_LOW, false_alarm=1e-4
    )
    down = significance_gate(
        "v", 0.5, expected=1.0, spread=0.1, reason=R, reason_low=R_LOW, false_alarm=1e-4
    )
    assert up.failed and up.reason == R and up.z == pytest.approx(10.0)
    assert down.failed and down.reason == R_LOW and down.z == pytest.approx(-5.0)
    assert up.status == GateStatus.FAIL
    only_up = significance_gate(
        "v", 0.5, expected=1.0, spread=0.1, reason=R, false_alarm=1e-4, side="upper"
    )
    assert not only_up.failed and only_up.status == GateStatus.PASS
    assert only_up.confidence == 1.0


def test_materiality_needs_both_significance_and_size():
    # 10 sigma away but below the smallest departure that matters: passes
    g = significance_gate(
        "v", 1.01, expected=1.0, spread=0.001, reason=R, false_alarm=1e-4, materiality=0.05
    )
    assert not g.failed
    g = significance_gate(
        "v", 1.1, expected=1.0, spread=0.001, reason=R, false_alarm=1e-4, materiality=0.05
    )
    assert g.failed


def test_unmeasurable_is_not_measured_and_changes_nothing():
    for spread in (math.nan, math.inf, 0.0, -1.0):
        g = significance_gate(
            "v",
            5.0,
            expected=1.0,
            spread=spread,
            reason=R,
            false_alarm=1e-4,
            not_measured_reason=VerifyReason.FEW_STARS,
        )
        assert g.status == GateStatus.NOT_MEASURED
        assert not g.failed and g.confidence is None and g.value is None
        assert g.reason == VerifyReason.FEW_STARS
    g = significance_gate("v", math.nan, expected=1.0, spread=0.1, reason=R, false_alarm=1e-4)
    assert g.status == GateStatus.NOT_MEASURED
    passing = significance_gate("v", 1.0, expected=1.0, spread=0.1, reason=R, false_alarm=1e-4)
    assert overall_confidence([passing, not_measured("w", VerifyReason.FEW_STARS)]) == 1.0
    assert not_measured("w", None).status == GateStatus.NOT_MEASURED


def test_metric_records_the_test():
    g = significance_gate("v", 1.3, expected=1.0, spread=0.1, reason=R, false_alarm=1e-3)
    d = g.to_dict()
    assert d["status"] == "pass" and d["expected"] == 1.0 and d["spread"] == 0.1
    assert d["z"] == pytest.approx(3.0) and d["false_alarm"] == 1e-3
    assert d["threshold"] == pytest.approx(z_threshold(1e-3), abs=1e-4)
    assert isinstance(g, Metric)


def test_confidence_shape():
    assert gate_confidence(0.0) == 1.0
    assert gate_confidence(0.5) == 1.0
    assert gate_confidence(1.0) == pytest.approx(0.5)
    assert gate_confidence(2.0) == pytest.approx(0.125)
    assert gate_confidence(math.nan) == 0.0


def test_spread_helpers_match_simulation():
    rng = np.random.default_rng(3)
    n = 400
    draws = rng.normal(0.0, 2.0, (4000, n))
    med = np.median(draws, axis=1)
    assert np.std(med) == pytest.approx(median_sd(2.0, n), rel=0.05)
    mad = mad_std(draws, axis=1)
    assert np.std(mad / 2.0) == pytest.approx(mad_sigma_rel_sd(n), rel=0.06)
    logvar = np.log(np.var(draws, axis=1, ddof=1) / 4.0)
    assert np.std(logvar) == pytest.approx(log_variance_sd(n - 1), rel=0.05)
    assert combine_spread(3.0, 4.0, None) == pytest.approx(5.0)


def test_exact_tails_as_normal_deviates():
    from scipy.stats import norm, poisson

    from darkflow.verify import chi2_deviate, deviate_of_p, poisson_deviate, t_inflation

    assert deviate_of_p(0.05) == pytest.approx(norm.isf(0.05))
    # a count at its expectation is no excess; a count far above it is
    assert poisson_deviate(3, 3.0) <= 0.0
    assert poisson_deviate(12, 3.0) == pytest.approx(norm.isf(poisson.sf(11, 3.0)))
    assert poisson_deviate(0, 0.0) == 0.0 and poisson_deviate(1, 0.0) > 30
    assert chi2_deviate(100.0, 1.0, 100.0) == pytest.approx(0.0, abs=0.1)
    assert chi2_deviate(200.0, 1.0, 100.0) > 5
    assert t_inflation(float("inf"), 1e-4) == 1.0 and t_inflation(10, 1e-4) > 1.5


def test_a_gate_with_an_exact_deviate():
    from darkflow.verify import VerifyReason, significance_gate

    m = significance_gate(
        "holes",
        0.01,
        expected=1e-3,
        spread=1e-3,
        reason=VerifyReason.HOT_PIXEL_HOLES,
        side="upper",
        false_alarm=1e-4,
        deviate=5.0,
    )
    assert m.failed and m.z == 5.0
    m = significance_gate(
        "holes",
        0.01,
        expected=1e-3,
        spread=1e-3,
        reason=VerifyReason.HOT_PIXEL_HOLES,
        side="upper",
        false_alarm=1e-4,
        deviate=1.0,
    )
    assert not m.failed and m.z == 1.0 and m.confidence == 1.0
