"""Acceptance gates of masters (darkflow.verify.assess_master) on synthetic stacks with known faults."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from conftest_verify import (
    SHAPE,
    bias_master,
    dark_frames,
    make_sensor,
    master_of,
)

from darkflow.config import VerifyConfig
from darkflow.exceptions import ConfigError, IncompatibleFramesError
from darkflow.model import FrameType, MasterStatus
from darkflow.verify import (
    MASTER_VALUE_COLUMNS,
    VerifyReason,
    assess_master,
    band_confidence,
    holdout_split,
)

R = VerifyReason


@pytest.fixture(scope="module")
def sensor():
    return make_sensor(0)


@pytest.fixture(scope="module")
def bias(sensor):
    return bias_master(sensor)


@pytest.fixture(scope="module")
def previous(sensor):
    return master_of(dark_frames(sensor, 12, seed=1000))


def _assess(sensor, bias, previous, *, n=12, holdout=2, seed=1, **fault):
    frames = dark_frames(sensor, n + holdout, seed=seed, **fault)
    master = master_of(frames[:n])
    return master, assess_master(master, holdout=frames[n:], previous=previous, bias=bias)


def test_clean_master_is_verified_with_ideal_metrics(sensor, bias, previous):
    _master, a = _assess(sensor, bias, previous)
    assert a.status == MasterStatus.VERIFIED and a.verified
    assert a.confidence == 1.0
    assert a.reasons == ()
    v = a.values
    assert v["holdout_width_ratio"] == pytest.approx(1.0, abs=0.06)
    assert abs(v["holdout_shift_sigma"]) < 0.1
    assert v["master_variance_ratio"] == pytest.approx(1.0, abs=0.08)
    assert v["gain_deviation"] == pytest.approx(0.0, abs=0.1)
    assert abs(v["dark_scale_change"]) < 0.03
    assert abs(v["level_shift_sigma"]) < 0.1
    assert v["noise_inflation"] == pytest.approx(1 + 1 / 12, abs=0.02)
    assert v["hot_overlap"] > 0.7
    json.dumps(a.to_dict())  # plain data for masters.csv / the registry
    assert set(MASTER_VALUE_COLUMNS) <= set(a.values)


@pytest.mark.parametrize(
    ("fault", "n", "expected"),
    [
        ({"offset_adu": 25.0}, 12, {R.LEVEL_EXCESS, R.LEVEL_SHIFT}),  # bias drift
        ({"dark_scale": 1.6}, 12, {R.DARK_SCALE_CHANGED}),  # warmer darks
        ({"gain": 0.2, "read_e": 3.0}, 12, {R.VARIANCE_EXCESS, R.GAIN_MISMATCH}),  # 2.5x ADU/e-
        ({"cosmic_frac": 0.02}, 12, {R.HIGH_REJECTIONS, R.HOLDOUT_OUTLIERS}),
        ({}, 3, {R.NOISE_INFLATION}),  # too few darks
        (
            {"column_adu": np.random.default_rng(3).normal(0, 3.0, SHAPE[1])},
            12,
            {R.BANDING_CHANGED},
        ),
        ({"extra_e": np.linspace(0, 60, SHAPE[1])[None, :]}, 12, {R.LOW_FREQUENCY_CHANGED}),
    ],
    ids=["bias_drift", "warm", "gain", "cosmics", "too_few", "readout", "leak"],
)
def test_faults_lower_the_status_with_their_reasons(sensor, bias, previous, fault, n, expected):
    _, a = _assess(sensor, bias, previous, n=n, **fault)
    assert a.status == MasterStatus.LOW_CONFIDENCE
    assert expected <= set(a.reasons), a
    assert a.confidence < 0.5
    failed = {m.reason for m in a.metrics if m.failed}
    assert expected <= failed


def test_gain_fault_without_bias_or_previous_is_caught_by_photon_transfer(sensor):
    frames = dark_frames(sensor, 12, seed=4, gain=0.2)
    master = master_of(frames)  # header says 0.5 e-/ADU
    a = assess_master(master)
    assert R.GAIN_MISMATCH in a.reasons
    assert a.values["ptc_egain"] < 0.35  # photon transfer sees far fewer e- per ADU than 0.5
    assert R.NO_PREVIOUS in a.reasons and R.HOLDOUT_UNAVAILABLE in a.reasons


def test_small_bias_drift_is_seen_against_the_previous_master_only(sensor, bias, previous):
    """10 ADU on a 40 ADU dark signal hides in the shot noise, not in the level history."""
    _, a = _assess(sensor, bias, previous, offset_adu=10.0)
    assert R.LEVEL_SHIFT in a.reasons and R.LEVEL_EXCESS not in a.reasons
    assert a.values["level_shift_adu"] == pytest.approx(10.0, abs=1.0)
    # informational reasons alone never fail a master, but they cost confidence
    clean = assess_master(master_of(dark_frames(sensor, 12, seed=5)))
    assert clean.status == MasterStatus.VERIFIED
    assert set(clean.reasons) == {R.HOLDOUT_UNAVAILABLE, R.NO_PREVIOUS}
    assert clean.confidence == pytest.approx(0.9)


def test_previous_at_other_temperature_is_scaled_with_the_bias(sensor, bias):
    warm = master_of(dark_frames(sensor, 12, seed=6, dark_scale=2.0), temp_c=-4.0)
    cold = master_of(dark_frames(sensor, 12, seed=7), temp_c=-10.0)  # 6 degC: factor 2
    a = assess_master(warm, previous=cold, bias=bias)
    assert a.values["previous_expected_scale"] == pytest.approx(2.0)
    assert abs(a.values["dark_scale_change"]) < 0.05
    assert a.status == MasterStatus.VERIFIED
    # without a bias, a previous master of another temperature cannot be compared
    b = assess_master(warm, previous=cold)
    assert R.PREVIOUS_NOT_COMPARABLE in b.reasons
    assert b.status == MasterStatus.VERIFIED


def test_holdout_band_of_rows_and_shape_errors(sensor, bias):
    frames = dark_frames(sensor, 14, seed=8)
    master = master_of(frames[:12])
    rows = slice(40, 100)
    a = assess_master(master, holdout=lambda: (f[rows] for f in frames[12:]), holdout_rows=rows)
    assert a.values["holdout_n"] == 2
    assert a.values["holdout_width_ratio"] == pytest.approx(1.0, abs=0.08)
    with pytest.raises(IncompatibleFramesError):
        assess_master(master, holdout=[frames[12][:, :50]])
    with pytest.raises(IncompatibleFramesError):
        assess_master(master, holdout=[frames[12][rows]])  # a band without holdout_rows
    with pytest.raises(IncompatibleFramesError):
        assess_master(master, bias=master_of([f[:, :100] for f in frames[:3]]))
    with pytest.raises(IncompatibleFramesError):
        assess_master(master, previous=master_of([f[:100] for f in frames[:3]]))


def test_inputs_are_not_modified(sensor, bias, previous):
    frames = dark_frames(sensor, 14, seed=9)
    master = master_of(frames[:12])
    before = [master.data.copy(), master.uncertainty.copy(), frames[12].copy()]
    assess_master(master, holdout=frames[12:], previous=previous, bias=bias)
    assert np.array_equal(master.data, before[0])
    assert np.array_equal(master.uncertainty, before[1])
    assert np.array_equal(frames[12], before[2])


def test_bias_master_is_assessed_without_dark_metrics(sensor):
    frames = dark_frames(make_sensor(0), 12, seed=10, dark_scale=0.0)
    b = master_of(frames, kind=FrameType.BIAS, temp_c=None)
    a = assess_master(b)
    names = {m.name for m in a.metrics}
    assert "master_variance_ratio" not in names and "gain_deviation" not in names
    assert a.status == MasterStatus.VERIFIED


def test_band_confidence_shape():
    assert band_confidence(0.0, 1.0) == 1.0
    assert band_confidence(0.5, 1.0) == 1.0
    assert band_confidence(1.0, 1.0) == pytest.approx(0.5)
    assert band_confidence(0.75, 1.0) == pytest.approx(0.75)
    assert band_confidence(2.0, 1.0) == pytest.approx(0.125)
    assert band_confidence(-2.0, 1.0) == pytest.approx(0.125)
    assert band_confidence(float("nan"), 1.0) == 0.0
    values = [band_confidence(d, 0.3) for d in np.linspace(0, 3, 50)]
    assert all(a >= b for a, b in itertools.pairwise(values))


def test_holdout_split_is_deterministic_and_order_independent():
    paths = [f"/night/dark_{i:03d}.fits" for i in range(20)]
    train, hold = holdout_split(paths, 0.2, seed=3)
    assert len(hold) == 4 and len(train) == 16
    assert set(train) | set(hold) == set(paths) and not set(train) & set(hold)
    assert list(train) == [p for p in paths if p in train]  # input order kept
    _train2, hold2 = holdout_split(list(reversed(paths)), 0.2, seed=3)
    assert set(hold2) == set(hold)
    assert set(holdout_split(paths, 0.2, seed=4)[1]) != set(hold)
    # never fewer than min_train frames left to combine; fraction 0: nothing held out
    assert holdout_split(paths[:3], 0.2, min_train=3) == (tuple(paths[:3]), ())
    assert len(holdout_split(paths[:4], 0.2, min_train=3)[1]) == 1
    assert holdout_split(paths, 0.0)[1] == ()
    with pytest.raises(ConfigError):
        holdout_split(paths, 1.0)
    with pytest.raises(ConfigError):
        holdout_split([paths[0], paths[0]], 0.2)


def test_holdout_split_by_content_keys_ignores_the_location():
    hashes = [f"{i:040x}" for i in range(20)]
    here = [f"/night/dark_{i:03d}.fits" for i in range(20)]
    there = [f"/mnt/copy/of/night/dark_{i:03d}.fits" for i in range(20)]
    _, held_here = holdout_split(here, 0.2, keys=hashes)
    _, held_there = holdout_split(there, 0.2, keys=hashes)
    assert [here.index(p) for p in held_here] == [there.index(p) for p in held_there]
    with pytest.raises(ConfigError):
        holdout_split(here, 0.2, keys=hashes[:-1])


def test_verify_config_validation():
    with pytest.raises(ConfigError):
        VerifyConfig(holdout_fraction=1.5)
    with pytest.raises(ConfigError):
        VerifyConfig(min_master_variance_ratio=1.2)
    from darkflow.config import Config

    cfg = Config.from_dict({"verify": {"gate_false_alarm": 1e-3, "min_stars": 3}})
    assert cfg.verify.gate_false_alarm == 1e-3 and cfg.verify.min_stars == 3


def test_master_verdict_caps_a_set_of_too_few_frames():
    from darkflow.verify import master_verdict

    assert master_verdict(None, n_frames=5, min_frames=3) == (MasterStatus.VERIFIED, 1.0, ())
    status, conf, reasons = master_verdict(None, n_frames=2, min_frames=3)
    assert (status, conf, reasons) == (MasterStatus.LOW_CONFIDENCE, 0.5, ("too_few_frames",))
