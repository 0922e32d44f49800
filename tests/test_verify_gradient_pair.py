"""``dark_gradient`` of a night without a bias: two masters of one configuration at different
exposures, long less short (darkflow.verify._gradient.pair_gradient_gate)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.verify import EXPTIME, SHAPE, dark_frames, make_sensor, master_of

from darkflow.config import VerifyConfig
from darkflow.verify import VerifyReason
from darkflow.verify._gradient import _gradient_gate, _hot_free, pair_gradient_gate, pair_tile

CONFIG = VerifyConfig()


@pytest.fixture(scope="module")
def sensor():
    return make_sensor(0)


def _ramp(electrons, shape=SHAPE):
    """Stray light of ``electrons`` on average, half of it at the left edge, 1.5 times at the
    right (the simulator's ``LightLeak``)."""
    return electrons * np.linspace(0.5, 1.5, shape[1])[None, :] * np.ones((shape[0], 1))


def _pair(sensor, *, seed=1, n=5, long_e=0.0, short_e=0.0, warm=1.0, bias_adu=0.0):
    """Masters of ``EXPTIME`` and half of it (the short set's dark signal at scale 0.5), each
    of ``n`` frames, with ``long_e``/``short_e`` electrons of stray light; ``warm`` scales both
    sets' dark current (a temperature gradient when it is a map); ``bias_adu`` adds to both
    sets' bias."""
    long = master_of(
        dark_frames(
            sensor,
            n,
            seed=seed,
            extra_e=sensor.dark_e * (warm - 1.0) + long_e,
            column_adu=bias_adu,
        )
    )
    short_frames = dark_frames(
        sensor,
        n,
        seed=seed + 10_000,
        extra_e=sensor.dark_e * (0.5 * warm - 1.0) + short_e,
        column_adu=bias_adu,
    )
    return long, master_of(short_frames, exptime=EXPTIME / 2)


def test_small_frames_take_smaller_tiles():
    assert pair_tile(SHAPE) == 16  # 10 x 12 tiles; 32-pixel tiles would be 5 x 6
    assert pair_tile((1024, 1024)) == 32
    assert pair_tile((40, 40)) == 8


def test_a_clean_pair_has_no_gradient(sensor):
    long, short = _pair(sensor)
    r = pair_gradient_gate(long, short, CONFIG)
    assert r.metric.status == "pass" and r.holder is None, r.metric
    assert r.metric.false_alarm == 1e-4 and r.metric.spread > 0
    assert "masters (no bias of the night)" in r.metric.detail


def test_stray_light_in_the_short_set_is_named(sensor):
    # 40 e- on average at 0.5 e-/ADU: 80 ADU from edge to edge, in the 150 s set
    long, short = _pair(sensor, short_e=_ramp(40.0))
    r = pair_gradient_gate(long, short, CONFIG)
    assert r.metric.failed and r.metric.reason == VerifyReason.DARK_GRADIENT
    assert r.values["dark_gradient_x_adu"] == pytest.approx(-80.0, rel=0.1)
    assert r.holder == "short", r.metric.detail


def test_stray_light_in_the_long_set_is_named(sensor):
    long, short = _pair(sensor, long_e=_ramp(40.0))
    r = pair_gradient_gate(long, short, CONFIG)
    assert r.metric.failed and r.holder == "long", r.metric.detail
    assert r.values["dark_gradient_x_adu"] == pytest.approx(80.0, rel=0.1)
    # the hot pixels do not follow the difference's level: stray light, not the temperature
    beta, sd = r.values["dark_gradient_hot_beta"], r.values["dark_gradient_hot_beta_sigma"]
    assert abs(beta) < 4 * sd


def test_a_weak_leak_in_the_short_set_tested_on_the_hot_pixels(sensor):
    # 6 e- on average: the difference (10 e- of dark) stays above 0 everywhere
    long, short = _pair(sensor, short_e=_ramp(6.0))
    r = pair_gradient_gate(long, short, CONFIG)
    assert r.metric.failed and "dark_gradient_short_light" not in r.values, r.metric.detail
    assert abs(r.values["dark_gradient_hot_beta"]) < 4 * r.values["dark_gradient_hot_beta_sigma"]
    assert r.holder in ("short", "pair")


def test_a_bias_with_a_gradient_of_its_own_leaves_the_pair(sensor):
    """Both masters tilt with their bias: neither alone is flat, so either set may hold the
    light (both are marked by the pipeline)."""
    long, short = _pair(sensor, short_e=_ramp(6.0), bias_adu=_ramp(20.0)[0] - 20.0)
    r = pair_gradient_gate(long, short, CONFIG)
    assert r.metric.failed and r.holder == "pair", r.metric.detail


def test_a_temperature_gradient_in_both_sets_is_no_stray_light(sensor):
    warm = np.linspace(0.5, 1.5, SHAPE[1])[None, :] * np.ones((SHAPE[0], 1))
    long, short = _pair(sensor, n=12, warm=warm)
    r = pair_gradient_gate(long, short, CONFIG)
    assert not r.metric.failed and r.holder is None, r.metric.detail


def test_a_gradient_below_the_masters_noise_passes(sensor):
    # 1 e- edge to edge: 2 ADU, within each master's per-pixel noise
    long, short = _pair(sensor, short_e=_ramp(1.0))
    assert not pair_gradient_gate(long, short, CONFIG).metric.failed


def test_equal_exposures_are_not_measured(sensor):
    long, _ = _pair(sensor)
    other = master_of(dark_frames(sensor, 5, seed=7, extra_e=_ramp(40.0)))
    r = pair_gradient_gate(long, other, CONFIG)
    assert r.metric.status == "not_measured" and "equal exposures" in r.metric.detail


def test_one_frame_per_set_is_not_measured(sensor):
    long, short = _pair(sensor, n=1, short_e=_ramp(40.0))
    assert pair_gradient_gate(long, short, CONFIG).metric.status == "not_measured"


def test_the_null_holds_its_false_alarm_probability():
    """Clean pairs of 120 independent seeded sensors (a sensor's own dark-current pattern is
    fixed: one sensor's pairs share it) at a false-alarm probability of 0.1: the gradient
    exceeds its threshold about as often as that (the threshold, from the tiles' own noise and
    its degrees of freedom, is exact for an isotropic covariance); and at the gate's own 1e-4
    no pair fails."""
    p, n = 0.1, 120
    fails = measured = gate_fails = 0
    for seed in range(n):
        long, short = _pair(make_sensor(1000 + seed), seed=100 + seed, n=3)
        raw = long.data.astype(np.float32) - short.data.astype(np.float32)
        m, _ = _gradient_gate(_hot_free(raw), slice(0, SHAPE[0]), SHAPE, 0.0, p, None, 16)
        if "beyond a plane" in m.detail:  # the plane test's own false alarms
            continue
        measured += 1
        # a significant gradient without hot pixels to judge it (``raw`` not given)
        fails += m.detail.startswith("gradient") and m.value is None
        gate_fails += pair_gradient_gate(long, short, CONFIG).metric.failed
    # binomial(~105, 0.1): mean ~10, P(> 22) < 0.001, P(< 3) < 0.005
    assert measured > 90
    assert 3 <= fails <= 22, (fails, measured)
    assert gate_fails == 0


@pytest.mark.slow
def test_a_zoo_night_without_a_bias_names_the_leaky_set(tmp_path):
    """sample_zoo(60, 3)'s ccd-1869199421: 4 x 60 s darks with stray light and 4 x 120 s, no
    bias. Their difference falls below 0 at a corner: the 60 s master is marked."""
    import pandas as pd

    from darkflow.config import Config
    from darkflow.pipeline import run_night
    from darkflow.simulate.zoo import sample_zoo, zoo_night

    params = next(p for p in sample_zoo(60, 3) if p.name == "ccd-1869199421")
    zoo_night(tmp_path / "data", params=params)
    run_night(tmp_path / "data", workdir=tmp_path / "work", config=Config())
    masters = pd.read_csv(tmp_path / "work" / "masters.csv")
    darks = masters[masters["kind"] == "dark"].set_index("exptime_s")
    assert "dark_gradient" in darks.loc[params.fault_exposure, "reasons"]
    assert darks.loc[params.fault_exposure, "status"] == "low_confidence"
    others = darks.drop(index=params.fault_exposure)
    assert not others["reasons"].fillna("").str.contains("dark_gradient").any()
