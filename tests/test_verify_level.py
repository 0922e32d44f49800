"""The dark level against its night's bias: darks below the bias are a bias drift."""

from __future__ import annotations

import pytest
from helpers.verify import bias_master, dark_frames, make_sensor, master_of

from darkflow.model import MasterStatus
from darkflow.verify import VerifyReason as R
from darkflow.verify import assess_master


@pytest.fixture(scope="module")
def sensor():
    return make_sensor(0)


@pytest.fixture(scope="module")
def bias(sensor):
    return bias_master(sensor)


def _level(a):
    return next(m for m in a.metrics if m.name == "dark_level_above_bias")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_clean_darks_sit_above_their_bias(sensor, bias, seed):
    frames = dark_frames(sensor, 14, seed=seed)
    a = assess_master(master_of(frames[:12]), holdout=frames[12:], training=frames[:12],
                      bias=bias)  # fmt: skip
    m = _level(a)
    assert m.status == "pass" and m.false_alarm == 1e-4 and m.spread > 0
    assert R.DARK_BELOW_BIAS not in a.reasons


def test_darks_below_their_bias_fail_and_upward_drift_is_not_this_gate(sensor, bias):
    frames = dark_frames(sensor, 14, seed=1, offset_adu=-60.0)
    a = assess_master(master_of(frames[:12]), holdout=frames[12:], training=frames[:12],
                      bias=bias)  # fmt: skip
    assert a.status == MasterStatus.LOW_CONFIDENCE and R.DARK_BELOW_BIAS in a.reasons
    assert _level(a).failed and a.values["dark_level_above_bias_adu"] < 0
    up = dark_frames(sensor, 14, seed=1, offset_adu=60.0)
    a = assess_master(master_of(up[:12]), holdout=up[12:], training=up[:12], bias=bias)
    assert not _level(a).failed and R.DARK_BELOW_BIAS not in a.reasons


def test_a_bias_of_another_night_is_not_compared(sensor, bias):
    frames = dark_frames(sensor, 12, seed=1, offset_adu=-60.0)
    a = assess_master(master_of(frames), bias=bias, bias_own_night=False)
    assert all(m.name != "dark_level_above_bias" for m in a.metrics)
    assert R.DARK_BELOW_BIAS not in a.reasons
