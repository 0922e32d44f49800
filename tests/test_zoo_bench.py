"""Scoring of benchmarks/bench_trust.py, checked on hand-made results (no pipeline run)."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def bench():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_trust.py"
    if "bench_trust" not in sys.modules:
        spec = importlib.util.spec_from_file_location("bench_trust", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_trust"] = module
        spec.loader.exec_module(module)
    return sys.modules["bench_trust"]


def _truth(fault=None):
    params = {
        "camera": {"kind": "cmos", "bayer_pattern": "RGGB", "shape": [256, 256]},
        "egain": "absent",
        "grid": "mixed",
        "n_darks": 4,
        "scene": "stars",
        "program": "nina",
        "nights": [{"n_bias": 10}],
    }

    def light(i, provable, usable, affected=False):
        return {
            "path": f"night-1/2026-01-01/n1_lights/L_{i}.fits",
            "provable": provable,
            "usable": usable,
            "affected_by_fault": affected,
        }

    return {
        "name": "colour_cmos-7",
        "family": "colour_cmos",
        "clean": fault is None,
        "description": "hand-made",
        "params": params,
        "fault": fault,
        "lights": [
            light(1, True, True),
            light(2, True, True, affected=bool(fault)),
            light(3, False, True),
            light(4, False, False),
            light(5, True, True),
        ],
        "masters": [
            {"id": "night-1/bias", "kind": "bias", "night": "2026-01-01", "exptime_s": 0.0},
            {"id": "night-1/dark/300s", "kind": "dark", "night": "2026-01-01", "exptime_s": 300.0},
            {"id": "night-1/dark/60s", "kind": "dark", "night": "2026-01-01", "exptime_s": 60.0},
        ],
    }


ROOT = Path("/tmp/zoo-x/data")
FRAMES = pd.DataFrame(
    {
        "path": [f"{ROOT}/night-1/2026-01-01/n1_lights/L_{i}.fits" for i in (1, 2, 3, 4)],
        "status": ["degraded", "quarantined", "quarantined", "calibrated"],
        "reasons": [
            "egain_estimated;light_banding",
            "level_excess;light_variance_excess",
            "nonlinear_dark",
            None,
        ],
    }
)
MASTERS = pd.DataFrame(
    {
        "kind": ["bias", "dark", "dark"],
        "night": ["2026-01-01"] * 3,
        "exptime_s": [0.0, 300.0, 60.0],
        "status": ["verified", "low_confidence", "verified"],
        "reasons": ["no_previous_master", "level_excess;no_previous_master", "no_previous_master"],
    }
)


def test_clean_night_counts_false_flags_and_their_reasons(bench):
    s = bench.score_night(_truth(), FRAMES, MASTERS, root=ROOT)
    assert (s.n_lights, s.n_usable, s.n_provable) == (5, 4, 3)
    assert s.missing_lights == 1  # light 5 is not in the frame report
    assert s.statuses == {"degraded": 1, "quarantined": 2, "calibrated": 1}
    assert s.degraded_provable == 1  # light 1
    assert s.quarantined_usable == 2  # lights 2 and 3
    assert s.no_model_with_output == 1  # light 4: no dark model, yet calibrated
    assert (s.n_masters, s.masters_flagged, s.masters_flagged_by_kind) == (3, 1, {"dark": 1})
    assert s.false_flags == 4
    assert s.flag_reasons == {
        "egain_estimated": 1,
        "light_banding": 1,
        "level_excess": 2,
        "light_variance_excess": 1,
        "nonlinear_dark": 1,
        "no_previous_master": 1,
    }
    assert s.light_reasons["level_excess"] == 1 and s.master_reasons["no_previous_master"] == 3
    assert s.detected is None and s.attributes["colour"] == "RGGB"
    assert s.attributes["darks"] == "3-5 darks" and s.attributes["size"] == "<=256x256"


def test_paths_match_without_root(bench):
    s = bench.score_night(_truth(), FRAMES, MASTERS)
    assert s.missing_lights == 1 and sum(s.statuses.values()) == 4


def test_faulty_night_detection_and_cause(bench):
    fault = {
        "kind": "bias_drift",
        "expected_cause": "bias_drift",
        "effect_sigma": 1.5,
        "level_effect": True,
        "target": {"kind": "dark", "id": "night-1/dark/300s"},
    }
    s = bench.score_night(_truth(fault), FRAMES, MASTERS, root=ROOT)
    assert s.detected and s.top_cause == "bias_drift" and s.right_cause
    assert s.effect_sigma == 1.5 and s.level_effect
    assert s.flag_reasons == {}  # false flags are counted on clean nights only
    assert s.quarantined_usable == 1  # the affected light 2 is not a false flag
    # the same night where the faulted master passed and its light was calibrated: missed
    ok_masters = MASTERS.assign(status="verified", reasons="no_previous_master")
    ok_frames = FRAMES.assign(status="calibrated", reasons=None)
    missed = bench.score_night(_truth(fault), ok_frames, ok_masters, root=ROOT)
    assert missed.detected is False and missed.right_cause is False
    # detected, but the reasons point elsewhere
    wrong = FRAMES.assign(reasons="light_variance_low")
    other = bench.score_night(_truth(fault), wrong, ok_masters, root=ROOT)
    assert other.detected and other.top_cause == "noise_model" and not other.right_cause


def test_recorded_fault_avoided_or_compensated(bench):
    """A fault the headers record counts as handled only when the verdicts are right: the
    faulted master unused by the affected lights, or its recorded temperature modelled with
    the lights' hot pixels measured on the model's scale."""
    masters = MASTERS.assign(
        status="verified", reasons="no_previous_master", master_id=["b", "d300", "d60"]
    )
    calibrated = FRAMES.assign(
        status="calibrated", reasons="temperature_scaled", master_id="d60", secondary_master_id=None
    )
    gain = {
        "kind": "wrong_gain_recorded",
        "expected_cause": "gain_mismatch",
        "effect_sigma": 3.0,
        "level_effect": True,
        "target": {"kind": "dark", "id": "night-1/dark/300s"},
    }
    s = bench.score_night(_truth(gain), calibrated, masters, root=ROOT)
    assert s.detected is False and s.handled and s.handled_how == "avoided"
    # the light used the faulted master: a wrong gain is not compensated by anything
    used = calibrated.assign(master_id="d300")
    s = bench.score_night(_truth(gain), used, masters, root=ROOT)
    assert s.handled is False and s.handled_how is None
    warm = {**gain, "kind": "warm_darks_recorded", "expected_cause": "thermal_mismatch"}
    s = bench.score_night(_truth(warm), used, masters, root=ROOT)
    assert s.handled and s.handled_how == "compensated"
    # the hot pixels not measured, or the temperature not modelled: not shown to be handled
    for reasons in ("temperature_scaled;dark_scale_unmeasured", "exposure_scaled"):
        s = bench.score_night(_truth(warm), used.assign(reasons=reasons), masters, root=ROOT)
        assert s.handled is False
    # an unrecorded fault is never "handled": the headers gave the pipeline nothing to model
    hidden = {**warm, "kind": "warm_darks"}
    assert bench.score_night(_truth(hidden), used, masters, root=ROOT).handled is None
    text = bench.summary([bench.score_night(_truth(gain), calibrated, masters, root=ROOT)], [])
    assert "without a flag: 1 (avoided 1); detected or handled 1/1 (100%)" in text


def test_summary_tables_and_results_section(bench, tmp_path):
    clean = bench.score_night(_truth(), FRAMES, MASTERS, root=ROOT)
    fault = {"kind": "light_leak", "expected_cause": "light_leak", "target": {"kind": "all"}}
    faulty = bench.score_night(_truth(fault), FRAMES, MASTERS, root=ROOT)
    broken = dataclasses.replace(clean, name="x-1", error="RuntimeError: boom")
    text = bench.summary([clean, faulty, broken], [clean])
    assert "lights quarantined although a usable dark model exists 2/4 (50%)" in text
    assert "lights degraded although an exact or provably scalable dark exists 1/3 (33%)" in text
    assert "| colour_cmos | 1 | 5 | 2/4 (50%) | 1/3 (33%) | 1/3 (33%) |" in text
    assert "| light_leak (expect light_leak) | 1 | 1/1 (100%) | 0/1 (0%) |" in text
    assert "| `level_excess` | error | 1/4 (25%) | 1/3 (33%) | 2 |" in text
    assert "`x-1`: RuntimeError: boom" in text
    # the fault's size from the truth: below 1 sigma of the lights' noise it does not matter
    small = dataclasses.replace(
        faulty, effect_sigma=0.4, level_effect=True, detected=False, right_cause=False
    )
    big = dataclasses.replace(faulty, name="f-2", effect_sigma=3.0, level_effect=True)
    noisy = dataclasses.replace(faulty, name="f-3", effect_sigma=None, level_effect=False)
    assert not bench.matters(small) and bench.matters(big) and bench.matters(noisy)
    text = bench.summary([small, big, noisy], [])
    assert "detected 2/3 (67%)" in text
    assert "Faults that matter (2 nights" in text and "detected 2/2 (100%), right" in text
    assert (
        "| light_leak (expect light_leak) | 3 | 2/3 (67%) | 0/3 (0%) | 1.7 | 2 | 2/2 (100%) |"
        in text
    )
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n## Other\n\nkeep me\n")
    bench.write_section("first", results)
    bench.write_section("second", results)
    out = results.read_text()
    assert "keep me" in out and "second" in out and "first" not in out
    assert out.count(bench.SECTION) == 1


@pytest.mark.slow
def test_harness_runs_zoo_nights(bench, tmp_path):
    from darkflow.simulate.zoo import sample_zoo

    nights = [p.replace(camera=p.camera.replace(ny=64, nx=96)) for p in sample_zoo(6, seed=2)]
    scores = bench.run_all(nights, jobs=2, base=str(tmp_path), progress=False)
    assert [s.name for s in scores] == [p.name for p in nights]
    assert not list(tmp_path.iterdir())  # every temporary night removed
    for s, p in zip(scores, nights, strict=True):
        assert s.error is None, s.error
        assert s.missing_lights == 0 and sum(s.statuses.values()) == s.n_lights
        assert s.n_masters >= 1 and s.clean == p.clean
        assert (s.detected is None) == p.clean
    again = bench.run_all(nights[:2], jobs=1, progress=False)
    strip = [dataclasses.replace(s, seconds=0.0) for s in scores[:2]]
    assert [dataclasses.replace(s, seconds=0.0) for s in again] == strip
    assert "Clean nights per family" in bench.summary(scores, [])


def test_fault_effect_sizes_follow_the_dark_model():
    """The truth's effect of a fault on a light: the faulted master's error times its weight in
    the light's model, in units of the light's noise."""
    from darkflow.simulate._zoo_truth import (
        fault_effect_adu,
        fault_effect_sigma,
        fault_weight,
        light_sigma_adu,
    )
    from darkflow.simulate.zoo import zoo_params

    sources = [
        {"id": "a", "exptime_s": 60.0, "clean": False},
        {"id": "b", "exptime_s": 120.0, "clean": True},
    ]
    assert fault_weight(60.0, ["a"], sources) == 1.0
    assert fault_weight(90.0, ["a", "b"], sources) == pytest.approx(0.5)
    assert fault_weight(120.0, ["a"], sources) == pytest.approx(2.0)  # scaled with a bias
    assert fault_weight(120.0, ["b"], sources) == 0.0
    drift = zoo_params("mono_cmos", 3, fault="bias_drift")
    t = float(drift.fault_exposure)
    assert fault_effect_adu(drift, t, -10.0, weight=1.0) == pytest.approx(
        abs(drift.fault_magnitude)
    )
    assert fault_effect_adu(drift, t, -10.0, weight=0.5) == pytest.approx(
        abs(drift.fault_magnitude) / 2
    )
    assert fault_effect_sigma(drift, t, -10.0, weight=1.0) == pytest.approx(
        abs(drift.fault_magnitude) / light_sigma_adu(drift, t, -10.0)
    )
    leak = zoo_params("ccd", 5, fault="light_leak")
    t = float(leak.fault_exposure)
    rate = max(leak.fault_magnitude, 10.0 / t)
    assert fault_effect_adu(leak, t, -10.0, weight=1.0) == pytest.approx(
        rate * t / leak.camera.egain_e_per_adu
    )
    warm = zoo_params("mono_cmos", 4, fault="warm_darks")
    t = float(warm.fault_exposure)
    typical = fault_effect_adu(warm, t, -10.0, weight=1.0) / light_sigma_adu(warm, t, -10.0)
    assert fault_effect_sigma(warm, t, -10.0, weight=1.0) > typical  # the hot pixels show it
    assert fault_effect_adu(zoo_params("ccd", 5, fault="cosmic_rays"), 60.0, -10.0) is None
