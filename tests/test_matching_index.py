"""build_index: laws, glow, linearity and summaries from masters read once; bad masters recorded."""

from collections import Counter
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest
from helpers.match import T0, Camera, library

from darkflow.config import Config
from darkflow.exceptions import FitsReadError
from darkflow.exposure.laws import LinearityStatus
from darkflow.matching import MasterEntry, build_index, match_light
from darkflow.model import FrameType
from darkflow.thermal import ThermalProfileStore

H = timedelta(hours=1)


@pytest.fixture(scope="module")
def cam():
    return Camera(noise_adu=0.3)


def _counting(masters):
    calls = Counter()

    def load(mid):
        calls[mid] += 1
        return masters[mid]

    return load, calls


def test_law_glow_and_linearity_from_a_library(cam):
    specs = [
        ("a", 120.0, -20.0, T0),
        ("b", 120.0, -14.0, T0),
        ("c", 120.0, -8.0, T0),
        ("d", 300.0, -14.0, T0),
        ("e", 60.0, -14.0, T0 + H),
    ]
    entries, masters = library(cam, specs)
    load, calls = _counting(masters)
    index = build_index(
        entries, load_master=load, biases={cam.signature: cam.bias()}, config=Config()
    )
    assert set(calls.values()) == {1}  # each master read exactly once
    law = index.laws[cam.signature]
    assert law.source == "fitted" and law.supports_scaling and not law.reasons
    assert law.doubling_temp_c == pytest.approx(cam.model.doubling_temp_c, rel=0.03)
    assert law.temp_min_c == -20.0 and law.temp_max_c == -8.0 and law.n_points == 5
    glow = index.glow[cam.signature]
    assert glow.method == "decomposed"
    peak_true = cam.truth.amp_glow_e_per_s.max() / cam.model.egain_e_per_adu  # ADU/s
    assert glow.rate_grid.max() == pytest.approx(peak_true, rel=0.5)  # block-smoothed corner
    lin = index.linearity[cam.signature]
    assert lin.status == LinearityStatus.PROPORTIONAL and lin.scaling_demonstrated
    assert lin.exposures_s == pytest.approx((60.0, 120.0, 300.0), rel=1e-3)
    assert {p.name for p in lin.populations} >= {"normal", "hot", "glow"}
    summary = index.summaries["d"]
    assert summary.grid is None and summary.hot_values is None  # pixel vectors dropped
    assert summary.n_hot >= 10 and summary.noise_adu == pytest.approx(0.5)  # the plane


def test_single_temperature_and_no_bias(cam):
    entries, masters = library(cam, [("a", 120.0, -10.0, T0), ("b", 300.0, -10.0, T0)])
    index = build_index(entries, load_master=masters.__getitem__, biases={}, config=Config())
    law = index.laws[cam.signature]
    assert law.source == "default" and not law.supports_scaling
    assert "single_temperature" in law.reasons
    assert cam.signature not in index.glow
    lin = index.linearity[cam.signature]
    assert not lin.bias_available and not lin.scaling_possible and "no_bias" in lin.reasons


def test_stored_law_is_used_when_this_night_cannot_fit_one(cam, tmp_path):
    entries, kw = _lib_two_temps(cam)
    fitted = build_index(entries, **kw, config=Config()).laws[cam.signature]
    store = ThermalProfileStore(tmp_path / "thermal_profiles.json")
    assert store.update_law(cam.signature, fitted)
    entries, masters = library(cam, [("only", 120.0, -10.0, T0)])
    index = build_index(
        entries,
        load_master=masters.__getitem__,
        biases={},
        config=Config(),
        thermal_profiles=ThermalProfileStore(store.path),
    )
    law = index.laws[cam.signature]
    assert law.source == "stored" and law.supports_scaling and "stored_law" in law.reasons


def _lib_two_temps(cam):
    entries, masters = library(cam, [("x", 120.0, -16.0, T0), ("y", 120.0, -8.0, T0)])
    return entries, {"load_master": masters.__getitem__, "biases": {}}


def test_bad_masters_are_recorded_not_raised(cam):
    entries, masters = library(cam, [("ok", 120.0, -10.0, T0), ("broken", 120.0, -12.0, T0)])
    zero = MasterEntry("zero", replace(entries[0].meta, exptime_s=0.0))
    bias_entry = MasterEntry("bias", replace(entries[0].meta, frame_kind=FrameType.BIAS))
    warm_set = MasterEntry("warmset", replace(entries[0].meta, temp_c=-4.0, set_temp_c=-15.0))
    masters["warmset"] = cam.master(120.0, -4.0)

    def load(mid):
        if mid == "broken":
            raise FitsReadError("/x/broken.fits", "truncated")
        return masters[mid]

    index = build_index(
        [*entries, zero, bias_entry, warm_set],
        load_master=load,
        biases={cam.signature: cam.bias()},
        config=Config(),
    )
    assert "broken" in index.unusable and "truncated" in index.notes["broken"][-1]
    assert "invalid_exposure" in index.notes["zero"]
    assert "setpoint_not_reached" in index.notes["warmset"]
    assert index.entry("bias") is None  # biases come through `biases`, not entries
    d = match_light(cam.light_meta(120.0, -12.0), index, Config())
    assert d.master_id not in ("broken", "zero")
    assert set(index.summaries) == {"ok", "warmset"}


def test_mismatched_bias_shape_is_left_out(cam):
    entries, masters = library(cam, [("a", 120.0, -10.0, T0), ("b", 60.0, -10.0, T0)])
    small = Camera(shape=(32, 48)).bias()
    index = build_index(
        entries, load_master=masters.__getitem__, biases={cam.signature: small}, config=Config()
    )
    assert not index.summaries["a"].bias_removed
    assert np.isfinite(index.summaries["a"].level_adu)
